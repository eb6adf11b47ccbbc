//! `cordon`: the command line over Cordon's stages.
//!
//! Every command that reports results prints one JSON object per line on stdout (field
//! names are part of the interface), or a human table with `--format text`. Progress goes
//! to stderr, and only when stderr is a terminal.

mod audit;
mod bank;
mod bench;
mod eval;
mod hash;
mod inputs;
mod keys;
mod matching;
mod media;
mod provenance;
mod report;
mod serve;
mod worker;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cordon",
    version,
    about = "Catch known violent-extremist media the moment it is posted."
)]
struct Cli {
    /// The data folder holding the embedded store.
    #[arg(
        long,
        global = true,
        env = "CORDON_DATA",
        default_value = "cordon-data",
        value_name = "DIR"
    )]
    data: std::path::PathBuf,
    /// Where the store is: `sqlite://PATH` (by default the SQLite file in the data folder)
    /// or `postgres://USER[:PASSWORD]@HOST:PORT/DATABASE`.
    #[arg(long, global = true, env = "CORDON_STORE", value_name = "URL")]
    store: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Hash images into signals (PDQ), one result per input.
    Hash(hash::HashArgs),
    /// Manage banks of known content.
    #[command(subcommand)]
    Bank(bank::BankCommand),
    /// Match images or hashes against every enabled bank.
    Match(matching::MatchArgs),
    /// Serve the HTTP API (HMA-compatible routes) on the data folder.
    Serve(serve::ServeArgs),
    /// Decide uploads from a NATS JetStream work queue, on the same store as `serve`.
    Worker(worker::WorkerArgs),
    /// Manage API keys.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Read and verify the append-only audit log.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Measure how well each signal matches transformed reposts of a corpus of images.
    Eval(eval::EvalArgs),
    /// Where and when images, or near copies, were seen before: the ledger of sightings.
    Provenance(provenance::ProvenanceArgs),
    /// Measure Cordon's own speed (for the side-by-side benchmarks in bench/).
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

fn main() -> ExitCode {
    keep_freed_memory();
    let cli = Cli::parse();
    // Only commands that use the store make the data folder.
    let storage = || Storage::of(&cli.data, cli.store.as_deref());
    let outcome = match cli.command {
        Command::Hash(args) => hash::run(args),
        Command::Bank(command) => storage().and_then(|s| bank::run(command, &s)),
        Command::Match(args) => storage().and_then(|s| matching::run(args, &s)),
        Command::Serve(args) => storage().and_then(|s| serve::run(args, &s)),
        Command::Worker(args) => storage().and_then(|s| worker::run(args, &s)),
        Command::Keys(command) => storage().and_then(|s| keys::run(command, &s)),
        Command::Audit(command) => storage().and_then(|s| audit::run(command, &s)),
        Command::Eval(args) => eval::run(args),
        Command::Provenance(args) => storage().and_then(|s| provenance::run(args, &s)),
        Command::Bench(command) => storage().and_then(|s| bench::run(command, &s)),
    };
    match outcome {
        Ok(code) => code,
        // A reader that went away (`cordon hash dir | head`) is not an error.
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("cordon: {error:#}");
            ExitCode::from(1)
        }
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error
        .chain()
        .filter_map(|cause| cause.downcast_ref::<std::io::Error>())
        .any(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}

/// Media work allocates and frees buffers of megabytes for every image (decoder working
/// memory, pixels). By default glibc gives those back to the kernel at once and faults
/// fresh zeroed pages in for the next image; keeping freed memory (up to 64 MiB per
/// allocator arena) for reuse instead saves a fifth of decoding time on a stream of photos.
/// What is kept is bounded by capping the arenas at one per core: glibc would otherwise
/// make up to eight per core as threads come and go, each keeping its own freed memory, and
/// a server's memory would step up with every new worker thread (seen in the soak).
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        const KEEP: libc::c_int = 64 << 20;
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get()).max(2);
        // SAFETY: mallopt only tunes the allocator; called first thing, before any thread
        // is started. A failure leaves the defaults, which are merely slower.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, KEEP);
            libc::mallopt(libc::M_TRIM_THRESHOLD, KEEP);
            libc::mallopt(libc::M_ARENA_MAX, libc::c_int::try_from(cores).unwrap_or(8));
        }
    }
}

/// Where Cordon keeps its state: the data folder, and the store (in it, or elsewhere).
pub struct Storage {
    pub data: std::path::PathBuf,
    pub store: cordon_store::StoreLocation,
}

impl Storage {
    fn of(data: &std::path::Path, store: Option<&str>) -> anyhow::Result<Storage> {
        use anyhow::Context;
        let store = match store {
            Some(url) => cordon_store::StoreLocation::parse(url).context("--store")?,
            None => {
                std::fs::create_dir_all(data)
                    .with_context(|| format!("creating the data folder {}", data.display()))?;
                cordon_store::StoreLocation::in_data_folder(data)
            }
        };
        Ok(Storage {
            data: data.to_path_buf(),
            store,
        })
    }
}

/// Opens the store; changes made through it are audited as `cli:<user>`.
fn open_store(storage: &Storage) -> anyhow::Result<cordon_store::Store> {
    use anyhow::Context;
    let mut store = cordon_store::Store::open_at(&storage.store)
        .with_context(|| format!("opening the store {}", storage.store.display()))?;
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".to_string());
    store.set_actor(format!("cli:{user}"));
    Ok(store)
}
