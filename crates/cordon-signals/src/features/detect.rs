//! Where the keypoints are: a grey image at a fixed working size, a pyramid of smaller
//! copies, Harris corners on each level, and each corner's orientation.

use crate::media::{DecodedImage, PixelLayout};
use crate::region::Region;

/// A grey image in f32, row-major.
#[derive(Clone)]
pub struct Grey {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<f32>,
}

impl Grey {
    #[inline]
    pub fn at(&self, x: usize, y: usize) -> f32 {
        self.pixels[y * self.width + x]
    }

    /// Luma of `image` resampled so that its long side is `long_side`: area averaging when
    /// shrinking, bilinear when growing. Every image meets the detector at the same size,
    /// so a thumbnail and its original show the same picture at the same scale.
    pub fn working_copy(image: &DecodedImage, region: Region, long_side: usize) -> Grey {
        let region = region.clamped_to(image);
        let (width, height) = (region.width as usize, region.height as usize);
        let scale = long_side as f32 / width.max(height) as f32;
        let target_width = ((width as f32 * scale).round() as usize).max(1);
        let target_height = ((height as f32 * scale).round() as usize).max(1);
        if target_width >= width && target_height >= height {
            return bilinear(&luma(image, region), target_width, target_height);
        }
        // Shrink each row while converting it to grey, so the full-size grey image is
        // never held.
        let horizontal = area_weights(width, target_width);
        let mut grey_row = vec![0f32; width];
        let mut rows = vec![0f32; height * target_width];
        for (line, out) in region_rows(image, region).zip(rows.chunks_exact_mut(target_width)) {
            grey_line(line, image.layout(), &mut grey_row);
            shrink_line(&grey_row, &horizontal, out);
        }
        shrink_columns(&rows, target_width, height, target_height)
    }
}

/// The bytes of each row of `region`.
fn region_rows(image: &DecodedImage, region: Region) -> impl Iterator<Item = &[u8]> {
    let channels = image.layout().channels();
    let stride = image.width() as usize * channels;
    let (left, width) = (region.left as usize * channels, region.width as usize * channels);
    (region.top..region.top + region.height)
        .map(move |y| &image.pixels()[y as usize * stride + left..][..width])
}

fn luma(image: &DecodedImage, region: Region) -> Grey {
    let (width, height) = (region.width as usize, region.height as usize);
    let mut pixels = vec![0f32; width * height];
    for (line, out) in region_rows(image, region).zip(pixels.chunks_exact_mut(width)) {
        grey_line(line, image.layout(), out);
    }
    Grey {
        width,
        height,
        pixels,
    }
}

fn grey_line(line: &[u8], layout: PixelLayout, out: &mut [f32]) {
    match layout {
        PixelLayout::Grey => {
            for (o, &v) in out.iter_mut().zip(line) {
                *o = f32::from(v);
            }
        }
        PixelLayout::Rgb => {
            for (o, p) in out.iter_mut().zip(line.chunks_exact(3)) {
                *o = 0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2]);
            }
        }
    }
}

fn shrink_line(line: &[f32], weights: &[Vec<(usize, f32)>], out: &mut [f32]) {
    for (o, taps) in out.iter_mut().zip(weights) {
        *o = taps.iter().map(|&(i, w)| line[i] * w).sum();
    }
}

/// The second, vertical pass of an area shrink: `rows` is `height` rows of `width`.
fn shrink_columns(rows: &[f32], width: usize, height: usize, target_height: usize) -> Grey {
    let mut pixels = vec![0f32; width * target_height];
    for (out, taps) in pixels
        .chunks_exact_mut(width)
        .zip(area_weights(height, target_height))
    {
        for (i, w) in taps {
            for (o, &value) in out.iter_mut().zip(&rows[i * width..][..width]) {
                *o += value * w;
            }
        }
    }
    Grey {
        width,
        height: target_height,
        pixels,
    }
}

/// Resamples to `width x height`: each output pixel averages the source area it covers
/// (bilinear when the source is smaller).
pub fn resample(source: &Grey, width: usize, height: usize) -> Grey {
    if width >= source.width && height >= source.height {
        return bilinear(source, width, height);
    }
    // Separable box filter with fractional edges: rows first, then columns.
    let horizontal = area_weights(source.width, width);
    let mut rows = vec![0f32; source.height * width];
    for (line, out) in source
        .pixels
        .chunks_exact(source.width)
        .zip(rows.chunks_exact_mut(width))
    {
        shrink_line(line, &horizontal, out);
    }
    shrink_columns(&rows, width, source.height, height)
}

