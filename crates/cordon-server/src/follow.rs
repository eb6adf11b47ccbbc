//! Many nodes on one store: each follows the store's change feed to keep its in-memory
//! indexes live, and one of them, the leader, runs the background duties.
//!
//! Following: a cursor over the feed (`change_log`), read every [`POLL`] and, on PostgreSQL,
//! at once when a `NOTIFY` arrives on a connection that `LISTEN`s; rows this node wrote are
//! skipped (it applied them when it wrote them). The follower reads and applies holding the
//! index gate alone ([`AppState::try_indexes_alone`]), so every write of this node is in
//! its indexes before a later change of another node is applied over it. The cursor is
//! taken in the same snapshot the indexes are loaded from, so nothing is missed and
//! nothing applied twice, and after a lost connection the cursor simply reads on from
//! where it was.
//!
//! Leading: on PostgreSQL, the node that holds a session advisory lock delivers the webhook
//! outbox; when it dies its connection closes, the lock is free, and another node takes it
//! within [`LEADER_RETRY`]. A delivery in flight when a leader dies may go out twice, under
//! the same `Idempotency-Key`. The leader also purges the feed of changes older than
//! [`FEED_RETENTION`]; a node whose cursor the purge passed loads its indexes again. On
//! SQLite (one machine) every server leads.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use cordon_engine::matcher::MatcherError;
use cordon_signals::PdqHash;
use cordon_signals::features::FeatureSet;
use cordon_store::{CHANGE_CHANNEL, Change, ChangeKind, StoreError, StoreLocation};

use crate::state::{AppState, IndexesAlone};

/// How often the feed is read without a notification.
const POLL: Duration = Duration::from_millis(250);
/// Changes read at a time.
const PAGE: usize = 2000;
/// How often a node that does not lead tries to.
const LEADER_RETRY: Duration = Duration::from_secs(1);
/// Any number, as long as every node uses the same one: the leader's lock.
const LEADER_LOCK: i64 = 0x0063_6f72_646f_6e03;

/// Applies the feed forever: after every notification, and every [`POLL`].
pub async fn follow_forever(state: Arc<AppState>) {
    if let StoreLocation::Postgres(url) = state.location.clone() {
        let woken = state.clone();
        std::thread::spawn(move || listen_forever(&url, &woken));
    }
    let mut busy_rounds = 0;
    loop {
        let follower = state.clone();
        let wait = busy_rounds >= BUSY_ROUNDS_BEFORE_WAITING;
        match tokio::task::spawn_blocking(move || follow(&follower, wait)).await {
            Ok(Ok(Some(_))) => busy_rounds = 0,
            Ok(Ok(None)) => busy_rounds += 1,
            Ok(Err(error)) => eprintln!("cordon: following the change feed: {error}"),
            Err(error) => eprintln!("cordon: following the change feed: {error}"),
        }
        tokio::select! {
            () = state.changes_waiting.notified() => {}
            () = tokio::time::sleep(POLL) => {}
        }
    }
}

/// Rounds the follower leaves to writes in flight before it waits for them: a node busy
/// writing all the time would otherwise never apply the others' changes. Waiting, it holds
/// later writes up until the longest in flight (an import, say) is done.
const BUSY_ROUNDS_BEFORE_WAITING: u32 = 4;
/// How often, and how far apart, the follower tries for the index gate before it leaves
/// the round: writes hold it for the length of a commit.
const GATE_TRIES: u32 = 20;
const GATE_RETRY: Duration = Duration::from_millis(1);

/// Applies every change other nodes made after the cursor, a page at a time, each page
/// holding the index gate alone (waited for when `wait`, else tried for), so that no change
/// overtakes a write of this node still on its way to the indexes; between pages this
/// node's writes go on. Answers how many it applied, or `None` when writes kept it out.
fn follow(state: &AppState, wait: bool) -> Result<Option<usize>, MatcherError> {
    let mut applied = 0;
    loop {
        let alone = if wait {
            Some(state.indexes_alone())
        } else {
            try_indexes_alone(state)
        };
        let Some(alone) = alone else {
            return Ok(None);
        };
        match apply_page(state, &alone)? {
            Page::More(count) => applied += count,
            Page::Last(count) => return Ok(Some(applied + count)),
        }
    }
}

