//! Delivers the webhook outbox: every decision is POSTed to every configured webhook,
//! signed, a few at a time, and retried with exponential backoff until the receiver answers 2xx. Rows are
//! only marked delivered after a 2xx, so a crash at any point means a later retry, never a
//! lost decision (receivers dedupe on the `Idempotency-Key` header, or the same key in the
//! body).

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::state::{AppState, blocking};

/// How long one delivery may take.
const TIMEOUT: Duration = Duration::from_secs(10);
/// The longest wait between two tries.
const MAX_BACKOFF_SECONDS: i64 = 3600;
/// Deliveries in flight at once.
const CONCURRENT: usize = 8;
/// How often the outbox is looked at when nothing wakes the worker.
const POLL: Duration = Duration::from_millis(500);

/// `sha256=<hex HMAC-SHA256 of body with secret>`, the `X-Cordon-Signature` header.
/// (`None` cannot happen: HMAC takes keys of any length.)
pub fn signature(secret: &str, body: &[u8]) -> Option<String> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).ok()?;
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    Some(format!(
        "sha256={}",
        digest.iter().map(|b| format!("{b:02x}")).collect::<String>()
    ))
}

/// What a webhook receives for a decision: the decision, the submission it is about (an
/// object with at least `id` and `account_id`), the account, and the matches. One payload
/// serves every webhook; each delivery adds its own `idempotency_key` ([`delivery_body`]).
pub fn decision_payload(
    submission: &serde_json::Value,
    matches: &serde_json::Value,
    decision_id: i64,
    decision: &cordon_store::NewDecision,
) -> String {
    serde_json::json!({
        "event": "decision",
        "decision": { "id": decision_id, "action": decision.action, "rule": decision.rule,
                      "reason": decision.reason },
        "submission": submission,
        "account": { "id": submission["account_id"] },
        "matches": matches,
    })
    .to_string()
}

/// The body sent for an outbox row: its payload with the row's idempotency key, the one
/// the `Idempotency-Key` header carries. A key per decision alone would make a receiver
/// that two webhooks share, deduplicating on the body, drop the second webhook's
/// delivery. Rows written before the key was per webhook have it replaced. The same row
/// gives the same bytes every try, so retries stay duplicates of one delivery.
fn delivery_body(row: &cordon_store::OutboxRow) -> Result<String, String> {
    let mut payload: serde_json::Value = serde_json::from_str(&row.payload)
        .map_err(|e| format!("outbox row {} holds no JSON payload: {e}", row.id))?;
    let object = payload
        .as_object_mut()
        .ok_or_else(|| format!("outbox row {}'s payload is not a JSON object", row.id))?;
    object.insert("idempotency_key".to_string(), row.idempotency_key.clone().into());
    Ok(payload.to_string())
}

/// Seconds to wait after the `attempts`-th failed try: 2, 4, 8, ... up to an hour.
fn backoff(attempts: i64) -> i64 {
    1i64.checked_shl(attempts.clamp(0, 12) as u32)
        .unwrap_or(MAX_BACKOFF_SECONDS)
        .min(MAX_BACKOFF_SECONDS)
}

/// Runs until the process ends.
pub async fn deliver_forever(state: Arc<AppState>) {
    let client = match reqwest::Client::builder().timeout(TIMEOUT).build() {
        Ok(client) => client,
        Err(error) => {
            eprintln!("cordon: webhook delivery disabled: {error}");
            return;
        }
    };
    loop {
        if !state.leading.load(std::sync::atomic::Ordering::Acquire) {
            // Another node delivers; this one waits to be told it leads, or looks again.
            tokio::select! {
                () = state.deliveries.notified() => {}
                () = tokio::time::sleep(POLL) => {}
            }
            continue;
        }
        let worked = deliver_due(&state, &client).await;
        if !worked {
            tokio::select! {
                () = state.deliveries.notified() => {}
                () = tokio::time::sleep(POLL) => {}
            }
        }
    }
}

