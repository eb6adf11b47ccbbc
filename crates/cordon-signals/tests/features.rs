//! Local features on real photos: a photo and its cropped, shrunk or covered copies
//! verify; different photos do not.

use crate::common;

use cordon_signals::features::{self, FeatureSet, MIN_INLIERS};
use cordon_signals::{DecodedImage, PixelLayout};
use cordon_testkit::DISTINCT_PHOTOS;

fn photo(relative: &str) -> DecodedImage {
    common::decode_file(&format!("images/{relative}"))
}

/// The rectangle (`left`, `top`, `width`, `height`) of an RGB image, as a new image.
fn crop(image: &DecodedImage, left: u32, top: u32, width: u32, height: u32) -> DecodedImage {
    assert_eq!(image.layout(), PixelLayout::Rgb);
    let stride = image.width() as usize * 3;
    let pixels = (top..top + height)
        .flat_map(|y| {
            let start = y as usize * stride + left as usize * 3;
            image.pixels()[start..start + width as usize * 3].to_vec()
        })
        .collect();
    DecodedImage::from_pixels(width, height, PixelLayout::Rgb, pixels).unwrap()
}

#[test]
fn a_photo_verifies_against_its_off_centre_crops() {
    for path in DISTINCT_PHOTOS {
        let original = photo(path);
        if original.layout() != PixelLayout::Rgb {
            continue;
        }
        let bank = features::extract(&original);
        assert!(bank.len() > 100, "{path}: {} keypoints", bank.len());
        let (w, h) = (original.width(), original.height());
        for (share, left_part) in [(0.05f32, 0.3f32), (0.2, 0.8), (0.2, 0.0)] {
            let (cw, ch) = (
                (w as f32 * (1.0 - share)) as u32,
                (h as f32 * (1.0 - share)) as u32,
            );
            let left = ((w - cw) as f32 * left_part) as u32;
            let top = ((h - ch) as f32 * (1.0 - left_part)) as u32;
            let query = features::extract(&crop(&original, left, top, cw, ch));
            let verified = features::verify(&query, &bank);
            eprintln!("{path} crop {share} at {left_part}: {verified:?}");
            assert!(
                verified.inliers >= MIN_INLIERS,
                "{path} crop {share}: {verified:?}"
            );
        }
    }
}

/// The image flipped left to right.
fn mirrored(image: &DecodedImage) -> DecodedImage {
    let width = image.width() as usize;
    let pixels = image
        .pixels()
        .chunks_exact(width * 3)
        .flat_map(|row| row.chunks_exact(3).rev().flatten().copied().collect::<Vec<u8>>())
        .collect();
    DecodedImage::from_pixels(image.width(), image.height(), PixelLayout::Rgb, pixels).unwrap()
}

#[test]
fn the_mirror_set_verifies_against_the_mirror_image() {
    for path in DISTINCT_PHOTOS.iter().filter(|p| p.ends_with(".jpg")) {
        let original = photo(path);
        let flipped = features::extract(&mirrored(&original));
        let (plain, mirror) = features::extract_with_mirror(&original);
        assert_eq!(plain, features::extract(&original), "{path}");
        let matched = features::verify(&mirror, &flipped);
        assert!(matched.inliers >= 4 * MIN_INLIERS, "{path}: {matched:?}");
        let unmatched = features::verify(&plain, &flipped);
        assert!(
            unmatched.inliers < matched.inliers / 2,
            "{path}: {unmatched:?} vs {matched:?}"
        );
    }
}

#[test]
fn a_framed_photo_is_described_inside_its_frame() {
    let original = photo("misc-images/b.jpg");
    let (width, height) = (original.width() + 80, original.height() + 60);
    let mut pixels = vec![255u8; (width * height * 3) as usize];
    for (y, row) in original
        .pixels()
        .chunks_exact(original.width() as usize * 3)
        .enumerate()
    {
        let start = ((y + 30) * width as usize + 40) * 3;
        pixels[start..start + row.len()].copy_from_slice(row);
    }
    let framed = DecodedImage::from_pixels(width, height, PixelLayout::Rgb, pixels).unwrap();
    let matched = features::verify(&features::extract(&framed), &features::extract(&original));
    // Trimmed to the same picture at the same working scale: a scale of about 1.
    assert!(matched.inliers >= 8 * MIN_INLIERS, "{matched:?}");
    assert!((matched.scale - 1.0).abs() < 0.02, "{matched:?}");
}

