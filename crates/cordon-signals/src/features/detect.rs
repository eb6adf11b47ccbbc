//! Where the keypoints are: a grey image at a fixed working size, a pyramid of smaller
//! copies, Harris corners on each level, and each corner's orientation.
//!
//! The loops are shaped for the compiler to vectorize: whole rows as plain slice
//! arithmetic, one array per quantity (never `[f32; 3]` per pixel), no calls or early
//! exits per pixel. What cannot be vectorized (the short weighted sums of a resample
//! along a row) runs on as few pixels as the output needs.

use crate::media::{DecodedImage, PixelLayout};
use crate::region::Region;

use super::describe::PATCH_RADIUS;

/// A grey image in f32, row-major.
#[derive(Clone)]
pub struct Grey {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<f32>,
}

impl Grey {
    fn row(&self, y: usize) -> &[f32] {
        &self.pixels[y * self.width..][..self.width]
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
            let mut luma = Grey {
                width,
                height,
                pixels: vec![0f32; width * height],
            };
            let mut rows = box_rows(image, region, 1);
            luma.pixels.chunks_exact_mut(width).for_each(&mut rows);
            return bilinear(&luma, target_width, target_height);
        }
        let factor = box_factor(scale);
        let extent = |side: usize| side as f32 / factor as f32;
        let boxes = (width.div_ceil(factor), height.div_ceil(factor));
        let rows = Streamed::new(boxes.0, box_rows(image, region, factor));
        area_resample(
            rows,
            boxes,
            (extent(width), extent(height)),
            (target_width, target_height),
        )
    }
}

/// How many pixels a side the boxes summed as bytes before the area average span, for
/// an image shrunk by `scale`. Summing bytes costs a fraction of weighting every pixel,
/// but the average treats a box as uniform, a little blur wherever its edges cut one:
/// for an average that shrinks two or three times, enough to cost a few percent of the
/// pairs that agree between a picture and its repost. So boxes are used only when they
/// leave the average at least [`MIN_BOX_SHRINK`] to do (originals over 4096 pixels).
fn box_factor(scale: f32) -> usize {
    ((1.0 / (scale * MIN_BOX_SHRINK)) as usize).clamp(1, MAX_BOX)
}

/// See [`box_factor`].
const MIN_BOX_SHRINK: f32 = 4.0;
/// The largest box side whose byte sums fit in a u16 (256 x 255 < 65536).
const MAX_BOX: usize = 256;

/// The bytes of each row of `region`.
fn region_rows(image: &DecodedImage, region: Region) -> impl Iterator<Item = &[u8]> {
    let channels = image.layout().channels();
    let stride = image.width() as usize * channels;
    let (left, width) = (region.left as usize * channels, region.width as usize * channels);
    (region.top..region.top + region.height)
        .map(move |y| &image.pixels()[y as usize * stride + left..][..width])
}

/// Writes, at each call, the next row of the mean luma of the `factor` x `factor` boxes
/// of `region` (those along the right and bottom edges hold what is left over).
fn box_rows(image: &DecodedImage, region: Region, factor: usize) -> impl FnMut(&mut [f32]) + '_ {
    let layout = image.layout();
    let mut lines = region_rows(image, region);
    let mut sums = vec![0u16; region.width as usize * layout.channels()];
    // Each weighted term of a pixel's luma depends on one byte: it is looked up rather
    // than converted and multiplied (the same products, so the same sums).
    let weighted = |weight: f32| -> [f32; 256] { std::array::from_fn(|v| weight * v as f32) };
    let tables = [weighted(0.299), weighted(0.587), weighted(0.114)];
    move |out: &mut [f32]| {
        if factor == 1 {
            if let Some(line) = lines.next() {
                pixel_luma(line, layout, &tables, out);
            }
            return;
        }
        sums.fill(0);
        let mut band = 0;
        for line in lines.by_ref().take(factor) {
            for (sum, &byte) in sums.iter_mut().zip(line) {
                *sum += u16::from(byte);
            }
            band += 1;
        }
        if band > 0 {
            box_means(&sums, layout, factor, band, out);
        }
    }
}

fn pixel_luma(line: &[u8], layout: PixelLayout, [r, g, b]: &[[f32; 256]; 3], out: &mut [f32]) {
    match layout {
        PixelLayout::Grey => {
            for (o, &v) in out.iter_mut().zip(line) {
                *o = f32::from(v);
            }
        }
        PixelLayout::Rgb => {
            for (o, &[red, green, blue]) in out.iter_mut().zip(line.as_chunks::<3>().0) {
                *o = r[usize::from(red)] + g[usize::from(green)] + b[usize::from(blue)];
            }
        }
    }
}

