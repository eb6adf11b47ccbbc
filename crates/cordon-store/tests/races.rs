//! Two connections making one change at once, or two changes that exclude each other: what
//! each checks before it writes still holds when it writes, so one makes the change and the
//! other is told why not, with nothing in the audit log or the change feed for a change that
//! touched nothing. Each race is run many times: its window is short, and each round is one
//! more chance to hit it.

use std::collections::BTreeMap;
use std::sync::Barrier;

use cordon_store::{
    BankName, BankUpdate, ChangeKind, ContentId, FloodRecord, NewBank, NewContent, NewDecision,
    NewQuarantine, NewSubmission, Recorded, Signal, Store, StoreError, WindowHits,
};

use crate::place::{Place, on_both_backends};

on_both_backends!(
    content_deleted_twice_at_once_is_deleted_and_recorded_once,
    content_added_to_a_bank_as_it_is_deleted_is_added_and_deleted_or_refused,
    a_bank_deleted_twice_at_once_is_deleted_and_recorded_once,
    a_bank_updated_as_it_is_deleted_is_recorded_only_when_updated,
    one_bank_name_taken_twice_at_once_is_taken_once,
    one_key_name_created_twice_at_once_is_created_once,
    one_content_id_submitted_twice_at_once_is_recorded_once_and_repeated_once,
    an_account_appealing_twice_at_once_has_one_pending_appeal,
    an_appeal_decided_twice_at_once_is_decided_once,
    pending_duplicates_an_older_store_holds_are_closed_but_the_oldest,
    content_counted_as_it_is_deleted_is_counted_or_left_alone,
    content_quarantined_as_it_is_deleted_is_quarantined_or_left_alone,
    content_quarantined_as_its_bank_is_deleted_is_quarantined_or_left_alone,
    content_disabled_as_it_is_deleted_is_disabled_or_refused,
    a_quarantine_released_as_its_content_is_deleted_is_released_or_refused,
);

/// How many times each race is run.
const ROUNDS: usize = 150;

/// Runs `first` and `second` at once, each on a connection of its own to `place`, [`ROUNDS`]
/// times, the two starting each round together; answers each round's two outcomes.
fn race<A: Send, B: Send>(
    place: &Place,
    first: impl Fn(&mut Store, usize) -> A + Sync,
    second: impl Fn(&mut Store, usize) -> B + Sync,
) -> Vec<(A, B)> {
    let (mut one, mut two) = (place.open(), place.open());
    let start = Barrier::new(2);
    std::thread::scope(|scope| {
        let firsts = scope.spawn(|| rounds(&start, &mut one, &first));
        let seconds = scope.spawn(|| rounds(&start, &mut two, &second));
        let (firsts, seconds) = (firsts.join().unwrap(), seconds.join().unwrap());
        firsts.into_iter().zip(seconds).collect()
    })
}

/// One side of [`race`]: each round, waits for the other side, then runs `each`.
fn rounds<T>(start: &Barrier, store: &mut Store, each: &impl Fn(&mut Store, usize) -> T) -> Vec<T> {
    (0..ROUNDS)
        .map(|round| {
            start.wait();
            each(store, round)
        })
        .collect()
}

/// A round's two outcomes.
type Outcomes<A, B> = (Result<A, StoreError>, Result<B, StoreError>);

/// Whether exactly one of a round's two outcomes succeeded and the other failed as `lost` says.
fn one_won<A, B>(outcomes: &Outcomes<A, B>, lost: impl Fn(&StoreError) -> bool) -> bool {
    match outcomes {
        (Ok(_), Err(error)) | (Err(error), Ok(_)) => lost(error),
        _ => false,
    }
}

/// How many entries of the audit log record `event`.
fn audited(store: &Store, event: &str) -> usize {
    store
        .audit_entries(0)
        .unwrap()
        .iter()
        .filter(|e| e.event == event)
        .count()
}

