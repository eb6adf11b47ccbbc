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
//!   does not stall the core; column passes run across a whole row at once;
//! * rows are produced whole (luma as vector arithmetic over a row, column-pass quotients
//!   a row at a time) and turned lane-major a band at a time by [`Interleave`], with 8x8
//!   register transposes where the CPU has AVX2 rather than a scattered store per sample.
//!
//! `reference.rs` holds the straightforward port; the tests prove both give the same bits
//! on random images of every awkward size. It also hashes the slivers (a few pixels high
//! or wide) whose bands and samples would hold more than its two whole images.

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

/// Where a row pass writes. Lane `l` of the group writes row `starts[l]..` of `output`;
/// lanes at and beyond `live` are padding (a last band of fewer rows) and are dropped.
struct LaneSink<'a, I> {
    interleave: I,
    output: &'a mut [f32],
    starts: [usize; LANES],
    live: usize,
    /// `None`: every output, at its own column. `Some`: only the sampled columns, written
    /// densely, one per entry.
    samples: Option<&'a [usize; 64]>,
    next_sample: usize,
    /// With every output kept: the last columns computed, one lane vector each, written
    /// out eight columns at a time as eight row vectors.
    pending: [[f32; LANES]; LANES],
}

impl<I: Interleave> LaneSink<'_, I> {
    /// Writes the pending columns `first..first + count` to every live row.
    #[inline(always)]
    fn flush_pending(&mut self, first: usize, count: usize) {
        let rows = self.interleave.transpose(&self.pending);
        for (start, row) in self.starts.iter().zip(&rows).take(self.live) {
            self.output[start + first..start + first + count].copy_from_slice(&row[..count]);
        }
    }
}

/// A row pass over `LANES` rows at once. The input is lane-major: sample `i` of lane `l`
/// is at `input[i * LANES + l]`, so each step loads, adds and divides whole vectors.
struct LaneGroup<'a, I> {
    input: &'a [f32],
    /// Samples per lane.
    length: usize,
    sums: [f32; LANES],
    sink: LaneSink<'a, I>,
}

/// Loads the `LANES` samples at position `i` of a lane-major band.
#[inline(always)]
fn lanes_at(band: &[f32], i: usize) -> [f32; LANES] {
    let lanes = &band[i * LANES..(i + 1) * LANES];
    std::array::from_fn(|l| lanes[l])
}

impl<I: Interleave> RunningBox for LaneGroup<'_, I> {
    #[inline(always)]
    fn step(&mut self, add: Option<usize>, sub: Option<usize>, out: Option<(usize, f32)>) {
        // Whole arrays in locals, so the compiler keeps them in vector registers.
        let mut sums = self.sums;
        if let Some(a) = add {
            let plus = lanes_at(self.input, a);
            sums = std::array::from_fn(|l| sums[l] + plus[l]);
        }
        if let Some(s) = sub {
            let minus = lanes_at(self.input, s);
            sums = std::array::from_fn(|l| sums[l] - minus[l]);
        }
        self.sums = sums;
        let Some((o, count)) = out else { return };
        let sink = &mut self.sink;
        let column = match sink.samples {
            None => o,
            Some(samples) => {
                if sink.next_sample >= 64 || samples[sink.next_sample] != o {
                    return;
                }
                sink.next_sample
            }
        };
        let quotients: [f32; LANES] = std::array::from_fn(|l| sums[l] / count);
        let Some(samples) = sink.samples else {
            sink.pending[o % LANES] = quotients;
            let last = o + 1 == self.length;
            if o % LANES == LANES - 1 || last {
                sink.flush_pending(o - o % LANES, o % LANES + 1);
            }
            return;
        };
        let output = &mut *sink.output;
        for (start, q) in sink.starts.iter().zip(quotients).take(sink.live) {
            output[start + column] = q;
        }
        // A narrow image samples a column more than once.
        sink.next_sample += 1;
        while sink.next_sample < 64 && samples[sink.next_sample] == o {
            for start in &sink.starts[..sink.live] {
                output[start + sink.next_sample] = output[start + sink.next_sample - 1];
            }
            sink.next_sample += 1;
        }
    }
}

