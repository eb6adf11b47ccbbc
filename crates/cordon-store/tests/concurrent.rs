//! Several connections writing one store at once, as the nodes of a cluster (PostgreSQL) or
//! a server and a command run beside it (SQLite) do: they wait for each other, never fail.

use std::collections::BTreeMap;
use std::sync::Barrier;

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
