//! Provenance: has this picture, or a near copy, been seen before; when first, where, by
//! whom; and what does the file itself say? Answered from the ledger of sightings
//! (`cordon_store::Sighting`) through an exact PDQ index over it, with a verdict that
//! gives its reasons.
//!
//! Near copies are found as matching finds them: PDQ within [`PROVENANCE_RADIUS`] of any
//! variant of the query (its eight orientations, and the picture inside its borders).
//! Crops, captions and tilts that PDQ misses are found through the banks: the query's
//! local features match a bank content, whose own sightings and their PDQ near copies
//! then count as sightings of the query. Local features are kept for bank content only:
//! at about 30 KB a set, keeping them for every sighting would cost 300 GB at 10 M.

use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};

use cordon_index::{Hit, PdqIndex};
use cordon_signals::ImageFormat;
use cordon_signals::media::{ContentCredentials, ExifEvidence, read_content_credentials, read_exif};
use cordon_signals::pdq::QUALITY_THRESHOLD;
use cordon_signals::{PdqHash, SignalType};
use cordon_store::{MediaFacts, Sighting, Store, StoreError};
use serde::Serialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::image_signals::QuerySignals;
use crate::matcher::Match;

/// The PDQ distance within which a sighting is the same picture (the bank default).
pub const PROVENANCE_RADIUS: u32 = 31;

/// When a sighting happened: the platform's claimed posting time when it gave one (uploads
/// reach Cordon after they are posted), else when Cordon received it. Fixed-width RFC 3339,
/// so text order is time order.
fn seen_at(sighting: &Sighting) -> &str {
    match sighting.posted_at.as_deref() {
        Some(posted) if posted < sighting.received_at.as_str() => posted,
        _ => &sighting.received_at,
    }
}

/// Days between two sightings before a picture counts as recycled rather than spreading.
const RECYCLED_AFTER_DAYS: i64 = 1;

/// Every sighting's PDQ hash, searchable, kept current as sightings are recorded.
#[derive(Default)]
pub struct Ledger {
    index: PdqIndex,
}

impl Ledger {
    pub fn load(store: &Store) -> Result<Ledger, StoreError> {
        let mut entries = Vec::new();
        store.for_each_sighting_pdq(|id, pdq, quality| {
            // A hash of low quality would answer for unrelated pictures: such sightings
            // are kept but not searched, as when they are recorded. A value the store
            // holds was checked when written; one that fails to parse cannot be searched
            // and is left out rather than stopping the server.
            if !Ledger::searches(quality) {
                return;
            }
            if let Ok(hash) = pdq.parse::<PdqHash>() {
                entries.push((hash, id as u64));
            }
        })?;
        Ok(Ledger {
            index: PdqIndex::from_entries(entries),
        })
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Makes a new sighting findable.
    pub fn add(&mut self, sighting_id: i64, hash: PdqHash) {
        self.index.insert(hash, sighting_id as u64);
    }

    /// [`Ledger::add`] for a sighting another process recorded, unless its hash is of too
    /// low a quality to search (as [`Ledger::load`] and the recording process leave it
    /// out): every node answers provenance alike.
    pub fn add_recorded(&mut self, sighting_id: i64, hash: PdqHash, quality: Option<u8>) {
        if Ledger::searches(quality) {
            self.add(sighting_id, hash);
        }
    }

    /// Whether a sighting's hash of this quality is searched (unknown: yes).
    fn searches(quality: Option<u8>) -> bool {
        quality.is_none_or(|q| q >= QUALITY_THRESHOLD)
    }

    /// The sightings within reach of any PDQ variant of `query`: for each, the smallest
    /// distance and the variant that gave it.
    ///
    /// An uploaded image has 8 variants, or 16 with a border trimmed, each a search of
    /// the whole ledger (about half a millisecond at 10 M sightings, bound by memory
    /// latency); they run on all cores, so that a question asked rarely but urgently
    /// is answered within 10 ms.
    pub fn find(&self, query: &QuerySignals) -> BTreeMap<i64, LedgerHit> {
        use rayon::prelude::*;
        let per_variant: Vec<Vec<(i64, LedgerHit)>> = query
            .pdq
            .par_iter()
            .map(|(variant, hash)| {
                let mut hits: Vec<Hit> = Vec::new();
                self.search(hash, &mut hits);
                hits.iter()
                    .map(|hit| {
                        let found = LedgerHit {
                            distance: hit.distance,
                            transform: variant,
                            signal_type: SignalType::Pdq.name(),
                        };
                        (hit.id as i64, found)
                    })
                    .collect()
            })
            .collect();
        let mut found: BTreeMap<i64, LedgerHit> = BTreeMap::new();
        // Variants in query order, so that on equal distances the earlier one (the
        // original) names the transform, whatever order the threads finished in.
        for (id, candidate) in per_variant.into_iter().flatten() {
            let entry = found.entry(id).or_insert(candidate);
            if candidate.distance < entry.distance {
                *entry = candidate;
            }
        }
        found
    }

    /// Adds to `found` what the banks tie to the query: for each bank content that
    /// `matches` found by local features, its sightings and their PDQ near copies, as
    /// found by features (PDQ hits already in `found` stay: they are the closer evidence).
    pub fn find_through_banks(
        &self,
        store: &Store,
        matches: &[Match],
        found: &mut BTreeMap<i64, LedgerHit>,
    ) -> Result<(), StoreError> {
        let mut hits: Vec<Hit> = Vec::new();
        for by_features in matches
            .iter()
            .filter(|m| m.signal_type == SignalType::Features.name())
        {
            let linked = LedgerHit {
                distance: by_features.distance,
                transform: by_features.transform,
                signal_type: SignalType::Features.name(),
            };
            for sighting in store.sightings_of_bank_content(by_features.content_id)? {
                found.entry(sighting.id).or_insert(linked);
                let Some(hash) = sighting
                    .media
                    .pdq
                    .as_deref()
                    .and_then(|p| p.parse::<PdqHash>().ok())
                else {
                    continue;
                };
                self.search(&hash, &mut hits);
                for hit in &hits {
                    found.entry(hit.id as i64).or_insert(linked);
                }
            }
        }
        Ok(())
    }

    fn search(&self, hash: &PdqHash, hits: &mut Vec<Hit>) {
        hits.clear();
        self.index.search(hash, PROVENANCE_RADIUS, hits);
    }
}

/// How a sighting was found: by which signal, at what distance, from which variant of
/// the query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LedgerHit {
    /// PDQ bits, or for local features 100 minus the agreeing keypoint pairs.
    pub distance: u32,
    pub transform: &'static str,
    pub signal_type: &'static str,
}

