//! Submissions (every upload is a sighting), the decisions taken on them, and the webhook
//! outbox, written together: a decision and its deliveries land in one transaction, so a
//! crash can lose neither.

use crate::db::{Db, ToParam, params};
use serde::Serialize;
use serde_json::json;

use crate::sqlite::Store;
use crate::{StoreError, audit, now_rfc3339};

/// An upload as the platform describes it.
#[derive(Clone, Debug, Default)]
pub struct NewSubmission {
    /// The platform's id for the content: a retry with the same id is the same submission.
    pub content_id: String,
    pub account_id: String,
    pub source_url: Option<String>,
    pub posted_at: Option<String>,
    pub metadata: serde_json::Value,
    pub sha256: String,
    pub size: u64,
    /// What the file itself showed: format, size in pixels, PDQ, evidence. Goes to the
    /// ledger of sightings with the submission.
    pub media: crate::MediaFacts,
    /// The flood guard's hit counts and quarantines, written with the submission.
    pub flood: crate::FloodRecord,
    /// When a decision sends it to people: its place in the review queue, and the media
    /// they will look at (Cordon keeps media only for review).
    pub review: Option<crate::NewReviewItem>,
}

/// A decision to record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NewDecision {
    pub action: String,
    pub rule: String,
    pub reason: String,
    /// For a strike: its weight and when it expires; for a suspension: the account
    /// becomes suspended.
    #[serde(skip)]
    pub strike: Option<(u32, String)>,
}

/// An account as the platform and the reviewers see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Account {
    pub id: String,
    /// `active` or `suspended`.
    pub state: String,
    pub reason: Option<String>,
    /// Strikes not yet expired, and their summed weight.
    pub active_strikes: Vec<StrikeRow>,
    pub strike_weight: u64,
    /// Every decision on the account's submissions, newest first.
    pub history: Vec<serde_json::Value>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StrikeRow {
    pub decision_id: i64,
    pub weight: i64,
    pub created_at: String,
    pub expires_at: String,
}

/// What `record_submission` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recorded {
    /// A new submission, with the response stored for retries.
    New { id: i64, response: String },
    /// The content id was seen before: its first response, and nothing done again.
    Repeat { id: i64, response: String },
}

/// A webhook delivery waiting or done.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OutboxRow {
    pub id: i64,
    pub decision_id: i64,
    pub webhook: String,
    #[serde(skip)]
    pub payload: String,
    pub idempotency_key: String,
    pub attempts: i64,
    pub next_attempt_at: String,
    pub delivered_at: Option<String>,
    pub last_error: Option<String>,
}

