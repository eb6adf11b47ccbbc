//! The 256-bit descriptor of a keypoint: 256 comparisons between two smoothed pixels
//! of the patch around it, the pattern turned by the keypoint's angle so that a rotated
//! picture gives the same bits.

use std::sync::OnceLock;

use super::detect::Grey;

/// The pattern's points lie within this many pixels of the keypoint.
pub const PATCH_RADIUS: isize = 15;

/// Pairs of offsets, drawn once from a Gaussian around the keypoint (the BRIEF paper's best
/// sampling) with a fixed seed: every Cordon computes the same descriptors.
fn pattern() -> &'static [[(f32, f32); 2]; 256] {
    static PATTERN: OnceLock<[[(f32, f32); 2]; 256]> = OnceLock::new();
    PATTERN.get_or_init(|| {
        let mut state = 0x5eed_c0de_u64;
        let mut next = move || {
            // splitmix64, then a uniform in (0, 1)
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            ((z >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        let sigma = (2 * PATCH_RADIUS + 1) as f64 / 5.0;
        let limit = PATCH_RADIUS as f64;
        let mut point = || loop {
            // Box-Muller; points outside the patch are drawn again.
            let (u, v) = (next(), next());
            let r = (-2.0 * u.ln()).sqrt() * sigma;
            let (x, y) = (
                r * (std::f64::consts::TAU * v).cos(),
                r * (std::f64::consts::TAU * v).sin(),
            );
            if x.hypot(y) <= limit {
                return (x as f32, y as f32);
            }
        };
        std::array::from_fn(|_| [point(), point()])
    })
}

/// The descriptor of the keypoint at (`x`, `y`) of `smoothed`, turned by `angle`, with
/// the pattern upside down when `mirrored` (what the mirror image's descriptor reads).
/// The caller keeps keypoints far enough from the edges for every turned point to be inside.
pub fn descriptor(smoothed: &Grey, x: usize, y: usize, angle: f32, mirrored: bool) -> [u64; 4] {
    let (sin, cos) = angle.sin_cos();
    let flip = if mirrored { -1.0 } else { 1.0 };
    let sample = |(dx, dy): (f32, f32)| {
        let dy = dy * flip;
        // Rounded half away from zero without a call into libm.
        let round = |v: f32| (v + 0.5f32.copysign(v)) as isize;
        let rx = round(cos * dx - sin * dy);
        let ry = round(sin * dx + cos * dy);
        smoothed.at((x as isize + rx) as usize, (y as isize + ry) as usize)
    };
    let mut bits = [0u64; 4];
    for (i, [p, q]) in pattern().iter().enumerate() {
        if sample(*p) < sample(*q) {
            bits[i / 64] |= 1 << (i % 64);
        }
    }
    bits
}

/// Differing bits between two descriptors.
#[inline]
pub fn distance(a: &[u64; 4], b: &[u64; 4]) -> u32 {
    a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum()
}
