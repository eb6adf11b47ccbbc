//! Search over the local-feature sets of bank images: every set that verifies against a
//! query's set (at least [`MIN_INLIERS`] keypoint pairs agreeing on one transformation).
//!
//! Each stored descriptor goes into a [`HammingIndex`] (descriptors are 256-bit, like PDQ
//! hashes; cut into the [`DescriptorParts`] that suit their radius) under its set and
//! keypoint, the descriptors of a set side by side, from where verification reads them.
//! A query's descriptors are searched at [`PAIR_RADIUS`], the same radius
//! [`verify`](cordon_signals::features::verify) pairs within, so a set with fewer than
//! [`MIN_INLIERS`] query descriptors near it cannot verify and is skipped; the sets left
//! are verified in full. The result is exactly what verifying the query against every
//! stored set would give, with one exception that bounds the work an upload can cause:
//! a query descriptor whose buckets hold far more stored descriptors than the average
//! (more than [`COMMON_FACTOR`] times, and more than [`COMMON_FLOOR`]) says nothing about
//! which image it came from (the texture of a flat sky, say, in many stored images, or a
//! crafted upload aimed at such a crowd) and is not searched. Without that, a bank holding
//! many alike images made every query descriptor near one of theirs cost as much as
//! comparing it with all of them.

use std::collections::HashMap;

use cordon_signals::PdqHash;
use cordon_signals::features::{FeatureSet, Keypoint, MIN_INLIERS, PAIR_RADIUS, verify_against};

use crate::hash_store::Words;
use crate::{DescriptorParts, EntryId, HammingIndex, Hit, Parts};

// The descriptors' parts are sized for 1 bit of difference each at the pair radius; at
// 2 bits a search would probe 137 buckets a table instead of 17.
const _: () = assert!(PAIR_RADIUS < 2 * DescriptorParts::COUNT as u32);

/// Keypoint numbers take the low bits of a descriptor's entry id; the set's slot the rest.
const KEYPOINT_BITS: u32 = 16;

/// A set's keypoints and descriptors, as many of each: the index keeps a run of one
/// beside a list of the other, which must be as long (sets made here always are).
fn paired(features: FeatureSet) -> (Vec<Keypoint>, Vec<[u64; 4]>) {
    let FeatureSet {
        mut keypoints,
        mut descriptors,
    } = features;
    let len = keypoints.len().min(descriptors.len());
    keypoints.truncate(len);
    descriptors.truncate(len);
    (keypoints, descriptors)
}

/// The entry id of keypoint `keypoint` of the set in `slot`.
fn entry(slot: usize, keypoint: usize) -> EntryId {
    ((slot as u64) << KEYPOINT_BITS) | keypoint as u64
}

/// A query descriptor is too common to search when its buckets hold more than this many
/// times the average...
pub const COMMON_FACTOR: f64 = 64.0;
/// ...and more than this many stored descriptors (small banks are cheap whatever the query).
pub const COMMON_FLOOR: usize = 4096;

/// A search's answer, and what it cost.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FeatureSearch {
    /// The sets that verified, most inliers first.
    pub hits: Vec<FeatureHit>,
    /// Stored descriptors looked at: those in the buckets the search probed (only the
    /// ones whose tags are near are compared in full).
    pub candidates: usize,
    /// Query descriptors not searched: too common to tell images apart.
    pub common: usize,
}

/// A stored set that verified against a query.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct FeatureHit {
    pub id: EntryId,
    /// Keypoint pairs agreeing on the transformation.
    pub inliers: u32,
}

/// An exact, live index of local-feature sets.
#[derive(Default)]
pub struct FeatureIndex {
    descriptors: HammingIndex<DescriptorParts>,
    /// Slot -> the caller's id and the set's keypoints (`None` once removed; slots are not
    /// reused). The set's descriptors are kept once, in `descriptors`, side by side
    /// ([`HammingIndex::run`]), and read from there to verify: a second copy cost 32 of
    /// every descriptor's ~150 bytes.
    sets: Vec<Option<(EntryId, Vec<Keypoint>)>>,
    /// The caller's id -> its sets' slots (most ids have one).
    slots: HashMap<EntryId, Vec<usize>>,
}

impl FeatureIndex {
    pub fn new() -> Self {
        FeatureIndex::default()
    }

    /// How many ids have sets stored.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Descriptors held, over every set: what a lookup's work and the index's memory grow
    /// with.
    pub fn descriptors_len(&self) -> usize {
        self.descriptors.len()
    }

