//! Adding content to a bank, shared by HMA's content routes and the review console: the
//! content and its signals stored, its sighting put in the ledger, the file kept for the
//! console's bank pages, and all of it matchable by the very next request.

use std::io::BufRead;

use cordon_engine::hash_list::{EntryError, HashListFormat, read_hash_list};
use cordon_engine::image_signals::BankSignals;
use cordon_engine::provenance::media_facts;
use cordon_signals::features::FeatureSet;
use cordon_signals::pdq::QUALITY_THRESHOLD;
use cordon_signals::{ImageFormat, PdqHash, SignalType, decode};
use cordon_store::{MediaFacts, NewContent, Signal, StoredMedia};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::state::{AppState, Caller};

/// Stands for "disabled until further notice", as HMA's `disable_until_ts = 1`.
pub const DISABLED_FOR_GOOD: &str = "9999-12-31T23:59:59.999Z";

/// A new piece of bank content.
pub struct NewBankContent {
    /// None for an image whose PDQ quality is too low to match by, banked by its local
    /// features alone.
    pub pdq: Option<PdqHash>,
    /// Other PDQ hashes of the picture: inside its borders, as seen when it has
    /// transparency (see `BankSignals`).
    pub other_pdq: Vec<PdqHash>,
    /// Local-feature sets: none, one, or two for a picture with transparency.
    pub features: Vec<FeatureSet>,
    /// The file's facts, for the ledger, when the content comes from media.
    pub facts: Option<MediaFacts>,
    /// The file itself, kept for people to look at.
    pub kept: Option<StoredMedia>,
    pub note: String,
    pub metadata: Value,
}

impl NewBankContent {
    /// Content from a hash alone (already checked as a banked value: not all zero).
    pub fn of_hash(pdq: PdqHash, note: String) -> NewBankContent {
        NewBankContent {
            pdq: Some(pdq),
            other_pdq: Vec::new(),
            features: Vec::new(),
            facts: None,
            kept: None,
            note,
            metadata: json!({}),
        }
    }

    /// Decodes `bytes` and computes what a bank keeps of them (blocking work). A hash of
    /// low PDQ quality matches unrelated images, so it is not banked: such an image is
    /// banked by its local features, or refused when it has none either.
    pub fn of_media(
        state: &AppState,
        bytes: &[u8],
        note: String,
        metadata: Value,
    ) -> Result<NewBankContent, ApiError> {
        let image = decode(bytes, &state.limits)?;
        let signals = BankSignals::of(&image, &state.hasher);
        if !signals.is_matchable() {
            return Err(ApiError::bad_request(format!(
                "the image has too little detail to match by: its PDQ quality is {} (below \
                 {QUALITY_THRESHOLD} a hash matches unrelated images) and it has no local features",
                signals.pdq.quality
            )));
        }
        let facts = media_facts(
            bytes,
            image.width(),
            image.height(),
            signals.pdq.hash,
            signals.pdq.quality,
        );
        Ok(NewBankContent {
            pdq: signals.usable_pdq(),
            other_pdq: signals.other_pdq,
            features: signals.features,
            facts: Some(facts),
            kept: Some(StoredMedia {
                mime: ImageFormat::sniff(bytes)
                    .map_or("application/octet-stream", ImageFormat::mime)
                    .to_string(),
                bytes: bytes.to_vec(),
            }),
            note,
            metadata,
        })
    }
}

