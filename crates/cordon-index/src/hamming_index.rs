//! Exact radius search over 256-bit hashes (PDQ hashes, local-feature descriptors) by
//! multi-index hashing (Norouzi, Punjani and Fleet), the scheme upstream PDQ and faiss use.
//!
//! Each hash is cut into `m` disjoint parts ([`Parts`]). If two hashes are within `r`
//! bits, then by the pigeonhole principle some part is within `r / m` bits (rounded down),
//! so probing, in each of `m` tables, the buckets of every key within `r / m` bits of the
//! query's part finds every match; a candidate is then checked on all 256 bits. A
//! candidate found in table `t` is reported only if no earlier table would have found it
//! too, which removes duplicates without a seen-set.
//!
//! A part is a 16-bit key, which names its bucket, and for parts wider than 16 bits a tag
//! of the rest, kept beside each slot: a search compares the tags of a bucket, read in
//! sequence, and checks only the slots whose tags could still be near enough, rather than
//! reading every slot's hash from wherever it lies. [`PdqParts`] is the 16 x 16-bit form
//! for PDQ's radius 31; [`DescriptorParts`], 12 parts of 21-22 bits, serves local
//! features' radius 23 with ~30x fewer hashes read per query (see its comment).
//!
//! Storage: the hashes and ids by slot, and per table a compressed sparse row layout
//! (bucket offsets, then slots sorted by bucket, and their tags). New entries go to a
//! delta of chained buckets, merged into the sorted tables once it grows, one table at a
//! time (see [`HammingIndex::insert`]); removals are tombstones, dropped at a merge of
//! every table once they are many. Every change is visible to the next query.

use cordon_signals::PdqHash;

use crate::EntryId;
use crate::hash_store::{HashStore, Words, advise_huge_pages, growth};

/// How an index cuts the 256 bits of a hash into the parts its tables are keyed by: each
/// part a 16-bit key and, beyond it, a tag of at most 8 bits. The parts are disjoint and
/// cover every bit once (the pigeonhole argument needs both).
pub trait Parts {
    /// How many parts, and tables.
    const COUNT: usize;
    /// Whether parts have tags (are wider than their keys).
    const TAGGED: bool;
    /// A table's delta is merged into it once it holds more than the table's size divided
    /// by this, or [`Parts::MERGE_MIN`] entries, whichever is larger.
    const MERGE_SHARE: usize;
    const MERGE_MIN: usize;
    /// Part `t`'s key: the `t`-th 16 bits, from the first word's lowest up (the layouts
    /// here all key their tables so; tags take the bits the keys leave).
    #[inline(always)]
    fn key(words: &[u64; 4], t: usize) -> u16 {
        (words[t / 4] >> (16 * (t % 4))) as u16
    }

    /// Part `t`'s bits beyond its key (none when untagged).
    #[inline(always)]
    fn tag(_words: &[u64; 4], _t: usize) -> u8 {
        0
    }
}

/// 16 parts of 16 bits: PDQ's radius 31 is 1 bit a part. With 16-bit parts a wider tag
/// would have nothing to hold.
pub struct PdqParts;

impl Parts for PdqParts {
    const COUNT: usize = 16;
    const TAGGED: bool = false;
    const MERGE_SHARE: usize = 4;
    const MERGE_MIN: usize = 1 << 16;
}

/// 12 parts of 21-22 bits, for local-feature descriptors searched at radius 23 (1 bit a
/// part, as with PDQ's parts at radius 31). The keys are the first three words, 16 bits
/// each; the last word is cut into the tags: 6 bits for parts 0-3, 5 for parts 4-11.
///
/// Why not 16 parts at radius 23: a bucket holds ~N / 65,536 entries whatever the width of
/// the part, but a search reads the hash of only the entries whose tag is also near, a
/// 32nd or 64th of them in the buckets of a changed key bit. Per query descriptor that is
/// ~12 x 0.7 bucket-fulls of hashes read, where 16 parts of 16 bits would read 16 x 9
/// (8 of the parts within 1 bit, 8 exactly, as 23 bits allow), for 12 x 17 buckets of
/// tags read in sequence. Measured at 4 M descriptors, one core: 32 µs a query
/// descriptor, against 160 µs for PDQ's parts at radius 31.
pub struct DescriptorParts;

impl Parts for DescriptorParts {
    const COUNT: usize = 12;
    const TAGGED: bool = true;
    /// A search reads a sorted bucket's tags in sequence but walks the delta's chains an
    /// entry at a time, a random read each. With PDQ's quarter (and 65,536), lookups at
    /// 4 M descriptors took 44 ms where sorted tables alone took 13; at a 64th (and
    /// 8,192) 16 ms, and at 400 k 4.3 ms instead of 5.1. Adding 10,000 images' sets one
    /// by one took 6.9 s instead of 2.0 (merges are more frequent); a node loads its
    /// sets in one pass instead (`FeatureIndex::from_sets`, 1.3 s).
    const MERGE_SHARE: usize = 64;
    const MERGE_MIN: usize = 1 << 13;

    #[inline(always)]
    fn tag(words: &[u64; 4], t: usize) -> u8 {
        let (shift, width) = if t < 4 { (6 * t, 6) } else { (24 + 5 * (t - 4), 5) };
        ((words[3] >> shift) & ((1 << width) - 1)) as u8
    }
}

/// The index of PDQ hashes: [`HammingIndex`] with [`PdqParts`].
pub type PdqIndex = HammingIndex<PdqParts>;

const KEYS: usize = 1 << 16;
/// Above this per-part radius (a total radius of 48 and more with PDQ's 16 parts, 36 with
/// descriptors' 12) a search compares every entry instead: for PDQ, probing that many
/// buckets was slower than a plain scan. Both are exact.
const MAX_PROBE_RADIUS: u32 = 2;
/// An index of at most this many entries is searched by comparing the query with each:
/// one probe of the tables is a random memory access, and a search makes up to 16 x 137
/// of them, while a few thousand hashes side by side are read faster than that (a bank of
/// a few images' local features is searched hundreds of times per upload).
const SCAN_UP_TO: usize = 2048;

/// One entry within the radius of a query.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hit {
    pub id: EntryId,
    pub distance: u32,
}

/// One table of the sorted part: `slots[offsets[k]..offsets[k + 1]]` hold key `k`, and
/// `tags` (empty when the parts have none) their tags, slot for slot.
/// It holds every slot below [`SortedTable::covers`]; the delta holds the later ones.
#[derive(Default)]
struct SortedTable {
    offsets: Box<[u32]>,
    slots: Box<[u32]>,
    tags: Box<[u8]>,
}

