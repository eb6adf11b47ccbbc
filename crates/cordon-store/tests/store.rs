//! The store on both backends: a real SQLite file, and a real PostgreSQL server started for
//! the test process (every test runs on each).

use std::collections::BTreeMap;

use cordon_store::{
    BankName, BankUpdate, ChangeKind, ContentUpdate, NewBank, NewContent, Signal, Store, StoreError,
};

use crate::place::{Place, on_both_backends};

on_both_backends!(
    reopening_keeps_data_and_does_not_migrate_twice,
    a_database_from_a_newer_cordon_is_refused,
    an_uncommitted_writer_leaves_nothing_behind,
    signals_and_disabled_times_are_listed_for_the_matcher,
    every_change_is_audited_in_an_unbroken_chain,
    the_audit_log_refuses_edits_and_verify_finds_tampering,
    the_change_feed_is_purged_but_never_emptied,
    revoking_a_key_ends_its_console_sessions_and_tells_the_servers,
    a_deleted_contents_id_is_never_given_again,
    a_bank_update_changes_what_it_names_and_nothing_else,
    a_content_update_lands_whole_or_not_at_all,
    sightings_are_read_whole_however_many_are_asked_for,
);

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

/// The events of the audit log's entries after `since`.
fn audit_events(store: &Store, since: i64) -> Vec<String> {
    store
        .audit_entries(since)
        .unwrap()
        .into_iter()
        .map(|e| e.event)
        .collect()
}

fn reopening_keeps_data_and_does_not_migrate_twice(place: Place) {
    {
        let mut store = place.open();
        bank(&mut store, "KEPT");
    }
    let store = place.open();
    assert_eq!(store.banks().unwrap().len(), 1);
    assert_eq!(store.bank("KEPT").unwrap().thresholds["pdq"], 31);
}

fn a_database_from_a_newer_cordon_is_refused(place: Place) {
    drop(place.open());
    let newer = match place {
        Place::Sqlite(_) => "PRAGMA user_version = 999",
        Place::Postgres(_) => "UPDATE schema_version SET version = 999",
    };
    place.raw_sql(newer).unwrap();
    match Store::open_at(&place.location()) {
        Err(StoreError::SchemaTooNew { found: 999, .. }) => {}
        other => panic!("expected SchemaTooNew, got {:?}", other.map(|_| ())),
    }
}