/// How many changes a page applied, and whether more may follow.
enum Page {
    More(usize),
    Last(usize),
}

fn apply_page(state: &AppState, alone: &IndexesAlone<'_>) -> Result<Page, MatcherError> {
    let after = state.feed_cursor.load(Ordering::Acquire);
    let (changes, own, fell_behind) = {
        let store = state.store();
        let changes = store.changes_after(after, PAGE)?;
        // A gap after the cursor is either numbers never used (rolled back) or changes
        // purged before this node read them: then only a full load is sure.
        let gap = changes.first().is_some_and(|c| c.seq > after + 1);
        let fell_behind = gap && store.first_change()? > after + 1;
        (changes, store.node().to_string(), fell_behind)
    };
    if fell_behind {
        eprintln!("cordon: the change feed no longer reaches back to {after}: loading the indexes again");
        state.reload_indexes(alone)?;
        return Ok(Page::Last(0));
    }
    let Some(last) = changes.last().map(|c| c.seq) else {
        return Ok(Page::Last(0));
    };
    // A revocation is applied whoever made it: this node's key checks do not go through
    // the code that revoked it.
    let needed = |c: &&Change| c.node != own || matches!(c.kind, ChangeKind::KeyRevoked { .. });
    let mut applied = 0;
    for change in changes.iter().filter(needed) {
        apply(state, change)?;
        applied += 1;
    }
    state.feed_cursor.store(last, Ordering::Release);
    Ok(Page::More(applied))
}

fn try_indexes_alone(state: &AppState) -> Option<IndexesAlone<'_>> {
    for _ in 1..GATE_TRIES {
        if let Some(alone) = state.try_indexes_alone() {
            return Some(alone);
        }
        std::thread::sleep(GATE_RETRY);
    }
    state.try_indexes_alone()
}

fn apply(state: &AppState, change: &Change) -> Result<(), StoreError> {
    let (bank, content) = (change.bank_id, change.content_id);
    match &change.kind {
        ChangeKind::ContentAdded { signals } => {
            let (Some(bank), Some(content)) = (bank, content) else {
                return Ok(());
            };
            let mut matcher = state.matcher_mut();
            for signal in signals {
                match signal.signal_type.as_str() {
                    "pdq" => {
                        if let Ok(hash) = signal.value.parse::<PdqHash>() {
                            let _ = matcher.add_pdq(bank, content, hash);
                        }
                    }
                    "features" => {
                        if let Ok(features) = signal.value.parse::<FeatureSet>() {
                            let _ = matcher.add_features(bank, content, features);
                        }
                    }
                    _ => {}
                }
            }
        }
        ChangeKind::ContentRemoved { pdq } => {
            let (Some(bank), Some(content)) = (bank, content) else {
                return Ok(());
            };
            let mut matcher = state.matcher_mut();
            for hash in pdq.iter().filter_map(|h| h.parse::<PdqHash>().ok()) {
                matcher.remove_pdq(bank, content, hash);
            }
            matcher.remove_features(bank, content);
        }
        ChangeKind::ContentDisabled { until } => {
            if let Some(content) = content {
                state.matcher_mut().set_disabled_until(content, until.clone());
            }
        }
        ChangeKind::ContentQuarantined { bank } => {
            if let Some(content) = content {
                state.flood().quarantine(content, bank);
            }
        }
        ChangeKind::ContentReleased => {
            if let Some(content) = content {
                state.flood().release(content);
            }
        }
        ChangeKind::BankChanged => {
            let Some(bank) = bank else { return Ok(()) };
            let found = state.store().bank_by_id(bank)?;
            let mut matcher = state.matcher_mut();
            match found {
                Some(found) => matcher.set_bank(&found),
                None => matcher.remove_bank(bank),
            }
        }
        ChangeKind::SightingAdded { pdq, quality } => {
            if let (Some(sighting), Some(hash)) = (content, pdq.as_deref().and_then(|h| h.parse().ok())) {
                state.ledger_mut().add_recorded(sighting, hash, *quality);
            }
        }
        ChangeKind::KeyRevoked { id } => state.keys.forget(id),
        ChangeKind::Unknown { .. } => {}
    }
    Ok(())
}

