//! The Jarosz tent filter and the decimation to 64x64, bit-exact with the reference.
//!
//! The reference blurs the whole luma image four times (box along rows, box along
//! columns, twice) with running f32 sums, then samples 64x64 points. The sums must be
//! reproduced operation for operation, but not every output is needed:
//!
//! * the last column pass is only read at 64 rows of 64 columns, and each column's
//!   running sum depends only on that column, so it runs on 64 columns alone;
//! * the second row pass therefore only has to write those 64 columns (its running sum
//!   still walks the whole row, which is cheap next to a store and a division);
//! * row passes run several rows side by side, so the serial chain of one running sum
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
pub(crate) fn sample_points(dimension: usize) -> [usize; 64] {
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

/// Which outputs of a pass are kept.
#[derive(Clone, Copy)]
enum Keep<'a> {
    /// Every output, in place.
    All,
    /// Only outputs at these (non-decreasing) positions, written densely, one per entry.
    Samples(&'a [usize; 64]),
}

/// A row pass over `L` rows at once: `input` and `output` are row-major with `stride`
/// floats per row, and row `l` of the group starts at `starts[l]`.
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

/// Box along every row of a `rows x cols` image with window `w`. With `Keep::All` the
/// output is `rows x cols`; with `Keep::Samples` it is `rows x 64`.
fn box_rows(input: &[f32], output: &mut [f32], rows: usize, cols: usize, w: usize, keep: Keep<'_>) {
    let out_stride = match keep {
        Keep::All => cols,
        Keep::Samples(_) => 64,
    };
    let full_groups = rows / LANES;
    for g in 0..full_groups {
        let first = g * LANES;
        let mut group = RowGroup::<LANES> {
            input,
            output: &mut *output,
            in_starts: std::array::from_fn(|l| (first + l) * cols),
            out_starts: std::array::from_fn(|l| (first + l) * out_stride),
            sums: [0.0; LANES],
            keep,
            next_sample: 0,
        };
        run_box(cols, w, &mut group);
    }
    for row in full_groups * LANES..rows {
        let mut group = RowGroup::<1> {
            input,
            output: &mut *output,
            in_starts: [row * cols],
            out_starts: [row * out_stride],
            sums: [0.0],
            keep,
            next_sample: 0,
        };
        run_box(cols, w, &mut group);
    }
}

/// A column pass over every column at once: one running sum per column, each step
/// touching one input row (or two) and one output row.
struct ColumnSweep<'a> {
    input: &'a [f32],
    width: usize,
    sums: Vec<f32>,
    sink: ColumnSink<'a>,
    next_sample: usize,
}

enum ColumnSink<'a> {
    /// Every output row, into a buffer shaped like the input.
    All(&'a mut [f32]),
    /// Only the 64 sampled rows, into the 64x64 block (the input is 64 wide).
    Samples(&'a [usize; 64], &'a mut Block64),
}

impl RunningBox for ColumnSweep<'_> {
    #[inline(always)]
    fn step(&mut self, add: Option<usize>, sub: Option<usize>, out: Option<(usize, f32)>) {
        let width = self.width;
        match (add, sub) {
            (Some(a), Some(s)) => {
                let plus = &self.input[a * width..(a + 1) * width];
                let minus = &self.input[s * width..(s + 1) * width];
                for ((sum, &p), &m) in self.sums.iter_mut().zip(plus).zip(minus) {
                    *sum = (*sum + p) - m;
                }
            }
            (Some(a), None) => {
                let plus = &self.input[a * width..(a + 1) * width];
                for (sum, &p) in self.sums.iter_mut().zip(plus) {
                    *sum += p;
                }
            }
            (None, Some(s)) => {
                let minus = &self.input[s * width..(s + 1) * width];
                for (sum, &m) in self.sums.iter_mut().zip(minus) {
                    *sum -= m;
                }
            }
            (None, None) => {}
        }
        let Some((o, count)) = out else { return };
        match &mut self.sink {
            ColumnSink::All(output) => {
                let row = &mut output[o * width..(o + 1) * width];
                for (cell, &sum) in row.iter_mut().zip(self.sums.iter()) {
                    *cell = sum / count;
                }
            }
            ColumnSink::Samples(samples, block) => {
                while self.next_sample < 64 && samples[self.next_sample] == o {
                    for (cell, &sum) in block[self.next_sample].iter_mut().zip(self.sums.iter()) {
                        *cell = sum / count;
                    }
                    self.next_sample += 1;
                }
            }
        }
    }
}

fn box_columns(input: &[f32], rows: usize, width: usize, w: usize, sink: ColumnSink<'_>) {
    let mut sweep = ColumnSweep {
        input,
        width,
        sums: vec![0.0; width],
        sink,
        next_sample: 0,
    };
    run_box(rows, w, &mut sweep);
}

/// Blurs `luma` (`rows x cols`, row-major; used as scratch and left changed) with the
/// reference's two Jarosz passes and returns its 64x64 decimation.
///
/// `rows` and `cols` are at least 1; the caller handles images too small to hash.
pub(crate) fn downsample_to_64(luma: &mut [f32], rows: usize, cols: usize) -> Box<Block64> {
    debug_assert_eq!(luma.len(), rows * cols);
    let mut block = Box::new([[0f32; 64]; 64]);
    // The reference skips the blur for an input that is already 64x64.
    if rows == 64 && cols == 64 {
        for (dst, src) in block.iter_mut().zip(luma.chunks_exact(64)) {
            dst.copy_from_slice(src);
        }
        return block;
    }
    let along_rows = window_size(cols);
    let along_cols = window_size(rows);
    let row_samples = sample_points(rows);
    let col_samples = sample_points(cols);

    let mut scratch = vec![0f32; rows * cols];
    // First pass, in full.
    box_rows(luma, &mut scratch, rows, cols, along_rows, Keep::All);
    box_columns(&scratch, rows, cols, along_cols, ColumnSink::All(luma));
    drop(scratch);
    // Second pass, only what the decimation reads.
    let mut narrow = vec![0f32; rows * 64];
    box_rows(
        luma,
        &mut narrow,
        rows,
        cols,
        along_rows,
        Keep::Samples(&col_samples),
    );
    box_columns(
        &narrow,
        rows,
        64,
        along_cols,
        ColumnSink::Samples(&row_samples, &mut block),
    );
    block
}