impl Store {
    /// Records a submission, its decisions and one outbox row per decision and webhook, in
    /// one transaction. `payload(submission_id, decision_id, decision)` renders a
    /// delivery's body; `response(submission_id, decision_ids)` renders the answer kept
    /// for retries. A content id seen before records nothing and returns the first answer.
    pub fn record_submission(
        &mut self,
        submission: &NewSubmission,
        decisions: &[NewDecision],
        webhooks: &[String],
        payload: impl Fn(i64, i64, &NewDecision) -> String,
        response: impl FnOnce(i64, &[i64]) -> String,
    ) -> Result<Recorded, StoreError> {
        let actor = self.actor().to_string();
        let tx = self.db().transaction()?;
        // Asked first rather than left to the insert alone: on PostgreSQL an insert that
        // does nothing still uses up a submission id.
        if let Some((id, response)) = first_answer(&tx, &submission.content_id)? {
            return Ok(Recorded::Repeat { id, response });
        }
        let Some(submission_id) = insert_submission(&tx, submission)? else {
            // Recorded by another connection since the check (on PostgreSQL the insert
            // waited for it to commit): a repeat of that one.
            let (id, response) =
                first_answer(&tx, &submission.content_id)?.ok_or_else(|| StoreError::Corrupt {
                    what: "submission",
                    detail: format!("content id {} is taken yet not found", submission.content_id),
                })?;
            return Ok(Recorded::Repeat { id, response });
        };
        let facts = crate::MediaFacts {
            sha256: Some(submission.sha256.clone()),
            size: Some(submission.size),
            ..submission.media.clone()
        };
        let origin = crate::ledger::SightingOrigin {
            submission_id: Some(submission_id),
            posted_at: submission.posted_at.as_deref(),
            source_url: submission.source_url.as_deref(),
            account_id: Some(&submission.account_id),
            ..Default::default()
        };
        crate::ledger::append(&tx, self.node(), &origin, &facts)?;
        crate::flood::record(&tx, self.node(), &actor, &submission.flood)?;
        let subject = DecisionSubject {
            submission_id,
            content_id: &submission.content_id,
            account_id: &submission.account_id,
        };
        let decision_ids =
            write_decisions(&tx, &actor, "automatic", &subject, decisions, webhooks, &payload)?;
        if let Some(review) = &submission.review {
            crate::review::enqueue(&tx, submission_id, review)?;
        }
        let response = response(submission_id, &decision_ids);
        tx.execute(
            "UPDATE submission SET response = ?1 WHERE id = ?2",
            params![response, submission_id],
        )?;
        tx.commit()?;
        Ok(Recorded::New {
            id: submission_id,
            response,
        })
    }

    /// The submission with the platform's `content_id`, and its stored answer.
    pub fn submission_by_content_id(&self, content_id: &str) -> Result<Option<(i64, String)>, StoreError> {
        first_answer(self.db(), content_id)
    }

