//! From the 64x64 downsample to bits: quality, the 16x16 DCT, the median threshold and the
//! dihedral variants derived from one DCT.
//!
//! Every float operation here happens in the order the reference performs it (f32
//! accumulation in index order, no fused multiply-add), because a hash must match the
//! reference bit for bit, not approximately.

use std::sync::OnceLock;

use super::PdqHash;

/// The 64x64 luma image PDQ thresholds, row-major.
pub(crate) type Block64 = [[f32; 64]; 64];

/// Rows 1..=16 of the 64-point DCT-II basis, as the reference builds it: the scale factor
/// rounded to f32, the product taken in f64, the result rounded to f32.
fn dct_matrix() -> &'static [[f32; 64]; 16] {
    static MATRIX: OnceLock<[[f32; 64]; 16]> = OnceLock::new();
    MATRIX.get_or_init(|| {
        let scale = (2.0f64 / 64.0).sqrt() as f32;
        let mut d = [[0f32; 64]; 16];
        for (i, row) in d.iter_mut().enumerate() {
            for (j, cell) in row.iter_mut().enumerate() {
                let angle = (std::f64::consts::PI / 2.0 / 64.0) * (i + 1) as f64 * (2 * j + 1) as f64;
                *cell = (f64::from(scale) * angle.cos()) as f32;
            }
        }
        d
    })
}

/// The 16x16 DCT coefficients `B[i][j]` (i vertical frequency, j horizontal).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Dct16(pub(crate) [[f32; 16]; 16]);

impl Dct16 {
    /// `B = D A Dᵀ`, accumulated in f32 in the reference's order.
    pub(crate) fn from_block(a: &Block64) -> Dct16 {
        let d = dct_matrix();
        // T = D A: for each (i, j), sum over k of D[i][k] * A[k][j]. Accumulating whole rows
        // of A at once keeps every T[i][j]'s additions in k order while letting the
        // compiler vectorise across j.
        let mut t = [[0f32; 64]; 16];
        for (t_row, d_row) in t.iter_mut().zip(d.iter()) {
            for (k, a_row) in a.iter().enumerate() {
                let coefficient = d_row[k];
                for (acc, &value) in t_row.iter_mut().zip(a_row.iter()) {
                    *acc += coefficient * value;
                }
            }
        }
        let mut b = [[0f32; 16]; 16];
        for (b_row, t_row) in b.iter_mut().zip(t.iter()) {
            for (cell, d_row) in b_row.iter_mut().zip(d.iter()) {
                let mut sum = 0f32;
                for (&tv, &dv) in t_row.iter().zip(d_row.iter()) {
                    sum += tv * dv;
                }
                *cell = sum;
            }
        }
        Dct16(b)
    }

    /// Bit `16 i + j` is set iff `B[i][j]` is above the lower median of the 256 values.
    pub(crate) fn to_hash(&self) -> PdqHash {
        let median = lower_median(&self.0);
        let mut hash = PdqHash::ZERO;
        for (i, row) in self.0.iter().enumerate() {
            for (j, &value) in row.iter().enumerate() {
                if value > median {
                    hash.set_bit(16 * i + j);
                }
            }
        }
        hash
    }

    /// The DCT of the image transformed by `transform`, derived by sign flips and a
    /// transpose (the reference's `dct16OriginalTo*`).
    pub(crate) fn transformed(&self, transform: super::Dihedral) -> Dct16 {
        use super::Dihedral::*;
        let a = &self.0;
        let mut out = [[0f32; 16]; 16];
        for (i, row) in a.iter().enumerate() {
            for (j, &v) in row.iter().enumerate() {
                let odd_i = i % 2 == 1;
                let odd_j = j % 2 == 1;
                let odd_sum = (i + j) % 2 == 1;
                let (transpose, keep_sign) = match transform {
                    Original => (false, true),
                    Rotate90 => (true, odd_j),
                    Rotate180 => (false, !odd_sum),
                    Rotate270 => (true, odd_i),
                    FlipX => (false, odd_i),
                    FlipY => (false, odd_j),
                    FlipPlus1 => (true, true),
                    FlipMinus1 => (true, !odd_sum),
                };
                let value = if keep_sign { v } else { -v };
                if transpose {
                    out[j][i] = value;
                } else {
                    out[i][j] = value;
                }
            }
        }
        Dct16(out)
    }
}

/// The 128th smallest of the 256 values: what Torben's median returns for an even count.
fn lower_median(values: &[[f32; 16]; 16]) -> f32 {
    let mut flat: Vec<f32> = values.iter().flatten().copied().collect();
    let (_, median, _) = flat.select_nth_unstable_by(127, f32::total_cmp);
    *median
}

/// The reference's image-domain quality: the count of significant gradients between
/// neighbouring cells of the 64x64 downsample, each truncated to an integer before it is
/// summed, scaled to 0..=100.
pub(crate) fn quality(a: &Block64) -> u8 {
    let step = |u: f32, v: f32| -> i32 { (((u - v) * 100.0) / 255.0) as i32 };
    let mut gradient_sum: i32 = 0;
    for (upper, lower) in a.iter().zip(a.iter().skip(1)) {
        for (&u, &v) in upper.iter().zip(lower.iter()) {
            gradient_sum += step(u, v).abs();
        }
    }
    for row in a.iter() {
        for j in 0..63 {
            gradient_sum += step(row[j], row[j + 1]).abs();
        }
    }
    (gradient_sum / 90).min(100) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lower_median_is_the_128th_smallest() {
        let mut values = [[0f32; 16]; 16];
        for (k, v) in values.iter_mut().flatten().enumerate() {
            // A permutation of 0..256, so the 128th smallest is 127.
            *v = ((k * 97) % 256) as f32;
        }
        assert_eq!(lower_median(&values), 127.0);
    }

    #[test]
    fn every_dihedral_transform_of_a_dct_is_a_signed_permutation() {
        let mut a = [[0f32; 16]; 16];
        for (k, v) in a.iter_mut().flatten().enumerate() {
            *v = k as f32 + 1.0;
        }
        let dct = Dct16(a);
        for t in super::super::Dihedral::ALL {
            let mut magnitudes: Vec<f32> = dct.transformed(t).0.iter().flatten().map(|v| v.abs()).collect();
            magnitudes.sort_by(f32::total_cmp);
            let expected: Vec<f32> = (1..=256).map(|k| k as f32).collect();
            assert_eq!(magnitudes, expected, "{t:?}");
        }
        // Rotating by 90 degrees four times is the identity.
        use super::super::Dihedral::Rotate90;
        let four = dct
            .transformed(Rotate90)
            .transformed(Rotate90)
            .transformed(Rotate90)
            .transformed(Rotate90);
        assert_eq!(four, dct);
    }
}