/// How long changes stay in the feed: far longer than any running node lags (it reads the
/// feed every [`POLL`]); a node that still falls behind it loads its indexes again.
pub const FEED_RETENTION: time::Duration = time::Duration::hours(24);
/// How often the leader purges the feed.
const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// On the leader, deletes the feed's changes older than [`FEED_RETENTION`] and the flood
/// guard's counts older than its history, every [`PURGE_EVERY`]: without it the feed would
/// grow by a row for every hash ever added, the counts by one per entry and window.
pub async fn purge_old_rows_forever(state: Arc<AppState>) {
    loop {
        tokio::time::sleep(PURGE_EVERY).await;
        if !state.leading.load(Ordering::Acquire) {
            continue;
        }
        let purger = state.clone();
        let now = time::OffsetDateTime::now_utc();
        let before = cordon_store::format_time(now - FEED_RETENTION);
        let counted_since = cordon_store::format_time(state.flood().config().history_start(now));
        let purged = tokio::task::spawn_blocking(move || {
            let mut store = purger.store();
            store.purge_changes(&before)?;
            store.purge_content_hits(&counted_since)
        });
        match purged.await {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => eprintln!("cordon: purging the change feed and flood counts: {error}"),
            Err(error) => eprintln!("cordon: purging the change feed and flood counts: {error}"),
        }
    }
}

/// Wakes the follower whenever PostgreSQL notifies a change; reconnects when the
/// connection is lost (the cursor catches up on whatever came meanwhile).
fn listen_forever(url: &str, state: &AppState) {
    loop {
        if let Err(error) = listen(url, state) {
            eprintln!("cordon: listening for changes: {error}; reconnecting");
        }
        std::thread::sleep(LEADER_RETRY);
        state.changes_waiting.notify_one();
    }
}

fn listen(url: &str, state: &AppState) -> Result<(), StoreError> {
    use postgres::fallible_iterator::FallibleIterator;
    let mut client = cordon_store::connect_postgres(url)?;
    client.batch_execute(&format!("LISTEN {CHANGE_CHANNEL}"))?;
    let mut notifications = client.notifications();
    let mut arriving = notifications.blocking_iter();
    while arriving.next()?.is_some() {
        state.changes_waiting.notify_one();
    }
    Ok(())
}

/// Keeps trying to lead (PostgreSQL); `state.leading` says whether this node does.
pub fn lead_forever(state: Arc<AppState>) {
    let StoreLocation::Postgres(url) = state.location.clone() else {
        state.leading.store(true, Ordering::Release);
        return;
    };
    std::thread::spawn(move || {
        loop {
            if let Err(error) = lead(&url, &state) {
                eprintln!("cordon: leader election: {error}");
            }
            state.leading.store(false, Ordering::Release);
            std::thread::sleep(LEADER_RETRY);
        }
    });
}

/// Holds the leader's lock while the connection lives; returns when it is lost.
fn lead(url: &str, state: &AppState) -> Result<(), StoreError> {
    let mut client = cordon_store::connect_postgres(url)?;
    loop {
        let won: bool = client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&LEADER_LOCK])?
            .get(0);
        if won {
            eprintln!("cordon: this node leads (webhook deliveries)");
            state.leading.store(true, Ordering::Release);
            state.deliveries.notify_one();
            // The lock is the connection's: check that it still lives.
            loop {
                std::thread::sleep(LEADER_RETRY);
                client.simple_query("SELECT 1")?;
            }
        }
        std::thread::sleep(LEADER_RETRY);
    }
}

#[cfg(test)]
mod tests {
    use cordon_engine::policy::Policy;
    use cordon_signals::DecodeLimits;
    use cordon_store::{BankName, NewBank, NewContent, Signal, Store, StoreLocation};

    use super::*;
    use crate::banking::DISABLED_FOR_GOOD;

    fn add_content(store: &mut Store, hash: &str) -> cordon_store::ContentId {
        let mut writer = store.content_writer("FEED").unwrap();
        let id = writer
            .insert(&NewContent {
                signals: vec![Signal {
                    signal_type: "pdq".to_string(),
                    value: hash.to_string(),
                }],
                ..NewContent::default()
            })
            .unwrap();
        writer.commit().unwrap();
        id
    }

