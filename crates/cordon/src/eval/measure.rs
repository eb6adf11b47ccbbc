//! What `cordon eval` counts: distances between query and bank hashes, tallied per
//! distance for true pairs (a repost and its own original) and for every other pair, and
//! from the tallies recall, false matches and the threshold a precision target allows.
//! Pure functions, so the arithmetic is tested on its own.

use cordon_signals::PdqHash;

/// The largest distance two 256-bit hashes can have.
pub const MAX_DISTANCE: u32 = 256;

/// The precision a threshold must keep for `threshold_at_precision`: 99.99%, in parts per
/// ten thousand so the comparison is exact.
const PRECISION_PER_10K: u64 = 9_999;

/// The smallest distance between any bank hash and any query hash; `None` when either
/// side has no hash (a low-quality image), which never matches.
pub fn min_distance(bank: &[PdqHash], query: &[PdqHash]) -> Option<u32> {
    bank.iter()
        .flat_map(|b| query.iter().map(move |q| b.distance(q)))
        .min()
}

/// The distances of one signal over a set of queries, counted per distance: true pairs
/// (a query and its own original) and non-matching pairs (a query and any other original).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tally {
    /// Queries (true pairs), with or without a distance.
    pub queries: u64,
    pub non_matching_pairs: u64,
    true_at: Vec<u64>,
    false_at: Vec<u64>,
    /// Non-matching pairs within the threshold [`tally`] was given: (the query's
    /// original, the original it matched, distance).
    pub false_matches: Vec<(usize, usize, u32)>,
    /// Reposts not found within that threshold: their originals, and how far each repost
    /// was from it (`None`: no value to compare), which says how near a miss came.
    pub misses: Vec<(usize, Option<u32>)>,
}

impl Default for Tally {
    fn default() -> Self {
        let slots = MAX_DISTANCE as usize + 1;
        Tally {
            queries: 0,
            non_matching_pairs: 0,
            true_at: vec![0; slots],
            false_at: vec![0; slots],
            false_matches: Vec::new(),
            misses: Vec::new(),
        }
    }
}

impl Tally {
    /// Counts a query against its own original.
    pub fn add_true(&mut self, distance: Option<u32>) {
        self.queries += 1;
        if let Some(slot) = distance.and_then(|d| self.true_at.get_mut(d as usize)) {
            *slot += 1;
        }
    }

    /// Counts a query against an original it is not a repost of.
    pub fn add_false(&mut self, distance: Option<u32>) {
        self.non_matching_pairs += 1;
        if let Some(slot) = distance.and_then(|d| self.false_at.get_mut(d as usize)) {
            *slot += 1;
        }
    }

    /// Adds another tally's counts to this one (the "all transforms" row).
    pub fn merge(&mut self, other: &Tally) {
        self.queries += other.queries;
        self.non_matching_pairs += other.non_matching_pairs;
        for (mine, theirs) in self.true_at.iter_mut().zip(&other.true_at) {
            *mine += theirs;
        }
        for (mine, theirs) in self.false_at.iter_mut().zip(&other.false_at) {
            *mine += theirs;
        }
        self.false_matches.extend_from_slice(&other.false_matches);
        self.misses.extend_from_slice(&other.misses);
    }

    /// True pairs within `threshold` (inclusive): the reposts found.
    pub fn true_within(&self, threshold: u32) -> u64 {
        within(&self.true_at, threshold)
    }

    /// Non-matching pairs within `threshold`: the false matches.
    pub fn false_within(&self, threshold: u32) -> u64 {
        within(&self.false_at, threshold)
    }

    /// The share of queries matched to their own original within `threshold`; a query
    /// without a hash is a miss.
    pub fn recall(&self, threshold: u32) -> f64 {
        if self.queries == 0 {
            return 0.0;
        }
        self.true_within(threshold) as f64 / self.queries as f64
    }