/// How many candidates ahead the search touches memory, so that several cache misses are
/// in flight at once instead of one after the other.
const LOOKAHEAD: usize = 32;

/// An exact, live index of 256-bit hashes, its tables keyed by the parts `P`.
pub struct HammingIndex<P: Parts> {
    hashes: HashStore,
    ids: Vec<EntryId>,
    /// Tombstones, one bit per slot.
    removed: Vec<u64>,
    removed_count: usize,
    /// Empty until the first build, then one per part.
    sorted: Vec<SortedTable>,
    delta: Delta,
    /// The table the next merge of adds takes, and the adds since the last one.
    next_merge: usize,
    adds_since_merge: usize,
    /// The smallest delta (and tombstone count) that triggers a merge.
    merge_at: usize,
    /// [`SCAN_UP_TO`], or another bound in tests.
    scan_up_to: usize,
    // A function type, so that the index is Send and Sync whatever `P` is: it holds no `P`.
    parts: std::marker::PhantomData<fn() -> P>,
}

impl<P: Parts> Default for HammingIndex<P> {
    fn default() -> Self {
        Self::new()
    }
}

/// Bits in which parts `t` of `a` and `b` differ.
#[inline(always)]
fn part_distance<P: Parts>(a: &[u64; 4], b: &[u64; 4], t: usize) -> u32 {
    (P::key(a, t) ^ P::key(b, t)).count_ones() + (P::tag(a, t) ^ P::tag(b, t)).count_ones()
}

#[inline(always)]
fn distance(a: &[u64; 4], b: &[u64; 4]) -> u32 {
    (a[0] ^ b[0]).count_ones()
        + (a[1] ^ b[1]).count_ones()
        + (a[2] ^ b[2]).count_ones()
        + (a[3] ^ b[3]).count_ones()
}

/// The 16-bit masks of at most `radius` bits, fewest bits first.
fn probe_masks(radius: u32) -> Vec<u16> {
    let mut masks: Vec<u16> = (0..=u16::MAX).filter(|m| m.count_ones() <= radius).collect();
    masks.sort_by_key(|m| m.count_ones());
    masks
}

impl<P: Parts> HammingIndex<P> {
    pub fn new() -> Self {
        HammingIndex {
            hashes: HashStore::default(),
            ids: Vec::new(),
            removed: Vec::new(),
            removed_count: 0,
            sorted: Vec::new(),
            delta: Delta::default(),
            next_merge: 0,
            adds_since_merge: 0,
            merge_at: P::MERGE_MIN,
            scan_up_to: SCAN_UP_TO,
            parts: std::marker::PhantomData,
        }
    }

    /// Builds the index over `entries` in one pass, with no delta.
    pub fn from_entries(entries: impl IntoIterator<Item = (PdqHash, EntryId)>) -> Self {
        let mut index = HammingIndex::new();
        let entries: Vec<(PdqHash, EntryId)> = entries.into_iter().collect();
        index.hashes = HashStore::with_capacity(entries.len());
        index.ids.reserve_exact(entries.len());
        for (hash, id) in entries {
            index.hashes.push(Words(hash.words()));
            index.ids.push(id);
        }
        index.removed = vec![0; index.hashes.len().div_ceil(64)];
        index.rebuild_sorted();
        index
    }

    /// The hashes of the `len` entries whose ids are `first`, `first + 1`, ..., if they are
    /// stored side by side in that order. They are when ids only grow as entries are added
    /// (the feature index numbers each set's descriptors so): merges move no hash, and
    /// dropping removed ones keeps the order of the rest. Found by a binary search over the
    /// ids, which that growth keeps sorted.
    pub(crate) fn run(&self, first: EntryId, len: usize) -> Option<&[Words]> {
        let slot = self.ids.partition_point(|&id| id < first);
        let last = first.checked_add(len.checked_sub(1)? as EntryId)?;
        (self.ids.get(slot) == Some(&first) && self.ids.get(slot + len - 1) == Some(&last))
            .then(|| &self.hashes[slot..slot + len])
    }