/// How many rows of the change feed are of the kind `kind` matches.
fn fed(store: &Store, kind: impl Fn(&ChangeKind) -> bool) -> usize {
    store
        .changes_after(0, 1_000_000)
        .unwrap()
        .iter()
        .filter(|c| kind(&c.kind))
        .count()
}

fn new_bank(store: &mut Store, name: &str) {
    let bank = NewBank {
        thresholds: BTreeMap::from([("pdq".to_string(), 31)]),
        ..NewBank::default()
    };
    store.create_bank(&BankName::new(name).unwrap(), bank).unwrap();
}

fn bank_name(round: usize) -> String {
    format!("RACE_{round}")
}

/// Adds `count` pieces of content, each with a PDQ signal, to bank `bank` (created here).
fn new_contents(store: &mut Store, bank: &str, count: usize) -> Vec<ContentId> {
    new_bank(store, bank);
    let mut writer = store.content_writer(bank).unwrap();
    let ids = (0..count)
        .map(|_| {
            let pdq = Signal {
                signal_type: "pdq".to_string(),
                value: "ab".repeat(32),
            };
            writer
                .insert(&NewContent {
                    signals: vec![pdq],
                    ..NewContent::default()
                })
                .unwrap()
        })
        .collect();
    writer.commit().unwrap();
    ids
}

/// Makes `round % 12` round trips to the store first: the two sides of a race start
/// together, so without it each round would hit much the same moment of the other's
/// transaction; with it, the rounds sweep across it.
fn stagger(store: &Store, round: usize) {
    for _ in 0..round % 12 {
        store.last_change().unwrap();
    }
}

fn content_deleted_twice_at_once_is_deleted_and_recorded_once(place: Place) {
    let mut store = place.open();
    let ids = new_contents(&mut store, "RACE", ROUNDS);
    let delete = |store: &mut Store, round: usize| store.delete_content(ids[round]);
    for (round, outcomes) in race(&place, delete, delete).iter().enumerate() {
        let gone = |e: &StoreError| matches!(e, StoreError::NoSuchContent(id) if *id == ids[round]);
        assert!(one_won(outcomes, gone), "round {round}: {outcomes:?}");
    }
    assert_eq!(audited(&store, "content.deleted"), ROUNDS);
    let removed = |kind: &ChangeKind| matches!(kind, ChangeKind::ContentRemoved { .. });
    assert_eq!(fed(&store, removed), ROUNDS);
}

fn content_added_to_a_bank_as_it_is_deleted_is_added_and_deleted_or_refused(place: Place) {
    let mut store = place.open();
    for round in 0..ROUNDS {
        new_bank(&mut store, &bank_name(round));
    }
    let add = |store: &mut Store, round: usize| {
        let mut writer = store.content_writer(&bank_name(round))?;
        writer.insert(&NewContent::default())?;
        writer.commit()
    };
    let delete = |store: &mut Store, round: usize| store.delete_bank(&bank_name(round));
    let mut added = 0;
    for (round, outcomes) in race(&place, add, delete).iter().enumerate() {
        match outcomes {
            // Added first, then deleted with its bank.
            (Ok(1), Ok(1)) => added += 1,
            (Err(StoreError::NoSuchBank(name)), Ok(0)) if *name == bank_name(round) => {}
            other => panic!("round {round}: {other:?}"),
        }
    }
    assert_eq!(audited(&store, "content.added"), added);
    assert_eq!(audited(&store, "bank.deleted"), ROUNDS);
}

fn a_bank_deleted_twice_at_once_is_deleted_and_recorded_once(place: Place) {
    let mut store = place.open();
    for round in 0..ROUNDS {
        new_bank(&mut store, &bank_name(round));
    }
    let delete = |store: &mut Store, round: usize| store.delete_bank(&bank_name(round));
    for (round, outcomes) in race(&place, delete, delete).iter().enumerate() {
        let gone = |e: &StoreError| matches!(e, StoreError::NoSuchBank(name) if *name == bank_name(round));
        assert!(one_won(outcomes, gone), "round {round}: {outcomes:?}");
    }
    assert_eq!(audited(&store, "bank.deleted"), ROUNDS);
    // Each bank's creation and deletion.
    assert_eq!(fed(&store, |kind| *kind == ChangeKind::BankChanged), 2 * ROUNDS);
}

