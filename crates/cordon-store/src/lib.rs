//! Cordon's system of record.
//!
//! This crate owns persistence: banks of known content and their signals, submissions,
//! decisions, the ledger and the audit log, in an embedded SQLite file inside the data
//! folder (the default, no server to run) or in PostgreSQL, with versioned schema
//! migrations applied on open. It stores and returns facts; it makes no decisions
//! (what matches, what a policy does) and computes no signals.

mod audit;
mod changes;
mod console;
mod db;
mod error;
mod flood;
mod ledger;
mod migrations;
mod model;
mod pool;
mod postgres_url;
mod review;
mod sqlite;
mod submissions;

pub use audit::{AuditCheck, AuditEntry};
pub use changes::{CHANGE_CHANNEL, Change, ChangeKind};
pub use console::{ConsoleSession, ReviewerSettings};
pub use db::Dialect;
pub use error::StoreError;
pub use flood::{FloodRecord, NewQuarantine, Quarantine, WindowHits};
pub use ledger::{MediaFacts, Sighting};
pub use model::{
    ApiKey, Bank, BankName, BankUpdate, Content, ContentId, ContentSummary, NewBank, NewContent, Signal,
    SignalRow,
};
pub use pool::{PooledStore, StorePool};
pub use review::{Appeal, NewReviewItem, Outcome, QueueFilter, ReviewItem, StoredMedia};
pub use sqlite::{ContentWriter, Store, StoreLocation, connect_postgres};
pub use submissions::{Account, NewDecision, NewSubmission, OutboxRow, Recorded, StrikeRow};

/// The file inside the data folder that holds the embedded store.
pub const DATABASE_FILE: &str = "cordon.sqlite3";

/// The current time as RFC 3339 text, UTC, always with three decimals
/// (`2026-11-29T18:00:00.000Z`): one fixed width, so that text order is time order.
pub fn now_rfc3339() -> String {
    format_time(time::OffsetDateTime::now_utc())
}

/// `at` in the stored timestamp form (see [`now_rfc3339`]).
pub fn format_time(at: time::OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.millisecond()
    )
}
