//! What Cordon computes from an image, in one place, so that banking an image and looking
//! one up agree whether they come from the CLI or the API.
//!
//! A bank keeps an image's PDQ hash, that of the picture inside any borders, padding or
//! page around it (`trim_page`, so that a repost with them cropped off, or a screenshot of
//! it, matches by PDQ too), and its local features (also those of the whole image when
//! the picture sits on a wide plain ground). A lookup computes PDQ (in eight
//! orientations when asked), PDQ of the picture inside any borders, padding or page
//! (`trimmed`), and local features with those of its mirror
//! image; the matcher then consults every signal of every bank.
//!
//! An image with transparency is hashed by PDQ as the reference hashes it (the colour
//! under the opacity, which may be one plain colour), and everything else is computed on
//! the picture as people see it ([`as_seen`]), whose PDQ hash is kept and looked up too
//! (`composited`): a screenshot or a re-saved copy shows that picture.

use std::borrow::Cow;

use cordon_signals::features::{self, FeatureSet};
use cordon_signals::pdq::QUALITY_THRESHOLD;
use cordon_signals::{
    DecodedImage, Dihedral, PdqDigest, PdqHash, PdqHasher, Region, trim_borders, trim_page,
};

/// The grey an image with transparency is seen over.
const SEEN_OVER: u8 = 128;

/// The picture as people see it: an image with transparency composited over mid-grey,
/// any other image as it is. Over white or black the same picture shows as this one with
/// its brightness and contrast changed (exactly so when the colour under the opacity is
/// one plain colour, as in pictures drawn in transparency), which neither PDQ nor local
/// features mind; over white, a picture drawn in white would vanish.
pub fn as_seen(image: &DecodedImage) -> Cow<'_, DecodedImage> {
    match image.composited_over(SEEN_OVER) {
        Some(seen) => Cow::Owned(seen),
        None => Cow::Borrowed(image),
    }
}

/// When trimming keeps less than this share of an image's area, the picture sits on a
/// wide plain ground (an emblem on a colour, a photo on a poster's backdrop).
const PLAIN_GROUND_SHARE: f64 = 0.7;

/// Whether the picture (what trimming keeps of the image) sits on a wide plain ground. Its
/// trimmed features then see the picture alone, filling the working copy; a repost that
/// adds around it something trimming cannot take off (a tilt's black corners, a caption
/// bar) keeps the ground, and shows the picture smaller than the pyramid of levels reaches
/// (a third of the width is three times smaller, the pyramid spans 2.4). The bank keeps
/// the whole image's features for those too.
fn sits_on_plain_ground(picture: Region, whole: Region) -> bool {
    let area = |region: Region| f64::from(region.width) * f64::from(region.height);
    area(picture) < PLAIN_GROUND_SHARE * area(whole)
}

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
        let seen = as_seen(image);
        let whole = Region::whole(image);
        let trimmed = trim_page(&seen);
        let composited = matches!(seen, Cow::Owned(_));
        let variants = [
            (image, whole, PdqVariant::Whole),
            (&*seen, trimmed, PdqVariant::Trimmed),
            (&*seen, whole, PdqVariant::Composited),
        ];
        for (picture, region, kind) in variants {
            match kind {
                PdqVariant::Trimmed if trimmed == whole => continue,
                PdqVariant::Composited if !composited => continue,
                _ => {}
            }
            let hashes = hasher.hash_dihedral_region(picture, region);
            if kind == PdqVariant::Whole {
                signals.hash = hashes.get(Dihedral::Original);
                signals.quality = hashes.quality;
            }
            if hashes.quality < options.min_quality {
                continue;
            }
            let orientations = if options.dihedral {
                &Dihedral::ALL[..]
            } else {
                &Dihedral::ALL[..1]
            };
            for &orientation in orientations {
                signals
                    .pdq
                    .push((kind.name(orientation), hashes.get(orientation)));
            }
        }
        if options.features {
            let (plain, mirrored) = features::extract_with_mirror(&seen);
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

/// Which picture a lookup's PDQ hash is of.
#[derive(Clone, Copy, PartialEq, Eq)]
enum PdqVariant {
    /// The image as given, as the reference hashes it.
    Whole,
    /// The picture inside its borders or padding.
    Trimmed,
    /// An image with transparency as people see it.
    Composited,
}

impl PdqVariant {
    /// The transform a match by this variant in `orientation` reports.
    fn name(self, orientation: Dihedral) -> &'static str {
        use Dihedral::*;
        match (self, orientation) {
            (PdqVariant::Whole, _) => orientation.name(),
            (PdqVariant::Trimmed, Original) => "trimmed",
            (PdqVariant::Trimmed, Rotate90) => "trimmed_rotate90",
            (PdqVariant::Trimmed, Rotate180) => "trimmed_rotate180",
            (PdqVariant::Trimmed, Rotate270) => "trimmed_rotate270",
            (PdqVariant::Trimmed, FlipX) => "trimmed_flipx",
            (PdqVariant::Trimmed, FlipY) => "trimmed_flipy",
            (PdqVariant::Trimmed, FlipPlus1) => "trimmed_flip_plus1",
            (PdqVariant::Trimmed, FlipMinus1) => "trimmed_flip_minus1",
            (PdqVariant::Composited, Original) => "composited",
            (PdqVariant::Composited, Rotate90) => "composited_rotate90",
            (PdqVariant::Composited, Rotate180) => "composited_rotate180",
            (PdqVariant::Composited, Rotate270) => "composited_rotate270",
            (PdqVariant::Composited, FlipX) => "composited_flipx",
            (PdqVariant::Composited, FlipY) => "composited_flipy",
            (PdqVariant::Composited, FlipPlus1) => "composited_flip_plus1",
            (PdqVariant::Composited, FlipMinus1) => "composited_flip_minus1",
        }
    }
}

