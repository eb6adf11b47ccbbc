//! The embedded store on a real SQLite file.

use std::collections::BTreeMap;

use cordon_store::{BankName, NewBank, NewContent, Signal, Store, StoreError};

fn pdq(value: &str) -> Signal {
    Signal {
        signal_type: "pdq".to_string(),
        value: value.to_string(),
    }
}

fn bank(store: &mut Store, name: &str) {
    store
        .create_bank(
            &BankName::new(name).unwrap(),
            NewBank {
                enabled: true,
                thresholds: BTreeMap::from([("pdq".to_string(), 31)]),
                ..NewBank::default()
            },
        )
        .unwrap();
}

#[test]
fn reopening_keeps_data_and_does_not_migrate_twice() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut store = Store::open(dir.path()).unwrap();
        bank(&mut store, "KEPT");
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.banks().unwrap().len(), 1);
    assert_eq!(store.bank("KEPT").unwrap().thresholds["pdq"], 31);
}

#[test]
fn a_database_from_a_newer_cordon_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path()).unwrap());
    let conn = rusqlite::Connection::open(dir.path().join(cordon_store::DATABASE_FILE)).unwrap();
    conn.pragma_update(None, "user_version", 999).unwrap();
    drop(conn);
    match Store::open(dir.path()) {
        Err(StoreError::SchemaTooNew { found: 999, .. }) => {}
        other => panic!("expected SchemaTooNew, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn an_uncommitted_writer_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    bank(&mut store, "ATOMIC");
    {
        let mut writer = store.content_writer("ATOMIC").unwrap();
        for i in 0..10 {
            writer
                .insert(&NewContent {
                    note: format!("n{i}"),
                    signals: vec![pdq(&"ab".repeat(32))],
                    ..NewContent::default()
                })
                .unwrap();
        }
        // Dropped without commit.
    }
    let id = store.bank("ATOMIC").unwrap().id;
    assert_eq!(store.content_count(id).unwrap(), 0);
    let mut rows = 0;
    store.for_each_matchable_signal("pdq", |_| rows += 1).unwrap();
    assert_eq!(rows, 0);

    let mut writer = store.content_writer("ATOMIC").unwrap();
    let content_id = writer
        .insert(&NewContent {
            external_id: Some("x".to_string()),
            labels: vec!["a".to_string()],
            signals: vec![pdq(&"cd".repeat(32))],
            ..NewContent::default()
        })
        .unwrap();
    assert_eq!(writer.commit().unwrap(), 1);
    let content = store.content(content_id).unwrap();
    assert_eq!(content.bank.as_str(), "ATOMIC");
    assert_eq!(content.signals, vec![pdq(&"cd".repeat(32))]);
}

#[test]
fn disabled_content_and_banks_are_not_matchable() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    bank(&mut store, "LIVE");
    let mut writer = store.content_writer("LIVE").unwrap();
    let a = writer
        .insert(&NewContent {
            signals: vec![pdq(&"01".repeat(32))],
            ..NewContent::default()
        })
        .unwrap();
    let b = writer
        .insert(&NewContent {
            signals: vec![pdq(&"02".repeat(32))],
            ..NewContent::default()
        })
        .unwrap();
    writer.commit().unwrap();
    store
        .set_content_disabled_until(a, Some("9999-01-01T00:00:00Z"))
        .unwrap();
    let mut seen = Vec::new();
    store
        .for_each_matchable_signal("pdq", |row| seen.push(row.content_id))
        .unwrap();
    assert_eq!(seen, vec![b]);
    // A disabled-until time in the past has expired.
    store
        .set_content_disabled_until(a, Some("2000-01-01T00:00:00Z"))
        .unwrap();
    seen.clear();
    store
        .for_each_matchable_signal("pdq", |row| seen.push(row.content_id))
        .unwrap();
    assert_eq!(seen, vec![a, b]);
    store
        .update_bank(
            "LIVE",
            cordon_store::BankUpdate {
                enabled: Some(false),
                ..Default::default()
            },
        )
        .unwrap();
    seen.clear();
    store
        .for_each_matchable_signal("pdq", |row| seen.push(row.content_id))
        .unwrap();
    assert!(seen.is_empty());
}