/// Stores one piece of content in `bank` and makes it matchable at once (blocking work).
/// Answers HMA's `{"id": …, "signals": {"pdq": …}}` (the hash empty for content banked
/// by its local features alone, which HMA has no name for; `keypoints` counts them).
pub fn store_content(
    state: &AppState,
    caller: &Caller,
    bank: &str,
    origin: &str,
    content: NewBankContent,
) -> Result<Value, ApiError> {
    let hash = content.pdq;
    let _writing = state.writing_indexes();
    let mut store = state.store_as(caller);
    let bank = store.bank(bank)?;
    let external_id = content
        .metadata
        .get("content_id")
        .and_then(Value::as_str)
        .map(str::to_string);
    let mut writer = store.content_writer(bank.name.as_str())?;
    let id = writer.insert(&NewContent {
        external_id,
        note: content.note,
        origin: origin.to_string(),
        metadata: Some(content.metadata),
        signals: hash
            .into_iter()
            .chain(content.other_pdq.iter().copied())
            .map(|hash| Signal {
                signal_type: SignalType::Pdq.name().to_string(),
                value: hash.to_hex(),
            })
            .chain(content.features.iter().map(|features| Signal {
                signal_type: SignalType::Features.name().to_string(),
                value: features.to_string(),
            }))
            .collect(),
        ..NewContent::default()
    })?;
    let sighting = match &content.facts {
        Some(facts) => Some(writer.record_sighting(id, facts)?),
        None => None,
    };
    if let Some(kept) = &content.kept {
        writer.keep_media(id, kept)?;
    }
    writer.commit()?;
    drop(store);
    // Provenance searches by PDQ: a hash of low quality would answer for unrelated
    // pictures, so such a sighting is kept but not searchable (as for submissions).
    if let (Some(sighting), Some(hash)) = (sighting, hash) {
        state.ledger_mut().add(sighting, hash);
    }
    let keypoints: usize = content.features.iter().map(FeatureSet::len).sum();
    let mut matcher = state.matcher_mut();
    for hash in hash.into_iter().chain(content.other_pdq) {
        matcher.add_pdq(bank.id, id, hash)?;
    }
    for features in content.features {
        matcher.add_features(bank.id, id, features)?;
    }
    // As HMA's hashing answers for an image of low quality, an empty PDQ hash.
    let pdq = hash.map_or(String::new(), |hash| hash.to_hex());
    Ok(json!({ "id": id, "signals": { "pdq": pdq }, "keypoints": keypoints }))
}

/// Why a hash-list import stopped.
#[derive(Debug, thiserror::Error)]
enum ImportError {
    #[error(transparent)]
    Entry(#[from] EntryError),
    #[error(transparent)]
    Store(#[from] cordon_store::StoreError),
}

/// A piece of imported content, for the matcher once the import is committed.
struct Imported {
    content_id: cordon_store::ContentId,
    pdq: Vec<PdqHash>,
    features: Option<FeatureSet>,
}

impl Imported {
    fn of(content_id: cordon_store::ContentId, content: &NewContent) -> Imported {
        let of_type = |wanted: SignalType| {
            content
                .signals
                .iter()
                .filter(move |s| s.signal_type == wanted.name())
                .map(|s| s.value.as_str())
        };
        Imported {
            content_id,
            // The hash list reader already checked every value: these parse.
            pdq: of_type(SignalType::Pdq).filter_map(|v| v.parse().ok()).collect(),
            features: of_type(SignalType::Features).find_map(|v| v.parse().ok()),
        }
    }
}

/// Imported entries made matchable per hold of the matcher's write lock.
const ENTRIES_PER_MATCHER_LOCK: usize = 4096;

/// Imports a hash list into `bank` in one transaction (blocking work): every entry lands
/// and becomes matchable, or — at the first bad entry — none does, and the error names
/// its line. Answers `{"bank", "format", "imported"}`.
pub fn import_hash_list(
    state: &AppState,
    caller: &Caller,
    bank: &str,
    mut input: impl BufRead,
    format: Option<HashListFormat>,
) -> Result<Value, ApiError> {
    let format = match format {
        Some(format) => format,
        None => HashListFormat::sniff(
            input
                .fill_buf()
                .map_err(|e| ApiError::internal(format!("reading the spooled upload: {e}")))?,
        ),
    };
    let _writing = state.writing_indexes();
    let mut store = state.store_as(caller);
    let bank = store.bank(bank)?;
    let mut writer = store.content_writer(bank.name.as_str())?;
    let mut imported = Vec::new();
    let count = read_hash_list(input, format, "api-import", |content| {
        let id = writer.insert(&content)?;
        imported.push(Imported::of(id, &content));
        Ok::<_, ImportError>(())
    })
    .map_err(|error| match error {
        // The writer is dropped uncommitted: nothing of the list lands.
        ImportError::Entry(error) => ApiError::bad_request(format!("{error}; nothing was imported")),
        ImportError::Store(error) => ApiError::from(error),
    })?;
    writer.commit()?;
    drop(store);
    // A few thousand entries per hold of the matcher's write lock, so that lookups go on
    // between them: a list of a million held every lookup for over half a second.
    let mut imported = imported.into_iter().peekable();
    while imported.peek().is_some() {
        let mut matcher = state.matcher_mut();
        for entry in imported.by_ref().take(ENTRIES_PER_MATCHER_LOCK) {
            for hash in entry.pdq {
                matcher.add_pdq(bank.id, entry.content_id, hash)?;
            }
            if let Some(features) = entry.features {
                matcher.add_features(bank.id, entry.content_id, features)?;
            }
        }
    }
    Ok(json!({
        "bank": bank.name.as_str(),
        "format": format!("{format:?}").to_lowercase(),
        "imported": count,
    }))
}
