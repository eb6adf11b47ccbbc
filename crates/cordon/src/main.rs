//! `cordon`: the command line over Cordon's stages.
//!
//! Every command that reports results prints one JSON object per line on stdout (field
//! names are part of the interface), or a human table with `--format text`. Progress goes
//! to stderr, and only when stderr is a terminal.

mod bench;
mod hash;
mod inputs;
mod report;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cordon",
    version,
    about = "Catch known violent-extremist media the moment it is posted."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Hash images into signals (PDQ), one result per input.
    Hash(hash::HashArgs),
    /// Measure Cordon's own speed (for the side-by-side benchmarks in bench/).
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Hash(args) => hash::run(args),
        Command::Bench(command) => bench::run(command),
    };
    match outcome {
        Ok(code) => code,
        // A reader that went away (`cordon hash dir | head`) is not an error.
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("cordon: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error
        .chain()
        .filter_map(|cause| cause.downcast_ref::<std::io::Error>())
        .any(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}