    /// Live entries.
    pub fn len(&self) -> usize {
        self.hashes.len() - self.removed_count
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held by the index's own buffers (not counting allocator slack).
    pub fn memory_bytes(&self) -> usize {
        let sorted: usize = self
            .sorted
            .iter()
            .map(|t| (t.offsets.len() + t.slots.len()) * 4 + t.tags.len())
            .sum();
        let delta = self.delta.memory_bytes();
        self.hashes.memory_bytes() + self.ids.capacity() * 8 + self.removed.capacity() * 8 + sorted + delta
    }

    /// Adds an entry; the next search sees it.
    ///
    /// Each table's delta is merged into it once it holds more than a share of the table
    /// ([`Parts::MERGE_SHARE`], [`Parts::MERGE_MIN`]: for PDQ a quarter, or 65,536). The
    /// tables take turns, one merge every sixteenth of that many adds (with 16 tables),
    /// rather than all at once: the merge runs under the matcher's write lock,
    /// and one table is a sixteenth of the wait for every lookup. A bank of local features
    /// holds 400 descriptors an image; at 10 M of them merging all tables at once held
    /// lookups for 1-2.5 s, and one image's add now merges at most one table.
    pub fn insert(&mut self, hash: PdqHash, id: EntryId) {
        let words = hash.words();
        if self.ids.len() == self.ids.capacity() {
            self.ids.reserve_exact(growth(self.ids.len()));
        }
        self.hashes.push(Words(words));
        self.ids.push(id);
        if self.removed.len() * 64 < self.hashes.len() {
            self.removed.push(0);
        }
        self.delta.push(
            P::COUNT,
            |t| P::key(&words, t),
            P::TAGGED.then_some(|t| P::tag(&words, t)),
        );
        if self.sorted.is_empty() {
            if self.hashes.len() > self.merge_at {
                self.compact();
            }
            return;
        }
        self.adds_since_merge += 1;
        let period = self
            .merge_at
            .max(self.sorted[self.next_merge].covers() / P::MERGE_SHARE);
        if self.adds_since_merge > period / P::COUNT {
            self.merge_next_table();
        }
    }

    /// Merges the delta of the table whose turn it is into it, in place.
    fn merge_next_table(&mut self) {
        let t = self.next_merge;
        let table = std::mem::take(&mut self.sorted[t]);
        let first = table.covers();
        self.sorted[t] = table.grown_by(&sorted_by_key::<P>(&self.hashes[first..], t), first as u32);
        self.delta.clear_table(t);
        self.next_merge = (t + 1) % P::COUNT;
        self.adds_since_merge = 0;
    }

    /// Removes the entry `id` stored with `hash`; the next search no longer sees it.
    /// Returns whether it was there.
    pub fn remove(&mut self, hash: PdqHash, id: EntryId) -> bool {
        let words = hash.words();
        let (sorted, _, delta) = self.bucket(0, P::key(&words, 0));
        let found = sorted
            .iter()
            .copied()
            .chain(delta.map(|(slot, _)| slot))
            .map(|s| s as usize)
            .find(|&slot| self.ids[slot] == id && self.hashes[slot].0 == words && !self.is_removed(slot));
        let Some(slot) = found else { return false };
        self.removed[slot / 64] |= 1 << (slot % 64);
        self.removed_count += 1;
        if self.removed_count > self.merge_at.max(self.hashes.len() / 4) {
            self.compact();
        }
        true
    }

    /// Appends to `hits` every live entry within `radius` bits of `query`, each once, in no
    /// particular order.
    pub fn search(&self, query: &PdqHash, radius: u32, hits: &mut Vec<Hit>) {
        self.search_within(query, radius, usize::MAX, hits);
    }

    /// [`HammingIndex::search`], unless it would look at more than `max_candidates` stored
    /// entries (the sizes of the buckets it probes, an entry in several counted in each;
    /// with tagged parts only some of them have their hashes read): then it checks none,
    /// appends nothing and returns `None`. Otherwise it returns how many it looked at.
    /// The count comes from the same bucket lookups the search makes.
    pub fn search_within(
        &self,
        query: &PdqHash,
        radius: u32,
        max_candidates: usize,
        hits: &mut Vec<Hit>,
    ) -> Option<usize> {
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("popcnt") {
            // SAFETY: the CPU has POPCNT, checked just above.
            return unsafe { self.search_popcnt(query, radius, max_candidates, hits) };
        }
        self.search_portable(query, radius, max_candidates, hits)
    }

    /// The search compiled with the POPCNT instruction: every candidate check counts bits
    /// four times, and without it each count is a dozen instructions.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "popcnt")]
    fn search_popcnt(
        &self,
        query: &PdqHash,
        radius: u32,
        max_candidates: usize,
        hits: &mut Vec<Hit>,
    ) -> Option<usize> {
        self.search_portable(query, radius, max_candidates, hits)
    }

    #[inline(always)]
    fn search_portable(
        &self,
        query: &PdqHash,
        radius: u32,
        max_candidates: usize,
        hits: &mut Vec<Hit>,
    ) -> Option<usize> {
        let q = query.words();
        let per_part = radius / P::COUNT as u32;
        if self.scans(per_part) {
            if self.hashes.len() > max_candidates {
                return None;
            }
            self.scan(&q, radius, hits);
            return Some(self.hashes.len());
        }
        let masks = probe_masks_cached(per_part);
        // First every candidate of every table, then the checks: the checks are random
        // memory accesses, and a long list lets many of them be in flight at once.
        // Every level of the lookup is a random access; each is requested for all probes
        // before any is used.
        for (t, table) in self.sorted.iter().enumerate() {
            let key = P::key(&q, t);
            for &mask in masks {
                prefetch(&table.offsets[usize::from(key ^ mask)]);
            }
        }
        for (t, table) in self.sorted.iter().enumerate() {
            let key = P::key(&q, t);
            for &mask in masks {
                let first = table.offsets[usize::from(key ^ mask)] as usize;
                if let Some(slot) = table.slots.get(first) {
                    prefetch(slot);
                }
                if let Some(tag) = table.tags.get(first) {
                    prefetch(tag);
                }
            }
        }
        let mut candidates: Vec<(u32, u8)> = Vec::new();
        let mut looked_at = 0;
        for t in 0..P::COUNT {
            let (key, tag) = (P::key(&q, t), P::tag(&q, t));
            for &mask in masks {
                // The bits the tag may still differ in, beyond those the key differs in.
                let spare = per_part - mask.count_ones();
                let near = |other: u8| !P::TAGGED || (other ^ tag).count_ones() <= spare;
                let (sorted, tags, delta) = self.bucket(t, key ^ mask);
                looked_at += sorted.len();
                if P::TAGGED {
                    near_tags(tags, tag, spare, |i| candidates.push((sorted[i], t as u8)));
                } else {
                    candidates.extend(sorted.iter().map(|&slot| (slot, t as u8)));
                }
                for (slot, other) in delta {
                    looked_at += 1;
                    if near(other) {
                        candidates.push((slot, t as u8));
                    }
                }
                if looked_at > max_candidates {
                    return None;
                }
            }
        }
        for (i, &(slot, t)) in candidates.iter().enumerate() {
            if let Some(&(ahead, _)) = candidates.get(i + LOOKAHEAD) {
                prefetch(&self.hashes[ahead as usize]);
            }
            let slot = slot as usize;
            let h = &self.hashes[slot].0;
            let d = distance(&q, h);
            if d > radius || self.is_removed(slot) {
                continue;
            }
            // Found by an earlier table already?
            let seen_before =
                (0..usize::from(t)).any(|earlier| part_distance::<P>(&q, h, earlier) <= per_part);
            if !seen_before {
                hits.push(Hit {
                    id: self.ids[slot],
                    distance: d,
                });
            }
        }
        Some(looked_at)
    }

    /// Whether a search allowing `per_part` differing bits in each part compares with every
    /// entry rather than probing the tables: beyond what the tables can probe, or when the
    /// index is small enough that reading it all is cheaper than the probes.
    fn scans(&self, per_part: u32) -> bool {
        per_part > MAX_PROBE_RADIUS || self.hashes.len() <= self.scan_up_to
    }

    /// How many entries [`HammingIndex::search_within`] looks at on average over every
    /// possible query, with the entries spread evenly over the buckets.
    pub fn mean_candidates(&self, radius: u32) -> f64 {
        let per_part = radius / P::COUNT as u32;
        if self.scans(per_part) {
            return self.hashes.len() as f64;
        }
        let probes = P::COUNT * probe_masks_cached(per_part).len();
        probes as f64 * self.hashes.len() as f64 / KEYS as f64
    }

    /// Every live entry within `radius`, by comparing with each one.
    fn scan(&self, q: &[u64; 4], radius: u32, hits: &mut Vec<Hit>) {
        for (slot, Words(h)) in self.hashes.iter().enumerate() {
            let d = distance(q, h);
            if d <= radius && !self.is_removed(slot) {
                hits.push(Hit {
                    id: self.ids[slot],
                    distance: d,
                });
            }
        }
    }

    /// Slots whose part `t` has the key `key`: the sorted part's bucket with its tags
    /// (empty when untagged), and the delta's.
    fn bucket(&self, t: usize, key: u16) -> (&[u32], &[u8], DeltaBucket<'_>) {
        let (sorted, tags) = self
            .sorted
            .get(t)
            .map_or((&[][..], &[][..]), |table| table.bucket(usize::from(key)));
        let first_slot = self.sorted.get(t).map_or(0, SortedTable::covers) as u32;
        (sorted, tags, self.delta.bucket(t, key, first_slot))
    }

    fn is_removed(&self, slot: usize) -> bool {
        (self.removed[slot / 64] >> (slot % 64)) & 1 == 1
    }

    /// Drops tombstones and merges every table's delta into it: the first build, and the
    /// merge once removals are many (adds alone are merged a table at a time, in place,
    /// see [`HammingIndex::insert`]).
    ///
    /// This runs under the matcher's write lock, so every lookup waits for it. Sorting
    /// every slot again scattered each one into 16 tables, 4-5 s at 12.5 M hashes; the
    /// tables are merged instead, one per rayon task, each copied bucket by bucket and
    /// renumbered, reading and writing memory in sequence.
    fn compact(&mut self) {
        if self.sorted.is_empty() {
            self.drop_removed();
            self.rebuild_sorted();
            return;
        }
        use rayon::prelude::*;
        let live = self.hashes.len() - self.removed_count;
        let renumbering = Renumbering::of(&self.removed);
        let merged: Vec<SortedTable> = (0..P::COUNT)
            .into_par_iter()
            .map(|t| self.merged_table(t, &renumbering, live))
            .collect();
        self.sorted = merged;
        self.drop_removed();
        self.delta = Delta::default();
        self.adds_since_merge = 0;
    }

    /// Table `t` with the delta merged in and removed slots left out, renumbered: within a
    /// bucket, slots stay in increasing order, as a rebuild leaves them. The delta is
    /// sorted by key first (its chains, walked key by key, would be a random read each).
    fn merged_table(&self, t: usize, renumbering: &Renumbering<'_>, live: usize) -> SortedTable {
        let first = self.sorted[t].covers();
        let delta = sorted_by_key::<P>(&self.hashes[first..], t);
        let mut offsets = vec![0u32; KEYS + 1];
        let mut slots = vec![0u32; live];
        advise_huge_pages(&slots);
        let mut tags = vec![0u8; if P::TAGGED { live } else { 0 }];
        let mut filled = 0;
        let table = &self.sorted[t];
        for k in 0..KEYS {
            let added = delta.tagged_bucket(k).map(|(i, tag)| (first as u32 + i, tag));
            for (slot, tag) in table.tagged_bucket(k).chain(added) {
                if let Some(slot) = renumbering.slot(slot) {
                    slots[filled] = slot;
                    if let Some(place) = tags.get_mut(filled) {
                        *place = tag;
                    }
                    filled += 1;
                }
            }
            offsets[k + 1] = filled as u32;
        }
        SortedTable {
            offsets: offsets.into_boxed_slice(),
            slots: slots.into_boxed_slice(),
            tags: tags.into_boxed_slice(),
        }
    }

    /// Drops the hashes and ids of removed slots, and their tombstones.
    fn drop_removed(&mut self) {
        if self.removed_count == 0 {
            return;
        }
        let removed = std::mem::take(&mut self.removed);
        let keep = |s: usize| (removed[s / 64] >> (s % 64)) & 1 == 0;
        self.hashes = self.hashes.retained(keep);
        let mut slot = 0;
        self.ids.retain(|_| {
            slot += 1;
            keep(slot - 1)
        });
        self.removed = vec![0; self.hashes.len().div_ceil(64)];
        self.removed_count = 0;
    }

    /// Counting sort of every slot into each table, the tables in parallel.
    fn rebuild_sorted(&mut self) {
        use rayon::prelude::*;
        let hashes = &self.hashes;
        self.sorted = (0..P::COUNT)
            .into_par_iter()
            .map(|t| sorted_by_key::<P>(hashes, t))
            .collect();
        self.delta = Delta::default();
        self.adds_since_merge = 0;
    }
}

/// The positions of `hashes` sorted by the key of their part `t` (a counting sort), with
/// their tags: a table of them. The keys are read from the hashes in both passes rather
/// than kept: keeping them saved a tenth of the time and cost 2 bytes an entry for every
/// table sorted at once.
fn sorted_by_key<P: Parts>(hashes: &[Words], t: usize) -> SortedTable {
    let mut offsets = vec![0u32; KEYS + 1];
    for Words(h) in hashes {
        offsets[usize::from(P::key(h, t)) + 1] += 1;
    }
    for k in 0..KEYS {
        offsets[k + 1] += offsets[k];
    }
    let mut next = offsets.clone();
    let mut slots = vec![0u32; hashes.len()];
    advise_huge_pages(&slots);
    let mut tags = vec![0u8; if P::TAGGED { hashes.len() } else { 0 }];
    for (slot, Words(h)) in hashes.iter().enumerate() {
        let k = usize::from(P::key(h, t));
        let place = next[k] as usize;
        slots[place] = slot as u32;
        if let Some(tag) = tags.get_mut(place) {
            *tag = P::tag(h, t);
        }
        next[k] += 1;
    }
    SortedTable {
        offsets: offsets.into_boxed_slice(),
        slots: slots.into_boxed_slice(),
        tags: tags.into_boxed_slice(),
    }
}

impl SortedTable {
    /// How many slots the table holds: every slot below this number (later ones are in
    /// the delta).
    fn covers(&self) -> usize {
        self.slots.len()
    }

