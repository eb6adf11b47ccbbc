//! Cordon's own API, `/v1`: submissions in, decisions out.
//!
//! `POST /v1/submissions` hashes the upload, matches it, applies the policy and answers
//! synchronously; the decisions and their webhook deliveries are written in one
//! transaction, and a retry with the same `content_id` gets the first answer back with
//! nothing done twice. Errors here are `{"error": {"code", "message"}}`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Extension, FromRequest, Multipart, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use cordon_engine::access::Role;
use cordon_engine::hash_list::HashListFormat;
use cordon_engine::image_signals::{QueryOptions, QuerySignals};
use cordon_engine::matcher::{Lookup, Match};
use cordon_engine::provenance::{self, Asked, media_facts};
use cordon_engine::review;
use cordon_signals::ImageFormat;
use cordon_signals::pdq::QUALITY_THRESHOLD;
use cordon_signals::{PdqHash, decode, quoted_excerpt};
use cordon_store::{NewSubmission, Recorded, StoredMedia};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::auth;
use crate::banking::import_hash_list;
use crate::error::ApiError;
use crate::state::{AppState, Caller, blocking};
use crate::upload::read_upload;

type Shared = State<Arc<AppState>>;

/// Longest platform id accepted for content and accounts.
const MAX_ID_LEN: usize = 256;

pub fn routes(state: Arc<AppState>) -> Router<Arc<AppState>> {
    let submitter = Router::new()
        .route("/v1/submissions", post(submit))
        .route("/v1/submissions/{id}", get(get_submission))
        .route("/v1/accounts/{account_id}", get(get_account))
        .route("/v1/accounts/{account_id}/appeal", post(file_appeal))
        .route("/v1/provenance", post(provenance))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            |s: Shared, r: Request, n: Next| auth::require(Role::Submitter, s, r, n),
        ));
    let curator = Router::new()
        .route("/v1/quarantine", get(quarantine))
        .route("/v1/quarantine/{content_id}/release", post(release_quarantine))
        .route("/v1/banks/{name}/import", post(import_bank))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            |s: Shared, r: Request, n: Next| auth::require(Role::Curator, s, r, n),
        ));
    let admin = Router::new()
        .route("/v1/outbox", get(outbox))
        .route_layer(middleware::from_fn_with_state(
            state,
            |s: Shared, r: Request, n: Next| auth::require(Role::Admin, s, r, n),
        ));
    submitter
        .merge(curator)
        .merge(admin)
        .route_layer(middleware::map_response(native_errors))
}

/// Rewrites `{"message": m}` errors (from the key check, or any handler here) as
/// `{"error": {"code": ..., "message": m}}`.
async fn native_errors(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let retry_after = response.headers().get(axum::http::header::RETRY_AFTER).cloned();
    let bytes = axum::body::to_bytes(response.into_body(), 64 * 1024)
        .await
        .unwrap_or_default();
    let message = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(&bytes).trim().to_string());
    let code = match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::PAYLOAD_TOO_LARGE => "too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media",
        StatusCode::TOO_MANY_REQUESTS => "too_many_requests",
        s if s.is_client_error() => "invalid_request",
        _ => "internal",
    };
    let mut answer = (
        status,
        Json(json!({ "error": { "code": code, "message": message } })),
    )
        .into_response();
    if let Some(value) = retry_after {
        answer
            .headers_mut()
            .insert(axum::http::header::RETRY_AFTER, value);
    }
    answer
}

fn platform_id(fields: &BTreeMap<String, String>, name: &str) -> Result<String, ApiError> {
    let value = fields
        .get(name)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::bad_request(format!("the field `{name}` is required")))?;
    if value.len() > MAX_ID_LEN || value.chars().any(char::is_control) {
        return Err(ApiError::bad_request(format!(
            "`{name}` must be at most {MAX_ID_LEN} bytes without control characters"
        )));
    }
    Ok(value)
}

