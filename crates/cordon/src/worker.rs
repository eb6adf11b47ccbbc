//! `cordon worker`: decides uploads from a NATS JetStream work queue, beside (or instead of)
//! `cordon serve`, on the same store.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use cordon_server::Background;
use cordon_signals::DecodeLimits;

#[derive(Args)]
pub struct WorkerArgs {
    /// The NATS server, e.g. nats://127.0.0.1:4222 (tls://… for TLS with the system's
    /// authorities).
    #[arg(long, value_name = "URL")]
    nats: String,
    /// Authorities (PEM) to check the NATS server's certificate against; TLS is then
    /// required.
    #[arg(long, value_name = "FILE")]
    nats_ca: Option<PathBuf>,
    /// A client certificate (PEM) to present to the NATS server, with --nats-key.
    #[arg(long, value_name = "FILE", requires = "nats_key")]
    nats_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, value_name = "FILE", requires = "nats_cert")]
    nats_key: Option<PathBuf>,
    /// The JetStream stream to consume (made as a work queue when absent); uploads are
    /// published on `<NAME>.submissions`.
    #[arg(long, value_name = "NAME")]
    stream: String,
    /// Rules and webhooks (see cordon.example.toml); without it nothing is decided.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Refuse images with more pixels than this.
    #[arg(long, default_value_t = DecodeLimits::DEFAULT_MAX_PIXELS, value_name = "PIXELS")]
    max_pixels: u64,
    /// Refuse uploads larger than this many bytes.
    #[arg(long, default_value_t = DecodeLimits::DEFAULT_MAX_BYTES, value_name = "BYTES")]
    max_bytes: u64,
}

/// How long to wait before connecting again after the NATS connection failed.
const RECONNECT: Duration = Duration::from_secs(1);

pub fn run(args: WorkerArgs, storage: &crate::Storage) -> anyhow::Result<ExitCode> {
    if args.stream.is_empty()
        || !args
            .stream
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        anyhow::bail!("--stream {:?}: use letters, digits, '-' and '_'", args.stream);
    }
    let state = Arc::new(crate::serve::open_state(
        storage,
        args.config.as_deref(),
        args.max_bytes,
        args.max_pixels,
    )?);
    for file in [&args.nats_ca, &args.nats_cert, &args.nats_key]
        .into_iter()
        .flatten()
    {
        std::fs::metadata(file).with_context(|| format!("reading {}", file.display()))?;
    }
    let target = cordon_server::stream::NatsTarget {
        url: args.nats.clone(),
        authorities: args.nats_ca.clone(),
        client_certificate: args.nats_cert.clone().zip(args.nats_key.clone()),
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let _background = Background::start(&state);
        let consuming = async {
            loop {
                if let Err(error) = cordon_server::stream::consume(state.clone(), &target, &args.stream).await
                {
                    eprintln!("cordon: {error}; connecting again");
                }
                tokio::time::sleep(RECONNECT).await;
            }
        };
        tokio::select! {
            () = consuming => {}
            () = crate::serve::shutdown_signal() => {}
        }
        eprintln!("cordon: worker stopped");
        Ok(ExitCode::SUCCESS)
    })
}
