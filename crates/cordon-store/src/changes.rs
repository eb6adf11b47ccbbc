//! The change feed: one row per change that the in-memory state of other processes must
//! follow (content added, removed, disabled, quarantined or released, banks changed,
//! sightings added, keys revoked), numbered by a sequence, written in the transaction of
//! the change itself.
//!
//! Every process that serves from the store keeps a cursor and applies the rows after it
//! (skipping its own, which it applied when it made them); on PostgreSQL a `NOTIFY` wakes
//! them at once. So that a cursor never skips a row, sequence order must be commit order:
//! on PostgreSQL a transaction takes an advisory lock before it writes its change rows
//! (mostly just before it commits, from its start when it deletes or changes content: see
//! [`lock_logs_before_content`]; the same lock orders the audit log), on SQLite writers are
//! serialised anyway.

use crate::db::{Db, Dialect, params};
use crate::model::ContentId;
use crate::{Signal, Store, StoreError, now_rfc3339};

/// The channel `NOTIFY` wakes followers on.
pub const CHANGE_CHANNEL: &str = "cordon_changes";

/// The advisory lock (PostgreSQL) that orders the appends to both logs, the change feed
/// and the audit log: a transaction takes it before it writes to either, and holds it
/// until it ends (see [`lock_logs`]).
///
/// One lock, not one per log: a transaction writing both took the two locks in whichever
/// order its code wrote the logs, some the feed first (a bank created, a submission), some
/// the audit log first (a bank updated, a key revoked), so two of them at once could each
/// hold the lock the other waited for, and PostgreSQL aborted one (`deadlock detected`).
///
/// Its number is the one the feed's own lock had, so that a node of an older Cordon in the
/// same cluster during a rolling upgrade still waits on it for its change rows.
const LOG_LOCK: i64 = 0x0063_6f72_646f_6e02;

/// The number of the audit log's own lock in older Cordon versions, taken after
/// [`LOG_LOCK`] and only for them: an older node appending an audit entry without writing
/// the feed (a key created, say) takes only this one, and must wait for our entries as we
/// wait for its. Never taken before `LOG_LOCK`, so among new nodes it cannot deadlock; it
/// can go when no older node can share a store any more.
const OLDER_AUDIT_LOCK: i64 = 0x0063_6f72_646f_6e04;

/// Content ids per INSERT of change rows.
const IDS_PER_INSERT: usize = 500;

/// What changed.
#[derive(Clone, Debug, PartialEq)]
pub enum ChangeKind {
    /// New content, with its signals.
    ContentAdded { signals: Vec<Signal> },
    /// Content deleted; its PDQ hashes, to take out of the index.
    ContentRemoved { pdq: Vec<String> },
    /// Content's disabled-until time set or cleared.
    ContentDisabled { until: Option<String> },
    /// Content quarantined by the flood guard: its matches go to review.
    ContentQuarantined { bank: String },
    /// A quarantined content released by a person: it acts again, and for good.
    ContentReleased,
    /// A bank created or changed: read it again (gone if it was deleted).
    BankChanged,
    /// A sighting added to the ledger, with its PDQ hash if it has one and that hash's
    /// quality (a follower searches only what the writer would: `None` from a Cordon that
    /// did not say).
    SightingAdded {
        pdq: Option<String>,
        quality: Option<u8>,
    },
    /// An API key revoked: its public id, for servers to forget it.
    KeyRevoked { id: String },
    /// A kind a newer Cordon wrote (during a rolling upgrade): nothing to do here.
    Unknown { kind: String },
}

/// One row of the feed.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub seq: i64,
    /// The process that made the change (see [`Store::node`]).
    pub node: String,
    pub bank_id: Option<i64>,
    /// The content, or for a sighting the sighting's id.
    pub content_id: Option<ContentId>,
    pub kind: ChangeKind,
}

/// Makes the change-feed and audit rows the caller's transaction writes from here on come
/// after every committed one, until it ends: on PostgreSQL, waits for [`LOG_LOCK`] (taking
/// it again in the same transaction costs nothing: advisory locks are re-entrant); on
/// SQLite, whose writers are serialised anyway, nothing.
pub(crate) fn lock_logs(tx: &Db) -> Result<(), StoreError> {
    if tx.dialect() == Dialect::Postgres {
        // Two statements: the order must be certain.
        tx.execute("SELECT pg_advisory_xact_lock(?1)", params![LOG_LOCK])?;
        tx.execute("SELECT pg_advisory_xact_lock(?1)", params![OLDER_AUDIT_LOCK])?;
    }
    Ok(())
}

