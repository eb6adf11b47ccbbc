//! Decompression bombs: small files whose headers declare huge pictures or many frames,
//! written byte by byte so that no encoder's own limits get in the way.

/// CRC-32 (IEEE) as PNG chunks carry it, for making and patching fixtures.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// A valid-looking PNG of a few dozen bytes whose header declares `width` x `height` RGB
/// pixels (its one IDAT holds an empty deflate stream).
pub fn png_declaring(width: u32, height: u32) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    png_chunk(&mut png, b"IHDR", &ihdr);
    png_chunk(
        &mut png,
        b"IDAT",
        &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    );
    png_chunk(&mut png, b"IEND", &[]);
    png
}

/// `jpeg` with its frame header (the first SOF0, SOF1 or SOF2) changed to declare
/// `width` x `height`.
pub fn jpeg_declaring(mut jpeg: Vec<u8>, width: u16, height: u16) -> Vec<u8> {
    let sof = jpeg
        .windows(2)
        .position(|w| w[0] == 0xff && (0xc0..=0xc2).contains(&w[1]))
        .expect("a JPEG with a frame header");
    jpeg[sof + 5..sof + 7].copy_from_slice(&height.to_be_bytes());
    jpeg[sof + 7..sof + 9].copy_from_slice(&width.to_be_bytes());
    jpeg
}

/// An extended WebP (VP8X) whose canvas is `width` x `height` (at most 2^24 each) and
/// which holds nothing else.
pub fn webp_declaring(width: u32, height: u32) -> Vec<u8> {
    let mut vp8x = vec![0u8; 10];
    vp8x[4..7].copy_from_slice(&(width - 1).to_le_bytes()[..3]);
    vp8x[7..10].copy_from_slice(&(height - 1).to_le_bytes()[..3]);
    let mut body = b"WEBPVP8X".to_vec();
    body.extend_from_slice(&(vp8x.len() as u32).to_le_bytes());
    body.extend_from_slice(&vp8x);
    let mut webp = b"RIFF".to_vec();
    webp.extend_from_slice(&(body.len() as u32).to_le_bytes());
    webp.extend_from_slice(&body);
    webp
}

/// A GIF whose logical screen is `width` x `height`, with `frames` frames of one pixel each
/// (at the top left): tiny on disk, huge or endless to decode fully.
pub fn gif_declaring(width: u16, height: u16, frames: usize) -> Vec<u8> {
    let mut gif = b"GIF89a".to_vec();
    gif.extend_from_slice(&width.to_le_bytes());
    gif.extend_from_slice(&height.to_le_bytes());
    // A global colour table of two entries: black and white.
    gif.extend_from_slice(&[0x80, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff]);
    for _ in 0..frames {
        gif.push(0x2c);
        // At (0, 0), 1 x 1, no local colour table.
        gif.extend_from_slice(&[0, 0, 0, 0, 1, 0, 1, 0, 0]);
        // LZW minimum code size 2; one sub-block: clear, pixel 0, end.
        gif.extend_from_slice(&[2, 2, 0x44, 0x01, 0]);
    }
    gif.push(0x3b);
    gif
}
