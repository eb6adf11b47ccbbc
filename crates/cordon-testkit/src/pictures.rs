//! Pictures made for tests whose point is what is in them, PNG-encoded.

/// `pixels` (RGB, row-major) as a PNG file.
pub fn rgb_png(pixels: &[u8], width: u32, height: u32) -> Vec<u8> {
    let mut png = Vec::new();
    let encoder = image::codecs::png::PngEncoder::new(&mut png);
    image::ImageEncoder::write_image(encoder, pixels, width, height, image::ExtendedColorType::Rgb8)
        .expect("encoding a test picture");
    png
}

/// A grey 800x600 picture strewn with 40 small dark and light triangles: plenty of
/// corners for local features, but too little structure at PDQ's 64x64 for a hash of
/// quality 50 (38).
pub fn strewn_triangles_png() -> Vec<u8> {
    let (width, height) = (800usize, 600usize);
    let mut pixels = vec![128u8; width * height * 3];
    let mut seed = 7u64;
    let mut next = |below: usize| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) as usize % below
    };
    for i in 0..40 {
        let (left, top) = (20 + next(width - 50), 20 + next(height - 50));
        let shade = if i % 2 == 0 { 20 } else { 235 };
        // A right triangle 10 pixels a side, its slanted edge varying with i.
        for dy in 0..10 {
            for dx in 0..10 - dy * (5 + i % 5) / 10 {
                let at = ((top + dy) * width + left + dx) * 3;
                pixels[at..at + 3].fill(shade);
            }
        }
    }
    rgb_png(&pixels, width as u32, height as u32)
}

/// A 400x300 picture of one colour: no signal can tell it from any other such picture.
pub fn blank_png() -> Vec<u8> {
    rgb_png(&[90, 120, 60].repeat(400 * 300), 400, 300)
}

/// `pixels` (RGB, `width` wide) on a white mat `mat` pixels wide, as a PNG file.
pub fn on_white_mat_png(pixels: &[u8], width: usize, mat: usize) -> Vec<u8> {
    let height = pixels.len() / 3 / width;
    let framed_width = width + 2 * mat;
    let mut framed = vec![255u8; framed_width * (height + 2 * mat) * 3];
    for (y, row) in pixels.chunks_exact(width * 3).enumerate() {
        let at = ((y + mat) * framed_width + mat) * 3;
        framed[at..at + width * 3].copy_from_slice(row);
    }
    rgb_png(&framed, framed_width as u32, (height + 2 * mat) as u32)
}

/// `pixels` (RGB, `width` wide) drawn in transparency: black everywhere, the picture only in
/// the opacity (dark where the picture is dark), as a PNG file. Over white it shows as
/// the picture in grey; without its opacity it is black.
pub fn drawn_in_transparency_png(pixels: &[u8], width: usize) -> Vec<u8> {
    let height = pixels.len() / 3 / width;
    let rgba: Vec<u8> = pixels
        .chunks_exact(3)
        .flat_map(|p| {
            let luma = (u32::from(p[0]) * 299 + u32::from(p[1]) * 587 + u32::from(p[2]) * 114) / 1000;
            [0, 0, 0, 255 - luma as u8]
        })
        .collect();
    let mut png = Vec::new();
    let encoder = image::codecs::png::PngEncoder::new(&mut png);
    image::ImageEncoder::write_image(
        encoder,
        &rgba,
        width as u32,
        height as u32,
        image::ExtendedColorType::Rgba8,
    )
    .expect("encoding a test picture");
    png
}

/// `png` (a picture with transparency) composited over white, as people see it: its
/// RGB pixels, width and height.
pub fn shown_over_white(png: &[u8]) -> (Vec<u8>, u32, u32) {
    let picture = image::load_from_memory(png)
        .expect("decoding a test picture")
        .to_rgba8();
    let shown: Vec<u8> = picture
        .pixels()
        .flat_map(|p| {
            let opacity = u32::from(p[3]);
            [0, 1, 2].map(|c| ((u32::from(p[c]) * opacity + 255 * (255 - opacity) + 127) / 255) as u8)
        })
        .collect();
    (shown, picture.width(), picture.height())
}

