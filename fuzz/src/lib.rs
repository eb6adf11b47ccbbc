//! What the fuzz targets share: the seed inputs each writes into its corpus when asked
//! (`CORDON_FUZZ_SEED_DIR`, set by `fuzz/run.sh`), made here rather than kept as binary
//! files, and the small images and multipart bodies they are made of.

use std::io::Cursor;
use std::path::PathBuf;

use image::{DynamicImage, ImageBuffer, ImageFormat, Luma, Rgb, Rgba};

/// The multipart boundary of every seed body...
pub const BOUNDARY: &str = "cordonfuzzboundary";
/// ...as the HTTP target's content type names it.
pub const MULTIPART_TYPE: &str = "multipart/form-data; boundary=cordonfuzzboundary";

/// Writes `seeds` into `$CORDON_FUZZ_SEED_DIR` when it is set, keeping files already
/// there (the corpus libFuzzer grew). Called from a target's `init`, which runs before
/// libFuzzer reads its corpus.
pub fn write_seeds(seeds: impl FnOnce() -> Vec<(String, Vec<u8>)>) {
    let Some(dir) = std::env::var_os("CORDON_FUZZ_SEED_DIR").map(PathBuf::from) else {
        return;
    };
    if let Err(error) = std::fs::create_dir_all(&dir) {
        eprintln!("cannot create {}: {error}", dir.display());
        return;
    }
    for (name, bytes) in seeds() {
        let path = dir.join(format!("seed-{name}"));
        if !path.exists()
            && let Err(error) = std::fs::write(&path, bytes)
        {
            eprintln!("cannot write {}: {error}", path.display());
        }
    }
}

/// A picture with edges, corners and gradients, so that PDQ finds it good enough to
/// match on and local features find corners: blocks of different brightness, a diagonal
/// band and a gradient.
pub fn sample_rgb(width: u32, height: u32) -> Vec<u8> {
    let mut rgb = Vec::with_capacity((width * height * 3) as usize);
    for y in 0..height {
        for x in 0..width {
            let block = ((x * 4 / width) + 3 * (y * 4 / height)) % 5;
            let band = (x + y) % 23 < 5;
            let base = (block * 50) as u8;
            let value = if band { 255 - base } else { base };
            rgb.extend([value, (x * 255 / width) as u8, (y * 255 / height) as u8]);
        }
    }
    rgb
}

/// Blocks of different brightness on gentle gradients: a picture PDQ matches on, with few corners
/// (looking up local features costs per corner, which slows every upload down).
pub fn blocks_rgb(width: u32, height: u32) -> Vec<u8> {
    let mut rgb = Vec::with_capacity((width * height * 3) as usize);
    for y in 0..height {
        for x in 0..width {
            let block = ((x * 5 / width) + 3 * (y * 5 / height)) % 4;
            let value = (block * 60 + x * 15 / width) as u8;
            rgb.extend([value, 255 - value, (y * 255 / height) as u8]);
        }
    }
    rgb
}

/// A JPEG of [`blocks_rgb`].
pub fn blocks_jpeg(width: u32, height: u32) -> Vec<u8> {
    cordon_signals::media::encode_jpeg(&blocks_rgb(width, height), width, height, 90)
        .expect("a sample JPEG encodes")
}

/// A JPEG of [`sample_rgb`], through libjpeg-turbo as Cordon writes them.
pub fn sample_jpeg(width: u32, height: u32) -> Vec<u8> {
    cordon_signals::media::encode_jpeg(&sample_rgb(width, height), width, height, 90)
        .expect("a sample JPEG encodes")
}

fn encoded(image: DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, format).expect("a sample image encodes");
    out.into_inner()
}

/// Small images of every format and colour model Cordon decodes.
pub fn sample_images() -> Vec<(String, Vec<u8>)> {
    let (width, height) = (24, 16);
    let rgb = ImageBuffer::<Rgb<u8>, _>::from_raw(width, height, sample_rgb(width, height))
        .expect("the buffer fits");
    let rgba = ImageBuffer::from_fn(width, height, |x, y| {
        let Rgb([r, g, b]) = *rgb.get_pixel(x, y);
        Rgba([r, g, b, (x * 10) as u8])
    });
    let grey = ImageBuffer::from_fn(width, height, |x, y| Luma([rgb.get_pixel(x, y).0[0]]));
    let grey16 = ImageBuffer::from_fn(width, height, |x, y| {
        Luma([u16::from(grey.get_pixel(x, y).0[0]) * 257])
    });
    let rgb = DynamicImage::ImageRgb8(rgb);
    let rgba = DynamicImage::ImageRgba8(rgba);
    let grey = DynamicImage::ImageLuma8(grey);
    let grey16 = DynamicImage::ImageLuma16(grey16);
    let mut images = vec![
        ("small.jpg".to_string(), sample_jpeg(width, height)),
        ("rgb.png".to_string(), encoded(rgb.clone(), ImageFormat::Png)),
        ("rgba.png".to_string(), encoded(rgba.clone(), ImageFormat::Png)),
        ("grey.png".to_string(), encoded(grey.clone(), ImageFormat::Png)),
        (
            "grey16.png".to_string(),
            encoded(grey16.clone(), ImageFormat::Png),
        ),
        ("rgb.gif".to_string(), encoded(rgb.clone(), ImageFormat::Gif)),
        ("rgb.bmp".to_string(), encoded(rgb.clone(), ImageFormat::Bmp)),
        ("grey.bmp".to_string(), encoded(grey.clone(), ImageFormat::Bmp)),
        ("rgb.tiff".to_string(), encoded(rgb.clone(), ImageFormat::Tiff)),
        ("grey16.tiff".to_string(), encoded(grey16, ImageFormat::Tiff)),
        ("rgba.webp".to_string(), encoded(rgba, ImageFormat::WebP)),
        ("rgb.webp".to_string(), encoded(rgb, ImageFormat::WebP)),
    ];
    images.push(("exif.jpg".to_string(), with_exif(&images[0].1)));
    images
}