    /// An index of `sets` (an id may come with several), built in one pass, as loading a
    /// store does: several times faster than adding them one at a time, and it leaves no
    /// delta for lookups to walk.
    pub fn from_sets(sets: impl IntoIterator<Item = (EntryId, FeatureSet)>) -> Self {
        let mut index = FeatureIndex::new();
        let mut descriptors = Vec::new();
        for (id, features) in sets {
            descriptors.extend(index.keep(id, features));
        }
        index.descriptors = HammingIndex::from_entries(descriptors);
        index
    }

    /// Stores `features` under `id`, replacing what `id` held.
    pub fn insert(&mut self, id: EntryId, features: FeatureSet) {
        self.remove(id);
        self.add(id, features);
    }

    /// Stores one more set under `id`, beside those it has: one picture can have several
    /// (a picture with transparency, as decoded and as seen). A search reports each set
    /// that verifies.
    pub fn add(&mut self, id: EntryId, features: FeatureSet) {
        for (descriptor, entry) in self.keep(id, features) {
            self.descriptors.insert(descriptor, entry);
        }
    }

    /// Gives `features` a new slot under `id`, keeping its keypoints, and returns its
    /// descriptors with their entry ids, for the caller to put in the index (one by one,
    /// or all at once).
    fn keep(
        &mut self,
        id: EntryId,
        features: FeatureSet,
    ) -> impl Iterator<Item = (PdqHash, EntryId)> + use<> {
        let slot = self.sets.len();
        let (keypoints, descriptors) = paired(features);
        self.sets.push(Some((id, keypoints)));
        self.slots.entry(id).or_default().push(slot);
        descriptors
            .into_iter()
            .enumerate()
            .map(move |(keypoint, d)| (PdqHash::from_words(d), entry(slot, keypoint)))
    }

    /// Removes every set stored under `id`; false if there was none.
    pub fn remove(&mut self, id: EntryId) -> bool {
        let Some(slots) = self.slots.remove(&id) else {
            return false;
        };
        for slot in slots {
            if let Some((_, keypoints)) = self.sets[slot].take() {
                // Copied first: a removal can compact the index, which moves the run.
                let run: Vec<[u64; 4]> = self
                    .run(slot, keypoints.len())
                    .iter()
                    .map(|words| words.0)
                    .collect();
                for (keypoint, descriptor) in run.into_iter().enumerate() {
                    self.descriptors
                        .remove(PdqHash::from_words(descriptor), entry(slot, keypoint));
                }
            }
        }
        true
    }

    /// Every stored set that verifies against `query`, most inliers first.
    pub fn search(&self, query: &FeatureSet) -> Vec<FeatureHit> {
        self.search_counted(query).hits
    }

    /// [`FeatureIndex::search`], with what it cost.
    pub fn search_counted(&self, query: &FeatureSet) -> FeatureSearch {
        let too_common =
            (self.descriptors.mean_candidates(PAIR_RADIUS) * COMMON_FACTOR).max(COMMON_FLOOR as f64) as usize;
        let mut searched = FeatureSearch::default();
        // For each set, how many query descriptors have some descriptor of it in range.
        let mut near: HashMap<usize, u32> = HashMap::new();
        let mut hits: Vec<Hit> = Vec::new();
        let mut slots_hit: Vec<usize> = Vec::new();
        for descriptor in &query.descriptors {
            let descriptor = PdqHash::from_words(*descriptor);
            hits.clear();
            let Some(candidates) =
                self.descriptors
                    .search_within(&descriptor, PAIR_RADIUS, too_common, &mut hits)
            else {
                searched.common += 1;
                continue;
            };
            searched.candidates += candidates;
            slots_hit.clear();
            slots_hit.extend(hits.iter().map(|hit| (hit.id >> KEYPOINT_BITS) as usize));
            slots_hit.sort_unstable();
            slots_hit.dedup();
            for &slot in &slots_hit {
                *near.entry(slot).or_default() += 1;
            }
        }
        let mut found: Vec<FeatureHit> = near
            .into_iter()
            .filter(|&(_, count)| count >= MIN_INLIERS)
            .filter_map(|(slot, _)| {
                let (id, keypoints) = self.sets[slot].as_ref()?;
                let inliers = verify_against(query, keypoints, self.run(slot, keypoints.len())).inliers;
                (inliers >= MIN_INLIERS).then_some(FeatureHit { id: *id, inliers })
            })
            .collect();
        found.sort_by(|a, b| b.inliers.cmp(&a.inliers).then(a.id.cmp(&b.id)));
        searched.hits = found;
        searched
    }

    /// The descriptors of the set in `slot`, which has `len` keypoints (none for a set
    /// without descriptors).
    fn run(&self, slot: usize, len: usize) -> &[Words] {
        self.descriptors.run(entry(slot, 0), len).unwrap_or(&[])
    }
}