/// The first row pass, computed on demand a band of rows at a time into a ring that holds
/// just enough rows for the column pass that reads it.
struct FirstRowPass<'r, S, I> {
    /// `source(row, out)` writes the luma of `row` to `out`.
    source: &'r mut S,
    interleave: I,
    rows: usize,
    cols: usize,
    window: usize,
    /// The band's rows as the source wrote them, one after another.
    band: &'r mut [f32],
    /// The band being filtered, lane-major.
    lanes: &'r mut [f32],
    ring: &'r mut [f32],
    ring_rows: usize,
    /// Rows `0..produced` have been computed.
    produced: usize,
}

impl<S: FnMut(usize, &mut [f32]), I: Interleave> FirstRowPass<'_, S, I> {
    /// Makes row `row` (and so every row before it) available.
    #[inline(always)]
    fn ensure(&mut self, row: usize) {
        while self.produced <= row {
            let first = self.produced;
            let live = LANES.min(self.rows - first);
            for (l, row) in self.band.chunks_exact_mut(self.cols).take(live).enumerate() {
                (self.source)(first + l, row);
            }
            self.interleave.interleave(self.band, self.lanes);
            let mut group = LaneGroup {
                input: self.lanes,
                length: self.cols,
                sums: [0.0; LANES],
                sink: LaneSink {
                    interleave: self.interleave,
                    output: self.ring,
                    starts: std::array::from_fn(|l| ((first + l) % self.ring_rows) * self.cols),
                    live,
                    samples: None,
                    next_sample: 0,
                    pending: [[0.0; LANES]; LANES],
                },
            };
            run_box(self.cols, self.window, &mut group);
            self.produced += live;
        }
    }

    fn row(&self, row: usize) -> &[f32] {
        let start = (row % self.ring_rows) * self.cols;
        &self.ring[start..start + self.cols]
    }
}

/// The second row pass, fed finished rows of the first column pass a band at a time; it
/// keeps only the 64 sampled columns of each row.
struct SecondRowPass<'a, I> {
    window: usize,
    col_samples: &'a [usize; 64],
    interleave: I,
    /// The band being collected, a row after another.
    band: &'a mut [f32],
    /// The band being filtered, lane-major.
    lanes: &'a mut [f32],
    /// The first row held in the band, and how many rows are there.
    band_first: usize,
    band_len: usize,
    narrow: &'a mut [f32],
}

impl<I: Interleave> SecondRowPass<'_, I> {
    /// The row `accept` will fill next.
    #[inline(always)]
    fn next_row(&mut self) -> &mut [f32] {
        let cols = self.lanes.len() / LANES;
        &mut self.band[self.band_len * cols..(self.band_len + 1) * cols]
    }

    /// Takes the row just written into [`Self::next_row`] as row `row`.
    #[inline(always)]
    fn accept(&mut self, row: usize) {
        debug_assert_eq!(row, self.band_first + self.band_len);
        self.band_len += 1;
        if self.band_len == LANES {
            self.flush();
        }
    }

    #[inline(always)]
    fn flush(&mut self) {
        if self.band_len == 0 {
            return;
        }
        let cols = self.lanes.len() / LANES;
        let first = self.band_first;
        self.interleave.interleave(self.band, self.lanes);
        let mut group = LaneGroup {
            input: self.lanes,
            length: cols,
            sums: [0.0; LANES],
            sink: LaneSink {
                interleave: self.interleave,
                output: self.narrow,
                starts: std::array::from_fn(|l| (first + l) * 64),
                live: self.band_len,
                samples: Some(self.col_samples),
                next_sample: 0,
                pending: [[0.0; LANES]; LANES],
            },
        };
        run_box(cols, self.window, &mut group);
        self.band_first += self.band_len;
        self.band_len = 0;
    }
}