/// The signals a bank keeps for an image: its PDQ digest, other PDQ hashes of the picture
/// (inside its borders or padding, and as seen when it has transparency), and its local
/// features when it has enough corners (for a picture with transparency, those of the
/// picture as decoded and as seen: a copy re-saved without its opacity shows the one, a
/// screenshot the other; for a picture on a wide plain ground, those of the whole image
/// as well).
pub struct BankSignals {
    pub pdq: PdqDigest,
    /// Each usable (quality 50 or more) and different from the whole image's and from
    /// each other: that of the picture inside its borders, when trimming found any, and
    /// that of the picture as seen, when it has transparency.
    pub other_pdq: Vec<PdqHash>,
    /// None or some, none empty: the picture's inside any borders (for a picture with
    /// transparency, as decoded and as seen), and when it sits on a wide plain ground the
    /// whole image's too (`sits_on_plain_ground`).
    pub features: Vec<FeatureSet>,
}

impl BankSignals {
    /// The PDQ hash when its quality is high enough to match by.
    pub fn usable_pdq(&self) -> Option<PdqHash> {
        self.pdq.usable()
    }

    pub fn of(image: &DecodedImage, hasher: &PdqHasher) -> BankSignals {
        let seen = as_seen(image);
        // The picture as decoded first, when it differs from the picture as seen.
        let mut features = Vec::new();
        if matches!(seen, Cow::Owned(_)) {
            features.push(features::extract(image));
        }
        let picture = trim_borders(&seen);
        features.push(features::extract_in(&seen, picture));
        let whole = Region::whole(&seen);
        if sits_on_plain_ground(picture, whole) {
            features.push(features::extract_in(&seen, whole));
        }
        features.retain(|set| !set.is_empty());
        let pdq = hasher.hash(image);
        let region = trim_page(&seen);
        let trimmed = (!region.is_whole(&seen)).then(|| hasher.hash_region(&seen, region));
        let composited = matches!(seen, Cow::Owned(_)).then(|| hasher.hash(&seen));
        let mut other_pdq: Vec<PdqHash> = Vec::new();
        for hash in trimmed.into_iter().chain(composited).filter_map(|d| d.usable()) {
            if hash != pdq.hash && !other_pdq.contains(&hash) {
                other_pdq.push(hash);
            }
        }
        BankSignals {
            pdq,
            other_pdq,
            features,
        }
    }

    /// Whether any signal can match the image: a usable PDQ hash, whole or other, or
    /// local features.
    pub fn is_matchable(&self) -> bool {
        self.usable_pdq().is_some() || !self.other_pdq.is_empty() || !self.features.is_empty()
    }
}
