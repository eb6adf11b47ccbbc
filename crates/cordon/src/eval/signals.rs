//! The image signals `cordon eval` measures. Each is one type implementing [`EvalSignal`],
//! listed once in [`all_signals`]: adding a signal to the evaluation is adding it there.

use cordon_signals::features::{self, FeatureSet};
use cordon_signals::pdq::QUALITY_THRESHOLD;
use cordon_signals::{DecodedImage, PdqHash, PdqHasher, Region, SignalType, trim_page};

use cordon_engine::image_signals::{BankSignals, QueryOptions, QuerySignals};

use super::measure;

/// One image signal as `cordon eval` measures it. Hash signals match by the smallest
/// Hamming distance between any bank hash and any query hash; others say how they compare.
pub trait EvalSignal: Send + Sync {
    fn name(&self) -> &'static str;
    fn default_threshold(&self) -> u32;
    /// Hashes stored for a bank (original) image; empty if the image gives none (e.g. quality too low).
    fn bank_hashes(&self, image: &DecodedImage) -> Vec<PdqHash>;
    /// Hashes looked up for a query, each with the variant that produced it ("original", "mirror", "rot90"...).
    fn query_hashes(&self, image: &DecodedImage) -> Vec<(&'static str, PdqHash)>;

    /// What the bank keeps of an original. Hash signals need not say.
    fn bank_value(&self, image: &DecodedImage) -> SignalValue {
        SignalValue::Hashes(self.bank_hashes(image))
    }

    /// What a query computes. Hash signals need not say.
    fn query_value(&self, image: &DecodedImage) -> SignalValue {
        SignalValue::Hashes(
            self.query_hashes(image)
                .into_iter()
                .map(|(_, hash)| hash)
                .collect(),
        )
    }
}

/// A signal's value for one image.
pub enum SignalValue {
    Hashes(Vec<PdqHash>),
    /// The bank keeps one set; a query looks up its own and its mirror image's.
    Features(Vec<FeatureSet>),
    /// Several signals at once, each with its threshold: Cordon's own matching.
    Any(Vec<(SignalValue, u32)>),
}

impl SignalValue {
    /// How far a query is from a bank image; `None` when nothing can match (no hash,
    /// no keypoints).
    pub fn distance(bank: &SignalValue, query: &SignalValue) -> Option<u32> {
        match (bank, query) {
            (SignalValue::Hashes(bank), SignalValue::Hashes(query)) => measure::min_distance(bank, query),
            (SignalValue::Features(bank), SignalValue::Features(query)) => bank
                .iter()
                .flat_map(|b| query.iter().map(move |q| (b, q)))
                .filter(|(b, q)| !b.is_empty() && !q.is_empty())
                .map(|(b, q)| features::distance(&features::verify(q, b)))
                .min(),
            // A match by any part is a match (distance 0); otherwise none.
            (SignalValue::Any(bank), SignalValue::Any(query)) => bank
                .iter()
                .zip(query)
                .any(|((b, threshold), (q, _))| SignalValue::distance(b, q).is_some_and(|d| d <= *threshold))
                .then_some(0),
            _ => None,
        }
    }

    /// Whether the bank has nothing to match this image by.
    pub fn is_empty(&self) -> bool {
        match self {
            SignalValue::Hashes(hashes) => hashes.is_empty(),
            SignalValue::Features(sets) => sets.iter().all(FeatureSet::is_empty),
            SignalValue::Any(parts) => parts.iter().all(|(part, _)| part.is_empty()),
        }
    }
}

/// Every signal the evaluation knows, in the order reports list them.
pub fn all_signals() -> Vec<Box<dyn EvalSignal>> {
    vec![
        Box::new(Pdq),
        Box::new(PdqDihedral),
        Box::new(PdqTrimmed),
        Box::new(Features),
        Box::new(Cordon),
    ]
}

/// PDQ's threshold in python-threatexchange and HMA, and Cordon's bank default.
const PDQ_THRESHOLD: u32 = 31;

/// Plain PDQ, looked up as HMA looks it up: the query's own orientation only.
struct Pdq;

impl EvalSignal for Pdq {
    fn name(&self) -> &'static str {
        "pdq"
    }

    fn default_threshold(&self) -> u32 {
        PDQ_THRESHOLD
    }

    fn bank_hashes(&self, image: &DecodedImage) -> Vec<PdqHash> {
        PdqHasher::default().hash(image).usable().into_iter().collect()
    }

    fn query_hashes(&self, image: &DecodedImage) -> Vec<(&'static str, PdqHash)> {
        PdqHasher::default()
            .hash(image)
            .usable()
            .map(|hash| ("original", hash))
            .into_iter()
            .collect()
    }
}

/// PDQ with the query's eight rotations and mirror images looked up, as
/// `cordon match --dihedral` does; the bank holds the plain hash.
struct PdqDihedral;

impl EvalSignal for PdqDihedral {
    fn name(&self) -> &'static str {
        "pdq-dihedral"
    }

    fn default_threshold(&self) -> u32 {
        PDQ_THRESHOLD
    }

    fn bank_hashes(&self, image: &DecodedImage) -> Vec<PdqHash> {
        Pdq.bank_hashes(image)
    }

    fn query_hashes(&self, image: &DecodedImage) -> Vec<(&'static str, PdqHash)> {
        let hashes = PdqHasher::default().hash_dihedral(image);
        if hashes.quality < QUALITY_THRESHOLD {
            return Vec::new();
        }
        hashes
            .iter()
            .map(|(variant, hash)| (variant.name(), hash))
            .collect()
    }
}

