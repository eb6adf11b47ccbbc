//! Inputs the fuzz targets (`fuzz/`) once failed on, run through the same entry points
//! and checks as the target that found them. Each file of `fuzz-regressions/<target>/` is
//! one input, exactly as the target read it; a name starting `too-many-pixels` says the
//! input must be refused from its headers.

use std::path::{Path, PathBuf};

use cordon_signals::{DecodeError, DecodeLimits, PdqHasher, decode};

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz-regressions")
        .join(target);
    let mut inputs: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "no inputs in {}", dir.display());
    inputs
}

/// The `decode` target's limits.
const LIMITS: DecodeLimits = DecodeLimits {
    max_bytes: 4 << 20,
    max_pixels: 4_000_000,
};

/// The `decode` target: `decode`, then PDQ of what decodes.
#[test]
fn decode_target() {
    for (path, bytes) in inputs("decode") {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let decoded = decode(&bytes, &LIMITS);
        if name.starts_with("too-many-pixels") {
            assert!(
                matches!(decoded, Err(DecodeError::TooManyPixels { .. })),
                "{name}: {decoded:?}"
            );
        }
        if let Ok(image) = decoded {
            PdqHasher::default().hash(&image);
        }
    }
}
