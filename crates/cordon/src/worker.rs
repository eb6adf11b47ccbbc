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
    /// The NATS server, e.g. nats://127.0.0.1:4222.
    #[arg(long, value_name = "URL")]
    nats: String,
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
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let _background = Background::start(&state);
        let consuming = async {
            loop {
                if let Err(error) =
                    cordon_server::stream::consume(state.clone(), &args.nats, &args.stream).await
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
