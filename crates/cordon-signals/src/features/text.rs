//! The text form of a [`FeatureSet`]: `f1:` and the base64 of 38 bytes per keypoint
//! (x and y in quarter pixels, level, angle in 1/256 turns, the 32-byte descriptor), so
//! feature sets travel through banks, exports and the API like any other signal.
//! [`super::extract`] rounds positions and angles to exactly what this form holds, so
//! a set read back equals the set written.

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;

use super::{FeatureSet, Keypoint, LEVELS, MAX_KEYPOINTS};

const PREFIX: &str = "f1:";
const BYTES_PER_KEYPOINT: usize = 38;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseFeaturesError {
    #[error("a feature set starts with {PREFIX:?}")]
    Prefix,
    #[error("not base64: {0}")]
    Base64(String),
    #[error("{0} bytes is not a whole number of {BYTES_PER_KEYPOINT}-byte keypoints")]
    Length(usize),
    #[error("{0} keypoints is more than {MAX_KEYPOINTS}")]
    TooMany(usize),
    #[error("keypoint level {0} is beyond the pyramid's last level, {last}", last = LEVELS - 1)]
    Level(u8),
}

/// Positions are kept in quarter pixels.
pub(super) fn quantize_position(v: f32) -> f32 {
    (v * 4.0).round() / 4.0
}

/// Angles are kept in 1/256 turns.
pub(super) fn quantize_angle(angle: f32) -> f32 {
    f32::from(angle_to_byte(angle)) * std::f32::consts::TAU / 256.0
}

fn angle_to_byte(angle: f32) -> u8 {
    ((angle / std::f32::consts::TAU * 256.0).round() as i32).rem_euclid(256) as u8
}

impl fmt::Display for FeatureSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut bytes = Vec::with_capacity(self.len() * BYTES_PER_KEYPOINT);
        for (k, d) in self.keypoints.iter().zip(&self.descriptors) {
            bytes.extend(((k.x * 4.0) as u16).to_le_bytes());
            bytes.extend(((k.y * 4.0) as u16).to_le_bytes());
            bytes.push(k.level);
            bytes.push(angle_to_byte(k.angle));
            for word in d {
                bytes.extend(word.to_le_bytes());
            }
        }
        write!(f, "{PREFIX}{}", STANDARD_NO_PAD.encode(bytes))
    }
}

impl FromStr for FeatureSet {
    type Err = ParseFeaturesError;

    fn from_str(text: &str) -> Result<FeatureSet, ParseFeaturesError> {
        let body = text
            .trim()
            .strip_prefix(PREFIX)
            .ok_or(ParseFeaturesError::Prefix)?;
        let bytes = STANDARD_NO_PAD
            .decode(body)
            .map_err(|e| ParseFeaturesError::Base64(e.to_string()))?;
        if bytes.len() % BYTES_PER_KEYPOINT != 0 {
            return Err(ParseFeaturesError::Length(bytes.len()));
        }
        let count = bytes.len() / BYTES_PER_KEYPOINT;
        if count > MAX_KEYPOINTS {
            return Err(ParseFeaturesError::TooMany(count));
        }
        let mut set = FeatureSet::default();
        for chunk in bytes.chunks_exact(BYTES_PER_KEYPOINT) {
            // The level sets a keypoint's scale, which verification compares.
            if usize::from(chunk[4]) >= LEVELS {
                return Err(ParseFeaturesError::Level(chunk[4]));
            }
            let u16_at = |i: usize| u16::from_le_bytes([chunk[i], chunk[i + 1]]);
            set.keypoints.push(Keypoint {
                x: f32::from(u16_at(0)) / 4.0,
                y: f32::from(u16_at(2)) / 4.0,
                level: chunk[4],
                angle: f32::from(chunk[5]) * std::f32::consts::TAU / 256.0,
            });
            set.descriptors.push(std::array::from_fn(|w| {
                let mut word = [0u8; 8];
                word.copy_from_slice(&chunk[6 + 8 * w..][..8]);
                u64::from_le_bytes(word)
            }));
        }
        Ok(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_keypoint(level: u8) -> FeatureSet {
        FeatureSet {
            keypoints: vec![Keypoint {
                x: 10.25,
                y: 3.5,
                level,
                angle: 0.0,
            }],
            descriptors: vec![[1, 2, 3, 4]],
        }
    }

    #[test]
    fn levels_beyond_the_pyramid_are_refused() {
        let last = (LEVELS - 1) as u8;
        let text = one_keypoint(last).to_string();
        assert_eq!(text.parse::<FeatureSet>(), Ok(one_keypoint(last)));
        let text = one_keypoint(last + 1).to_string();
        assert_eq!(
            text.parse::<FeatureSet>(),
            Err(ParseFeaturesError::Level(last + 1))
        );
        assert_eq!(
            ParseFeaturesError::Level(9).to_string(),
            "keypoint level 9 is beyond the pyramid's last level, 4"
        );
    }
}