/// The first column pass over every column at once, pulling input rows from the first row
/// pass and handing each output row to the second row pass.
struct FirstColumnPass<'p, 'r, 'c, S, I> {
    input: &'p mut FirstRowPass<'r, S, I>,
    sums: &'p mut [f32],
    output: &'p mut SecondRowPass<'c, I>,
}

impl<S: FnMut(usize, &mut [f32]), I: Interleave> RunningBox for FirstColumnPass<'_, '_, '_, S, I> {
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
            // Divided as a whole row (vectorised), straight into the next pass's band.
            for (q, &sum) in self.output.next_row().iter_mut().zip(self.sums.iter()) {
                *q = sum / count;
            }
            self.output.accept(o);
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
/// Jarosz passes and returns its 64x64 decimation. `source(row, out)` writes the luma of
/// `row` to `out` (`cols` values); it is asked for each row once, in order.
///
/// `rows` and `cols` are at least 1; the caller handles images too small to hash.
pub(crate) fn downsample_to_64(
    rows: usize,
    cols: usize,
    source: &mut impl FnMut(usize, &mut [f32]),
) -> Box<Block64> {
    // Bands of LANES whole rows and 64 samples of every row cost many times the pixels of
    // an image a few pixels high or wide (a 5x20,000,000 PNG of 175 KB took 5 GB): such an
    // image gets the reference's two whole images, 8 bytes a pixel, and the same bits.
    if streaming_floats(rows, cols) > rows * cols * 2 {
        return whole_image(rows, cols, source);
    }
    #[cfg(target_arch = "x86_64")]
    if let Some(avx2) = Avx2::detect() {
        // SAFETY: an `Avx2` exists only where the CPU has AVX2.
        return unsafe { downsample_avx2(rows, cols, source, avx2) };
    }
    downsample_portable(rows, cols, source)
}

/// The floats [`downsample_with`] holds for a `rows x cols` image: four bands of LANES
/// rows, the ring, 64 samples of every row, and a row of sums.
fn streaming_floats(rows: usize, cols: usize) -> usize {
    (4 * LANES + ring_rows(rows) + 1) * cols + 64 * rows
}

/// The rows of the first row pass kept for the column pass: it reads rows
/// `o - lag ..= o + half - 1`, a span of the window plus one, and the row pass may run a
/// band of LANES rows ahead of it.
fn ring_rows(rows: usize) -> usize {
    (window_size(rows) + 1 + LANES).min(rows)
}

/// The reference's own way: the luma whole, blurred through a second whole image.
fn whole_image(rows: usize, cols: usize, source: &mut impl FnMut(usize, &mut [f32])) -> Box<Block64> {
    let mut luma = vec![0f32; rows * cols];
    for (row, out) in luma.chunks_exact_mut(cols).enumerate() {
        source(row, out);
    }
    super::reference::downsample_to_64(&mut luma, rows, cols)
}

/// The same code compiled with 8-lane vectors. AVX2 adds width, not new rounding: without
/// fused multiply-add (which Rust never forms on its own) every result is bit-identical.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn downsample_avx2(
    rows: usize,
    cols: usize,
    source: &mut impl FnMut(usize, &mut [f32]),
    avx2: Avx2,
) -> Box<Block64> {
    downsample_with(rows, cols, source, avx2)
}

/// The blur with plain code, whatever the CPU.
pub(crate) fn downsample_portable(
    rows: usize,
    cols: usize,
    source: &mut impl FnMut(usize, &mut [f32]),
) -> Box<Block64> {
    downsample_with(rows, cols, source, Portable)
}

