//! Rectangles of an image, and where the picture is inside the borders, mats, letterbox
//! bars and screenshot padding that reposts wrap around it.
//!
//! Trimming looks only at lines that run the whole width or height: it peels, from each
//! edge inward, lines made almost entirely of one colour. When such a run stops at a line
//! that is itself one colour (the dark rule inside a white mat, a status bar above a white
//! page), it goes on with that colour. Lines with a little text on a plain background (the
//! caption of a screenshot) count as plain. The same bytes always trim the same way, so a
//! bank image and its repost land on the same picture when only the wrapping differs.

use crate::media::DecodedImage;

/// A rectangle of an image, in pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Region {
    pub left: u32,
    pub top: u32,
    pub width: u32,
    pub height: u32,
}

impl Region {
    /// The whole of `image`.
    pub fn whole(image: &DecodedImage) -> Region {
        Region {
            left: 0,
            top: 0,
            width: image.width(),
            height: image.height(),
        }
    }

    /// The part of `self` inside `image` (empty if none is).
    pub fn clamped_to(self, image: &DecodedImage) -> Region {
        let left = self.left.min(image.width());
        let top = self.top.min(image.height());
        Region {
            left,
            top,
            width: self.width.min(image.width() - left),
            height: self.height.min(image.height() - top),
        }
    }

    pub fn is_whole(&self, image: &DecodedImage) -> bool {
        *self == Region::whole(image)
    }
}

/// How far (per channel, 0-255) a pixel may be from a line's colour and still count as it:
/// wide enough for JPEG ringing along a border, narrow enough to stop at real content.
const TOLERANCE: i16 = 24;
/// The share of a line that must be the background colour to peel it off.
const PLAIN_SHARE: f32 = 0.88;
/// The share of a line that must be one colour for that colour to become the background.
const UNIFORM_SHARE: f32 = 0.97;
/// The trimmed picture keeps at least this share of each side, and this many pixels.
const MIN_KEPT_SHARE: f32 = 0.2;
const MIN_KEPT_PIXELS: u32 = 32;

/// The picture inside uniform edges; the whole image when there are none or when trimming
/// would leave too little to be a picture.
pub fn trim_borders(image: &DecodedImage) -> Region {
    let lines = Lines { image };
    let mut region = Region::whole(image);
    // Peeling one side shortens the lines of the others (a mat's inner rule runs the
    // full width only once the mat's sides are gone): go round until nothing changes.
    for _ in 0..4 {
        let before = region;
        region = lines.peel_region(region);
        if region == before {
            break;
        }
    }
    let keeps_enough =
        |kept: u32, of: u32| kept >= MIN_KEPT_PIXELS && kept as f32 >= MIN_KEPT_SHARE * of as f32;
    if keeps_enough(region.width, image.width()) && keeps_enough(region.height, image.height()) {
        region
    } else {
        Region::whole(image)
    }
}

/// A row or a column of pixels, limited to a span of the other axis.
#[derive(Clone, Copy)]
enum Line {
    Row { y: u32, from: u32, to: u32 },
    Column { x: u32, from: u32, to: u32 },
}

struct Lines<'a> {
    image: &'a DecodedImage,
}

