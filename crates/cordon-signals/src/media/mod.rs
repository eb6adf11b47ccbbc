//! Decoding untrusted image bytes into 8-bit pixels, within limits.
//!
//! The colour policy follows the pipeline HMA hashes with (Pillow's `convert("RGB")` in
//! front of PyPI `pdqhash`), so that Cordon's hashes are the ones the hash-sharing
//! programmes hold:
//!
//! * JPEG goes through libjpeg-turbo and WebP through libwebp, the decoders behind the
//!   reference pipelines, for the very same pixels. CMYK JPEGs are converted as Pillow
//!   converts them.
//! * Alpha is dropped, not composited: the colour under a transparent pixel is hashed.
//!   The opacity is kept beside the pixels ([`DecodedImage::alpha`]) when some pixel is
//!   not opaque, for Cordon's own signals of the picture as people see it
//!   ([`DecodedImage::composited_over`]).
//! * Greyscale stays one channel; its value is the luma.
//! * 16-bit samples keep their high byte.
//! * EXIF orientation is not applied: no reference applies it, and pixels are hashed as
//!   stored (rotated copies still match through the dihedral hashes).
//! * GIF contributes its first frame.
//!
//! Every input is bounded: bytes before anything is parsed, pixels from the header before
//! any pixel is decoded, and progressive JPEG scans.

mod c2pa;
mod exif;
mod jpeg;
mod raster;
mod webp;

pub use self::c2pa::{ContentCredentials, read_content_credentials};
pub use exif::{ExifEvidence, read_exif};
pub use jpeg::encode_jpeg;

use std::fmt;

/// How the pixels of a [`DecodedImage`] are laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PixelLayout {
    /// Three bytes per pixel: red, green, blue.
    Rgb,
    /// One byte per pixel.
    Grey,
}

impl PixelLayout {
    pub const fn channels(self) -> usize {
        match self {
            PixelLayout::Rgb => 3,
            PixelLayout::Grey => 1,
        }
    }
}

/// 8-bit pixels, row-major, no padding between rows.
#[derive(Clone, PartialEq, Eq)]
pub struct DecodedImage {
    width: u32,
    height: u32,
    layout: PixelLayout,
    pixels: Vec<u8>,
    /// Opacity, one byte a pixel (255 opaque); none when every pixel is opaque.
    alpha: Option<Vec<u8>>,
}

impl DecodedImage {
    /// Wraps pixels that are already decoded. Fails if the buffer's length is not
    /// `width * height * channels`.
    pub fn from_pixels(
        width: u32,
        height: u32,
        layout: PixelLayout,
        pixels: Vec<u8>,
    ) -> Result<Self, DecodeError> {
        let expected = (width as usize)
            .checked_mul(height as usize)
            .and_then(|n| n.checked_mul(layout.channels()));
        if expected != Some(pixels.len()) {
            return Err(DecodeError::Corrupt(format!(
                "{} bytes of pixels do not make a {width}x{height} {layout:?} image",
                pixels.len()
            )));
        }
        Ok(DecodedImage {
            width,
            height,
            layout,
            pixels,
            alpha: None,
        })
    }

    /// Attaches each pixel's opacity (one byte a pixel, 255 opaque); an image opaque
    /// everywhere keeps none. Fails if `alpha` is not one byte a pixel.
    pub fn with_alpha(mut self, alpha: Vec<u8>) -> Result<Self, DecodeError> {
        if alpha.len() != self.width as usize * self.height as usize {
            return Err(DecodeError::Corrupt(format!(
                "{} bytes of opacity do not make a {}x{} image",
                alpha.len(),
                self.width,
                self.height
            )));
        }
        self.alpha = alpha.iter().any(|&a| a < u8::MAX).then_some(alpha);
        Ok(self)
    }

    /// Each pixel's opacity, when some pixel is not opaque.
    pub fn alpha(&self) -> Option<&[u8]> {
        self.alpha.as_deref()
    }