/// A submission from its form fields (`content_id`, `account_id`, and optional
/// `source_url`, `posted_at`, `metadata`) and its media, checked.
pub fn new_submission(fields: &BTreeMap<String, String>, bytes: &[u8]) -> Result<NewSubmission, ApiError> {
    let posted_at = match fields.get("posted_at") {
        None => None,
        Some(text) => Some(posted_at(text, time::OffsetDateTime::now_utc())?),
    };
    let metadata = match fields.get("metadata") {
        None => json!({}),
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(object @ Value::Object(_)) => object,
            Ok(_) => return Err(ApiError::bad_request("`metadata` must be a JSON object")),
            Err(e) => return Err(ApiError::bad_request(format!("`metadata` is not JSON: {e}"))),
        },
    };
    let source_url = fields.get("source_url").cloned();
    if source_url.as_ref().is_some_and(|u| u.len() > 2048) {
        return Err(ApiError::bad_request("`source_url` is longer than 2048 bytes"));
    }
    let digest = Sha256::digest(bytes);
    Ok(NewSubmission {
        content_id: platform_id(fields, "content_id")?,
        account_id: platform_id(fields, "account_id")?,
        source_url,
        posted_at,
        metadata,
        sha256: digest.iter().map(|b| format!("{b:02x}")).collect(),
        size: bytes.len() as u64,
        ..NewSubmission::default()
    })
}

/// Latest `posted_at` accepted, past the server's clock: room for the poster's clock to
/// run a little fast, but not for a date no post can have.
const POSTED_AT_AHEAD_SECONDS: i64 = 24 * 3600;

/// `posted_at` (RFC 3339) as the store writes times (UTC, milliseconds), refused unless it
/// lies between 1970 and a day after `now`. RFC 3339 parsing alone lets through years 0
/// and 9999 with any offset of up to ±23:59, whose UTC form is before year 0 or after
/// 9999: formatting those panics (a dropped connection, a crash-looping worker) or
/// writes a time that is not RFC 3339. No post is from before 1970 or from the future.
fn posted_at(text: &str, now: time::OffsetDateTime) -> Result<String, ApiError> {
    let at = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|e| ApiError::bad_request(format!("`posted_at` is not RFC 3339: {e}")))?;
    // Seconds since 1970 are plain integer arithmetic on every representable time, so
    // this check cannot itself overflow the way moving the time to UTC does.
    let seconds = at.unix_timestamp();
    let latest = now.unix_timestamp().saturating_add(POSTED_AT_AHEAD_SECONDS);
    if !(0..=latest).contains(&seconds) {
        return Err(ApiError::bad_request(format!(
            "`posted_at` {text} is not between 1970-01-01T00:00:00Z and a day from now"
        )));
    }
    Ok(cordon_store::format_time(at))
}

fn match_json(m: &Match) -> Value {
    json!(m)
}

async fn submit(
    State(state): Shared,
    Extension(caller): Extension<Caller>,
    multipart: Multipart,
) -> Result<Response, ApiError> {
    let form = read_upload(multipart, "media").await?;
    let submission = new_submission(&form.fields, &form.bytes)?;
    let answer = blocking(move || decide(&state, &caller, &form.bytes, submission)).await?;
    let (status, body) = match answer {
        Recorded::New { response, .. } => (StatusCode::CREATED, response),
        Recorded::Repeat { response, .. } => (StatusCode::OK, response),
    };
    Ok((status, [("content-type", "application/json")], body).into_response())
}

