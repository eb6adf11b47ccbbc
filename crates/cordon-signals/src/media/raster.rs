//! PNG, WebP, GIF, BMP and TIFF through the `image` crate.

use std::io::Cursor;

use image::{DynamicImage, ImageError, ImageReader, Limits, error::LimitErrorKind};

use super::{DecodeError, DecodeLimits, DecodedImage, ImageFormat, PixelLayout, check_dimensions};

/// Decoders allocate more than the final pixels (rows in flight, 16-bit samples, a GIF
/// canvas); this much headroom over RGBA16 at the pixel limit is allowed.
const ALLOC_HEADROOM: u64 = 64 << 20;

pub(super) fn decode(
    bytes: &[u8],
    format: ImageFormat,
    limits: &DecodeLimits,
) -> Result<DecodedImage, DecodeError> {
    let crate_format = match format {
        ImageFormat::Png => image::ImageFormat::Png,
        ImageFormat::Webp => image::ImageFormat::WebP,
        ImageFormat::Gif => image::ImageFormat::Gif,
        ImageFormat::Bmp => image::ImageFormat::Bmp,
        ImageFormat::Tiff => image::ImageFormat::Tiff,
        ImageFormat::Jpeg => {
            return Err(DecodeError::Unsupported {
                format,
                detail: "JPEG is decoded by libjpeg-turbo, not here".to_string(),
            });
        }
    };
    let reader = || {
        let mut reader = ImageReader::with_format(Cursor::new(bytes), crate_format);
        let mut crate_limits = Limits::default();
        crate_limits.max_alloc = Some(limits.max_pixels.saturating_mul(8).saturating_add(ALLOC_HEADROOM));
        reader.limits(crate_limits);
        reader
    };
    let (width, height) = reader()
        .into_dimensions()
        .map_err(|e| convert_error(e, format, limits))?;
    check_dimensions(width, height, format, limits)?;
    if format == ImageFormat::Gif {
        check_gif_frame(bytes, limits)?;
    }
    let image = reader().decode().map_err(|e| convert_error(e, format, limits))?;
    to_decoded(image)
}

/// A GIF's first frame may be far larger than its logical screen, which is all the header
/// check sees: the `image` crate decodes that frame whole into a buffer of its own (up to
/// its allocation limit, hundreds of MB at the default pixel limit) before cutting it to the
/// screen. So a few bytes declaring a 1x1 screen could cost that much; the frame is
/// refused from its descriptor instead.
fn check_gif_frame(bytes: &[u8], limits: &DecodeLimits) -> Result<(), DecodeError> {
    match gif_first_frame(bytes) {
        Some((width, height)) if u64::from(width) * u64::from(height) > limits.max_pixels => {
            Err(DecodeError::TooManyPixels {
                width,
                height,
                limit: limits.max_pixels,
            })
        }
        // No frame found: the decoder reports what is wrong.
        _ => Ok(()),
    }
}

/// The size in the first image descriptor of a GIF, found by walking its blocks (the
/// screen descriptor, the global colour table, extensions) without decoding anything.
fn gif_first_frame(bytes: &[u8]) -> Option<(u32, u32)> {
    let u16_at = |at: usize| {
        Some(u32::from(u16::from_le_bytes([
            *bytes.get(at)?,
            *bytes.get(at + 1)?,
        ])))
    };
    // Signature (6 bytes), then the logical screen descriptor (7).
    let flags = *bytes.get(10)?;
    let mut at = 13;
    if flags & 0x80 != 0 {
        at += 3 << ((flags & 0x07) + 1);
    }
    loop {
        match *bytes.get(at)? {
            // Image descriptor: separator, left, top, width, height.
            0x2c => return Some((u16_at(at + 5)?, u16_at(at + 7)?)),
            // Extension: introducer, label, then data sub-blocks up to an empty one.
            0x21 => {
                at += 2;
                loop {
                    let length = usize::from(*bytes.get(at)?);
                    at += 1 + length;
                    if length == 0 {
                        break;
                    }
                }
            }
            // The trailer, or a block the decoder refuses anyway.
            _ => return None,
        }
    }
}