    /// The slots of key `k`, and their tags (none when untagged).
    fn bucket(&self, k: usize) -> (&[u32], &[u8]) {
        let range = self.offsets[k] as usize..self.offsets[k + 1] as usize;
        (&self.slots[range.clone()], self.tags.get(range).unwrap_or(&[]))
    }

    /// [`SortedTable::bucket`] as pairs of a slot and its tag (0 when untagged).
    fn tagged_bucket(&self, k: usize) -> impl Iterator<Item = (u32, u8)> + '_ {
        let (slots, tags) = self.bucket(k);
        slots
            .iter()
            .copied()
            .zip(tags.iter().copied().chain(std::iter::repeat(0)))
    }

    /// This table with `added` (positions from `first` on, sorted by key) merged in, in
    /// place: the slots (and tags) grow at the end, which moves no memory for a large
    /// allocation, then, key by key from the last, each bucket moves up by the entries
    /// added before it and the added ones of its key follow it. A bucket only moves up,
    /// and the ones below it have not moved yet, so nothing is overwritten before it is read.
    fn grown_by(self, added: &SortedTable, first: u32) -> SortedTable {
        let SortedTable {
            offsets: old,
            slots,
            tags,
        } = self;
        let offsets: Vec<u32> = old.iter().zip(added.offsets.iter()).map(|(o, a)| o + a).collect();
        let slots = grown_in_place(slots, &old, &offsets, &added.offsets, |i| first + added.slots[i]);
        let tags = if tags.is_empty() && added.tags.is_empty() {
            tags
        } else {
            grown_in_place(tags, &old, &offsets, &added.offsets, |i| added.tags[i])
        };
        SortedTable {
            offsets: offsets.into_boxed_slice(),
            slots,
            tags,
        }
    }
}