/// The mean luma of each box of `factor` pixels along a band of `band` rows whose bytes
/// are summed in `sums` (the last box may be narrower).
fn box_means(sums: &[u16], layout: PixelLayout, factor: usize, band: usize, out: &mut [f32]) {
    let channels = layout.channels();
    for (o, sums) in out.iter_mut().zip(sums.chunks(factor * channels)) {
        let total = match layout {
            PixelLayout::Grey => grey_sum(sums),
            PixelLayout::Rgb => luma_sum(sums),
        };
        *o = total / (sums.len() / channels * band) as f32;
    }
}

fn grey_sum(run: &[u16]) -> f32 {
    run.iter().map(|&v| u32::from(v)).sum::<u32>() as f32
}

fn luma_sum(run: &[u16]) -> f32 {
    let (mut r, mut g, mut b) = (0u32, 0u32, 0u32);
    for p in run.chunks_exact(3) {
        r += u32::from(p[0]);
        g += u32::from(p[1]);
        b += u32::from(p[2]);
    }
    0.299 * r as f32 + 0.587 * g as f32 + 0.114 * b as f32
}

/// Resamples to `width x height`: each output pixel averages the source area it covers
/// (bilinear when the source is smaller).
pub fn resample(source: &Grey, width: usize, height: usize) -> Grey {
    if width >= source.width && height >= source.height {
        return bilinear(source, width, height);
    }
    let cells = (source.width, source.height);
    area_resample(source, cells, (cells.0 as f32, cells.1 as f32), (width, height))
}

/// Area averaging, to `size`, of the image of `cells` (columns, rows) spanning `extent`
/// (its last column and row may be partial) whose rows `rows` gives. Columns first:
/// those sums run along whole rows and vectorize, and leave fewer rows for the short
/// weighted sums along each row.
fn area_resample(
    mut rows: impl Rows,
    cells: (usize, usize),
    extent: (f32, f32),
    size: (usize, usize),
) -> Grey {
    let (width, height) = size;
    let vertical = Taps::area(cells.1, extent.1, height);
    let horizontal = Taps::area(cells.0, extent.0, width);
    rows.keep(vertical.len);
    let mut shrunk = vec![0f32; cells.0];
    let mut pixels = vec![0f32; width * height];
    for (i, out) in pixels.chunks_exact_mut(width).enumerate() {
        vertical.sum_rows(i, &mut rows, &mut shrunk);
        horizontal.apply(&shrunk, out);
    }
    Grey {
        width,
        height,
        pixels,
    }
}

/// The rows of an image being resampled, asked for in order: a row may be asked for again
/// (by the next output row), never one before it.
trait Rows {
    /// Keeps at least the last `rows` rows asked for at hand: as many as an output row reads.
    fn keep(&mut self, rows: usize);
    fn row(&mut self, y: usize) -> &[f32];
}

impl Rows for &Grey {
    fn keep(&mut self, _: usize) {}

    fn row(&mut self, y: usize) -> &[f32] {
        Grey::row(self, y)
    }
}

/// Rows made one at a time by `next` and kept only while an output row may read them,
/// so that a large source is never held whole.
struct Streamed<F> {
    next: F,
    columns: usize,
    kept: Vec<f32>,
    slots: usize,
    made: usize,
}

impl<F: FnMut(&mut [f32])> Streamed<F> {
    fn new(columns: usize, next: F) -> Self {
        Streamed {
            next,
            columns,
            kept: vec![0f32; columns],
            slots: 1,
            made: 0,
        }
    }
}

impl<F: FnMut(&mut [f32])> Rows for Streamed<F> {
    fn keep(&mut self, rows: usize) {
        self.slots = rows.max(1);
        self.kept.resize(self.slots * self.columns, 0.0);
    }

    fn row(&mut self, y: usize) -> &[f32] {
        let (slots, columns) = (self.slots, self.columns);
        let at = |y: usize| (y % slots) * columns;
        while self.made <= y {
            (self.next)(&mut self.kept[at(self.made)..][..columns]);
            self.made += 1;
        }
        &self.kept[at(y)..][..columns]
    }
}

