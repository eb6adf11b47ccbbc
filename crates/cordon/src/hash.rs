//! `cordon hash`: media in, PDQ signals out, one line per input in input order.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};
use cordon_signals::{DecodeLimits, DecodedImage, Dihedral, DihedralHashes, PdqDigest, PdqFamily, PdqHasher};
use rayon::prelude::*;
use serde::Serialize;

use crate::inputs::{self, Input};
use crate::report::{self, Format};

#[derive(Args)]
pub struct HashArgs {
    /// Image files or directories (searched recursively for images); `-` reads standard input.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Also print the hashes of the eight rotations and mirror images.
    #[arg(long)]
    dihedral: bool,
    /// Worker threads [default: one per core].
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
    threads: Option<u16>,
    #[arg(long, value_enum, default_value_t)]
    format: Format,
    #[command(flatten)]
    media: MediaArgs,
}

/// How media is decoded and hashed; shared by every command that reads media.
#[derive(Args, Clone, Copy, Debug)]
pub struct MediaArgs {
    /// Which reference PDQ pipeline to agree with: `core` hashes full-resolution pixels (HMA,
    /// python-threatexchange, PyPI pdqhash); `cli512` first squeezes to 512x512 like the C++
    /// pdq-photo-hasher.
    #[arg(long, value_enum, default_value_t = FamilyArg::Core)]
    pdq_family: FamilyArg,
    /// Refuse images with more pixels than this (read from the header, before decoding).
    #[arg(long, default_value_t = DecodeLimits::DEFAULT_MAX_PIXELS, value_name = "PIXELS")]
    max_pixels: u64,
    /// Refuse inputs larger than this many bytes.
    #[arg(long, default_value_t = DecodeLimits::DEFAULT_MAX_BYTES, value_name = "BYTES")]
    max_bytes: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum FamilyArg {
    Core,
    Cli512,
}

impl MediaArgs {
    pub fn limits(&self) -> DecodeLimits {
        DecodeLimits {
            max_bytes: self.max_bytes,
            max_pixels: self.max_pixels,
        }
    }

    pub fn hasher(&self) -> PdqHasher {
        PdqHasher::new(match self.pdq_family {
            FamilyArg::Core => PdqFamily::FullRes,
            FamilyArg::Cli512 => PdqFamily::Cli512,
        })
    }

    /// Reads and decodes one input; the error is the message printed for it.
    pub fn decode(&self, input: &Input) -> Result<DecodedImage, String> {
        let bytes = input.read(self.max_bytes).map_err(|e| e.to_string())?;
        cordon_signals::decode(&bytes, &self.limits()).map_err(|e| e.to_string())
    }
}

/// One line of `cordon hash` output. Field names are part of the interface.
#[derive(Serialize)]
#[serde(untagged)]
enum HashLine {
    Hashed {
        path: String,
        signal_type: &'static str,
        hash: String,
        quality: u8,
        #[serde(skip_serializing_if = "Option::is_none")]
        dihedral: Option<Box<DihedralJson>>,
    },
    Failed {
        path: String,
        error: String,
    },
}

/// The eight variants, in the reference's order, under Cordon's names.
#[derive(Serialize)]
struct DihedralJson {
    original: String,
    rotate90: String,
    rotate180: String,
    rotate270: String,
    flipx: String,
    flipy: String,
    flip_plus1: String,
    flip_minus1: String,
}

impl From<&DihedralHashes> for DihedralJson {
    fn from(hashes: &DihedralHashes) -> Self {
        let hex = |d: Dihedral| hashes.get(d).to_hex();
        DihedralJson {
            original: hex(Dihedral::Original),
            rotate90: hex(Dihedral::Rotate90),
            rotate180: hex(Dihedral::Rotate180),
            rotate270: hex(Dihedral::Rotate270),
            flipx: hex(Dihedral::FlipX),
            flipy: hex(Dihedral::FlipY),
            flip_plus1: hex(Dihedral::FlipPlus1),
            flip_minus1: hex(Dihedral::FlipMinus1),
        }
    }
}

enum Hashed {
    Plain(PdqDigest),
    Dihedral(Box<DihedralHashes>),
}

pub fn run(args: HashArgs) -> anyhow::Result<ExitCode> {
    let threads = args
        .threads
        .map(usize::from)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .context("starting the hashing threads")?;
    let inputs = inputs::expand(&args.paths);
    let bar = report::progress(inputs.len(), "images");
    let hasher = args.media.hasher();
    let mut failures = 0usize;
    // Chunks keep the output in input order while every thread stays busy.
    for chunk in inputs.chunks(threads * 8) {
        let results: Vec<(String, Result<Hashed, String>)> = pool.install(|| {
            chunk
                .par_iter()
                .map(|input| match input {
                    Ok(input) => {
                        let result = args.media.decode(input).map(|image| {
                            if args.dihedral {
                                Hashed::Dihedral(Box::new(hasher.hash_dihedral(&image)))
                            } else {
                                Hashed::Plain(hasher.hash(&image))
                            }
                        });
                        (input.display_name(), result)
                    }
                    Err((name, error)) => (name.clone(), Err(error.clone())),
                })
                .collect()
        });
        for (path, result) in results {
            failures += usize::from(result.is_err());
            bar.suspend(|| print_result(args.format, path, result))
                .context("writing results")?;
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_result(format: Format, path: String, result: Result<Hashed, String>) -> std::io::Result<()> {
    match (format, result) {
        (Format::Json, Ok(hashed)) => {
            let (digest, dihedral) = match &hashed {
                Hashed::Plain(digest) => (*digest, None),
                Hashed::Dihedral(hashes) => {
                    (hashes.original(), Some(Box::new(DihedralJson::from(&**hashes))))
                }
            };
            report::json_line(&HashLine::Hashed {
                path,
                signal_type: "pdq",
                hash: digest.hash.to_hex(),
                quality: digest.quality,
                dihedral,
            })
        }
        (Format::Json, Err(error)) => report::json_line(&HashLine::Failed { path, error }),
        (Format::Text, Ok(Hashed::Plain(digest))) => {
            report::text_line(&format!("{} {:>3} {path}", digest.hash, digest.quality))
        }
        (Format::Text, Ok(Hashed::Dihedral(hashes))) => {
            for (variant, hash) in hashes.iter() {
                report::text_line(&format!(
                    "{hash} {:>3} {:<11} {path}",
                    hashes.quality,
                    variant.name()
                ))?;
            }
            Ok(())
        }
        (Format::Text, Err(error)) => {
            eprintln!("{path}: {error}");
            Ok(())
        }
    }
}