/// `values`, bucketed by `old` offsets, grown to the `offsets` that come of adding the
/// buckets `added` of entries `added_value(i)` (see [`SortedTable::grown_by`]).
fn grown_in_place<T: Copy + Default>(
    values: Box<[T]>,
    old: &[u32],
    offsets: &[u32],
    added: &[u32],
    added_value: impl Fn(usize) -> T,
) -> Box<[T]> {
    let mut values = values.into_vec();
    let more = added[KEYS] as usize;
    values.reserve_exact(more);
    values.resize(values.len() + more, T::default());
    for k in (0..KEYS).rev() {
        let (from, to) = (old[k] as usize, old[k + 1] as usize);
        let start = offsets[k] as usize;
        let tail = start + (to - from);
        let new = added[k] as usize..added[k + 1] as usize;
        for (place, i) in values[tail..offsets[k + 1] as usize].iter_mut().zip(new) {
            *place = added_value(i);
        }
        values.copy_within(from..to, start);
    }
    values.into_boxed_slice()
}

/// Where each slot lands when removed slots are dropped: its number less the removed slots
/// before it. (Adds alone renumber nothing: they are merged a table at a time, in place.)
struct Renumbering<'a> {
    removed: &'a [u64],
    /// Removed slots before each word of `removed`.
    before: Vec<u32>,
}

impl Renumbering<'_> {
    fn of(removed: &[u64]) -> Renumbering<'_> {
        let mut total = 0u32;
        let before = removed
            .iter()
            .map(|word| {
                let before = total;
                total += word.count_ones();
                before
            })
            .collect();
        Renumbering { removed, before }
    }

    /// The new number of `slot`, or `None` if it is removed.
    fn slot(&self, slot: u32) -> Option<u32> {
        let (word, bit) = (slot as usize / 64, slot % 64);
        let removed = self.removed[word];
        if (removed >> bit) & 1 == 1 {
            return None;
        }
        Some(slot - self.before[word] - (removed & ((1u64 << bit) - 1)).count_ones())
    }
}

/// Entries added since each table's last merge, per table a chain of slots per key:
/// `heads[t][key]` is the newest such entry, `next[t][i]` the one added before entry `i`
/// (its slot less what table `t` covers) with the same key, and `tags[t][i]` its tag (when
/// the parts have tags). Costs 64 bytes an entry (16 tables) plus 4 MiB once anything was
/// added, where a hash map of lists cost about a kilobyte an entry.
#[derive(Default)]
struct Delta {
    heads: Vec<Box<[u32]>>,
    next: Vec<Vec<u32>>,
    tags: Vec<Vec<u8>>,
}

/// Ends a chain.
const NO_ENTRY: u32 = u32::MAX;

impl Delta {
    /// Adds the next slot, whose part `t` (of `parts`) has the key `key(t)` and the tag
    /// `tag(t)`, if tagged.
    fn push(&mut self, parts: usize, key: impl Fn(usize) -> u16, tag: Option<impl Fn(usize) -> u8>) {
        if self.heads.is_empty() {
            self.heads = (0..parts)
                .map(|_| vec![NO_ENTRY; KEYS].into_boxed_slice())
                .collect();
            self.next = vec![Vec::new(); parts];
            self.tags = vec![Vec::new(); parts];
        }
        for t in 0..parts {
            let i = self.next[t].len() as u32;
            let head = &mut self.heads[t][usize::from(key(t))];
            self.next[t].push(*head);
            *head = i;
            if let Some(tag) = &tag {
                self.tags[t].push(tag(t));
            }
        }
    }

    /// Forgets table `t`'s entries, now merged into it.
    fn clear_table(&mut self, t: usize) {
        if let Some(heads) = self.heads.get_mut(t) {
            heads.fill(NO_ENTRY);
            self.next[t] = Vec::new();
            self.tags[t] = Vec::new();
        }
    }

    /// The slots of the entries whose part `t` has the key `key`, newest first, with their tags.
    fn bucket(&self, t: usize, key: u16, first_slot: u32) -> DeltaBucket<'_> {
        match self.heads.get(t) {
            Some(heads) => DeltaBucket {
                next: &self.next[t],
                tags: &self.tags[t],
                at: heads[usize::from(key)],
                first_slot,
            },
            None => DeltaBucket {
                next: &[],
                tags: &[],
                at: NO_ENTRY,
                first_slot,
            },
        }
    }

    fn memory_bytes(&self) -> usize {
        let chains: usize = self.next.iter().map(|n| n.capacity() * 4).sum();
        let tags: usize = self.tags.iter().map(Vec::capacity).sum();
        self.heads.len() * KEYS * 4 + chains + tags
    }
}

/// Walks one chain of the [`Delta`]: slots and their tags (0 when untagged).
struct DeltaBucket<'a> {
    next: &'a [u32],
    tags: &'a [u8],
    at: u32,
    first_slot: u32,
}

