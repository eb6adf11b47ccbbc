//! `cordon provenance`: where and when each image, or a near copy, was seen before, from
//! the ledger of sightings in the data folder, with a verdict and its reasons.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use cordon_engine::image_signals::{QueryOptions, QuerySignals};
use cordon_engine::matcher::{Lookup, Matcher};
use cordon_engine::provenance::{self, Asked, Ledger, Provenance};
use serde::Serialize;

use crate::inputs;
use crate::media::{self, MediaArgs};
use crate::report::{self, Format};

#[derive(Args)]
pub struct ProvenanceArgs {
    /// Image files or directories (searched recursively); `-` reads standard input.
    #[arg(value_name = "PATH", required = true)]
    paths: Vec<PathBuf>,
    /// When the image was posted (RFC 3339), to weigh earlier sightings against; now if
    /// not given.
    #[arg(long, value_name = "TIME")]
    posted_at: Option<String>,
    /// List at most this many of the earliest sightings (up to 10,000, as the API); counts,
    /// variants and the verdict weigh them all (`sightings_total` says how many there are).
    #[arg(long, value_name = "N", default_value_t = provenance::SIGHTINGS_LISTED,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new()
              .range(1..=provenance::MAX_SIGHTINGS_LISTED as u64))]
    limit: usize,
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
    threads: Option<u16>,
    #[arg(long, value_enum, default_value_t)]
    format: Format,
    #[command(flatten)]
    media: MediaArgs,
}

/// One line of output. Field names are part of the interface.
#[derive(Serialize)]
#[serde(untagged)]
enum ProvenanceLine {
    Found {
        path: String,
        #[serde(flatten)]
        provenance: Box<Provenance>,
    },
    Failed {
        path: String,
        error: String,
    },
}

pub fn run(args: ProvenanceArgs, storage: &crate::Storage) -> anyhow::Result<ExitCode> {
    if let Some(posted) = &args.posted_at {
        time::OffsetDateTime::parse(posted, &time::format_description::well_known::Rfc3339)
            .with_context(|| format!("--posted-at {posted:?} is not RFC 3339"))?;
    }
    let store = crate::open_store(storage)?;
    let ledger = Ledger::load(&store).context("loading the ledger of sightings")?;
    // The banks' local features tie crops and captions to their originals' sightings.
    let matcher = Matcher::load(&store).context("loading the banks")?;
    let hasher = args.media.hasher();
    let everything = Lookup {
        include_disabled: true,
        ..Lookup::default()
    };
    let inputs = inputs::expand(&args.paths);
    let work = |input: &inputs::Input| {
        let (bytes, image) = args.media.read_and_decode(input)?;
        let query = QuerySignals::of(&image, &hasher, QueryOptions::default());
        let by_features = matcher.lookup(&query, &everything);
        Ok((
            ledger.find(&query),
            by_features,
            Asked::of_file(&bytes, args.posted_at.clone()),
        ))
    };
    media::run_in_order(
        &inputs,
        media::thread_count(args.threads),
        "images",
        work,
        |path, result| {
            let line = match result {
                Ok((mut hits, by_features, asked)) => {
                    let found = ledger
                        .find_through_banks(&store, &by_features, &mut hits)
                        .and_then(|()| provenance::report(&store, &hits, &asked, args.limit));
                    match found {
                        Ok(found) => ProvenanceLine::Found {
                            path,
                            provenance: Box::new(found),
                        },
                        Err(error) => ProvenanceLine::Failed {
                            path,
                            error: error.to_string(),
                        },
                    }
                }
                Err(error) => ProvenanceLine::Failed { path, error },
            };
            report::line(args.format, &line, || match &line {
                ProvenanceLine::Found { path, provenance } => format!(
                    "{path}  {}: {}",
                    provenance.verdict.label,
                    provenance.verdict.reasons.join("; ")
                ),
                ProvenanceLine::Failed { path, error } => format!("{path}  error: {error}"),
            })
        },
    )
}