/// For each output cell, the source cells it covers and their shares (summing to 1).
fn area_weights(from: usize, to: usize) -> Vec<Vec<(usize, f32)>> {
    let step = from as f32 / to as f32;
    (0..to)
        .map(|i| {
            let (start, end) = (i as f32 * step, ((i + 1) as f32 * step).min(from as f32));
            let mut taps = Vec::new();
            let mut cell = start.floor() as usize;
            while (cell as f32) < end && cell < from {
                let covered = (end.min(cell as f32 + 1.0) - start.max(cell as f32)).max(0.0);
                if covered > 0.0 {
                    taps.push((cell, covered / (end - start)));
                }
                cell += 1;
            }
            taps
        })
        .collect()
}

fn bilinear(source: &Grey, width: usize, height: usize) -> Grey {
    let sample = |position: f32, size: usize| {
        let p = (position.max(0.0)).min((size - 1) as f32);
        let low = p.floor() as usize;
        (low, (low + 1).min(size - 1), p - low as f32)
    };
    let mut pixels = Vec::with_capacity(width * height);
    for y in 0..height {
        let (y0, y1, fy) = sample(
            (y as f32 + 0.5) * source.height as f32 / height as f32 - 0.5,
            source.height,
        );
        for x in 0..width {
            let (x0, x1, fx) = sample(
                (x as f32 + 0.5) * source.width as f32 / width as f32 - 0.5,
                source.width,
            );
            let top = source.at(x0, y0) * (1.0 - fx) + source.at(x1, y0) * fx;
            let bottom = source.at(x0, y1) * (1.0 - fx) + source.at(x1, y1) * fx;
            pixels.push(top * (1.0 - fy) + bottom * fy);
        }
    }
    Grey {
        width,
        height,
        pixels,
    }
}

/// A corner found on one pyramid level, in that level's pixels.
#[derive(Clone, Copy, Debug)]
pub struct Corner {
    pub x: usize,
    pub y: usize,
    pub response: f32,
}

/// Harris corners of `image`, strongest first, at most `limit`, none closer than `margin`
/// to an edge (the descriptor's patch must fit, whatever its rotation).
pub fn harris_corners(image: &Grey, margin: usize, limit: usize) -> Vec<Corner> {
    let (width, height) = (image.width, image.height);
    if width <= 2 * margin + 2 || height <= 2 * margin + 2 {
        return Vec::new();
    }
    // Gradients by central differences; each row's products summed over 5 columns at
    // once; then 5 of those rows summed into the structure tensor and its response.
    let mut row_sums = vec![[0f32; 3]; width * height];
    let mut products = vec![[0f32; 3]; width];
    for y in 1..height - 1 {
        let (above, row, below) = (
            &image.pixels[(y - 1) * width..][..width],
            &image.pixels[y * width..][..width],
            &image.pixels[(y + 1) * width..][..width],
        );
        for x in 1..width - 1 {
            let dx = row[x + 1] - row[x - 1];
            let dy = below[x] - above[x];
            products[x] = [dx * dx, dy * dy, dx * dy];
        }
        let sums = &mut row_sums[y * width..][..width];
        for x in 2..width - 2 {
            let window = &products[x - 2..x + 3];
            sums[x] = [0, 1, 2].map(|k| window.iter().map(|p| p[k]).sum());
        }
    }
    let mut response = vec![f32::MIN; width * height];
    for y in margin..height - margin {
        for x in margin..width - margin {
            let mut tensor = [0f32; 3];
            for ny in y - 2..y + 3 {
                let sum = row_sums[ny * width + x];
                tensor = [tensor[0] + sum[0], tensor[1] + sum[1], tensor[2] + sum[2]];
            }
            let [a, b, c] = tensor;
            response[y * width + x] = a * b - c * c - 0.04 * (a + b) * (a + b);
        }
    }
    // Local maxima over 3x3 (most pixels fail at their first neighbour).
    let mut corners = Vec::new();
    for y in margin..height - margin {
        for x in margin..width - margin {
            let r = response[y * width + x];
            if r <= 0.0 {
                continue;
            }
            // Ties go to the later pixel, so a flat plateau yields one corner.
            let i = y * width + x;
            let before = [i - width - 1, i - width, i - width + 1, i - 1];
            let after = [i + 1, i + width - 1, i + width, i + width + 1];
            let is_peak = before.iter().all(|&j| response[j] <= r) && after.iter().all(|&j| response[j] < r);
            if is_peak {
                corners.push(Corner { x, y, response: r });
            }
        }
    }
    spread(corners, width, height, limit)
}