impl Iterator for DeltaBucket<'_> {
    type Item = (u32, u8);

    fn next(&mut self) -> Option<(u32, u8)> {
        let i = self.at;
        if i == NO_ENTRY {
            return None;
        }
        self.at = self.next.get(i as usize).copied().unwrap_or(NO_ENTRY);
        let tag = self.tags.get(i as usize).copied().unwrap_or(0);
        Some((self.first_slot + i, tag))
    }
}

/// Calls `each` with the position of every tag in `tags` within `spare` bits of `tag`, in
/// order. Most tags are not near (in a bucket of a changed key bit, `spare` is 0 and one
/// in 32 or 64 is), so they are compared sixteen at a time into a bit mask first, a loop
/// without a branch that the compiler turns into a few vector instructions.
#[inline(always)]
fn near_tags(tags: &[u8], tag: u8, spare: u32, each: impl FnMut(usize)) {
    match spare {
        0 => tags_where(tags, |other| other == tag, each),
        1 => tags_where(
            tags,
            |other| {
                let differ = other ^ tag;
                differ & differ.wrapping_sub(1) == 0
            },
            each,
        ),
        _ => tags_where(tags, |other| (other ^ tag).count_ones() <= spare, each),
    }
}

#[inline(always)]
fn tags_where(tags: &[u8], near: impl Fn(u8) -> bool, mut each: impl FnMut(usize)) {
    let mut chunks = tags.chunks_exact(16);
    let mut base = 0;
    for chunk in chunks.by_ref() {
        let mut mask = 0u32;
        for (j, &other) in chunk.iter().enumerate() {
            mask |= u32::from(near(other)) << j;
        }
        while mask != 0 {
            each(base + mask.trailing_zeros() as usize);
            mask &= mask - 1;
        }
        base += 16;
    }
    for (j, &other) in chunks.remainder().iter().enumerate() {
        if near(other) {
            each(base + j);
        }
    }
}

fn probe_masks_cached(per_part: u32) -> &'static [u16] {
    use std::sync::OnceLock;
    static MASKS: [OnceLock<Vec<u16>>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    MASKS[per_part as usize].get_or_init(|| probe_masks(per_part))
}

