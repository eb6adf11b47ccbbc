//! `cordon bench`: Cordon's side of the side-by-side benchmarks in `bench/`. It reports
//! timings; it never judges them (that is the benchmark's job, against the peers).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::{Args, Subcommand};
use serde::Serialize;

use crate::inputs::{self, Input};
use crate::media::MediaArgs;
use crate::report;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Time decoding and PDQ hashing of each file on one thread, median of repetitions.
    Pdq(PdqBenchArgs),
}

#[derive(Args)]
pub struct PdqBenchArgs {
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Repetitions per file; the median is reported.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    reps: u32,
    #[command(flatten)]
    media: MediaArgs,
}

/// Field names match the peers' runners in `bench/pdq/`.
#[derive(Serialize)]
struct PdqTiming {
    path: String,
    width: u32,
    height: u32,
    decode_ms: f64,
    hash_ms: f64,
    hash: String,
    quality: u8,
}

pub fn run(command: BenchCommand) -> anyhow::Result<ExitCode> {
    match command {
        BenchCommand::Pdq(args) => bench_pdq(args),
    }
}

fn bench_pdq(args: PdqBenchArgs) -> anyhow::Result<ExitCode> {
    let hasher = args.media.hasher();
    let limits = args.media.limits();
    let mut failures = 0;
    for input in inputs::expand(&args.paths) {
        let timed = input
            .map_err(|(name, error)| format!("{name}: {error}"))
            .and_then(|input| {
                let name = input.display_name();
                time_one(&input, &args, &hasher, &limits).map_err(|error| format!("{name}: {error}"))
            });
        match timed {
            Ok(timing) => report::json_line(&timing).context("writing results")?,
            Err(error) => {
                eprintln!("cordon bench: {error}");
                failures += 1;
            }
        }
    }
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn time_one(
    input: &Input,
    args: &PdqBenchArgs,
    hasher: &cordon_signals::PdqHasher,
    limits: &cordon_signals::DecodeLimits,
) -> Result<PdqTiming, String> {
    let bytes = input.read(limits.max_bytes).map_err(|e| e.to_string())?;
    let mut decode_ms = Vec::new();
    let mut hash_ms = Vec::new();
    let mut last = None;
    for _ in 0..args.reps {
        let started = Instant::now();
        let image = cordon_signals::decode(&bytes, limits).map_err(|e| e.to_string())?;
        decode_ms.push(started.elapsed().as_secs_f64() * 1e3);
        let started = Instant::now();
        let digest = hasher.hash(&image);
        hash_ms.push(started.elapsed().as_secs_f64() * 1e3);
        last = Some((image.width(), image.height(), digest));
    }
    let (width, height, digest) = last.ok_or("no repetitions ran")?;
    Ok(PdqTiming {
        path: input.display_name(),
        width,
        height,
        decode_ms: median(&mut decode_ms),
        hash_ms: median(&mut hash_ms),
        hash: digest.hash.to_hex(),
        quality: digest.quality,
    })
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}
