//! PDQ, Meta's perceptual image hash, computed exactly as the reference does.
//!
//! Two families exist (see `shared/docs/pdq.md`): [`PdqFamily::FullRes`] runs the PDQ core
//! on the full decoded image, as the Java port, PyPI `pdqhash`, python-threatexchange and
//! HMA do; it is the default because its hashes are the ones hash-sharing programmes hold.
//! [`PdqFamily::Cli512`] first squeezes the image to 512x512 by nearest neighbour, as the
//! C++ `pdq-photo-hasher` does, for exchanging hashes with users of that tool.

mod dct;
mod downsample;
mod hash;
mod reference;

pub use hash::{ParseHashError, PdqHash};

use crate::media::{DecodedImage, PixelLayout};
use crate::region::Region;
use dct::Dct16;

/// Images with a side shorter than this get the zero hash and quality 0, as in the
/// reference (`MIN_HASHABLE_DIM`).
const MIN_HASHABLE_SIDE: usize = 5;

/// The side the CLI family squeezes larger images to.
const CLI_SIDE: usize = 512;

/// Below this quality a PDQ hash is noise; the reference and HMA drop such hashes.
pub const QUALITY_THRESHOLD: u8 = 50;

/// Which reference pipeline a hash must agree with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum PdqFamily {
    /// The PDQ core on full-resolution pixels (HMA, python-threatexchange, PyPI `pdqhash`).
    #[default]
    FullRes,
    /// The C++ command-line tool: nearest neighbour to exactly 512x512 when either side is
    /// larger, aspect ratio not kept.
    Cli512,
}

impl PdqFamily {
    pub const fn name(self) -> &'static str {
        match self {
            PdqFamily::FullRes => "core",
            PdqFamily::Cli512 => "cli512",
        }
    }
}

/// A PDQ hash with the quality (0..=100) of the image it came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PdqDigest {
    pub hash: PdqHash,
    pub quality: u8,
}

impl PdqDigest {
    /// The hash when its quality (at least [`QUALITY_THRESHOLD`]) says it carries
    /// information: a flat or tiny image's hash matches unrelated images.
    pub fn usable(&self) -> Option<PdqHash> {
        (self.quality >= QUALITY_THRESHOLD).then_some(self.hash)
    }
}

/// The eight rotations and mirror images of a picture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dihedral {
    Original,
    /// 90 degrees counter-clockwise.
    Rotate90,
    Rotate180,
    /// 90 degrees clockwise.
    Rotate270,
    /// Top and bottom swapped.
    FlipX,
    /// Left and right swapped.
    FlipY,
    /// Mirrored about the main diagonal (transposed).
    FlipPlus1,
    /// Mirrored about the anti-diagonal.
    FlipMinus1,
}

impl Dihedral {
    /// In the reference's output order.
    pub const ALL: [Dihedral; 8] = [
        Dihedral::Original,
        Dihedral::Rotate90,
        Dihedral::Rotate180,
        Dihedral::Rotate270,
        Dihedral::FlipX,
        Dihedral::FlipY,
        Dihedral::FlipPlus1,
        Dihedral::FlipMinus1,
    ];

    /// The name used in Cordon's JSON output.
    pub const fn name(self) -> &'static str {
        match self {
            Dihedral::Original => "original",
            Dihedral::Rotate90 => "rotate90",
            Dihedral::Rotate180 => "rotate180",
            Dihedral::Rotate270 => "rotate270",
            Dihedral::FlipX => "flipx",
            Dihedral::FlipY => "flipy",
            Dihedral::FlipPlus1 => "flip_plus1",
            Dihedral::FlipMinus1 => "flip_minus1",
        }
    }
}

/// The hashes of all eight dihedral variants, derived from one DCT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DihedralHashes {
    pub quality: u8,
    hashes: [PdqHash; 8],
}

impl DihedralHashes {
    pub fn get(&self, variant: Dihedral) -> PdqHash {
        self.hashes[variant as usize]
    }

    pub fn original(&self) -> PdqDigest {
        PdqDigest {
            hash: self.get(Dihedral::Original),
            quality: self.quality,
        }
    }

    /// `(variant, hash)` pairs in the reference's order.
    pub fn iter(&self) -> impl Iterator<Item = (Dihedral, PdqHash)> + '_ {
        Dihedral::ALL.into_iter().map(|d| (d, self.get(d)))
    }
}

/// Computes PDQ hashes of decoded images.
#[derive(Clone, Copy, Debug, Default)]
pub struct PdqHasher {
    family: PdqFamily,
}

impl PdqHasher {
    pub fn new(family: PdqFamily) -> Self {
        PdqHasher { family }
    }

