//! `cordon hash`: media in, PDQ signals out, one line per input in input order.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use cordon_signals::{Dihedral, DihedralHashes, PdqDigest};
use serde::Serialize;

use crate::inputs::{self, Input};
use crate::media::{self, MediaArgs};
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
    let inputs = inputs::expand(&args.paths);
    let hasher = args.media.hasher();
    let work = |input: &Input| {
        let image = args.media.decode(input)?;
        Ok(if args.dihedral {
            Hashed::Dihedral(Box::new(hasher.hash_dihedral(&image)))
        } else {
            Hashed::Plain(hasher.hash(&image))
        })
    };
    media::run_in_order(
        &inputs,
        media::thread_count(args.threads),
        "images",
        work,
        |path, result| print_result(args.format, path, result),
    )
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
