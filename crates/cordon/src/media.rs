//! What every command that reads media shares: decoding options and an in-order
//! parallel runner over inputs.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};
use cordon_signals::{DecodeLimits, DecodedImage, PdqFamily, PdqHasher};
use rayon::prelude::*;

use crate::inputs::Input;
use crate::report;

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
        self.read_and_decode(input).map(|(_, image)| image)
    }

    /// Like [`MediaArgs::decode`], keeping the file's bytes too (for its digest and
    /// evidence).
    pub fn read_and_decode(&self, input: &Input) -> Result<(Vec<u8>, DecodedImage), String> {
        let bytes = input.read(self.max_bytes).map_err(|e| e.to_string())?;
        let image = cordon_signals::decode(&bytes, &self.limits()).map_err(|e| e.to_string())?;
        Ok((bytes, image))
    }
}

/// Worker threads for `--threads`, defaulting to one per core.
pub fn thread_count(requested: Option<u16>) -> usize {
    requested
        .map(usize::from)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Runs `work` on every input over `threads` threads and hands each result to `emit` in
/// input order, with a progress bar. Returns the exit code: 1 if any input failed.
pub fn run_in_order<T: Send>(
    inputs: &[Result<Input, (String, String)>],
    threads: usize,
    what: &str,
    work: impl Fn(&Input) -> Result<T, String> + Sync,
    mut emit: impl FnMut(String, Result<T, String>) -> std::io::Result<()>,
) -> anyhow::Result<ExitCode> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .context("starting worker threads")?;
    let bar = report::progress(inputs.len(), what);
    let mut failures = 0usize;
    // Chunks keep the output in input order while every thread stays busy.
    for chunk in inputs.chunks(threads * 8) {
        let results: Vec<(String, Result<T, String>)> = pool.install(|| {
            chunk
                .par_iter()
                .map(|input| match input {
                    Ok(input) => (input.display_name(), work(input)),
                    Err((name, error)) => (name.clone(), Err(error.clone())),
                })
                .collect()
        });
        for (name, result) in results {
            failures += usize::from(result.is_err());
            bar.suspend(|| emit(name, result)).context("writing results")?;
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
