//! The review queue: submissions a decision sent to people, with what they need to decide
//! (the media, kept only for this), who holds each item, and what they decided. A
//! reviewer's decision is written by the same code as the policy's (see
//! `submissions::write_decisions`): strikes, suspensions, webhooks and audit alike.

use crate::db::{Db, Row, RowLock, params};
use serde::Serialize;
use serde_json::json;

use crate::sqlite::Store;
use crate::submissions::{DecisionSubject, write_decisions};
use crate::{NewDecision, StoreError, audit, now_rfc3339};

/// A file kept for people to look at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredMedia {
    pub mime: String,
    pub bytes: Vec<u8>,
}

/// A submission's place in the queue, decided when the policy sends it to review.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NewReviewItem {
    /// From the matched banks' labels: higher comes first.
    pub severity: i64,
    /// Of the match that sent it (nearer comes first).
    pub distance: u32,
    pub signal_type: String,
    /// The account's live strike weight when it was submitted.
    pub account_strikes: u64,
    pub banks: Vec<String>,
    pub labels: Vec<String>,
    pub rule: String,
    pub reason: String,
    pub media: Option<StoredMedia>,
}

/// One item of the queue with the submission it is about.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReviewItem {
    pub submission_id: i64,
    /// `pending`, `escalated` or `decided`.
    pub state: String,
    pub severity: i64,
    pub distance: u32,
    pub signal_type: String,
    pub account_strikes: u64,
    pub banks: Vec<String>,
    pub labels: Vec<String>,
    pub rule: String,
    pub reason: String,
    pub created_at: String,
    pub claimed_by: Option<String>,
    pub claim_expires_at: Option<String>,
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
    pub outcome: Option<String>,
    /// The platform's ids and claims for the submission.
    pub content_id: String,
    pub account_id: String,
    pub source_url: Option<String>,
    pub posted_at: Option<String>,
    /// The submission's stored answer (its matches and automatic decisions).
    pub response: serde_json::Value,
}

/// Which items a queue page shows.
#[derive(Clone, Debug, Default)]
pub struct QueueFilter {
    pub bank: Option<String>,
    pub label: Option<String>,
}

/// What a reviewer did with an item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The match was right; the decisions given are carried out.
    Confirmed,
    /// A false positive: nothing is done to the content or the account.
    Overturned,
    /// Passed to a senior reviewer (an admin key); the item stays in the queue.
    Escalated,
}

impl Outcome {
    pub const fn name(self) -> &'static str {
        match self {
            Outcome::Confirmed => "confirmed",
            Outcome::Overturned => "overturned",
            Outcome::Escalated => "escalated",
        }
    }
}

pub(crate) fn enqueue(tx: &Db, submission_id: i64, item: &NewReviewItem) -> Result<(), StoreError> {
    let now = now_rfc3339();
    tx.execute(
        "INSERT INTO review_item (submission_id, severity, distance, signal_type, account_strikes, banks,
                                  labels, rule, reason, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            submission_id,
            item.severity,
            item.distance,
            item.signal_type,
            item.account_strikes as i64,
            json!(item.banks).to_string(),
            json!(item.labels).to_string(),
            item.rule,
            item.reason,
            now
        ],
    )?;
    if let Some(media) = &item.media {
        tx.execute(
            "INSERT INTO stored_media (submission_id, mime, bytes, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![submission_id, media.mime, media.bytes, now],
        )?;
    }
    Ok(())
}

/// Who holds an undecided item, and whose submission it is.
struct Holder {
    claimed_by: Option<String>,
    claim_expires_at: Option<String>,
    content_id: String,
    account_id: String,
}

/// The holder of an item still to decide: an unknown item or a decided one is an error.
fn holder(tx: &Db, submission_id: i64) -> Result<Holder, StoreError> {
    // On PostgreSQL the row stays locked until the transaction ends, so two reviewers
    // claiming at once on two connections are told apart (SQLite has one writer anyway).
    let lock = match tx.dialect() {
        crate::Dialect::Sqlite => "",
        crate::Dialect::Postgres => " FOR UPDATE OF r",
    };
    let found = tx.query_row(
        &format!(
            "SELECT r.state, r.claimed_by, r.claim_expires_at, s.content_id, s.account_id
             FROM review_item r JOIN submission s ON s.id = r.submission_id WHERE r.submission_id = ?1{lock}"
        ),
        params![submission_id],
        |r| {
            Ok((
                r.get::<String>(0)?,
                Holder {
                    claimed_by: r.get(1)?,
                    claim_expires_at: r.get(2)?,
                    content_id: r.get(3)?,
                    account_id: r.get(4)?,
                },
            ))
        },
    )?;
    match found {
        None => Err(StoreError::NoSuchReview(submission_id)),
        Some((state, _)) if state == "decided" => Err(StoreError::ReviewDecided(submission_id)),
        Some((_, holder)) => Ok(holder),
    }
}

