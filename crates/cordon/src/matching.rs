//! `cordon match`: media or hashes against every enabled bank.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Args;
use cordon_engine::image_signals::{QueryOptions, QuerySignals};
use cordon_engine::matcher::{Lookup, Match, Matcher};
use cordon_signals::{PdqHash, pdq::QUALITY_THRESHOLD};
use rayon::prelude::*;
use serde::Serialize;

use crate::inputs::{self, Input};
use crate::media::{self, MediaArgs};
use crate::report::{self, Format};

#[derive(Args)]
pub struct MatchArgs {
    /// Image files or directories (searched recursively); `-` reads standard input.
    #[arg(value_name = "PATH", conflicts_with_all = ["hash", "hashes"])]
    paths: Vec<PathBuf>,
    /// Match PDQ hashes given as 64 hex characters (repeatable).
    #[arg(long, value_name = "HEX", conflicts_with = "hashes")]
    hash: Vec<String>,
    /// Match PDQ hashes read one per line from FILE (`-` for standard input).
    #[arg(long, value_name = "FILE")]
    hashes: Option<PathBuf>,
    /// Also match the eight rotations and mirror images of each image by PDQ (local
    /// features find rotations and mirror images anyway).
    #[arg(long)]
    dihedral: bool,
    /// Match by PDQ only, not by local features: about three times faster, but crops,
    /// captions, screenshots and tilts go unmatched.
    #[arg(long)]
    no_features: bool,
    /// Images whose PDQ quality is below this are reported as low quality and matched by
    /// local features only.
    #[arg(long, default_value_t = QUALITY_THRESHOLD, value_parser = clap::value_parser!(u8).range(0..=100))]
    min_quality: u8,
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
    threads: Option<u16>,
    /// Print a JSON line of timings and index size to stderr at the end.
    #[arg(long)]
    stats: bool,
    #[arg(long, value_enum, default_value_t)]
    format: Format,
    #[command(flatten)]
    media: MediaArgs,
}

/// One line of `cordon match` output. Field names are part of the interface.
#[derive(Serialize)]
#[serde(untagged)]
enum MatchLine {
    Media {
        path: String,
        quality: u8,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        low_quality: bool,
        matches: Vec<Match>,
    },
    Hash {
        hash: String,
        matches: Vec<Match>,
    },
    FailedMedia {
        path: String,
        error: String,
    },
    FailedHash {
        hash: String,
        error: String,
    },
}

impl MatchLine {
    /// `input  quality  matches` for people.
    fn text(&self) -> String {
        let matches = |matches: &[Match]| -> String {
            if matches.is_empty() {
                return "no match".to_string();
            }
            let each: Vec<String> = matches
                .iter()
                .map(|m| {
                    let how = format!("{} d={} {}", m.signal_type, m.distance, m.transform);
                    format!("{}#{} {how}", m.bank, m.content_id)
                })
                .collect();
            each.join(", ")
        };
        match self {
            MatchLine::Media {
                path,
                quality,
                low_quality: true,
                matches: m,
            } if m.is_empty() => {
                format!("{path}  q={quality}  low quality, not matched by PDQ; no features match")
            }
            MatchLine::Media {
                path,
                quality,
                matches: m,
                ..
            } => format!("{path}  q={quality}  {}", matches(m)),
            MatchLine::Hash { hash, matches: m } => format!("{hash}  {}", matches(m)),
            MatchLine::FailedMedia { path, error } => format!("{path}  error: {error}"),
            MatchLine::FailedHash { hash, error } => format!("{hash}  error: {error}"),
        }
    }
}

