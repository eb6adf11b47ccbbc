//! Benchmark peer: the crates.io crate `pdqhash` 0.1.1 as a Rust user would call it.
//!
//! usage: pdq-rust-peer [--reps N] FILES...
//!
//! Per file: read the bytes (not timed), then REPS times: `image::load_from_memory` (image
//! 0.23, re-exported by the crate; timed as decode) and `pdqhash::generate_pdq_full_size`
//! on the decoded image (timed as hash). Prints one JSON line per file:
//! {"path","width","height","decode_ms","hash_ms","hash","quality","quality_raw"}
//! with the median times over the reps. `quality` is the crate's float metric times 100,
//! rounded: it is NOT the reference's integer quality (the crate skips the per-pair
//! truncation), so it only roughly tracks it. A file that fails to decode prints
//! {"path","error"} and the run goes on; the exit code is 1 if any file failed.

use std::io::Write;
use std::time::Instant;

use pdqhash::image;
use pdqhash::image::GenericImageView;

fn usage() -> ! {
    eprintln!("usage: pdq-rust-peer [--reps N] FILES...");
    std::process::exit(2);
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.partial_cmp(b).expect("timings are finite"));
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// Minimal JSON string literal (paths may hold quotes, backslashes or control bytes).
fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

fn main() {
    // image 0.23's jpeg-decoder 0.1.22 colour-converts rows through rayon (and runs its IDCT
    // on per-component worker threads). Keep rayon's pool at one thread unless the caller
    // chose otherwise; run.sh additionally pins the whole process to one core.
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        std::env::set_var("RAYON_NUM_THREADS", "1");
    }

    let mut args = std::env::args().skip(1);
    let mut reps: usize = 1;
    let mut files: Vec<String> = Vec::new();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--reps" => {
                reps = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|&n| n >= 1)
                    .unwrap_or_else(|| usage());
            }
            "-h" | "--help" => usage(),
            _ => files.push(arg),
        }
    }
    if files.is_empty() {
        usage();
    }

    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut failed = 0usize;
    for path in &files {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                failed += 1;
                let msg = format!("read: {e}");
                writeln!(
                    out,
                    "{{\"path\":{},\"error\":{}}}",
                    json_str(path),
                    json_str(&msg)
                )
                .unwrap();
                continue;
            }
        };
        let mut decode_times = Vec::with_capacity(reps);
        let mut hash_times = Vec::with_capacity(reps);
        let mut result: Option<(u32, u32, [u8; 32], f32)> = None;
        let mut error: Option<String> = None;
        for _ in 0..reps {
            let t = Instant::now();
            let decoded = image::load_from_memory(&bytes);
            let decode_ms = ms(t);
            let img = match decoded {
                Ok(img) => img,
                Err(e) => {
                    error = Some(format!("decode: {e}"));
                    break;
                }
            };
            let t = Instant::now();
            let (hash, quality) = pdqhash::generate_pdq_full_size(&img);
            let hash_ms = ms(t);
            decode_times.push(decode_ms);
            hash_times.push(hash_ms);
            let (w, h) = img.dimensions();
            result = Some((w, h, hash, quality));
        }
        match (error, result) {
            (None, Some((w, h, hash, quality))) => {
                writeln!(
                    out,
                    "{{\"path\":{},\"width\":{},\"height\":{},\"decode_ms\":{:.4},\"hash_ms\":{:.4},\
                     \"hash\":\"{}\",\"quality\":{},\"quality_raw\":{}}}",
                    json_str(path),
                    w,
                    h,
                    median(&mut decode_times),
                    median(&mut hash_times),
                    to_hex(&hash),
                    (quality * 100.0).round() as i64,
                    quality
                )
                .unwrap();
            }
            (e, _) => {
                failed += 1;
                let msg = e.unwrap_or_else(|| "no result".to_string());
                writeln!(
                    out,
                    "{{\"path\":{},\"error\":{}}}",
                    json_str(path),
                    json_str(&msg)
                )
                .unwrap();
            }
        }
        out.flush().unwrap();
    }
    if failed > 0 {
        eprintln!("pdq-rust-peer: {failed} of {} files failed", files.len());
        std::process::exit(1);
    }
}