#[test]
fn different_photos_do_not_verify() {
    let sets: Vec<FeatureSet> = DISTINCT_PHOTOS
        .iter()
        .map(|p| features::extract(&photo(p)))
        .collect();
    let mut most = 0;
    for (i, a) in sets.iter().enumerate() {
        for (j, b) in sets.iter().enumerate() {
            if i != j {
                let verified = features::verify(a, b);
                most = most.max(verified.inliers);
                assert!(
                    verified.inliers < MIN_INLIERS,
                    "{} vs {}: {verified:?}",
                    DISTINCT_PHOTOS[i],
                    DISTINCT_PHOTOS[j]
                );
            }
        }
    }
    eprintln!("most inliers between different photos: {most}");
}

#[test]
fn the_text_form_reads_back_the_same_set() {
    let set = features::extract(&photo("misc-images/b.jpg"));
    let text = set.to_string();
    assert!(text.starts_with("f1:"));
    assert_eq!(text.parse::<FeatureSet>().unwrap(), set);
    for bad in ["", "f1:!!", "f2:AAAA", "f1:AAAA"] {
        assert!(bad.parse::<FeatureSet>().is_err(), "{bad:?}");
    }
}

/// A picture of one colour.
fn plain(width: u32, height: u32, colour: [u8; 3]) -> DecodedImage {
    let pixels = colour.repeat((width * height) as usize);
    DecodedImage::from_pixels(width, height, PixelLayout::Rgb, pixels).unwrap()
}

#[test]
fn a_blank_picture_has_no_features() {
    // Shrinking a blank picture to the working size leaves it blank only up to
    // floating-point rounding; those specks must not count as corners, or every blank
    // picture (a colour under a transparent layer) would match every other.
    for (width, height, colour) in [
        (1600, 1200, [255; 3]),
        (1920, 1080, [0; 3]),
        (900, 1300, [40, 90, 200]),
    ] {
        let found = features::extract(&plain(width, height, colour));
        assert!(
            found.is_empty(),
            "{} keypoints on a blank {width}x{height}",
            found.len()
        );
    }

    // The same picture with a few drawn shapes has features where the shapes are.
    let shapes = plain_with_marks(&[(200, 150, 120), (900, 500, 200), (1300, 120, 90)]);
    let found = features::extract(&shapes);
    assert!(found.len() >= MIN_INLIERS as usize, "{} keypoints", found.len());
    assert!(features::verify(&found, &found).inliers >= MIN_INLIERS);
}

/// A plain 1600x900 picture with dark wedges (left, top, size) drawn on it.
fn plain_with_marks(marks: &[(u32, u32, u32)]) -> DecodedImage {
    let mut pixels = plain(1600, 900, [200, 210, 220]).pixels().to_vec();
    for &(left, top, size) in marks {
        for y in top..top + size {
            for x in left..left + size / 2 + (y - top) / 2 {
                let at = (y * 1600 + x) as usize * 3;
                pixels[at..at + 3].copy_from_slice(&[20, 20, 30]);
            }
        }
    }
    DecodedImage::from_pixels(1600, 900, PixelLayout::Rgb, pixels).unwrap()
}

#[test]
fn plain_pictures_with_different_marks_do_not_verify() {
    // Mostly blank and of one size: the rounding specks of their blank parts lie in the
    // same places, and once counted as corners they agreed by the hundred (146 pairs).
    let one = features::extract(&plain_with_marks(&[(200, 150, 120)]));
    let other = features::extract(&plain_with_marks(&[(1300, 600, 90)]));
    let verified = features::verify(&one, &other);
    assert!(verified.inliers < MIN_INLIERS, "{verified:?}");
}
