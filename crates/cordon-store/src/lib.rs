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
    ApiKey, Bank, BankName, BankUpdate, Content, ContentId, ContentSummary, ContentUpdate, NewBank,
    NewContent, Signal, SignalRow,
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

/// `at` in the stored timestamp form (see [`now_rfc3339`]), clamped to the years that form
/// holds, 0000 to 9999.
///
/// A time given with an offset near the ends of the calendar (9999-12-31T23:59:59-23:59,
/// a `posted_at` anyone can send) has no UTC time in it, and a negative year has no
/// fixed-width text: they are stored as the first or last instant there is rather than
/// being refused (every caller expects text) or panicking (`to_offset` would).
pub fn format_time(at: time::OffsetDateTime) -> String {
    const EARLIEST: &str = "0000-01-01T00:00:00.000Z";
    const LATEST: &str = "9999-12-31T23:59:59.999Z";
    let at = match at.checked_to_offset(time::UtcOffset::UTC) {
        Some(utc) if utc.year() < 0 => return EARLIEST.to_string(),
        Some(utc) if utc.year() > 9999 => return LATEST.to_string(),
        Some(utc) => utc,
        // Beyond the calendar's end if it was late in it, else before its start.
        None if at.year() > 0 => return LATEST.to_string(),
        None => return EARLIEST.to_string(),
    };
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

#[cfg(test)]
mod tests {
    use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

    use super::format_time;

    fn at(year: i32, month: Month, day: u8, hms: (u8, u8, u8), offset: (i8, i8)) -> OffsetDateTime {
        let date = Date::from_calendar_date(year, month, day).unwrap();
        let time = Time::from_hms(hms.0, hms.1, hms.2).unwrap();
        let offset = UtcOffset::from_hms(offset.0, offset.1, 0).unwrap();
        PrimitiveDateTime::new(date, time).assume_offset(offset)
    }

    #[test]
    fn times_beyond_the_stored_range_are_clamped_not_a_panic() {
        assert_eq!(
            format_time(at(2026, Month::November, 29, (19, 0, 0), (1, 0))),
            "2026-11-29T18:00:00.000Z"
        );
        // In UTC these are after 9999 and before year 0: no such text in the stored form.
        assert_eq!(
            format_time(at(9999, Month::December, 31, (23, 59, 59), (-23, -59))),
            "9999-12-31T23:59:59.999Z"
        );
        assert_eq!(
            format_time(at(-9999, Month::January, 1, (0, 0, 0), (23, 59))),
            "0000-01-01T00:00:00.000Z"
        );
        assert_eq!(
            format_time(at(-1, Month::June, 1, (12, 0, 0), (0, 0))),
            "0000-01-01T00:00:00.000Z"
        );
        assert_eq!(
            format_time(at(0, Month::January, 1, (0, 0, 0), (0, 0))),
            "0000-01-01T00:00:00.000Z"
        );
    }
}
