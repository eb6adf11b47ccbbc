//! What the review console keeps per person: sign-in sessions (only a hash of the
//! session token is stored), display settings that protect them, and how many items they
//! revealed each day (shown to them, and kept: exposure is part of a moderator's record).

use crate::db::params;
use serde::Serialize;

use crate::StoreError;
use crate::sqlite::Store;

/// A signed-in reviewer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsoleSession {
    /// The name of the key they signed in with.
    pub reviewer: String,
    pub role: String,
    /// The token every form carries back (CSRF).
    pub csrf: String,
    pub expires_at: String,
}

/// How media is shown to a reviewer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ReviewerSettings {
    /// Blur radius in pixels (0 shows media sharp).
    pub blur: u32,
    pub greyscale: bool,
    pub autoplay: bool,
}

impl Default for ReviewerSettings {
    fn default() -> Self {
        ReviewerSettings {
            blur: 24,
            greyscale: true,
            autoplay: false,
        }
    }
}

impl Store {
    pub fn create_console_session(
        &mut self,
        token_hash: &[u8],
        session: &ConsoleSession,
        now: &str,
    ) -> Result<(), StoreError> {
        let conn = self.db();
        conn.execute("DELETE FROM console_session WHERE expires_at <= ?1", params![now])?;
        conn.execute(
            "INSERT INTO console_session (token_hash, reviewer, role, csrf, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                token_hash,
                session.reviewer,
                session.role,
                session.csrf,
                now,
                session.expires_at
            ],
        )?;
        Ok(())
    }

    /// The live session whose token hashes to `token_hash`.
    pub fn console_session(
        &self,
        token_hash: &[u8],
        now: &str,
    ) -> Result<Option<ConsoleSession>, StoreError> {
        self.db().query_row(
            "SELECT reviewer, role, csrf, expires_at FROM console_session
                 WHERE token_hash = ?1 AND expires_at > ?2",
            params![token_hash, now],
            |r| {
                Ok(ConsoleSession {
                    reviewer: r.get(0)?,
                    role: r.get(1)?,
                    csrf: r.get(2)?,
                    expires_at: r.get(3)?,
                })
            },
        )
    }

    pub fn end_console_session(&mut self, token_hash: &[u8]) -> Result<(), StoreError> {
        self.db().execute(
            "DELETE FROM console_session WHERE token_hash = ?1",
            params![token_hash],
        )?;
        Ok(())
    }

    /// Ends every session of keys that were revoked (called when a key is revoked).
    pub fn end_console_sessions_of(&mut self, reviewer: &str) -> Result<(), StoreError> {
        self.db().execute(
            "DELETE FROM console_session WHERE reviewer = ?1",
            params![reviewer],
        )?;
        Ok(())
    }

    pub fn reviewer_settings(&self, reviewer: &str) -> Result<ReviewerSettings, StoreError> {
        Ok(self
            .db()
            .query_row(
                "SELECT blur, greyscale, autoplay FROM reviewer_settings WHERE reviewer = ?1",
                params![reviewer],
                |r| {
                    Ok(ReviewerSettings {
                        blur: r.get(0)?,
                        greyscale: r.get(1)?,
                        autoplay: r.get(2)?,
                    })
                },
            )?
            .unwrap_or_default())
    }

    pub fn set_reviewer_settings(
        &mut self,
        reviewer: &str,
        settings: ReviewerSettings,
    ) -> Result<(), StoreError> {
        self.db().execute(
            "INSERT INTO reviewer_settings (reviewer, blur, greyscale, autoplay) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(reviewer) DO UPDATE SET blur = ?2, greyscale = ?3, autoplay = ?4",
            params![reviewer, settings.blur, settings.greyscale, settings.autoplay],
        )?;
        Ok(())
    }

    /// Counts one revealed item for `reviewer` on `day` (`YYYY-MM-DD`); returns the day's
    /// count.
    pub fn count_reveal(&mut self, reviewer: &str, day: &str) -> Result<u32, StoreError> {
        self.db().query_value(
            "INSERT INTO reviewer_reveals (reviewer, day, reveals) VALUES (?1, ?2, 1)
             ON CONFLICT(reviewer, day) DO UPDATE SET reveals = reviewer_reveals.reveals + 1
             RETURNING reveals",
            params![reviewer, day],
        )
    }

    pub fn reveals(&self, reviewer: &str, day: &str) -> Result<u32, StoreError> {
        Ok(self
            .db()
            .query_row(
                "SELECT reveals FROM reviewer_reveals WHERE reviewer = ?1 AND day = ?2",
                params![reviewer, day],
                |r| r.get(0),
            )?
            .unwrap_or(0))
    }
}