    /// The picture as it shows over a plain background of grey level `background`, or
    /// `None` when every pixel is opaque (it shows as it is).
    pub fn composited_over(&self, background: u8) -> Option<DecodedImage> {
        let alpha = self.alpha.as_deref()?;
        let channels = self.layout.channels();
        let background = u32::from(background);
        let pixels = self
            .pixels
            .chunks_exact(channels)
            .zip(alpha)
            .flat_map(|(pixel, &opacity)| {
                let opacity = u32::from(opacity);
                pixel.iter().map(move |&sample| {
                    let mixed = u32::from(sample) * opacity + background * (255 - opacity);
                    ((mixed + 127) / 255) as u8
                })
            })
            .collect();
        Some(DecodedImage {
            width: self.width,
            height: self.height,
            layout: self.layout,
            pixels,
            alpha: None,
        })
    }

    pub fn width(&self) -> u32 {
        self.width
    }

    pub fn height(&self) -> u32 {
        self.height
    }

    pub fn layout(&self) -> PixelLayout {
        self.layout
    }

    pub fn pixels(&self) -> &[u8] {
        &self.pixels
    }
}

impl fmt::Debug for DecodedImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "DecodedImage({}x{} {:?})",
            self.width, self.height, self.layout
        )
    }
}

/// The container formats Cordon decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageFormat {
    Jpeg,
    Png,
    Webp,
    Gif,
    Bmp,
    Tiff,
}

impl ImageFormat {
    /// Recognises a format from the first bytes of a file.
    pub fn sniff(bytes: &[u8]) -> Option<ImageFormat> {
        match bytes {
            [0xff, 0xd8, 0xff, ..] => Some(ImageFormat::Jpeg),
            [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n', ..] => Some(ImageFormat::Png),
            [b'R', b'I', b'F', b'F', _, _, _, _, b'W', b'E', b'B', b'P', ..] => Some(ImageFormat::Webp),
            [b'G', b'I', b'F', b'8', b'7' | b'9', b'a', ..] => Some(ImageFormat::Gif),
            [b'B', b'M', ..] => Some(ImageFormat::Bmp),
            [b'I', b'I', 0x2a, 0x00, ..] | [b'M', b'M', 0x00, 0x2a, ..] => Some(ImageFormat::Tiff),
            _ => None,
        }
    }

    /// The format's media type, for serving a kept file back.
    pub const fn mime(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "image/jpeg",
            ImageFormat::Png => "image/png",
            ImageFormat::Webp => "image/webp",
            ImageFormat::Gif => "image/gif",
            ImageFormat::Bmp => "image/bmp",
            ImageFormat::Tiff => "image/tiff",
        }
    }
}

/// Bounds on what one input may cost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest accepted file, in bytes.
    pub max_bytes: u64,
    /// Largest accepted image, in pixels (width times height), read from the header.
    pub max_pixels: u64,
}

impl DecodeLimits {
    /// 100 megapixels: above any camera photo, below a decompression bomb.
    pub const DEFAULT_MAX_PIXELS: u64 = 100_000_000;
    /// 64 MiB: a 100 MP JPEG at high quality is about 40 MiB.
    pub const DEFAULT_MAX_BYTES: u64 = 64 << 20;
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            max_bytes: Self::DEFAULT_MAX_BYTES,
            max_pixels: Self::DEFAULT_MAX_PIXELS,
        }
    }
}

/// Why bytes could not be decoded into an image.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("the input is empty")]
    Empty,
    #[error("{size} bytes is over the limit of {limit} bytes")]
    TooManyBytes { size: u64, limit: u64 },
    #[error("{width}x{height} is {} pixels, over the limit of {limit}", (*.width as u64) * (*.height as u64))]
    TooManyPixels { width: u32, height: u32, limit: u64 },
    #[error("not an image Cordon reads (JPEG, PNG, WebP, GIF, BMP, TIFF)")]
    UnknownFormat,
    #[error("{format:?} image is truncated: {detail}")]
    Truncated { format: ImageFormat, detail: String },
    #[error("{format:?} image is not supported: {detail}")]
    Unsupported { format: ImageFormat, detail: String },
    #[error("{0}")]
    Corrupt(String),
    #[error("{format:?} image is corrupt: {detail}")]
    CorruptFormat { format: ImageFormat, detail: String },
    #[error("out of memory for a {width}x{height} image")]
    OutOfMemory { width: u32, height: u32 },
}