    pub fn family(&self) -> PdqFamily {
        self.family
    }

    pub fn hash(&self, image: &DecodedImage) -> PdqDigest {
        self.hash_region(image, Region::whole(image))
    }

    /// The hash of one rectangle of `image`: the hash the file cropped to it would give.
    pub fn hash_region(&self, image: &DecodedImage, region: Region) -> PdqDigest {
        match self.dct(image, region) {
            Some((dct, quality)) => PdqDigest {
                hash: dct.to_hash(),
                quality,
            },
            None => PdqDigest {
                hash: PdqHash::ZERO,
                quality: 0,
            },
        }
    }

    pub fn hash_dihedral(&self, image: &DecodedImage) -> DihedralHashes {
        self.hash_dihedral_region(image, Region::whole(image))
    }

    /// [`PdqHasher::hash_dihedral`] of one rectangle of `image`.
    pub fn hash_dihedral_region(&self, image: &DecodedImage, region: Region) -> DihedralHashes {
        match self.dct(image, region) {
            Some((dct, quality)) => DihedralHashes {
                quality,
                hashes: Dihedral::ALL.map(|d| dct.transformed(d).to_hash()),
            },
            None => DihedralHashes {
                quality: 0,
                hashes: [PdqHash::ZERO; 8],
            },
        }
    }

    /// The 16x16 DCT and the quality, or `None` for a region too small to hash.
    fn dct(&self, image: &DecodedImage, region: Region) -> Option<(Dct16, u8)> {
        let region = region.clamped_to(image);
        let (height, width) = (region.height as usize, region.width as usize);
        let block = match self.family {
            PdqFamily::FullRes => {
                if height < MIN_HASHABLE_SIDE || width < MIN_HASHABLE_SIDE {
                    return None;
                }
                let mut source = full_res_luma(image, region);
                downsample::downsample_to_64(height, width, &mut source)
            }
            PdqFamily::Cli512 => {
                let (rows, cols) = cli512_size(height, width);
                if rows < MIN_HASHABLE_SIDE || cols < MIN_HASHABLE_SIDE {
                    return None;
                }
                let mut source = cli512_luma(image, region, rows, cols);
                downsample::downsample_to_64(rows, cols, &mut source)
            }
        };
        Some((Dct16::from_block(&block), dct::quality(&block)))
    }
}

/// Luma as PyPI `pdqhash` computes it for HMA: the BT.601 weighted sum in f64, rounded
/// once to f32. (The C++ core sums in f32; the two differ by one ulp on some pixels and
/// very rarely by a bit of the hash, so the family HMA uses is followed exactly.)
fn full_res_luma(image: &DecodedImage, region: Region) -> impl FnMut(usize, &mut [f32]) + '_ {
    let channels = image.layout().channels();
    let stride_bytes = image.width() as usize * channels;
    let (left, top, width) = (region.left as usize, region.top as usize, region.width as usize);
    // Inlined into the hashing loop so that it is compiled for the same instruction set,
    // where the weighted sums become vector arithmetic over a row.
    #[inline(always)]
    move |row, out| {
        let pixels = &image.pixels()[(top + row) * stride_bytes + left * channels..][..width * channels];
        match image.layout() {
            PixelLayout::Grey => {
                for (cell, &grey) in out.iter_mut().zip(pixels) {
                    *cell = f32::from(grey);
                }
            }
            PixelLayout::Rgb => {
                for (cell, p) in out.iter_mut().zip(pixels.chunks_exact(3)) {
                    let (r, g, b) = (f64::from(p[0]), f64::from(p[1]), f64::from(p[2]));
                    *cell = (r * 0.299 + g * 0.587 + b * 0.114) as f32;
                }
            }
        }
    }
}

/// The CLI family hashes 512x512 whenever either side is larger than 512.
fn cli512_size(height: usize, width: usize) -> (usize, usize) {
    if height > CLI_SIDE || width > CLI_SIDE {
        (CLI_SIDE, CLI_SIDE)
    } else {
        (height, width)
    }
}