/// A sighting as provenance reports it: with how close it is to the query.
#[derive(Clone, Debug, Serialize)]
pub struct SeenAt {
    /// The claimed posting time if given, else when Cordon received it.
    pub seen_at: String,
    #[serde(flatten)]
    pub sighting: Sighting,
    /// `pdq`, or `features` when the sighting was tied to the query through a bank
    /// content its local features matched.
    pub signal_type: &'static str,
    pub distance: u32,
    pub transform: &'static str,
}

/// One distinct file (by SHA-256) among the sightings.
#[derive(Clone, Debug, Serialize)]
pub struct Variant {
    pub sha256: String,
    pub size: Option<u64>,
    pub format: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// The closest of its sightings, by `signal_type` (`pdq` if any was found by PDQ).
    pub signal_type: &'static str,
    pub distance: u32,
    pub sightings: usize,
}

/// What the picture being asked about is: its claimed posting time and its own evidence.
#[derive(Clone, Debug, Default)]
pub struct Asked {
    /// When it was posted (claimed) or received, RFC 3339; `None` for "now".
    pub posted_at: Option<String>,
    /// The sighting it is itself, left out of "seen before".
    pub own_sighting: Option<i64>,
    pub exif: Option<ExifEvidence>,
    /// Its C2PA Content Credentials, as the ledger keeps them (see [`c2pa_json`]).
    pub c2pa: Option<Value>,
}

impl Asked {
    /// About a file in hand, posted at `posted_at` (now if `None`): its EXIF and C2PA
    /// evidence, read now.
    pub fn of_file(bytes: &[u8], posted_at: Option<String>) -> Asked {
        Asked {
            posted_at,
            own_sighting: None,
            exif: read_exif(bytes),
            c2pa: content_credentials(bytes).as_ref().map(c2pa_json),
        }
    }

    /// About a recorded sighting: the evidence the ledger kept of its file.
    pub fn of_sighting(sighting: &Sighting) -> Asked {
        Asked {
            posted_at: sighting.posted_at.clone().or(Some(sighting.received_at.clone())),
            own_sighting: Some(sighting.id),
            exif: exif_of(sighting),
            c2pa: sighting.media.evidence.get("c2pa").cloned(),
        }
    }
}

/// Sightings an answer lists unless asked for another number: a picture that went viral
/// has been seen many thousands of times, and the earliest are the ones that tell.
pub const SIGHTINGS_LISTED: usize = 100;

/// The most sightings an answer may be asked to list.
pub const MAX_SIGHTINGS_LISTED: usize = 10_000;

