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
/// The trimmed picture keeps at least this many pixels of each side.
const MIN_KEPT_PIXELS: u32 = 32;

/// How far trimming goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Depth {
    /// Borders, mats, bars and padding with a little text.
    Borders,
    /// Also whole bands of text on the padding: the page around a screenshot's picture.
    Page,
}

impl Depth {
    /// The share of each side the trimmed picture keeps at least. A screenshot's picture
    /// can be a fifth of the screen's height and lose its plain sky on top of that.
    fn min_kept_share(self) -> f32 {
        match self {
            Depth::Borders => 0.2,
            Depth::Page => 0.1,
        }
    }
}

/// A band of text on a plain background (the lines of a screenshot's page): each of its
/// lines has at least this share of background, and the band is at most
/// [`TEXT_BAND_SHARE`] of the image across it, then background again.
const TEXT_BACKGROUND_SHARE: f32 = 0.5;
const TEXT_BAND_SHARE: f32 = 0.08;

/// The picture inside uniform edges; the whole image when there are none or when trimming
/// would leave too little to be a picture.
pub fn trim_borders(image: &DecodedImage) -> Region {
    trim(image, Depth::Borders)
}

/// The picture inside uniform edges and the bands of text on them: what a screenshot of a
/// post shows of the picture. Deeper than [`trim_borders`], for a whole-picture hash
/// (PDQ): the page's text lines would change the hash entirely. Local features keep
/// [`trim_borders`]: they tolerate the text, and the deeper cut sometimes takes rows of
/// the picture itself (a sparse pattern on a plain ground looks like lines of text).
pub fn trim_page(image: &DecodedImage) -> Region {
    trim(image, Depth::Page)
}