const COLUMNS: &str = "r.submission_id, r.state, r.severity, r.distance, r.signal_type, r.account_strikes,
    r.banks, r.labels, r.rule, r.reason, r.created_at, r.claimed_by, r.claim_expires_at, r.decided_by,
    r.decided_at, r.outcome, s.content_id, s.account_id, s.source_url, s.posted_at, s.response";

fn review_item(row: &Row<'_>) -> Result<ReviewItem, StoreError> {
    let json_list = |index: usize| -> Result<Vec<String>, StoreError> {
        let text: String = row.get(index)?;
        Ok(serde_json::from_str(&text).unwrap_or_default())
    };
    let response: String = row.get(20)?;
    Ok(ReviewItem {
        submission_id: row.get(0)?,
        state: row.get(1)?,
        severity: row.get(2)?,
        distance: row.get(3)?,
        signal_type: row.get(4)?,
        account_strikes: row.get::<i64>(5)?.max(0) as u64,
        banks: json_list(6)?,
        labels: json_list(7)?,
        rule: row.get(8)?,
        reason: row.get(9)?,
        created_at: row.get(10)?,
        claimed_by: row.get(11)?,
        claim_expires_at: row.get(12)?,
        decided_by: row.get(13)?,
        decided_at: row.get(14)?,
        outcome: row.get(15)?,
        content_id: row.get(16)?,
        account_id: row.get(17)?,
        source_url: row.get(18)?,
        posted_at: row.get(19)?,
        response: serde_json::from_str(&response).unwrap_or_default(),
    })
}

impl Store {
    /// Items waiting for a person, most urgent first: escalated ones, then by severity,
    /// nearest match, the account's strikes, and age (oldest first).
    pub fn review_queue(&self, filter: &QueueFilter, limit: usize) -> Result<Vec<ReviewItem>, StoreError> {
        // The banks and labels of an item are JSON lists of text.
        let elements = |column: &str| match self.dialect() {
            crate::Dialect::Sqlite => format!("SELECT value FROM json_each({column})"),
            crate::Dialect::Postgres => format!("SELECT jsonb_array_elements_text({column}::jsonb) AS value"),
        };
        let (banks, labels) = (elements("r.banks"), elements("r.labels"));
        self.db().query_map(
            &format!(
                "SELECT {COLUMNS} FROM review_item r JOIN submission s ON s.id = r.submission_id
                 WHERE r.state IN ('pending', 'escalated')
                   AND (CAST(?1 AS TEXT) IS NULL OR EXISTS (SELECT 1 FROM ({banks}) e WHERE e.value = ?1))
                   AND (CAST(?2 AS TEXT) IS NULL OR EXISTS (SELECT 1 FROM ({labels}) e WHERE e.value = ?2))
                 ORDER BY r.state = 'escalated' DESC, r.severity DESC, r.distance, r.account_strikes DESC,
                          r.created_at, r.submission_id
                 LIMIT ?3"
            ),
            params![filter.bank, filter.label, limit as i64],
            review_item,
        )
    }

    /// Items waiting, by state (`pending`, `escalated`).
    pub fn review_counts(&self) -> Result<(u64, u64), StoreError> {
        let counts = self.db().query_row(
            "SELECT count(CASE WHEN state = 'pending' THEN 1 END), count(CASE WHEN state = 'escalated' THEN 1 END)
             FROM review_item",
            params![],
            |r| Ok((r.get::<u64>(0)?, r.get::<u64>(1)?)),
        )?;
        Ok(counts.unwrap_or_default())
    }

    pub fn review_item(&self, submission_id: i64) -> Result<Option<ReviewItem>, StoreError> {
        self.db().query_row(
            &format!(
                "SELECT {COLUMNS} FROM review_item r JOIN submission s ON s.id = r.submission_id
                 WHERE r.submission_id = ?1"
            ),
            params![submission_id],
            review_item,
        )
    }

    /// Gives an item to `reviewer` until `until` (RFC 3339): nobody else can decide it
    /// meanwhile. Taking it again extends the claim; a lapsed claim can be taken over.
    pub fn claim_review(
        &mut self,
        submission_id: i64,
        reviewer: &str,
        now: &str,
        until: &str,
    ) -> Result<ReviewItem, StoreError> {
        let tx = self.db().transaction()?;
        let held = holder(&tx, submission_id)?;
        if let (Some(holder), Some(expires)) = (&held.claimed_by, &held.claim_expires_at)
            && holder != reviewer
            && expires.as_str() > now
        {
            return Err(StoreError::ReviewClaimed {
                submission_id,
                reviewer: holder.clone(),
                until: expires.clone(),
            });
        }
        tx.execute(
            "UPDATE review_item SET claimed_by = ?1, claim_expires_at = ?2 WHERE submission_id = ?3",
            params![reviewer, until, submission_id],
        )?;
        tx.commit()?;
        self.review_item(submission_id)?
            .ok_or(StoreError::NoSuchReview(submission_id))
    }