#[inline(always)]
fn downsample_with<I: Interleave>(
    rows: usize,
    cols: usize,
    source: &mut impl FnMut(usize, &mut [f32]),
    interleave: I,
) -> Box<Block64> {
    let mut block = Box::new([[0f32; 64]; 64]);
    // The reference skips the blur for an input that is already 64x64.
    if rows == 64 && cols == 64 {
        for (row, cells) in block.iter_mut().enumerate() {
            source(row, cells);
        }
        return block;
    }
    let along_rows = window_size(cols);
    let along_cols = window_size(rows);
    let row_samples = sample_points(rows);
    let col_samples = sample_points(cols);

    let ring_rows = ring_rows(rows);
    // Taken out of the thread-local rather than borrowed in a closure: a closure would not
    // be compiled with the caller's AVX2.
    let mut scratch = SCRATCH.with_borrow_mut(std::mem::take);
    let mut first_rows = FirstRowPass {
        source,
        interleave,
        rows,
        cols,
        window: along_rows,
        band: zeroed(&mut scratch.first_band, LANES * cols),
        lanes: zeroed(&mut scratch.first_lanes, LANES * cols),
        ring: zeroed(&mut scratch.ring, ring_rows * cols),
        ring_rows,
        produced: 0,
    };
    let mut second_rows = SecondRowPass {
        window: along_rows,
        col_samples: &col_samples,
        interleave,
        band: zeroed(&mut scratch.second_band, LANES * cols),
        lanes: zeroed(&mut scratch.second_lanes, LANES * cols),
        band_first: 0,
        band_len: 0,
        narrow: zeroed(&mut scratch.narrow, rows * 64),
    };
    let mut first_columns = FirstColumnPass {
        input: &mut first_rows,
        sums: zeroed(&mut scratch.sums, cols),
        output: &mut second_rows,
    };
    run_box(rows, along_cols, &mut first_columns);
    second_rows.flush();

    let mut last_columns = LastColumnPass {
        narrow: second_rows.narrow,
        sums: [0f32; 64],
        row_samples: &row_samples,
        next_sample: 0,
        block: &mut block,
    };
    run_box(rows, along_cols, &mut last_columns);
    // A tall image's 64 samples a row can be hundreds of megabytes, which every thread
    // that ever hashed one would go on holding: only a photograph's few are kept.
    if scratch.floats() <= MAX_KEPT_FLOATS {
        SCRATCH.with_borrow_mut(|kept| *kept = scratch);
    }
    block
}

/// Rearranges a band of `LANES` rows, stored one after another, into lane-major order
/// (sample `j` of row `l` to `lanes[j * LANES + l]`) for a row pass.
trait Interleave: Copy {
    fn interleave(self, band: &[f32], lanes: &mut [f32]);

    /// Swaps rows and columns of an 8x8 block (how a row pass hands its lanes back as rows).
    fn transpose(self, block: &[[f32; LANES]; LANES]) -> [[f32; LANES]; LANES];
}

/// One sample at a time.
#[derive(Clone, Copy)]
struct Portable;

impl Interleave for Portable {
    #[inline(always)]
    fn interleave(self, band: &[f32], lanes: &mut [f32]) {
        interleave_samples(band, lanes, 0);
    }

    #[inline(always)]
    fn transpose(self, block: &[[f32; LANES]; LANES]) -> [[f32; LANES]; LANES] {
        std::array::from_fn(|i| std::array::from_fn(|j| block[j][i]))
    }
}

/// Moves samples `from..` of every row of `band` into `lanes`, one at a time.
#[inline(always)]
fn interleave_samples(band: &[f32], lanes: &mut [f32], from: usize) {
    let cols = lanes.len() / LANES;
    if from >= cols {
        return;
    }
    for (l, row) in band.chunks_exact(cols).enumerate() {
        for (cell, &value) in lanes[from * LANES + l..]
            .iter_mut()
            .step_by(LANES)
            .zip(&row[from..])
        {
            *cell = value;
        }
    }
}

