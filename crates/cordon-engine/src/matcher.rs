//! Matching: which bank content a signal matches, and how closely.
//!
//! The [`Matcher`] loads every PDQ signal from the store into one [`PdqIndex`], searches
//! it at the largest threshold of any bank, then keeps the hits within each bank's own
//! threshold; every local-features signal goes into one [`FeatureIndex`], whose hits are
//! kept within each bank's `features` threshold. An index entry's id packs the bank and
//! the content ids (see [`EntryKey`]), so a hit names its bank and content without
//! another lookup.

use std::collections::{BTreeMap, HashMap};

use cordon_index::{EntryId, FeatureIndex, Hit, PdqIndex};
use cordon_signals::features::{self, FeatureSet};
use cordon_signals::{Dihedral, PdqHash, SignalType};
use cordon_store::{Bank, BankName, ContentId, Store, StoreError, now_rfc3339};
use serde::Serialize;

use crate::image_signals::QuerySignals;

/// PDQ's conventional match threshold (python-threatexchange, HMA, vPDQ).
pub const DEFAULT_PDQ_THRESHOLD: u32 = 31;

/// Packs a bank id (24 bits) and a content id (40 bits) into an index entry id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryKey {
    pub bank_id: i64,
    pub content_id: ContentId,
}

impl EntryKey {
    const CONTENT_BITS: u32 = 40;

    pub fn pack(self) -> Option<EntryId> {
        let bank = u64::try_from(self.bank_id).ok().filter(|b| *b < 1 << 24)?;
        let content = u64::try_from(self.content_id)
            .ok()
            .filter(|c| *c < 1 << Self::CONTENT_BITS)?;
        Some(bank << Self::CONTENT_BITS | content)
    }

    pub fn unpack(id: EntryId) -> EntryKey {
        EntryKey {
            bank_id: (id >> Self::CONTENT_BITS) as i64,
            content_id: (id & ((1 << Self::CONTENT_BITS) - 1)) as i64,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MatcherError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("content {content_id} of bank {bank_id} holds an invalid {signal_type} signal: {reason}")]
    BadSignal {
        bank_id: i64,
        content_id: ContentId,
        signal_type: &'static str,
        reason: String,
    },
    #[error("content id {0} is beyond what the index addresses (2^40)")]
    IdOutOfRange(ContentId),
}

/// One bank entry that a query matched.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Match {
    pub bank: BankName,
    pub content_id: ContentId,
    pub signal_type: &'static str,
    pub distance: u32,
    /// Which variant of the query matched (`original` unless dihedral matching is on).
    pub transform: &'static str,
    /// The bank is a negative bank: known harmless content.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub negative: bool,
    /// The flood guard holds this entry for review (set by [`crate::flood::FloodGuard`]).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub quarantined: bool,
}

/// Every stored signal of one type, parsed, with the index id of its bank and content.
/// The first bad value stops the load: a matcher missing signals would miss matches.
fn read_signals<T: std::str::FromStr>(
    store: &Store,
    signal_type: SignalType,
) -> Result<Vec<(T, EntryId)>, MatcherError>
where
    T::Err: std::fmt::Display,
{
    let mut entries = Vec::new();
    let mut failure = None;
    store.for_each_signal(signal_type.name(), |row| {
        if failure.is_some() {
            return;
        }
        let key = EntryKey {
            bank_id: row.bank_id,
            content_id: row.content_id,
        };
        match (row.value.parse::<T>(), key.pack()) {
            (Ok(value), Some(id)) => entries.push((value, id)),
            (Err(e), _) => {
                failure = Some(MatcherError::BadSignal {
                    bank_id: row.bank_id,
                    content_id: row.content_id,
                    signal_type: signal_type.name(),
                    reason: e.to_string(),
                })
            }
            (_, None) => failure = Some(MatcherError::IdOutOfRange(row.content_id)),
        }
    })?;
    match failure {
        Some(error) => Err(error),
        None => Ok(entries),
    }
}

/// What matching needs to know of a bank.
struct BankState {
    name: BankName,
    labels: Vec<String>,
    pdq_threshold: u32,
    features_threshold: u32,
    enabled: bool,
    enabled_ratio: f64,
    negative: bool,
}

impl BankState {
    fn of(bank: &Bank) -> BankState {
        let threshold = |signal_type: SignalType| {
            bank.thresholds
                .get(signal_type.name())
                .copied()
                .unwrap_or(signal_type.default_threshold())
        };
        BankState {
            name: bank.name.clone(),
            labels: bank.labels.clone(),
            pdq_threshold: threshold(SignalType::Pdq),
            features_threshold: threshold(SignalType::Features),
            enabled: bank.enabled,
            enabled_ratio: bank.enabled_ratio,
            negative: bank.negative,
        }
    }
}