/// [`lock_logs`], for a transaction about to delete or change content rows, or rows that go
/// with them (a quarantine): called before it touches any, so that on PostgreSQL every
/// transaction takes the logs' lock before the content rows it locks.
///
/// Why this order: an upload writes its sighting to the feed, then quarantines an entry,
/// whose insert locks the content row (`FOR KEY SHARE`, as its foreign key does). A deletion
/// that took the content row first and the logs' lock only for its audit entry could hold
/// what the upload waited for while waiting for what the upload held, and PostgreSQL aborted
/// one (`deadlock detected`). The other way round (content rows before the logs' lock
/// everywhere) would not hold: an upload may quarantine several entries, and a bank's
/// deletion deletes its content in an order of its own, so two transactions could still
/// lock two rows in opposite orders; with the logs' lock first, no two of them lock content
/// at once. A change to a content row (a note, a disabled time) or to a quarantine (a
/// release) takes it first too: a deletion now waits for those rows while holding it.
///
/// A bank's row comes before it: a [`crate::ContentWriter`] holds its bank's row from its
/// start and may take the logs' lock midway (a sighting), so a bank's deletion locks its
/// bank first. The cost: the logs' other writers (every upload) wait while a deletion holds
/// it, briefly for one content, for as long as the content of a bank takes to go.
pub(crate) fn lock_logs_before_content(tx: &Db) -> Result<(), StoreError> {
    lock_logs(tx)
}

/// Makes the rows written from here on come after every committed one, and wakes the
/// followers when the transaction commits (PostgreSQL).
fn order_after_committed(tx: &Db) -> Result<(), StoreError> {
    lock_logs(tx)?;
    if tx.dialect() == Dialect::Postgres {
        tx.execute(&format!("NOTIFY {CHANGE_CHANNEL}"), params![])?;
    }
    Ok(())
}

/// Records one change in the caller's transaction; call it last, before committing.
pub(crate) fn record(
    tx: &Db,
    node: &str,
    kind: &str,
    bank_id: Option<i64>,
    content_id: Option<i64>,
    detail: serde_json::Value,
) -> Result<(), StoreError> {
    order_after_committed(tx)?;
    tx.execute(
        "INSERT INTO change_log (at, node, kind, bank_id, content_id, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![now_rfc3339(), node, kind, bank_id, content_id, detail.to_string()],
    )?;
    Ok(())
}

/// Records that `ids` were added to bank `bank_id`, in the caller's transaction.
pub(crate) fn record_content_added(
    tx: &Db,
    node: &str,
    bank_id: i64,
    ids: &[ContentId],
) -> Result<(), StoreError> {
    if ids.is_empty() {
        return Ok(());
    }
    order_after_committed(tx)?;
    let at = now_rfc3339();
    for chunk in ids.chunks(IDS_PER_INSERT) {
        // Ids are numbers: written into the statement, one INSERT per chunk.
        let values: Vec<String> = chunk
            .iter()
            .map(|id| format!("(?1, ?2, 'content.added', ?3, {id}, '{{}}')"))
            .collect();
        tx.execute(
            &format!(
                "INSERT INTO change_log (at, node, kind, bank_id, content_id, detail) VALUES {}",
                values.join(", ")
            ),
            params![at, node, bank_id],
        )?;
    }
    Ok(())
}

impl Store {
    /// The last change's sequence number (0 when there is none).
    pub fn last_change(&self) -> Result<i64, StoreError> {
        self.db().query_value(
            "SELECT CAST(coalesce(max(seq), 0) AS BIGINT) FROM change_log",
            params![],
        )
    }

    /// The oldest change's sequence number still in the feed (0 when there is none).
    pub fn first_change(&self) -> Result<i64, StoreError> {
        self.db().query_value(
            "SELECT CAST(coalesce(min(seq), 0) AS BIGINT) FROM change_log",
            params![],
        )
    }

