//! A node's connections to the store: several to PostgreSQL (one slow request holds up
//! only itself), one to SQLite; one node name for all; per-account serialisation across
//! connections; a connection PostgreSQL closed is replaced.

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::time::Duration;

use cordon_store::{BankName, NewBank, StoreLocation, StorePool};
use cordon_testkit::postgres::psql;
use cordon_testkit::shared_postgres;

fn postgres_pool(connections: usize) -> (String, StorePool) {
    let url = shared_postgres().new_database("pool");
    let pool = StorePool::open(&StoreLocation::parse(&url).unwrap(), connections).unwrap();
    (url, pool)
}

fn new_bank(name: &str) -> (BankName, NewBank) {
    let bank = NewBank {
        enabled: true,
        thresholds: BTreeMap::from([("pdq".to_string(), 31)]),
        ..NewBank::default()
    };
    (BankName::new(name).unwrap(), bank)
}

#[test]
fn sqlite_gets_one_connection_and_postgres_as_many_as_asked() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = StorePool::open(&StoreLocation::in_data_folder(dir.path()), 8).unwrap();
    assert_eq!(sqlite.size(), 1);
    let (_, postgres) = postgres_pool(3);
    assert_eq!(postgres.size(), 3);
}

#[test]
fn every_connection_writes_the_feed_under_the_node_name() {
    let (_, pool) = postgres_pool(3);
    // Hold all three, so that each bank is written through a different connection.
    let mut held: Vec<_> = (0..3).map(|_| pool.get("key:test")).collect();
    for (i, store) in held.iter_mut().enumerate() {
        let (name, bank) = new_bank(&format!("BANK_{i}"));
        store.create_bank(&name, bank).unwrap();
    }
    drop(held);
    let changes = pool.get("key:test").changes_after(0, 100).unwrap();
    assert_eq!(changes.len(), 3, "{changes:?}");
    assert!(changes.iter().all(|c| c.node == pool.node()), "{changes:?}");
}

#[test]
fn a_borrower_waits_for_a_connection_to_come_back() {
    let (_, pool) = postgres_pool(1);
    let held = pool.get("key:first");
    std::thread::scope(|scope| {
        let (got, waited) = mpsc::channel();
        let pool = &pool;
        scope.spawn(move || {
            let store = pool.get("key:second");
            got.send(store.banks().map(|b| b.len())).unwrap();
        });
        assert!(
            waited.recv_timeout(Duration::from_millis(300)).is_err(),
            "the only connection is lent out, yet another borrower got one"
        );
        drop(held);
        let listed = waited.recv_timeout(Duration::from_secs(30)).unwrap();
        assert_eq!(listed.unwrap(), 0);
    });
}

#[test]
fn work_for_one_account_waits_for_other_work_for_it_on_another_connection() {
    let (_, pool) = postgres_pool(3);
    let (entered, first_inside) = mpsc::channel::<()>();
    let (release, first_may_leave) = mpsc::channel::<()>();
    let (order_tx, order) = mpsc::channel::<&str>();
    std::thread::scope(|scope| {
        let first_order = order_tx.clone();
        let first_pool = &pool;
        scope.spawn(move || {
            first_pool
                .get("key:first")
                .for_account("account-1", |_| {
                    entered.send(()).unwrap();
                    first_may_leave.recv_timeout(Duration::from_secs(30)).unwrap();
                    first_order.send("first done").unwrap();
                    Ok::<_, cordon_store::StoreError>(())
                })
                .unwrap();
        });
        first_inside.recv_timeout(Duration::from_secs(30)).unwrap();

        // Another account is not held up by it.
        pool.get("key:other")
            .for_account("account-2", |_| Ok::<_, cordon_store::StoreError>(()))
            .unwrap();

        let second_order = order_tx.clone();
        let second_pool = &pool;
        scope.spawn(move || {
            second_pool
                .get("key:second")
                .for_account("account-1", |_| {
                    second_order.send("second inside").unwrap();
                    Ok::<_, cordon_store::StoreError>(())
                })
                .unwrap();
        });
        assert!(
            order.recv_timeout(Duration::from_millis(300)).is_err(),
            "the second worker for account-1 ran while the first still held it"
        );
        release.send(()).unwrap();
        let seen: Vec<&str> = (0..2)
            .map(|_| order.recv_timeout(Duration::from_secs(30)).unwrap())
            .collect();
        assert_eq!(seen, ["first done", "second inside"]);
    });
    // The lock went with the work: the account is free again.
    pool.get("key:after")
        .for_account("account-1", |_| Ok::<_, cordon_store::StoreError>(()))
        .unwrap();
}

#[test]
fn a_connection_postgres_closed_is_replaced() {
    let (url, pool) = postgres_pool(1);
    assert!(pool.get("key:test").banks().is_ok());
    // With a timeout, pg_terminate_backend waits for the backend to exit (without, it only
    // signals it, and the backend could still answer the first use below).
    let killed = psql(
        &url,
        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 30000)) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    );
    assert_eq!(killed.trim(), "1", "one pooled backend to terminate");
    // The first use finds the connection gone (and answers with an error); the next
    // borrower gets a fresh one.
    let _first = pool.get("key:test").banks();
    let second = pool.get("key:test").banks();
    assert_eq!(second.unwrap().len(), 0);
}