    /// The largest threshold at which precision, TP / (TP + FP), is at least 99.99%;
    /// `None` if none is (a threshold with no match at all has no precision, so it does
    /// not count). With a few hundred queries this is the largest threshold that lets no
    /// false match through while finding at least one repost.
    pub fn threshold_at_precision(&self) -> Option<u32> {
        let mut best = None;
        let (mut tp, mut fp) = (0u64, 0u64);
        for threshold in 0..=MAX_DISTANCE {
            tp += self.true_at[threshold as usize];
            fp += self.false_at[threshold as usize];
            if tp > 0 && tp * 10_000 >= PRECISION_PER_10K * (tp + fp) {
                best = Some(threshold);
            }
        }
        best
    }

    /// Recall at [`Self::threshold_at_precision`]; 0 when there is no such threshold.
    pub fn recall_at_precision(&self) -> f64 {
        self.threshold_at_precision().map_or(0.0, |t| self.recall(t))
    }
}

fn within(counts: &[u64], threshold: u32) -> u64 {
    let end = (threshold as usize + 1).min(counts.len());
    counts[..end].iter().sum()
}

/// The tally of one signal on one transformation: `queries[i]` holds the values of the
/// repost of the original whose values are `bank[i]`; every other pairing is
/// non-matching. `distance(bank, query)` compares two values (`None`: no match at all);
/// non-matching pairs within `threshold` are listed.
pub fn tally<V: ?Sized + Sync>(
    bank: &[&V],
    queries: &[&V],
    distance: impl Fn(&V, &V) -> Option<u32> + Sync,
    threshold: u32,
) -> Tally {
    use rayon::prelude::*;
    queries
        .par_iter()
        .enumerate()
        .map(|(i, query)| {
            let mut tally = Tally::default();
            for (j, original) in bank.iter().enumerate() {
                let d = distance(original, query);
                if i == j {
                    tally.add_true(d);
                    if d.is_none_or(|d| d > threshold) {
                        tally.misses.push((i, d));
                    }
                } else {
                    tally.add_false(d);
                    if let Some(d) = d.filter(|&d| d <= threshold) {
                        tally.false_matches.push((i, j, d));
                    }
                }
            }
            tally
        })
        .reduce(Tally::default, |mut a, b| {
            a.merge(&b);
            a
        })
}

