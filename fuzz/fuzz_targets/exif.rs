//! `cordon_signals::media::read_exif`: EXIF evidence from any container (JPEG, PNG, WebP,
//! TIFF, HEIF), as every submission and provenance question reads it.
#![no_main]

use cordon_fuzz::{sample_images, write_seeds};
use cordon_signals::media::read_exif;
use libfuzzer_sys::fuzz_target;

fuzz_target!(init: write_seeds(sample_images), |bytes: &[u8]| {
    if let Some(evidence) = read_exif(bytes) {
        assert!(!evidence.is_empty());
        if let Some((latitude, longitude)) = evidence.gps {
            assert!(latitude.is_finite() && longitude.is_finite());
        }
    }
});
