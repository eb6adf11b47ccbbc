//! What the flood guard keeps: how often each bank entry matched, per time window, and
//! the entries it quarantined. An entry that suddenly matches far more than its history is
//! more likely a bad hash (a flat colour, a meme slipped into a shared list) than a wave
//! of real violations; its matches go to people until someone releases it.
//!
//! The counts here are the only counts: before deciding an upload, a node adds its hits
//! and reads the counts back in one short transaction ([`Store::count_hits`]), so nodes
//! sharing a store, and uploads in flight at once, judge an entry by all its matches.
//! Quarantines are written with the submission that made them; they and releases go into
//! the change feed for the other nodes to follow.

use crate::db::{Db, Row, RowLock, params};
use serde::Serialize;
use serde_json::json;

use crate::model::ContentId;
use crate::sqlite::Store;
use crate::{StoreError, audit, changes, now_rfc3339};

/// New quarantines to record with a submission, in its transaction (its hits were
/// counted before it was decided).
#[derive(Clone, Debug, Default)]
pub struct FloodRecord {
    /// Entries quarantined by this submission's hits.
    pub quarantines: Vec<NewQuarantine>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewQuarantine {
    pub content_id: ContentId,
    pub bank: String,
    pub reason: String,
}

/// A quarantined (or released) bank entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Quarantine {
    pub content_id: ContentId,
    pub bank: String,
    pub since: String,
    pub reason: String,
    /// Set once a person released it: from then on the guard leaves it alone.
    pub released_at: Option<String>,
    pub released_by: Option<String>,
}

/// One window's hit count of one entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowHits {
    pub content_id: ContentId,
    pub window_start: String,
    pub hits: u32,
}

pub(crate) fn record(tx: &Db, node: &str, actor: &str, flood: &FloodRecord) -> Result<(), StoreError> {
    if flood.quarantines.is_empty() {
        return Ok(());
    }
    // Before the content rows the quarantines lock: see `changes::lock_logs_before_content`.
    // (A submission has taken it already, for its sighting; this keeps the order whoever
    // calls.)
    changes::lock_logs(tx)?;
    let now = now_rfc3339();
    for quarantine in &flood.quarantines {
        // Another node may have quarantined (or a person released) the entry meanwhile:
        // then nothing changes and nothing is told.
        let added = tx.execute(
            &format!(
                "INSERT INTO quarantine (content_id, bank, since, reason)
                 SELECT CAST(?1 AS BIGINT), CAST(?2 AS TEXT), CAST(?3 AS TEXT), CAST(?4 AS TEXT)
                 WHERE {} ON CONFLICT(content_id) DO NOTHING",
                content_stays(tx)
            ),
            params![quarantine.content_id, quarantine.bank, now, quarantine.reason],
        )?;
        if added == 0 {
            continue;
        }
        changes::record(
            tx,
            node,
            "content.quarantined",
            None,
            Some(quarantine.content_id),
            json!({ "bank": quarantine.bank }),
        )?;
        audit::append(
            tx,
            actor,
            "flood.quarantined",
            json!({ "content_id": quarantine.content_id, "bank": quarantine.bank,
                    "reason": quarantine.reason }),
        )?;
    }
    Ok(())
}

/// The condition under which a row naming content `?1` is written: the content exists, and
/// goes on existing until the transaction ends.
///
/// A plain `EXISTS` is not enough on PostgreSQL: it reads the statement's snapshot, where
/// content that another transaction is deleting (not yet committed) still exists; the
/// foreign key's own check then waits for that delete and fails once it commits, failing
/// the whole upload. Locked `FOR KEY SHARE`, the read waits for the delete too, and then
/// finds nothing: the row is just not written. Content it finds stays locked, so a delete
/// that comes after waits for this transaction and then takes the row with it. SQLite's
/// writers are serialised: nothing can delete in between.
fn content_stays(tx: &Db) -> String {
    format!(
        "EXISTS (SELECT 1 FROM content WHERE id = ?1{})",
        tx.row_lock(RowLock::KeyShare)
    )
}

const COLUMNS: &str = "content_id, bank, since, reason, released_at, released_by";

