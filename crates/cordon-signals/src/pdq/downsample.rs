//! The Jarosz tent filter and the decimation to 64x64, bit-exact with the reference.
//!
//! The reference blurs the whole luma image four times (box along rows, box along
//! columns, twice) with running f32 sums, then samples 64x64 points. The sums must be
//! reproduced operation for operation, but neither every output nor whole-image buffers
//! are needed:
//!
//! * the last column pass is only read at 64 rows of 64 columns, and each column's
//!   running sum depends only on that column, so it runs on 64 columns alone;
//! * the second row pass therefore only writes those 64 columns (its running sum still
//!   walks the whole row, which is cheap next to a store and a division);
//! * the passes stream: the first column pass pulls rows from the first row pass as its
//!   window reaches them, and hands finished rows to the second row pass, so only a band
//!   of rows as tall as the window is ever held (under a megabyte for a 12 MP photo,
//!   instead of two 48 MB images that would each cost page faults and memory traffic);
//! * row passes run [`LANES`] rows side by side, so the serial chain of one running sum
//!   does not stall the core; column passes run across a whole row at once.
//!
//! `reference.rs` (tests only) holds the straightforward port; the tests prove both give
//! the same bits on random images of every awkward size.

use super::dct::Block64;

/// How many rows a row pass carries side by side.
const LANES: usize = 8;

/// The reference's `computeJaroszFilterWindowSize(dim, 64)`: half of a 64th, rounded up.
pub(crate) fn window_size(dimension: usize) -> usize {
    dimension.div_ceil(128)
}

/// The reference's decimation grid: `floor((i + 0.5) * dimension / 64)` in f64.
fn sample_points(dimension: usize) -> [usize; 64] {
    std::array::from_fn(|i| (((i as f64 + 0.5) * dimension as f64) / 64.0) as usize)
}

/// One step of a running box sum, shared by every pass: add sample `add`, then
/// subtract sample `sub`, then write output `out.0` as the sum divided by `out.1`.
trait RunningBox {
    fn step(&mut self, add: Option<usize>, sub: Option<usize>, out: Option<(usize, f32)>);
}

/// Drives `target` through the reference's `box1DFloat` over `n` samples with a window of
/// `w`: the same additions, subtractions and divisions in the same order.
#[inline(always)]
fn run_box(n: usize, w: usize, target: &mut impl RunningBox) {
    let half = (w + 2) / 2;
    // Output `o` subtracts sample `o - lag` once the window is full.
    let lag = w - half + 1;
    for ri in 0..half - 1 {
        target.step(Some(ri), None, None);
    }
    let mut count = half - 1;
    for o in 0..lag {
        count += 1;
        target.step(Some(o + half - 1), None, Some((o, count as f32)));
    }
    for o in lag..=(n - half) {
        target.step(Some(o + half - 1), Some(o - lag), Some((o, w as f32)));
    }
    for o in (n - half + 1)..n {
        count -= 1;
        target.step(None, Some(o - lag), Some((o, count as f32)));
    }
}

/// Which outputs of a row pass are kept.
#[derive(Clone, Copy)]
enum Keep<'a> {
    /// Every output, at its own column.
    All,
    /// Only outputs at these (non-decreasing) columns, written densely, one per entry.
    Samples(&'a [usize; 64]),
}

/// A row pass over `L` rows at once. Row `l` of the group is read from
/// `input[in_starts[l]..]` and written to `output[out_starts[l]..]`.
struct RowGroup<'a, const L: usize> {
    input: &'a [f32],
    output: &'a mut [f32],
    in_starts: [usize; L],
    out_starts: [usize; L],
    sums: [f32; L],
    keep: Keep<'a>,
    next_sample: usize,
}

impl<const L: usize> RunningBox for RowGroup<'_, L> {
    #[inline(always)]
    fn step(&mut self, add: Option<usize>, sub: Option<usize>, out: Option<(usize, f32)>) {
        for l in 0..L {
            let mut sum = self.sums[l];
            if let Some(a) = add {
                sum += self.input[self.in_starts[l] + a];
            }
            if let Some(s) = sub {
                sum -= self.input[self.in_starts[l] + s];
            }
            self.sums[l] = sum;
        }
        let Some((o, count)) = out else { return };
        match self.keep {
            Keep::All => {
                for l in 0..L {
                    self.output[self.out_starts[l] + o] = self.sums[l] / count;
                }
            }
            Keep::Samples(samples) => {
                while self.next_sample < 64 && samples[self.next_sample] == o {
                    for l in 0..L {
                        self.output[self.out_starts[l] + self.next_sample] = self.sums[l] / count;
                    }
                    self.next_sample += 1;
                }
            }
        }
    }
}

