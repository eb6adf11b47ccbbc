//! `cordon keys`: API keys for the HTTP API.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use cordon_engine::access::{Role, issue_key};

use crate::report::{self, Format};

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Create a key; it is printed once and only a hash of it is kept.
    Create(CreateArgs),
    /// List keys (never their secrets).
    List(ListArgs),
    /// Revoke a key: it stops working at once.
    Revoke(RevokeArgs),
}

#[derive(Args)]
pub struct CreateArgs {
    /// admin, curator (banks), submitter (hash, look up, submit) or reviewer.
    #[arg(long, value_parser = |text: &str| text.parse::<Role>())]
    role: Role,
    /// A name to tell the key by, e.g. the service that uses it.
    #[arg(long)]
    name: String,
}

#[derive(Args)]
pub struct ListArgs {
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

#[derive(Args)]
pub struct RevokeArgs {
    name: String,
}

pub fn run(command: KeysCommand, storage: &crate::Storage) -> anyhow::Result<ExitCode> {
    let mut store = crate::open_store(storage)?;
    match command {
        KeysCommand::Create(args) => {
            let issued = issue_key(&mut store, &args.name, args.role)?;
            report::json_line(&serde_json::json!({
                "key": issued.key, "name": issued.record.name, "role": issued.record.role
            }))?;
        }
        KeysCommand::List(args) => {
            for key in store.keys()? {
                report::line(args.format, &key, || {
                    let state = key
                        .revoked_at
                        .as_deref()
                        .map_or("active".to_string(), |at| format!("revoked {at}"));
                    format!("{:<24} {:<10} {} {state}", key.name, key.role, key.created_at)
                })?;
            }
        }
        KeysCommand::Revoke(args) => {
            let key = store.revoke_key(&args.name)?;
            report::json_line(&key)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