/// Drops alpha from the pixels (keeping it beside them), keeps grey as grey, keeps the
/// high byte of 16-bit samples.
fn to_decoded(image: DynamicImage) -> Result<DecodedImage, DecodeError> {
    let (width, height) = (image.width(), image.height());
    let alpha = match &image {
        DynamicImage::ImageLumaA8(grey_alpha) => Some(alpha_of::<u8>(grey_alpha.as_raw(), 2)),
        DynamicImage::ImageRgba8(rgba) => Some(alpha_of::<u8>(rgba.as_raw(), 4)),
        DynamicImage::ImageLumaA16(grey_alpha) => Some(alpha_of::<u16>(grey_alpha.as_raw(), 2)),
        DynamicImage::ImageRgba16(rgba) => Some(alpha_of::<u16>(rgba.as_raw(), 4)),
        _ => None,
    };
    let (layout, pixels) = match image {
        DynamicImage::ImageLuma8(grey) => (PixelLayout::Grey, grey.into_raw()),
        DynamicImage::ImageLumaA8(grey_alpha) => {
            (PixelLayout::Grey, keep_channels::<u8>(grey_alpha.as_raw(), 2, 1))
        }
        DynamicImage::ImageRgb8(rgb) => (PixelLayout::Rgb, rgb.into_raw()),
        DynamicImage::ImageRgba8(rgba) => (PixelLayout::Rgb, keep_channels::<u8>(rgba.as_raw(), 4, 3)),
        DynamicImage::ImageLuma16(grey) => (PixelLayout::Grey, keep_channels::<u16>(grey.as_raw(), 1, 1)),
        DynamicImage::ImageLumaA16(grey_alpha) => {
            (PixelLayout::Grey, keep_channels::<u16>(grey_alpha.as_raw(), 2, 1))
        }
        DynamicImage::ImageRgb16(rgb) => (PixelLayout::Rgb, keep_channels::<u16>(rgb.as_raw(), 3, 3)),
        DynamicImage::ImageRgba16(rgba) => (PixelLayout::Rgb, keep_channels::<u16>(rgba.as_raw(), 4, 3)),
        // Float samples (32-bit TIFF): the crate's own conversion, clamped to 0..=255.
        other => (PixelLayout::Rgb, other.to_rgb8().into_raw()),
    };
    let image = DecodedImage::from_pixels(width, height, layout, pixels)?;
    match alpha {
        Some(alpha) => image.with_alpha(alpha),
        None => Ok(image),
    }
}

/// The last of every `stride` samples, cut to 8 bits: the opacity.
fn alpha_of<T: HighByte>(samples: &[T], stride: usize) -> Vec<u8> {
    samples
        .chunks_exact(stride)
        .map(|pixel| pixel[stride - 1].high_byte())
        .collect()
}

/// A sample type reduced to 8 bits by keeping its high byte.
trait HighByte: Copy {
    fn high_byte(self) -> u8;
}

impl HighByte for u8 {
    fn high_byte(self) -> u8 {
        self
    }
}

impl HighByte for u16 {
    fn high_byte(self) -> u8 {
        (self >> 8) as u8
    }
}

/// The first `keep` of every `stride` samples, each cut to 8 bits.
fn keep_channels<T: HighByte>(samples: &[T], stride: usize, keep: usize) -> Vec<u8> {
    samples
        .chunks_exact(stride)
        .flat_map(|pixel| pixel[..keep].iter().map(|s| s.high_byte()))
        .collect()
}

fn convert_error(error: ImageError, format: ImageFormat, limits: &DecodeLimits) -> DecodeError {
    match error {
        ImageError::Limits(limit) => match limit.kind() {
            LimitErrorKind::InsufficientMemory => DecodeError::Unsupported {
                format,
                detail: format!(
                    "decoding needs more memory than {} pixels allow",
                    limits.max_pixels
                ),
            },
            _ => DecodeError::Unsupported {
                format,
                detail: limit.to_string(),
            },
        },
        ImageError::Unsupported(detail) => DecodeError::Unsupported {
            format,
            detail: detail.to_string(),
        },
        ImageError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => DecodeError::Truncated {
            format,
            detail: io.to_string(),
        },
        other => {
            let detail = other.to_string();
            if is_truncation(&detail) {
                DecodeError::Truncated { format, detail }
            } else {
                DecodeError::CorruptFormat { format, detail }
            }
        }
    }
}

/// The decoders report running out of input in their own words.
fn is_truncation(detail: &str) -> bool {
    let lower = detail.to_ascii_lowercase();
    [
        "unexpected end",
        "unexpectedeof",
        "eof",
        "truncated",
        "no more data",
        "end of file",
    ]
    .iter()
    .any(|needle| lower.contains(needle))
}