/// Asks the CPU to start fetching `value`'s cache line, without waiting for it.
#[inline(always)]
fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: SSE is part of the x86_64 baseline, and a prefetch never faults, whatever
        // the address; this one is a live reference anyway.
        unsafe { _mm_prefetch::<_MM_HINT_T0>((value as *const T).cast::<i8>()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Hashes like real PDQ banks: some uniform, most near a few cluster centres.
    fn bank_strategy() -> impl Strategy<Value = Vec<[u64; 4]>> {
        let centres = prop::collection::vec(any::<[u64; 4]>(), 1..6);
        (
            centres,
            prop::collection::vec(
                (
                    any::<[u64; 4]>(),
                    0usize..6,
                    prop::collection::vec(0usize..256, 0..48),
                ),
                1..160,
            ),
        )
            .prop_map(|(centres, specs)| {
                specs
                    .into_iter()
                    .map(|(uniform, which, flips)| {
                        if which == 0 {
                            return uniform;
                        }
                        let mut h = centres[which % centres.len()];
                        for bit in flips {
                            h[bit / 64] ^= 1 << (bit % 64);
                        }
                        h
                    })
                    .collect()
            })
    }

    fn brute_force(entries: &[([u64; 4], EntryId)], q: &[u64; 4], radius: u32) -> Vec<Hit> {
        let mut hits: Vec<Hit> = entries
            .iter()
            .filter_map(|(h, id)| {
                let d = distance(q, h);
                (d <= radius).then_some(Hit { id: *id, distance: d })
            })
            .collect();
        hits.sort();
        hits
    }

    fn searched<P: Parts>(index: &HammingIndex<P>, q: &[u64; 4], radius: u32) -> Vec<Hit> {
        let mut hits = Vec::new();
        index.search(&PdqHash::from_words(*q), radius, &mut hits);
        hits.sort();
        hits
    }

    /// Distinct hashes spread over every bucket, one per `i`.
    fn spread_hash(i: u64) -> PdqHash {
        let mixed = i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        PdqHash::from_words([mixed, mixed.rotate_left(17), mixed.rotate_left(31), !mixed])
    }

    /// Queries near bank entries (0 to 63 bits away) and far from them.
    fn queries(bank: &[[u64; 4]], seeds: &[(usize, u64)]) -> Vec<[u64; 4]> {
        seeds
            .iter()
            .map(|&(pick, noise)| {
                let mut q = bank[pick % bank.len()];
                let mut state = noise | 1;
                for _ in 0..(noise % 64) {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    let bit = (state % 256) as usize;
                    q[bit / 64] ^= 1 << (bit % 64);
                }
                if noise % 5 == 0 {
                    [state, !state, state.rotate_left(7), noise]
                } else {
                    q
                }
            })
            .collect()
    }

    /// A bulk-built index against brute force, every radius from 0 to 63.
    fn search_equals_brute_force<P: Parts>(
        bank: &[[u64; 4]],
        seeds: &[(usize, u64)],
    ) -> Result<(), TestCaseError> {
        let entries: Vec<([u64; 4], EntryId)> = bank
            .iter()
            .enumerate()
            .map(|(i, h)| (*h, i as EntryId * 7 + 3))
            .collect();
        let mut index =
            HammingIndex::<P>::from_entries(entries.iter().map(|(h, id)| (PdqHash::from_words(*h), *id)));
        // Small banks are scanned: search them through the tables too.
        for scan_up_to in [SCAN_UP_TO, 0] {
            index.scan_up_to = scan_up_to;
            for q in queries(bank, seeds) {
                for radius in 0..64 {
                    prop_assert_eq!(
                        searched(&index, &q, radius),
                        brute_force(&entries, &q, radius),
                        "radius {}",
                        radius
                    );
                }
            }
        }
        Ok(())
    }

    /// Inserts and removals, interleaved with merges, against a brute-force model.
    fn live_updates_equal_brute_force<P: Parts>(
        bank: &[[u64; 4]],
        ops: &[(bool, usize)],
        seeds: &[(usize, u64)],
        radius: u32,
    ) -> Result<(), TestCaseError> {
        let mut index = HammingIndex::<P>::new();
        index.merge_at = 7;
        index.scan_up_to = 0;
        let mut model: Vec<([u64; 4], EntryId)> = Vec::new();
        for (step, &(insert, pick)) in ops.iter().enumerate() {
            if insert || model.is_empty() {
                let h = bank[pick % bank.len()];
                index.insert(PdqHash::from_words(h), step as EntryId);
                model.push((h, step as EntryId));
            } else {
                let (h, id) = model.swap_remove(pick % model.len());
                prop_assert!(index.remove(PdqHash::from_words(h), id));
                prop_assert!(!index.remove(PdqHash::from_words(h), id), "removed twice");
            }
            prop_assert_eq!(index.len(), model.len());
            for q in queries(bank, seeds) {
                prop_assert_eq!(searched(&index, &q, radius), brute_force(&model, &q, radius));
            }
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn pdq_search_equals_brute_force(bank in bank_strategy(), seeds in prop::collection::vec((any::<usize>(), any::<u64>()), 1..12)) {
            search_equals_brute_force::<PdqParts>(&bank, &seeds)?;
        }

        #[test]
        fn descriptor_search_equals_brute_force(bank in bank_strategy(), seeds in prop::collection::vec((any::<usize>(), any::<u64>()), 1..12)) {
            search_equals_brute_force::<DescriptorParts>(&bank, &seeds)?;
        }

        #[test]
        fn live_updates_equal_brute_force_for_each_parts(
            bank in bank_strategy(),
            ops in prop::collection::vec((any::<bool>(), any::<usize>()), 1..200),
            seeds in prop::collection::vec((any::<usize>(), any::<u64>()), 1..6),
            radius in 0u32..64,
        ) {
            live_updates_equal_brute_force::<PdqParts>(&bank, &ops, &seeds, radius)?;
            live_updates_equal_brute_force::<DescriptorParts>(&bank, &ops, &seeds, radius)?;
        }
    }

    /// The tables a merge leaves (growing in place when only adds came, renumbering when
    /// some were removed) are exactly those a rebuild from scratch gives.
    #[test]
    fn merges_leave_the_tables_a_rebuild_would() {
        merges_leave_the_tables_a_rebuild_would_with::<PdqParts>();
        merges_leave_the_tables_a_rebuild_would_with::<DescriptorParts>();
    }

    fn merges_leave_the_tables_a_rebuild_would_with<P: Parts>() {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut hash = move || {
            let mut word = || {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                // Few distinct keys per part, so that buckets hold many slots.
                state & 0x000f_000f_000f_000f
            };
            PdqHash::from_words([word(), word(), word(), word()])
        };
        let same_tables_after_merge = |index: &mut HammingIndex<P>| {
            let rebuilt = HammingIndex::<P>::from_entries(
                (0..index.hashes.len())
                    .filter(|&slot| !index.is_removed(slot))
                    .map(|slot| (PdqHash::from_words(index.hashes[slot].0), index.ids[slot])),
            );
            index.compact();
            for (merged, rebuilt) in index.sorted.iter().zip(&rebuilt.sorted) {
                assert_eq!(merged.offsets, rebuilt.offsets);
                assert_eq!(merged.slots, rebuilt.slots);
                assert_eq!(merged.tags, rebuilt.tags);
            }
        };
        let mut index = HammingIndex::<P>::from_entries((0..3000).map(|id| (hash(), id)));
        index.merge_at = 500;
        for id in 3000..3800 {
            index.insert(hash(), id);
        }
        // Merged a table at a time, each grown in place: each is what sorting the slots
        // it covers gives.
        for (t, table) in index.sorted.iter().enumerate() {
            assert!(table.covers() > 3000, "table {t}: the adds were merged");
            let sorted = sorted_by_key::<P>(&index.hashes[..table.covers()], t);
            assert_eq!(table.offsets, sorted.offsets, "table {t}");
            assert_eq!(table.slots, sorted.slots, "table {t}");
            assert_eq!(table.tags, sorted.tags, "table {t}");
        }
        same_tables_after_merge(&mut index);
        for id in (0..3800).step_by(3) {
            let slot = index.ids.iter().position(|&i| i == id).unwrap();
            assert!(index.remove(PdqHash::from_words(index.hashes[slot].0), id));
        }
        for id in 3800..4000 {
            index.insert(hash(), id);
        }
        same_tables_after_merge(&mut index);
        assert_eq!(index.removed_count, 0);
    }

    /// Live adds merge the tables in turn, never two in one add, each table's delta staying
    /// within a merge period of it.
    #[test]
    fn a_live_add_merges_at_most_one_table() {
        let mut index = PdqIndex::from_entries((0..4000).map(|i| (spread_hash(i), i)));
        index.merge_at = 100;
        let covered =
            |index: &PdqIndex| -> Vec<usize> { index.sorted.iter().map(SortedTable::covers).collect() };
        const PARTS: usize = PdqParts::COUNT;
        let mut merges = [0usize; PARTS];
        for i in 4000..12_000 {
            let before = covered(&index);
            index.insert(spread_hash(i), i);
            let after = covered(&index);
            let merged: Vec<usize> = (0..PARTS).filter(|&t| before[t] != after[t]).collect();
            assert!(merged.len() <= 1, "add {i} merged tables {merged:?}");
            merged.iter().for_each(|&t| merges[t] += 1);
            for (t, &covers) in after.iter().enumerate() {
                let period = (covers / PdqParts::MERGE_SHARE).max(index.merge_at);
                assert!(
                    index.hashes.len() - covers <= period + PARTS,
                    "table {t} holds {} unmerged",
                    index.hashes.len() - covers
                );
            }
        }
        assert!(merges.iter().all(|&m| m >= 3), "{merges:?}");
        assert_eq!(
            searched(&index, &spread_hash(11_999).words(), 0),
            vec![Hit {
                id: 11_999,
                distance: 0
            }]
        );
    }

    /// A run is found by its first id and length only when its ids follow on one another,
    /// and it stays whole when removals before it are dropped.
    #[test]
    fn a_run_of_growing_ids_reads_back_its_hashes() {
        let ids = [10, 11, 12, 20, 21];
        let mut index = PdqIndex::new();
        index.merge_at = 1;
        for id in ids {
            index.insert(spread_hash(id), id);
        }
        let run = |index: &PdqIndex, first, len| {
            index
                .run(first, len)
                .map(|run| run.iter().map(|w| w.0).collect::<Vec<_>>())
        };
        let hashes = |ids: &[u64]| Some(ids.iter().map(|&id| spread_hash(id).words()).collect::<Vec<_>>());
        assert_eq!(run(&index, 10, 3), hashes(&[10, 11, 12]));
        assert_eq!(run(&index, 11, 2), hashes(&[11, 12]));
        assert_eq!(run(&index, 20, 2), hashes(&[20, 21]));
        assert_eq!(run(&index, 10, 4), None, "12 is not followed by 13");
        assert_eq!(run(&index, 13, 1), None);
        assert_eq!(run(&index, 20, 3), None);
        assert_eq!(run(&index, 10, 0), None);
        // Removing 10-12 compacts the index: 20 and 21 move to the front, together.
        for id in [10, 11, 12] {
            assert!(index.remove(spread_hash(id), id));
        }
        assert!(index.hashes.len() < ids.len(), "compacted");
        assert_eq!(run(&index, 20, 2), hashes(&[20, 21]));
    }

    #[test]
    fn a_bank_of_one_hash_is_found_after_a_rebuild() {
        let h = [1, 2, 3, 4];
        let mut index = PdqIndex::from_entries([(PdqHash::from_words(h), 42)]);
        assert_eq!(searched(&index, &h, 31), vec![Hit { id: 42, distance: 0 }]);
        index.compact();
        assert_eq!(searched(&index, &h, 0), vec![Hit { id: 42, distance: 0 }]);
        assert!(index.remove(PdqHash::from_words(h), 42));
        assert!(searched(&index, &h, 63).is_empty());
        assert!(index.is_empty());
    }

    #[test]
    fn duplicate_hashes_under_different_ids_are_all_found() {
        let h = PdqHash::from_words([9, 9, 9, 9]);
        let mut index = PdqIndex::from_entries([(h, 1), (h, 2)]);
        index.insert(h, 3);
        assert_eq!(searched(&index, &h.words(), 0).len(), 3);
        assert!(index.remove(h, 2));
        let ids: Vec<EntryId> = searched(&index, &h.words(), 0).iter().map(|hit| hit.id).collect();
        assert_eq!(ids, vec![1, 3]);
    }

    #[test]
    fn a_search_within_a_bound_counts_its_candidates_or_checks_none() {
        // Five copies of one hash, one added live: each is a candidate in all 16 tables.
        let h = PdqHash::from_words([5, 6, 7, 8]);
        let mut index = PdqIndex::from_entries((1..=4).map(|id| (h, id)));
        index.insert(h, 5);
        index.scan_up_to = 0;
        let mut hits = Vec::new();
        assert_eq!(index.search_within(&h, 31, 80, &mut hits), Some(80));
        assert_eq!(hits.len(), 5);
        hits.clear();
        assert_eq!(index.search_within(&h, 31, 79, &mut hits), None);
        assert!(hits.is_empty());
        // A small index, or a radius beyond what the tables can probe, is searched by
        // comparing every entry: a bound below their number is refused too.
        index.scan_up_to = SCAN_UP_TO;
        assert_eq!(index.search_within(&h, 31, 4, &mut hits), None);
        assert_eq!(index.search_within(&h, 31, 5, &mut hits), Some(5));
        assert_eq!(hits.len(), 5);
        hits.clear();
        index.scan_up_to = 0;
        assert_eq!(index.search_within(&h, 255, 4, &mut hits), None);
        assert_eq!(index.search_within(&h, 255, 5, &mut hits), Some(5));
        assert_eq!(hits.len(), 5);
    }

    #[test]
    fn probe_masks_count_the_neighbourhood() {
        assert_eq!(probe_masks(0), vec![0]);
        assert_eq!(probe_masks(1).len(), 17);
        assert_eq!(probe_masks(2).len(), 1 + 16 + 120);
    }

    #[test]
    fn live_adds_cost_tens_of_bytes_each_until_merged() {
        let mut index = PdqIndex::from_entries((0..20_000).map(|i| (spread_hash(i), i)));
        let before = index.memory_bytes();
        // Fewer adds than the first table's turn to merge comes after.
        for i in 20_000..24_000 {
            index.insert(spread_hash(i), i);
        }
        assert!(
            index.sorted.iter().all(|t| t.covers() == 20_000),
            "still in the delta"
        );
        let per_add = (index.memory_bytes() - before - 16 * KEYS * 4) / 4_000;
        // The hash and id (40 bytes) and 16 chain links (64), with their vectors' headroom;
        // a hash map of lists per table cost about a kilobyte.
        assert!(per_add <= 256, "{per_add} bytes per live add");
        let found = searched(&index, &spread_hash(23_999).words(), 0);
        assert!(found.iter().any(|hit| hit.id == 23_999), "{found:?}");
    }

    /// Each bit of a hash lies in exactly one part, as a bit of its key or of its tag.
    fn parts_cover_all_256_bits_once<P: Parts>() {
        let zero = [0u64; 4];
        for bit in 0..256 {
            let mut words = zero;
            words[bit / 64] = 1 << (bit % 64);
            let changed: Vec<(usize, u32)> = (0..P::COUNT)
                .map(|t| (t, part_distance::<P>(&zero, &words, t)))
                .filter(|&(_, d)| d > 0)
                .collect();
            assert_eq!(changed.len(), 1, "bit {bit} lies in parts {changed:?}");
            assert_eq!(changed[0].1, 1, "bit {bit}");
        }
    }

    #[test]
    fn pdq_parts_cover_all_256_bits_once() {
        parts_cover_all_256_bits_once::<PdqParts>();
        let words = [0x0123_4567_89ab_cdef, 0, 0, 0xaaaa_bbbb_cccc_dddd];
        assert_eq!(PdqParts::key(&words, 0), 0xcdef);
        assert_eq!(PdqParts::key(&words, 3), 0x0123);
        assert_eq!(PdqParts::key(&words, 15), 0xaaaa);
    }

    #[test]
    fn descriptor_parts_cover_all_256_bits_once() {
        parts_cover_all_256_bits_once::<DescriptorParts>();
        // The last word holds the tags: four of 6 bits, then eight of 5, from bit 0 up.
        let expected = |t: u64| if t < 4 { 63 - t } else { t + 17 };
        let mut tags = 0u64;
        let mut shift = 0;
        for t in 0..12u64 {
            tags |= expected(t) << shift;
            shift += if t < 4 { 6 } else { 5 };
        }
        assert_eq!(shift, 64);
        let words = [0, 0, 0x1111_2222_3333_4444, tags];
        assert_eq!(DescriptorParts::key(&words, 8), 0x4444);
        assert_eq!(DescriptorParts::key(&words, 11), 0x1111);
        for t in 0..12 {
            assert_eq!(
                u64::from(DescriptorParts::tag(&words, t)),
                expected(t as u64),
                "part {t}"
            );
        }
    }
}