/// Hashes, matches and decides an upload, and records it all in one transaction (blocking
/// work), for `/v1/submissions` and for upload streams alike. A `content_id` seen before
/// decides nothing again: its first answer comes back.
pub fn decide(
    state: &AppState,
    caller: &Caller,
    bytes: &[u8],
    mut submission: NewSubmission,
) -> Result<Recorded, ApiError> {
    // A retry decodes, matches and decides nothing again: it gets the first answer.
    if let Some((id, response)) = state.store().submission_by_content_id(&submission.content_id)? {
        return Ok(Recorded::Repeat { id, response });
    }
    let image = decode(bytes, &state.limits)?;
    let query = QuerySignals::of(&image, &state.hasher, QueryOptions::default());
    submission.media = media_facts(bytes, image.width(), image.height(), query.hash, query.quality);
    let hash = query.hash.to_hex();
    // The matches and their banks' labels from one look at the matcher, so that the rules
    // and the review queue see the banks as they were when the upload matched them.
    let (mut matches, labels) = {
        let matcher = state.matcher();
        let matches = matcher.lookup(&query, &Lookup::default());
        let labels: BTreeMap<String, Vec<String>> = matches
            .iter()
            .map(|m| (m.bank.as_str().to_string(), matcher.bank_labels(m.bank.as_str())))
            .collect();
        (matches, labels)
    };
    let labels_of = |bank: &str| labels.get(bank).cloned().unwrap_or_default();
    let now = time::OffsetDateTime::now_utc();
    submission.flood = {
        // This upload's hits counted with every node's, in the store, before the guard's
        // lock is taken: two uploads never judge by the same count.
        let (entries, window, since) = {
            let flood = state.flood();
            let config = flood.config();
            (
                flood.counted_entries(&matches),
                cordon_store::format_time(config.window_start(now)),
                cordon_store::format_time(config.history_start(now)),
            )
        };
        let counted = state.store().count_hits(&entries, &window, &since)?;
        state.flood().observe(&mut matches, now, &counted)
    };
    let quarantined = submission.flood.quarantines.clone();
    let mut decisions = state.policy.decide(&matches, labels_of);
    // From reading the account's strikes to recording the new ones, nothing else is
    // decided for this account, so two uploads of one account cannot both miss the
    // suspension threshold.
    let _writing = state.writing_indexes();
    let mut store = state.store_as(caller);
    let account = submission.account_id.clone();
    let recorded = store.for_account(&account, |store| {
        let active = store.active_strike_weight(&submission.account_id, &cordon_store::now_rfc3339())?;
        state
            .policy
            .apply_strikes(&mut decisions, active, time::OffsetDateTime::now_utc());
        // Media is kept only when people will have to look at it.
        let kept = || StoredMedia {
            mime: ImageFormat::sniff(bytes)
                .map_or("application/octet-stream", ImageFormat::mime)
                .to_string(),
            bytes: bytes.to_vec(),
        };
        submission.review = review::review_item(
            &state.policy.review,
            &decisions,
            &matches,
            labels_of,
            active,
            kept,
        );
        let webhooks: Vec<String> = state.policy.webhooks.iter().map(|w| w.name.clone()).collect();
        let matches_json: Vec<Value> = matches.iter().map(match_json).collect();
        let matches_value = Value::Array(matches_json.clone());
        let payload = |submission_id: i64, decision_id: i64, decision: &cordon_store::NewDecision| {
            let about = json!({ "id": submission_id, "content_id": submission.content_id,
                                "account_id": submission.account_id, "source_url": submission.source_url,
                                "posted_at": submission.posted_at, "sha256": submission.sha256 });
            crate::delivery::decision_payload(&about, &matches_value, decision_id, decision)
        };
        let response = |submission_id: i64, decision_ids: &[i64]| {
            let decisions_json: Vec<Value> = decisions
                .iter()
                .zip(decision_ids)
                .map(|(d, id)| json!({ "id": id, "action": d.action, "rule": d.rule, "reason": d.reason }))
                .collect();
            json!({
                "id": submission_id,
                "content_id": submission.content_id,
                "signals": { "pdq": hash },
                "quality": query.quality,
                "matches": matches_json,
                "decisions": decisions_json,
            })
            .to_string()
        };
        Ok::<_, ApiError>(store.record_submission(&submission, &decisions, &webhooks, payload, response)?)
    })?;
    if let Recorded::New { id, .. } = recorded {
        // Stored: hold the entries it quarantined here (other nodes learn from the feed).
        let mut flood = state.flood();
        for entry in &quarantined {
            flood.quarantine(entry.content_id, &entry.bank);
        }
        drop(flood);
        // The sighting was written with the submission; make it findable at once.
        if let Some(sighting) = store.sighting_of_submission(id)?
            && sighting.media.quality.is_some_and(|q| q >= QUALITY_THRESHOLD)
        {
            state.ledger_mut().add(sighting.id, query.hash);
        }
        state
            .metrics
            .record_submission(!matches.is_empty(), decisions.iter().map(|d| d.action.as_str()));
        state.deliveries.notify_one();
    }
    Ok(recorded)
}

async fn get_submission(State(state): Shared, Path(id): Path<i64>) -> Result<Response, ApiError> {
    let response = blocking(move || Ok(state.store().submission_response(id)?)).await?;
    match response {
        Some(body) => Ok(([("content-type", "application/json")], body).into_response()),
        None => Err(ApiError::not_found(format!("no submission {id}"))),
    }
}

/// Bank entries the flood guard quarantined: `quarantined` (their matches go to review)
/// and `released` (a person let them act again).
async fn quarantine(State(state): Shared) -> Result<Json<Value>, ApiError> {
    let rows = blocking(move || Ok(state.store().quarantines()?)).await?;
    let (released, quarantined): (Vec<_>, Vec<_>) = rows.into_iter().partition(|q| q.released_at.is_some());
    Ok(Json(json!({ "quarantined": quarantined, "released": released })))
}

