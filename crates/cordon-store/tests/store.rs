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
    store.for_each_signal("pdq", |_| rows += 1).unwrap();
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
fn signals_and_disabled_times_are_listed_for_the_matcher() {
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
        .set_content_disabled_until(a, Some("9999-01-01T00:00:00.000Z"))
        .unwrap();
    // Every signal is listed (the matcher checks states at match time) ...
    let mut seen = Vec::new();
    store
        .for_each_signal("pdq", |row| seen.push((row.content_id, row.value)))
        .unwrap();
    assert_eq!(seen, vec![(a, "01".repeat(32)), (b, "02".repeat(32))]);
    // ... with the disabled-until times beside them.
    let disabled = store.disabled_content().unwrap();
    assert_eq!(
        disabled.get(&a).map(String::as_str),
        Some("9999-01-01T00:00:00.000Z")
    );
    assert!(!disabled.contains_key(&b));
    store.set_content_disabled_until(a, None).unwrap();
    assert!(store.disabled_content().unwrap().is_empty());
}

#[test]
fn every_change_is_audited_in_an_unbroken_chain() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    store.set_actor("key:ops");
    bank(&mut store, "AUDITED");
    let mut writer = store.content_writer("AUDITED").unwrap();
    let id = writer
        .insert(&NewContent {
            signals: vec![pdq(&"03".repeat(32))],
            ..NewContent::default()
        })
        .unwrap();
    writer.commit().unwrap();
    store
        .set_content_disabled_until(id, Some("9999-01-01T00:00:00Z"))
        .unwrap();
    store.delete_content(id).unwrap();
    store
        .create_key("0011223344556677", "svc", "submitter", &[0; 32])
        .unwrap();
    store.revoke_key("svc").unwrap();
    store.delete_bank("AUDITED").unwrap();
    // A failed change leaves no entry.
    assert!(store.delete_bank("AUDITED").is_err());

    let events: Vec<String> = store
        .audit_entries(0)
        .unwrap()
        .into_iter()
        .map(|e| e.event)
        .collect();
    assert_eq!(
        events,
        [
            "bank.created",
            "content.added",
            "content.disabled_until",
            "content.deleted",
            "key.created",
            "key.revoked",
            "bank.deleted"
        ]
    );
    let entries = store.audit_entries(0).unwrap();
    assert!(entries.iter().all(|e| e.actor == "key:ops"));
    assert_eq!(entries[1].data["count"], 1);
    let check = store.verify_audit().unwrap();
    assert_eq!((check.entries, check.problem.clone()), (7, None));
    assert_eq!(check.head, entries[6].hash);
}

#[test]
fn the_audit_log_refuses_edits_and_verify_finds_tampering() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut store = Store::open(dir.path()).unwrap();
        for name in ["A", "B", "C", "D"] {
            bank(&mut store, name);
        }
    }
    let path = dir.path().join(cordon_store::DATABASE_FILE);
    let conn = rusqlite::Connection::open(&path).unwrap();
    // Through SQL the log is append-only.
    let refused = conn.execute("UPDATE audit SET actor = 'someone' WHERE seq = 2", []);
    assert!(refused.unwrap_err().to_string().contains("append-only"));
    assert!(conn.execute("DELETE FROM audit WHERE seq = 2", []).is_err());

    // Someone with the file drops the guards and rewrites an entry: the chain shows it.
    conn.execute_batch("DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;")
        .unwrap();
    conn.execute("UPDATE audit SET data = '{\"bank\":\"X\"}' WHERE seq = 2", [])
        .unwrap();
    let check = Store::open(dir.path()).unwrap().verify_audit().unwrap();
    assert_eq!(check.broken_at, Some(2));
    assert!(check.problem.unwrap().contains("changed"));

    // Or removes one.
    let dir2 = tempfile::tempdir().unwrap();
    {
        let mut store = Store::open(dir2.path()).unwrap();
        for name in ["A", "B", "C"] {
            bank(&mut store, name);
        }
    }
    let conn = rusqlite::Connection::open(dir2.path().join(cordon_store::DATABASE_FILE)).unwrap();
    conn.execute_batch("DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE seq = 2;")
        .unwrap();
    let check = Store::open(dir2.path()).unwrap().verify_audit().unwrap();
    assert_eq!(check.broken_at, Some(3));
    assert!(check.problem.unwrap().contains("missing"));
}
