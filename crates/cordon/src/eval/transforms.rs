//! The transformations `cordon eval` applies to each original to make its reposts: what
//! platforms do to an upload (re-encoding, resizing), what people do before posting again
//! (cropping, borders, captions, logos, colour changes, rotation, screenshots) and what
//! both do at once. Each is a small function on an RGB image, deterministic for a given
//! original: the only randomness (where a crop falls) is seeded from the original's index.

use anyhow::Context;
use cordon_signals::{DecodeLimits, DecodedImage, PixelLayout};
use image::imageops::{self, FilterType};
use image::{Rgb, RgbImage};

use super::font::{self, GLYPH_HEIGHT};

const BLACK: Rgb<u8> = Rgb([0, 0, 0]);
const WHITE: Rgb<u8> = Rgb([255, 255, 255]);
/// The inner line of a frame, a caption bar, a screenshot's status bar.
const DARK_GREY: Rgb<u8> = Rgb([40, 40, 40]);
/// A screenshot's UI text and a logo's letter.
const INK: Rgb<u8> = Rgb([30, 30, 34]);

/// One way of turning an original into a repost.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transform {
    Jpeg30,
    Half,
    Thumb320,
    Crop5,
    Crop10,
    Crop20,
    Border,
    Frame,
    Caption,
    Logo,
    Grey,
    Bright,
    Contrast,
    Mirror,
    Rot90,
    Rot180,
    Tilt3,
    TiltMinus3,
    Screenshot,
    Text,
}

impl Transform {
    /// Every transformation, in the order reports list them.
    pub const ALL: [Transform; 20] = [
        Transform::Jpeg30,
        Transform::Half,
        Transform::Thumb320,
        Transform::Crop5,
        Transform::Crop10,
        Transform::Crop20,
        Transform::Border,
        Transform::Frame,
        Transform::Caption,
        Transform::Logo,
        Transform::Grey,
        Transform::Bright,
        Transform::Contrast,
        Transform::Mirror,
        Transform::Rot90,
        Transform::Rot180,
        Transform::Tilt3,
        Transform::TiltMinus3,
        Transform::Screenshot,
        Transform::Text,
    ];

    /// The name used by `--transforms` and in reports.
    pub const fn name(self) -> &'static str {
        match self {
            Transform::Jpeg30 => "jpeg30",
            Transform::Half => "half",
            Transform::Thumb320 => "thumb320",
            Transform::Crop5 => "crop5",
            Transform::Crop10 => "crop10",
            Transform::Crop20 => "crop20",
            Transform::Border => "border",
            Transform::Frame => "frame",
            Transform::Caption => "caption",
            Transform::Logo => "logo",
            Transform::Grey => "grey",
            Transform::Bright => "bright",
            Transform::Contrast => "contrast",
            Transform::Mirror => "mirror",
            Transform::Rot90 => "rot90",
            Transform::Rot180 => "rot180",
            Transform::Tilt3 => "tilt3",
            Transform::TiltMinus3 => "tilt-3",
            Transform::Screenshot => "screenshot",
            Transform::Text => "text",
        }
    }

    /// The repost of `image`, the original numbered `index` in the corpus, as the pixels a
    /// platform would serve.
    pub fn apply(self, image: &RgbImage, index: usize) -> anyhow::Result<DecodedImage> {
        let mut rng = Rng::new(index, self);
        let repost = match self {
            Transform::Jpeg30 => return reencode_jpeg(image, 30),
            Transform::Half => half(image),
            Transform::Thumb320 => resize(image, fit_long_side(image.dimensions(), 320)),
            Transform::Crop5 => crop(image, 0.05, &mut rng),
            Transform::Crop10 => crop(image, 0.10, &mut rng),
            Transform::Crop20 => crop(image, 0.20, &mut rng),
            Transform::Border => border(image),
            Transform::Frame => frame(image),
            Transform::Caption => caption(image),
            Transform::Logo => logo(image),
            Transform::Grey => grey(image),
            Transform::Bright => imageops::brighten(image, BRIGHTEN),
            Transform::Contrast => imageops::contrast(image, contrast_percent(1.4)),
            Transform::Mirror => imageops::flip_horizontal(image),
            Transform::Rot90 => imageops::rotate90(image),
            Transform::Rot180 => imageops::rotate180(image),
            Transform::Tilt3 => tilt(image, 3.0),
            Transform::TiltMinus3 => tilt(image, -3.0),
            Transform::Screenshot => screenshot(image),
            Transform::Text => overlay_text(image),
        };
        to_decoded(repost)
    }
}

