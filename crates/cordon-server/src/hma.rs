//! The HMA 2.0 API (`../shared/docs/hma.md`, section 2): the same paths, parameters and
//! response shapes, so an HMA client works unchanged once it sends a key. Distances are
//! strings and errors are `{"message": ...}`, as in HMA.
//!
//! Differences, on purpose: every route needs a key (HMA has no auth); content and hashes
//! added here match on the very next request (HMA rebuilds its index every few minutes);
//! each bank keeps its own threshold.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use cordon_engine::access::Role;
use cordon_engine::hash_list::{canonical_signal, check_content_metadata};
use cordon_engine::image_signals::{QueryOptions, QuerySignals};
use cordon_engine::matcher::{DEFAULT_PDQ_THRESHOLD, Lookup, Match};
use cordon_signals::{PdqHash, SignalType, decode};
use cordon_store::{Bank, BankName, BankUpdate, Content, ContentId, NewBank};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth;
use crate::banking::{DISABLED_FOR_GOOD, NewBankContent, store_content};
use crate::error::ApiError;
use crate::state::{AppState, Caller, blocking};
use crate::upload::read_upload;

type Shared = State<Arc<AppState>>;

pub fn routes(state: Arc<AppState>) -> Router<Arc<AppState>> {
    let submitter = Router::new()
        .route("/h/hash", get(hash_url).post(hash_media))
        .route("/m/lookup", get(lookup_signal).post(lookup_media))
        .route("/m/raw_lookup", get(raw_lookup))
        .route("/m/compare", post(compare))
        .route("/m/index/status", get(index_status))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            |s: Shared, r: Request, n: Next| auth::require(Role::Submitter, s, r, n),
        ));
    let curator = Router::new()
        .route("/c/banks", get(list_banks).post(create_bank))
        .route(
            "/c/bank/{name}",
            get(get_bank).put(update_bank).delete(delete_bank),
        )
        .route("/c/bank/{name}/content", post(add_content))
        .route("/c/bank/{name}/signal", post(add_signal))
        .route(
            "/c/bank/{name}/content/{id}",
            get(get_content).put(update_content).delete(delete_content),
        )
        .route_layer(middleware::from_fn_with_state(
            state,
            |s: Shared, r: Request, n: Next| auth::require(Role::Curator, s, r, n),
        ));
    submitter.merge(curator)
}

// ---- media -------------------------------------------------------------------------

/// Decodes and hashes an upload off the async workers. `None` for an image whose PDQ
/// quality is too low to match on.
async fn hash_upload(state: &Arc<AppState>, bytes: Bytes) -> Result<Option<PdqHash>, ApiError> {
    let state = state.clone();
    blocking(move || {
        let image = decode(&bytes, &state.limits)?;
        Ok(state.hasher.hash(&image).usable())
    })
    .await
}

/// Decodes an upload and computes what it is looked up by: PDQ in every orientation,
/// trimmed PDQ, local features.
async fn query_upload(state: &Arc<AppState>, bytes: Bytes) -> Result<QuerySignals, ApiError> {
    let state = state.clone();
    blocking(move || {
        let image = decode(&bytes, &state.limits)?;
        Ok(QuerySignals::of(&image, &state.hasher, QueryOptions::default()))
    })
    .await
}

/// HMA's lookup answer, `{"pdq": {"BANK": [...]}}`, plus `"features"` in the same shape
/// when local features matched content PDQ did not.
fn lookup_json(matches: &[Match]) -> Value {
    let (pdq, features): (Vec<Match>, Vec<Match>) = matches
        .iter()
        .cloned()
        .partition(|m| m.signal_type == SignalType::Pdq.name());
    let mut answer = json!({ "pdq": by_bank(&pdq) });
    if !features.is_empty() {
        answer["features"] = by_bank(&features);
    }
    answer
}

