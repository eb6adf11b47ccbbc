//! Every signal the API computes from decoded pixels, on pixels of any size and content:
//! PDQ in all orientations, trimmed borders, PDQ of the trimmed picture and local
//! features with their mirror (`QuerySignals::of`; `BankSignals::of` runs a subset). The first two bytes are the width
//! and height less one (up to 256, where a real decoder would give thousands: the code
//! paths are the same, and small images are where the edge cases are), the third picks
//! RGB or grey; the rest are the pixels, repeated to fill the image.
#![no_main]

use cordon_engine::image_signals::{QueryOptions, QuerySignals};
use cordon_fuzz::{sample_rgb, write_seeds};
use cordon_signals::{DecodedImage, PdqHasher, PixelLayout, Region, trim_borders};
use libfuzzer_sys::fuzz_target;

/// The sample picture at a few sizes, alone and in a plain frame, and the thinnest images.
fn seeds() -> Vec<(String, Vec<u8>)> {
    let input = |width: u32, height: u32, grey: bool, pixels: Vec<u8>| {
        let mut input = vec![(width - 1) as u8, (height - 1) as u8, u8::from(grey)];
        input.extend(pixels);
        input
    };
    let framed = {
        let (width, height) = (96, 80);
        let inner = sample_rgb(64, 48);
        let mut pixels = vec![255; (width * height * 3) as usize];
        for y in 0..48 {
            let from = ((y + 16) * width + 16) as usize * 3;
            pixels[from..from + 64 * 3].copy_from_slice(&inner[(y * 64 * 3) as usize..][..64 * 3]);
        }
        input(width, height, false, pixels)
    };
    vec![
        (
            "sample-64x48".to_string(),
            input(64, 48, false, sample_rgb(64, 48)),
        ),
        (
            "sample-160x120".to_string(),
            input(160, 120, false, sample_rgb(160, 120)),
        ),
        ("framed".to_string(), framed),
        ("grey-1x256".to_string(), input(1, 256, true, (0..=255).collect())),
        ("rgb-256x1".to_string(), input(256, 1, false, (0..=255).collect())),
        ("plain-1x1".to_string(), input(1, 1, true, vec![128])),
    ]
}

fuzz_target!(init: write_seeds(seeds), |data: &[u8]| {
    let [width, height, layout, pixels @ ..] = data else {
        return;
    };
    let (width, height) = (u32::from(*width) + 1, u32::from(*height) + 1);
    let layout = if layout & 1 == 0 { PixelLayout::Rgb } else { PixelLayout::Grey };
    let len = (width * height) as usize * layout.channels();
    let filled: Vec<u8> = if pixels.is_empty() {
        vec![0; len]
    } else {
        pixels.iter().copied().cycle().take(len).collect()
    };
    let image = DecodedImage::from_pixels(width, height, layout, filled).expect("the buffer fits");

    let trimmed = trim_borders(&image);
    let whole = Region::whole(&image);
    assert!(trimmed.width > 0 && trimmed.height > 0);
    assert!(trimmed.left + trimmed.width <= whole.width && trimmed.top + trimmed.height <= whole.height);
    let hasher = PdqHasher::default();
    let query = QuerySignals::of(&image, &hasher, QueryOptions::default());
    assert!(query.quality <= 100);
});
