//! What Cordon computes from an image, in one place, so that banking an image and looking
//! one up agree whether they come from the CLI or the API.
//!
//! A bank keeps an image's PDQ hash, that of the picture inside any borders or padding
//! (so that a repost with them cropped off matches by PDQ too), and its local features.
//! A lookup computes PDQ (in eight orientations when asked), PDQ of the picture inside
//! any borders or padding (`trimmed`), and local features with those of its mirror
//! image; the matcher then consults every signal of every bank.

use cordon_signals::features::{self, FeatureSet};
use cordon_signals::pdq::QUALITY_THRESHOLD;
use cordon_signals::{DecodedImage, Dihedral, PdqDigest, PdqHash, PdqHasher, Region, trim_borders};

/// Which signals a lookup computes.
#[derive(Clone, Copy, Debug)]
pub struct QueryOptions {
    /// PDQ in all eight orientations, not just as given.
    pub dihedral: bool,
    /// Local features (about three times the cost of PDQ; they find crops, captions,
    /// screenshots and tilts).
    pub features: bool,
    /// PDQ hashes of images below this quality are not looked up (they match unrelated
    /// images); the image is then reported as low quality.
    pub min_quality: u8,
}

impl Default for QueryOptions {
    fn default() -> Self {
        QueryOptions {
            dihedral: true,
            features: true,
            min_quality: QUALITY_THRESHOLD,
        }
    }
}

/// The signals an image is looked up by, each with the variant of the image it comes from.
#[derive(Clone, Debug, Default)]
pub struct QuerySignals {
    /// PDQ hash and quality of the image as given (the hash even when its quality is too
    /// low to look up).
    pub hash: PdqHash,
    pub quality: u8,
    pub pdq: Vec<(&'static str, PdqHash)>,
    pub features: Vec<(&'static str, FeatureSet)>,
}

impl QuerySignals {
    pub fn of(image: &DecodedImage, hasher: &PdqHasher, options: QueryOptions) -> QuerySignals {
        let mut signals = QuerySignals::default();
        let whole = Region::whole(image);
        let trimmed = trim_borders(image);
        for (region, trimmed_variant) in [(whole, false), (trimmed, true)] {
            if trimmed_variant && trimmed == whole {
                break;
            }
            let hashes = hasher.hash_dihedral_region(image, region);
            if !trimmed_variant {
                signals.hash = hashes.get(Dihedral::Original);
                signals.quality = hashes.quality;
            }
            if hashes.quality < options.min_quality {
                continue;
            }
            let variants = if options.dihedral {
                &Dihedral::ALL[..]
            } else {
                &Dihedral::ALL[..1]
            };
            for &variant in variants {
                let name = if trimmed_variant {
                    trimmed_name(variant)
                } else {
                    variant.name()
                };
                signals.pdq.push((name, hashes.get(variant)));
            }
        }
        if options.features {
            let (plain, mirrored) = features::extract_with_mirror(image);
            if !plain.is_empty() {
                signals.features = vec![("original", plain), ("mirror", mirrored)];
            }
        }
        signals
    }

    /// Only a PDQ hash, for lookups by hash.
    pub fn of_hash(hash: PdqHash) -> QuerySignals {
        QuerySignals {
            hash,
            quality: 100,
            pdq: vec![(Dihedral::Original.name(), hash)],
            features: Vec::new(),
        }
    }

    /// Whether the image gave nothing to look up (flat, tiny, or below the quality floor
    /// without features).
    pub fn is_empty(&self) -> bool {
        self.pdq.is_empty() && self.features.is_empty()
    }
}

/// The name of a trimmed picture's variant.
fn trimmed_name(variant: Dihedral) -> &'static str {
    match variant {
        Dihedral::Original => "trimmed",
        Dihedral::Rotate90 => "trimmed_rotate90",
        Dihedral::Rotate180 => "trimmed_rotate180",
        Dihedral::Rotate270 => "trimmed_rotate270",
        Dihedral::FlipX => "trimmed_flipx",
        Dihedral::FlipY => "trimmed_flipy",
        Dihedral::FlipPlus1 => "trimmed_flip_plus1",
        Dihedral::FlipMinus1 => "trimmed_flip_minus1",
    }
}

/// The signals a bank keeps for an image: its PDQ digest, the PDQ hash of the picture
/// inside its borders or padding when it has any, and its local features when it has
/// enough corners.
pub struct BankSignals {
    pub pdq: PdqDigest,
    /// Only when trimming found borders and the trimmed hash is usable (quality 50 or
    /// more) and differs from the whole image's.
    pub trimmed_pdq: Option<PdqHash>,
    pub features: Option<FeatureSet>,
}

impl BankSignals {
    /// The PDQ hash when its quality is high enough to match by.
    pub fn usable_pdq(&self) -> Option<PdqHash> {
        self.pdq.usable()
    }

    pub fn of(image: &DecodedImage, hasher: &PdqHasher) -> BankSignals {
        let features = features::extract(image);
        let pdq = hasher.hash(image);
        let region = trim_borders(image);
        let trimmed_pdq = (!region.is_whole(image))
            .then(|| hasher.hash_region(image, region).usable())
            .flatten()
            .filter(|trimmed| *trimmed != pdq.hash);
        BankSignals {
            pdq,
            trimmed_pdq,
            features: (!features.is_empty()).then_some(features),
        }
    }

    /// Whether any signal can match the image: a usable PDQ hash, whole or trimmed, or
    /// local features.
    pub fn is_matchable(&self) -> bool {
        self.usable_pdq().is_some() || self.trimmed_pdq.is_some() || self.features.is_some()
    }
}
