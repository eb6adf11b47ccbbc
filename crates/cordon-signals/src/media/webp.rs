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
    pub has_alpha: bool,
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
            has_alpha: features.has_alpha != 0,
        }),
        webp::VP8StatusCode::VP8_STATUS_NOT_ENOUGH_DATA => Err(DecodeError::Truncated {
            format: ImageFormat::Webp,
            detail: "the headers end early".to_string(),
        }),
        other => Err(corrupt(format!("bad headers ({other:?})"))),
    }
}

/// Decodes a still WebP to RGB (alpha, if any, is dropped as for every format, and kept
/// beside the pixels).
pub(super) fn decode(
    bytes: &[u8],
    header: &WebpHeader,
    limits: &DecodeLimits,
) -> Result<DecodedImage, DecodeError> {
    let (width, height) = (header.width, header.height);
    check_dimensions(width, height, ImageFormat::Webp, limits)?;
    let stride = width as usize * 3;
    let mut pixels = pixel_buffer(stride * height as usize, width, height)?;
    if !decode_into(webp::WebPDecodeRGBInto, bytes, &mut pixels, stride) {
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
    let image = DecodedImage::from_pixels(width, height, PixelLayout::Rgb, pixels)?;
    if !header.has_alpha {
        return Ok(image);
    }
    // The pixels are what the reference hashes; opacity that cannot be decoded leaves
    // them shown as they are rather than losing the upload.
    match decode_alpha(bytes, width, height) {
        Ok(alpha) => image.with_alpha(alpha),
        Err(_) => Ok(image),
    }
}

/// The opacity of a still WebP that has some: decoded again as RGBA (the RGB pixels stay
/// those libwebp's RGB decoding gives, as the reference's).
fn decode_alpha(bytes: &[u8], width: u32, height: u32) -> Result<Vec<u8>, DecodeError> {
    let stride = width as usize * 4;
    let mut rgba = vec![0u8; stride * height as usize];
    if !decode_into(webp::WebPDecodeRGBAInto, bytes, &mut rgba, stride) {
        return Err(corrupt("the opacity cannot be decoded".to_string()));
    }
    Ok(rgba.chunks_exact(4).map(|pixel| pixel[3]).collect())
}

/// One of libwebp's `WebPDecode*Into`.
type DecodeInto = unsafe extern "C" fn(*const u8, usize, *mut u8, usize, std::ffi::c_int) -> *mut u8;

/// Decodes `bytes` with `decoder` into `out`, rows `stride` bytes apart; whether libwebp
/// wrote the image. `out` must hold `stride` times the height the headers give, `stride`
/// the width times the decoder's bytes per pixel (checked by the callers, which size
/// `out` from the headers).
fn decode_into(decoder: DecodeInto, bytes: &[u8], out: &mut [u8], stride: usize) -> bool {
    let Ok(stride) = std::ffi::c_int::try_from(stride) else {
        return false;
    };
    // SAFETY: `bytes` is valid for reads of its length and `out` for writes of its
    // length; libwebp writes at most `out.len()` bytes (it checks the buffer size it is
    // given against `stride` times the height and fails rather than overrun).
    let written = unsafe { decoder(bytes.as_ptr(), bytes.len(), out.as_mut_ptr(), out.len(), stride) };
    !written.is_null()
}

/// The RIFF header gives the file's length; fewer bytes than that means a cut file.
fn declared_longer_than(bytes: &[u8]) -> bool {
    let Some(size) = bytes.get(4..8) else { return true };
    let declared = u32::from_le_bytes([size[0], size[1], size[2], size[3]]) as usize + 8;
    declared > bytes.len()
}
