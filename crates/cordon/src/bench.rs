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
    /// Time provenance queries against the ledger of sightings in the data folder: loading
    /// it, then per query image or hash the ledger search and the report, median of
    /// repetitions.
    Provenance(ProvenanceBenchArgs),
}

#[derive(Args)]
pub struct ProvenanceBenchArgs {
    /// Query images (directories are searched): looked up by every PDQ variant, as an
    /// upload to `/v1/provenance` is.
    #[arg(value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// A file of query hashes, one 64-hex PDQ per line (`-` for standard input): looked up
    /// as `{"pdq": …}` is.
    #[arg(long, value_name = "FILE")]
    hashes: Option<PathBuf>,
    /// Repetitions per query; the median is reported.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    reps: u32,
    #[command(flatten)]
    media: MediaArgs,
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

pub fn run(command: BenchCommand, storage: &crate::Storage) -> anyhow::Result<ExitCode> {
    match command {
        BenchCommand::Pdq(args) => bench_pdq(args),
        BenchCommand::Provenance(args) => bench_provenance(args, storage),
    }
}

/// The first line of `bench provenance`: the ledger as loaded.
#[derive(Serialize)]
struct LedgerLoad {
    sightings: usize,
    load_ms: f64,
}

/// One query of `bench provenance`. `find_ms` is the search of the ledger index,
/// `report_ms` reading the sightings found and building the answer.
#[derive(Serialize)]
struct ProvenanceTiming {
    query: String,
    variants: usize,
    sightings: usize,
    find_ms: f64,
    report_ms: f64,
    total_ms: f64,
}

fn bench_provenance(args: ProvenanceBenchArgs, storage: &crate::Storage) -> anyhow::Result<ExitCode> {
    use cordon_engine::image_signals::{QueryOptions, QuerySignals};
    use cordon_engine::provenance::{self, Asked, Ledger};

    let store = crate::open_store(storage)?;
    let started = Instant::now();
    let ledger = Ledger::load(&store).context("loading the ledger of sightings")?;
    report::json_line(&LedgerLoad {
        sightings: ledger.len(),
        load_ms: started.elapsed().as_secs_f64() * 1e3,
    })?;
    let mut queries: Vec<(String, QuerySignals)> = Vec::new();
    if let Some(file) = &args.hashes {
        for line in inputs::non_empty_lines(file)? {
            let line = line?;
            let hash = line
                .parse()
                .map_err(|e| anyhow::anyhow!("{}: {line:?}: {e}", file.display()))?;
            queries.push((line, QuerySignals::of_hash(hash)));
        }
    }
    let hasher = args.media.hasher();
    let options = QueryOptions {
        features: false,
        ..QueryOptions::default()
    };
    for input in inputs::expand(&args.paths) {
        let input = input.map_err(|(name, error)| anyhow::anyhow!("{name}: {error}"))?;
        let (_, image) = args
            .media
            .read_and_decode(&input)
            .map_err(|error| anyhow::anyhow!("{}: {error}", input.display_name()))?;
        queries.push((input.display_name(), QuerySignals::of(&image, &hasher, options)));
    }
    for (name, query) in queries {
        let (mut find_ms, mut report_ms, mut total_ms) = (Vec::new(), Vec::new(), Vec::new());
        let mut found = 0;
        for _ in 0..args.reps {
            let started = Instant::now();
            let hits = ledger.find(&query);
            let searched = started.elapsed();
            let answer = provenance::report(&store, &hits, &Asked::default(), usize::MAX)?;
            let total = started.elapsed();
            find_ms.push(searched.as_secs_f64() * 1e3);
            report_ms.push((total - searched).as_secs_f64() * 1e3);
            total_ms.push(total.as_secs_f64() * 1e3);
            found = answer.sightings_total;
        }
        report::json_line(&ProvenanceTiming {
            query: name,
            variants: query.pdq.len(),
            sightings: found,
            find_ms: median(&mut find_ms),
            report_ms: median(&mut report_ms),
            total_ms: median(&mut total_ms),
        })?;
    }
    Ok(ExitCode::SUCCESS)
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
