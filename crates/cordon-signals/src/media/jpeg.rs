//! JPEG through libjpeg-turbo (TurboJPEG 3 API), for the exact pixels Pillow gives HMA.

use std::ffi::{CStr, c_int};

use turbojpeg_sys as tj;

use super::{
    DecodeError, DecodeLimits, DecodedImage, ImageFormat, PixelLayout, check_dimensions, pixel_buffer,
};

/// Progressive JPEGs with more scans than this are refused: each scan re-walks the whole
/// image, so a crafted file could otherwise cost minutes. Real encoders write about ten.
const MAX_SCANS: c_int = 500;

/// libjpeg's text for a file that ends before its image data does.
const TRUNCATION_WARNING: &str = "Premature end of JPEG file";

/// An owned TurboJPEG decompressor.
struct Handle(tj::tjhandle);

impl Handle {
    fn new() -> Result<Handle, DecodeError> {
        // SAFETY: tj3Init has no preconditions; a null result is handled.
        let raw = unsafe { tj::tj3Init(tj::TJINIT_TJINIT_DECOMPRESS as c_int) };
        if raw.is_null() {
            return Err(corrupt("cannot start the JPEG decoder".to_string()));
        }
        Ok(Handle(raw))
    }

    fn get(&self, param: tj::TJPARAM) -> c_int {
        // SAFETY: the handle is valid for the life of `self`.
        unsafe { tj::tj3Get(self.0, param as c_int) }
    }

    fn set(&self, param: tj::TJPARAM, value: c_int) -> Result<(), DecodeError> {
        // SAFETY: the handle is valid for the life of `self`.
        if unsafe { tj::tj3Set(self.0, param as c_int, value) } != 0 {
            return Err(corrupt(self.message()));
        }
        Ok(())
    }

    /// The text of the last error or warning.
    fn message(&self) -> String {
        // SAFETY: tj3GetErrorStr returns a NUL-terminated string owned by the library,
        // valid until the next call on this handle; it is copied at once.
        unsafe { CStr::from_ptr(tj::tj3GetErrorStr(self.0)) }
            .to_string_lossy()
            .into_owned()
    }

    fn last_was_warning(&self) -> bool {
        // SAFETY: the handle is valid for the life of `self`.
        let code = unsafe { tj::tj3GetErrorCode(self.0) };
        code == tj::TJERR_TJERR_WARNING as c_int
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: the handle came from tj3Init and is destroyed once.
        unsafe { tj::tj3Destroy(self.0) }
    }
}

fn corrupt(detail: String) -> DecodeError {
    DecodeError::CorruptFormat {
        format: ImageFormat::Jpeg,
        detail,
    }
}

pub(super) fn decode(bytes: &[u8], limits: &DecodeLimits) -> Result<DecodedImage, DecodeError> {
    let handle = Handle::new()?;
    // SAFETY: `bytes` is valid for reads of its length during the call.
    if unsafe { tj::tj3DecompressHeader(handle.0, bytes.as_ptr(), bytes.len() as tj::size_t) } != 0 {
        return Err(header_error(&handle, bytes));
    }
    let width = u32::try_from(handle.get(tj::TJPARAM_TJPARAM_JPEGWIDTH)).unwrap_or(0);
    let height = u32::try_from(handle.get(tj::TJPARAM_TJPARAM_JPEGHEIGHT)).unwrap_or(0);
    check_dimensions(width, height, ImageFormat::Jpeg, limits)?;
    let precision = handle.get(tj::TJPARAM_TJPARAM_PRECISION);
    if precision != 8 {
        return Err(DecodeError::Unsupported {
            format: ImageFormat::Jpeg,
            detail: format!("{precision}-bit samples (only 8-bit JPEG is read)"),
        });
    }
    handle.set(tj::TJPARAM_TJPARAM_SCANLIMIT, MAX_SCANS)?;

    let colorspace = handle.get(tj::TJPARAM_TJPARAM_COLORSPACE);
    let (pixel_format, channels) = match colorspace as tj::TJCS {
        tj::TJCS_TJCS_GRAY => (tj::TJPF_TJPF_GRAY, 1),
        tj::TJCS_TJCS_CMYK | tj::TJCS_TJCS_YCCK => (tj::TJPF_TJPF_CMYK, 4),
        _ => (tj::TJPF_TJPF_RGB, 3),
    };
    let len = width as usize * height as usize * channels;
    let mut pixels = pixel_buffer(len, width, height)?;
    // SAFETY: `pixels` holds width * height * channels bytes, which is what TurboJPEG
    // writes for this pixel format with pitch 0 (tightly packed rows) and no scaling.
    let status = unsafe {
        tj::tj3Decompress8(
            handle.0,
            bytes.as_ptr(),
            bytes.len() as tj::size_t,
            pixels.as_mut_ptr(),
            0,
            pixel_format as c_int,
        )
    };
    if status != 0 {
        let message = handle.message();
        if !handle.last_was_warning() {
            return Err(corrupt(message));
        }
        if message.contains(TRUNCATION_WARNING) {
            return Err(DecodeError::Truncated {
                format: ImageFormat::Jpeg,
                detail: message,
            });
        }
        // Other warnings (extraneous bytes before a marker, a damaged segment) leave a
        // complete image, which Pillow, and so HMA, accepts too.
    }
    match channels {
        1 => DecodedImage::from_pixels(width, height, PixelLayout::Grey, pixels),
        3 => DecodedImage::from_pixels(width, height, PixelLayout::Rgb, pixels),
        _ => {
            let rgb = cmyk_to_rgb(&pixels, has_adobe_marker(bytes));
            DecodedImage::from_pixels(width, height, PixelLayout::Rgb, rgb)
        }
    }
}

