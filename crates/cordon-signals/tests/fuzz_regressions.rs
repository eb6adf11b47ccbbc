//! Inputs the fuzz targets (`fuzz/`) once failed on, run through the same entry points
//! and checks as the target that found them. Each file of `fuzz-regressions/<target>/` is
//! one input, exactly as the target read it; a name starting `too-many-pixels` says the
//! input must be refused from its headers.

use std::path::PathBuf;

use cordon_signals::{DecodeError, DecodeLimits, PdqHasher, decode};

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    cordon_testkit::fuzz_regressions(env!("CARGO_MANIFEST_DIR"), target)
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