fn trim(image: &DecodedImage, depth: Depth) -> Region {
    let lines = Lines { image, depth };
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
        |kept: u32, of: u32| kept >= MIN_KEPT_PIXELS && kept as f32 >= depth.min_kept_share() * of as f32;
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
    depth: Depth,
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
        let (image_width, image_height) = (self.image.width(), self.image.height());
        let row = |y| Line::Row {
            y,
            from: left,
            to: right_edge,
        };
        let peeled_top = self.peel(height, image_height, |i| row(top + i));
        let peeled_bottom = self.peel(height - peeled_top, image_height, |i| row(bottom_edge - 1 - i));
        let (top, bottom_edge) = (top + peeled_top, bottom_edge - peeled_bottom);
        let column = |x| Line::Column {
            x,
            from: top,
            to: bottom_edge,
        };
        let peeled_left = if top < bottom_edge {
            self.peel(width, image_width, |i| column(left + i))
        } else {
            0
        };
        let peeled_right = if top < bottom_edge {
            self.peel(width - peeled_left, image_width, |i| column(right_edge - 1 - i))
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
    /// `side` is the length of the image across these lines, which bounds a text band.
    fn peel(&self, available: u32, side: u32, line: impl Fn(u32) -> Line) -> u32 {
        let max_band = ((side as f32 * TEXT_BAND_SHARE) as u32).max(1);
        // A band found is passed over, so finding bands reads each line about once; a
        // band not found reads up to `max_band` lines for nothing, and lines each half
        // near the colour of the one before (a run of colours a few levels apart) made
        // that happen at every line: a 2000x5849 picture took 12 s. Past reading each
        // line twice and two failed bands, no more bands are looked for.
        let mut band_lines = 2 * u64::from(available) + 2 * (u64::from(max_band) + 1);
        let mut background: Option<[u8; 3]> = None;
        let mut peeled = 0;
        while peeled < available {
            let current = line(peeled);
            if let Some(colour) = background {
                if self.share_near(current, colour) >= PLAIN_SHARE {
                    peeled += 1;
                    continue;
                }
                if self.depth == Depth::Page
                    && let Some(band) =
                        self.text_band(peeled..available, max_band, colour, &line, &mut band_lines)
                {
                    peeled += band;
                    continue;
                }
            }
            // A new run starts only at a line that is one colour by itself.
            let colour = self.median(current);
            if self.share_near(current, colour) < UNIFORM_SHARE {
                break;
            }
            background = Some(colour);
            peeled += 1;
        }
        peeled
    }

    /// How many lines from the first of `lines` make a band of text on `background` (each
    /// mostly background, the band at most `max_band` lines and followed by a plain line),
    /// or `None` when they are not one: then the picture starts there. Reads at most
    /// `budget` lines (taken from it): `None` past them.
    fn text_band(
        &self,
        lines: std::ops::Range<u32>,
        max_band: u32,
        background: [u8; 3],
        line: impl Fn(u32) -> Line,
        budget: &mut u64,
    ) -> Option<u32> {
        let start = lines.start;
        for at in lines.take(max_band as usize + 1) {
            *budget = budget.checked_sub(1)?;
            let share = self.share_near(line(at), background);
            if share >= PLAIN_SHARE {
                return Some(at - start);
            }
            if share < TEXT_BACKGROUND_SHARE {
                return None;
            }
        }
        None
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
        #[cfg(test)]
        tests::LINES_READ.with(|read| read.set(read.get() + 1));
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

    thread_local! {
        /// Lines this thread's trimming compared with a colour.
        pub(super) static LINES_READ: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    }

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

    /// A phone screenshot of a post: a dark status bar, then a white page with lines of
    /// text (`lines` rows of ink each) above and below `picture`.
    fn screenshot(picture: &[[u8; 3]], (width, height): (u32, u32), lines: u32) -> DecodedImage {
        let canvas = (width, height + 240);
        let mut image = framed(picture, width, canvas, (0, 120), [255, 255, 255]);
        let mut pixels = image.pixels().to_vec();
        let mut paint = |y: u32, x: u32, colour: [u8; 3]| {
            pixels[((y * width + x) * 3) as usize..][..3].copy_from_slice(&colour);
        };
        for y in 0..20 {
            (0..width).for_each(|x| paint(y, x, [40, 40, 40]));
        }
        // Two lines of words above the picture, two below: ink on a third of each row.
        for first in [40, 80, 140 + height, 180 + height] {
            for y in first..first + lines {
                (0..width)
                    .filter(|x| x % 3 == 0)
                    .for_each(|x| paint(y, x, [20, 20, 20]));
            }
        }
        image = DecodedImage::from_pixels(canvas.0, canvas.1, PixelLayout::Rgb, pixels).unwrap();
        image
    }

    #[test]
    fn the_page_of_a_screenshot_is_trimmed_to_its_picture() {
        let image = screenshot(&picture(120, 80), (120, 80), 14);
        let picture = Region {
            left: 0,
            top: 120,
            width: 120,
            height: 80,
        };
        assert_eq!(trim_page(&image), picture);
        // Trimming borders stops at the first line of words: too much ink to be padding.
        assert_eq!(trim_borders(&image).top, 40);
    }

    #[test]
    fn a_band_taller_than_a_line_of_text_is_picture() {
        // 8% of the 320-pixel height is 25 rows: a 30-row "line" is not text.
        let image = screenshot(&picture(120, 80), (120, 80), 30);
        assert_eq!(trim_page(&image).top, 40);
    }

    #[test]
    fn a_picture_is_not_cut_by_trimming_its_page() {
        let image = framed(&picture(120, 80), 120, (120, 80), (0, 0), [0, 0, 0]);
        assert_eq!(trim_page(&image), Region::whole(&image));
    }

    #[test]
    fn a_blank_image_is_kept_whole() {
        let image = framed(&[], 1, (64, 64), (0, 0), [128, 128, 128]);
        assert_eq!(trim_borders(&image), Region::whole(&image));
        assert_eq!(trim_page(&image), Region::whole(&image));
    }

    #[test]
    fn trimming_reads_each_line_a_few_times_however_its_colours_run() {
        // Rows of 469 colours in turn, each 60% one colour and 40% that colour plus 24 on
        // every channel: plain by itself, and near enough to each other colour's run to
        // look like a line of text on it, but never plain on it. Every row then started a
        // search for a band of text through the next 8% of the rows, in vain.
        let colours: Vec<[u8; 3]> = (0..25u8)
            .flat_map(|x| (0..25u8).flat_map(move |y| (0..25u8).map(move |z| [x, y, z])))
            .filter(|&[x, y, z]| u32::from(x) + u32::from(y) + u32::from(z) == 36)
            .map(|colour| colour.map(|c| c + 100))
            .collect();
        let (width, height) = (10, 5849);
        let pixels: Vec<[u8; 3]> = (0..width * height)
            .map(|i| {
                let colour = colours[(i / width) as usize % colours.len()];
                if i % width < 6 {
                    colour
                } else {
                    colour.map(|c| c + 24)
                }
            })
            .collect();
        let image = DecodedImage::from_pixels(width, height, PixelLayout::Rgb, pixels.concat()).unwrap();
        LINES_READ.with(|read| read.set(0));
        assert_eq!(trim_page(&image), Region::whole(&image));
        let read = LINES_READ.with(std::cell::Cell::get);
        // Each line of the four sides read a few times, not 8% of the lines for each.
        let lines = u64::from(2 * (width + height));
        assert!(read <= 4 * lines, "{read} lines read");
    }
}