/// `POST /h/hash`: `{"pdq": "<hex>"}`, or `""` for a low-quality image, as HMA answers.
async fn hash_media(State(state): Shared, multipart: Multipart) -> Result<Json<Value>, ApiError> {
    let upload = read_upload(multipart, "photo").await?;
    let hash = hash_upload(&state, upload.bytes).await?;
    Ok(Json(hash_json(hash)))
}

fn hash_json(hash: Option<PdqHash>) -> Value {
    json!({ "pdq": hash.map(|h| h.to_hex()).unwrap_or_default() })
}

/// HMA's parameters for media given by URL.
#[derive(Deserialize)]
struct UrlParams {
    url: Option<String>,
    content_type: Option<String>,
    types: Option<String>,
}

impl UrlParams {
    /// The URL, once the content and signal types asked for are ones Cordon computes.
    fn url(&self) -> Result<Option<&str>, ApiError> {
        let Some(url) = self.url.as_deref() else {
            return Ok(None);
        };
        match self.content_type.as_deref() {
            None | Some("photo") => {}
            Some("video") => {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "video is not supported yet; send a photo",
                ));
            }
            Some(other) => return Err(ApiError::bad_request(format!("unknown content_type {other:?}"))),
        }
        if let Some(types) = &self.types
            && let Some(other) = types.split(',').map(str::trim).find(|t| *t != "pdq")
        {
            return Err(ApiError::bad_request(format!(
                "unsupported signal type {other:?} (supported: pdq)"
            )));
        }
        Ok(Some(url))
    }

    /// The media at the URL.
    async fn fetch(&self, state: &Arc<AppState>) -> Result<Bytes, ApiError> {
        let url = self
            .url()?
            .ok_or_else(|| ApiError::bad_request("url is required"))?;
        state.fetcher.fetch(url).await
    }
}

/// `GET /h/hash?url=`: hashes media fetched from an allowed host.
async fn hash_url(State(state): Shared, Query(params): Query<UrlParams>) -> Result<Json<Value>, ApiError> {
    let bytes = params.fetch(&state).await?;
    Ok(Json(hash_json(hash_upload(&state, bytes).await?)))
}

// ---- matching ----------------------------------------------------------------------

#[derive(Deserialize)]
struct LookupParams {
    signal_type: Option<String>,
    signal: Option<String>,
    banks: Option<String>,
    seed: Option<u64>,
    #[serde(default)]
    bypass_coinflip: bool,
    #[serde(default)]
    include_distance: bool,
}

impl LookupParams {
    fn banks(&self) -> Option<Vec<String>> {
        self.banks.as_ref().map(|csv| {
            csv.split(',')
                .map(str::trim)
                .filter(|b| !b.is_empty())
                .map(str::to_string)
                .collect()
        })
    }

    fn lookup(&self) -> Lookup {
        Lookup {
            banks: self.banks(),
            include_disabled: false,
            flip: if self.bypass_coinflip {
                0.0
            } else {
                coin_flip(self.seed)
            },
        }
    }

    /// The PDQ hash in `signal_type` + `signal`.
    fn pdq(&self) -> Result<PdqHash, ApiError> {
        let (Some(signal_type), Some(signal)) = (&self.signal_type, &self.signal) else {
            return Err(ApiError::bad_request("signal_type and signal are required"));
        };
        if signal_type != "pdq" {
            return Err(ApiError::bad_request(format!(
                "unsupported signal_type {signal_type:?} (supported: pdq)"
            )));
        }
        signal
            .parse()
            .map_err(|e| ApiError::bad_request(format!("bad pdq signal: {e}")))
    }
}

/// HMA's coin flip in [0, 1): seeded when the caller gives a seed, for repeatable rollouts.
fn coin_flip(seed: Option<u64>) -> f64 {
    let seed = seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    });
    // splitmix64: a well-mixed 64-bit value from any seed.
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// `{"BANK": [{"bank_content_id": 1, "distance": "3"}]}`
fn by_bank(matches: &[Match]) -> Value {
    let mut banks: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    for m in matches {
        banks
            .entry(m.bank.as_str())
            .or_default()
            .push(json!({ "bank_content_id": m.content_id, "distance": m.distance.to_string() }));
    }
    json!(banks)
}