/// PDQ of the picture with its borders, mats, bars and screenshot page trimmed, in all
/// eight orientations, beside the untrimmed hashes; the bank holds both too.
struct PdqTrimmed;

impl PdqTrimmed {
    /// The whole image's region, and the trimmed one when trimming found something.
    fn regions(image: &DecodedImage) -> Vec<Region> {
        let whole = Region::whole(image);
        let trimmed = trim_page(image);
        if trimmed == whole {
            vec![whole]
        } else {
            vec![whole, trimmed]
        }
    }
}

impl EvalSignal for PdqTrimmed {
    fn name(&self) -> &'static str {
        "pdq-trim"
    }

    fn default_threshold(&self) -> u32 {
        PDQ_THRESHOLD
    }

    fn bank_hashes(&self, image: &DecodedImage) -> Vec<PdqHash> {
        let hasher = PdqHasher::default();
        PdqTrimmed::regions(image)
            .into_iter()
            .filter_map(|region| hasher.hash_region(image, region).usable())
            .collect()
    }

    fn query_hashes(&self, image: &DecodedImage) -> Vec<(&'static str, PdqHash)> {
        let hasher = PdqHasher::default();
        PdqTrimmed::regions(image)
            .into_iter()
            .flat_map(|region| {
                let hashes = hasher.hash_dihedral_region(image, region);
                let usable = hashes.quality >= QUALITY_THRESHOLD;
                hashes
                    .iter()
                    .filter(move |_| usable)
                    .map(|(variant, hash)| (variant.name(), hash))
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

/// Local features with geometric verification.
struct Features;

impl EvalSignal for Features {
    fn name(&self) -> &'static str {
        "features"
    }

    fn default_threshold(&self) -> u32 {
        SignalType::Features.default_threshold()
    }

    fn bank_hashes(&self, _: &DecodedImage) -> Vec<PdqHash> {
        Vec::new()
    }

    fn query_hashes(&self, _: &DecodedImage) -> Vec<(&'static str, PdqHash)> {
        Vec::new()
    }

    fn bank_value(&self, image: &DecodedImage) -> SignalValue {
        SignalValue::Features(vec![features::extract(image)])
    }

    fn query_value(&self, image: &DecodedImage) -> SignalValue {
        let (features, mirrored) = features::extract_with_mirror(image);
        SignalValue::Features(vec![features, mirrored])
    }
}

/// What Cordon matches with, computed by the very code banks and lookups use
/// ([`BankSignals`], [`QuerySignals`]): PDQ (whole, trimmed, and as seen for pictures with
/// transparency) in every orientation, or local features, each at its default threshold.
/// Its distance is 0 for a match by either.
struct Cordon;

impl EvalSignal for Cordon {
    fn name(&self) -> &'static str {
        "cordon"
    }

    fn default_threshold(&self) -> u32 {
        0
    }

    fn bank_hashes(&self, _: &DecodedImage) -> Vec<PdqHash> {
        Vec::new()
    }

    fn query_hashes(&self, _: &DecodedImage) -> Vec<(&'static str, PdqHash)> {
        Vec::new()
    }

    fn bank_value(&self, image: &DecodedImage) -> SignalValue {
        let bank = BankSignals::of(image, &PdqHasher::default());
        let hashes = bank.usable_pdq().into_iter().chain(bank.other_pdq).collect();
        SignalValue::Any(vec![
            (SignalValue::Hashes(hashes), PDQ_THRESHOLD),
            (SignalValue::Features(bank.features), Features.default_threshold()),
        ])
    }

    fn query_value(&self, image: &DecodedImage) -> SignalValue {
        let query = QuerySignals::of(image, &PdqHasher::default(), QueryOptions::default());
        SignalValue::Any(vec![
            (
                SignalValue::Hashes(query.pdq.into_iter().map(|(_, hash)| hash).collect()),
                PDQ_THRESHOLD,
            ),
            (
                SignalValue::Features(query.features.into_iter().map(|(_, set)| set).collect()),
                Features.default_threshold(),
            ),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cordon_signals::PixelLayout;

    fn flat() -> DecodedImage {
        DecodedImage::from_pixels(64, 64, PixelLayout::Grey, vec![128; 64 * 64]).unwrap()
    }

    fn striped() -> DecodedImage {
        let pixels = (0..64 * 64)
            .map(|i| if (i % 64) / 8 % 2 == 0 { 30 } else { 220 })
            .collect();
        DecodedImage::from_pixels(64, 64, PixelLayout::Grey, pixels).unwrap()
    }

    #[test]
    fn names_are_unique() {
        let names: Vec<_> = all_signals().iter().map(|s| s.name()).collect();
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "{names:?}");
    }

    #[test]
    fn low_quality_images_give_no_hashes() {
        for signal in all_signals() {
            assert!(signal.bank_hashes(&flat()).is_empty(), "{}", signal.name());
            assert!(signal.query_hashes(&flat()).is_empty(), "{}", signal.name());
        }
    }

    #[test]
    fn dihedral_queries_hold_eight_variants_starting_with_the_plain_hash() {
        let image = striped();
        let plain = Pdq.query_hashes(&image);
        let all = PdqDihedral.query_hashes(&image);
        assert_eq!(plain.len(), 1);
        assert_eq!(all.len(), 8);
        assert_eq!(all[0], plain[0]);
        assert_eq!(Pdq.bank_hashes(&image), vec![plain[0].1]);
    }
}