/// An area resample along one axis: output `i` is the weighted sum of the `len` source
/// cells from `first[i]`, with the weights `weights[i * len..][..len]` (zero past the
/// cells it covers). One length for every output keeps the inner loop fixed.
struct Taps {
    first: Vec<usize>,
    weights: Vec<f32>,
    len: usize,
}

impl Taps {
    /// `cells` source cells spanning `extent` shrunk to `to` cells.
    fn area(cells: usize, extent: f32, to: usize) -> Taps {
        let step = extent / to as f32;
        let bounds = |i: usize| (i as f32 * step, ((i + 1) as f32 * step).min(extent));
        let covered = |(start, end): (f32, f32)| {
            let first = (start.floor() as usize).min(cells - 1);
            (first, (end.ceil() as usize).clamp(first + 1, cells))
        };
        let len = (0..to)
            .map(|i| {
                let (first, end) = covered(bounds(i));
                end - first
            })
            .max()
            .unwrap_or(1);
        let mut first = Vec::with_capacity(to);
        let mut weights = vec![0f32; to * len];
        for (i, shares) in weights.chunks_exact_mut(len).enumerate() {
            let (start, end) = bounds(i);
            let (from, until) = covered((start, end));
            // Moved back from the last cell, so that all `len` cells exist.
            let base = from.min(cells - len);
            for cell in from..until {
                let share = end.min(cell as f32 + 1.0) - start.max(cell as f32);
                shares[cell - base] = share.max(0.0) / (end - start);
            }
            first.push(base);
        }
        Taps { first, weights, len }
    }

    /// `out` = the weighted sum of the rows that output row `i` covers.
    fn sum_rows(&self, i: usize, rows: &mut impl Rows, out: &mut [f32]) {
        let shares = &self.weights[i * self.len..][..self.len];
        let mut taken = (self.first[i]..).zip(shares).filter(|&(_, &share)| share != 0.0);
        let Some((y, &share)) = taken.next() else {
            out.fill(0.0);
            return;
        };
        for (o, &v) in out.iter_mut().zip(rows.row(y)) {
            *o = v * share;
        }
        for (y, &share) in taken {
            for (o, &v) in out.iter_mut().zip(rows.row(y)) {
                *o += v * share;
            }
        }
    }

    /// `out[i]` = the weighted sum of the cells of `line` that output `i` covers. The
    /// lengths of shrinks up to [`MIN_BOX_SHRINK`] times two (see [`box_factor`]) get a
    /// loop of their own, unrolled.
    fn apply(&self, line: &[f32], out: &mut [f32]) {
        match self.len {
            1 => self.apply_fixed::<1>(line, out),
            2 => self.apply_fixed::<2>(line, out),
            3 => self.apply_fixed::<3>(line, out),
            4 => self.apply_fixed::<4>(line, out),
            5 => self.apply_fixed::<5>(line, out),
            6 => self.apply_fixed::<6>(line, out),
            7 => self.apply_fixed::<7>(line, out),
            8 => self.apply_fixed::<8>(line, out),
            9 => self.apply_fixed::<9>(line, out),
            10 => self.apply_fixed::<10>(line, out),
            _ => {
                let shares = self.weights.chunks_exact(self.len);
                for ((o, &first), shares) in out.iter_mut().zip(&self.first).zip(shares) {
                    let cells = &line[first..][..self.len];
                    *o = cells.iter().zip(shares).map(|(v, s)| v * s).sum();
                }
            }
        }
    }

    fn apply_fixed<const N: usize>(&self, line: &[f32], out: &mut [f32]) {
        let (shares, _) = self.weights.as_chunks::<N>();
        for ((o, &first), shares) in out.iter_mut().zip(&self.first).zip(shares) {
            if let Some(cells) = line[first..].first_chunk::<N>() {
                *o = cells.iter().zip(shares).map(|(v, s)| v * s).sum();
            }
        }
    }
}

