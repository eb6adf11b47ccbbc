//! The feature index finds exactly the sets that verifying against every stored set
//! would find, on real photos and their crops, and takes removals live.

use cordon_index::{FeatureHit, FeatureIndex};
use cordon_signals::features::{self, FeatureSet, MIN_INLIERS};
use cordon_signals::{DecodeLimits, DecodedImage, PixelLayout, decode};
use cordon_testkit::{DISTINCT_PHOTOS, reference_image};

fn photo(relative: &str) -> DecodedImage {
    let bytes = std::fs::read(reference_image(relative)).unwrap();
    decode(&bytes, &DecodeLimits::default()).unwrap()
}

/// The lower-right 80% x 80% of an RGB image.
fn cropped(image: &DecodedImage) -> DecodedImage {
    let (width, height) = (image.width(), image.height());
    let (left, top) = (width / 5, height / 5);
    let stride = width as usize * 3;
    let pixels = (top..height)
        .flat_map(|y| {
            let row = y as usize * stride;
            image.pixels()[row + left as usize * 3..row + stride].to_vec()
        })
        .collect();
    DecodedImage::from_pixels(width - left, height - top, PixelLayout::Rgb, pixels).unwrap()
}

fn brute_force(stored: &[(u64, FeatureSet)], query: &FeatureSet) -> Vec<FeatureHit> {
    let mut hits: Vec<FeatureHit> = stored
        .iter()
        .map(|(id, set)| FeatureHit {
            id: *id,
            inliers: features::verify(query, set).inliers,
        })
        .filter(|hit| hit.inliers >= MIN_INLIERS)
        .collect();
    hits.sort_by(|a, b| b.inliers.cmp(&a.inliers).then(a.id.cmp(&b.id)));
    hits
}

#[test]
fn search_equals_verifying_every_stored_set() {
    let images: Vec<DecodedImage> = DISTINCT_PHOTOS.iter().map(|p| photo(p)).collect();
    let stored: Vec<(u64, FeatureSet)> = images
        .iter()
        .enumerate()
        .map(|(i, image)| (100 + i as u64, features::extract(image)))
        .collect();
    let mut index = FeatureIndex::new();
    for (id, set) in &stored {
        index.insert(*id, set.clone());
    }
    assert_eq!(index.len(), DISTINCT_PHOTOS.len());
    for (i, image) in images.iter().enumerate() {
        for query in [features::extract(image), features::extract(&cropped(image))] {
            let found = index.search(&query);
            assert_eq!(found, brute_force(&stored, &query), "{}", DISTINCT_PHOTOS[i]);
            assert_eq!(
                found.first().map(|hit| hit.id),
                Some(100 + i as u64),
                "{}",
                DISTINCT_PHOTOS[i]
            );
            assert_eq!(found.len(), 1, "{}: {found:?}", DISTINCT_PHOTOS[i]);
        }
    }
}

#[test]
fn removed_and_replaced_sets_stop_matching_at_once() {
    let (a, b) = (
        features::extract(&photo(DISTINCT_PHOTOS[0])),
        features::extract(&photo(DISTINCT_PHOTOS[1])),
    );
    let mut index = FeatureIndex::new();
    index.insert(1, a.clone());
    index.insert(2, b.clone());
    assert_eq!(index.search(&a)[0].id, 1);
    assert!(index.remove(1));
    assert!(!index.remove(1));
    assert!(index.search(&a).is_empty());
    // Replacing id 2's set with photo a's: b no longer finds it, a does.
    index.insert(2, a.clone());
    assert_eq!(index.len(), 1);
    assert!(index.search(&b).is_empty());
    assert_eq!(index.search(&a)[0].id, 2);
}