/// Which banks a lookup searches.
#[derive(Clone, Debug, Default)]
pub struct Lookup {
    /// Only these banks (by name); `None` for all.
    pub banks: Option<Vec<String>>,
    /// Search disabled banks and disabled content too (HMA's raw lookup).
    pub include_disabled: bool,
    /// HMA's coin flip, in [0, 1): a bank is searched when its enabled ratio is at least
    /// this. 0 searches every enabled bank.
    pub flip: f64,
}

/// Banks and their PDQ signals, ready to match, kept current by the caller as banks and
/// content change.
///
/// Every signal of every bank is indexed; whether a bank is enabled, and whether a piece of
/// content is disabled for now, is checked on the (few) hits at match time, so that such
/// changes apply to the very next lookup without touching the index.
pub struct Matcher {
    pdq: PdqIndex,
    features: FeatureIndex,
    banks: HashMap<i64, BankState>,
    /// Content with a disabled-until time (RFC 3339, compared as text).
    disabled: HashMap<ContentId, String>,
    /// The largest PDQ threshold of any bank: the radius searched.
    pdq_radius: u32,
}

impl Matcher {
    /// Loads every bank's PDQ signals.
    pub fn load(store: &Store) -> Result<Matcher, MatcherError> {
        let entries = read_signals::<PdqHash>(store, SignalType::Pdq)?;
        // A content may hold several sets (a picture with transparency: as decoded and
        // as seen): each is kept, none replaces another.
        let sets = read_signals::<FeatureSet>(store, SignalType::Features)?;
        let mut matcher = Matcher {
            pdq: PdqIndex::from_entries(entries),
            features: FeatureIndex::from_sets(sets.into_iter().map(|(set, id)| (id, set))),
            banks: HashMap::new(),
            disabled: store.disabled_content()?,
            pdq_radius: 0,
        };
        for bank in store.banks()? {
            matcher.set_bank(&bank);
        }
        Ok(matcher)
    }

    /// PDQ hashes held.
    pub fn pdq_len(&self) -> usize {
        self.pdq.len()
    }

    pub fn pdq_memory_bytes(&self) -> usize {
        self.pdq.memory_bytes()
    }

    /// Contents with local-feature sets held.
    pub fn features_len(&self) -> usize {
        self.features.len()
    }

    /// Local-feature descriptors held, over every set.
    pub fn feature_descriptors(&self) -> usize {
        self.features.descriptors_len()
    }

    /// Adds or updates a bank (name, threshold, enabled state).
    pub fn set_bank(&mut self, bank: &Bank) {
        self.banks.insert(bank.id, BankState::of(bank));
        self.pdq_radius = self.banks.values().map(|b| b.pdq_threshold).max().unwrap_or(0);
    }

    /// The labels of the bank named `name` (none for an unknown bank).
    pub fn bank_labels(&self, name: &str) -> Vec<String> {
        self.banks
            .values()
            .find(|b| b.name.as_str() == name)
            .map(|b| b.labels.clone())
            .unwrap_or_default()
    }

    /// Forgets a bank: its entries stop matching at once (and leave the index when it is
    /// next rebuilt).
    pub fn remove_bank(&mut self, bank_id: i64) {
        self.banks.remove(&bank_id);
    }

    /// Makes a content's PDQ hash matchable.
    pub fn add_pdq(
        &mut self,
        bank_id: i64,
        content_id: ContentId,
        hash: PdqHash,
    ) -> Result<(), MatcherError> {
        let key = EntryKey { bank_id, content_id };
        let id = key.pack().ok_or(MatcherError::IdOutOfRange(content_id))?;
        self.pdq.insert(hash, id);
        Ok(())
    }

    /// Makes one of a content's local-feature sets matchable (beside any it has).
    pub fn add_features(
        &mut self,
        bank_id: i64,
        content_id: ContentId,
        features: FeatureSet,
    ) -> Result<(), MatcherError> {
        let key = EntryKey { bank_id, content_id };
        let id = key.pack().ok_or(MatcherError::IdOutOfRange(content_id))?;
        self.features.add(id, features);
        Ok(())
    }

    /// Stops a content's local features from matching.
    pub fn remove_features(&mut self, bank_id: i64, content_id: ContentId) {
        if let Some(id) = (EntryKey { bank_id, content_id }).pack() {
            self.features.remove(id);
        }
    }