fn bilinear(source: &Grey, width: usize, height: usize) -> Grey {
    let sample = |position: f32, size: usize| {
        let p = (position.max(0.0)).min((size - 1) as f32);
        let low = p.floor() as usize;
        (low, (low + 1).min(size - 1), p - low as f32)
    };
    let columns: Vec<_> = (0..width)
        .map(|x| {
            sample(
                (x as f32 + 0.5) * source.width as f32 / width as f32 - 0.5,
                source.width,
            )
        })
        .collect();
    let mut pixels = Vec::with_capacity(width * height);
    for y in 0..height {
        let (y0, y1, fy) = sample(
            (y as f32 + 0.5) * source.height as f32 / height as f32 - 0.5,
            source.height,
        );
        let (upper, lower) = (source.row(y0), source.row(y1));
        pixels.extend(columns.iter().map(|&(x0, x1, fx)| {
            let top = upper[x0] * (1.0 - fx) + upper[x1] * fx;
            let bottom = lower[x0] * (1.0 - fx) + lower[x1] * fx;
            top * (1.0 - fy) + bottom * fy
        }));
    }
    Grey {
        width,
        height,
        pixels,
    }
}

/// The weakest Harris response that is a corner: about that of a right-angle corner
/// between areas half a grey level apart (an ideal corner of contrast `c` levels responds
/// about `21 c^4` in this detector), a step no 8-bit picture can show. Weaker responses
/// are floating-point rounding in the resampling, and a blank picture is blank in the same
/// way everywhere: without this floor, a white or black image (the colour under a
/// transparent layer, say) gets a full set of such "corners" and matches every other.
/// Faint but real structure (soft vector art, gradients rounded to whole levels) stays.
pub const MIN_RESPONSE: f32 = 1.0;

/// A corner found on one pyramid level, in that level's pixels.
#[derive(Clone, Copy, Debug, Default)]
pub struct Corner {
    pub x: usize,
    pub y: usize,
    pub response: f32,
}

/// Harris corners of `image`, strongest first, at most `limit`, none closer than `margin`
/// to an edge (the descriptor's patch must fit, whatever its rotation).
pub fn harris_corners(image: &Grey, margin: usize, limit: usize) -> Vec<Corner> {
    // A response reads a 5x5 window of gradients, which read one pixel further.
    let margin = margin.max(3);
    let (width, height) = (image.width, image.height);
    if width <= 2 * margin + 2 || height <= 2 * margin + 2 {
        return Vec::new();
    }
    spread(peaks(image, margin), width, height, limit)
}

/// The three gradient products along part of a row, one array each.
struct Products {
    xx: Vec<f32>,
    yy: Vec<f32>,
    xy: Vec<f32>,
}

impl Products {
    fn zeroed(len: usize) -> Products {
        Products {
            xx: vec![0.0; len],
            yy: vec![0.0; len],
            xy: vec![0.0; len],
        }
    }
}

/// The local maxima over 3x3 of the Harris response above [`MIN_RESPONSE`], at least `margin` from the
/// edges. Rows pass through once, each stage keeping only the rows the next one reads:
/// gradient products, their sums over 5 columns (a ring of 5 rows), the response of the
/// middle row of those (a ring of 3 rows), and the peaks of the middle row of those.
fn peaks(image: &Grey, margin: usize) -> Vec<Corner> {
    let (width, height) = (image.width, image.height);
    let columns = width - 2 * margin;
    let mut products = Products::zeroed(columns + 4);
    let mut window: [Products; 5] = std::array::from_fn(|_| Products::zeroed(columns));
    // One column more on each side, and the rows just outside the margin: no response
    // there, so f32::MIN, below every response inside.
    let mut responses: [Vec<f32>; 3] = std::array::from_fn(|_| vec![f32::MIN; columns + 2]);
    let mut is_peak = vec![0u8; columns];
    let mut corners = Vec::new();
    for y in margin - 2..height - margin + 2 {
        gradient_products(image, y, margin - 2, &mut products);
        let sums = &mut window[y % 5];
        sum5(&products.xx, &mut sums.xx);
        sum5(&products.yy, &mut sums.yy);
        sum5(&products.xy, &mut sums.xy);
        if y < margin + 2 {
            continue;
        }
        let centre = y - 2;
        let rows = std::array::from_fn(|k| &window[(centre - 2 + k) % 5]);
        respond(rows, &mut responses[centre % 3][1..=columns]);
        if centre > margin {
            let rows = std::array::from_fn(|k| &responses[(centre - 2 + k) % 3][..]);
            row_peaks(rows, centre - 1, margin, &mut is_peak, &mut corners);
        }
    }
    let last = height - margin - 1;
    responses[(last + 1) % 3].fill(f32::MIN);
    let rows = std::array::from_fn(|k| &responses[(last - 1 + k) % 3][..]);
    row_peaks(rows, last, margin, &mut is_peak, &mut corners);
    corners
}