/// `pixels` (RGB, `width` wide) as a phone screenshot of a post shows it, as a PNG file:
/// a dark status bar, then a white page with two lines of words above the picture and
/// three below, the picture as wide as the page.
pub fn on_screenshot_page_png(pixels: &[u8], width: usize) -> Vec<u8> {
    let height = pixels.len() / 3 / width;
    // In proportion to a 1080x2340 screen: a status bar of 80 rows, lines of words 28
    // rows high, 16 apart.
    let screen_height = width * 2340 / 1080;
    let rows = |on_screen: usize| (on_screen * screen_height / 2340).max(1);
    let (bar, line, gap) = (rows(80), rows(28), rows(16));
    let above = bar + 2 * (line + gap) + gap;
    let page_height = (above + height + 3 * (line + gap) + 4 * gap).max(screen_height);
    let mut page = vec![255u8; width * page_height * 3];
    page[..bar * width * 3].fill(40);
    for (y, row) in pixels.chunks_exact(width * 3).enumerate() {
        let at = (above + y) * width * 3;
        page[at..at + width * 3].copy_from_slice(row);
    }
    let first_lines = [0, 1].map(|i| bar + gap + i * (line + gap));
    let last_lines = [0, 1, 2].map(|i| above + height + gap + i * (line + gap));
    for top in first_lines.into_iter().chain(last_lines) {
        for y in top..top + line {
            // Letters: strokes on a third of the row, words apart, the line ending early.
            for x in (width / 30..width * 3 / 4).filter(|x| x % 9 < 3 && x % 60 < 48) {
                page[(y * width + x) * 3..][..3].fill(20);
            }
        }
    }
    rgb_png(&page, width as u32, page_height as u32)
}

/// `pixels` (RGB, `width` wide) in the middle of a plain blue ground `factor` times as wide
/// and as high, as a PNG file: an emblem or photo on a poster's backdrop.
pub fn on_plain_ground_png(pixels: &[u8], width: usize, factor: usize) -> Vec<u8> {
    let height = pixels.len() / 3 / width;
    let (ground_width, ground_height) = (width * factor, height * factor);
    let mut ground = [20u8, 40, 120].repeat(ground_width * ground_height);
    let (left, top) = ((ground_width - width) / 2, (ground_height - height) / 2);
    for (y, row) in pixels.chunks_exact(width * 3).enumerate() {
        let at = ((top + y) * ground_width + left) * 3;
        ground[at..at + width * 3].copy_from_slice(row);
    }
    rgb_png(&ground, ground_width as u32, ground_height as u32)
}

/// `pixels` (RGB, `width` wide) turned by `degrees` about the middle on a canvas of the
/// same size, the corners left black, sampled nearest: a tilted repost.
pub fn tilted(pixels: &[u8], width: usize, degrees: f64) -> Vec<u8> {
    let height = pixels.len() / 3 / width;
    let (sin, cos) = degrees.to_radians().sin_cos();
    let (cx, cy) = (width as f64 / 2.0, height as f64 / 2.0);
    let mut turned = vec![0u8; pixels.len()];
    for y in 0..height {
        for x in 0..width {
            let (dx, dy) = (x as f64 + 0.5 - cx, y as f64 + 0.5 - cy);
            let (sx, sy) = (cos * dx - sin * dy + cx, sin * dx + cos * dy + cy);
            if sx >= 0.0 && sy >= 0.0 && (sx as usize) < width && (sy as usize) < height {
                let (from, to) = (((sy as usize) * width + sx as usize) * 3, (y * width + x) * 3);
                turned[to..to + 3].copy_from_slice(&pixels[from..from + 3]);
            }
        }
    }
    turned
}