/// The answer to "where was this seen before?".
#[derive(Clone, Debug, Serialize)]
pub struct Provenance {
    pub first_seen: Option<SeenAt>,
    /// The earliest sightings, as many as were asked for; the counts, variants, evidence
    /// and verdict weigh them all.
    pub sightings: Vec<SeenAt>,
    /// How many sightings there are in all, listed or not.
    pub sightings_total: usize,
    pub accounts: usize,
    pub sources: usize,
    pub variants: Vec<Variant>,
    pub evidence: Value,
    pub verdict: Verdict,
}

/// A label with the reasons behind it.
#[derive(Clone, Debug, Serialize)]
pub struct Verdict {
    /// `recycled`, `seen_before` or `first_sighting`.
    pub label: &'static str,
    pub reasons: Vec<String>,
}

/// Sightings read from the store at a time while an answer is built: what it holds of
/// them at once, whole rows with their evidence, however many there are.
const SIGHTINGS_PER_READ: usize = 2_000;

/// Builds the answer from the ledger hits, listing the earliest `listed` sightings.
pub fn report(
    store: &Store,
    hits: &BTreeMap<i64, LedgerHit>,
    asked: &Asked,
    listed: usize,
) -> Result<Provenance, StoreError> {
    let ids: Vec<i64> = hits
        .keys()
        .copied()
        .filter(|id| Some(*id) != asked.own_sighting)
        .collect();
    let mut tally = Tally::new(asked, listed);
    for batch in ids.chunks(SIGHTINGS_PER_READ) {
        for sighting in store.sightings(batch)? {
            let hit = hits.get(&sighting.id).copied().unwrap_or(LedgerHit {
                distance: 0,
                transform: "original",
                signal_type: SignalType::Pdq.name(),
            });
            tally.add(SeenAt {
                seen_at: seen_at(&sighting).to_string(),
                sighting,
                signal_type: hit.signal_type,
                distance: hit.distance,
                transform: hit.transform,
            });
        }
    }
    Ok(tally.into_provenance(asked))
}

/// A sighting ordered by when it was seen (then by id), for the heap of the earliest.
struct ByTime(SeenAt);

impl ByTime {
    fn key(&self) -> (&str, i64) {
        (&self.0.seen_at, self.0.sighting.id)
    }
}

impl PartialEq for ByTime {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for ByTime {}

impl PartialOrd for ByTime {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ByTime {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

/// What an answer keeps of the sightings as they are read, a batch at a time: the
/// earliest `listed` whole, and of all of them only what the counts, variants, evidence
/// and verdict need. A picture seen a million times was answered by loading a million
/// rows with their evidence; now it holds its distinct accounts, sources and files.
struct Tally {
    listed: usize,
    /// The earliest `listed` so far, the latest of them on top.
    earliest: BinaryHeap<ByTime>,
    first_seen: Option<ByTime>,
    total: usize,
    accounts: HashSet<String>,
    sources: HashSet<String>,
    variants: HashMap<String, Variant>,
    /// The earliest EXIF capture time any sighting's file carried, and that sighting.
    earliest_capture: Option<(String, i64)>,
    /// The first sighting whose file carried Content Credentials.
    first_with_c2pa: Option<ByTime>,
    /// When the picture asked about was posted; the sightings before it, and the first.
    posted: OffsetDateTime,
    earlier: usize,
    first_earlier: Option<ByTime>,
}

impl Tally {
    fn new(asked: &Asked, listed: usize) -> Tally {
        let posted = asked
            .posted_at
            .as_deref()
            .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
            .unwrap_or_else(OffsetDateTime::now_utc);
        Tally {
            listed,
            earliest: BinaryHeap::new(),
            first_seen: None,
            total: 0,
            accounts: HashSet::new(),
            sources: HashSet::new(),
            variants: HashMap::new(),
            earliest_capture: None,
            first_with_c2pa: None,
            posted,
            earlier: 0,
            first_earlier: None,
        }
    }

    fn add(&mut self, seen: SeenAt) {
        self.total += 1;
        self.count_origin(&seen.sighting);
        self.add_variant(&seen);
        self.note_capture(&seen.sighting);
        let has_c2pa = seen.sighting.media.evidence.get("c2pa").is_some();
        let is_earlier = OffsetDateTime::parse(&seen.seen_at, &Rfc3339).is_ok_and(|at| at < self.posted);
        self.earlier += usize::from(is_earlier);
        let seen = ByTime(seen);
        keep_first(&mut self.first_seen, &seen);
        if has_c2pa {
            keep_first(&mut self.first_with_c2pa, &seen);
        }
        if is_earlier {
            keep_first(&mut self.first_earlier, &seen);
        }
        self.list_if_among_earliest(seen);
    }