fn a_bank_updated_as_it_is_deleted_is_recorded_only_when_updated(place: Place) {
    let mut store = place.open();
    for round in 0..ROUNDS {
        new_bank(&mut store, &bank_name(round));
    }
    let update = |store: &mut Store, round: usize| {
        let update = BankUpdate {
            description: Some("updated".to_string()),
            ..BankUpdate::default()
        };
        store.update_bank(&bank_name(round), update)
    };
    let delete = |store: &mut Store, round: usize| store.delete_bank(&bank_name(round));
    let mut updated = 0;
    for (round, outcomes) in race(&place, update, delete).iter().enumerate() {
        match outcomes {
            (Ok(bank), Ok(_)) if bank.description == "updated" => updated += 1,
            (Err(StoreError::NoSuchBank(name)), Ok(_)) if *name == bank_name(round) => {}
            other => panic!("round {round}: {other:?}"),
        }
    }
    assert_eq!(audited(&store, "bank.updated"), updated);
    assert_eq!(audited(&store, "bank.deleted"), ROUNDS);
    assert_eq!(
        fed(&store, |kind| *kind == ChangeKind::BankChanged),
        2 * ROUNDS + updated
    );
}

fn one_bank_name_taken_twice_at_once_is_taken_once(place: Place) {
    let mut store = place.open();
    for round in 0..ROUNDS {
        new_bank(&mut store, &format!("OLD_{round}"));
    }
    let create = |store: &mut Store, round: usize| {
        let name = BankName::new(&bank_name(round)).unwrap();
        store.create_bank(&name, NewBank::default())
    };
    let rename = |store: &mut Store, round: usize| {
        let update = BankUpdate {
            name: Some(BankName::new(&bank_name(round)).unwrap()),
            ..BankUpdate::default()
        };
        store.update_bank(&format!("OLD_{round}"), update)
    };
    for (round, outcomes) in race(&place, create, rename).iter().enumerate() {
        let taken = |e: &StoreError| matches!(e, StoreError::BankExists(name) if *name == bank_name(round));
        assert!(one_won(outcomes, taken), "round {round}: {outcomes:?}");
    }
    // The setup's banks were created too.
    let created = audited(&store, "bank.created") - ROUNDS;
    let renamed = audited(&store, "bank.updated");
    assert_eq!(created + renamed, ROUNDS);
    assert_eq!(store.banks().unwrap().len(), ROUNDS + created);
}

fn one_key_name_created_twice_at_once_is_created_once(place: Place) {
    let create = |side: &'static str| {
        move |store: &mut Store, round: usize| {
            let id = format!("{side}{round:015x}");
            store.create_key(&id, &format!("key-{round}"), "submitter", &[1; 32])
        }
    };
    for (round, outcomes) in race(&place, create("a"), create("b")).iter().enumerate() {
        let taken =
            |e: &StoreError| matches!(e, StoreError::KeyExists(name) if *name == format!("key-{round}"));
        assert!(one_won(outcomes, taken), "round {round}: {outcomes:?}");
    }
    let store = place.open();
    assert_eq!(store.keys().unwrap().len(), ROUNDS);
    assert_eq!(audited(&store, "key.created"), ROUNDS);
}

fn submission(content_id: String, account_id: String) -> NewSubmission {
    NewSubmission {
        content_id,
        account_id,
        sha256: "00".repeat(32),
        size: 1,
        ..NewSubmission::default()
    }
}

