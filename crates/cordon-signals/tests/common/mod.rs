//! Access to the shared reference vectors (`shared/testdata/pdq-reference`), read in place.

#![allow(dead_code)]

use std::path::PathBuf;

use cordon_signals::{DecodeLimits, DecodedImage, PdqHash};

/// `$CORDON_SHARED/testdata/pdq-reference`, or the `shared/` folder beside the checkout.
pub fn reference_dir() -> PathBuf {
    let shared = std::env::var_os("CORDON_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    let dir = shared.join("testdata/pdq-reference");
    assert!(
        dir.join("README.md").is_file(),
        "reference vectors not found at {}; set CORDON_SHARED to the shared/ folder",
        dir.display()
    );
    dir
}

/// Rows of a CSV file with a header, as maps from column name to value. The reference
/// CSVs hold no quoted commas.
pub fn read_csv(relative: &str) -> Vec<std::collections::HashMap<String, String>> {
    let path = reference_dir().join(relative);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .expect("header")
        .split(',')
        .map(str::to_string)
        .collect();
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            header
                .iter()
                .cloned()
                .zip(line.split(',').map(str::to_string))
                .collect()
        })
        .collect()
}

pub fn decode_file(relative: &str) -> DecodedImage {
    let path = reference_dir().join(relative);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    cordon_signals::decode(&bytes, &DecodeLimits::default())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn hash(text: &str) -> PdqHash {
    text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
}

/// `count x distance` lines, for the log of a test run.
pub fn histogram(distances: &[u32]) -> String {
    let mut counts = std::collections::BTreeMap::new();
    for &d in distances {
        *counts.entry(d).or_insert(0) += 1;
    }
    counts
        .iter()
        .map(|(d, n)| format!("{n} at {d} bits"))
        .collect::<Vec<_>>()
        .join(", ")
}