    /// Deletes the changes made before `before` (RFC 3339), except the newest: the feed
    /// must not run empty, or SQLite would number the next change 1 again and every
    /// follower's cursor would pass over it. Answers how many went.
    pub fn purge_changes(&mut self, before: &str) -> Result<u64, StoreError> {
        // Rows are appended in time order, so the cut is the first row at or after
        // `before`, found by reading the feed from its start in key order: only the rows
        // that go are read, and `at` needs no index of its own.
        self.db().execute(
            "DELETE FROM change_log WHERE seq < coalesce(
                 (SELECT seq FROM change_log WHERE at >= ?1 ORDER BY seq LIMIT 1),
                 (SELECT max(seq) FROM change_log))",
            params![before],
        )
    }

    /// Up to `limit` changes after `after`, in order, with the signals of added content.
    pub fn changes_after(&self, after: i64, limit: usize) -> Result<Vec<Change>, StoreError> {
        let mut changes: Vec<Change> = Vec::new();
        self.db().for_each(
            "SELECT c.seq, c.node, c.kind, c.bank_id, c.content_id, c.detail, s.signal_type, s.value
             FROM (SELECT * FROM change_log WHERE seq > ?1 ORDER BY seq LIMIT ?2) c
             LEFT JOIN signal s ON c.kind = 'content.added' AND s.content_id = c.content_id
             ORDER BY c.seq, s.id",
            params![after, limit],
            |row| {
                let seq: i64 = row.get(0)?;
                let signal: Option<Signal> = match (row.get(6)?, row.get(7)?) {
                    (Some(signal_type), Some(value)) => Some(Signal { signal_type, value }),
                    _ => None,
                };
                if let Some(last) = changes.last_mut().filter(|c| c.seq == seq) {
                    if let (ChangeKind::ContentAdded { signals }, Some(signal)) = (&mut last.kind, signal) {
                        signals.push(signal);
                    }
                    return Ok(());
                }
                let kind: String = row.get(2)?;
                let detail: String = row.get(5)?;
                changes.push(Change {
                    seq,
                    node: row.get(1)?,
                    bank_id: row.get(3)?,
                    content_id: row.get(4)?,
                    kind: change_kind(&kind, &detail, signal)?,
                });
                Ok::<_, StoreError>(())
            },
        )?;
        Ok(changes)
    }

    /// Runs `read` on one consistent view of the store: what it reads (an index load and the
    /// feed's position, say) is from one moment, whatever other writers do meanwhile.
    pub fn in_snapshot<T, E: From<StoreError>>(
        &self,
        read: impl FnOnce(&Store) -> Result<T, E>,
    ) -> Result<T, E> {
        let begin = match self.dialect() {
            Dialect::Sqlite => "BEGIN",
            Dialect::Postgres => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        };
        self.db().execute_batch(begin)?;
        let result = read(self);
        // Read only: ending it cannot lose anything.
        let _ = self.db().execute_batch("COMMIT");
        result
    }
}

fn change_kind(kind: &str, detail: &str, signal: Option<Signal>) -> Result<ChangeKind, StoreError> {
    let detail: serde_json::Value = serde_json::from_str(detail).map_err(|e| StoreError::Corrupt {
        what: "change detail",
        detail: e.to_string(),
    })?;
    let text = |key: &str| detail.get(key).and_then(|v| v.as_str()).map(str::to_string);
    Ok(match kind {
        "content.added" => ChangeKind::ContentAdded {
            signals: signal.into_iter().collect(),
        },
        "content.removed" => ChangeKind::ContentRemoved {
            pdq: detail
                .get("pdq")
                .and_then(|v| v.as_array())
                .map(|hashes| {
                    hashes
                        .iter()
                        .filter_map(|h| h.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
        },
        "content.disabled" => ChangeKind::ContentDisabled { until: text("until") },
        "content.quarantined" => ChangeKind::ContentQuarantined {
            bank: text("bank").unwrap_or_default(),
        },
        "content.released" => ChangeKind::ContentReleased,
        "bank.changed" => ChangeKind::BankChanged,
        "sighting.added" => ChangeKind::SightingAdded {
            pdq: text("pdq"),
            quality: detail
                .get("quality")
                .and_then(serde_json::Value::as_u64)
                .and_then(|q| u8::try_from(q).ok()),
        },
        "key.revoked" => ChangeKind::KeyRevoked {
            id: text("id").unwrap_or_default(),
        },
        other => ChangeKind::Unknown {
            kind: other.to_string(),
        },
    })
}