/// `jpeg` with an APP1 EXIF segment right after its SOI: a big-endian TIFF header and
/// one IFD with Make, Model, Software, DateTime and Orientation.
pub fn with_exif(jpeg: &[u8]) -> Vec<u8> {
    let strings: [(u16, &[u8]); 4] = [
        (0x010f, b"Cordon\0"),
        (0x0110, b"Fuzz Camera\0"),
        (0x0131, b"cordon-fuzz\0"),
        (0x0132, b"2024:01:02 03:04:05\0"),
    ];
    let entries = strings.len() as u16 + 1;
    // Header (8), entry count (2), entries (12 each), next IFD offset (4), then strings.
    let mut data_offset = 8 + 2 + 12 * u32::from(entries) + 4;
    let mut tiff = b"MM\0\x2a\0\0\0\x08".to_vec();
    tiff.extend(entries.to_be_bytes());
    let mut data = Vec::new();
    for (tag, text) in strings {
        tiff.extend(tag.to_be_bytes());
        tiff.extend(2u16.to_be_bytes());
        tiff.extend((text.len() as u32).to_be_bytes());
        tiff.extend(data_offset.to_be_bytes());
        data.extend_from_slice(text);
        data_offset += text.len() as u32;
    }
    // Orientation, a SHORT held in the entry itself.
    tiff.extend([0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0]);
    tiff.extend(0u32.to_be_bytes());
    tiff.extend(data);
    let mut segment = b"Exif\0\0".to_vec();
    segment.extend(tiff);
    let mut out = jpeg[..2].to_vec();
    out.extend([0xff, 0xe1]);
    out.extend(((segment.len() + 2) as u16).to_be_bytes());
    out.extend(segment);
    out.extend(&jpeg[2..]);
    out
}

/// A part of a multipart body: its field name, file name (for a file) and content.
pub struct Part<'a> {
    pub name: &'a str,
    pub filename: Option<&'a str>,
    pub content: &'a [u8],
}

impl<'a> Part<'a> {
    pub fn text(name: &'a str, content: &'a str) -> Part<'a> {
        Part {
            name,
            filename: None,
            content: content.as_bytes(),
        }
    }

    pub fn file(name: &'a str, content: &'a [u8]) -> Part<'a> {
        Part {
            name,
            filename: Some("upload.jpg"),
            content,
        }
    }
}

/// A `multipart/form-data` body with [`BOUNDARY`].
pub fn multipart(parts: &[Part]) -> Vec<u8> {
    let mut body = Vec::new();
    for part in parts {
        body.extend(format!("--{BOUNDARY}\r\n").as_bytes());
        match part.filename {
            Some(file) => body.extend(
                format!(
                    "Content-Disposition: form-data; name=\"{}\"; filename=\"{file}\"\r\n\
                     Content-Type: application/octet-stream\r\n\r\n",
                    part.name
                )
                .as_bytes(),
            ),
            None => body
                .extend(format!("Content-Disposition: form-data; name=\"{}\"\r\n\r\n", part.name).as_bytes()),
        }
        body.extend(part.content);
        body.extend(b"\r\n");
    }
    body.extend(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// Hash-list files in each format, with every field, local features among them.
pub fn sample_hash_lists(features: &str) -> Vec<(String, Vec<u8>)> {
    let h1 = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22";
    let h2 = "30A10EFD71C83F429013D48D0FFFFC52E34E0E17ADA952A9D29685211EA9E5AF";
    let tx = format!(
        "# a comment\n\npdq {h1}\npdq {h2} {{\"external_id\":\"x-1\",\"labels\":[\"a\",\"b\"],\"note\":\"n\",\
         \"features\":\"{features}\"}}\nfeatures {features}\n"
    );
    let csv = format!(
        "signal_type,signal,external_id,labels,note,features\npdq,{h1},x-1,a;b,\"a, note\",{features}\n\
         pdq,{h2},,,,\nfeatures,{features},,,,\n"
    );
    let json = format!(
        "[\n\"{h1}\",\n{{\"signal_type\":\"pdq\",\"signal\":\"{h2}\",\"external_id\":\"x\",\"labels\":[\"a\"],\
         \"note\":\"n\",\"features\":\"{features}\"}},\n{{\"signal_type\":\"features\",\"signal\":\"{features}\"}}\n]\n"
    );
    // The first byte picks the format: 0 sniffs, then tx, CSV, JSON.
    let mut seeds = Vec::new();
    for (name, text) in [("tx", tx), ("csv", csv), ("json", json)] {
        for selector in [0u8, 1, 2, 3] {
            let mut input = vec![selector];
            input.extend(text.as_bytes());
            seeds.push((format!("{name}-{selector}"), input));
        }
    }
    seeds
}

/// The text form of the local features of [`sample_rgb`].
pub fn sample_features() -> String {
    let (width, height) = (160, 120);
    let image = cordon_signals::DecodedImage::from_pixels(
        width,
        height,
        cordon_signals::PixelLayout::Rgb,
        sample_rgb(width, height),
    )
    .expect("the buffer fits");
    cordon_signals::features::extract(&image).to_string()
}
