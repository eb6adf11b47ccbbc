//! Cordon's system of record.
//!
//! This crate owns persistence: banks of known content and their signals, in an embedded
//! SQLite file inside the data folder (the default, no server to run), with versioned
//! schema migrations applied on open. It stores and returns facts; it makes no decisions
//! (what matches, what a policy does) and computes no signals.

mod audit;
mod error;
mod migrations;
mod model;
mod sqlite;

pub use audit::{AuditCheck, AuditEntry};
pub use error::StoreError;
pub use model::{
    ApiKey, Bank, BankName, BankUpdate, Content, ContentId, NewBank, NewContent, Signal, SignalRow,
};
pub use sqlite::{ContentWriter, Store};

/// The file inside the data folder that holds the embedded store.
pub const DATABASE_FILE: &str = "cordon.sqlite3";

/// The current time as RFC 3339 text (UTC, milliseconds), the form every timestamp is
/// stored in, so that text order is time order.
pub fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    let now = now
        .replace_nanosecond(now.millisecond() as u32 * 1_000_000)
        .unwrap_or(now);
    now.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| now.unix_timestamp().to_string())
}
