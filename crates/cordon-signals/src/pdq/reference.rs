//! A line-by-line port of the reference downsampling (`box1DFloat`, `jaroszFilterFloat`,
//! `decimateFloat`): the oracle the fast path in `downsample.rs` must equal bit for bit in
//! the tests, and what hashes the slivers the fast path would need more memory for.

use super::dct::Block64;
use super::downsample::window_size;

fn box_1d(input: &[f32], output: &mut [f32], start: usize, length: usize, stride: usize, window: usize) {
    let half = (window + 2) / 2;
    let phase1 = half - 1;
    let phase2 = window - half + 1;
    let phase3 = length - window;
    let phase4 = half - 1;
    let (mut li, mut ri, mut oi) = (start, start, start);
    let mut sum = 0f32;
    let mut current = 0usize;
    for _ in 0..phase1 {
        sum += input[ri];
        current += 1;
        ri += stride;
    }
    for _ in 0..phase2 {
        sum += input[ri];
        current += 1;
        output[oi] = sum / current as f32;
        ri += stride;
        oi += stride;
    }
    for _ in 0..phase3 {
        sum += input[ri];
        sum -= input[li];
        output[oi] = sum / current as f32;
        li += stride;
        ri += stride;
        oi += stride;
    }
    for _ in 0..phase4 {
        sum -= input[li];
        current -= 1;
        output[oi] = sum / current as f32;
        li += stride;
        oi += stride;
    }
}

pub(crate) fn downsample_to_64(luma: &mut [f32], rows: usize, cols: usize) -> Box<Block64> {
    let mut block = Box::new([[0f32; 64]; 64]);
    if !(rows == 64 && cols == 64) {
        let mut other = vec![0f32; rows * cols];
        for _ in 0..2 {
            for i in 0..rows {
                box_1d(luma, &mut other, i * cols, cols, 1, window_size(cols));
            }
            for j in 0..cols {
                box_1d(&other, luma, j, rows, cols, window_size(rows));
            }
        }
    }
    for (oi, out_row) in block.iter_mut().enumerate() {
        let ii = (((oi as f64 + 0.5) * rows as f64) / 64.0) as usize;
        for (oj, cell) in out_row.iter_mut().enumerate() {
            let ij = (((oj as f64 + 0.5) * cols as f64) / 64.0) as usize;
            *cell = luma[ii * cols + ij];
        }
    }
    block
}