    /// Another process on the store, which made the bank `FEED`: its changes reach a node
    /// only through the feed.
    fn another_process_with_a_bank(location: &StoreLocation) -> Store {
        let mut other = Store::open_at(location).unwrap();
        let bank = NewBank {
            enabled: true,
            thresholds: [("pdq".to_string(), 31)].into(),
            ..NewBank::default()
        };
        other.create_bank(&BankName::new("FEED").unwrap(), bank).unwrap();
        other
    }

    fn matched(state: &AppState, hash: &str) -> bool {
        !state.matcher().match_pdq(&hash.parse().unwrap()).is_empty()
    }

    #[test]
    fn another_nodes_newer_change_is_not_overtaken_by_this_nodes_older_one() {
        let data = tempfile::tempdir().unwrap();
        let location = StoreLocation::in_data_folder(data.path());
        let mut other = another_process_with_a_bank(&location);
        let hash = "a".repeat(64);
        let content = add_content(&mut other, &hash);
        let state =
            AppState::open_at(&location, DecodeLimits::default(), Policy::parse("").unwrap()).unwrap();
        assert!(matched(&state, &hash));

        // A request on this node disables the content and commits...
        let writing = state.writing_indexes();
        let disabled = Some(DISABLED_FOR_GOOD);
        state
            .store()
            .set_content_disabled_until(content, disabled)
            .unwrap();
        // ...another node enables it again, after, and the follower polls...
        other.set_content_disabled_until(content, None).unwrap();
        assert_eq!(
            follow(&state, false).unwrap(),
            None,
            "nothing while a write is in flight"
        );
        // ...before the request gets to its indexes.
        state
            .matcher_mut()
            .set_disabled_until(content, disabled.map(str::to_string));
        drop(writing);

        assert_eq!(follow(&state, false).unwrap(), Some(1));
        assert!(matched(&state, &hash), "the newer change, enabled, holds");
    }

    #[test]
    fn a_follower_kept_out_by_writes_waits_for_them_when_told() {
        let data = tempfile::tempdir().unwrap();
        let location = StoreLocation::in_data_folder(data.path());
        let mut other = another_process_with_a_bank(&location);
        let state =
            AppState::open_at(&location, DecodeLimits::default(), Policy::parse("").unwrap()).unwrap();
        let hash = "a".repeat(64);
        add_content(&mut other, &hash);

        let writing = state.writing_indexes();
        assert_eq!(follow(&state, false).unwrap(), None);
        std::thread::scope(|scope| {
            let waiting = scope.spawn(|| follow(&state, true).unwrap());
            std::thread::sleep(Duration::from_millis(20));
            drop(writing);
            assert_eq!(waiting.join().unwrap(), Some(1));
        });
        assert!(matched(&state, &hash));
    }

    #[test]
    fn a_node_the_purge_passed_by_loads_its_indexes_again() {
        let data = tempfile::tempdir().unwrap();
        let location = StoreLocation::in_data_folder(data.path());
        let mut other = another_process_with_a_bank(&location);
        let state =
            AppState::open_at(&location, DecodeLimits::default(), Policy::parse("").unwrap()).unwrap();

        let (first, second) = ("a".repeat(64), "b".repeat(64));
        add_content(&mut other, &first);
        add_content(&mut other, &second);
        // The leader purges before this node read either change: only the newest stays.
        other.purge_changes("9999-01-01T00:00:00.000Z").unwrap();
        assert_eq!(other.first_change().unwrap(), other.last_change().unwrap());

        follow(&state, false).unwrap();
        assert!(matched(&state, &first), "the purged change is not lost");
        assert!(matched(&state, &second));
        assert_eq!(
            state.feed_cursor.load(Ordering::Acquire),
            other.last_change().unwrap()
        );

        // From there on the feed is followed as before.
        let third = "c".repeat(64);
        add_content(&mut other, &third);
        assert_eq!(follow(&state, false).unwrap(), Some(1));
        assert!(matched(&state, &third));
    }
}
