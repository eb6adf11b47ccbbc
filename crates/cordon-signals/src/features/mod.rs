//! Local features: what still matches when a repost is cropped, captioned, framed,
//! screenshotted or tilted, which PDQ (one hash of the whole picture) cannot survive.
//!
//! An image becomes a [`FeatureSet`]: up to [`MAX_KEYPOINTS`] corners found on a pyramid
//! of its grey working copy, each with an orientation and a 256-bit binary descriptor
//! comparing pairs of smoothed pixels around it (in the manner of ORB: oriented corners,
//! rotated BRIEF pairs). Two sets are the same picture when enough of their descriptors
//! pair up *and* the pairs agree on one geometric transformation (shift, scale, rotation,
//! with each pair's pyramid levels fitting the scale), checked by [`verify`]: chance
//! pairings between unrelated images do not line up, which is what keeps false matches
//! out.

mod describe;
mod detect;
mod geometry;
mod text;

pub use geometry::{PAIR_RADIUS, Verification, verify, verify_against};
pub use text::ParseFeaturesError;

use crate::media::DecodedImage;
use crate::region::{Region, trim_borders};
use detect::Grey;

/// The long side every image is resampled to before detection.
const WORKING_SIDE: usize = 512;
/// Pyramid levels, each [`LEVEL_STEP`] times smaller than the one before: from the full
/// working size down to about 0.4 of it, enough for a picture that fills half a screenshot.
const LEVELS: usize = 5;
const LEVEL_STEP: f32 = 1.25;
/// Keypoints kept per image, shared between levels by area.
pub const MAX_KEYPOINTS: usize = 400;
/// Two images are the same picture when at least this many descriptor pairs agree on one
/// transformation.
pub const MIN_INLIERS: u32 = 12;
/// A features match's distance: 100 minus the agreeing pairs, so that, as for PDQ,
/// smaller is closer and a threshold is the largest distance that matches.
pub const fn distance(verification: &Verification) -> u32 {
    distance_of_inliers(verification.inliers)
}

/// [`distance`] from the count of agreeing pairs.
pub const fn distance_of_inliers(inliers: u32) -> u32 {
    100u32.saturating_sub(inliers)
}

/// The distance of exactly [`MIN_INLIERS`] agreeing pairs.
pub const DEFAULT_THRESHOLD: u32 = 100 - MIN_INLIERS;

/// Keypoints closer than this to an edge are dropped: the rotated pattern must fit.
const MARGIN: usize = describe::PATCH_RADIUS as usize + 2;

/// A keypoint, in the pixels of the working copy's largest level.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Keypoint {
    pub x: f32,
    pub y: f32,
    /// The pyramid level it was found on (0 = full working size).
    pub level: u8,
    /// Radians, from the intensity centroid around it.
    pub angle: f32,
}

impl Keypoint {
    /// How many working-copy pixels one pixel of its level spans.
    pub fn scale(&self) -> f32 {
        LEVEL_STEP.powi(i32::from(self.level))
    }
}

/// The local features of one image.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FeatureSet {
    pub keypoints: Vec<Keypoint>,
    pub descriptors: Vec<[u64; 4]>,
}

impl FeatureSet {
    pub fn len(&self) -> usize {
        self.keypoints.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keypoints.is_empty()
    }
}

/// The local features of the picture in `image`, inside any borders, mats or screenshot
/// padding (see [`trim_borders`]): a framed repost shows the same picture at the same
/// working scale as its original. A picture without detail (blank, or nearly: a colour
/// under a transparent layer) has no set: fewer than [`MIN_INLIERS`] corners above
/// rounding noise (`detect::MIN_RESPONSE`) could never verify.
pub fn extract(image: &DecodedImage) -> FeatureSet {
    extract_in(image, trim_borders(image))
}

/// The local features of `region` of `image`, as it is: [`extract`] with the region its
/// caller has already trimmed, or the whole image with its borders, padding and plain
/// ground, which a repost keeps when it adds around the picture something trimming cannot
/// take off (a tilt's black corners, a caption bar).
pub fn extract_in(image: &DecodedImage, region: Region) -> FeatureSet {
    Extraction::run(image, region, false).0
}