/// The products of the central-difference gradients of row `y`, from column `from`.
fn gradient_products(image: &Grey, y: usize, from: usize, out: &mut Products) {
    let n = out.xx.len();
    let (above, row, below) = (image.row(y - 1), image.row(y), image.row(y + 1));
    let (above, below) = (&above[from..][..n], &below[from..][..n]);
    let (left, right) = (&row[from - 1..][..n], &row[from + 1..][..n]);
    let (xx, yy, xy) = (&mut out.xx[..n], &mut out.yy[..n], &mut out.xy[..n]);
    for i in 0..n {
        let dx = right[i] - left[i];
        let dy = below[i] - above[i];
        xx[i] = dx * dx;
        yy[i] = dy * dy;
        xy[i] = dx * dy;
    }
}

/// `out[i]` = the sum of `values[i..i + 5]`.
fn sum5(values: &[f32], out: &mut [f32]) {
    let n = out.len();
    let (a, b, c, d, e) = (
        &values[..n],
        &values[1..][..n],
        &values[2..][..n],
        &values[3..][..n],
        &values[4..][..n],
    );
    for i in 0..n {
        out[i] = a[i] + b[i] + c[i] + d[i] + e[i];
    }
}

/// The Harris response from the column sums of the 5 rows around it.
fn respond(rows: [&Products; 5], out: &mut [f32]) {
    let n = out.len();
    let sum = |part: fn(&Products) -> &Vec<f32>| -> [&[f32]; 5] { rows.map(|r| &part(r)[..n]) };
    let (xx, yy, xy) = (sum(|p| &p.xx), sum(|p| &p.yy), sum(|p| &p.xy));
    for i in 0..n {
        let a = xx[0][i] + xx[1][i] + xx[2][i] + xx[3][i] + xx[4][i];
        let b = yy[0][i] + yy[1][i] + yy[2][i] + yy[3][i] + yy[4][i];
        let c = xy[0][i] + xy[1][i] + xy[2][i] + xy[3][i] + xy[4][i];
        out[i] = a * b - c * c - 0.04 * (a + b) * (a + b);
    }
}

/// Pushes the corners of row `y`, whose responses are the middle of `rows` (each one
/// column wider than the row on both sides).
fn row_peaks(rows: [&[f32]; 3], y: usize, margin: usize, is_peak: &mut [u8], corners: &mut Vec<Corner>) {
    let n = is_peak.len();
    let [above, row, below] = rows.map(|r| &r[..n + 2]);
    // Compared with the larger neighbours before and after in raster order (ties go to
    // the later pixel, so a flat plateau yields one corner), without short cuts, so that
    // the row vectorizes. (No response is NaN.)
    let larger = |a: f32, b: f32| if a > b { a } else { b };
    for (i, peak) in is_peak.iter_mut().enumerate() {
        let r = row[i + 1];
        let before = larger(larger(above[i], above[i + 1]), larger(above[i + 2], row[i]));
        let after = larger(larger(below[i], below[i + 1]), larger(below[i + 2], row[i + 2]));
        *peak = u8::from((r > MIN_RESPONSE) & (r >= before) & (r > after));
    }
    // Peaks are rare: eight columns are passed over at once, and only the flags set are
    // visited.
    let (words, rest) = is_peak.as_chunks::<8>();
    let flags = words.iter().map(|word| u64::from_le_bytes(*word));
    let last = rest
        .iter()
        .enumerate()
        .fold(0, |bits, (k, &f)| bits | u64::from(f) << (8 * k));
    for (word, mut bits) in flags.chain([last]).enumerate() {
        while bits != 0 {
            let i = 8 * word + bits.trailing_zeros() as usize / 8;
            bits &= bits - 1;
            corners.push(Corner {
                x: margin + i,
                y,
                response: row[i + 1],
            });
        }
    }
}