/// Tries every due delivery once; returns whether there were any.
async fn deliver_due(state: &Arc<AppState>, client: &reqwest::Client) -> bool {
    let reader = state.clone();
    let due =
        match blocking(move || Ok(reader.store().due_deliveries(&cordon_store::now_rfc3339(), 64)?)).await {
            Ok(due) => due,
            Err(error) => {
                eprintln!("cordon: reading the outbox: {}", error.message);
                return false;
            }
        };
    let any = !due.is_empty();
    // Several at once, so that one slow receiver does not hold up every other delivery.
    let mut running = tokio::task::JoinSet::new();
    for row in due {
        if running.len() >= CONCURRENT {
            running.join_next().await;
        }
        running.spawn(deliver_one(state.clone(), client.clone(), row));
    }
    while running.join_next().await.is_some() {}
    any
}

/// Sends one delivery: `Ok` once the receiver answered 2xx, otherwise why not.
async fn send(
    state: &AppState,
    client: &reqwest::Client,
    row: &cordon_store::OutboxRow,
) -> Result<(), String> {
    let webhook = state
        .policy
        .webhooks
        .iter()
        .find(|w| w.name == row.webhook)
        .ok_or_else(|| format!("webhook {} is no longer configured", row.webhook))?;
    let body = delivery_body(row)?;
    let sent = client
        .post(&webhook.url)
        .header("content-type", "application/json")
        .header(
            "x-cordon-signature",
            signature(&webhook.secret, body.as_bytes()).unwrap_or_default(),
        )
        .header("idempotency-key", &row.idempotency_key)
        .body(body)
        .send()
        .await;
    match sent {
        Ok(response) if response.status().is_success() => Ok(()),
        Ok(response) => Err(format!("{} answered {}", webhook.url, response.status())),
        Err(error) => Err(format!("{}: {error}", webhook.url)),
    }
}

/// Sends one delivery and records the outcome.
async fn deliver_one(state: Arc<AppState>, client: reqwest::Client, row: cordon_store::OutboxRow) {
    let outcome = send(&state, &client, &row).await;
    let (id, attempts) = (row.id, row.attempts);
    let recorded = blocking(move || {
        let mut store = state.store();
        store.set_actor("cordon:delivery");
        match outcome {
            Ok(()) => store.mark_delivered(id)?,
            Err(error) => {
                let next = time::OffsetDateTime::now_utc() + time::Duration::seconds(backoff(attempts + 1));
                store.mark_failed(id, &error, &cordon_store::format_time(next))?;
            }
        }
        Ok(())
    })
    .await;
    if let Err(error) = recorded {
        eprintln!("cordon: recording a delivery: {}", error.message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        assert_eq!((1..=4).map(backoff).collect::<Vec<_>>(), [2, 4, 8, 16]);
        assert_eq!(backoff(40), MAX_BACKOFF_SECONDS);
    }

    fn row(payload: &str) -> cordon_store::OutboxRow {
        cordon_store::OutboxRow {
            id: 7,
            decision_id: 3,
            webhook: "archive".to_string(),
            payload: payload.to_string(),
            idempotency_key: "decision-3-archive".to_string(),
            attempts: 0,
            next_attempt_at: String::new(),
            delivered_at: None,
            last_error: None,
        }
    }

    #[test]
    fn the_body_carries_the_rows_key_in_place_of_a_key_per_decision() {
        let old = r#"{"event":"decision","idempotency_key":"decision-3","decision":{"id":3}}"#;
        let body: serde_json::Value = serde_json::from_str(&delivery_body(&row(old)).unwrap()).unwrap();
        assert_eq!(body["idempotency_key"], "decision-3-archive");
        assert_eq!(body["decision"]["id"], 3);
        assert!(delivery_body(&row("[1]")).unwrap_err().contains("outbox row 7"));
        assert!(delivery_body(&row("{")).is_err());
    }

    #[test]
    fn signature_is_hmac_sha256_in_hex() {
        // RFC 4231 test case 2.
        let mac = signature("Jefe", b"what do ya want for nothing?").unwrap();
        assert_eq!(
            mac,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