/// Records `submission` with `decisions`, answering with its id.
fn record(
    store: &mut Store,
    submission: &NewSubmission,
    decisions: &[NewDecision],
) -> Result<Recorded, StoreError> {
    store.record_submission(
        submission,
        decisions,
        &[],
        |_, _, _| String::new(),
        |id, _| format!("answer {id}"),
    )
}

fn one_content_id_submitted_twice_at_once_is_recorded_once_and_repeated_once(place: Place) {
    let submit = |account: &'static str| {
        move |store: &mut Store, round: usize| {
            record(
                store,
                &submission(format!("upload-{round}"), account.to_string()),
                &[],
            )
        }
    };
    for (round, outcomes) in race(&place, submit("one"), submit("two")).iter().enumerate() {
        let once = match outcomes {
            (
                Ok(Recorded::New { id, response }),
                Ok(Recorded::Repeat {
                    id: again,
                    response: first,
                }),
            )
            | (
                Ok(Recorded::Repeat {
                    id: again,
                    response: first,
                }),
                Ok(Recorded::New { id, response }),
            ) => id == again && response == first,
            _ => false,
        };
        assert!(once, "round {round}: {outcomes:?}");
    }
}

/// Suspends `account` (by a decision on an upload of its).
fn suspend(store: &mut Store, account: &str) {
    let decision = NewDecision {
        action: "suspend_account".to_string(),
        rule: "strikes".to_string(),
        reason: "too many".to_string(),
        strike: None,
    };
    let upload = submission(format!("upload-of-{account}"), account.to_string());
    record(store, &upload, &[decision]).unwrap();
}

fn an_account_appealing_twice_at_once_has_one_pending_appeal(place: Place) {
    let mut store = place.open();
    let account = |round: usize| format!("account-{round}");
    for round in 0..ROUNDS {
        suspend(&mut store, &account(round));
    }
    let appeal = |store: &mut Store, round: usize| store.file_appeal(&account(round), "a mistake");
    for (round, outcomes) in race(&place, appeal, appeal).iter().enumerate() {
        let filed = match outcomes {
            (Ok(filed), _) | (_, Ok(filed)) => filed.id,
            _ => panic!("round {round}: {outcomes:?}"),
        };
        let pending = |e: &StoreError| {
            matches!(e, StoreError::AppealPending { account_id, appeal_id }
                if *account_id == account(round) && *appeal_id == filed)
        };
        assert!(one_won(outcomes, pending), "round {round}: {outcomes:?}");
    }
    assert_eq!(store.pending_appeals().unwrap().len(), ROUNDS);
    assert_eq!(audited(&store, "appeal.filed"), ROUNDS);
}

fn an_appeal_decided_twice_at_once_is_decided_once(place: Place) {
    let mut store = place.open();
    let appeals: Vec<i64> = (0..ROUNDS)
        .map(|round| {
            let account = format!("account-{round}");
            suspend(&mut store, &account);
            store.file_appeal(&account, "a mistake").unwrap().id
        })
        .collect();
    let appeals = &appeals;
    let decide = |reviewer: &'static str| {
        move |store: &mut Store, round: usize| {
            let webhooks = ["https://platform.example/hook".to_string()];
            store.decide_appeal(appeals[round], reviewer, true, "granted", &webhooks, |_, _, _| {
                String::new()
            })
        }
    };
    for (round, outcomes) in race(&place, decide("alice"), decide("bob")).iter().enumerate() {
        let decided = |e: &StoreError| matches!(e, StoreError::AppealDecided(id) if *id == appeals[round]);
        assert!(one_won(outcomes, decided), "round {round}: {outcomes:?}");
    }
    assert_eq!(audited(&store, "appeal.decided"), ROUNDS);
    // One reinstatement per account, and one delivery of it.
    let reinstated = store.audit_entries(0).unwrap();
    let reinstated = reinstated
        .iter()
        .filter(|e| e.event == "decision.made" && e.data["action"] == "reinstate_account")
        .count();
    assert_eq!(reinstated, ROUNDS);
    assert_eq!(store.pending_delivery_count().unwrap(), ROUNDS as u64);
}