fn an_uncommitted_writer_leaves_nothing_behind(place: Place) {
    let mut store = place.open();
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

fn signals_and_disabled_times_are_listed_for_the_matcher(place: Place) {
    let mut store = place.open();
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

fn every_change_is_audited_in_an_unbroken_chain(place: Place) {
    let mut store = place.open();
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

    assert_eq!(
        audit_events(&store, 0),
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

fn the_audit_log_refuses_edits_and_verify_finds_tampering(place: Place) {
    {
        let mut store = place.open();
        for name in ["A", "B", "C", "D"] {
            bank(&mut store, name);
        }
        let mut writer = store.content_writer("A").unwrap();
        writer
            .record_sighting(1, &cordon_store::MediaFacts::default())
            .unwrap();
        writer.commit().unwrap();
    }
    // Through SQL the log is append-only.
    let refused = place.raw_sql("UPDATE audit SET actor = 'someone' WHERE seq = 2");
    assert!(refused.unwrap_err().contains("append-only"));
    assert!(place.raw_sql("DELETE FROM audit WHERE seq = 2").is_err());
    // Nor is it emptied whole (PostgreSQL's TRUNCATE fires no row triggers), or an entry
    // overwritten by inserting over it (SQLite's REPLACE fires no delete triggers); the
    // same for the ledger of sightings.
    let overwrites = match place {
        Place::Sqlite(_) => [
            "INSERT OR REPLACE INTO audit (seq, at, actor, event, data, hash)
             SELECT seq, at, 'someone', event, data, hash FROM audit WHERE seq = 2",
            "REPLACE INTO sighting (id, received_at) SELECT id, received_at FROM sighting WHERE id = 1",
        ],
        Place::Postgres(_) => ["TRUNCATE audit", "TRUNCATE sighting"],
    };
    for overwrite in overwrites {
        let refused = place.raw_sql(overwrite);
        assert!(refused.unwrap_err().contains("append-only"), "{overwrite}");
    }
    let store = place.open();
    assert_eq!(store.audit_entries(0).unwrap()[1].actor, "unknown");
    assert_eq!(store.sightings(&[1]).unwrap().len(), 1);
    assert_eq!(store.verify_audit().unwrap().entries, 4);
    drop(store);

    // Someone with the file drops the guards and rewrites an entry: the chain shows it.
    let drop_guards = match place {
        Place::Sqlite(_) => "DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;",
        Place::Postgres(_) => "DROP TRIGGER audit_no_update ON audit; DROP TRIGGER audit_no_delete ON audit;",
    };
    place.raw_sql(drop_guards).unwrap();
    place
        .raw_sql("UPDATE audit SET data = '{\"bank\":\"X\"}' WHERE seq = 2")
        .unwrap();
    let check = place.open().verify_audit().unwrap();
    assert_eq!(check.broken_at, Some(2));
    assert!(check.problem.unwrap().contains("changed"));

    // Or removes one.
    let place = place.another();
    {
        let mut store = place.open();
        for name in ["A", "B", "C"] {
            bank(&mut store, name);
        }
    }
    let drop_guard = match place {
        Place::Sqlite(_) => "DROP TRIGGER audit_no_delete;",
        Place::Postgres(_) => "DROP TRIGGER audit_no_delete ON audit;",
    };
    place.raw_sql(drop_guard).unwrap();
    place.raw_sql("DELETE FROM audit WHERE seq = 2").unwrap();
    let check = place.open().verify_audit().unwrap();
    assert_eq!(check.broken_at, Some(3));
    assert!(check.problem.unwrap().contains("missing"));
}

fn the_change_feed_is_purged_but_never_emptied(place: Place) {
    let mut store = place.open();
    assert_eq!(
        (store.first_change().unwrap(), store.last_change().unwrap()),
        (0, 0)
    );
    bank(&mut store, "ONE");
    bank(&mut store, "TWO");
    let newest = store.last_change().unwrap();
    assert!(store.first_change().unwrap() < newest);

    // Nothing is old enough yet.
    assert_eq!(store.purge_changes("2000-01-01T00:00:00.000Z").unwrap(), 0);
    // Everything is: all but the newest go.
    assert_eq!(store.purge_changes("9999-01-01T00:00:00.000Z").unwrap(), 1);
    assert_eq!(store.first_change().unwrap(), newest);
    assert_eq!(store.purge_changes("9999-01-01T00:00:00.000Z").unwrap(), 0);

    // The next change is numbered after it, so no follower's cursor passes over it.
    bank(&mut store, "THREE");
    let next = store.changes_after(newest, 10).unwrap();
    assert_eq!(next.len(), 1, "{next:?}");
    assert!(next[0].seq > newest);
}

fn revoking_a_key_ends_its_console_sessions_and_tells_the_servers(place: Place) {
    let mut store = place.open();
    let key = store
        .create_key("00112233445566aa", "alice", "reviewer", &[7u8; 32])
        .unwrap();
    let now = "2026-11-30T00:00:00.000Z";
    let session = cordon_store::ConsoleSession {
        reviewer: "alice".to_string(),
        role: "reviewer".to_string(),
        csrf: "c".repeat(64),
        expires_at: "2026-11-30T12:00:00.000Z".to_string(),
    };
    store.create_console_session(&[1u8; 32], &session, now).unwrap();
    assert!(store.console_session(&[1u8; 32], now).unwrap().is_some());
    let before = store.last_change().unwrap();

    store.revoke_key("alice").unwrap();
    assert!(
        store.console_session(&[1u8; 32], now).unwrap().is_none(),
        "a revoked reviewer is signed out"
    );
    let told = store.changes_after(before, 10).unwrap();
    assert_eq!(
        told.iter().map(|c| c.kind.clone()).collect::<Vec<_>>(),
        [cordon_store::ChangeKind::KeyRevoked { id: key.id }]
    );
}

fn a_deleted_contents_id_is_never_given_again(place: Place) {
    let mut store = place.open();
    bank(&mut store, "REUSE");
    let add = |store: &mut Store, note: &str| {
        let mut writer = store.content_writer("REUSE").unwrap();
        let id = writer
            .insert(&NewContent {
                note: note.to_string(),
                signals: vec![pdq(&"ab".repeat(32))],
                ..NewContent::default()
            })
            .unwrap();
        writer.commit().unwrap();
        id
    };
    add(&mut store, "first");
    let newest = add(&mut store, "newest");
    // The audit log, sightings and clients keep naming a deleted content's id: a new
    // content must not answer to it.
    store.delete_content(newest).unwrap();
    let next = add(&mut store, "after the delete");
    assert!(
        next > newest,
        "content {newest} was deleted and its id given again"
    );
    drop(store);
    let mut reopened = place.open();
    reopened.delete_content(next).unwrap();
    assert!(add(&mut reopened, "after a restart") > next);
}

fn a_bank_update_changes_what_it_names_and_nothing_else(place: Place) {
    let mut store = place.open();
    bank(&mut store, "BEFORE");
    let before = store.bank("BEFORE").unwrap();
    let renamed = BankUpdate {
        name: Some(BankName::new("AFTER").unwrap()),
        labels: Some(vec!["csam".to_string()]),
        enabled_ratio: Some(0.5),
        ..BankUpdate::default()
    };
    let after = store.update_bank("BEFORE", renamed).unwrap();
    assert_eq!(after.name.as_str(), "AFTER");
    assert_eq!(
        (after.labels.clone(), after.enabled_ratio),
        (vec!["csam".to_string()], 0.5)
    );
    assert_eq!(
        (&after.description, after.enabled, after.negative),
        (&before.description, true, false)
    );
    assert_eq!(after.thresholds, before.thresholds);
    let rest = BankUpdate {
        description: Some("known".to_string()),
        enabled: Some(false),
        negative: Some(true),
        thresholds: Some(BTreeMap::from([("pdq".to_string(), 10)])),
        ..BankUpdate::default()
    };
    let last = store.update_bank("AFTER", rest).unwrap();
    assert_eq!(
        (last.description.as_str(), last.enabled, last.negative),
        ("known", false, true)
    );
    assert_eq!(
        (last.labels.clone(), last.enabled_ratio),
        (vec!["csam".to_string()], 0.5)
    );
    assert_eq!(last.thresholds["pdq"], 10);
    assert_eq!(store.bank("AFTER").unwrap(), last);
    assert!(matches!(store.bank("BEFORE"), Err(StoreError::NoSuchBank(_))));

    // A name taken is refused, and nothing of the update is kept.
    bank(&mut store, "TAKEN");
    let onto_taken = BankUpdate {
        name: Some(BankName::new("TAKEN").unwrap()),
        description: Some("lost".to_string()),
        ..BankUpdate::default()
    };
    let refused = store.update_bank("AFTER", onto_taken);
    assert!(
        matches!(refused, Err(StoreError::BankExists(ref name)) if name == "TAKEN"),
        "{refused:?}"
    );
    assert_eq!(store.bank("AFTER").unwrap(), last);
    let again = store.create_bank(&BankName::new("TAKEN").unwrap(), NewBank::default());
    assert!(
        matches!(again, Err(StoreError::BankExists(ref name)) if name == "TAKEN"),
        "{again:?}"
    );
}

fn a_content_update_lands_whole_or_not_at_all(place: Place) {
    let mut store = place.open();
    bank(&mut store, "NOTED");
    let mut writer = store.content_writer("NOTED").unwrap();
    let id = writer.insert(&NewContent::default()).unwrap();
    writer.commit().unwrap();
    let before = store.last_change().unwrap();
    let update = ContentUpdate {
        note: Some("reviewed".to_string()),
        disabled_until: Some(Some("9999-01-01T00:00:00.000Z".to_string())),
    };
    // The disabled time's change-feed row, written after the note and its audit entry, is
    // refused: none of the update may stay.
    let (refuse, allow) = match place {
        Place::Sqlite(_) => (
            "CREATE TRIGGER refuse BEFORE INSERT ON change_log BEGIN SELECT RAISE(ABORT, 'refused'); END;",
            "DROP TRIGGER refuse;",
        ),
        Place::Postgres(_) => (
            "CREATE TRIGGER refuse BEFORE INSERT ON change_log FOR EACH ROW
             EXECUTE FUNCTION cordon_refuse_change('refused');",
            "DROP TRIGGER refuse ON change_log;",
        ),
    };
    place.raw_sql(refuse).unwrap();
    assert!(store.update_content(id, &update).is_err());
    let content = store.content(id).unwrap();
    assert_eq!((content.note.as_str(), content.disabled_until), ("", None));
    assert_eq!(
        store.verify_audit().unwrap().entries,
        2,
        "only the bank and its content"
    );

    place.raw_sql(allow).unwrap();
    store.update_content(id, &update).unwrap();
    let content = store.content(id).unwrap();
    assert_eq!(content.note, "reviewed");
    assert_eq!(
        content.disabled_until.as_deref(),
        Some("9999-01-01T00:00:00.000Z")
    );
    assert_eq!(
        audit_events(&store, 2),
        ["content.note", "content.disabled_until"]
    );
    let told = store.changes_after(before, 10).unwrap();
    let until = Some("9999-01-01T00:00:00.000Z".to_string());
    assert_eq!(told.len(), 1);
    assert_eq!(told[0].kind, ChangeKind::ContentDisabled { until });

    // A field left out is left as it is; content that is not there is said to be missing.
    store.update_content(id, &ContentUpdate::default()).unwrap();
    let cleared = ContentUpdate {
        disabled_until: Some(None),
        ..ContentUpdate::default()
    };
    store.update_content(id, &cleared).unwrap();
    let content = store.content(id).unwrap();
    assert_eq!(
        (content.note.as_str(), content.disabled_until),
        ("reviewed", None)
    );
    for update in [ContentUpdate::default(), cleared] {
        let missing = store.update_content(id + 1, &update);
        assert!(
            matches!(missing, Err(StoreError::NoSuchContent(_))),
            "{missing:?}"
        );
    }
}

/// Provenance asks for every sighting of a picture at once, which for one that went viral
/// is thousands: they are read a batch of ids at a time, and none may be lost or doubled
/// at a batch's edge.
fn sightings_are_read_whole_however_many_are_asked_for(place: Place) {
    let mut store = place.open();
    bank(&mut store, "VIRAL");
    let mut writer = store.content_writer("VIRAL").unwrap();
    let facts = cordon_store::MediaFacts::default();
    let ids: Vec<i64> = (1..=1201)
        .map(|content| writer.record_sighting(content, &facts).unwrap())
        .collect();
    writer.commit().unwrap();
    // Newest first, an id that is not there, and some asked for twice.
    let mut asked: Vec<i64> = ids.iter().rev().copied().collect();
    asked.push(ids.iter().max().unwrap() + 1000);
    asked.extend_from_slice(&ids[..3]);
    let found = store.sightings(&asked).unwrap();
    let found_ids: Vec<i64> = found.iter().map(|s| s.id).collect();
    assert_eq!(found_ids, ids, "each once, oldest first");
    assert!(found.iter().all(|s| s.bank.as_deref() == Some("VIRAL")));
    assert_eq!(store.sightings(&[]).unwrap(), Vec::new());
}