/// The strongest `limit` corners, at most a few per cell of a grid: text, logos and
/// other busy overlays are full of strong corners and would otherwise take every slot
/// from the picture underneath.
fn spread(corners: Vec<Corner>, width: usize, height: usize, limit: usize) -> Vec<Corner> {
    const CELL: usize = 32;
    let (columns, rows) = (width.div_ceil(CELL), height.div_ceil(CELL));
    let cap = (3 * limit).div_ceil(columns * rows).max(2);
    // Only a cell's `cap` strongest can ever be taken: keep those, strongest first, and
    // sort only them.
    let mut best = vec![Corner::default(); columns * rows * cap];
    let mut counts = vec![0usize; columns * rows];
    for corner in corners {
        let cell = (corner.y / CELL) * columns + corner.x / CELL;
        let (kept, count) = (&mut best[cell * cap..][..cap], &mut counts[cell]);
        let at = kept[..*count].partition_point(|k| order(k, &corner).is_lt());
        if at < cap {
            kept.copy_within(at..(*count).min(cap - 1), at + 1);
            kept[at] = corner;
            *count = (*count + 1).min(cap);
        }
    }
    let mut kept: Vec<Corner> = best
        .chunks_exact(cap)
        .zip(&counts)
        .flat_map(|(kept, &count)| &kept[..count])
        .copied()
        .collect();
    kept.sort_unstable_by(order);
    kept.truncate(limit);
    kept
}

/// Stronger response first; among equals, the earlier in raster order.
fn order(a: &Corner, b: &Corner) -> std::cmp::Ordering {
    b.response
        .total_cmp(&a.response)
        .then((a.y, a.x).cmp(&(b.y, b.x)))
}

/// The direction from a corner to the centroid of the intensities in the disc of the
/// descriptor's patch around it: turning the picture turns this angle with it.
pub fn orientation(image: &Grey, x: usize, y: usize) -> f32 {
    let (Some(left), Some(top)) = (x.checked_sub(RADIUS), y.checked_sub(RADIUS)) else {
        return 0.0;
    };
    // The disc's pixels summed down its columns, plain and weighted by their row offset:
    // whole rows of the square, masked to the disc, so that every row is one fixed-length
    // vectorized step. (Masked pixels add zeros, which change no sum.)
    let mut columns = [0f32; SIDE];
    let mut weighted = [0f32; SIDE];
    let rows = image.pixels.chunks_exact(image.width).skip(top);
    for ((row, disc), dy) in rows.zip(&DISC).zip(-(RADIUS as isize)..) {
        let Some(pixels) = row.get(left..).and_then(<[f32]>::first_chunk::<SIDE>) else {
            return 0.0;
        };
        for k in 0..SIDE {
            let v = pixels[k] * disc[k];
            columns[k] += v;
            weighted[k] += dy as f32 * v;
        }
    }
    let m10: f32 = columns
        .iter()
        .zip(-(RADIUS as isize)..)
        .map(|(&c, dx)| dx as f32 * c)
        .sum();
    let m01: f32 = weighted.iter().sum();
    m01.atan2(m10)
}

const RADIUS: usize = PATCH_RADIUS as usize;
const SIDE: usize = 2 * RADIUS + 1;

/// The disc of [`RADIUS`] in its square, 1 inside and 0 outside: on each row, the
/// offsets up to the whole part of its half-width.
const DISC: [[f32; SIDE]; SIDE] = {
    let mut disc = [[0f32; SIDE]; SIDE];
    let mut row = 0;
    while row < SIDE {
        let dy = row.abs_diff(RADIUS);
        let span = (RADIUS * RADIUS - dy * dy).isqrt();
        let mut column = RADIUS - span;
        while column <= RADIUS + span {
            disc[row][column] = 1.0;
            column += 1;
        }
        row += 1;
    }
    disc
};

/// Smooths with a 5x5 box: the descriptor compares smoothed pixels so that noise and
/// JPEG blocks do not flip its bits. (Pixels within 2 of an edge come out darker, as if
/// the outside were black; keypoints keep far enough from edges that the descriptor
/// never reads them.)
pub fn smooth(image: &Grey) -> Grey {
    let (width, height) = (image.width, image.height);
    let mut rows = vec![0f32; width * height];
    for (line, out) in image.pixels.chunks_exact(width).zip(rows.chunks_exact_mut(width)) {
        row_sum5(line, out);
    }
    let mut pixels = vec![0f32; width * height];
    for (y, out) in pixels.chunks_exact_mut(width).enumerate() {
        let band = y.saturating_sub(2)..(y + 3).min(height);
        if band.len() == 5 {
            let row = |k: usize| &rows[(y - 2 + k) * width..][..width];
            let (a, b, c, d, e) = (row(0), row(1), row(2), row(3), row(4));
            for i in 0..width {
                out[i] = (a[i] + b[i] + c[i] + d[i] + e[i]) * (1.0 / 25.0);
            }
        } else {
            for ny in band {
                for (o, &v) in out.iter_mut().zip(&rows[ny * width..][..width]) {
                    *o += v;
                }
            }
            for o in out {
                *o *= 1.0 / 25.0;
            }
        }
    }
    Grey {
        width,
        height,
        pixels,
    }
}