fn quarantine(row: &Row<'_>) -> Result<Quarantine, StoreError> {
    Ok(Quarantine {
        content_id: row.get(0)?,
        bank: row.get(1)?,
        since: row.get(2)?,
        reason: row.get(3)?,
        released_at: row.get(4)?,
        released_by: row.get(5)?,
    })
}

impl Store {
    /// Every quarantine, current and released, newest first.
    pub fn quarantines(&self) -> Result<Vec<Quarantine>, StoreError> {
        self.db().query_map(
            &format!("SELECT {COLUMNS} FROM quarantine ORDER BY since DESC, content_id"),
            params![],
            quarantine,
        )
    }

    /// Lets a quarantined entry act again, for good: a person has checked it.
    pub fn release_quarantine(&mut self, content_id: ContentId) -> Result<Quarantine, StoreError> {
        let actor = self.actor().to_string();
        let tx = self.db().transaction()?;
        // Before the quarantine row, which a deletion of its content deletes: see
        // `changes::lock_logs_before_content`.
        changes::lock_logs_before_content(&tx)?;
        let changed = tx.execute(
            "UPDATE quarantine SET released_at = ?1, released_by = ?2
             WHERE content_id = ?3 AND released_at IS NULL",
            params![now_rfc3339(), actor, content_id],
        )?;
        if changed == 0 {
            return Err(StoreError::NotQuarantined(content_id));
        }
        audit::append(&tx, &actor, "flood.released", json!({ "content_id": content_id }))?;
        changes::record(
            &tx,
            self.node(),
            "content.released",
            None,
            Some(content_id),
            json!({}),
        )?;
        let released = tx
            .query_row(
                &format!("SELECT {COLUMNS} FROM quarantine WHERE content_id = ?1"),
                params![content_id],
                quarantine,
            )?
            .ok_or(StoreError::NotQuarantined(content_id))?;
        tx.commit()?;
        Ok(released)
    }

    /// Counts one hit of each of `entries` in the window starting `window_start`, and
    /// answers their counts in windows starting at or after `since` (RFC 3339), this hit
    /// and every node's committed ones included: one transaction, so that two uploads
    /// never read the same count.
    pub fn count_hits(
        &mut self,
        entries: &[ContentId],
        window_start: &str,
        since: &str,
    ) -> Result<Vec<WindowHits>, StoreError> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let tx = self.db().transaction()?;
        for content_id in entries {
            tx.execute(
                // Content deleted since the match was made has nothing left to count against.
                &format!(
                    "INSERT INTO content_hits (content_id, window_start, hits)
                     SELECT CAST(?1 AS BIGINT), CAST(?2 AS TEXT), 1 WHERE {}
                     ON CONFLICT(content_id, window_start) DO UPDATE SET hits = content_hits.hits + 1",
                    content_stays(&tx)
                ),
                params![content_id, window_start],
            )?;
        }
        let counted = hits_of(&tx, entries, since)?;
        tx.commit()?;
        Ok(counted)
    }

    /// The hit counts of `entries` in windows starting at or after `since` (RFC 3339),
    /// as every node has committed them.
    pub fn content_hits(&self, entries: &[ContentId], since: &str) -> Result<Vec<WindowHits>, StoreError> {
        hits_of(self.db(), entries, since)
    }

    /// Deletes the hit counts of windows that started before `before` (RFC 3339), which the
    /// guard no longer looks at; answers how many went.
    pub fn purge_content_hits(&mut self, before: &str) -> Result<u64, StoreError> {
        self.db().execute(
            "DELETE FROM content_hits WHERE window_start < ?1",
            params![before],
        )
    }
}

/// The hit counts of `entries` in windows starting at or after `since`, read on `db`.
fn hits_of(db: &Db, entries: &[ContentId], since: &str) -> Result<Vec<WindowHits>, StoreError> {
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    // Ids are numbers: written into the statement.
    let ids: Vec<String> = entries.iter().map(ContentId::to_string).collect();
    db.query_map(
        &format!(
            "SELECT content_id, window_start, hits FROM content_hits
             WHERE content_id IN ({}) AND window_start >= ?1 ORDER BY content_id, window_start",
            ids.join(", ")
        ),
        params![since],
        |r| {
            Ok(WindowHits {
                content_id: r.get(0)?,
                window_start: r.get(1)?,
                hits: r.get(2)?,
            })
        },
    )
}