/// Luma as the C++ command-line tool computes it: nearest neighbour to `rows x cols`
/// (top-left anchored, `src = floor(dst * size / target)`), then the weighted sum in f32
/// arithmetic.
fn cli512_luma(
    image: &DecodedImage,
    region: Region,
    rows: usize,
    cols: usize,
) -> impl FnMut(usize, &mut [f32]) + '_ {
    let (height, width) = (region.height as usize, region.width as usize);
    let (left, top) = (region.left as usize, region.top as usize);
    let channels = image.layout().channels();
    let stride_bytes = image.width() as usize * channels;
    let src_x: Vec<usize> = (0..cols).map(|x| x * width / cols).collect();
    move |y, out| {
        let start = (top + y * height / rows) * stride_bytes + left * channels;
        let src_row = &image.pixels()[start..][..width * channels];
        for (cell, &x) in out.iter_mut().zip(&src_x) {
            let p = &src_row[x * channels..][..channels];
            *cell = match image.layout() {
                PixelLayout::Grey => f32::from(p[0]),
                PixelLayout::Rgb => {
                    0.299f32 * f32::from(p[0]) + 0.587f32 * f32::from(p[1]) + 0.114f32 * f32::from(p[2])
                }
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Random luma with long flat runs and sharp edges, which is where running float sums
    /// drift most.
    fn luma_strategy() -> impl Strategy<Value = (usize, usize, Vec<f32>)> {
        (1usize..300, 1usize..300).prop_flat_map(|(rows, cols)| {
            let cells = prop::collection::vec(
                prop_oneof![
                    Just(0.0f32),
                    Just(255.0f32),
                    0.0f32..255.0,
                    (0u8..=255).prop_map(f32::from)
                ],
                rows * cols,
            );
            (Just(rows), Just(cols), cells)
        })
    }

    /// `len` samples of a deterministic pseudo-random texture.
    pub(super) fn texture(len: usize) -> Vec<f32> {
        let mut state = 0x9e37_79b9_u32;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                (state % 256) as f32 * 0.987
            })
            .collect()
    }

    fn fast_downsample(luma: &[f32], rows: usize, cols: usize) -> Box<dct::Block64> {
        let mut source = |row: usize, out: &mut [f32]| {
            out.copy_from_slice(&luma[row * cols..(row + 1) * cols]);
        };
        let dispatched = downsample::downsample_to_64(rows, cols, &mut source);
        // The portable build must agree too, whichever one the CPU dispatched to.
        let portable = downsample::downsample_portable(rows, cols, &mut source);
        let same = dispatched.iter().flatten().zip(portable.iter().flatten());
        assert!(
            same.into_iter().all(|(a, b)| a.to_bits() == b.to_bits()),
            "{rows}x{cols}"
        );
        dispatched
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn fast_downsample_equals_the_reference_port((rows, cols, luma) in luma_strategy()) {
            let fast = fast_downsample(&luma, rows, cols);
            let slow = reference::downsample_to_64(&mut luma.clone(), rows, cols);
            for i in 0..64 {
                for j in 0..64 {
                    prop_assert_eq!(fast[i][j].to_bits(), slow[i][j].to_bits(), "cell {},{} of {}x{}", i, j, rows, cols);
                }
            }
        }
    }

    #[test]
    fn fast_downsample_equals_the_reference_port_on_large_windows() {
        // Windows of 13 to 32 samples, as in 1600x1004 and 4000x3000 photos, with a
        // deterministic pseudo-random texture.
        for (rows, cols) in [(1004, 1600), (3000, 4000), (731, 2049), (64, 64), (64, 65)] {
            let luma = texture(rows * cols);
            let fast = fast_downsample(&luma, rows, cols);
            let slow = reference::downsample_to_64(&mut luma.clone(), rows, cols);
            assert!(
                fast.iter()
                    .flatten()
                    .zip(slow.iter().flatten())
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "{rows}x{cols}"
            );
        }
    }

    #[test]
    fn a_region_hashes_like_the_image_cropped_to_it() {
        let (width, height) = (301u32, 217u32);
        let pixels: Vec<u8> = (0..width * height * 3)
            .map(|i| {
                let (p, c) = (i / 3, i % 3);
                let (x, y) = (p % width, p / width);
                ((x * (7 + c) + y * (3 + 2 * c) + (x * y) % 23) % 256) as u8
            })
            .collect();
        let image = DecodedImage::from_pixels(width, height, PixelLayout::Rgb, pixels.clone()).unwrap();
        let region = Region {
            left: 17,
            top: 9,
            width: 250,
            height: 180,
        };
        let cropped: Vec<u8> = (region.top..region.top + region.height)
            .flat_map(|y| {
                let start = ((y * width + region.left) * 3) as usize;
                pixels[start..start + region.width as usize * 3].to_vec()
            })
            .collect();
        let cropped =
            DecodedImage::from_pixels(region.width, region.height, PixelLayout::Rgb, cropped).unwrap();
        for family in [PdqFamily::FullRes, PdqFamily::Cli512] {
            let hasher = PdqHasher::new(family);
            assert_eq!(
                hasher.hash_region(&image, region),
                hasher.hash(&cropped),
                "{family:?}"
            );
            assert_ne!(hasher.hash(&image), hasher.hash(&cropped), "{family:?}");
        }
    }
}
