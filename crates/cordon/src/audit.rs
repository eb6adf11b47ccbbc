//! `cordon audit`: read and check the append-only audit log.

use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::report::{self, Format};

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain: every entry unchanged, none missing.
    Verify,
    /// Print entries, oldest first.
    List(ListArgs),
}

#[derive(Args)]
pub struct ListArgs {
    /// Only entries after this sequence number.
    #[arg(long, default_value_t = 0)]
    since: i64,
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

pub fn run(command: AuditCommand, storage: &crate::Storage) -> anyhow::Result<ExitCode> {
    let store = crate::open_store(storage)?;
    match command {
        AuditCommand::Verify => {
            let check = store.verify_audit()?;
            report::json_line(&check)?;
            Ok(if check.problem.is_none() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        AuditCommand::List(args) => {
            store.for_each_audit_entry(args.since, |entry| -> anyhow::Result<()> {
                report::line(args.format, &entry, || {
                    format!(
                        "{:>6} {} {:<20} {:<24} {}",
                        entry.seq, entry.at, entry.actor, entry.event, entry.data
                    )
                })?;
                Ok(())
            })?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