fn pending_duplicates_an_older_store_holds_are_closed_but_the_oldest(place: Place) {
    let mut store = place.open();
    suspend(&mut store, "once");
    suspend(&mut store, "thrice");
    let once = store.file_appeal("once", "only").unwrap();
    drop(store);
    // A store before migration 13, where appeals filed at once were all left pending.
    let version = match place {
        Place::Sqlite(_) => "PRAGMA user_version = 12",
        Place::Postgres(_) => "UPDATE schema_version SET version = 12",
    };
    place
        .raw_sql(&format!(
            "DROP INDEX appeal_one_pending; {version};
             INSERT INTO appeal (account_id, reason, created_at) VALUES
                 ('thrice', 'first', '2026-12-01T00:00:00.000Z'),
                 ('thrice', 'second', '2026-12-01T00:00:00.001Z'),
                 ('thrice', 'third', '2026-12-01T00:00:00.002Z');"
        ))
        .unwrap();
    let mut store = place.open();
    let pending = store.pending_appeals().unwrap();
    let reasons: Vec<&str> = pending.iter().map(|a| a.reason.as_str()).collect();
    assert_eq!(reasons, ["first", "only"]);
    for duplicate in [once.id + 2, once.id + 3] {
        let closed = store.appeal(duplicate).unwrap().unwrap();
        assert_eq!(
            (closed.state.as_str(), closed.decided_by.as_deref()),
            ("rejected", Some("cordon"))
        );
    }
    let first = pending[0].id;
    let again = store.file_appeal("thrice", "fourth");
    assert!(
        matches!(again, Err(StoreError::AppealPending { appeal_id, .. }) if appeal_id == first),
        "{again:?}"
    );
}

/// The flood guard's window the races count in, and the start of the counts they read.
const WINDOW: &str = "2026-12-01T00:00:00.000Z";

fn content_counted_as_it_is_deleted_is_counted_or_left_alone(place: Place) {
    let mut store = place.open();
    let ids = new_contents(&mut store, "RACE", ROUNDS);
    let count = |store: &mut Store, round: usize| {
        stagger(store, round);
        store.count_hits(&[ids[round]], WINDOW, WINDOW)
    };
    let delete = |store: &mut Store, round: usize| store.delete_content(ids[round]);
    for (round, outcomes) in race(&place, count, delete).iter().enumerate() {
        let once = [WindowHits {
            content_id: ids[round],
            window_start: WINDOW.to_string(),
            hits: 1,
        }];
        match outcomes {
            // Counted before it went, or not at all.
            (Ok(hits), Ok(_)) if hits.is_empty() || *hits == once => {}
            other => panic!("round {round}: {other:?}"),
        }
    }
    // Deleted content's counts went with it.
    assert_eq!(store.content_hits(&ids, WINDOW).unwrap(), []);
}

/// An upload whose hits quarantine `content_id`, of bank `bank`.
fn quarantining(round: usize, content_id: ContentId, bank: &str) -> NewSubmission {
    NewSubmission {
        flood: FloodRecord {
            quarantines: vec![NewQuarantine {
                content_id,
                bank: bank.to_string(),
                reason: "a flood".to_string(),
            }],
        },
        ..submission(format!("upload-{round}"), "flooder".to_string())
    }
}