/// Proof that the CPU has AVX2: eight rows are moved eight samples at a time as an 8x8
/// transpose in registers, instead of 64 scattered stores.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
struct Avx2(());

#[cfg(target_arch = "x86_64")]
impl Avx2 {
    fn detect() -> Option<Avx2> {
        std::is_x86_feature_detected!("avx2").then_some(Avx2(()))
    }
}

#[cfg(target_arch = "x86_64")]
impl Interleave for Avx2 {
    #[inline(always)]
    fn interleave(self, band: &[f32], lanes: &mut [f32]) {
        // SAFETY: an `Avx2` exists only where the CPU has AVX2.
        unsafe { interleave_avx2(band, lanes) }
    }

    #[inline(always)]
    fn transpose(self, block: &[[f32; LANES]; LANES]) -> [[f32; LANES]; LANES] {
        // SAFETY: an `Avx2` exists only where the CPU has AVX2.
        unsafe { transpose_block_avx2(block) }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn interleave_avx2(band: &[f32], lanes: &mut [f32]) {
    use std::arch::x86_64::*;
    let cols = lanes.len() / LANES;
    let whole = cols - cols % LANES;
    for j in (0..whole).step_by(LANES) {
        let r: [__m256; LANES] = std::array::from_fn(|l| {
            let row = &band[l * cols + j..l * cols + j + LANES];
            // SAFETY: `row` holds 8 floats.
            unsafe { _mm256_loadu_ps(row.as_ptr()) }
        });
        let columns = transpose_avx2(r);
        let out = &mut lanes[j * LANES..(j + LANES) * LANES];
        for (cells, column) in out.chunks_exact_mut(LANES).zip(columns) {
            // SAFETY: `cells` holds 8 floats.
            unsafe { _mm256_storeu_ps(cells.as_mut_ptr(), column) }
        }
    }
    interleave_samples(band, lanes, whole);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn transpose_block_avx2(block: &[[f32; LANES]; LANES]) -> [[f32; LANES]; LANES] {
    use std::arch::x86_64::*;
    // SAFETY: each row holds 8 floats.
    let rows: [__m256; LANES] = std::array::from_fn(|l| unsafe { _mm256_loadu_ps(block[l].as_ptr()) });
    let mut out = [[0f32; LANES]; LANES];
    for (cells, column) in out.iter_mut().zip(transpose_avx2(rows)) {
        // SAFETY: `cells` holds 8 floats.
        unsafe { _mm256_storeu_ps(cells.as_mut_ptr(), column) }
    }
    out
}

/// Pairs of rows, then quads, then halves: the classic 8x8 transpose in registers.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn transpose_avx2(r: [std::arch::x86_64::__m256; LANES]) -> [std::arch::x86_64::__m256; LANES] {
    use std::arch::x86_64::*;
    let t0 = _mm256_unpacklo_ps(r[0], r[1]);
    let t1 = _mm256_unpackhi_ps(r[0], r[1]);
    let t2 = _mm256_unpacklo_ps(r[2], r[3]);
    let t3 = _mm256_unpackhi_ps(r[2], r[3]);
    let t4 = _mm256_unpacklo_ps(r[4], r[5]);
    let t5 = _mm256_unpackhi_ps(r[4], r[5]);
    let t6 = _mm256_unpacklo_ps(r[6], r[7]);
    let t7 = _mm256_unpackhi_ps(r[6], r[7]);
    let s0 = _mm256_shuffle_ps::<0x44>(t0, t2);
    let s1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
    let s2 = _mm256_shuffle_ps::<0x44>(t1, t3);
    let s3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
    let s4 = _mm256_shuffle_ps::<0x44>(t4, t6);
    let s5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
    let s6 = _mm256_shuffle_ps::<0x44>(t5, t7);
    let s7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
    [
        _mm256_permute2f128_ps::<0x20>(s0, s4),
        _mm256_permute2f128_ps::<0x20>(s1, s5),
        _mm256_permute2f128_ps::<0x20>(s2, s6),
        _mm256_permute2f128_ps::<0x20>(s3, s7),
        _mm256_permute2f128_ps::<0x31>(s0, s4),
        _mm256_permute2f128_ps::<0x31>(s1, s5),
        _mm256_permute2f128_ps::<0x31>(s2, s6),
        _mm256_permute2f128_ps::<0x31>(s3, s7),
    ]
}

/// Buffers kept per thread from one image to the next, so hashing a stream of images
/// does not map, fault in and unmap fresh memory for each.
#[derive(Default)]
struct Scratch {
    first_band: Vec<f32>,
    first_lanes: Vec<f32>,
    ring: Vec<f32>,
    second_band: Vec<f32>,
    second_lanes: Vec<f32>,
    narrow: Vec<f32>,
    sums: Vec<f32>,
}

impl Scratch {
    /// The floats its buffers hold.
    fn floats(&self) -> usize {
        [
            &self.first_band,
            &self.first_lanes,
            &self.ring,
            &self.second_band,
            &self.second_lanes,
            &self.narrow,
            &self.sums,
        ]
        .iter()
        .map(|buffer| buffer.capacity())
        .sum()
    }
}

/// The most scratch a thread keeps, 16 MiB: a 100 MP photograph's needs under 8.
const MAX_KEPT_FLOATS: usize = 4 << 20;

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

/// `buffer` as `len` zeros, reusing its allocation.
fn zeroed(buffer: &mut Vec<f32>, len: usize) -> &mut [f32] {
    buffer.clear();
    buffer.resize(len, 0.0);
    buffer
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Floats the thread's kept scratch holds.
    fn kept_floats() -> usize {
        SCRATCH.with_borrow(Scratch::floats)
    }

    #[test]
    fn a_sliver_costs_no_more_than_the_reference_and_hashes_the_same() {
        // Bands of 8 whole rows, and 64 samples of every row, are many times the pixels
        // of an image a few pixels high or wide (a 5x20,000,000 PNG of 175 KB took 5 GB).
        for (rows, cols) in [(100_000, 5), (5, 100_000), (8, 50_000)] {
            let luma = super::super::tests::texture(rows * cols);
            let mut source = |row: usize, out: &mut [f32]| out.copy_from_slice(&luma[row * cols..][..cols]);
            let block = downsample_to_64(rows, cols, &mut source);
            let whole = 2 * rows * cols;
            assert!(
                kept_floats() <= whole,
                "{rows}x{cols}: {} floats kept",
                kept_floats()
            );
            let reference = super::super::reference::downsample_to_64(&mut luma.clone(), rows, cols);
            let bits = |block: &Block64| block.iter().flatten().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&block), bits(&reference), "{rows}x{cols}");
        }
        // A photograph's shape still streams, in a fraction of its pixels.
        let (rows, cols) = (1000, 1500);
        downsample_to_64(rows, cols, &mut |_, out: &mut [f32]| out.fill(1.0));
        assert!(
            (1..rows * cols / 10).contains(&kept_floats()),
            "{} floats kept",
            kept_floats()
        );
    }

    #[test]
    fn a_thread_keeps_a_photograph_s_scratch_not_a_tall_image_s() {
        // 64x400,000 streams (in half the reference's two images), in 100 MB of samples:
        // kept, every thread that ever hashed one would hold that.
        downsample_to_64(400_000, 64, &mut |row, out: &mut [f32]| {
            out.fill((row % 7) as f32)
        });
        assert_eq!(kept_floats(), 0);
        // The largest photograph the default limit takes, 10,000 pixels square, is kept.
        downsample_to_64(10_000, 10_000, &mut |row, out: &mut [f32]| {
            out.fill((row % 7) as f32)
        });
        assert!(kept_floats() > 0);
    }
}
