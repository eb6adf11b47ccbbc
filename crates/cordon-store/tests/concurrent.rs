//! Several connections writing one store at once, as the nodes of a cluster (PostgreSQL) or
//! a server and a command run beside it (SQLite) do: they wait for each other, never fail.

use std::collections::BTreeMap;
use std::sync::{Barrier, mpsc};
use std::time::{Duration, Instant};

use cordon_store::{BankName, BankUpdate, NewBank, Store, StoreLocation};
use cordon_testkit::shared_postgres;

fn new_bank(store: &mut Store, name: &str) -> Result<(), cordon_store::StoreError> {
    let bank = NewBank {
        enabled: true,
        thresholds: BTreeMap::from([("pdq".to_string(), 31)]),
        ..NewBank::default()
    };
    store.create_bank(&BankName::new(name).unwrap(), bank).map(|_| ())
}

/// A bank created (change feed, then audit log) while another is updated (audit log, then
/// change feed): with a lock for each log taken in opposite orders, PostgreSQL found a
/// deadlock and failed one of them.
#[test]
fn creating_and_updating_banks_at_once_on_postgres_never_deadlocks() {
    let location = StoreLocation::parse(&shared_postgres().new_database("locks")).unwrap();
    let mut creator = Store::open_at(&location).unwrap();
    let mut updater = Store::open_at(&location).unwrap();
    new_bank(&mut updater, "UPDATED").unwrap();
    let start = Barrier::new(2);
    let (creating, updating) = std::thread::scope(|scope| {
        let creating = scope.spawn(|| {
            start.wait();
            (0..200).find_map(|i| new_bank(&mut creator, &format!("NEW_{i}")).err())
        });
        let updating = scope.spawn(|| {
            start.wait();
            (0..200).find_map(|i| {
                let update = BankUpdate {
                    description: Some(format!("update {i}")),
                    ..BankUpdate::default()
                };
                updater.update_bank("UPDATED", update).err()
            })
        });
        (creating.join().unwrap(), updating.join().unwrap())
    });
    assert!(creating.is_none(), "creating: {creating:?}");
    assert!(updating.is_none(), "updating: {updating:?}");
    let check = creator.verify_audit().unwrap();
    assert_eq!((check.entries, check.problem), (401, None));
}

/// Another process (a `cordon` command beside the server) holds SQLite's write lock for a
/// moment: a write transaction that reads first waits for it rather than failing at once
/// with "database is locked".
#[test]
fn a_sqlite_write_waits_for_another_process_writing() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open_at(&StoreLocation::in_data_folder(dir.path())).unwrap();
    let path = dir.path().join(cordon_store::DATABASE_FILE);
    let (locked, is_locked) = mpsc::channel();
    std::thread::scope(|scope| {
        scope.spawn(move || {
            let other = rusqlite::Connection::open(path).unwrap();
            other.execute_batch("BEGIN IMMEDIATE").unwrap();
            locked.send(()).unwrap();
            std::thread::sleep(Duration::from_millis(300));
            other.execute_batch("COMMIT").unwrap();
        });
        is_locked.recv().unwrap();
        let started = Instant::now();
        new_bank(&mut store, "WAITED").unwrap();
        assert!(started.elapsed() >= Duration::from_millis(200), "it did not wait");
    });
    assert_eq!(store.banks().unwrap().len(), 1);
}

/// A server and a command started together on a data folder without a store: both create
/// it, one migrates, the others find it done.
#[test]
fn many_opening_a_new_sqlite_store_at_once_all_succeed() {
    for _ in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let start = Barrier::new(8);
        let opened: Vec<_> = std::thread::scope(|scope| {
            let opening: Vec<_> = (0..8)
                .map(|_| {
                    scope.spawn(|| {
                        start.wait();
                        Store::open(dir.path()).map(drop)
                    })
                })
                .collect();
            opening.into_iter().map(|o| o.join().unwrap()).collect()
        });
        let failed: Vec<String> = opened
            .into_iter()
            .filter_map(|o| o.err().map(|e| e.to_string()))
            .collect();
        assert!(failed.is_empty(), "{failed:?}");
    }
}