    /// Stops a content's PDQ hash from matching.
    pub fn remove_pdq(&mut self, bank_id: i64, content_id: ContentId, hash: PdqHash) {
        if let Some(id) = (EntryKey { bank_id, content_id }).pack() {
            self.pdq.remove(hash, id);
        }
    }

    /// Records until when content does not match (`None`: it matches).
    pub fn set_disabled_until(&mut self, content_id: ContentId, until: Option<String>) {
        match until {
            Some(until) => self.disabled.insert(content_id, until),
            None => self.disabled.remove(&content_id),
        };
    }

    /// Bank content within its bank's threshold of `hash`, nearest first, from every
    /// enabled bank.
    pub fn match_pdq(&self, hash: &PdqHash) -> Vec<Match> {
        self.lookup_pdq(hash, &Lookup::default())
    }

    /// Like [`Matcher::match_pdq`], searching the banks `lookup` selects.
    pub fn lookup_pdq(&self, hash: &PdqHash, lookup: &Lookup) -> Vec<Match> {
        let mut found = BTreeMap::new();
        self.collect_pdq(
            hash,
            Dihedral::Original.name(),
            lookup,
            &now_rfc3339(),
            &mut found,
        );
        Self::ordered(found)
    }

    /// Bank content matching any signal of a query, from the banks `lookup` selects. Each
    /// content is reported once: by its closest PDQ variant if PDQ matched it (the
    /// original on ties), otherwise by local features.
    pub fn lookup(&self, query: &QuerySignals, lookup: &Lookup) -> Vec<Match> {
        let mut found = BTreeMap::new();
        let now = now_rfc3339();
        for (variant, hash) in &query.pdq {
            self.collect_pdq(hash, variant, lookup, &now, &mut found);
        }
        let mut by_features = BTreeMap::new();
        for (variant, set) in &query.features {
            for hit in self.features.search(set) {
                let distance = features::distance_of_inliers(hit.inliers);
                self.keep(
                    hit.id,
                    distance,
                    SignalType::Features,
                    variant,
                    lookup,
                    &now,
                    &mut by_features,
                );
            }
        }
        for (key, candidate) in by_features {
            found.entry(key).or_insert(candidate);
        }
        Self::ordered(found)
    }

    fn searchable(&self, bank: &BankState, lookup: &Lookup) -> bool {
        let chosen = lookup
            .banks
            .as_ref()
            .is_none_or(|names| names.iter().any(|n| n == bank.name.as_str()));
        let live = bank.enabled && bank.enabled_ratio > 0.0 && bank.enabled_ratio >= lookup.flip;
        chosen && (lookup.include_disabled || live)
    }

    fn collect_pdq(
        &self,
        hash: &PdqHash,
        variant: &'static str,
        lookup: &Lookup,
        now: &str,
        found: &mut BTreeMap<(i64, ContentId), Match>,
    ) {
        let mut hits: Vec<Hit> = Vec::new();
        self.pdq.search(hash, self.pdq_radius, &mut hits);
        for hit in hits {
            self.keep(hit.id, hit.distance, SignalType::Pdq, variant, lookup, now, found);
        }
    }

    /// Records a hit if its bank is searched, it is within the bank's threshold for its
    /// signal type and its content is not disabled; a content keeps its closest hit.
    #[allow(clippy::too_many_arguments)]
    fn keep(
        &self,
        id: EntryId,
        distance: u32,
        signal_type: SignalType,
        variant: &'static str,
        lookup: &Lookup,
        now: &str,
        found: &mut BTreeMap<(i64, ContentId), Match>,
    ) {
        let key = EntryKey::unpack(id);
        let Some(bank) = self.banks.get(&key.bank_id) else {
            return;
        };
        let threshold = match signal_type {
            SignalType::Pdq => bank.pdq_threshold,
            SignalType::Features => bank.features_threshold,
        };
        if distance > threshold || !self.searchable(bank, lookup) {
            return;
        }
        let disabled = self
            .disabled
            .get(&key.content_id)
            .is_some_and(|until| until.as_str() > now);
        if disabled && !lookup.include_disabled {
            return;
        }
        let candidate = Match {
            bank: bank.name.clone(),
            content_id: key.content_id,
            signal_type: signal_type.name(),
            distance,
            transform: variant,
            negative: bank.negative,
            quarantined: false,
        };
        found
            .entry((key.bank_id, key.content_id))
            .and_modify(|m: &mut Match| {
                if candidate.distance < m.distance {
                    *m = candidate.clone();
                }
            })
            .or_insert(candidate);
    }