/// The strongest `limit` corners, at most a few per cell of a grid: text, logos and
/// other busy overlays are full of strong corners and would otherwise take every slot
/// from the picture underneath.
fn spread(mut corners: Vec<Corner>, width: usize, height: usize, limit: usize) -> Vec<Corner> {
    const CELL: usize = 32;
    let (columns, rows) = (width.div_ceil(CELL), height.div_ceil(CELL));
    let cap = (3 * limit).div_ceil(columns * rows).max(2);
    corners.sort_by(|a, b| {
        b.response
            .total_cmp(&a.response)
            .then((a.y, a.x).cmp(&(b.y, b.x)))
    });
    let mut taken = vec![0usize; columns * rows];
    let mut kept = Vec::with_capacity(limit);
    for corner in corners {
        let cell = (corner.y / CELL) * columns + corner.x / CELL;
        if taken[cell] < cap {
            taken[cell] += 1;
            kept.push(corner);
            if kept.len() == limit {
                break;
            }
        }
    }
    kept
}

/// Sums over a 5x5 box (zero outside), separably; written as plain sums of shifted
/// slices so the compiler vectorizes them.
fn box5(values: &[f32], width: usize, height: usize) -> Vec<f32> {
    let mut rows = vec![0f32; width * height];
    for (line, out) in values.chunks_exact(width).zip(rows.chunks_exact_mut(width)) {
        if width < 5 {
            for (x, o) in out.iter_mut().enumerate() {
                *o = line[x.saturating_sub(2)..(x + 3).min(width)].iter().sum();
            }
            continue;
        }
        let n = width - 4;
        let (a, b, c, d, e) = (
            &line[..n],
            &line[1..n + 1],
            &line[2..n + 2],
            &line[3..n + 3],
            &line[4..],
        );
        for (i, o) in out[2..width - 2].iter_mut().enumerate() {
            *o = a[i] + b[i] + c[i] + d[i] + e[i];
        }
        out[0] = line[0] + line[1] + line[2];
        out[1] = out[0] + line[3];
        out[width - 1] = line[width - 1] + line[width - 2] + line[width - 3];
        out[width - 2] = out[width - 1] + line[width - 4];
    }
    let mut out = vec![0f32; width * height];
    for (y, target) in out.chunks_exact_mut(width).enumerate() {
        for ny in y.saturating_sub(2)..(y + 3).min(height) {
            for (o, &v) in target.iter_mut().zip(&rows[ny * width..][..width]) {
                *o += v;
            }
        }
    }
    out
}

/// The direction from a corner to the centroid of the intensities in the disc around it:
/// turning the picture turns this angle with it.
pub fn orientation(image: &Grey, x: usize, y: usize, radius: isize) -> f32 {
    let (mut m10, mut m01) = (0f32, 0f32);
    for dy in -radius..=radius {
        let span = ((radius * radius - dy * dy) as f32).sqrt() as isize;
        for dx in -span..=span {
            let value = image.at((x as isize + dx) as usize, (y as isize + dy) as usize);
            m10 += dx as f32 * value;
            m01 += dy as f32 * value;
        }
    }
    m01.atan2(m10)
}

/// Smooths with a 5x5 box: the descriptor compares smoothed pixels so that noise and
/// JPEG blocks do not flip its bits. (Pixels within 2 of an edge come out darker, as if
/// the outside were black; keypoints keep far enough from edges that the descriptor
/// never reads them.)
pub fn smooth(image: &Grey) -> Grey {
    let mut pixels = box5(&image.pixels, image.width, image.height);
    for p in &mut pixels {
        *p *= 1.0 / 25.0;
    }
    Grey {
        width: image.width,
        height: image.height,
        pixels,
    }
}