/// `GET /m/lookup`: by `signal_type` + `signal`, or by `url` (then answered per signal
/// type, as HMA does).
async fn lookup_signal(
    State(state): Shared,
    Query(params): Query<LookupParams>,
    Query(media): Query<UrlParams>,
) -> Result<Json<Value>, ApiError> {
    if media.url()?.is_some() {
        let query = query_upload(&state, media.fetch(&state).await?).await?;
        return Ok(Json(lookup_json(
            &state.matcher().lookup(&query, &params.lookup()),
        )));
    }
    let hash = params.pdq()?;
    let matches = state.matcher().lookup_pdq(&hash, &params.lookup());
    Ok(Json(by_bank(&matches)))
}

async fn lookup_media(
    State(state): Shared,
    Query(params): Query<LookupParams>,
    multipart: Multipart,
) -> Result<Json<Value>, ApiError> {
    let upload = read_upload(multipart, "photo").await?;
    let query = query_upload(&state, upload.bytes).await?;
    Ok(Json(lookup_json(
        &state.matcher().lookup(&query, &params.lookup()),
    )))
}

/// Like lookup, but regardless of enabled states and the coin flip.
async fn raw_lookup(
    State(state): Shared,
    Query(params): Query<LookupParams>,
) -> Result<Json<Value>, ApiError> {
    let hash = params.pdq()?;
    let lookup = Lookup {
        banks: params.banks(),
        include_disabled: true,
        flip: 0.0,
    };
    let matches = state.matcher().lookup_pdq(&hash, &lookup);
    let listed: Vec<Value> = if params.include_distance {
        matches
            .iter()
            .map(|m| json!({ "bank_content_id": m.content_id, "distance": m.distance.to_string() }))
            .collect()
    } else {
        matches.iter().map(|m| json!(m.content_id)).collect()
    };
    Ok(Json(json!({ "matches": listed })))
}

/// `{"pdq": ["<h1>", "<h2>"]}` → `{"pdq": [true, {"distance": 12}]}`
async fn compare(Json(body): Json<BTreeMap<String, Vec<String>>>) -> Result<Json<Value>, ApiError> {
    let mut answer = serde_json::Map::new();
    for (signal_type, pair) in body {
        if signal_type != "pdq" {
            return Err(ApiError::bad_request(format!(
                "unsupported signal type {signal_type:?}"
            )));
        }
        let [a, b] = pair.as_slice() else {
            return Err(ApiError::bad_request(
                "compare takes exactly two signals per type",
            ));
        };
        let parse = |s: &String| -> Result<PdqHash, ApiError> {
            s.parse()
                .map_err(|e| ApiError::bad_request(format!("bad pdq signal: {e}")))
        };
        let distance = parse(a)?.distance(&parse(b)?);
        answer.insert(
            signal_type,
            json!([distance <= DEFAULT_PDQ_THRESHOLD, { "distance": distance }]),
        );
    }
    Ok(Json(Value::Object(answer)))
}

async fn index_status(State(state): Shared) -> Json<Value> {
    let size = state.matcher().pdq_len();
    Json(json!({ "pdq": { "built_to": state.built_at, "present": true, "size": size } }))
}

// ---- banks -------------------------------------------------------------------------

