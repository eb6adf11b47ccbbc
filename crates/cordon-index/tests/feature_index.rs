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
    let mut added = FeatureIndex::new();
    for (id, set) in &stored {
        added.insert(*id, set.clone());
    }
    // Built in one pass, as a store is loaded: the same answers.
    let built = FeatureIndex::from_sets(stored.iter().cloned());
    for index in [&added, &built] {
        assert_eq!(index.len(), DISTINCT_PHOTOS.len());
        assert_eq!(
            index.descriptors_len(),
            stored.iter().map(|(_, set)| set.len()).sum::<usize>()
        );
    }
    for (i, image) in images.iter().enumerate() {
        for query in [features::extract(image), features::extract(&cropped(image))] {
            let found = added.search(&query);
            assert_eq!(built.search(&query), found, "{}", DISTINCT_PHOTOS[i]);
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

/// The features of two photos that do not match each other.
fn two_distinct_sets() -> (FeatureSet, FeatureSet) {
    (
        features::extract(&photo(DISTINCT_PHOTOS[0])),
        features::extract(&photo(DISTINCT_PHOTOS[1])),
    )
}

#[test]
fn removed_and_replaced_sets_stop_matching_at_once() {
    let (a, b) = two_distinct_sets();
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

#[test]
fn an_id_can_hold_several_sets_and_loses_them_together() {
    let (a, b) = two_distinct_sets();
    let mut added = FeatureIndex::new();
    added.add(7, a.clone());
    added.add(7, b.clone());
    let built = FeatureIndex::from_sets([(7, a.clone()), (7, b.clone())]);
    for mut index in [added, built] {
        assert_eq!(index.len(), 1);
        assert_eq!(index.search(&a)[0].id, 7);
        assert_eq!(index.search(&b)[0].id, 7);
        assert!(index.remove(7));
        assert!(index.search(&a).is_empty() && index.search(&b).is_empty());
        assert!(index.is_empty());
    }
}

/// The index verifies against descriptors it keeps once, where it searches them: removals
/// that compact it (and so renumber where every descriptor lies), adds before and after,
/// and a set re-added leave every stored set verifying as the set itself does.
#[test]
fn sets_verify_as_themselves_after_removals_move_their_descriptors() {
    let stored: Vec<(u64, FeatureSet)> = DISTINCT_PHOTOS
        .iter()
        .enumerate()
        .map(|(i, p)| (100 + i as u64, features::extract(&photo(p))))
        .collect();
    // 400 distinct descriptors a filler set: 60 of them outnumber the photos' several times,
    // so removing them all compacts the index.
    let filler = |seed: u64| {
        let mut set = crowd([0; 4], 400, seed);
        for (i, descriptor) in set.descriptors.iter_mut().enumerate() {
            let x = (seed << 16 | i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            *descriptor = [x, x.rotate_left(19), x.rotate_left(37), !x];
        }
        set
    };
    let mut index = FeatureIndex::new();
    for seed in 0..30 {
        index.add(1000 + seed, filler(seed));
    }
    for (id, set) in &stored {
        index.add(*id, set.clone());
    }
    for seed in 30..60 {
        index.add(1000 + seed, filler(seed));
    }
    let queries: Vec<FeatureSet> = DISTINCT_PHOTOS
        .iter()
        .map(|p| features::extract(&cropped(&photo(p))))
        .collect();
    let before: Vec<Vec<FeatureHit>> = queries.iter().map(|q| index.search(q)).collect();
    for seed in 0..60 {
        assert!(index.remove(1000 + seed));
    }
    // One photo's set removed and added again: its descriptors now lie after the others'.
    let (moved_id, moved_set) = &stored[0];
    assert!(index.remove(*moved_id));
    index.add(*moved_id, moved_set.clone());
    assert_eq!(
        index.descriptors_len(),
        stored.iter().map(|(_, set)| set.len()).sum::<usize>()
    );
    for (i, query) in queries.iter().enumerate() {
        let found = index.search(query);
        assert_eq!(found, brute_force(&stored, query), "{}", DISTINCT_PHOTOS[i]);
        assert_eq!(found, before[i], "{}", DISTINCT_PHOTOS[i]);
    }
}

/// A bank holding several copies of one picture (each re-encoded a little differently:
/// here, a different share of its descriptors changed) finds every copy that verifies,
/// each with exactly the inliers that comparing the query with it in full gives: many sets
/// reached by the same query descriptors, each verified on its own.
#[test]
fn many_copies_of_one_picture_each_verify_as_in_full() {
    // Few enough that the query descriptors too common to search (a photo's flat patches,
    // in every copy) do not decide which copies a search reaches: the one exception to
    // its equalling a full comparison.
    const COPIES: u64 = 8;
    let photos: Vec<DecodedImage> = DISTINCT_PHOTOS.iter().take(2).map(|p| photo(p)).collect();
    let originals: Vec<FeatureSet> = photos.iter().map(features::extract).collect();
    let mut stored: Vec<(u64, FeatureSet)> = Vec::new();
    for (p, set) in originals.iter().enumerate() {
        for copy in 0..COPIES {
            let mut changed = set.clone();
            for (i, descriptor) in changed.descriptors.iter_mut().enumerate() {
                // Copy c changes every descriptor i with i % COPIES < c: 0 to 7/8 of them,
                // some by a few bits (still paired, maybe with a rival) and some by many.
                if (i as u64 % COPIES) < copy {
                    let bits = (i as u64 * 7 + copy) % 40;
                    descriptor[(i + copy as usize) % 4] ^= (1u64 << bits) - 1;
                }
            }
            stored.push((1000 * (p as u64 + 1) + copy, changed));
        }
    }
    let index = FeatureIndex::from_sets(stored.iter().cloned());
    for (image, original) in photos.iter().zip(originals) {
        for query in [original, features::extract(&cropped(image))] {
            let found = index.search(&query);
            assert_eq!(found.len(), COPIES as usize, "{found:?}");
            assert_eq!(found, brute_force(&stored, &query));
        }
    }
}

/// A set with more keypoints than descriptors (hand-made: extraction and the text form
/// always pair them) is kept by its pairs, and searching never reads past them.
#[test]
fn a_set_with_keypoints_beyond_its_descriptors_is_kept_by_its_pairs() {
    let (a, b) = two_distinct_sets();
    let mut uneven = a.clone();
    uneven.keypoints.extend(b.keypoints.iter().take(5));
    let mut index = FeatureIndex::new();
    index.add(9, uneven.clone());
    index.add(10, b.clone());
    let found = index.search(&a);
    assert_eq!(found.first().map(|hit| hit.id), Some(9));
    assert_eq!(found[0].inliers, features::verify(&a, &a).inliers);
    assert_eq!(FeatureIndex::from_sets([(9, uneven), (10, b)]).search(&a), found);
}

/// `n` keypoints spread over a 512-pixel square, all with `descriptor`.
fn crowd(descriptor: [u64; 4], n: usize, seed: u64) -> FeatureSet {
    let keypoints = (0..n)
        .map(|i| {
            let spot = (i as u64 * 7919 + seed * 104_729) % (512 * 512);
            features::Keypoint {
                x: (spot % 512) as f32,
                y: (spot / 512) as f32,
                level: 0,
                angle: 0.0,
            }
        })
        .collect();
    FeatureSet {
        keypoints,
        descriptors: vec![descriptor; n],
    }
}

#[test]
fn a_descriptor_a_crowd_of_stored_sets_share_is_not_searched_and_real_matches_still_are() {
    const CROWD: u64 = 300;
    const FLAT: usize = 100;
    let mut index = FeatureIndex::new();
    for (i, relative) in DISTINCT_PHOTOS.iter().enumerate() {
        index.insert(100 + i as u64, features::extract(&photo(relative)));
    }
    // Many stored images with one flat region: the same descriptor 100 times in each.
    let flat = [0u64; 4];
    for i in 0..CROWD {
        index.insert(1000 + i, crowd(flat, FLAT, i));
    }
    // An upload: a crop of a banked photo, with that flat descriptor 100 times over.
    let mut query = features::extract(&cropped(&photo(DISTINCT_PHOTOS[0])));
    let added = crowd(flat, FLAT, CROWD);
    query.keypoints.extend(added.keypoints);
    query.descriptors.extend(added.descriptors);

    let searched = index.search_counted(&query);
    // The flat descriptors (and the odd real one whose buckets the crowd fills) are left
    // out: each would have had all 30,000 of the crowd's looked at, in every table.
    assert!(
        (FLAT..FLAT + 10).contains(&searched.common),
        "{} left out",
        searched.common
    );
    assert!(
        searched.candidates < 1_000_000,
        "{} candidates",
        searched.candidates
    );
    assert_eq!(
        searched.hits.first().map(|hit| hit.id),
        Some(100),
        "{:?}",
        searched.hits
    );
    assert!(
        searched.hits.iter().all(|hit| hit.id < 1000),
        "{:?}",
        searched.hits
    );
}