/// Lets a quarantined entry act on its own again, and exempts it from the flood guard.
async fn release_quarantine(
    State(state): Shared,
    Extension(caller): Extension<Caller>,
    Path(content_id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let released = blocking(move || {
        let _writing = state.writing_indexes();
        let released = state.store_as(&caller).release_quarantine(content_id)?;
        state.flood().release(content_id);
        Ok(released)
    })
    .await?;
    Ok(Json(json!(released)))
}

/// Deliveries not made yet: `pending` (never tried) and `failed` (tried, waiting to retry).
async fn outbox(State(state): Shared) -> Result<Json<Value>, ApiError> {
    let rows = blocking(move || Ok(state.store().pending_deliveries()?)).await?;
    let (failed, pending): (Vec<_>, Vec<_>) = rows.into_iter().partition(|r| r.attempts > 0);
    Ok(Json(json!({ "pending": pending, "failed": failed })))
}

/// An account: `active` or `suspended` (and why), live strikes, decision history.
async fn get_account(State(state): Shared, Path(account_id): Path<String>) -> Result<Json<Value>, ApiError> {
    let lookup = account_id.clone();
    let account = blocking(move || Ok(state.store().account(&lookup)?)).await?;
    match account {
        Some(account) => Ok(Json(json!(account))),
        None => Err(ApiError::not_found(format!(
            "no submissions from account {account_id}"
        ))),
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AppealBody {
    reason: String,
}

/// `POST /v1/accounts/<id>/appeal` `{"reason": …}`: the platform passes on a suspended
/// user's appeal; reviewers decide it in the console (`/console/appeals`).
async fn file_appeal(
    State(state): Shared,
    Extension(caller): Extension<Caller>,
    Path(account_id): Path<String>,
    body: Result<Json<AppealBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) =
        body.map_err(|e| ApiError::bad_request(format!("expected {{\"reason\": \"…\"}}: {e}")))?;
    let reason = body.reason.trim().to_string();
    if reason.is_empty() || reason.chars().count() > 2000 {
        return Err(ApiError::bad_request("`reason` must be 1 to 2000 characters"));
    }
    let appeal = blocking(move || Ok(state.store_as(&caller).file_appeal(&account_id, &reason)?)).await?;
    Ok((StatusCode::CREATED, Json(json!(appeal))).into_response())
}

/// What `/v1/provenance` is asked about, as JSON (media comes as a multipart upload).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ProvenanceBody {
    pdq: Option<String>,
    submission_id: Option<i64>,
}

#[derive(serde::Deserialize)]
struct ProvenanceParams {
    /// How many of the earliest sightings to list (`provenance::SIGHTINGS_LISTED` when
    /// absent); counts and the verdict weigh them all. Read as text so that a bad one is
    /// answered by the handler, after the body.
    limit: Option<String>,
}

impl ProvenanceParams {
    fn listed(&self) -> Result<usize, ApiError> {
        let Some(limit) = &self.limit else {
            return Ok(provenance::SIGHTINGS_LISTED);
        };
        match limit.parse::<usize>() {
            Ok(n @ 1..=provenance::MAX_SIGHTINGS_LISTED) => Ok(n),
            _ => Err(ApiError::bad_request(format!(
                "limit {} is not a whole number from 1 to {}",
                quoted_excerpt(limit),
                provenance::MAX_SIGHTINGS_LISTED
            ))),
        }
    }
}

/// `POST /v1/provenance[?limit=N]`: multipart `media`, or JSON `{"pdq": hex}` or
/// `{"submission_id": id}`; the earliest sightings of the picture or a near copy (all
/// counted in `sightings_total`), and a verdict with its reasons.
async fn provenance(
    State(state): Shared,
    Query(params): Query<ProvenanceParams>,
    request: Request,
) -> Result<Json<Value>, ApiError> {
    // A bad limit is answered once the body is read: refused mid-upload, a client still
    // sending sees a broken connection instead of the answer.
    let listed = params.listed();
    let is_multipart = request
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/"));
    if is_multipart {
        let multipart = Multipart::from_request(request, &state)
            .await
            .map_err(|e| ApiError::bad_request(format!("malformed multipart body: {e}")))?;
        let form = read_upload(multipart, "media").await?;
        let listed = listed?;
        return blocking(move || {
            let image = decode(&form.bytes, &state.limits)?;
            let query = QuerySignals::of(&image, &state.hasher, QueryOptions::default());
            answer_provenance(&state, &query, &Asked::of_file(&form.bytes, None), listed)
        })
        .await;
    }
    let Json(body) = Json::<ProvenanceBody>::from_request(request, &state)
        .await
        .map_err(|e| ApiError::bad_request(format!("expected multipart `media` or JSON: {e}")))?;
    let listed = listed?;
    blocking(move || match (body.pdq, body.submission_id) {
        (Some(hex), None) => {
            let hash: PdqHash = hex
                .parse()
                .map_err(|e| ApiError::bad_request(format!("bad pdq: {e}")))?;
            answer_provenance(&state, &QuerySignals::of_hash(hash), &Asked::default(), listed)
        }
        (None, Some(id)) => {
            let sighting = state
                .store()
                .sighting_of_submission(id)?
                .ok_or_else(|| ApiError::not_found(format!("no submission {id}")))?;
            let hash: PdqHash = sighting
                .media
                .pdq
                .as_deref()
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| {
                    ApiError::bad_request(format!("submission {id} has no PDQ hash to look for"))
                })?;
            answer_provenance(
                &state,
                &QuerySignals::of_hash(hash),
                &Asked::of_sighting(&sighting),
                listed,
            )
        }
        _ => Err(ApiError::bad_request(
            "give exactly one of `pdq` and `submission_id`",
        )),
    })
    .await
}