fn header_error(handle: &Handle, bytes: &[u8]) -> DecodeError {
    let message = handle.message();
    // A file cut short before its frame header ends says so only indirectly.
    if bytes.len() < 1024 && (message.contains("premature") || message.contains(TRUNCATION_WARNING)) {
        return DecodeError::Truncated {
            format: ImageFormat::Jpeg,
            detail: message,
        };
    }
    corrupt(message)
}

/// Photoshop (and Pillow) store CMYK inverted, and say so with an Adobe APP14 segment.
fn has_adobe_marker(bytes: &[u8]) -> bool {
    let mut at = 2;
    // Walk the marker segments before the first scan.
    while at + 4 <= bytes.len() {
        if bytes[at] != 0xff {
            return false;
        }
        let marker = bytes[at + 1];
        if marker == 0xda || marker == 0xd9 {
            return false;
        }
        let length = usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]));
        if marker == 0xee && bytes.get(at + 4..at + 9) == Some(b"Adobe") {
            return true;
        }
        at += 2 + length;
    }
    false
}

/// CMYK to RGB as Pillow's `convert("RGB")` does it: each channel is
/// `(255 - k) - c * (255 - k) / 255`, the product rounded the way Pillow's `MULDIV255`
/// rounds.
fn cmyk_to_rgb(cmyk: &[u8], inverted: bool) -> Vec<u8> {
    let mut rgb = Vec::with_capacity(cmyk.len() / 4 * 3);
    for pixel in cmyk.chunks_exact(4) {
        let read = |v: u8| if inverted { 255 - v } else { v };
        let not_k = 255 - i32::from(read(pixel[3]));
        for &c in &pixel[..3] {
            let product = i32::from(read(c)) * not_k + 128;
            let scaled = ((product >> 8) + product) >> 8;
            rgb.push((not_k - scaled).clamp(0, 255) as u8);
        }
    }
    rgb
}

/// Encodes packed 8-bit RGB pixels as a baseline JPEG at `quality` (1..=100) with 4:2:0
/// chroma, the way platforms re-encode uploads; `cordon eval` uses it to make reposts.
/// Failures reuse [`DecodeError`] (a JPEG `CorruptFormat` or `Unsupported`) so the crate
/// keeps one error type.
pub fn encode_jpeg(rgb: &[u8], width: u32, height: u32, quality: u8) -> Result<Vec<u8>, DecodeError> {
    let expected = (width as usize)
        .checked_mul(height as usize)
        .and_then(|n| n.checked_mul(3));
    if width == 0 || height == 0 || expected != Some(rgb.len()) {
        return Err(corrupt(format!(
            "{} bytes of pixels do not make a {width}x{height} RGB image",
            rgb.len()
        )));
    }
    let (Ok(c_width), Ok(c_height)) = (c_int::try_from(width), c_int::try_from(height)) else {
        return Err(DecodeError::Unsupported {
            format: ImageFormat::Jpeg,
            detail: format!("{width}x{height} is too large to encode"),
        });
    };
    if !(1..=100).contains(&quality) {
        return Err(DecodeError::Unsupported {
            format: ImageFormat::Jpeg,
            detail: format!("quality {quality} (1 to 100)"),
        });
    }
    // SAFETY: tj3Init has no preconditions; a null result is handled, and `Handle`
    // destroys the compressor once, on every path.
    let raw = unsafe { tj::tj3Init(tj::TJINIT_TJINIT_COMPRESS as c_int) };
    if raw.is_null() {
        return Err(corrupt("cannot start the JPEG encoder".to_string()));
    }
    let handle = Handle(raw);
    handle.set(tj::TJPARAM_TJPARAM_QUALITY, c_int::from(quality))?;
    handle.set(tj::TJPARAM_TJPARAM_SUBSAMP, tj::TJSAMP_TJSAMP_420 as c_int)?;
    let mut out: *mut u8 = std::ptr::null_mut();
    let mut size: tj::size_t = 0;
    // SAFETY: `rgb` holds width * height * 3 bytes, which is what TurboJPEG reads for
    // TJPF_RGB with pitch 0 (tightly packed rows); `out` starts null, so TurboJPEG
    // allocates the output buffer itself and reports its length in `size`.
    let status = unsafe {
        tj::tj3Compress8(
            handle.0,
            rgb.as_ptr(),
            c_width,
            0,
            c_height,
            tj::TJPF_TJPF_RGB as c_int,
            &mut out,
            &mut size,
        )
    };
    let result = if status != 0 || out.is_null() {
        Err(corrupt(handle.message()))
    } else {
        // SAFETY: on success `out` points to `size` bytes written by TurboJPEG; they are
        // copied before the buffer is freed below.
        Ok(unsafe { std::slice::from_raw_parts(out, size as usize) }.to_vec())
    };
    if !out.is_null() {
        // SAFETY: `out` was allocated by TurboJPEG and is freed once, here.
        unsafe { tj::tj3Free(out.cast()) };
    }
    result
}
