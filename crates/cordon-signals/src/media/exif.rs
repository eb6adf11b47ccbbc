//! Evidence a file carries about where it came from: its EXIF capture time, camera,
//! software, GPS position and orientation. Read, never trusted blindly: a verdict weighs
//! it against what else is known (a capture time years before the claimed posting time
//! says the photo is recycled; no EXIF at all says only that it was stripped).

use std::io::Cursor;

use exif::{In, Reader, Tag, Value};

/// What a file's EXIF says, where it says anything.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExifEvidence {
    /// `DateTimeOriginal` (or `DateTime`), as written: `YYYY:MM:DD HH:MM:SS`, no zone.
    pub capture_time: Option<String>,
    pub make: Option<String>,
    pub model: Option<String>,
    pub software: Option<String>,
    /// Latitude and longitude in degrees (south and west negative).
    pub gps: Option<(f64, f64)>,
    pub orientation: Option<u32>,
}

impl ExifEvidence {
    pub fn is_empty(&self) -> bool {
        *self == ExifEvidence::default()
    }
}

/// The EXIF evidence in `bytes` (JPEG, PNG, WebP, TIFF), or `None` when there is none or
/// it cannot be read.
pub fn read_exif(bytes: &[u8]) -> Option<ExifEvidence> {
    let exif = Reader::new().read_from_container(&mut Cursor::new(bytes)).ok()?;
    let text = |tag: Tag| {
        let field = exif.get_field(tag, In::PRIMARY)?;
        match &field.value {
            Value::Ascii(parts) => {
                let joined: Vec<String> = parts
                    .iter()
                    .map(|p| {
                        String::from_utf8_lossy(p)
                            .trim_matches(char::from(0))
                            .trim()
                            .to_string()
                    })
                    .filter(|p| !p.is_empty())
                    .collect();
                (!joined.is_empty()).then(|| joined.join(" "))
            }
            _ => None,
        }
    };
    let evidence = ExifEvidence {
        capture_time: text(Tag::DateTimeOriginal).or_else(|| text(Tag::DateTime)),
        make: text(Tag::Make),
        model: text(Tag::Model),
        software: text(Tag::Software),
        gps: gps(&exif),
        orientation: exif
            .get_field(Tag::Orientation, In::PRIMARY)
            .and_then(|f| f.value.get_uint(0)),
    };
    (!evidence.is_empty()).then_some(evidence)
}

/// Degrees from the EXIF degrees-minutes-seconds rationals and their N/S, E/W references.
fn gps(exif: &exif::Exif) -> Option<(f64, f64)> {
    let degrees = |value_tag: Tag, ref_tag: Tag, negative: u8| {
        let value = exif.get_field(value_tag, In::PRIMARY)?;
        let Value::Rational(parts) = &value.value else {
            return None;
        };
        let [d, m, s] = parts.get(..3)? else { return None };
        let angle = d.to_f64() + m.to_f64() / 60.0 + s.to_f64() / 3600.0;
        let sign = match exif.get_field(ref_tag, In::PRIMARY).map(|f| &f.value) {
            Some(Value::Ascii(r)) if r.first().and_then(|r| r.first()) == Some(&negative) => -1.0,
            _ => 1.0,
        };
        angle.is_finite().then_some(sign * angle)
    };
    Some((
        degrees(Tag::GPSLatitude, Tag::GPSLatitudeRef, b'S')?,
        degrees(Tag::GPSLongitude, Tag::GPSLongitudeRef, b'W')?,
    ))
}