/// Checks that every round's upload was recorded and its entry deleted, and that no
/// quarantine was recorded after its content was deleted (`deleted` names the audit event
/// of the deletion and the content or bank it names).
fn quarantined_only_before_deleted<D: std::fmt::Debug>(
    store: &Store,
    outcomes: &[Outcomes<Recorded, D>],
    deleted: (&str, &str),
) {
    for (round, outcome) in outcomes.iter().enumerate() {
        assert!(
            matches!(outcome, (Ok(Recorded::New { .. }), Ok(_))),
            "round {round}: {outcome:?}"
        );
    }
    assert_eq!(store.quarantines().unwrap(), []);
    let quarantined = |kind: &ChangeKind| matches!(kind, ChangeKind::ContentQuarantined { .. });
    assert_eq!(fed(store, quarantined), audited(store, "flood.quarantined"));
    let entries = store.audit_entries(0).unwrap();
    let (event, key) = deleted;
    for (at, entry) in entries.iter().enumerate() {
        if entry.event == "flood.quarantined" {
            let gone = entries[..at]
                .iter()
                .any(|e| e.event == event && e.data[key] == entry.data[key]);
            assert!(!gone, "quarantined after it was deleted: {entry:?}");
        }
    }
}

fn content_quarantined_as_it_is_deleted_is_quarantined_or_left_alone(place: Place) {
    let mut store = place.open();
    let ids = new_contents(&mut store, "RACE", ROUNDS);
    let quarantine =
        |store: &mut Store, round: usize| record(store, &quarantining(round, ids[round], "RACE"), &[]);
    let delete = |store: &mut Store, round: usize| {
        stagger(store, round);
        store.delete_content(ids[round])
    };
    let outcomes = race(&place, quarantine, delete);
    quarantined_only_before_deleted(&store, &outcomes, ("content.deleted", "content_id"));
}

fn content_quarantined_as_its_bank_is_deleted_is_quarantined_or_left_alone(place: Place) {
    let mut store = place.open();
    let ids: Vec<ContentId> = (0..ROUNDS)
        .map(|round| new_contents(&mut store, &bank_name(round), 1)[0])
        .collect();
    let quarantine = |store: &mut Store, round: usize| {
        record(store, &quarantining(round, ids[round], &bank_name(round)), &[])
    };
    let delete = |store: &mut Store, round: usize| {
        stagger(store, round);
        store.delete_bank(&bank_name(round))
    };
    let outcomes = race(&place, quarantine, delete);
    quarantined_only_before_deleted(&store, &outcomes, ("bank.deleted", "bank"));
}

fn content_disabled_as_it_is_deleted_is_disabled_or_refused(place: Place) {
    let mut store = place.open();
    let ids = new_contents(&mut store, "RACE", ROUNDS);
    let disable = |store: &mut Store, round: usize| {
        stagger(store, round);
        store.set_content_disabled_until(ids[round], Some(WINDOW))
    };
    let delete = |store: &mut Store, round: usize| store.delete_content(ids[round]);
    let mut disabled = 0;
    for (round, outcomes) in race(&place, disable, delete).iter().enumerate() {
        match outcomes {
            (Ok(()), Ok(_)) => disabled += 1,
            (Err(StoreError::NoSuchContent(id)), Ok(_)) if *id == ids[round] => {}
            other => panic!("round {round}: {other:?}"),
        }
    }
    assert_eq!(audited(&store, "content.disabled_until"), disabled);
    assert_eq!(audited(&store, "content.deleted"), ROUNDS);
}

fn a_quarantine_released_as_its_content_is_deleted_is_released_or_refused(place: Place) {
    let mut store = place.open();
    let ids = new_contents(&mut store, "RACE", ROUNDS);
    for (round, id) in ids.iter().enumerate() {
        record(&mut store, &quarantining(round, *id, "RACE"), &[]).unwrap();
    }
    let release = |store: &mut Store, round: usize| store.release_quarantine(ids[round]);
    let delete = |store: &mut Store, round: usize| {
        stagger(store, round);
        store.delete_content(ids[round])
    };
    let mut released = 0;
    for (round, outcomes) in race(&place, release, delete).iter().enumerate() {
        match outcomes {
            (Ok(_), Ok(_)) => released += 1,
            (Err(StoreError::NotQuarantined(id)), Ok(_)) if *id == ids[round] => {}
            other => panic!("round {round}: {other:?}"),
        }
    }
    assert_eq!(audited(&store, "flood.released"), released);
    assert_eq!(store.quarantines().unwrap(), []);
}
