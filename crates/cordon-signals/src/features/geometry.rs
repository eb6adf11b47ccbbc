//! Geometric verification: do the descriptor pairs of two images agree on one shift,
//! scale and rotation (and do the pyramid levels of each pair agree with that scale)?
//! Pairs between unrelated pictures point every which way; pairs between a picture and
//! its repost line up, however much was cropped or covered.

use std::borrow::Borrow;

use super::describe::distance;
use super::{FeatureSet, Keypoint};

/// A descriptor pair is considered only when its descriptors are within this many bits
/// (an index can then find every candidate with an exact radius search)...
///
/// 23, not PDQ's 31: at 23 the feature index cuts descriptors into 12 parts of 21-22 bits
/// that differ by at most 1 bit each (`cordon_index::DescriptorParts`), which made a
/// features lookup 2.4x, 4.4x and 8.6x faster with 1,000, 3,000 and 10,000 images banked.
/// On the tuning corpora that cost 5 of the 3,440 gcompris reposts to local features alone
/// (19 missed at 31, 24 at 23; 15 bits missed 53) and 3 to every signal together (3 and
/// 6), and nothing on the wallpapers.
pub const PAIR_RADIUS: u32 = 23;
/// ...and clearly closer than the runner-up (Lowe's ratio test, as 4/5).
const RATIO_NUMERATOR: u32 = 4;
const RATIO_DENOMINATOR: u32 = 5;
/// How far (working-copy pixels of the bank image) a mapped keypoint may land from its pair.
const INLIER_RADIUS: f32 = 6.0;
/// How far (radians) a pair's own rotation may be from the transformation's.
const ANGLE_TOLERANCE: f32 = 0.5;
/// How far (as a factor) a pair's own change of scale, from the pyramid levels its
/// keypoints were found on, may be from the transformation's.
const SCALE_TOLERANCE: f32 = 1.5;
/// Hypotheses tried; fixed, and drawn from a fixed sequence, so results are repeatable.
const ITERATIONS: usize = 400;
/// Scale changes beyond these bounds are not reposts (and are usually degenerate fits).
/// Within them, the levels of the pyramid (at most 1.25^4 = 2.44 apart) and
/// [`SCALE_TOLERANCE`] narrow what can gather inliers further, to about 0.27-3.7.
const MIN_SCALE: f32 = 0.2;
const MAX_SCALE: f32 = 5.0;

/// What [`verify`] found.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Verification {
    /// Descriptor pairs that passed the distance and ratio tests.
    pub pairs: u32,
    /// Pairs that agree with the best transformation.
    pub inliers: u32,
    /// The transformation from query to bank coordinates: scale and rotation (radians).
    pub scale: f32,
    pub rotation: f32,
}

/// Pairs `query`'s descriptors with `bank`'s and counts the pairs that agree on one
/// similarity transformation.
pub fn verify(query: &FeatureSet, bank: &FeatureSet) -> Verification {
    verify_against(query, &bank.keypoints, &bank.descriptors)
}

/// [`verify`] against a bank set given as its keypoints and its descriptors in the same
/// order, wherever those are kept (a feature index keeps the descriptors once, where it
/// searches them).
pub fn verify_against<D: Borrow<[u64; 4]>>(
    query: &FeatureSet,
    keypoints: &[Keypoint],
    descriptors: &[D],
) -> Verification {
    let pairs = pair_up(query, descriptors);
    let mut best = Verification {
        pairs: pairs.len() as u32,
        ..Verification::default()
    };
    if pairs.len() < 3 {
        return best;
    }
    // Each pair: query position, bank position, and the turn from query to bank
    // keypoint as a unit vector (so agreement needs no trigonometry per hypothesis).
    let pairs: Vec<Pair> = pairs
        .iter()
        .map(|&(q, b)| {
            let (qk, bk) = (query.keypoints[q], keypoints[b]);
            let (sin, cos) = (bk.angle - qk.angle).sin_cos();
            Pair {
                query: (qk.x, qk.y),
                bank: (bk.x, bk.y),
                turn: (cos, sin),
                scaling: bk.scale() / qk.scale(),
            }
        })
        .collect();
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut pick = |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n as u64) as usize
    };
    for _ in 0..ITERATIONS {
        let (a, b) = (pick(pairs.len()), pick(pairs.len()));
        if a == b {
            continue;
        }
        let (first, second) = (&pairs[a], &pairs[b]);
        let Some(transform) = Similarity::through(first.query, first.bank, second.query, second.bank) else {
            continue;
        };
        let inliers = pairs.iter().filter(|pair| transform.agrees(pair)).count() as u32;
        if inliers > best.inliers {
            best.inliers = inliers;
            best.scale = transform.scale();
            best.rotation = transform.rotation();
            if inliers == best.pairs {
                // No hypothesis can do better. A bank holding many near-identical
                // copies of a picture verifies each against its repost, and there this
                // comes within the first few hypotheses instead of the 400th.
                break;
            }
        }
    }
    best
}

