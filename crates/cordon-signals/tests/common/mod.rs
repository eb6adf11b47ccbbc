//! Access to the shared reference vectors (`shared/testdata/pdq-reference`), read in place.

#![allow(dead_code)]

use cordon_signals::{DecodeLimits, DecodedImage, PdqHash};

pub use cordon_testkit::reference_dir;

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

/// A photo-like RGB test image: smooth gradients, a few hard-edged shapes and fine
/// texture, so its PDQ quality is high and a one-level pixel change can show in the hash.
pub fn synthetic_photo(width: u32, height: u32) -> Vec<u8> {
    let mut pixels = Vec::with_capacity((width * height * 3) as usize);
    for y in 0..height {
        for x in 0..width {
            let (fx, fy) = (x as f32 / width as f32, y as f32 / height as f32);
            let disc = ((fx - 0.35).powi(2) + (fy - 0.4).powi(2)) < 0.04;
            let bar = (0.6..0.8).contains(&fx) && fy > 0.2;
            let texture = ((x * 7 + y * 13) % 17) as f32;
            let r = if disc { 230.0 } else { 40.0 + 150.0 * fx + texture };
            let g = if bar { 20.0 } else { 60.0 + 120.0 * fy + texture };
            let b = 90.0 + 80.0 * (fx * 6.0).sin() * (fy * 4.0).cos();
            pixels.extend([r, g, b].map(|v| v.clamp(0.0, 255.0) as u8));
        }
    }
    pixels
}

/// How `encode_jpeg` writes its input.
#[derive(Clone, Copy)]
pub enum JpegKind {
    Baseline,
    Progressive,
    /// One-channel input, written as a greyscale JPEG.
    Grey,
}

/// Encodes pixels with libjpeg-turbo (quality 90, 4:2:0 colour), for fixtures.
pub fn encode_jpeg(pixels: &[u8], width: u32, height: u32, kind: JpegKind) -> Vec<u8> {
    use std::ffi::c_int;
    use turbojpeg_sys as tj;
    let (format, subsamp) = match kind {
        JpegKind::Grey => (tj::TJPF_TJPF_GRAY, tj::TJSAMP_TJSAMP_GRAY),
        _ => (tj::TJPF_TJPF_RGB, tj::TJSAMP_TJSAMP_420),
    };
    // SAFETY: a fresh handle, valid buffers of the stated sizes, and the output buffer that
    // TurboJPEG allocates is copied and freed with tj3Free before the handle is destroyed.
    unsafe {
        let handle = tj::tj3Init(tj::TJINIT_TJINIT_COMPRESS as c_int);
        assert!(!handle.is_null());
        tj::tj3Set(handle, tj::TJPARAM_TJPARAM_QUALITY as c_int, 90);
        tj::tj3Set(handle, tj::TJPARAM_TJPARAM_SUBSAMP as c_int, subsamp);
        let progressive = matches!(kind, JpegKind::Progressive) as c_int;
        tj::tj3Set(handle, tj::TJPARAM_TJPARAM_PROGRESSIVE as c_int, progressive);
        let mut out: *mut u8 = std::ptr::null_mut();
        let mut size: tj::size_t = 0;
        let status = tj::tj3Compress8(
            handle,
            pixels.as_ptr(),
            width as c_int,
            0,
            height as c_int,
            format as c_int,
            &mut out,
            &mut size,
        );
        assert_eq!(status, 0, "tj3Compress8 failed");
        let jpeg = std::slice::from_raw_parts(out, size as usize).to_vec();
        tj::tj3Free(out.cast());
        tj::tj3Destroy(handle);
        jpeg
    }
}

/// Encodes an `image` buffer in one of the crate's formats, for fixtures.
pub fn encode_with_image_crate(image: &image::DynamicImage, format: image::ImageFormat) -> Vec<u8> {
    let mut bytes = std::io::Cursor::new(Vec::new());
    image
        .write_to(&mut bytes, format)
        .unwrap_or_else(|e| panic!("{format:?}: {e}"));
    bytes.into_inner()
}
