//! The signal types Cordon computes from images, by name: what banks, hash lists, the
//! CLI and the API call them, their default match thresholds, and their canonical text.

use crate::features::{self, FeatureSet};
use crate::pdq::PdqHash;

/// An image signal type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SignalType {
    /// PDQ: one 256-bit hash of the whole picture; distance in bits.
    Pdq,
    /// Local features (see [`crate::features`]); distance 100 minus the keypoint pairs
    /// that agree on one transformation.
    Features,
}

impl SignalType {
    pub const ALL: [SignalType; 2] = [SignalType::Pdq, SignalType::Features];

    pub const fn name(self) -> &'static str {
        match self {
            SignalType::Pdq => "pdq",
            SignalType::Features => "features",
        }
    }

    pub fn from_name(name: &str) -> Option<SignalType> {
        SignalType::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The largest distance that matches unless a bank says otherwise.
    pub const fn default_threshold(self) -> u32 {
        match self {
            SignalType::Pdq => 31,
            SignalType::Features => features::DEFAULT_THRESHOLD,
        }
    }

    /// The canonical text of a value to bank, or why it is not one of this type or not
    /// one to bank.
    pub fn canonical(self, value: &str) -> Result<String, String> {
        match self {
            SignalType::Pdq => match value.parse::<PdqHash>() {
                Err(e) => Err(format!("bad pdq signal {}: {e}", quoted_excerpt(value))),
                // Every black picture, and every one too small to hash, hashes to zero
                // (quality 0): banked, it would match them all.
                Ok(hash) if hash == PdqHash::ZERO => Err(
                    "the all-zero pdq signal is not banked: every black picture and every one too small \
                     to hash gives it, so it would match them all"
                        .to_string(),
                ),
                Ok(hash) => Ok(hash.to_hex()),
            },
            SignalType::Features => match value.parse::<FeatureSet>() {
                Err(e) => Err(format!("bad features signal: {e}")),
                // Verification needs this many agreeing keypoints: banked, a smaller set
                // would sit in the index without ever matching anything.
                Ok(set) if set.len() < features::MIN_INLIERS as usize => Err(format!(
                    "a features signal of {} keypoints is not banked: a match takes {} agreeing ones, \
                     so it could never match",
                    set.len(),
                    features::MIN_INLIERS
                )),
                Ok(set) => Ok(set.to_string()),
            },
        }
    }

    /// The names of every type, for messages.
    pub fn names() -> String {
        SignalType::ALL.map(SignalType::name).join(", ")
    }
}

/// How much of an input a message quotes.
const EXCERPT_CHARS: usize = 80;

/// `text` quoted for a message, cut to its first `EXCERPT_CHARS` characters (saying how
/// long it was) when longer: a bad value can be megabytes, and a message that repeats it
/// whole floods logs and answers.
pub fn quoted_excerpt(text: &str) -> String {
    match text.char_indices().nth(EXCERPT_CHARS) {
        None => format!("{text:?}"),
        Some((cut, _)) => format!("{:?}… ({} bytes)", &text[..cut], text.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_values_are_checked() {
        for signal_type in SignalType::ALL {
            assert_eq!(SignalType::from_name(signal_type.name()), Some(signal_type));
        }
        assert_eq!(SignalType::from_name("md5"), None);
        let hex = "F8F8F0CEE0F4A84F06370A22038F63F0B36E2ED596621E1D33E6B39C4E9C9B22";
        assert_eq!(SignalType::Pdq.canonical(hex).unwrap(), hex.to_lowercase());
        assert!(SignalType::Pdq.canonical("f1:AAAA").is_err());
        let zero = SignalType::Pdq.canonical(&"0".repeat(64)).unwrap_err();
        assert!(zero.contains("all-zero"), "{zero}");
        assert!(SignalType::Features.canonical(hex).is_err());
        let empty = SignalType::Features.canonical("f1:").unwrap_err();
        assert!(empty.contains("0 keypoints"), "{empty}");
    }

    #[test]
    fn messages_quote_a_long_value_cut_short() {
        assert_eq!(quoted_excerpt("abc"), "\"abc\"");
        let long = "é".repeat(1000);
        let quoted = quoted_excerpt(&long);
        assert!(
            quoted.starts_with(&format!("\"{}\"…", "é".repeat(80))),
            "{quoted}"
        );
        assert!(quoted.ends_with("(2000 bytes)"), "{quoted}");
        let error = SignalType::Pdq.canonical(&"a".repeat(1 << 20)).unwrap_err();
        assert!(error.len() < 300, "{error}");
    }
}