pub fn run(args: MatchArgs, storage: &crate::Storage) -> anyhow::Result<ExitCode> {
    if args.paths.is_empty() && args.hash.is_empty() && args.hashes.is_none() {
        bail!("nothing to match: give image paths, --hash HEX or --hashes FILE");
    }
    if args.dihedral && args.paths.is_empty() {
        bail!("--dihedral needs images: the variants are derived from the image's DCT, not from a hash");
    }
    let started = Instant::now();
    let store = crate::open_store(storage)?;
    let matcher = Matcher::load(&store).context("loading the banks")?;
    drop(store);
    let loaded = started.elapsed();
    let threads = media::thread_count(args.threads);
    let code = if args.paths.is_empty() {
        match_hashes(&args, &matcher, threads)
    } else {
        match_media(&args, &matcher, threads)
    }?;
    if args.stats {
        let stats = serde_json::json!({
            "pdq_hashes": matcher.pdq_len(),
            "feature_sets": matcher.features_len(),
            "index_bytes": matcher.pdq_memory_bytes(),
            "load_ms": loaded.as_secs_f64() * 1e3,
            "match_ms": (started.elapsed() - loaded).as_secs_f64() * 1e3,
        });
        eprintln!("{stats}");
    }
    Ok(code)
}

fn match_media(args: &MatchArgs, matcher: &Matcher, threads: usize) -> anyhow::Result<ExitCode> {
    let inputs = inputs::expand(&args.paths);
    let hasher = args.media.hasher();
    let options = QueryOptions {
        dihedral: args.dihedral,
        features: !args.no_features,
        min_quality: args.min_quality,
    };
    let work = |input: &Input| {
        let image = args.media.decode(input)?;
        let query = QuerySignals::of(&image, &hasher, options);
        let low_quality = query.quality < args.min_quality;
        Ok((
            query.quality,
            low_quality,
            matcher.lookup(&query, &Lookup::default()),
        ))
    };
    media::run_in_order(&inputs, threads, "images", work, |path, result| {
        let line = match result {
            Ok((quality, low_quality, matches)) => MatchLine::Media {
                path,
                quality,
                low_quality,
                matches,
            },
            Err(error) => MatchLine::FailedMedia { path, error },
        };
        report::line(args.format, &line, || line.text())
    })
}

fn match_hashes(args: &MatchArgs, matcher: &Matcher, threads: usize) -> anyhow::Result<ExitCode> {
    let from_file: Box<dyn Iterator<Item = anyhow::Result<String>>> = match &args.hashes {
        Some(file) => Box::new(inputs::non_empty_lines(file)?),
        None => Box::new(std::iter::empty()),
    };
    let mut texts = args.hash.iter().cloned().map(Ok).chain(from_file);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .context("starting worker threads")?;
    let mut failures = 0;
    loop {
        // Chunks keep a long list streaming: hashes are matched in parallel, results
        // printed in input order, and memory holds one chunk.
        let mut chunk = Vec::with_capacity(4096);
        let mut unreadable = None;
        for text in texts.by_ref().take(4096) {
            match text {
                Ok(text) => chunk.push(text),
                Err(error) => {
                    unreadable = Some(error);
                    break;
                }
            }
        }
        if chunk.is_empty() && unreadable.is_none() {
            break;
        }
        let lines: Vec<MatchLine> = pool.install(|| {
            chunk
                .par_iter()
                .map(|text| match text.parse::<PdqHash>() {
                    Ok(hash) => MatchLine::Hash {
                        hash: text.clone(),
                        matches: matcher.match_pdq(&hash),
                    },
                    Err(error) => MatchLine::FailedHash {
                        hash: text.clone(),
                        error: error.to_string(),
                    },
                })
                .collect()
        });
        failures += lines
            .iter()
            .filter(|l| matches!(l, MatchLine::FailedHash { .. }))
            .count();
        match args.format {
            Format::Json => report::json_lines(&lines)?,
            Format::Text => {
                for line in &lines {
                    report::text_line(&line.text())?;
                }
            }
        }
        // The lines read before it are answered; the list stops at what cannot be read.
        if let Some(error) = unreadable {
            return Err(error);
        }
    }
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