/// For each query descriptor, its nearest bank descriptor when near enough and clearly
/// nearer than the next; each bank keypoint used once (by its nearest query).
///
/// Compares every query descriptor with every bank descriptor, four bit counts each: with
/// the POPCNT instruction that is one instruction a count, without it a dozen (and half of
/// a verification's time, measured).
fn pair_up<D: Borrow<[u64; 4]>>(query: &FeatureSet, bank: &[D]) -> Vec<(usize, usize)> {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("popcnt") {
        // SAFETY: the CPU has POPCNT, checked just above.
        return unsafe { pair_up_popcnt(query, bank) };
    }
    pair_up_portable(query, bank)
}

/// [`pair_up`] compiled with the POPCNT instruction.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "popcnt")]
fn pair_up_popcnt<D: Borrow<[u64; 4]>>(query: &FeatureSet, bank: &[D]) -> Vec<(usize, usize)> {
    pair_up_portable(query, bank)
}

#[inline(always)]
fn pair_up_portable<D: Borrow<[u64; 4]>>(query: &FeatureSet, bank: &[D]) -> Vec<(usize, usize)> {
    let mut claimed: Vec<Option<(u32, usize)>> = vec![None; bank.len()];
    for (q, descriptor) in query.descriptors.iter().enumerate() {
        let (mut best, mut second, mut best_index) = (u32::MAX, u32::MAX, 0);
        for (b, other) in bank.iter().enumerate() {
            let d = distance(descriptor, other.borrow());
            if d < best {
                (second, best, best_index) = (best, d, b);
            } else if d < second {
                second = d;
            }
        }
        // Saturating: against an empty bank set `best` is still u32::MAX.
        let clear = best.saturating_mul(RATIO_DENOMINATOR) < second.saturating_mul(RATIO_NUMERATOR);
        if best <= PAIR_RADIUS && clear && claimed[best_index].is_none_or(|(d, _)| best < d) {
            claimed[best_index] = Some((best, q));
        }
    }
    claimed
        .iter()
        .enumerate()
        .filter_map(|(b, claim)| claim.map(|(_, q)| (q, b)))
        .collect()
}

struct Pair {
    query: (f32, f32),
    bank: (f32, f32),
    /// cos and sin of the bank keypoint's angle minus the query keypoint's.
    turn: (f32, f32),
    /// How many times larger the bank keypoint's patch is than the query keypoint's.
    scaling: f32,
}

/// `z -> a z + t` on points as complex numbers: scale, rotation and shift.
struct Similarity {
    a: (f32, f32),
    t: (f32, f32),
    scale: f32,
}

impl Similarity {
    /// The similarity taking `p1` to `q1` and `p2` to `q2`, if one with a plausible scale does.
    fn through(p1: (f32, f32), q1: (f32, f32), p2: (f32, f32), q2: (f32, f32)) -> Option<Similarity> {
        let dp = (p2.0 - p1.0, p2.1 - p1.1);
        let dq = (q2.0 - q1.0, q2.1 - q1.1);
        let norm = dp.0 * dp.0 + dp.1 * dp.1;
        if norm < 16.0 {
            return None;
        }
        // a = dq / dp
        let a = (
            (dq.0 * dp.0 + dq.1 * dp.1) / norm,
            (dq.1 * dp.0 - dq.0 * dp.1) / norm,
        );
        let scale = a.0.hypot(a.1);
        let t = (q1.0 - (a.0 * p1.0 - a.1 * p1.1), q1.1 - (a.0 * p1.1 + a.1 * p1.0));
        (MIN_SCALE..=MAX_SCALE)
            .contains(&scale)
            .then_some(Similarity { a, t, scale })
    }

    fn scale(&self) -> f32 {
        self.scale
    }

    fn rotation(&self) -> f32 {
        self.a.1.atan2(self.a.0)
    }