fn bank_json(bank: &Bank) -> Value {
    let ratio = if bank.enabled { bank.enabled_ratio } else { 0.0 };
    let mut answer = json!({ "matching_enabled_ratio": ratio, "name": bank.name });
    // Cordon's addition to HMA's bank: only negative banks carry it, so ordinary banks
    // read exactly as HMA writes them.
    if bank.negative {
        answer["is_negative"] = Value::Bool(true);
    }
    answer
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BankBody {
    name: Option<String>,
    enabled: Option<bool>,
    enabled_ratio: Option<f64>,
    /// A negative bank (Cordon's addition): known harmless content whose matches hold an
    /// upload's automatic actions for review.
    is_negative: Option<bool>,
}

impl BankBody {
    fn ratio(&self) -> Result<Option<f64>, ApiError> {
        match self.enabled_ratio {
            Some(r) if !(0.0..=1.0).contains(&r) => {
                Err(ApiError::bad_request("enabled_ratio must be within 0 and 1"))
            }
            other => Ok(other),
        }
    }
}

async fn list_banks(State(state): Shared) -> Result<Json<Value>, ApiError> {
    let banks = blocking(move || Ok(state.store().banks()?)).await?;
    Ok(Json(Value::Array(banks.iter().map(bank_json).collect())))
}

async fn create_bank(
    State(state): Shared,
    Extension(caller): Extension<Caller>,
    Json(body): Json<BankBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let name = BankName::new(body.name.as_deref().unwrap_or_default())?;
    let ratio = body.ratio()?;
    let bank = blocking(move || {
        let _writing = state.writing_indexes();
        let bank = state.store_as(&caller).create_bank(
            &name,
            NewBank {
                enabled: body.enabled.unwrap_or(true),
                enabled_ratio: ratio.unwrap_or(1.0),
                thresholds: BTreeMap::from([("pdq".to_string(), DEFAULT_PDQ_THRESHOLD)]),
                negative: body.is_negative.unwrap_or(false),
                ..NewBank::default()
            },
        )?;
        state.matcher_mut().set_bank(&bank);
        Ok(bank)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(bank_json(&bank))))
}

async fn get_bank(State(state): Shared, Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    let bank = blocking(move || Ok(state.store().bank(&name)?)).await?;
    Ok(Json(bank_json(&bank)))
}

async fn update_bank(
    State(state): Shared,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    Json(body): Json<BankBody>,
) -> Result<Json<Value>, ApiError> {
    let update = BankUpdate {
        name: body.name.as_deref().map(BankName::new).transpose()?,
        enabled: body.enabled,
        enabled_ratio: body.ratio()?,
        negative: body.is_negative,
        ..BankUpdate::default()
    };
    let bank = blocking(move || {
        let _writing = state.writing_indexes();
        let bank = state.store_as(&caller).update_bank(&name, update)?;
        state.matcher_mut().set_bank(&bank);
        Ok(bank)
    })
    .await?;
    Ok(Json(bank_json(&bank)))
}

async fn delete_bank(
    State(state): Shared,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        let _writing = state.writing_indexes();
        let mut store = state.store_as(&caller);
        let bank = store.bank(&name)?;
        store.delete_bank(&name)?;
        state.matcher_mut().remove_bank(bank.id);
        Ok(())
    })
    .await?;
    Ok(Json(json!({ "message": "Done" })))
}

// ---- content -----------------------------------------------------------------------

/// HMA's `note` is at most 255 characters; its metadata is a JSON object.
fn note_and_metadata(fields: &BTreeMap<String, String>) -> Result<(String, Value), ApiError> {
    let note = fields.get("note").cloned().unwrap_or_default();
    if note.chars().count() > 255 {
        return Err(ApiError::bad_request("note is longer than 255 characters"));
    }
    let metadata = match fields.get("metadata") {
        None => json!({}),
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(object @ Value::Object(_)) => object,
            Ok(_) => return Err(ApiError::bad_request("metadata must be a JSON object")),
            Err(e) => return Err(ApiError::bad_request(format!("metadata is not JSON: {e}"))),
        },
    };
    // Kept as the content's external id, which the bank's exports carry: one that an
    // import refuses would leave the bank with an export that does not import.
    if let Some(content_id) = metadata.get("content_id").and_then(Value::as_str) {
        check_content_metadata(Some(content_id), &[], "")
            .map_err(|e| ApiError::bad_request(format!("metadata content_id as the content's {e}")))?;
    }
    Ok((note, metadata))
}