    fn ordered(found: BTreeMap<(i64, ContentId), Match>) -> Vec<Match> {
        let mut matches: Vec<Match> = found.into_values().collect();
        matches.sort_by(|a, b| {
            (a.distance, a.bank.as_str(), a.content_id).cmp(&(b.distance, b.bank.as_str(), b.content_id))
        });
        matches
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use cordon_store::{BankUpdate, NewBank, NewContent, Signal};

    #[test]
    fn disabled_content_and_banks_stop_matching_and_expired_disables_lapse() {
        let mut store = Store::open_in_memory().unwrap();
        let name = BankName::new("LIVE").unwrap();
        store.create_bank(&name, NewBank::default()).unwrap();
        let hash = |byte: &str| byte.repeat(32);
        let mut writer = store.content_writer("LIVE").unwrap();
        let mut add = |value: String| {
            writer
                .insert(&NewContent {
                    signals: vec![Signal {
                        signal_type: "pdq".to_string(),
                        value,
                    }],
                    ..NewContent::default()
                })
                .unwrap()
        };
        let (a, b) = (add(hash("01")), add(hash("02")));
        writer.commit().unwrap();
        store
            .set_content_disabled_until(a, Some("9999-01-01T00:00:00.000Z"))
            .unwrap();
        store
            .set_content_disabled_until(b, Some("2000-01-01T00:00:00.000Z"))
            .unwrap();
        let matcher = Matcher::load(&store).unwrap();
        let found = |m: &Matcher, value: String| m.match_pdq(&value.parse().unwrap()).len();
        assert_eq!(found(&matcher, hash("01")), 0, "disabled until 9999");
        assert_eq!(found(&matcher, hash("02")), 1, "disabled until 2000: lapsed");
        let bank = store
            .update_bank(
                "LIVE",
                BankUpdate {
                    enabled: Some(false),
                    ..BankUpdate::default()
                },
            )
            .unwrap();
        let mut matcher = matcher;
        matcher.set_bank(&bank);
        assert_eq!(found(&matcher, hash("02")), 0, "bank disabled");
    }

    /// A made-up set of 40 keypoints spread over the picture, its descriptors drawn from
    /// `seed`: a set verifies against itself and not against another seed's.
    fn made_up_features(seed: u64) -> FeatureSet {
        let mut state = seed;
        let mut next = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            state
        };
        let keypoints = (0..40u32)
            .map(|i| features::Keypoint {
                x: (i % 8 * 60 + 10) as f32,
                y: (i / 8 * 90 + 10) as f32,
                level: 0,
                angle: 0.0,
            })
            .collect();
        let descriptors = (0..40).map(|_| [next(), next(), next(), next()]).collect();
        FeatureSet {
            keypoints,
            descriptors,
        }
    }

    #[test]
    fn every_feature_set_of_a_content_matches_after_a_load() {
        let mut store = Store::open_in_memory().unwrap();
        store
            .create_bank(&BankName::new("SEEN").unwrap(), NewBank::default())
            .unwrap();
        let (decoded, seen) = (made_up_features(1), made_up_features(2));
        let mut writer = store.content_writer("SEEN").unwrap();
        let id = writer
            .insert(&NewContent {
                signals: [&decoded, &seen]
                    .map(|set| Signal {
                        signal_type: "features".to_string(),
                        value: set.to_string(),
                    })
                    .to_vec(),
                ..NewContent::default()
            })
            .unwrap();
        writer.commit().unwrap();
        let matcher = Matcher::load(&store).unwrap();
        for set in [decoded, seen] {
            let query = QuerySignals {
                features: vec![("original", set)],
                ..QuerySignals::default()
            };
            let found = matcher.lookup(&query, &Lookup::default());
            assert_eq!(found.iter().map(|m| m.content_id).collect::<Vec<_>>(), [id]);
        }
    }

    #[test]
    fn entry_keys_round_trip_and_refuse_what_does_not_fit() {
        let key = EntryKey {
            bank_id: 7,
            content_id: 123_456_789,
        };
        assert_eq!(EntryKey::unpack(key.pack().unwrap()), key);
        let big = EntryKey {
            bank_id: 1,
            content_id: 1 << 40,
        };
        assert_eq!(big.pack(), None);
        let negative = EntryKey {
            bank_id: -1,
            content_id: 1,
        };
        assert_eq!(negative.pack(), None);
    }
}