    fn apply(&self, p: (f32, f32)) -> (f32, f32) {
        (
            self.a.0 * p.0 - self.a.1 * p.1 + self.t.0,
            self.a.0 * p.1 + self.a.1 * p.0 + self.t.1,
        )
    }

    /// Whether a pair fits: the query keypoint lands near its bank keypoint, and the pair
    /// turns by about the transformation's rotation and scales by about its scale (a
    /// chance pair of unrelated corners need not; a true pair's patches show the same
    /// detail, so they were found on levels that differ by the scale).
    fn agrees(&self, pair: &Pair) -> bool {
        let mapped = self.apply(pair.query);
        let (dx, dy) = (mapped.0 - pair.bank.0, mapped.1 - pair.bank.1);
        if dx * dx + dy * dy > INLIER_RADIUS * INLIER_RADIUS {
            return false;
        }
        let relative_scale = pair.scaling / self.scale;
        if !(1.0 / SCALE_TOLERANCE..=SCALE_TOLERANCE).contains(&relative_scale) {
            return false;
        }
        // cos(turn - rotation) from the unit vectors of both.
        let cos_difference = (pair.turn.0 * self.a.0 + pair.turn.1 * self.a.1) / self.scale;
        cos_difference >= ANGLE_TOLERANCE.cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::Keypoint;

    /// A set of `count` keypoints on a 20-pixel grid, at `level`, each with its own
    /// descriptor (seeded by `seed`, so two sets with one seed pair up one to one).
    fn grid(count: usize, level: u8, seed: u64) -> FeatureSet {
        let mut state = seed;
        let mut next = || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            state
        };
        let mut set = FeatureSet::default();
        for i in 0..count {
            set.keypoints.push(Keypoint {
                x: 20.0 + 20.0 * (i % 10) as f32,
                y: 20.0 + 20.0 * (i / 10) as f32,
                level,
                angle: 0.3,
            });
            set.descriptors.push([next(), next(), next(), next()]);
        }
        set
    }

    #[test]
    fn an_empty_set_on_either_side_pairs_nothing() {
        let set = grid(30, 0, 7);
        for (query, bank) in [(&set, &FeatureSet::default()), (&FeatureSet::default(), &set)] {
            let verification = verify(query, bank);
            assert_eq!((verification.pairs, verification.inliers), (0, 0));
        }
    }

    #[test]
    fn pairs_in_place_and_on_matching_levels_all_agree() {
        let set = grid(30, 1, 7);
        assert_eq!(verify(&set, &set).inliers, 30);
    }

    #[test]
    fn pairs_whose_levels_contradict_the_scale_do_not_agree() {
        // Twenty pairs fix the identity; ten more sit in place too but were found three
        // levels apart (patches twice as large in the bank): the same corners could not
        // look alike at both sizes, so those pairings are chance.
        let mut query = grid(30, 0, 7);
        let mut bank = query.clone();
        for keypoint in &mut bank.keypoints[20..] {
            keypoint.level = 3;
        }
        assert_eq!(verify(&query, &bank).inliers, 20);
        // One level apart is within what detection on a 1.25-step pyramid gives.
        for keypoint in &mut query.keypoints[20..] {
            keypoint.level = 2;
        }
        assert_eq!(verify(&query, &bank).inliers, 30);
    }

    #[test]
    fn a_pair_must_scale_the_way_the_transformation_does() {
        // The bank image is the query at twice the size: bank corners twice as far apart,
        // found three levels up (1.25^3 = 1.95). Pairs found three levels *down* instead
        // would shrink where the picture grows.
        let query = grid(30, 0, 11);
        let mut bank = query.clone();
        for keypoint in &mut bank.keypoints {
            (keypoint.x, keypoint.y) = (2.0 * keypoint.x, 2.0 * keypoint.y);
            keypoint.level = 3;
        }
        let verified = verify(&query, &bank);
        assert_eq!(verified.inliers, 30);
        assert!((verified.scale - 2.0).abs() < 1e-3, "{verified:?}");
        let mut shrunk_query = query.clone();
        for keypoint in &mut shrunk_query.keypoints {
            keypoint.level = 3;
        }
        let mut bank_below = bank.clone();
        for keypoint in &mut bank_below.keypoints {
            keypoint.level = 0;
        }
        assert_eq!(verify(&shrunk_query, &bank_below).inliers, 0);
    }
}