    /// Counts the sighting's account and source among the distinct ones.
    fn count_origin(&mut self, sighting: &Sighting) {
        for (origin, seen) in [
            (&sighting.account_id, &mut self.accounts),
            (&sighting.source_url, &mut self.sources),
        ] {
            if let Some(origin) = origin
                && !seen.contains(origin)
            {
                seen.insert(origin.clone());
            }
        }
    }

    /// Keeps the earliest EXIF capture time a sighting's file carried.
    fn note_capture(&mut self, sighting: &Sighting) {
        let exif = sighting.media.evidence.get("exif");
        let Some(time) = exif.and_then(|e| e.get("capture_time")).and_then(Value::as_str) else {
            return;
        };
        let earlier = |(first, id): &(String, i64)| (time, sighting.id) < (first.as_str(), *id);
        if self.earliest_capture.as_ref().is_none_or(earlier) {
            self.earliest_capture = Some((time.to_string(), sighting.id));
        }
    }

    /// Lists the sighting if it is among the earliest `listed` so far.
    fn list_if_among_earliest(&mut self, seen: ByTime) {
        if self.earliest.len() < self.listed {
            self.earliest.push(seen);
        } else if self.earliest.peek().is_some_and(|latest| seen < *latest) {
            self.earliest.pop();
            self.earliest.push(seen);
        }
    }

    /// Counts the sighting under its file, keeping the file's closest sighting (by PDQ
    /// before local features).
    fn add_variant(&mut self, seen: &SeenAt) {
        let Some(sha256) = seen.sighting.media.sha256.as_deref() else {
            return;
        };
        if !self.variants.contains_key(sha256) {
            let media = &seen.sighting.media;
            let variant = Variant {
                sha256: sha256.to_string(),
                size: media.size,
                format: media.format.clone(),
                width: media.width,
                height: media.height,
                signal_type: seen.signal_type,
                distance: seen.distance,
                sightings: 0,
            };
            self.variants.insert(sha256.to_string(), variant);
        }
        let Some(variant) = self.variants.get_mut(sha256) else {
            return;
        };
        variant.sightings += 1;
        if (seen.signal_type != SignalType::Pdq.name(), seen.distance)
            < (variant.signal_type != SignalType::Pdq.name(), variant.distance)
        {
            variant.signal_type = seen.signal_type;
            variant.distance = seen.distance;
        }
    }

