//! The audit log: every change to banks, content and keys, append-only and
//! tamper-evident.
//!
//! Each entry stores the SHA-256 of the previous entry's hash together with its own
//! fields, so changing or removing an entry breaks the chain from there on; triggers
//! refuse UPDATE and DELETE outright. An entry is written in the same transaction as the
//! change it records: both land, or neither.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::db::{Db, params};
use crate::{StoreError, now_rfc3339};

/// One recorded change.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AuditEntry {
    pub seq: i64,
    pub at: String,
    /// Who made the change: `key:<name>` for the API, `cli:<user>` for the command line.
    pub actor: String,
    /// What happened, e.g. `bank.created`.
    pub event: String,
    pub data: serde_json::Value,
    /// This entry's chain hash, hex.
    pub hash: String,
}

/// The outcome of checking the whole chain.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AuditCheck {
    pub entries: i64,
    /// The last entry's hash: keep it elsewhere to detect a cut-off tail later.
    pub head: String,
    /// The first entry that does not check out, and why.
    pub broken_at: Option<i64>,
    pub problem: Option<String>,
}

fn chain_hash(previous: &[u8], seq: i64, at: &str, actor: &str, event: &str, data: &str) -> Vec<u8> {
    let mut hasher = Sha256::new();
    hasher.update(previous);
    hasher.update(seq.to_be_bytes());
    for field in [at, actor, event, data] {
        // Lengths first, so that no two field splits hash alike.
        hasher.update((field.len() as u64).to_be_bytes());
        hasher.update(field.as_bytes());
    }
    hasher.finalize().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Appends an entry; call it inside the transaction of the change it records.
pub(crate) fn append(conn: &Db, actor: &str, event: &str, data: serde_json::Value) -> Result<(), StoreError> {
    // Nodes sharing a PostgreSQL store append at once: one at a time, each after the last
    // committed entry (the lock is held until the transaction ends). The change feed's
    // lock, so that a transaction writing both logs waits for one lock, not two.
    crate::changes::lock_logs(conn)?;
    let last: Option<(i64, Vec<u8>)> = conn.query_row(
        "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
        params![],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let (seq, previous) = match last {
        Some((seq, hash)) => (seq + 1, hash),
        None => (1, vec![0u8; 32]),
    };
    let at = now_rfc3339();
    let data = data.to_string();
    let hash = chain_hash(&previous, seq, &at, actor, event, &data);
    conn.execute(
        "INSERT INTO audit (seq, at, actor, event, data, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![seq, at, actor, event, data, hash],
    )?;
    Ok(())
}

/// Entries from `since` (exclusive) on, oldest first.
pub(crate) fn entries(conn: &Db, since: i64) -> Result<Vec<AuditEntry>, StoreError> {
    let mut entries = Vec::new();
    for_each_entry(conn, since, |entry| {
        entries.push(entry);
        Ok::<_, StoreError>(())
    })?;
    Ok(entries)
}

/// Hands each entry from `since` (exclusive) on to `each`, oldest first, as it is read: a
/// log of millions of entries is never held whole.
pub(crate) fn for_each_entry<E: From<StoreError>>(
    conn: &Db,
    since: i64,
    mut each: impl FnMut(AuditEntry) -> Result<(), E>,
) -> Result<(), E> {
    conn.for_each(
        "SELECT seq, at, actor, event, data, hash FROM audit WHERE seq > ?1 ORDER BY seq",
        params![since],
        |r| {
            let data: String = r.get(4)?;
            each(AuditEntry {
                seq: r.get(0)?,
                at: r.get(1)?,
                actor: r.get(2)?,
                event: r.get(3)?,
                data: serde_json::from_str(&data).unwrap_or(serde_json::Value::String(data)),
                hash: hex(&r.get::<Vec<u8>>(5)?),
            })
        },
    )
}

/// Recomputes the chain from the first entry: sequence numbers must run 1, 2, 3, ... and
/// every stored hash must be the hash of its entry and its predecessor.
pub(crate) fn verify(conn: &Db) -> Result<AuditCheck, StoreError> {
    let mut previous = vec![0u8; 32];
    let mut expected_seq = 1;
    let mut entries = 0;
    let mut broken_at = None;
    conn.for_each(
        "SELECT seq, at, actor, event, data, hash FROM audit ORDER BY seq",
        params![],
        |row| {
            if broken_at.is_some() {
                return Ok(());
            }
            let seq: i64 = row.get(0)?;
            let (at, actor, event, data): (String, String, String, String) =
                (row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?);
            let stored: Vec<u8> = row.get(5)?;
            if seq != expected_seq {
                broken_at = Some((seq, format!("entries {expected_seq} to {} are missing", seq - 1)));
                return Ok(());
            }
            let computed = chain_hash(&previous, seq, &at, &actor, &event, &data);
            if computed != stored {
                broken_at = Some((
                    seq,
                    format!("entry {seq} was changed: its hash does not match its contents"),
                ));
                return Ok(());
            }
            previous = computed;
            expected_seq += 1;
            entries += 1;
            Ok::<_, StoreError>(())
        },
    )?;
    let (broken_at, problem) = broken_at.unzip();
    Ok(AuditCheck {
        entries,
        head: hex(&previous),
        broken_at,
        problem,
    })
}