impl Lines<'_> {
    /// `region` with its plain edges peeled, top and bottom first.
    fn peel_region(&self, region: Region) -> Region {
        let Region {
            left,
            top,
            width,
            height,
        } = region;
        let (right_edge, bottom_edge) = (left + width, top + height);
        let row = |y| Line::Row {
            y,
            from: left,
            to: right_edge,
        };
        let peeled_top = self.peel(height, |i| row(top + i));
        let peeled_bottom = self.peel(height - peeled_top, |i| row(bottom_edge - 1 - i));
        let (top, bottom_edge) = (top + peeled_top, bottom_edge - peeled_bottom);
        let column = |x| Line::Column {
            x,
            from: top,
            to: bottom_edge,
        };
        let peeled_left = if top < bottom_edge {
            self.peel(width, |i| column(left + i))
        } else {
            0
        };
        let peeled_right = if top < bottom_edge {
            self.peel(width - peeled_left, |i| column(right_edge - 1 - i))
        } else {
            0
        };
        Region {
            left: left + peeled_left,
            top,
            width: width - peeled_left - peeled_right,
            height: bottom_edge - top,
        }
    }

    /// How many lines, `line(0)`, `line(1)`, ... from an edge inward, are background.
    fn peel(&self, available: u32, line: impl Fn(u32) -> Line) -> u32 {
        let mut background: Option<[u8; 3]> = None;
        let mut peeled = 0;
        while peeled < available {
            let current = line(peeled);
            let plain = background.is_some_and(|colour| self.share_near(current, colour) >= PLAIN_SHARE);
            if !plain {
                // A new run starts only at a line that is one colour by itself.
                let colour = self.median(current);
                if self.share_near(current, colour) < UNIFORM_SHARE {
                    break;
                }
                background = Some(colour);
            }
            peeled += 1;
        }
        peeled
    }

    fn pixels(&self, line: Line) -> impl Iterator<Item = [u8; 3]> + '_ {
        let image = self.image;
        let channels = image.layout().channels();
        let width = image.width() as usize;
        let (start, step, count) = match line {
            Line::Row { y, from, to } => (y as usize * width + from as usize, 1, (to - from) as usize),
            Line::Column { x, from, to } => (from as usize * width + x as usize, width, (to - from) as usize),
        };
        (0..count).map(move |i| {
            let at = (start + i * step) * channels;
            let p = &image.pixels()[at..at + channels];
            if channels == 3 {
                [p[0], p[1], p[2]]
            } else {
                [p[0]; 3]
            }
        })
    }

    /// The per-channel median colour of a line.
    fn median(&self, line: Line) -> [u8; 3] {
        let mut histograms = [[0u32; 256]; 3];
        let mut count = 0u32;
        for pixel in self.pixels(line) {
            for (histogram, value) in histograms.iter_mut().zip(pixel) {
                histogram[usize::from(value)] += 1;
            }
            count += 1;
        }
        histograms.map(|histogram| {
            let mut seen = 0;
            let half = count.div_ceil(2);
            histogram
                .iter()
                .position(|&n| {
                    seen += n;
                    seen >= half
                })
                .map_or(0, |v| v as u8)
        })
    }

    /// The share of a line's pixels within [`TOLERANCE`] of `colour` on every channel.
    fn share_near(&self, line: Line, colour: [u8; 3]) -> f32 {
        let (mut near, mut count) = (0u32, 0u32);
        for pixel in self.pixels(line) {
            let close = pixel
                .iter()
                .zip(colour)
                .all(|(&p, c)| (i16::from(p) - i16::from(c)).abs() <= TOLERANCE);
            near += u32::from(close);
            count += 1;
        }
        if count == 0 {
            0.0
        } else {
            near as f32 / count as f32
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::PixelLayout;

    /// A busy picture: every pixel differs from its neighbours.
    fn picture(width: u32, height: u32) -> Vec<[u8; 3]> {
        (0..width * height)
            .map(|i| {
                let (x, y) = (i % width, i / width);
                [
                    (x * 37 + y * 11) as u8,
                    (x * 5 + y * 53) as u8,
                    ((x * 13) ^ (y * 7)) as u8,
                ]
            })
            .collect()
    }

    /// `inner` placed at (left, top) on a canvas of `background`.
    fn framed(
        inner: &[[u8; 3]],
        inner_width: u32,
        canvas: (u32, u32),
        at: (u32, u32),
        background: [u8; 3],
    ) -> DecodedImage {
        let (width, height) = canvas;
        let mut pixels = vec![background; (width * height) as usize];
        for (i, pixel) in inner.iter().enumerate() {
            let (x, y) = (i as u32 % inner_width + at.0, i as u32 / inner_width + at.1);
            pixels[(y * width + x) as usize] = *pixel;
        }
        DecodedImage::from_pixels(width, height, PixelLayout::Rgb, pixels.concat()).unwrap()
    }

    #[test]
    fn a_plain_picture_is_not_trimmed() {
        let image = framed(&picture(120, 80), 120, (120, 80), (0, 0), [0, 0, 0]);
        assert_eq!(trim_borders(&image), Region::whole(&image));
    }

    #[test]
    fn borders_and_letterbox_bars_are_trimmed() {
        let image = framed(&picture(120, 80), 120, (150, 120), (10, 25), [0, 0, 0]);
        assert_eq!(
            trim_borders(&image),
            Region {
                left: 10,
                top: 25,
                width: 120,
                height: 80
            }
        );
    }

    #[test]
    fn a_mat_with_a_rule_inside_is_trimmed_to_the_picture() {
        let inner = framed(&picture(100, 60), 100, (104, 64), (2, 2), [60, 60, 60]);
        let inner_pixels: Vec<[u8; 3]> = inner
            .pixels()
            .chunks_exact(3)
            .map(|p| [p[0], p[1], p[2]])
            .collect();
        let image = framed(&inner_pixels, 104, (140, 100), (18, 18), [250, 250, 250]);
        assert_eq!(
            trim_borders(&image),
            Region {
                left: 20,
                top: 20,
                width: 100,
                height: 60
            }
        );
    }

    #[test]
    fn plain_lines_with_a_little_text_count_as_padding() {
        let mut image = framed(&picture(100, 60), 100, (100, 200), (0, 70), [255, 255, 255]);
        // A line of "text": dark dots over a twentieth of rows 20-29.
        let mut pixels = image.pixels().to_vec();
        for y in 20..30 {
            for x in (10..60).step_by(10) {
                pixels[(y * 100 + x) * 3..][..3].copy_from_slice(&[20, 20, 20]);
            }
        }
        image = DecodedImage::from_pixels(100, 200, PixelLayout::Rgb, pixels).unwrap();
        assert_eq!(
            trim_borders(&image),
            Region {
                left: 0,
                top: 70,
                width: 100,
                height: 60
            }
        );
    }

    #[test]
    fn a_blank_image_is_kept_whole() {
        let image = framed(&[], 1, (64, 64), (0, 0), [128, 128, 128]);
        assert_eq!(trim_borders(&image), Region::whole(&image));
    }
}
