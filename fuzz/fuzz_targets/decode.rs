//! `cordon_signals::decode` on arbitrary bytes (every format `ImageFormat::sniff` knows),
//! then PDQ of what decodes. The other signals of decoded pixels are the `signals`
//! target's: computing them here would slow this one down a hundredfold.
#![no_main]

use cordon_fuzz::{sample_images, write_seeds};
use cordon_signals::{DecodeLimits, ImageFormat, PdqHasher, decode};
use libfuzzer_sys::fuzz_target;

/// Small enough that a decompression bomb the limits miss shows up as an OOM or a timeout
/// (libFuzzer's default RSS limit is 2 GB), large enough for every real header layout.
const LIMITS: DecodeLimits = DecodeLimits {
    max_bytes: 4 << 20,
    max_pixels: 4_000_000,
};

fuzz_target!(init: write_seeds(sample_images), |bytes: &[u8]| {
    let format = ImageFormat::sniff(bytes);
    let Ok(image) = decode(bytes, &LIMITS) else {
        return;
    };
    // What decodes was sniffed as something, and stays within the limits.
    assert!(format.is_some());
    let pixels = u64::from(image.width()) * u64::from(image.height());
    assert!(pixels > 0 && pixels <= LIMITS.max_pixels);
    assert_eq!(
        image.pixels().len() as u64,
        pixels * image.layout().channels() as u64
    );
    let digest = PdqHasher::default().hash(&image);
    assert!(digest.quality <= 100);
});