/// SplitMix64: deterministic and a few lines long, which is all placing crops needs.
struct Rng(u64);

impl Rng {
    /// Seeded from the original's index and the transformation, so every crop of every
    /// image falls differently but the same way on every run.
    fn new(index: usize, transform: Transform) -> Rng {
        Rng((index as u64).wrapping_mul(0x100) ^ transform as u64)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Pixels as the signals take them.
pub fn to_decoded(image: RgbImage) -> anyhow::Result<DecodedImage> {
    let (width, height) = image.dimensions();
    DecodedImage::from_pixels(width, height, PixelLayout::Rgb, image.into_raw())
        .context("wrapping transformed pixels")
}

/// A decoded image as RGB (grey repeated in all three channels), for transforming.
pub fn to_rgb(image: &DecodedImage) -> anyhow::Result<RgbImage> {
    let pixels = match image.layout() {
        PixelLayout::Rgb => image.pixels().to_vec(),
        PixelLayout::Grey => image.pixels().iter().flat_map(|&v| [v, v, v]).collect(),
    };
    RgbImage::from_raw(image.width(), image.height(), pixels)
        .with_context(|| format!("{image:?} does not hold its pixels"))
}

/// Whether every pixel has the same colour.
pub fn is_one_colour(image: &RgbImage) -> bool {
    let mut pixels = image.pixels();
    pixels.next().is_none_or(|first| pixels.all(|p| p == first))
}

/// The size with the long side made `long` and the aspect ratio kept (no side below 1).
pub fn fit_long_side((width, height): (u32, u32), long: u32) -> (u32, u32) {
    let scale = f64::from(long) / f64::from(width.max(height).max(1));
    let side = |v: u32| ((f64::from(v) * scale).round() as u32).max(1);
    (side(width), side(height))
}

/// Resizes with a triangle (bilinear) filter: what most platforms' thumbnailers do, and
/// fast.
pub fn resize(image: &RgbImage, (width, height): (u32, u32)) -> RgbImage {
    imageops::resize(image, width, height, FilterType::Triangle)
}

fn half(image: &RgbImage) -> RgbImage {
    let (width, height) = image.dimensions();
    resize(image, ((width / 2).max(1), (height / 2).max(1)))
}

/// Removes `fraction` of the width and of the height, off-centre.
fn crop(image: &RgbImage, fraction: f64, rng: &mut Rng) -> RgbImage {
    let (x, y, width, height) = crop_box(image.dimensions(), fraction, rng);
    imageops::crop_imm(image, x, y, width, height).to_image()
}

/// `(left, top, width, height)` of the part a crop keeps.
fn crop_box((width, height): (u32, u32), fraction: f64, rng: &mut Rng) -> (u32, u32, u32, u32) {
    let (left, kept_width) = crop_span(width, fraction, rng);
    let (top, kept_height) = crop_span(height, fraction, rng);
    (left, top, kept_width, kept_height)
}

/// Where a crop of one side starts and how much it keeps: `fraction` of `len` removed in
/// all, split between the two ends at a random ratio away from the middle, because people
/// crop to a subject, not symmetrically.
fn crop_span(len: u32, fraction: f64, rng: &mut Rng) -> (u32, u32) {
    let removed = ((f64::from(len) * fraction).round() as u32).min(len.saturating_sub(1));
    let near = 0.1 + 0.3 * rng.unit();
    let share = if rng.unit() < 0.5 { near } else { 1.0 - near };
    let start = (f64::from(removed) * share).round() as u32;
    (start, len - removed)
}

/// `margin` pixels of `colour` around the image on every side.
fn pad(image: &RgbImage, margin: u32, colour: Rgb<u8>) -> RgbImage {
    let (width, height) = image.dimensions();
    let mut canvas = RgbImage::from_pixel(width + 2 * margin, height + 2 * margin, colour);
    imageops::replace(&mut canvas, image, i64::from(margin), i64::from(margin));
    canvas
}

/// `fraction` of the image's short side, in pixels, at least one.
fn of_short_side(image: &RgbImage, fraction: f64) -> u32 {
    let (width, height) = image.dimensions();
    ((f64::from(width.min(height)) * fraction).round() as u32).max(1)
}

/// A black border, 5% of the short side on each side (the image grows).
fn border(image: &RgbImage) -> RgbImage {
    pad(image, of_short_side(image, 0.05), BLACK)
}

/// A white mat (8% of the short side) with a thin dark line (1%) against the picture.
fn frame(image: &RgbImage) -> RgbImage {
    let lined = pad(image, of_short_side(image, 0.01), DARK_GREY);
    pad(&lined, of_short_side(image, 0.08), WHITE)
}

/// An opaque dark bar over the bottom 15% with a line of white text: a news caption.
fn caption(image: &RgbImage) -> RgbImage {
    let (width, height) = image.dimensions();
    let bar = ((f64::from(height) * 0.15).round() as u32).max(1);
    let mut out = image.clone();
    fill_rect(&mut out, (0, height - bar), (width, bar), DARK_GREY);
    let text = "BREAKING: WATCH BEFORE IT IS DELETED";
    let scale = fitting_scale(text, f64::from(bar) * 0.45, f64::from(width) * 0.92);
    let mask = font::render(text, scale);
    let left = (i64::from(width) - i64::from(mask.width)) / 2;
    let top = i64::from(height - bar) + (i64::from(bar) - i64::from(mask.height)) / 2;
    draw_mask(&mut out, &mask, (left, top), WHITE);
    out
}

/// A broadcaster's bug: a semi-transparent white disc (12% of the short side) with a
/// dark letter, in the top-right corner, inset 3%.
fn logo(image: &RgbImage) -> RgbImage {
    let (width, _) = image.dimensions();
    let diameter = of_short_side(image, 0.12);
    let inset = of_short_side(image, 0.03);
    let radius = f64::from(diameter) / 2.0;
    let left = width.saturating_sub(inset + diameter);
    let (cx, cy) = (f64::from(left) + radius, f64::from(inset) + radius);
    let mut out = image.clone();
    for y in inset..(inset + diameter).min(out.height()) {
        for x in left..(left + diameter).min(width) {
            let (dx, dy) = (f64::from(x) + 0.5 - cx, f64::from(y) + 0.5 - cy);
            if dx * dx + dy * dy <= radius * radius {
                let pixel = out.get_pixel_mut(x, y);
                // 70% white over the picture.
                pixel.0 = pixel.0.map(|v| (f64::from(v) * 0.3 + 255.0 * 0.7).round() as u8);
            }
        }
    }
    let scale = ((f64::from(diameter) * 0.55 / f64::from(GLYPH_HEIGHT)).round() as u32).max(1);
    let mark = font::render("N", scale);
    let mark_left = (cx - f64::from(mark.width) / 2.0).round() as i64;
    let mark_top = (cy - f64::from(mark.height) / 2.0).round() as i64;
    draw_mask(&mut out, &mark, (mark_left, mark_top), INK);
    out
}

fn grey(image: &RgbImage) -> RgbImage {
    let luma = imageops::grayscale(image);
    RgbImage::from_fn(image.width(), image.height(), |x, y| {
        let v = luma.get_pixel(x, y).0[0];
        Rgb([v, v, v])
    })
}

/// +30% brightness: 30% of full scale added to every channel, clipped, as
/// `imageops::brighten` does.
const BRIGHTEN: i32 = 77;

/// The argument `imageops::contrast` takes for a contrast `factor` around mid grey: it
/// multiplies by `((100 + percent) / 100)^2`, not by `1 + percent / 100`.
fn contrast_percent(factor: f32) -> f32 {
    (factor.sqrt() - 1.0) * 100.0
}

/// Rotated by `degrees` (counter-clockwise) about the centre on the same canvas, bilinear;
/// what falls outside the picture is black, as most editors fill it.
fn tilt(image: &RgbImage, degrees: f64) -> RgbImage {
    let (width, height) = image.dimensions();
    let (sin, cos) = degrees.to_radians().sin_cos();
    let (cx, cy) = (f64::from(width) / 2.0, f64::from(height) / 2.0);
    RgbImage::from_fn(width, height, |x, y| {
        // Turn each output pixel's centre back by the angle to find where it came from.
        let (dx, dy) = (f64::from(x) + 0.5 - cx, f64::from(y) + 0.5 - cy);
        let source = (cos * dx - sin * dy + cx, sin * dx + cos * dy + cy);
        bilinear(image, source).unwrap_or(BLACK)
    })
}

/// The colour at `(x, y)` (pixel centres at half-integers), or `None` outside the image.
fn bilinear(image: &RgbImage, (x, y): (f64, f64)) -> Option<Rgb<u8>> {
    let (width, height) = image.dimensions();
    if x < 0.0 || y < 0.0 || x >= f64::from(width) || y >= f64::from(height) {
        return None;
    }
    let (fx, fy) = (x - 0.5, y - 0.5);
    let (x0, y0) = (fx.floor(), fy.floor());
    let (tx, ty) = (fx - x0, fy - y0);
    let clamp = |v: f64, len: u32| (v.max(0.0) as u32).min(len - 1);
    let (xa, xb) = (clamp(x0, width), clamp(x0 + 1.0, width));
    let (ya, yb) = (clamp(y0, height), clamp(y0 + 1.0, height));
    let (p00, p10) = (image.get_pixel(xa, ya).0, image.get_pixel(xb, ya).0);
    let (p01, p11) = (image.get_pixel(xa, yb).0, image.get_pixel(xb, yb).0);
    Some(Rgb(std::array::from_fn(|c| {
        let top = f64::from(p00[c]) * (1.0 - tx) + f64::from(p10[c]) * tx;
        let bottom = f64::from(p01[c]) * (1.0 - tx) + f64::from(p11[c]) * tx;
        (top * (1.0 - ty) + bottom * ty).round() as u8
    })))
}

/// A phone's screen: 1080x2340, white.
const SCREEN: (u32, u32) = (1080, 2340);
const STATUS_BAR: u32 = 80;
/// UI text: 28 px high, with 16 px between lines and 32 px from the left edge.
const UI_SCALE: u32 = 4;
const UI_LINE: u32 = GLYPH_HEIGHT * UI_SCALE + 16;
const UI_MARGIN: u32 = 32;
const UI_ABOVE: [&str; 2] = ["NEWSDESK @NEWSDESK - 2H", "YOU WON'T BELIEVE THIS"];
const UI_BELOW: [&str; 3] = [
    "1.2K LIKES   340 COMMENTS   88 SHARES",
    "VIEW ALL 340 COMMENTS",
    "ADD A COMMENT...",
];

/// The image in a social app's feed, captured on a phone: scaled to the screen's width,
/// slightly above the middle, a dark status bar at the top, a poster line above the image
/// and reactions below it.
fn screenshot(image: &RgbImage) -> RgbImage {
    let (screen_width, screen_height) = SCREEN;
    let above = UI_ABOVE.len() as u32 * UI_LINE + 16;
    let below = UI_BELOW.len() as u32 * UI_LINE + 16;
    let room = screen_height - STATUS_BAR - above - below;
    let (width, height) = image.dimensions();
    let mut size = fit_width(image.dimensions(), screen_width);
    if size.1 > room {
        size = (
            (f64::from(width) * f64::from(room) / f64::from(height)).round() as u32,
            room,
        );
    }
    let scaled = resize(image, (size.0.max(1), size.1.max(1)));
    // Centred on 45% of the screen's height, kept clear of the bars and text.
    let centred = (f64::from(screen_height) * 0.45 - f64::from(size.1) / 2.0).round() as u32;
    let top = centred.clamp(STATUS_BAR + above, screen_height - below - size.1);
    let left = (screen_width - size.0) / 2;
    let mut screen = RgbImage::from_pixel(screen_width, screen_height, WHITE);
    imageops::replace(&mut screen, &scaled, i64::from(left), i64::from(top));
    fill_rect(&mut screen, (0, 0), (screen_width, STATUS_BAR), DARK_GREY);
    draw_mask(
        &mut screen,
        &font::render("12:45", UI_SCALE),
        (i64::from(UI_MARGIN), 26),
        WHITE,
    );
    let lines_above = UI_ABOVE
        .iter()
        .enumerate()
        .map(|(i, text)| (top - above + 16 + i as u32 * UI_LINE, text));
    let lines_below = UI_BELOW
        .iter()
        .enumerate()
        .map(|(i, text)| (top + size.1 + 16 + i as u32 * UI_LINE, text));
    for (y, text) in lines_above.chain(lines_below) {
        draw_mask(
            &mut screen,
            &font::render(text, UI_SCALE),
            (i64::from(UI_MARGIN), i64::from(y)),
            INK,
        );
    }
    screen
}

/// The size with the width made `target` and the aspect ratio kept.
fn fit_width((width, height): (u32, u32), target: u32) -> (u32, u32) {
    let h = (f64::from(height) * f64::from(target) / f64::from(width.max(1))).round() as u32;
    (target, h.max(1))
}

/// A line of white text with a black outline across the picture at 60% of its height, the
/// text about 8% of the height tall: a meme's caption.
fn overlay_text(image: &RgbImage) -> RgbImage {
    let (width, height) = image.dimensions();
    let text = "SHARE THIS NOW";
    let scale = fitting_scale(text, f64::from(height) * 0.08, f64::from(width) * 0.94);
    let mask = font::render(text, scale);
    let outline = (scale / 2).max(1);
    let left = (i64::from(width) - i64::from(mask.width)) / 2;
    let top = (f64::from(height) * 0.6 - f64::from(mask.height) / 2.0).round() as i64;
    let mut out = image.clone();
    let thickness = i64::from(outline);
    draw_mask(
        &mut out,
        &mask.dilated(outline),
        (left - thickness, top - thickness),
        BLACK,
    );
    draw_mask(&mut out, &mask, (left, top), WHITE);
    out
}

/// The font scale that makes text about `height` pixels tall, made smaller until the text
/// fits in `max_width` (never below 1).
fn fitting_scale(text: &str, height: f64, max_width: f64) -> u32 {
    let mut scale = ((height / f64::from(GLYPH_HEIGHT)).round() as u32).max(1);
    while scale > 1 && f64::from(font::text_width(text, scale)) > max_width {
        scale -= 1;
    }
    scale
}

/// Fills a rectangle, clipped to the image.
fn fill_rect(image: &mut RgbImage, (left, top): (u32, u32), (width, height): (u32, u32), colour: Rgb<u8>) {
    let right = left.saturating_add(width).min(image.width());
    let bottom = top.saturating_add(height).min(image.height());
    for y in top..bottom {
        for x in left..right {
            image.put_pixel(x, y, colour);
        }
    }
}

/// Paints the mask's ink in `colour` with its top-left corner at `(left, top)`, clipped to
/// the image.
fn draw_mask(image: &mut RgbImage, mask: &font::Mask, (left, top): (i64, i64), colour: Rgb<u8>) {
    for my in 0..mask.height {
        for mx in 0..mask.width {
            let (x, y) = (left + i64::from(mx), top + i64::from(my));
            let inside =
                (0..i64::from(image.width())).contains(&x) && (0..i64::from(image.height())).contains(&y);
            if inside && mask.get(mx, my) {
                image.put_pixel(x as u32, y as u32, colour);
            }
        }
    }
}

/// Re-encodes as a JPEG at `quality` and decodes it with Cordon's own decoder, so the
/// query holds exactly the pixels a platform's recompressed copy would give.
fn reencode_jpeg(image: &RgbImage, quality: u8) -> anyhow::Result<DecodedImage> {
    let (width, height) = image.dimensions();
    let bytes = cordon_signals::media::encode_jpeg(image.as_raw(), width, height, quality)
        .context("re-encoding as JPEG")?;
    cordon_signals::decode(&bytes, &DecodeLimits::default()).context("decoding the re-encoded JPEG")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A photo-like test image: gradients, a disc and texture.
    fn photo(width: u32, height: u32) -> RgbImage {
        RgbImage::from_fn(width, height, |x, y| {
            let (fx, fy) = (x as f32 / width as f32, y as f32 / height as f32);
            let disc = (fx - 0.35).powi(2) + (fy - 0.4).powi(2) < 0.04;
            let texture = ((x * 7 + y * 13) % 17) as f32;
            let r = if disc { 230.0 } else { 40.0 + 150.0 * fx + texture };
            Rgb([
                r as u8,
                (60.0 + 120.0 * fy + texture) as u8,
                (90.0 + 80.0 * fx) as u8,
            ])
        })
    }

    fn size(image: &DecodedImage) -> (u32, u32) {
        (image.width(), image.height())
    }

    #[test]
    fn every_transform_gives_the_size_it_promises() {
        let original = photo(200, 150);
        let expected = |t: Transform| match t {
            Transform::Half => (100, 75),
            Transform::Thumb320 => (320, 240),
            // 5% of 150 is 7.5, rounded up.
            Transform::Crop5 => (190, 142),
            Transform::Crop10 => (180, 135),
            Transform::Crop20 => (160, 120),
            // 5% of the short side (7.5 -> 8) on each side.
            Transform::Border => (216, 166),
            // A mat of 12 and a line of 2 (1.5 rounded) on each side.
            Transform::Frame => (228, 178),
            Transform::Rot90 => (150, 200),
            Transform::Screenshot => (1080, 2340),
            _ => (200, 150),
        };
        for transform in Transform::ALL {
            let repost = transform.apply(&original, 3).unwrap();
            assert_eq!(size(&repost), expected(transform), "{}", transform.name());
            assert_eq!(repost.layout(), PixelLayout::Rgb, "{}", transform.name());
        }
    }

    #[test]
    fn names_are_unique() {
        let mut names: Vec<_> = Transform::ALL.iter().map(|t| t.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Transform::ALL.len());
    }

    #[test]
    fn transforms_are_deterministic_per_image() {
        let original = photo(120, 90);
        for transform in Transform::ALL {
            let a = transform.apply(&original, 7).unwrap();
            let b = transform.apply(&original, 7).unwrap();
            assert_eq!(a, b, "{}", transform.name());
        }
        // Another image index places the crop elsewhere.
        let boxes: Vec<_> = (0..8)
            .map(|i| crop_box((1000, 800), 0.2, &mut Rng::new(i, Transform::Crop20)))
            .collect();
        assert!(boxes.windows(2).any(|w| w[0] != w[1]), "{boxes:?}");
    }

    #[test]
    fn crops_are_off_centre() {
        for index in 0..200 {
            let (left, top, width, height) =
                crop_box((1000, 800), 0.2, &mut Rng::new(index, Transform::Crop20));
            assert_eq!((width, height), (800, 640));
            let right = 1000 - width - left;
            let bottom = 800 - height - top;
            // The removed 200 and 160 pixels are split no more evenly than 40:60.
            assert!(left.abs_diff(right) >= 40, "index {index}: {left} vs {right}");
            assert!(top.abs_diff(bottom) >= 32, "index {index}: {top} vs {bottom}");
        }
    }

    #[test]
    fn tilting_leaves_black_corners_and_keeps_the_middle() {
        let white = RgbImage::from_pixel(200, 150, WHITE);
        for degrees in [3.0, -3.0] {
            let tilted = tilt(&white, degrees);
            for (x, y) in [(0, 0), (199, 0), (0, 149), (199, 149)] {
                assert_eq!(*tilted.get_pixel(x, y), BLACK, "{degrees} degrees, ({x}, {y})");
            }
            assert_eq!(*tilted.get_pixel(100, 75), WHITE);
        }
        // Zero degrees is the identity.
        let original = photo(64, 48);
        assert_eq!(tilt(&original, 0.0), original);
    }

    #[test]
    fn overlays_land_where_they_should() {
        let original = RgbImage::from_pixel(400, 300, Rgb([120, 160, 200]));
        let captioned = caption(&original);
        assert_eq!(*captioned.get_pixel(2, 298), DARK_GREY);
        assert_eq!(captioned.get_pixel(2, 2), original.get_pixel(2, 2));
        let with_logo = logo(&original);
        // The disc's edge (away from the letter) is lighter; the opposite corner is untouched.
        let disc_left = 400 - 9 - 36;
        assert!(with_logo.get_pixel(disc_left + 4, 9 + 18).0[0] > 200);
        assert_eq!(with_logo.get_pixel(10, 290), original.get_pixel(10, 290));
        let texted = overlay_text(&original);
        let changed = (0..400)
            .filter(|&x| texted.get_pixel(x, 180) != original.get_pixel(x, 180))
            .count();
        assert!(changed > 50, "{changed} pixels of the row at 60% changed");
        assert_eq!(texted.get_pixel(200, 20), original.get_pixel(200, 20));
    }

    #[test]
    fn contrast_and_brightness_do_what_they_say() {
        let mid = RgbImage::from_pixel(4, 4, Rgb([64, 128, 192]));
        let brighter = imageops::brighten(&mid, BRIGHTEN);
        assert_eq!(brighter.get_pixel(0, 0).0, [141, 205, 255]);
        // Contrast x1.4 around mid grey: 64 -> 38, 192 -> 217 (within a level of rounding).
        let stretched = imageops::contrast(&mid, contrast_percent(1.4));
        let [low, _, high] = stretched.get_pixel(0, 0).0;
        assert!(low.abs_diff(38) <= 1 && high.abs_diff(217) <= 1, "{low} {high}");
    }

    #[test]
    fn jpeg_encoding_refuses_bad_input_and_round_trips_good_input() {
        use cordon_signals::media::encode_jpeg;
        assert!(encode_jpeg(&[0; 11], 2, 2, 30).is_err());
        assert!(encode_jpeg(&[], 0, 0, 30).is_err());
        assert!(encode_jpeg(&[0; 12], 2, 2, 0).is_err());
        let original = photo(64, 48);
        let decoded = reencode_jpeg(&original, 30).unwrap();
        assert_eq!(size(&decoded), (64, 48));
        // Lossy, but close: the mean error stays within a few levels.
        let error: u64 = decoded
            .pixels()
            .iter()
            .zip(original.as_raw())
            .map(|(a, b)| u64::from(a.abs_diff(*b)))
            .sum();
        assert!(error / (64 * 48 * 3) < 12, "mean error {}", error / (64 * 48 * 3));
    }

    #[test]
    fn long_sides_are_fitted_with_the_aspect_kept() {
        assert_eq!(fit_long_side((4000, 3000), 1600), (1600, 1200));
        assert_eq!(fit_long_side((3000, 4000), 320), (240, 320));
        assert_eq!(fit_long_side((10000, 1), 320), (320, 1));
    }
}