/// Runs a row pass over the rows whose offsets are given, `LANES` at a time.
fn box_rows(
    input: &[f32],
    output: &mut [f32],
    in_starts: &[usize],
    out_starts: &[usize],
    length: usize,
    window: usize,
    keep: Keep<'_>,
) {
    let mut in_groups = in_starts.chunks_exact(LANES);
    let mut out_groups = out_starts.chunks_exact(LANES);
    for (ins, outs) in (&mut in_groups).zip(&mut out_groups) {
        let mut group = RowGroup::<LANES> {
            input,
            output: &mut *output,
            in_starts: std::array::from_fn(|l| ins[l]),
            out_starts: std::array::from_fn(|l| outs[l]),
            sums: [0.0; LANES],
            keep,
            next_sample: 0,
        };
        run_box(length, window, &mut group);
    }
    for (&in_start, &out_start) in in_groups.remainder().iter().zip(out_groups.remainder()) {
        let mut group = RowGroup::<1> {
            input,
            output: &mut *output,
            in_starts: [in_start],
            out_starts: [out_start],
            sums: [0.0],
            keep,
            next_sample: 0,
        };
        run_box(length, window, &mut group);
    }
}

/// Fills `out` (a whole number of rows) with the luma of rows `first..`.
pub(crate) type LumaSource<'s> = dyn FnMut(usize, &mut [f32]) + 's;

/// The first row pass, computed on demand a band of rows at a time into a ring that holds
/// just enough rows for the column pass that reads it.
struct FirstRowPass<'r, 's> {
    source: &'r mut LumaSource<'s>,
    rows: usize,
    cols: usize,
    window: usize,
    luma_band: Vec<f32>,
    ring: Vec<f32>,
    ring_rows: usize,
    /// Rows `0..produced` have been computed.
    produced: usize,
}

impl FirstRowPass<'_, '_> {
    /// Makes row `row` (and so every row before it) available.
    fn ensure(&mut self, row: usize) {
        while self.produced <= row {
            let first = self.produced;
            let count = LANES.min(self.rows - first);
            let band = &mut self.luma_band[..count * self.cols];
            (self.source)(first, band);
            let in_starts: Vec<usize> = (0..count).map(|l| l * self.cols).collect();
            let out_starts: Vec<usize> = (first..first + count)
                .map(|r| (r % self.ring_rows) * self.cols)
                .collect();
            box_rows(
                band,
                &mut self.ring,
                &in_starts,
                &out_starts,
                self.cols,
                self.window,
                Keep::All,
            );
            self.produced += count;
        }
    }

    fn row(&self, row: usize) -> &[f32] {
        let start = (row % self.ring_rows) * self.cols;
        &self.ring[start..start + self.cols]
    }
}

/// The second row pass, fed finished rows of the first column pass a band at a time; it
/// keeps only the 64 sampled columns of each row.
struct SecondRowPass<'a> {
    cols: usize,
    window: usize,
    col_samples: &'a [usize; 64],
    band: Vec<f32>,
    /// The first row held in `band`, and how many rows are there.
    band_first: usize,
    band_len: usize,
    narrow: Vec<f32>,
}

impl SecondRowPass<'_> {
    fn accept(&mut self, row: usize, values: impl Iterator<Item = f32>) {
        debug_assert_eq!(row, self.band_first + self.band_len);
        let start = self.band_len * self.cols;
        for (cell, value) in self.band[start..start + self.cols].iter_mut().zip(values) {
            *cell = value;
        }
        self.band_len += 1;
        if self.band_len == LANES {
            self.flush();
        }
    }

    fn flush(&mut self) {
        let in_starts: Vec<usize> = (0..self.band_len).map(|l| l * self.cols).collect();
        let out_starts: Vec<usize> = (self.band_first..self.band_first + self.band_len)
            .map(|r| r * 64)
            .collect();
        box_rows(
            &self.band,
            &mut self.narrow,
            &in_starts,
            &out_starts,
            self.cols,
            self.window,
            Keep::Samples(self.col_samples),
        );
        self.band_first += self.band_len;
        self.band_len = 0;
    }
}

/// The first column pass over every column at once, pulling input rows from the first row
/// pass and handing each output row to the second row pass.
struct FirstColumnPass<'p, 'r, 's, 'c> {
    input: &'p mut FirstRowPass<'r, 's>,
    sums: Vec<f32>,
    output: &'p mut SecondRowPass<'c>,
}