fn answer_provenance(
    state: &AppState,
    query: &QuerySignals,
    asked: &Asked,
    listed: usize,
) -> Result<Json<Value>, ApiError> {
    let mut hits = state.ledger().find(query);
    // Crops and captions PDQ misses: through the bank content the local features match
    // (disabled content included: where a picture was seen does not depend on that).
    let by_features = if query.features.is_empty() {
        Vec::new()
    } else {
        let everything = Lookup {
            include_disabled: true,
            ..Lookup::default()
        };
        state.matcher().lookup(query, &everything)
    };
    let store = state.store();
    state
        .ledger()
        .find_through_banks(&store, &by_features, &mut hits)?;
    let report = provenance::report(&store, &hits, asked, listed)?;
    serde_json::to_value(report)
        .map(Json)
        .map_err(|e| ApiError::internal(format!("encoding the answer: {e}")))
}

#[derive(serde::Deserialize)]
struct ImportParams {
    /// `tx`, `csv` or `json`; sniffed from the first bytes when absent.
    format: Option<String>,
}

/// `POST /v1/banks/<name>/import`: a hash list (python-threatexchange's tx format, CSV or
/// a JSON list) as the body, imported all or nothing. The body is spooled to an unnamed
/// temporary file first, so a slow upload never holds the store.
async fn import_bank(
    State(state): Shared,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    Query(params): Query<ImportParams>,
    body: axum::body::Body,
) -> Result<Json<Value>, ApiError> {
    let format = match params.format.as_deref() {
        None => None,
        Some("tx") => Some(HashListFormat::Tx),
        Some("csv") => Some(HashListFormat::Csv),
        Some("json") => Some(HashListFormat::Json),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "unknown format {other:?}: expected tx, csv or json"
            )));
        }
    };
    // A typo in the bank's name is refused before a large body is read.
    let known = (state.clone(), name.clone());
    blocking(move || known.0.store().bank(&known.1).map(drop).map_err(ApiError::from)).await?;
    let spooled = spool(body, state.policy.limits.max_import_bytes).await?;
    blocking(move || {
        let input = std::io::BufReader::with_capacity(1 << 16, spooled);
        import_hash_list(&state, &caller, &name, input, format)
    })
    .await
    .map(Json)
}

/// Copies a request body into an unnamed temporary file (gone when closed, or when the
/// process dies), refusing it with 413 past `max_bytes`; answers the file rewound.
async fn spool(mut body: axum::body::Body, max_bytes: u64) -> Result<std::fs::File, ApiError> {
    use http_body_util::BodyExt;
    use std::io::{Seek, Write};
    let (chunks, mut received) = tokio::sync::mpsc::channel::<axum::body::Bytes>(16);
    let writer = tokio::task::spawn_blocking(move || -> std::io::Result<std::fs::File> {
        let mut file = tempfile::tempfile()?;
        while let Some(chunk) = received.blocking_recv() {
            file.write_all(&chunk)?;
        }
        file.rewind()?;
        Ok(file)
    });
    let mut total = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ApiError::bad_request(format!("reading the body: {e}")))?;
        let Ok(data) = frame.into_data() else { continue };
        total += data.len() as u64;
        if total > max_bytes {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the hash list is larger than {max_bytes} bytes"),
            ));
        }
        if chunks.send(data).await.is_err() {
            break; // the writer failed: its error is reported below
        }
    }
    drop(chunks);
    writer
        .await
        .map_err(|e| ApiError::internal(format!("spooling failed: {e}")))?
        .map_err(|e| ApiError::internal(format!("spooling the upload: {e}")))
}