/// [`extract`], and the features its mirror image would give, at little extra cost: the
/// corners of a mirror image are the mirrored corners, so only the descriptors are
/// computed again, with the pattern mirrored.
pub fn extract_with_mirror(image: &DecodedImage) -> (FeatureSet, FeatureSet) {
    let (features, mirrored) = Extraction::run(image, trim_borders(image), true);
    (features, mirrored.unwrap_or_default())
}

struct Extraction {
    features: FeatureSet,
    mirrored: Option<FeatureSet>,
}

impl Extraction {
    fn run(image: &DecodedImage, region: Region, with_mirror: bool) -> (FeatureSet, Option<FeatureSet>) {
        let mut extraction = Extraction {
            features: FeatureSet::default(),
            mirrored: with_mirror.then(FeatureSet::default),
        };
        if region.width < 16 || region.height < 16 {
            return (extraction.features, extraction.mirrored);
        }
        let mut level_image = Grey::working_copy(image, region, WORKING_SIDE);
        let areas: Vec<f32> = (0..LEVELS).map(|l| LEVEL_STEP.powi(-2 * l as i32)).collect();
        let total_area: f32 = areas.iter().sum();
        for (level, area) in areas.iter().enumerate() {
            if level > 0 {
                let width = (level_image.width as f32 / LEVEL_STEP).round() as usize;
                let height = (level_image.height as f32 / LEVEL_STEP).round() as usize;
                if width <= 2 * MARGIN + 2 || height <= 2 * MARGIN + 2 {
                    break;
                }
                level_image = detect::resample(&level_image, width, height);
            }
            let share = (MAX_KEYPOINTS as f32 * area / total_area).ceil() as usize;
            let quota = share.min(MAX_KEYPOINTS - extraction.features.len());
            extraction.describe_level(&level_image, level, quota);
        }
        if extraction.features.len() < MIN_INLIERS as usize {
            // Too few corners ever to verify: banked, the set could never match, and as a
            // query it could never find anything.
            return (FeatureSet::default(), with_mirror.then(FeatureSet::default));
        }
        (extraction.features, extraction.mirrored)
    }

    fn describe_level(&mut self, image: &Grey, level: usize, quota: usize) {
        let corners = detect::harris_corners(image, MARGIN, quota);
        if corners.is_empty() {
            return;
        }
        let smoothed = detect::smooth(image);
        let scale = LEVEL_STEP.powi(level as i32);
        for corner in corners {
            // Rounded to what the text form keeps, so a set read back is the set written.
            let angle = detect::orientation(image, corner.x, corner.y);
            let angle = text::quantize_angle(angle);
            let patch = describe::Patch::around(&smoothed, corner.x, corner.y);
            let descriptor = patch.descriptor(angle, false);
            self.features.push(
                Keypoint::at(corner.x as f32 * scale, corner.y as f32 * scale, level, angle),
                descriptor,
            );
            if let Some(mirrored) = &mut self.mirrored {
                // In the mirror image the corner sits at width - 1 - x and its angle is
                // pi - angle; its pattern, turned that way, reads the pixels the mirrored
                // pattern reads here.
                let x = (image.width - 1 - corner.x) as f32 * scale;
                let mirror_angle = text::quantize_angle(std::f32::consts::PI - angle);
                let descriptor = patch.descriptor(angle, true);
                mirrored.push(
                    Keypoint::at(x, corner.y as f32 * scale, level, mirror_angle),
                    descriptor,
                );
            }
        }
    }
}

impl Keypoint {
    /// A keypoint rounded to what the text form keeps.
    fn at(x: f32, y: f32, level: usize, angle: f32) -> Keypoint {
        Keypoint {
            x: text::quantize_position(x),
            y: text::quantize_position(y),
            level: level as u8,
            angle,
        }
    }
}

impl FeatureSet {
    fn push(&mut self, keypoint: Keypoint, descriptor: [u64; 4]) {
        self.keypoints.push(keypoint);
        self.descriptors.push(descriptor);
    }
}