    /// Runs `work` while no other connection, of this node or another, runs work for the
    /// same account through this method: reading an account's strikes and recording new
    /// ones must not interleave, or two uploads at once could both stay under the
    /// suspension threshold. A session advisory lock on PostgreSQL; nothing on SQLite,
    /// whose one connection per process is already used by one request at a time.
    pub fn for_account<T, E: From<StoreError>>(
        &mut self,
        account_id: &str,
        work: impl FnOnce(&mut Store) -> Result<T, E>,
    ) -> Result<T, E> {
        if self.dialect() == crate::Dialect::Sqlite {
            return work(self);
        }
        let key = account_lock_key(account_id);
        self.db().execute("SELECT pg_advisory_lock(?1)", params![key])?;
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(self)));
        // An unlock that fails means the connection is gone, and the lock with it.
        let _ = self.db().execute("SELECT pg_advisory_unlock(?1)", params![key]);
        match result {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }

    /// The summed weight of `account_id`'s strikes that have not expired at `now`.
    pub fn active_strike_weight(&self, account_id: &str, now: &str) -> Result<u64, StoreError> {
        let weight: i64 = self.db().query_value(
            // PostgreSQL sums BIGINT into NUMERIC: back to BIGINT for both.
            "SELECT CAST(coalesce(sum(weight), 0) AS BIGINT) FROM strike WHERE account_id = ?1 AND expires_at > ?2",
            params![account_id, now],
        )?;
        Ok(weight.max(0) as u64)
    }

    /// An account's state, live strikes and history (`None` if Cordon never saw it).
    pub fn account(&self, account_id: &str) -> Result<Option<Account>, StoreError> {
        let conn = self.db();
        let known: i64 = conn.query_value(
            "SELECT count(*) FROM submission WHERE account_id = ?1",
            params![account_id],
        )?;
        if known == 0 {
            return Ok(None);
        }
        let (state, reason): (String, Option<String>) = conn
            .query_row(
                "SELECT state, reason FROM account WHERE id = ?1",
                params![account_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?
            .unwrap_or(("active".to_string(), None));
        let now = now_rfc3339();
        let active_strikes: Vec<StrikeRow> = conn.query_map(
            "SELECT decision_id, weight, created_at, expires_at FROM strike
             WHERE account_id = ?1 AND expires_at > ?2 ORDER BY id",
            params![account_id, now],
            |r| {
                Ok(StrikeRow {
                    decision_id: r.get(0)?,
                    weight: r.get(1)?,
                    created_at: r.get(2)?,
                    expires_at: r.get(3)?,
                })
            },
        )?;
        let history = conn.query_map(
            "SELECT d.id, d.action, d.rule, d.reason, d.created_at, s.content_id
             FROM decision d JOIN submission s ON s.id = d.submission_id
             WHERE s.account_id = ?1 ORDER BY d.id DESC LIMIT 1000",
            params![account_id],
            |r| {
                Ok(json!({
                    "decision_id": r.get::<i64>(0)?, "action": r.get::<String>(1)?,
                    "rule": r.get::<String>(2)?, "reason": r.get::<String>(3)?,
                    "at": r.get::<String>(4)?, "content_id": r.get::<String>(5)?,
                }))
            },
        )?;
        Ok(Some(Account {
            id: account_id.to_string(),
            state,
            reason,
            strike_weight: active_strikes.iter().map(|s| s.weight.max(0) as u64).sum(),
            active_strikes,
            history,
        }))
    }

    /// The stored answer to submission `id`.
    pub fn submission_response(&self, id: i64) -> Result<Option<String>, StoreError> {
        self.db().query_row(
            "SELECT response FROM submission WHERE id = ?1",
            params![id],
            |r| r.get(0),
        )
    }

    /// Deliveries due at `now`, oldest first.
    pub fn due_deliveries(&self, now: &str, limit: usize) -> Result<Vec<OutboxRow>, StoreError> {
        self.outbox_rows(
            "WHERE delivered_at IS NULL AND next_attempt_at <= ?1 ORDER BY next_attempt_at, id LIMIT ?2",
            params![now, limit as i64],
        )
    }

    /// Deliveries not yet made (including those that failed and wait for a retry).
    pub fn pending_deliveries(&self) -> Result<Vec<OutboxRow>, StoreError> {
        self.outbox_rows("WHERE delivered_at IS NULL ORDER BY id LIMIT ?1", params![10_000])
    }

    /// How many deliveries are not yet made.
    pub fn pending_delivery_count(&self) -> Result<u64, StoreError> {
        self.db().query_value(
            "SELECT count(*) FROM outbox WHERE delivered_at IS NULL",
            params![],
        )
    }

    fn outbox_rows(&self, filter: &str, values: &[&dyn ToParam]) -> Result<Vec<OutboxRow>, StoreError> {
        let sql = format!(
            "SELECT id, decision_id, webhook, payload, idempotency_key, attempts, next_attempt_at, delivered_at,
                    last_error FROM outbox {filter}"
        );
        self.db().query_map(&sql, values, |r| {
            Ok(OutboxRow {
                id: r.get(0)?,
                decision_id: r.get(1)?,
                webhook: r.get(2)?,
                payload: r.get(3)?,
                idempotency_key: r.get(4)?,
                attempts: r.get(5)?,
                next_attempt_at: r.get(6)?,
                delivered_at: r.get(7)?,
                last_error: r.get(8)?,
            })
        })
    }

    pub fn mark_delivered(&mut self, id: i64) -> Result<(), StoreError> {
        let actor = self.actor().to_string();
        let tx = self.db().transaction()?;
        tx.execute(
            "UPDATE outbox SET delivered_at = ?1, attempts = attempts + 1, last_error = NULL WHERE id = ?2",
            params![now_rfc3339(), id],
        )?;
        audit::append(&tx, &actor, "delivery.done", json!({ "outbox_id": id }))?;
        tx.commit()?;
        Ok(())
    }

    pub fn mark_failed(&mut self, id: i64, error: &str, next_attempt_at: &str) -> Result<(), StoreError> {
        self.db().execute(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?1, next_attempt_at = ?2 WHERE id = ?3",
            params![error, next_attempt_at, id],
        )?;
        Ok(())
    }
}

/// The id of the submission with the platform's `content_id`, and its stored answer.
fn first_answer(db: &Db, content_id: &str) -> Result<Option<(i64, String)>, StoreError> {
    db.query_row(
        "SELECT id, response FROM submission WHERE content_id = ?1",
        params![content_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
}

/// Inserts the submission, its answer still empty; answers its id, or `None` when its
/// content id is taken (the content id's UNIQUE constraint decides between two uploads at
/// once).
fn insert_submission(tx: &Db, submission: &NewSubmission) -> Result<Option<i64>, StoreError> {
    tx.query_row(
        "INSERT INTO submission (content_id, account_id, source_url, posted_at, metadata, received_at,
                                 sha256, size, response)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, '')
         ON CONFLICT (content_id) DO NOTHING RETURNING id",
        params![
            submission.content_id,
            submission.account_id,
            submission.source_url,
            submission.posted_at,
            submission.metadata.to_string(),
            now_rfc3339(),
            submission.sha256,
            submission.size as i64
        ],
        |r| r.get(0),
    )
}

/// Whose decisions are being written: the submission, and the platform's ids for it.
pub(crate) struct DecisionSubject<'a> {
    pub submission_id: i64,
    pub content_id: &'a str,
    pub account_id: &'a str,
}