/// Sums over 5 columns of one row (zero outside).
fn row_sum5(line: &[f32], out: &mut [f32]) {
    let width = line.len();
    if width < 5 {
        for (x, o) in out.iter_mut().enumerate() {
            *o = line[x.saturating_sub(2)..(x + 3).min(width)].iter().sum();
        }
        return;
    }
    sum5(line, &mut out[2..width - 2]);
    out[0] = line[0] + line[1] + line[2];
    out[1] = out[0] + line[3];
    out[width - 1] = line[width - 1] + line[width - 2] + line[width - 3];
    out[width - 2] = out[width - 1] + line[width - 4];
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Uniform values in [0, 1) from a fixed seed (splitmix64).
    fn noise(seed: u64) -> impl FnMut() -> f32 {
        let mut state = seed;
        move || {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            ((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 24) as f32
        }
    }

    /// Smooth blobs plus a little noise: corners at many strengths, ties on flat parts.
    fn scene(width: usize, height: usize, seed: u64) -> Grey {
        let mut next = noise(seed);
        let blobs: Vec<[f32; 4]> = (0..12).map(|_| [next(), next(), next(), next()]).collect();
        let pixels = (0..width * height)
            .map(|i| {
                let (x, y) = (
                    (i % width) as f32 / width as f32,
                    (i / width) as f32 / height as f32,
                );
                let lit = blobs
                    .iter()
                    .any(|b| (x - b[0]).abs() < b[2] / 4.0 && (y - b[1]).abs() < b[3] / 4.0);
                (if lit { 180.0 } else { 60.0 } + (next() * 4.0).floor()).min(255.0)
            })
            .collect();
        Grey {
            width,
            height,
            pixels,
        }
    }

    /// The Harris response over the whole image and its 3x3 maxima, as plainly as they
    /// can be written: what the streamed rows must reproduce.
    fn plain_peaks(image: &Grey, margin: usize) -> Vec<(usize, usize, f32)> {
        let (width, height) = (image.width, image.height);
        let at = |x: usize, y: usize| image.pixels[y * width + x];
        let product = |x: usize, y: usize| {
            let dx = at(x + 1, y) - at(x - 1, y);
            let dy = at(x, y + 1) - at(x, y - 1);
            [dx * dx, dy * dy, dx * dy]
        };
        let mut response = vec![f32::MIN; width * height];
        for y in margin..height - margin {
            for x in margin..width - margin {
                let mut t = [0f32; 3];
                for ny in y - 2..=y + 2 {
                    let row: [f32; 3] =
                        std::array::from_fn(|k| (x - 2..=x + 2).map(|nx| product(nx, ny)[k]).sum());
                    t = std::array::from_fn(|k| t[k] + row[k]);
                }
                let [a, b, c] = t;
                response[y * width + x] = a * b - c * c - 0.04 * (a + b) * (a + b);
            }
        }
        let mut found = Vec::new();
        for y in margin..height - margin {
            for x in margin..width - margin {
                let i = y * width + x;
                let r = response[i];
                let before = [i - width - 1, i - width, i - width + 1, i - 1];
                let after = [i + 1, i + width - 1, i + width, i + width + 1];
                if r > MIN_RESPONSE
                    && before.iter().all(|&j| response[j] <= r)
                    && after.iter().all(|&j| response[j] < r)
                {
                    found.push((x, y, r));
                }
            }
        }
        found
    }

    #[test]
    fn streamed_peaks_are_the_plain_peaks() {
        for (width, height, seed) in [(120, 90, 1), (77, 41, 2), (40, 200, 3)] {
            let image = scene(width, height, seed);
            let streamed: Vec<_> = peaks(&image, 17).iter().map(|c| (c.x, c.y, c.response)).collect();
            assert!(!streamed.is_empty());
            assert_eq!(streamed, plain_peaks(&image, 17), "{width}x{height}");
        }
    }

    /// The grid rule as first written: every corner, sorted, taken while its cell has room.
    fn plain_spread(mut corners: Vec<Corner>, width: usize, height: usize, limit: usize) -> Vec<Corner> {
        let columns = width.div_ceil(32);
        let cap = (3 * limit).div_ceil(columns * height.div_ceil(32)).max(2);
        corners.sort_by(order);
        let mut taken = vec![0; columns * height.div_ceil(32)];
        let mut kept = Vec::new();
        for corner in corners {
            let cell = (corner.y / 32) * columns + corner.x / 32;
            if taken[cell] < cap && kept.len() < limit {
                taken[cell] += 1;
                kept.push(corner);
            }
        }
        kept
    }

    #[test]
    fn spread_keeps_what_taking_the_strongest_in_turn_keeps() {
        let mut next = noise(7);
        let corners: Vec<Corner> = (0..3000)
            .map(|_| Corner {
                x: (next() * 300.0) as usize,
                y: (next() * 200.0) as usize,
                // Few distinct strengths, so that ties are common.
                response: (next() * 20.0).floor(),
            })
            .collect();
        for limit in [1, 10, 60, 162, 1000] {
            let spread = spread(corners.clone(), 300, 200, limit);
            let plain = plain_spread(corners.clone(), 300, 200, limit);
            let key = |c: &Corner| (c.x, c.y, c.response.to_bits());
            assert_eq!(
                spread.iter().map(key).collect::<Vec<_>>(),
                plain.iter().map(key).collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn the_disc_is_the_rows_of_whole_half_widths() {
        for (row, mask) in DISC.iter().enumerate() {
            let dy = row as f32 - RADIUS as f32;
            let span = ((RADIUS * RADIUS) as f32 - dy * dy).sqrt() as usize;
            let inside: Vec<usize> = (0..SIDE).filter(|&k| mask[k] == 1.0).collect();
            assert_eq!(
                inside,
                (RADIUS - span..=RADIUS + span).collect::<Vec<_>>(),
                "row {row}"
            );
        }
    }

    /// `width x height` RGB bytes, smooth across a few pixels, so that area averages at
    /// slightly different cuts agree closely.
    fn smooth_rgb(width: u32, height: u32) -> DecodedImage {
        let pixels = (0..width * height)
            .flat_map(|i| {
                let (x, y) = ((i % width) as f32, (i / width) as f32);
                let wave = |f: f32, g: f32| (127.5 + 120.0 * (x * f + y * g).sin()) as u8;
                [wave(0.011, 0.023), wave(0.019, 0.007), wave(0.005, 0.031)]
            })
            .collect();
        DecodedImage::from_pixels(width, height, PixelLayout::Rgb, pixels).unwrap()
    }

    /// The exact area average of the luma of `image`, in f64.
    fn plain_area(image: &DecodedImage, width: usize, height: usize) -> Vec<f64> {
        let (w, h) = (image.width() as usize, image.height() as usize);
        let luma = |x: usize, y: usize| {
            let p = &image.pixels()[(y * w + x) * 3..][..3];
            0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2])
        };
        let cover = |cell: usize, start: f64, end: f64| {
            (end.min(cell as f64 + 1.0) - start.max(cell as f64)).max(0.0)
        };
        let (sx, sy) = (w as f64 / width as f64, h as f64 / height as f64);
        let mut out = Vec::new();
        for oy in 0..height {
            let (y0, y1) = (oy as f64 * sy, (oy + 1) as f64 * sy);
            for ox in 0..width {
                let (x0, x1) = (ox as f64 * sx, (ox + 1) as f64 * sx);
                let mut sum = 0.0;
                for y in y0 as usize..(y1.ceil() as usize).min(h) {
                    for x in x0 as usize..(x1.ceil() as usize).min(w) {
                        sum += cover(x, x0, x1) * cover(y, y0, y1) * luma(x, y);
                    }
                }
                out.push(sum / (sx * sy));
            }
        }
        out
    }

    #[test]
    fn the_working_copy_is_the_area_average() {
        // 1600 wide: every pixel weighed; 4700 wide: boxes of 2 first.
        for (width, height) in [(1600, 130), (4700, 260)] {
            let image = smooth_rgb(width, height);
            let copy = Grey::working_copy(&image, Region::whole(&image), 512);
            let plain = plain_area(&image, copy.width, copy.height);
            let worst = copy
                .pixels
                .iter()
                .zip(&plain)
                .map(|(&a, &b)| (f64::from(a) - b).abs())
                .fold(0.0, f64::max);
            let tolerance = if width < 4096 { 0.001 } else { 0.5 };
            assert!(worst < tolerance, "{width}x{height}: {worst}");
        }
    }
}
