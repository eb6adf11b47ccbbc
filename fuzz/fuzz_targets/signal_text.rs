//! The signals' text forms, as banks, hash lists, the CLI and the API read them:
//! `PdqHash` from hex, `FeatureSet` from `f1:` base64, `SignalType::from_name`,
//! `SignalType::canonical` and `canonical_signal` for every type. The first byte picks
//! the signal type; the rest is the text.
//!
//! Besides never panicking: text that parses prints back to text that parses to the same
//! value (the canonical form is a fixed point), and a parsed feature set, however odd,
//! goes through the geometric verification that matching runs on stored sets.
#![no_main]

use cordon_engine::hash_list::canonical_signal;
use cordon_fuzz::{sample_features, write_seeds};
use cordon_signals::features::{FeatureSet, verify};
use cordon_signals::{PdqHash, SignalType};
use libfuzzer_sys::fuzz_target;

/// A text of each kind, behind the byte that picks its type (0 PDQ, 1 features).
fn seeds() -> Vec<(String, Vec<u8>)> {
    let hex = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22";
    let texts = [
        ("pdq", 0u8, hex.to_string()),
        ("pdq-upper", 0, hex.to_uppercase()),
        ("features", 1, sample_features()),
        ("features-empty", 1, "f1:".to_string()),
        ("name", 0, "features".to_string()),
    ];
    texts
        .into_iter()
        .map(|(name, selector, text)| {
            let mut input = vec![selector];
            input.extend(text.into_bytes());
            (name.to_string(), input)
        })
        .collect()
}

fuzz_target!(init: write_seeds(seeds), |data: &[u8]| {
    let Some((&selector, text)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    let signal_type = SignalType::ALL[usize::from(selector) % SignalType::ALL.len()];
    assert_eq!(SignalType::from_name(signal_type.name()), Some(signal_type));
    if let Some(named) = SignalType::from_name(text) {
        assert_eq!(named.name(), text);
    }

    if let Ok(hash) = text.parse::<PdqHash>() {
        let hex = hash.to_hex();
        assert_eq!(hex.parse::<PdqHash>().ok(), Some(hash));
        assert_eq!(hex, text.to_ascii_lowercase());
    }
    if let Ok(set) = text.parse::<FeatureSet>() {
        assert_eq!(set.keypoints.len(), set.descriptors.len());
        assert_eq!(set.to_string().parse::<FeatureSet>().as_ref(), Ok(&set));
        let found = verify(&set, &set);
        assert!(found.inliers <= found.pairs && found.pairs as usize <= set.len());
    }

    let canonical = signal_type.canonical(text);
    let through_lists = canonical_signal(signal_type.name(), text);
    assert_eq!(canonical.as_ref().ok(), through_lists.as_ref().ok().map(|s| &s.value));
    if let Ok(canonical) = canonical {
        assert_eq!(signal_type.canonical(&canonical).as_ref(), Ok(&canonical));
    }
});