impl RunningBox for FirstColumnPass<'_, '_, '_, '_> {
    #[inline(always)]
    fn step(&mut self, add: Option<usize>, sub: Option<usize>, out: Option<(usize, f32)>) {
        if let Some(a) = add {
            self.input.ensure(a);
        }
        match (add, sub) {
            (Some(a), Some(s)) => {
                let (plus, minus) = (self.input.row(a), self.input.row(s));
                for ((sum, &p), &m) in self.sums.iter_mut().zip(plus).zip(minus) {
                    *sum = (*sum + p) - m;
                }
            }
            (Some(a), None) => {
                for (sum, &p) in self.sums.iter_mut().zip(self.input.row(a)) {
                    *sum += p;
                }
            }
            (None, Some(s)) => {
                for (sum, &m) in self.sums.iter_mut().zip(self.input.row(s)) {
                    *sum -= m;
                }
            }
            (None, None) => {}
        }
        if let Some((o, count)) = out {
            self.output.accept(o, self.sums.iter().map(|&s| s / count));
        }
    }
}

/// The last column pass, on the 64 sampled columns, keeping only the 64 sampled rows.
struct LastColumnPass<'a> {
    narrow: &'a [f32],
    sums: [f32; 64],
    row_samples: &'a [usize; 64],
    next_sample: usize,
    block: &'a mut Block64,
}

impl RunningBox for LastColumnPass<'_> {
    #[inline(always)]
    fn step(&mut self, add: Option<usize>, sub: Option<usize>, out: Option<(usize, f32)>) {
        if let Some(a) = add {
            for (sum, &p) in self.sums.iter_mut().zip(&self.narrow[a * 64..(a + 1) * 64]) {
                *sum += p;
            }
        }
        if let Some(s) = sub {
            for (sum, &m) in self.sums.iter_mut().zip(&self.narrow[s * 64..(s + 1) * 64]) {
                *sum -= m;
            }
        }
        let Some((o, count)) = out else { return };
        while self.next_sample < 64 && self.row_samples[self.next_sample] == o {
            for (cell, &sum) in self.block[self.next_sample].iter_mut().zip(self.sums.iter()) {
                *cell = sum / count;
            }
            self.next_sample += 1;
        }
    }
}

/// Blurs the `rows x cols` luma image that `source` produces with the reference's two
/// Jarosz passes and returns its 64x64 decimation. `source` is asked for each row once,
/// in order, a few rows at a time.
///
/// `rows` and `cols` are at least 1; the caller handles images too small to hash.
pub(crate) fn downsample_to_64(rows: usize, cols: usize, source: &mut LumaSource<'_>) -> Box<Block64> {
    let mut block = Box::new([[0f32; 64]; 64]);
    // The reference skips the blur for an input that is already 64x64.
    if rows == 64 && cols == 64 {
        let mut luma = vec![0f32; 64 * 64];
        source(0, &mut luma);
        for (dst, src) in block.iter_mut().zip(luma.chunks_exact(64)) {
            dst.copy_from_slice(src);
        }
        return block;
    }
    let along_rows = window_size(cols);
    let along_cols = window_size(rows);
    let row_samples = sample_points(rows);
    let col_samples = sample_points(cols);

    // The column pass reads rows `o - lag ..= o + half - 1`, a span of `along_cols + 1`
    // rows, and the row pass may run a band of LANES rows ahead of it.
    let ring_rows = (along_cols + 1 + LANES).min(rows);
    let mut first_rows = FirstRowPass {
        source,
        rows,
        cols,
        window: along_rows,
        luma_band: vec![0f32; LANES * cols],
        ring: vec![0f32; ring_rows * cols],
        ring_rows,
        produced: 0,
    };
    let mut second_rows = SecondRowPass {
        cols,
        window: along_rows,
        col_samples: &col_samples,
        band: vec![0f32; LANES * cols],
        band_first: 0,
        band_len: 0,
        narrow: vec![0f32; rows * 64],
    };
    let mut first_columns = FirstColumnPass {
        input: &mut first_rows,
        sums: vec![0f32; cols],
        output: &mut second_rows,
    };
    run_box(rows, along_cols, &mut first_columns);
    second_rows.flush();

    let mut last_columns = LastColumnPass {
        narrow: &second_rows.narrow,
        sums: [0f32; 64],
        row_samples: &row_samples,
        next_sample: 0,
        block: &mut block,
    };
    run_box(rows, along_cols, &mut last_columns);
    block
}