/// The median, or `None` for no values.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    match sorted.len() {
        0 => None,
        n if n % 2 == 1 => Some(sorted[mid]),
        _ => Some((sorted[mid - 1] + sorted[mid]) / 2.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counted(true_distances: &[Option<u32>], false_distances: &[Option<u32>]) -> Tally {
        let mut tally = Tally::default();
        true_distances.iter().for_each(|&d| tally.add_true(d));
        false_distances.iter().for_each(|&d| tally.add_false(d));
        tally
    }

    #[test]
    fn min_distance_takes_the_closest_pair_and_none_without_hashes() {
        let zero = PdqHash::ZERO;
        let three = PdqHash::from_words([0b111, 0, 0, 0]);
        let ones = PdqHash::from_words([u64::MAX; 4]);
        assert_eq!(min_distance(&[ones, three], &[zero]), Some(3));
        assert_eq!(min_distance(&[zero], &[ones, three]), Some(3));
        assert_eq!(min_distance(&[ones], &[zero]), Some(256));
        assert_eq!(min_distance(&[], &[zero]), None);
        assert_eq!(min_distance(&[zero], &[]), None);
    }

    #[test]
    fn recall_and_false_matches_count_inclusively() {
        let t = counted(
            &[Some(0), Some(10), Some(31), Some(32), None],
            &[Some(31), Some(40), None],
        );
        assert_eq!(t.queries, 5);
        assert_eq!(t.non_matching_pairs, 3);
        assert_eq!(t.true_within(31), 3);
        assert_eq!(t.false_within(31), 1);
        assert_eq!(t.false_within(30), 0);
        assert!((t.recall(31) - 0.6).abs() < 1e-12);
        assert_eq!(t.recall(256), 0.8);
    }

    #[test]
    fn threshold_at_precision_is_the_last_one_before_a_false_match() {
        // Reposts at 2, 5, 20, 60; the nearest stranger at 21.
        let t = counted(
            &[Some(2), Some(5), Some(20), Some(60)],
            &[Some(21), Some(100), None],
        );
        assert_eq!(t.threshold_at_precision(), Some(20));
        assert_eq!(t.recall_at_precision(), 0.75);
    }

    #[test]
    fn threshold_at_precision_is_none_when_a_false_match_comes_first() {
        // At distance 3 a stranger is closer than any repost: precision is 0 there, then
        // 1/2 with the repost at 8, and only falls after.
        let t = counted(&[Some(8), Some(9)], &[Some(3), Some(50)]);
        assert_eq!(t.threshold_at_precision(), None);
        assert_eq!(t.recall_at_precision(), 0.0);
    }

    #[test]
    fn threshold_at_precision_is_none_without_any_match() {
        let t = counted(&[None, None], &[Some(7)]);
        assert_eq!(t.threshold_at_precision(), None);
        assert_eq!(Tally::default().threshold_at_precision(), None);
    }

    #[test]
    fn threshold_at_precision_reaches_the_end_without_false_matches() {
        let t = counted(&[Some(0), Some(40)], &[None, None]);
        assert_eq!(t.threshold_at_precision(), Some(MAX_DISTANCE));
        assert_eq!(t.recall_at_precision(), 1.0);
    }

    #[test]
    fn threshold_at_precision_tolerates_one_false_match_in_ten_thousand() {
        // 10,000 reposts at distance 1 and one stranger at 2: precision 10000/10001 is
        // 99.990%, just enough; a second stranger at 3 brings it below.
        let mut t = counted(&[], &[Some(2), Some(3)]);
        (0..10_000).for_each(|_| t.add_true(Some(1)));
        assert_eq!(t.threshold_at_precision(), Some(2));
    }

    #[test]
    fn merging_adds_the_counts() {
        let mut a = counted(&[Some(1)], &[Some(40)]);
        a.merge(&counted(&[Some(2), None], &[Some(3)]));
        assert_eq!((a.queries, a.non_matching_pairs), (3, 2));
        assert_eq!(a.true_within(2), 2);
        assert_eq!(a.false_within(31), 1);
    }

    #[test]
    fn tally_pairs_each_query_with_its_own_original() {
        let a = PdqHash::ZERO;
        let b = PdqHash::from_words([u64::MAX, 0, 0, 0]);
        let near_a = PdqHash::from_words([0b11, 0, 0, 0]);
        let (bank_a, bank_b, query_a, query_near_a) = ([a], [b], [a], [near_a]);
        let bank: [&[PdqHash]; 3] = [&bank_a, &bank_b, &[]];
        // The repost of b has no hash (a miss); the repost of the hashless original is a.
        let queries: [&[PdqHash]; 3] = [&query_near_a, &[], &query_a];
        let bank: Vec<&[PdqHash]> = bank.to_vec();
        let queries: Vec<&[PdqHash]> = queries.to_vec();
        let t = tally(&bank, &queries, min_distance, 31);
        assert_eq!((t.queries, t.non_matching_pairs), (3, 6));
        assert_eq!(t.true_within(31), 1);
        // near_a against b (62 bits) and a against a (the third query against the first
        // original: 0 bits, a false match).
        assert_eq!(t.false_within(0), 1);
        assert_eq!(t.false_within(62), 2);
        // Missed: the repost of b (no hash) and of the hashless original, with no
        // distance; found within 31 bits, near_a is not a miss, but at 1 bit it is one.
        let mut misses = t.misses.clone();
        misses.sort_unstable();
        assert_eq!(misses, [(1, None), (2, None)]);
        let strict = tally(&bank, &queries, min_distance, 1);
        assert!(strict.misses.contains(&(0, Some(2))), "{:?}", strict.misses);
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
    }
}
