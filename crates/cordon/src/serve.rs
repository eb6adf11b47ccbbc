//! `cordon serve`: the HTTP API on the store.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use cordon_engine::policy::Policy;
use cordon_server::AppState;
use cordon_signals::DecodeLimits;

#[derive(Args)]
pub struct ServeArgs {
    /// Address and port to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Refuse images with more pixels than this.
    #[arg(long, default_value_t = DecodeLimits::DEFAULT_MAX_PIXELS, value_name = "PIXELS")]
    max_pixels: u64,
    /// Do not log each request (one JSON line on stderr with its request id).
    #[arg(long)]
    quiet: bool,
    /// Rules and webhooks (see cordon.example.toml); without it nothing is decided.
    #[arg(long, value_name = "FILE")]
    config: Option<std::path::PathBuf>,
    /// Refuse uploads larger than this many bytes.
    #[arg(long, default_value_t = DecodeLimits::DEFAULT_MAX_BYTES, value_name = "BYTES")]
    max_bytes: u64,
}

pub fn run(args: ServeArgs, storage: &crate::Storage) -> anyhow::Result<ExitCode> {
    let mut state = open_state(storage, args.config.as_deref(), args.max_bytes, args.max_pixels)?;
    state.log_requests = !args.quiet;
    // Decoding and hashing are CPU-bound: more blocking threads than a few per core only
    // add memory (each keeps its own allocator arena), not speed.
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(cores * 4)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("listening on {}", args.listen))?;
        eprintln!(
            "cordon: serving {} on http://{} ({} PDQ hashes loaded)",
            storage.store.display(),
            listener.local_addr()?,
            state.matcher().pdq_len()
        );
        cordon_server::serve(listener, Arc::new(state), shutdown_signal())
            .await
            .context("serving")?;
        eprintln!("cordon: stopped");
        Ok(ExitCode::SUCCESS)
    })
}

/// The store, its indexes and the policy of `config`, as `serve` and `worker` run them.
pub fn open_state(
    storage: &crate::Storage,
    config: Option<&std::path::Path>,
    max_bytes: u64,
    max_pixels: u64,
) -> anyhow::Result<AppState> {
    let limits = DecodeLimits {
        max_bytes,
        max_pixels,
    };
    let policy = match config {
        Some(path) => Policy::load(path)?,
        None => Policy::default(),
    };
    let rule_banks: Vec<(String, String)> = policy
        .rules
        .iter()
        .flat_map(|rule| rule.banks.iter().map(|bank| (rule.name.clone(), bank.clone())))
        .collect();
    let state = AppState::open_at(&storage.store, limits, policy)
        .with_context(|| format!("loading {}", storage.store.display()))?;
    warn_of_missing_banks(&state, &rule_banks);
    Ok(state)
}

/// Says on stderr which banks the rules name but the store does not hold: a typo would
/// quietly switch a rule off for them. Only a warning, as a bank may be created later.
fn warn_of_missing_banks(state: &AppState, rule_banks: &[(String, String)]) {
    let existing: std::collections::BTreeSet<String> = match state.store().banks() {
        Ok(banks) => banks.into_iter().map(|b| b.name.as_str().to_string()).collect(),
        Err(error) => {
            eprintln!("cordon: warning: could not list the banks to check the rules: {error}");
            return;
        }
    };
    for (rule, bank) in rule_banks {
        if !existing.contains(bank) {
            eprintln!("cordon: warning: rule {rule:?} names bank {bank:?}, which does not exist (yet)");
        }
    }
}

/// Resolves on SIGTERM or Ctrl-C: the server then finishes the requests in flight.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
}