/// Writes decisions on a submission with their audit entries, strikes, suspensions and
/// one outbox row per webhook, inside the caller's transaction. `decided_by` is
/// `automatic` for the policy, else the reviewer. Automatic and reviewed decisions take
/// this one path, so both reach the platform and the audit log alike.
pub(crate) fn write_decisions(
    tx: &Db,
    actor: &str,
    decided_by: &str,
    subject: &DecisionSubject<'_>,
    decisions: &[NewDecision],
    webhooks: &[String],
    payload: &impl Fn(i64, i64, &NewDecision) -> String,
) -> Result<Vec<i64>, StoreError> {
    let now = now_rfc3339();
    let submission_id = subject.submission_id;
    let mut decision_ids = Vec::new();
    for decision in decisions {
        let decision_id = tx.insert(
            "INSERT INTO decision (submission_id, action, rule, reason, actor, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
            params![
                submission_id,
                decision.action,
                decision.rule,
                decision.reason,
                decided_by,
                now
            ],
        )?;
        decision_ids.push(decision_id);
        audit::append(
            tx,
            actor,
            "decision.made",
            json!({ "decision_id": decision_id, "submission_id": submission_id,
                    "content_id": subject.content_id, "account_id": subject.account_id,
                    "action": decision.action, "rule": decision.rule, "reason": decision.reason }),
        )?;
        if let Some((weight, expires_at)) = &decision.strike {
            tx.execute(
                "INSERT INTO strike (account_id, decision_id, weight, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![subject.account_id, decision_id, weight, now, expires_at],
            )?;
        }
        let account_state = match decision.action.as_str() {
            "suspend_account" => Some("suspended"),
            "reinstate_account" => Some("active"),
            _ => None,
        };
        if let Some(state) = account_state {
            tx.execute(
                "INSERT INTO account (id, state, reason, updated_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(id) DO UPDATE SET state = ?2, reason = ?3, updated_at = ?4",
                params![subject.account_id, state, decision.reason, now],
            )?;
        }
        let body = payload(submission_id, decision_id, decision);
        for webhook in webhooks {
            tx.execute(
                "INSERT INTO outbox (decision_id, webhook, payload, idempotency_key, next_attempt_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    decision_id,
                    webhook,
                    body,
                    format!("decision-{decision_id}-{webhook}"),
                    now
                ],
            )?;
        }
    }
    Ok(decision_ids)
}

/// The advisory lock key of one account: 64 bits of its id's SHA-256. Two accounts that
/// share a key only wait for each other.
fn account_lock_key(account_id: &str) -> i64 {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("cordon-account:{account_id}").as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}