    /// Records a reviewer's outcome and the decisions that carry it out, in one
    /// transaction. Only the reviewer holding a live claim may decide.
    #[allow(clippy::too_many_arguments)]
    pub fn decide_review(
        &mut self,
        submission_id: i64,
        reviewer: &str,
        outcome: Outcome,
        note: &str,
        decisions: &[NewDecision],
        webhooks: &[String],
        payload: impl Fn(i64, i64, &NewDecision) -> String,
    ) -> Result<Vec<i64>, StoreError> {
        let actor = self.actor().to_string();
        let now = now_rfc3339();
        let tx = self.db().transaction()?;
        let held = holder(&tx, submission_id)?;
        let holds = held.claimed_by.as_deref() == Some(reviewer)
            && held.claim_expires_at.as_deref().is_some_and(|e| e > now.as_str());
        if !holds {
            return Err(StoreError::ReviewNotClaimed {
                submission_id,
                reviewer: reviewer.to_string(),
            });
        }
        let (content_id, account_id) = (held.content_id, held.account_id);
        let subject = DecisionSubject {
            submission_id,
            content_id: &content_id,
            account_id: &account_id,
        };
        let ids = write_decisions(&tx, &actor, reviewer, &subject, decisions, webhooks, &payload)?;
        let next_state = if outcome == Outcome::Escalated {
            "escalated"
        } else {
            "decided"
        };
        tx.execute(
            "UPDATE review_item SET state = ?1, decided_by = ?2, decided_at = ?3, outcome = ?4,
                                    claimed_by = NULL, claim_expires_at = NULL
             WHERE submission_id = ?5",
            params![next_state, reviewer, now, outcome.name(), submission_id],
        )?;
        audit::append(
            &tx,
            &actor,
            "review.decided",
            json!({ "submission_id": submission_id, "reviewer": reviewer, "outcome": outcome.name(),
                    "note": note, "decision_ids": ids }),
        )?;
        tx.commit()?;
        Ok(ids)
    }

    /// The media kept for a submission under review.
    pub fn submission_media(&self, submission_id: i64) -> Result<Option<StoredMedia>, StoreError> {
        self.stored_media("submission_id", submission_id)
    }

    /// The media a bank content was made from, when it was kept.
    pub fn content_media(&self, content_id: i64) -> Result<Option<StoredMedia>, StoreError> {
        self.stored_media("content_id", content_id)
    }

    fn stored_media(&self, column: &str, id: i64) -> Result<Option<StoredMedia>, StoreError> {
        self.db().query_row(
            &format!("SELECT mime, bytes FROM stored_media WHERE {column} = ?1"),
            params![id],
            |r| {
                Ok(StoredMedia {
                    mime: r.get(0)?,
                    bytes: r.get(1)?,
                })
            },
        )
    }
}

/// An appeal against an account's suspension.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Appeal {
    pub id: i64,
    pub account_id: String,
    pub reason: String,
    /// `pending`, `granted` (the account is reinstated) or `rejected` (the suspension
    /// stands).
    pub state: String,
    pub created_at: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
    pub note: Option<String>,
}

fn appeal(row: &Row<'_>) -> Result<Appeal, StoreError> {
    Ok(Appeal {
        id: row.get(0)?,
        account_id: row.get(1)?,
        reason: row.get(2)?,
        state: row.get(3)?,
        created_at: row.get(4)?,
        decided_by: row.get(5)?,
        decided_at: row.get(6)?,
        note: row.get(7)?,
    })
}

/// Files a pending appeal of `account_id`, or answers the one pending already.
fn insert_appeal(tx: &Db, account_id: &str, reason: &str) -> Result<i64, StoreError> {
    loop {
        // Migration 13's index holds one pending appeal per account: one filed by another
        // connection since (PostgreSQL waits for it to commit) makes this insert nothing.
        let filed: Option<i64> = tx.query_row(
            "INSERT INTO appeal (account_id, reason, created_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (account_id) WHERE state = 'pending' DO NOTHING RETURNING id",
            params![account_id, reason, now_rfc3339()],
            |r| r.get(0),
        )?;
        if let Some(id) = filed {
            return Ok(id);
        }
        let pending: Option<i64> = tx.query_row(
            "SELECT id FROM appeal WHERE account_id = ?1 AND state = 'pending'",
            params![account_id],
            |r| r.get(0),
        )?;
        if let Some(appeal_id) = pending {
            return Err(StoreError::AppealPending {
                account_id: account_id.to_string(),
                appeal_id,
            });
        }
        // Decided between the insert and the read (PostgreSQL): none pending now.
    }
}

