//! Decoding every supported format and colour model, and refusing every kind of bad
//! input with a precise error (never a panic).

use crate::common::{JpegKind, encode_jpeg, encode_with_image_crate, synthetic_photo};
use cordon_signals::{DecodeError, DecodeLimits, DecodedImage, ImageFormat, PdqHasher, PixelLayout, decode};
use cordon_testkit::bombs::{crc32, gif_declaring};
use image::{DynamicImage, ImageBuffer, Luma, LumaA, Rgb, Rgba};
use proptest::prelude::*;

const W: u32 = 240;
const H: u32 = 180;

fn rgb_fixture() -> (Vec<u8>, DecodedImage) {
    let pixels = synthetic_photo(W, H);
    let image = DecodedImage::from_pixels(W, H, PixelLayout::Rgb, pixels.clone()).unwrap();
    (pixels, image)
}

fn decode_ok(bytes: &[u8]) -> DecodedImage {
    decode(bytes, &DecodeLimits::default()).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn synthetic_fixture_is_a_hashable_photo() {
    let (_, image) = rgb_fixture();
    assert!(PdqHasher::default().hash(&image).quality >= 50);
}

#[test]
fn lossless_formats_give_back_the_exact_pixels() {
    let (pixels, original) = rgb_fixture();
    let rgb = DynamicImage::ImageRgb8(ImageBuffer::<Rgb<u8>, _>::from_raw(W, H, pixels.clone()).unwrap());
    for format in [
        image::ImageFormat::Png,
        image::ImageFormat::Bmp,
        image::ImageFormat::Tiff,
        image::ImageFormat::WebP,
    ] {
        let decoded = decode_ok(&encode_with_image_crate(&rgb, format));
        assert_eq!(decoded, original, "{format:?}");
    }
}

#[test]
fn alpha_is_dropped_not_composited_and_kept_beside() {
    let (pixels, original) = rgb_fixture();
    // Alpha from fully transparent to opaque: the colour underneath must still be hashed.
    let alpha: Vec<u8> = (0..W * H).map(|i| (i % 256) as u8).collect();
    let rgba: Vec<u8> = pixels
        .chunks_exact(3)
        .zip(&alpha)
        .flat_map(|(p, &a)| [p[0], p[1], p[2], a])
        .collect();
    let image = DynamicImage::ImageRgba8(ImageBuffer::<Rgba<u8>, _>::from_raw(W, H, rgba).unwrap());
    for format in [
        image::ImageFormat::Png,
        image::ImageFormat::WebP,
        image::ImageFormat::Tiff,
    ] {
        let decoded = decode_ok(&encode_with_image_crate(&image, format));
        assert_eq!(decoded.pixels(), original.pixels(), "{format:?}");
        assert_eq!(decoded.alpha(), Some(&alpha[..]), "{format:?}");
    }
    // Opaque everywhere: no opacity kept.
    let opaque = DynamicImage::ImageRgba8(ImageBuffer::from_fn(W, H, |x, y| {
        Rgba([x as u8, y as u8, 9, 255])
    }));
    assert_eq!(
        decode_ok(&encode_with_image_crate(&opaque, image::ImageFormat::Png)).alpha(),
        None
    );
}

#[test]
fn a_transparent_picture_composites_over_a_plain_background() {
    // Black drawn with opacity 0, 51 and 255 over white 255, grey 128 and black 0.
    let grey_alpha =
        DynamicImage::ImageLumaA8(ImageBuffer::from_raw(3, 1, vec![0, 0, 0, 51, 0, 255]).unwrap());
    let decoded = decode_ok(&encode_with_image_crate(&grey_alpha, image::ImageFormat::Png));
    assert_eq!(decoded.pixels(), [0, 0, 0], "the colour under the opacity");
    for (background, shown) in [(255, [255, 204, 0]), (128, [128, 102, 0]), (0, [0, 0, 0])] {
        let over = decoded.composited_over(background).unwrap();
        assert_eq!(over.pixels(), shown, "over {background}");
        assert_eq!((over.layout(), over.alpha()), (PixelLayout::Grey, None));
    }
    assert_eq!(
        rgb_fixture().1.composited_over(128),
        None,
        "opaque: shown as it is"
    );
}

#[test]
fn sixteen_bit_samples_keep_their_high_byte() {
    let (pixels, original) = rgb_fixture();
    // High byte v, low byte 200: rounding instead of truncating would give v + 1.
    let wide: Vec<u16> = pixels.iter().map(|&v| (u16::from(v) << 8) | 200).collect();
    let image = DynamicImage::ImageRgb16(ImageBuffer::<Rgb<u16>, _>::from_raw(W, H, wide).unwrap());
    assert_eq!(
        decode_ok(&encode_with_image_crate(&image, image::ImageFormat::Png)),
        original
    );
}

#[test]
fn grey_stays_one_channel() {
    let grey: Vec<u8> = synthetic_photo(W, H).chunks_exact(3).map(|p| p[1]).collect();
    let expected = DecodedImage::from_pixels(W, H, PixelLayout::Grey, grey.clone()).unwrap();
    let l8 = DynamicImage::ImageLuma8(ImageBuffer::<Luma<u8>, _>::from_raw(W, H, grey.clone()).unwrap());
    assert_eq!(
        decode_ok(&encode_with_image_crate(&l8, image::ImageFormat::Png)),
        expected
    );
    let la: Vec<u8> = grey.iter().flat_map(|&g| [g, 7]).collect();
    let la8 = DynamicImage::ImageLumaA8(ImageBuffer::<LumaA<u8>, _>::from_raw(W, H, la).unwrap());
    let with_alpha = decode_ok(&encode_with_image_crate(&la8, image::ImageFormat::Png));
    assert_eq!(
        (with_alpha.layout(), with_alpha.pixels()),
        (PixelLayout::Grey, expected.pixels())
    );
    let wide: Vec<u16> = grey.iter().map(|&g| u16::from(g) << 8 | 0xff).collect();
    let l16 = DynamicImage::ImageLuma16(ImageBuffer::<Luma<u16>, _>::from_raw(W, H, wide).unwrap());
    assert_eq!(
        decode_ok(&encode_with_image_crate(&l16, image::ImageFormat::Png)),
        expected
    );

    // A greyscale JPEG decodes to one channel close to what was encoded.
    let decoded = decode_ok(&encode_jpeg(&grey, W, H, JpegKind::Grey));
    assert_eq!(
        (decoded.width(), decoded.height(), decoded.layout()),
        (W, H, PixelLayout::Grey)
    );
    let hasher = PdqHasher::default();
    let d = hasher.hash(&decoded).hash.distance(&hasher.hash(&expected).hash);
    assert!(d <= 16, "grey JPEG is {d} bits from its source");
}

#[test]
fn progressive_jpeg_decodes_to_the_same_pixels_as_baseline() {
    let pixels = synthetic_photo(W, H);
    let baseline = encode_jpeg(&pixels, W, H, JpegKind::Baseline);
    let progressive = encode_jpeg(&pixels, W, H, JpegKind::Progressive);
    assert_ne!(baseline, progressive);
    assert_eq!(decode_ok(&baseline), decode_ok(&progressive));
}

#[test]
fn gif_contributes_its_first_frame() {
    let (pixels, original) = rgb_fixture();
    let rgb = DynamicImage::ImageRgb8(ImageBuffer::<Rgb<u8>, _>::from_raw(W, H, pixels).unwrap());
    let decoded = decode_ok(&encode_with_image_crate(&rgb, image::ImageFormat::Gif));
    assert_eq!(
        (decoded.width(), decoded.height(), decoded.layout()),
        (W, H, PixelLayout::Rgb)
    );
    // GIF quantises to 256 colours: close to the source, not equal.
    let hasher = PdqHasher::default();
    assert!(hasher.hash(&decoded).hash.distance(&hasher.hash(&original).hash) <= 24);
}

// ---- bad input -------------------------------------------------------------------------

fn every_format_fixture() -> Vec<(ImageFormat, Vec<u8>)> {
    static FIXTURES: std::sync::OnceLock<Vec<(ImageFormat, Vec<u8>)>> = std::sync::OnceLock::new();
    FIXTURES.get_or_init(encode_every_format).clone()
}

fn encode_every_format() -> Vec<(ImageFormat, Vec<u8>)> {
    let pixels = synthetic_photo(W, H);
    let rgb = DynamicImage::ImageRgb8(ImageBuffer::<Rgb<u8>, _>::from_raw(W, H, pixels.clone()).unwrap());
    vec![
        (ImageFormat::Jpeg, encode_jpeg(&pixels, W, H, JpegKind::Baseline)),
        (
            ImageFormat::Jpeg,
            encode_jpeg(&pixels, W, H, JpegKind::Progressive),
        ),
        (
            ImageFormat::Png,
            encode_with_image_crate(&rgb, image::ImageFormat::Png),
        ),
        (
            ImageFormat::Webp,
            encode_with_image_crate(&rgb, image::ImageFormat::WebP),
        ),
        (
            ImageFormat::Gif,
            encode_with_image_crate(&rgb, image::ImageFormat::Gif),
        ),
        (
            ImageFormat::Bmp,
            encode_with_image_crate(&rgb, image::ImageFormat::Bmp),
        ),
        (
            ImageFormat::Tiff,
            encode_with_image_crate(&rgb, image::ImageFormat::Tiff),
        ),
    ]
}

/// Leaves spare pixel buffers (larger than any fixture) full of `byte` for the next decodes.
fn leave_spare_buffers_of(byte: u8) {
    let images: Vec<_> = (0..8)
        .map(|_| {
            DecodedImage::from_pixels(W * 2, H * 2, PixelLayout::Rgb, vec![byte; (W * H * 12) as usize])
                .unwrap()
        })
        .collect();
    drop(images);
}

#[test]
fn a_reused_pixel_buffer_leaves_no_trace_of_the_image_before() {
    // Decoders write into buffers kept from earlier images without clearing them first:
    // whatever was there, the pixels must come out the same.
    for (format, bytes) in every_format_fixture() {
        leave_spare_buffers_of(0x00);
        let after_zeros = decode_ok(&bytes);
        leave_spare_buffers_of(0xff);
        let after_ones = decode_ok(&bytes);
        assert_eq!(after_zeros, after_ones, "{format:?}");
    }
}

#[test]
fn empty_and_unknown_inputs_are_refused() {
    let limits = DecodeLimits::default();
    assert_eq!(decode(b"", &limits), Err(DecodeError::Empty));
    assert_eq!(decode(b"hello, world", &limits), Err(DecodeError::UnknownFormat));
    assert_eq!(decode(b"%PDF-1.7 ...", &limits), Err(DecodeError::UnknownFormat));
}

#[test]
fn truncated_files_of_every_format_are_refused_by_name() {
    for (format, bytes) in every_format_fixture() {
        // Cut inside the header and inside the pixel data.
        for keep in [bytes.len() / 2, bytes.len() * 3 / 4, 40.min(bytes.len() - 1)] {
            let error = decode(&bytes[..keep], &DecodeLimits::default()).expect_err(&format!(
                "{format:?} cut to {keep} of {} bytes decoded",
                bytes.len()
            ));
            let message = error.to_string();
            assert!(
                matches!(
                    error,
                    DecodeError::Truncated { .. } | DecodeError::CorruptFormat { .. }
                ),
                "{format:?} cut to {keep}: {message}"
            );
            assert!(message.contains(&format!("{format:?}")), "{message}");
        }
    }
}

#[test]
fn a_truncated_jpeg_says_it_is_truncated() {
    let pixels = synthetic_photo(W, H);
    let bytes = encode_jpeg(&pixels, W, H, JpegKind::Baseline);
    let error = decode(&bytes[..bytes.len() * 2 / 3], &DecodeLimits::default()).unwrap_err();
    assert!(
        matches!(
            error,
            DecodeError::Truncated {
                format: ImageFormat::Jpeg,
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn byte_limit_is_checked_before_parsing() {
    let bytes = every_format_fixture().remove(0).1;
    let limits = DecodeLimits {
        max_bytes: bytes.len() as u64 - 1,
        ..DecodeLimits::default()
    };
    assert_eq!(
        decode(&bytes, &limits),
        Err(DecodeError::TooManyBytes {
            size: bytes.len() as u64,
            limit: bytes.len() as u64 - 1
        })
    );
}

#[test]
fn pixel_limit_is_checked_for_every_format() {
    let limits = DecodeLimits {
        max_pixels: u64::from(W * H) - 1,
        ..DecodeLimits::default()
    };
    for (format, bytes) in every_format_fixture() {
        assert_eq!(
            decode(&bytes, &limits),
            Err(DecodeError::TooManyPixels {
                width: W,
                height: H,
                limit: limits.max_pixels
            }),
            "{format:?}"
        );
    }
}

/// A PNG whose header claims 60000x60000 (3.6 gigapixels) is refused from the header
/// alone: decoding it would need 10 GB.
#[test]
fn decompression_bomb_headers_are_refused_before_decoding() {
    let tiny = DynamicImage::ImageRgb8(ImageBuffer::<Rgb<u8>, _>::from_raw(1, 1, vec![1, 2, 3]).unwrap());
    let mut png = encode_with_image_crate(&tiny, image::ImageFormat::Png);
    // IHDR: length (4) + type (4) at offset 8, data at 16..29, CRC at 29..33.
    png[16..20].copy_from_slice(&60000u32.to_be_bytes());
    png[20..24].copy_from_slice(&60000u32.to_be_bytes());
    let crc = crc32(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    assert!(matches!(
        decode(&png, &DecodeLimits::default()),
        Err(DecodeError::TooManyPixels {
            width: 60000,
            height: 60000,
            ..
        })
    ));

    // The same for a JPEG frame header (SOF0: FF C0, length, precision, height, width).
    let mut jpeg = encode_jpeg(&synthetic_photo(16, 16), 16, 16, JpegKind::Baseline);
    let sof = jpeg.windows(2).position(|w| w == [0xff, 0xc0]).unwrap();
    jpeg[sof + 5..sof + 7].copy_from_slice(&60000u16.to_be_bytes());
    jpeg[sof + 7..sof + 9].copy_from_slice(&60000u16.to_be_bytes());
    assert!(matches!(
        decode(&jpeg, &DecodeLimits::default()),
        Err(DecodeError::TooManyPixels {
            width: 60000,
            height: 60000,
            ..
        })
    ));

    // A GIF's first frame far larger than its 1x1 screen (found by `fuzz/`: the frame is
    // decoded whole before it is cut to the screen): refused from the frame's descriptor.
    let mut gif = gif_declaring(1, 1, 1);
    // Signature, screen, flags, colour table (19 bytes); separator, left, top; then the size.
    gif[24..26].copy_from_slice(&14000u16.to_le_bytes());
    gif[26..28].copy_from_slice(&14000u16.to_le_bytes());
    assert!(matches!(
        decode(&gif, &DecodeLimits::default()),
        Err(DecodeError::TooManyPixels {
            width: 14000,
            height: 14000,
            ..
        })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    /// Damaged files (bytes overwritten, then cut) give an image or an error, never a panic.
    #[test]
    fn damaged_files_never_panic(
        which in 0usize..7,
        edits in prop::collection::vec((0.0f64..1.0, any::<u8>()), 1..8),
        keep in 0.05f64..1.0,
    ) {
        let (_, mut bytes) = every_format_fixture().swap_remove(which);
        for (at, value) in edits {
            let index = ((bytes.len() - 1) as f64 * at) as usize;
            bytes[index] = value;
        }
        bytes.truncate(((bytes.len() as f64) * keep) as usize);
        let _ = decode(&bytes, &DecodeLimits { max_pixels: 4_000_000, ..DecodeLimits::default() });
    }
}