/// Decodes `bytes` into 8-bit RGB or grey pixels, refusing anything over `limits`.
pub fn decode(bytes: &[u8], limits: &DecodeLimits) -> Result<DecodedImage, DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::Empty);
    }
    let size = bytes.len() as u64;
    if size > limits.max_bytes {
        return Err(DecodeError::TooManyBytes {
            size,
            limit: limits.max_bytes,
        });
    }
    match ImageFormat::sniff(bytes).ok_or(DecodeError::UnknownFormat)? {
        ImageFormat::Jpeg => jpeg::decode(bytes, limits),
        ImageFormat::Webp => {
            let header = webp::read_header(bytes)?;
            if header.animated {
                raster::decode(bytes, ImageFormat::Webp, limits)
            } else {
                webp::decode(bytes, &header, limits)
            }
        }
        other => raster::decode(bytes, other, limits),
    }
}

/// Refuses dimensions over the pixel limit (or zero), before any pixel is decoded.
fn check_dimensions(
    width: u32,
    height: u32,
    format: ImageFormat,
    limits: &DecodeLimits,
) -> Result<(), DecodeError> {
    if width == 0 || height == 0 {
        return Err(DecodeError::CorruptFormat {
            format,
            detail: format!("the header gives a size of {width}x{height}"),
        });
    }
    if u64::from(width) * u64::from(height) > limits.max_pixels {
        return Err(DecodeError::TooManyPixels {
            width,
            height,
            limit: limits.max_pixels,
        });
    }
    Ok(())
}

/// A buffer of `len` bytes for a decoder to fill, or an error instead of an abort when
/// memory is short. Its bytes are zeros or an earlier image's pixels: the decoders that
/// use it write every byte of a picture they report decoded, so only growth is zeroed
/// (clearing megabytes that are about to be overwritten was ~2 % of hashing a web image).
fn pixel_buffer(len: usize, width: u32, height: u32) -> Result<Vec<u8>, DecodeError> {
    let mut buffer = spare_pixels().pop().unwrap_or_default();
    buffer.truncate(len);
    buffer
        .try_reserve_exact(len - buffer.len())
        .map_err(|_| DecodeError::OutOfMemory { width, height })?;
    buffer.resize(len, 0);
    Ok(buffer)
}

/// Largest pixel buffer kept for reuse.
const MAX_SPARE_BYTES: usize = 64 << 20;

/// The pixels of images dropped lately, reused by the next decodes: hashing a stream of
/// images then maps, faults in and unmaps no fresh memory. One process-wide list of at most
/// one buffer per core (as many as can be in use at once when every core decodes), not one
/// per thread: a server's worker threads come and go, and each would have kept its own.
fn spare_pixels() -> std::sync::MutexGuard<'static, Vec<Vec<u8>>> {
    static SPARE_PIXELS: std::sync::Mutex<Vec<Vec<u8>>> = std::sync::Mutex::new(Vec::new());
    // A poisoned list still holds whole buffers.
    SPARE_PIXELS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn max_spare_buffers() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
}

impl Drop for DecodedImage {
    fn drop(&mut self) {
        let pixels = std::mem::take(&mut self.pixels);
        if pixels.capacity() == 0 || pixels.capacity() > MAX_SPARE_BYTES {
            return;
        }
        let mut spare = spare_pixels();
        if spare.len() < max_spare_buffers() {
            spare.push(pixels);
        } else if let Some(smallest) = spare.iter_mut().min_by_key(|buffer| buffer.capacity())
            && smallest.capacity() < pixels.capacity()
        {
            // Keep the larger: the next large image then needs no new memory.
            *smallest = pixels;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spare_pixel_buffers_are_kept_per_core_not_per_thread() {
        // Twenty threads, each dropping an image: what stays for reuse is one buffer per
        // core at most.
        let threads: Vec<_> = (1..=20u32)
            .map(|side| {
                std::thread::spawn(move || {
                    let pixels = vec![7u8; (side * 100 * side * 100) as usize];
                    drop(DecodedImage::from_pixels(
                        side * 100,
                        side * 100,
                        PixelLayout::Grey,
                        pixels,
                    ));
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        // (Other tests decode meanwhile and may take some out again.)
        let spare = spare_pixels();
        assert!(spare.len() <= max_spare_buffers(), "{} kept", spare.len());
    }
}