/// Answers 404 unless bank `name` exists.
async fn require_bank(state: &Arc<AppState>, name: &str) -> Result<(), ApiError> {
    let (state, name) = (state.clone(), name.to_string());
    blocking(move || Ok(state.store().bank(&name).map(drop)?)).await
}

/// `POST /c/bank/<name>/content`: a multipart upload, or `?url=` for media fetched from
/// an allowed host.
async fn add_content(
    State(state): Shared,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    Query(media): Query<UrlParams>,
    request: Request,
) -> Result<Json<Value>, ApiError> {
    // A missing bank must cost neither a request to someone's host nor decoding and
    // hashing. An upload is read first: answering before the body is read would cut the
    // sender off. Storing looks the bank up again, for a bank deleted meanwhile.
    let (bytes, note, metadata) = if media.url()?.is_some() {
        require_bank(&state, &name).await?;
        (media.fetch(&state).await?, String::new(), json!({}))
    } else {
        let multipart = Multipart::from_request(request, &state)
            .await
            .map_err(|e| ApiError::bad_request(format!("expected a multipart upload or ?url=: {e}")))?;
        let upload = read_upload(multipart, "photo").await?;
        require_bank(&state, &name).await?;
        let (note, metadata) = note_and_metadata(&upload.fields)?;
        (upload.bytes, note, metadata)
    };
    blocking(move || {
        let content = NewBankContent::of_media(&state, &bytes, note, metadata)?;
        store_content(&state, &caller, &name, "api", content)
    })
    .await
    .map(Json)
}

#[derive(Deserialize)]
struct SignalBody {
    pdq: Option<String>,
    #[serde(default)]
    note: String,
}

async fn add_signal(
    State(state): Shared,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    Json(body): Json<SignalBody>,
) -> Result<Json<Value>, ApiError> {
    let value = body
        .pdq
        .ok_or_else(|| ApiError::bad_request("expected {\"pdq\": \"<hex>\"}"))?;
    let signal = canonical_signal("pdq", &value).map_err(ApiError::bad_request)?;
    let hash: PdqHash = signal
        .value
        .parse()
        .map_err(|e| ApiError::bad_request(format!("{e}")))?;
    if body.note.chars().count() > 255 {
        return Err(ApiError::bad_request("note is longer than 255 characters"));
    }
    let content = NewBankContent::of_hash(hash, body.note);
    blocking(move || store_content(&state, &caller, &name, "api", content))
        .await
        .map(Json)
}

/// `disabled_until` (RFC 3339) as HMA's `disable_until_ts`: 0 enabled, 1 disabled for
/// good, otherwise the unix time it is disabled until.
fn disable_until_ts(content: &Content) -> i64 {
    match content.disabled_until.as_deref() {
        None => 0,
        Some(DISABLED_FOR_GOOD) => 1,
        Some(text) => time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            .map_or(1, |t| t.unix_timestamp()),
    }
}

fn content_json(content: &Content, bank: &Bank, signals: bool, metadata: bool) -> Value {
    let mut object = json!({
        "bank": bank_json(bank),
        "disable_until_ts": disable_until_ts(content),
        "id": content.id,
        "note": content.note,
        "original_media_uri": null,
    });
    if metadata {
        object["metadata"] = json!({
            "collab": null,
            "content_id": content.metadata.get("content_id").cloned().unwrap_or(Value::Null),
            "content_uri": content.metadata.get("content_uri").cloned().unwrap_or(Value::Null),
            "json": content.metadata.get("json").cloned().unwrap_or(Value::Null),
        });
    }
    if signals {
        let map: BTreeMap<&str, &str> = content
            .signals
            .iter()
            .map(|s| (s.signal_type.as_str(), s.value.as_str()))
            .collect();
        object["signals"] = json!(map);
    }
    object
}

