//! WebP through libwebp, the decoder Pillow (and so HMA) uses: the same pixels, and about
//! twice as fast as the pure-Rust decoder. Animated WebP is left to the `image` crate,
//! which yields its first frame.

use libwebp_sys as webp;

use super::{
    DecodeError, DecodeLimits, DecodedImage, ImageFormat, PixelLayout, check_dimensions, pixel_buffer,
};

/// What the file's headers say, before anything is decoded.
pub(super) struct WebpHeader {
    pub width: u32,
    pub height: u32,
    pub animated: bool,
}

fn corrupt(detail: String) -> DecodeError {
    DecodeError::CorruptFormat {
        format: ImageFormat::Webp,
        detail,
    }
}

pub(super) fn read_header(bytes: &[u8]) -> Result<WebpHeader, DecodeError> {
    // SAFETY: all-zero is a valid value of this plain C struct, which is then filled in.
    let mut features: webp::WebPBitstreamFeatures = unsafe { std::mem::zeroed() };
    // SAFETY: `bytes` is valid for reads of its length; `features` is a valid out pointer.
    let status = unsafe { webp::WebPGetFeatures(bytes.as_ptr(), bytes.len(), &mut features) };
    match status {
        webp::VP8StatusCode::VP8_STATUS_OK => Ok(WebpHeader {
            width: u32::try_from(features.width).unwrap_or(0),
            height: u32::try_from(features.height).unwrap_or(0),
            animated: features.has_animation != 0,
        }),
        webp::VP8StatusCode::VP8_STATUS_NOT_ENOUGH_DATA => Err(DecodeError::Truncated {
            format: ImageFormat::Webp,
            detail: "the headers end early".to_string(),
        }),
        other => Err(corrupt(format!("bad headers ({other:?})"))),
    }
}

/// Decodes a still WebP to RGB (alpha, if any, is dropped as for every format).
pub(super) fn decode(
    bytes: &[u8],
    header: &WebpHeader,
    limits: &DecodeLimits,
) -> Result<DecodedImage, DecodeError> {
    let (width, height) = (header.width, header.height);
    check_dimensions(width, height, ImageFormat::Webp, limits)?;
    let stride = width as usize * 3;
    let mut pixels = pixel_buffer(stride * height as usize, width, height)?;
    // SAFETY: the output buffer holds `stride * height` bytes, which is what libwebp
    // writes for an RGB image of the size its headers gave, at that stride.
    let written = unsafe {
        webp::WebPDecodeRGBInto(
            bytes.as_ptr(),
            bytes.len(),
            pixels.as_mut_ptr(),
            pixels.len(),
            stride as std::ffi::c_int,
        )
    };
    if written.is_null() {
        // libwebp gives no reason; a file shorter than its chunk sizes say is the usual one.
        return Err(if declared_longer_than(bytes) {
            DecodeError::Truncated {
                format: ImageFormat::Webp,
                detail: "the image data ends early".to_string(),
            }
        } else {
            corrupt("the image data cannot be decoded".to_string())
        });
    }
    DecodedImage::from_pixels(width, height, PixelLayout::Rgb, pixels)
}

/// The RIFF header gives the file's length; fewer bytes than that means a cut file.
fn declared_longer_than(bytes: &[u8]) -> bool {
    let Some(size) = bytes.get(4..8) else { return true };
    let declared = u32::from_le_bytes([size[0], size[1], size[2], size[3]]) as usize + 8;
    declared > bytes.len()
}