const APPEAL_COLUMNS: &str = "id, account_id, reason, state, created_at, decided_by, decided_at, note";

impl Store {
    /// Files an appeal of a suspended account (one pending appeal per account).
    pub fn file_appeal(&mut self, account_id: &str, reason: &str) -> Result<Appeal, StoreError> {
        let actor = self.actor().to_string();
        let tx = self.db().transaction()?;
        let suspended: Option<String> = tx.query_row(
            "SELECT state FROM account WHERE id = ?1",
            params![account_id],
            |r| r.get(0),
        )?;
        if suspended.as_deref() != Some("suspended") {
            return Err(StoreError::NotSuspended(account_id.to_string()));
        }
        let id = insert_appeal(&tx, account_id, reason)?;
        audit::append(
            &tx,
            &actor,
            "appeal.filed",
            json!({ "appeal_id": id, "account_id": account_id, "reason": reason }),
        )?;
        tx.commit()?;
        self.appeal(id)?.ok_or(StoreError::NoSuchAppeal(id))
    }

    pub fn appeal(&self, id: i64) -> Result<Option<Appeal>, StoreError> {
        self.db().query_row(
            &format!("SELECT {APPEAL_COLUMNS} FROM appeal WHERE id = ?1"),
            params![id],
            appeal,
        )
    }

    /// Appeals waiting for a decision, oldest first.
    pub fn pending_appeals(&self) -> Result<Vec<Appeal>, StoreError> {
        self.db().query_map(
            &format!("SELECT {APPEAL_COLUMNS} FROM appeal WHERE state = 'pending' ORDER BY created_at, id"),
            params![],
            appeal,
        )
    }

    /// Decides an appeal. Reinstating writes a `reinstate_account` decision on the
    /// submission whose decision suspended the account (so the platform hears of it the
    /// way it heard of the suspension) and lets the account's strikes lapse; rejecting
    /// changes nothing but the appeal.
    #[allow(clippy::too_many_arguments)]
    pub fn decide_appeal(
        &mut self,
        id: i64,
        reviewer: &str,
        reinstate: bool,
        note: &str,
        webhooks: &[String],
        payload: impl Fn(i64, i64, &NewDecision) -> String,
    ) -> Result<Appeal, StoreError> {
        let actor = self.actor().to_string();
        let now = now_rfc3339();
        let tx = self.db().transaction()?;
        // Locked until the decision commits: a second reviewer deciding it at once waits,
        // then finds it decided (PostgreSQL).
        let found = tx.query_row(
            &format!(
                "SELECT {APPEAL_COLUMNS} FROM appeal WHERE id = ?1{}",
                tx.row_lock(RowLock::NoKeyUpdate)
            ),
            params![id],
            appeal,
        )?;
        let Some(filed) = found else {
            return Err(StoreError::NoSuchAppeal(id));
        };
        if filed.state != "pending" {
            return Err(StoreError::AppealDecided(id));
        }
        if reinstate {
            let suspended_by: Option<(i64, String)> = tx.query_row(
                "SELECT s.id, s.content_id FROM decision d JOIN submission s ON s.id = d.submission_id
                     WHERE s.account_id = ?1 AND d.action = 'suspend_account' ORDER BY d.id DESC LIMIT 1",
                params![filed.account_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let Some((submission_id, content_id)) = suspended_by else {
                return Err(StoreError::NotSuspended(filed.account_id));
            };
            let decision = NewDecision {
                action: "reinstate_account".to_string(),
                rule: "appeal".to_string(),
                reason: format!("appeal {id} granted by {reviewer}: {note}"),
                strike: None,
            };
            let subject = DecisionSubject {
                submission_id,
                content_id: &content_id,
                account_id: &filed.account_id,
            };
            write_decisions(&tx, &actor, reviewer, &subject, &[decision], webhooks, &payload)?;
            // Strikes that led to the suspension no longer count.
            tx.execute(
                "UPDATE strike SET expires_at = ?1 WHERE account_id = ?2 AND expires_at > ?1",
                params![now, filed.account_id],
            )?;
        }
        let state = if reinstate { "granted" } else { "rejected" };
        tx.execute(
            "UPDATE appeal SET state = ?1, decided_by = ?2, decided_at = ?3, note = ?4 WHERE id = ?5",
            params![state, reviewer, now, note, id],
        )?;
        audit::append(
            &tx,
            &actor,
            "appeal.decided",
            json!({ "appeal_id": id, "account_id": filed.account_id, "state": state, "note": note }),
        )?;
        tx.commit()?;
        self.appeal(id)?.ok_or(StoreError::NoSuchAppeal(id))
    }
}