/// The content `id` of bank `name`, or 404.
fn content_in_bank(state: &AppState, name: &str, id: ContentId) -> Result<(Content, Bank), ApiError> {
    let store = state.store();
    let bank = store.bank(name)?;
    let content = store.content(id)?;
    if content.bank != bank.name {
        return Err(ApiError::not_found(format!("no content {id} in bank {name}")));
    }
    Ok((content, bank))
}

#[derive(Deserialize)]
struct ContentParams {
    #[serde(default)]
    include_signals: bool,
    #[serde(default = "yes")]
    include_metadata: bool,
}

fn yes() -> bool {
    true
}

async fn get_content(
    State(state): Shared,
    Path((name, id)): Path<(String, ContentId)>,
    Query(params): Query<ContentParams>,
) -> Result<Json<Value>, ApiError> {
    let (content, bank) = blocking(move || content_in_bank(&state, &name, id)).await?;
    Ok(Json(content_json(
        &content,
        &bank,
        params.include_signals,
        params.include_metadata,
    )))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ContentBody {
    disable_until_ts: Option<i64>,
    note: Option<String>,
}

/// HMA refuses a disable time more than five years ahead.
const MAX_DISABLE_SECONDS: i64 = 5 * 366 * 24 * 3600;

async fn update_content(
    State(state): Shared,
    Extension(caller): Extension<Caller>,
    Path((name, id)): Path<(String, ContentId)>,
    Json(body): Json<ContentBody>,
) -> Result<Json<Value>, ApiError> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let until: Option<Option<String>> = match body.disable_until_ts {
        None => None,
        Some(0) => Some(None),
        Some(1) => Some(Some(DISABLED_FOR_GOOD.to_string())),
        Some(ts) if ts > 1 && ts <= now + MAX_DISABLE_SECONDS => {
            let at = time::OffsetDateTime::from_unix_timestamp(ts)
                .map_err(|e| ApiError::bad_request(format!("bad disable_until_ts: {e}")))?;
            Some(Some(cordon_store::format_time(at)))
        }
        Some(_) => {
            return Err(ApiError::bad_request(
                "disable_until_ts is 0 (enabled), 1 (disabled) or a unix time at most five years ahead",
            ));
        }
    };
    if body.note.as_ref().is_some_and(|n| n.chars().count() > 255) {
        return Err(ApiError::bad_request("note is longer than 255 characters"));
    }
    let (content, bank) = blocking(move || {
        let _writing = state.writing_indexes();
        content_in_bank(&state, &name, id)?;
        // One transaction: a failure leaves neither the note nor the time written.
        let update = cordon_store::ContentUpdate {
            note: body.note,
            disabled_until: until.clone(),
        };
        state.store_as(&caller).update_content(id, &update)?;
        if let Some(until) = until {
            state.matcher_mut().set_disabled_until(id, until);
        }
        content_in_bank(&state, &name, id)
    })
    .await?;
    Ok(Json(content_json(&content, &bank, false, true)))
}

async fn delete_content(
    State(state): Shared,
    Extension(caller): Extension<Caller>,
    Path((name, id)): Path<(String, ContentId)>,
) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        let _writing = state.writing_indexes();
        let (_, bank) = content_in_bank(&state, &name, id)?;
        let deleted = state.store_as(&caller).delete_content(id)?;
        let mut matcher = state.matcher_mut();
        for signal in deleted.signals.iter().filter(|s| s.signal_type == "pdq") {
            if let Ok(hash) = signal.value.parse() {
                matcher.remove_pdq(bank.id, id, hash);
            }
        }
        matcher.remove_features(bank.id, id);
        Ok(())
    })
    .await?;
    Ok(Json(json!({ "deleted": 1 })))
}