    fn into_provenance(self, asked: &Asked) -> Provenance {
        let evidence = evidence_json(asked, &self);
        let verdict = verdict(&self, asked);
        let mut variants: Vec<Variant> = self.variants.into_values().collect();
        variants.sort_by_key(|v| {
            (
                v.signal_type != SignalType::Pdq.name(),
                v.distance,
                v.sha256.clone(),
            )
        });
        Provenance {
            first_seen: self.first_seen.map(|first| first.0),
            sightings: self.earliest.into_sorted_vec().into_iter().map(|s| s.0).collect(),
            sightings_total: self.total,
            accounts: self.accounts.len(),
            sources: self.sources.len(),
            variants,
            evidence,
            verdict,
        }
    }
}

/// Keeps in `first` whichever of it and `seen` was seen first.
fn keep_first(first: &mut Option<ByTime>, seen: &ByTime) {
    if first.as_ref().is_none_or(|first| seen < first) {
        *first = Some(ByTime(seen.0.clone()));
    }
}

/// The query's own EXIF, and the earliest capture time any sighting's file carried (kept
/// in the ledger, so it outlives copies whose metadata a platform stripped).
fn evidence_json(asked: &Asked, tally: &Tally) -> Value {
    let credentials_in_sightings = tally.first_with_c2pa.as_ref().map(|first| {
        let c2pa = &first.0.sighting.media.evidence["c2pa"];
        json!({ "sighting_id": first.0.sighting.id, "signer": c2pa["signer"],
                "validation_state": c2pa["validation_state"] })
    });
    json!({
        "exif": asked.exif.as_ref().map(exif_json),
        "c2pa": asked.c2pa,
        "earliest_capture_in_sightings": tally.earliest_capture.as_ref()
            .map(|(time, id)| json!({ "capture_time": time, "sighting_id": id })),
        "c2pa_in_sightings": credentials_in_sightings,
    })
}

/// What the ledger keeps of a file: digest, size, format, pixels, PDQ and its evidence.
pub fn media_facts(bytes: &[u8], width: u32, height: u32, pdq: PdqHash, quality: u8) -> MediaFacts {
    use sha2::Digest;
    let sha256 = sha2::Sha256::digest(bytes);
    let mut evidence = serde_json::Map::new();
    if let Some(exif) = read_exif(bytes) {
        evidence.insert("exif".to_string(), exif_json(&exif));
    }
    if let Some(credentials) = content_credentials(bytes) {
        evidence.insert("c2pa".to_string(), c2pa_json(&credentials));
    }
    MediaFacts {
        sha256: Some(sha256.iter().map(|b| format!("{b:02x}")).collect()),
        size: Some(bytes.len() as u64),
        format: ImageFormat::sniff(bytes).map(|f| format!("{f:?}").to_lowercase()),
        width: Some(width),
        height: Some(height),
        pdq: Some(pdq.to_hex()),
        quality: Some(quality),
        evidence: Value::Object(evidence),
    }
}

/// The file's C2PA Content Credentials, if it carries any (and Cordon was built with
/// C2PA support: the `c2pa` feature, on by default).
fn content_credentials(bytes: &[u8]) -> Option<ContentCredentials> {
    let format = ImageFormat::sniff(bytes)?;
    read_content_credentials(bytes, format.mime())
}

/// Content Credentials as the ledger keeps and the API reports them.
pub fn c2pa_json(credentials: &ContentCredentials) -> Value {
    json!({
        "claim_generator": credentials.claim_generator,
        "signer": credentials.signer,
        "signed_at": credentials.signed_at,
        "validation_state": credentials.validation_state,
        "validation_errors": credentials.validation_errors,
        "actions": credentials.actions,
        "ai_generated": credentials.ai_generated,
        "title": credentials.title,
        "manifests": credentials.manifests,
    })
}

/// EXIF evidence read back from a sighting's stored evidence.
pub fn exif_of(sighting: &Sighting) -> Option<ExifEvidence> {
    let exif = sighting.media.evidence.get("exif")?;
    let text = |key: &str| exif.get(key).and_then(Value::as_str).map(str::to_string);
    let gps = exif
        .get("gps")
        .and_then(|g| Some((g.get("latitude")?.as_f64()?, g.get("longitude")?.as_f64()?)));
    Some(ExifEvidence {
        capture_time: text("capture_time"),
        make: text("make"),
        model: text("model"),
        software: text("software"),
        gps,
        orientation: exif
            .get("orientation")
            .and_then(Value::as_u64)
            .and_then(|o| u32::try_from(o).ok()),
    })
}

/// EXIF evidence as stored in the ledger and reported.
pub fn exif_json(exif: &ExifEvidence) -> Value {
    json!({
        "capture_time": exif.capture_time,
        "make": exif.make,
        "model": exif.model,
        "software": exif.software,
        "gps": exif.gps.map(|(lat, lon)| json!({ "latitude": lat, "longitude": lon })),
        "orientation": exif.orientation,
    })
}

fn verdict(tally: &Tally, asked: &Asked) -> Verdict {
    let posted = tally.posted;
    let mut reasons = Vec::new();
    let mut label = "first_sighting";
    match tally.first_earlier.as_ref().map(|first| &first.0) {
        Some(first) => {
            let days =
                OffsetDateTime::parse(&first.seen_at, &Rfc3339).map_or(0, |at| (posted - at).whole_days());
            let place = first
                .sighting
                .source_url
                .clone()
                .or_else(|| first.sighting.account_id.as_ref().map(|a| format!("account {a}")))
                .or_else(|| first.sighting.bank.as_ref().map(|b| format!("bank {b}")))
                .unwrap_or_else(|| format!("sighting {}", first.sighting.id));
            reasons.push(format!(
                "first seen {days} days before this post, at {place} ({} sightings, distance {})",
                tally.earlier, first.distance
            ));
            label = if days >= RECYCLED_AFTER_DAYS {
                "recycled"
            } else {
                "seen_before"
            };
        }
        None => reasons.push("no earlier sighting".to_string()),
    }
    if let Some(capture) = asked.exif.as_ref().and_then(|e| e.capture_time.as_deref())
        && let Some(captured) = exif_time(capture)
    {
        let days = (posted - captured).whole_days();
        reasons.push(format!(
            "EXIF capture time {} vs posted {} ({days} days earlier)",
            captured.date(),
            posted.date()
        ));
        if days > 30 {
            label = "recycled";
        }
    }
    match &asked.c2pa {
        Some(c2pa) => {
            if c2pa_reasons(c2pa, posted, &mut reasons) {
                label = "recycled";
            }
        }
        None => {
            // The file carries none, but an earlier copy did: a platform stripped them.
            if let Some(ByTime(earlier)) = &tally.first_with_c2pa {
                let c2pa = &earlier.sighting.media.evidence["c2pa"];
                reasons.push(format!(
                    "C2PA: this file carries no Content Credentials, but an earlier copy (sighting {}) did: \
                     signed by {} ({})",
                    earlier.sighting.id,
                    c2pa["signer"].as_str().unwrap_or("an unnamed signer"),
                    c2pa["validation_state"].as_str().unwrap_or("unknown")
                ));
            }
        }
    }
    Verdict { label, reasons }
}

/// Days of difference between the signing time and the posting time beyond which a
/// signed picture counts as recycled.
const SIGNED_LONG_BEFORE_DAYS: i64 = 30;

/// What the file's Content Credentials say, as reasons: who signed, with what, when, what
/// was done, whether a generative model made it, or that they are invalid. True when the
/// signing time is long before the posting time (the picture is older than the post).
fn c2pa_reasons(c2pa: &Value, posted: OffsetDateTime, reasons: &mut Vec<String>) -> bool {
    let text = |key: &str| c2pa[key].as_str().filter(|t| !t.is_empty());
    let errors: Vec<&str> = c2pa["validation_errors"]
        .as_array()
        .map(|e| e.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if text("validation_state") == Some("invalid") {
        reasons.push(format!(
            "C2PA: Content Credentials present but invalid ({})",
            errors.join(", ")
        ));
        return false;
    }
    let mut said = format!(
        "C2PA: signed by {}",
        text("signer").unwrap_or("an unnamed signer")
    );
    if let Some(generator) = text("claim_generator") {
        said.push_str(&format!(" with {generator}"));
    }
    if errors.contains(&"signingCredential.untrusted") {
        said.push_str(" (certificate on no trust list)");
    }
    let edits: Vec<&str> = c2pa["actions"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter(|a| !matches!(*a, "c2pa.created" | "c2pa.opened" | "c2pa.placed"))
        .map(|a| a.strip_prefix("c2pa.").unwrap_or(a))
        .collect();
    if !edits.is_empty() {
        said.push_str(&format!(", edited ({})", edits.join(", ")));
    }
    reasons.push(said);
    if c2pa["ai_generated"] == json!(true) {
        reasons.push("C2PA: declares the picture made by a generative model".to_string());
    }
    let signed = text("signed_at").and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok());
    match signed {
        Some(signed) if (posted - signed).whole_days() > SIGNED_LONG_BEFORE_DAYS => {
            let days = (posted - signed).whole_days();
            reasons.push(format!(
                "C2PA signing time {} vs posted {} ({days} days earlier)",
                signed.date(),
                posted.date()
            ));
            true
        }
        _ => false,
    }
}

/// EXIF's `YYYY:MM:DD HH:MM:SS` (no zone: read as UTC).
fn exif_time(text: &str) -> Option<OffsetDateTime> {
    let digits: Vec<u32> = text
        .split([':', ' ', '-', 'T'])
        .take(6)
        .map(|p| p.trim().parse().ok())
        .collect::<Option<Vec<u32>>>()?;
    let [year, month, day, hour, minute, second] = digits.get(..6)?.try_into().ok()?;
    let date = time::Date::from_calendar_date(
        i32::try_from(year).ok()?,
        time::Month::try_from(u8::try_from(month).ok()?).ok()?,
        u8::try_from(day).ok()?,
    )
    .ok()?;
    let time = time::Time::from_hms(
        u8::try_from(hour).ok()?,
        u8::try_from(minute).ok()?,
        u8::try_from(second).ok()?,
    )
    .ok()?;
    Some(date.with_time(time).assume_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store in memory with the bank `TVEC`, to record sightings of its content.
    fn store_with_bank() -> Store {
        let mut store = Store::open_in_memory().unwrap();
        let bank = cordon_store::BankName::new("TVEC").unwrap();
        store
            .create_bank(&bank, cordon_store::NewBank::default())
            .unwrap();
        store
    }

    #[test]
    fn the_ledger_leaves_out_hashes_of_low_quality_when_it_loads() {
        let mut store = store_with_bank();
        let mut writer = store.content_writer("TVEC").unwrap();
        let mut record = |pdq: char, quality: Option<u8>| {
            let facts = MediaFacts {
                pdq: Some(pdq.to_string().repeat(64)),
                quality,
                ..MediaFacts::default()
            };
            writer.record_sighting(1, &facts).unwrap()
        };
        let good = record('f', Some(QUALITY_THRESHOLD));
        record('0', Some(QUALITY_THRESHOLD - 1));
        // Sightings recorded before qualities were kept still count.
        let unknown = record('a', None);
        writer.commit().unwrap();
        let ledger = Ledger::load(&store).unwrap();
        assert_eq!(ledger.len(), 2);
        let found = ledger.find(&QuerySignals::of_hash(PdqHash::ZERO));
        assert!(found.is_empty(), "the low-quality hash was searched: {found:?}");
        let found = ledger.find(&QuerySignals::of_hash("f".repeat(64).parse().unwrap()));
        assert_eq!(found.keys().copied().collect::<Vec<_>>(), vec![good]);
        let found = ledger.find(&QuerySignals::of_hash("a".repeat(64).parse().unwrap()));
        assert_eq!(found.keys().copied().collect::<Vec<_>>(), vec![unknown]);

        // Another node learns of the same sightings from the change feed, qualities and
        // all, and searches exactly what loading searches.
        let mut follower = Ledger::default();
        for change in store.changes_after(0, 100).unwrap() {
            if let (
                cordon_store::ChangeKind::SightingAdded {
                    pdq: Some(pdq),
                    quality,
                },
                Some(id),
            ) = (&change.kind, change.content_id)
            {
                follower.add_recorded(id, pdq.parse().unwrap(), *quality);
            }
        }
        assert_eq!(follower.len(), 2);
        assert!(follower.find(&QuerySignals::of_hash(PdqHash::ZERO)).is_empty());
    }

    #[test]
    fn an_answer_lists_the_earliest_sightings_asked_for_and_counts_them_all() {
        let mut store = store_with_bank();
        let mut writer = store.content_writer("TVEC").unwrap();
        let facts = MediaFacts {
            pdq: Some("f".repeat(64)),
            quality: Some(QUALITY_THRESHOLD),
            sha256: Some("ab".repeat(32)),
            ..MediaFacts::default()
        };
        let ids: Vec<i64> = (0..5)
            .map(|_| writer.record_sighting(1, &facts).unwrap())
            .collect();
        writer.commit().unwrap();
        let ledger = Ledger::load(&store).unwrap();
        let hits = ledger.find(&QuerySignals::of_hash("f".repeat(64).parse().unwrap()));
        for listed in [0, 2, 5, 100] {
            let answer = report(&store, &hits, &Asked::default(), listed).unwrap();
            let shown: Vec<i64> = answer.sightings.iter().map(|s| s.sighting.id).collect();
            assert_eq!(shown, ids[..listed.min(5)], "{listed} asked for");
            assert_eq!(answer.sightings_total, 5);
            assert_eq!(answer.first_seen.map(|s| s.sighting.id), Some(ids[0]));
            assert_eq!(answer.variants[0].sightings, 5, "variants weigh every sighting");
        }
    }

    /// An answer read over several batches of the store counts and lists exactly what
    /// one read of everything would.
    #[test]
    fn an_answer_over_many_reads_counts_every_sighting() {
        let mut store = store_with_bank();
        let mut writer = store.content_writer("TVEC").unwrap();
        let count = 2 * SIGHTINGS_PER_READ + 7;
        let ids: Vec<i64> = (0..count)
            .map(|i| {
                let facts = MediaFacts {
                    pdq: Some("f".repeat(64)),
                    quality: Some(QUALITY_THRESHOLD),
                    sha256: Some(format!("{:064x}", i % 3)),
                    ..MediaFacts::default()
                };
                writer.record_sighting(1, &facts).unwrap()
            })
            .collect();
        writer.commit().unwrap();
        let ledger = Ledger::load(&store).unwrap();
        let hits = ledger.find(&QuerySignals::of_hash("f".repeat(64).parse().unwrap()));
        let answer = report(&store, &hits, &Asked::default(), 3).unwrap();
        assert_eq!(answer.sightings_total, count);
        let shown: Vec<i64> = answer.sightings.iter().map(|s| s.sighting.id).collect();
        assert_eq!(shown, ids[..3]);
        let per_file: Vec<usize> = answer.variants.iter().map(|v| v.sightings).collect();
        assert_eq!(per_file.iter().sum::<usize>(), count, "{per_file:?}");
        assert_eq!(per_file.len(), 3);
    }

    /// A sighting as the ledger would give it, seen at `day` of June 2026.
    fn seen(id: i64, day: u32, account: &str, evidence: Value) -> SeenAt {
        let at = format!("2026-06-{day:02}T00:00:00Z");
        SeenAt {
            seen_at: at.clone(),
            sighting: Sighting {
                id,
                kind: "submission",
                submission_id: Some(id),
                bank: None,
                bank_content_id: None,
                received_at: at,
                posted_at: None,
                source_url: Some(format!("https://example.com/{account}")),
                account_id: Some(account.to_string()),
                media: MediaFacts {
                    sha256: Some(format!("{:064x}", id % 2)),
                    evidence,
                    ..MediaFacts::default()
                },
            },
            signal_type: SignalType::Pdq.name(),
            distance: (id % 5) as u32,
            transform: "original",
        }
    }

    /// The tally, fed sightings in no particular order, keeps the earliest of each kind
    /// and counts the ones before the post.
    #[test]
    fn the_tally_keeps_the_earliest_whatever_order_sightings_come_in() {
        let asked = Asked {
            posted_at: Some("2026-06-20T00:00:00Z".to_string()),
            ..Asked::default()
        };
        let mut tally = Tally::new(&asked, 2);
        let c2pa = json!({ "c2pa": { "signer": "Desk", "validation_state": "valid" } });
        let exif = |time: &str| json!({ "exif": { "capture_time": time } });
        for (id, day, account, evidence) in [
            (5, 25, "late", json!({})),
            (4, 12, "b", c2pa.clone()),
            (3, 15, "a", exif("2019:01:01 00:00:00")),
            (2, 10, "a", json!({})),
            (1, 18, "c", c2pa),
            (6, 11, "b", exif("2018:01:01 00:00:00")),
        ] {
            tally.add(seen(id, day, account, evidence));
        }
        let answer = tally.into_provenance(&asked);
        let shown: Vec<i64> = answer.sightings.iter().map(|s| s.sighting.id).collect();
        assert_eq!(shown, [2, 6]);
        assert_eq!(answer.first_seen.map(|s| s.sighting.id), Some(2));
        assert_eq!(
            (answer.sightings_total, answer.accounts, answer.sources),
            (6, 4, 4)
        );
        assert_eq!(answer.evidence["c2pa_in_sightings"]["sighting_id"], 4);
        assert_eq!(answer.evidence["earliest_capture_in_sightings"]["sighting_id"], 6);
        assert_eq!(answer.verdict.label, "recycled");
        assert!(
            answer.verdict.reasons[0].starts_with("first seen 10 days before this post")
                && answer.verdict.reasons[0].contains("(5 sightings, distance 2)"),
            "{:?}",
            answer.verdict.reasons
        );
        assert!(answer.verdict.reasons[1].contains("an earlier copy (sighting 4) did"));
        let variants: Vec<(usize, u32)> = answer
            .variants
            .iter()
            .map(|v| (v.sightings, v.distance))
            .collect();
        assert_eq!(variants, [(3, 0), (3, 1)]);
    }

    fn credentials(state: &str, errors: &[&str], signed_at: Option<&str>, ai: bool) -> Value {
        json!({ "claim_generator": "Camera 1.0", "signer": "Agency Photo Desk", "signed_at": signed_at,
                "validation_state": state, "validation_errors": errors,
                "actions": ["c2pa.created", "c2pa.cropped", "c2pa.color_adjustments"],
                "ai_generated": ai, "title": "t", "manifests": 1 })
    }

    #[test]
    fn content_credentials_become_reasons() {
        let posted = OffsetDateTime::parse("2026-06-14T00:00:00Z", &Rfc3339).unwrap();
        let mut reasons = Vec::new();
        let sound = credentials(
            "valid",
            &["signingCredential.untrusted"],
            Some("2026-06-10T08:00:00Z"),
            false,
        );
        assert!(
            !c2pa_reasons(&sound, posted, &mut reasons),
            "signed four days before: not recycled"
        );
        assert_eq!(
            reasons,
            [
                "C2PA: signed by Agency Photo Desk with Camera 1.0 (certificate on no trust list), \
              edited (cropped, color_adjustments)"
            ]
        );

        let mut reasons = Vec::new();
        let old = credentials("valid", &[], Some("2013-05-02T10:00:00Z"), true);
        assert!(
            c2pa_reasons(&old, posted, &mut reasons),
            "signed years before the post"
        );
        assert_eq!(
            reasons[1],
            "C2PA: declares the picture made by a generative model"
        );
        assert!(reasons[2].starts_with("C2PA signing time 2013-05-02 vs posted 2026-06-14"));

        let mut reasons = Vec::new();
        let broken = credentials("invalid", &["assertion.dataHash.mismatch"], None, false);
        assert!(!c2pa_reasons(&broken, posted, &mut reasons));
        assert_eq!(
            reasons,
            ["C2PA: Content Credentials present but invalid (assertion.dataHash.mismatch)"]
        );
    }

    #[test]
    fn exif_times_are_read_and_nonsense_is_not() {
        let at = exif_time("2013:05:02 14:30:00").unwrap();
        assert_eq!(at.date().to_string(), "2013-05-02");
        for bad in ["", "2013:13:02 14:30:00", "yesterday", "2013:05:02"] {
            assert!(exif_time(bad).is_none(), "{bad}");
        }
    }
}
