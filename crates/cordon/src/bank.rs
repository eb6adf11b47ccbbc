//! `cordon bank`: banks of known content in the embedded store.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use cordon_engine::hash_list::{
    EntryError, HashListFormat, HashListWriter, check_content_metadata, check_labels, read_hash_list,
    sniff_input,
};
use cordon_engine::image_signals::BankSignals;
use cordon_engine::matcher::DEFAULT_PDQ_THRESHOLD;
use cordon_engine::provenance::media_facts;
use cordon_signals::SignalType;
use cordon_signals::features::FeatureSet;
use cordon_signals::pdq::QUALITY_THRESHOLD;
use cordon_store::{Bank, BankName, NewBank, NewContent, Signal, Store, StoreError};
use serde::Serialize;

use crate::inputs::{self, Input};
use crate::media::{self, MediaArgs};
use crate::report::{self, Format};

#[derive(Subcommand)]
pub enum BankCommand {
    /// Create an empty bank.
    Create(CreateArgs),
    /// List every bank.
    List(FormatArg),
    /// Show one bank.
    Show(NameArg),
    /// Delete a bank and all its content.
    Delete(NameArg),
    /// Hash media files into new content of a bank, one per file.
    Add(AddArgs),
    /// Import a hash list (tx, CSV or JSON); all of it, or nothing if any line is bad.
    Import(ImportArgs),
    /// Write a bank as a hash list to standard output.
    Export(ExportArgs),
}

#[derive(Args)]
pub struct FormatArg {
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

#[derive(Args)]
pub struct NameArg {
    name: String,
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

#[derive(Args)]
pub struct CreateArgs {
    /// Upper snake case, e.g. ISIL_EXECUTIONS.
    name: String,
    #[arg(long, default_value = "")]
    description: String,
    /// A label for the bank (repeatable), e.g. --label tvec --label graphic-violence.
    #[arg(long = "label", value_name = "LABEL")]
    labels: Vec<String>,
    /// Largest PDQ distance that counts as a match.
    #[arg(long, default_value_t = DEFAULT_PDQ_THRESHOLD, value_parser = clap::value_parser!(u32).range(0..=256))]
    pdq_threshold: u32,
    /// Create the bank disabled (its content does not match until enabled).
    #[arg(long)]
    disabled: bool,
    /// A negative bank: known harmless images that commonly collide (flat colours,
    /// text-only pictures, memes). Its matches never act, and hold an upload's other
    /// matches for review.
    #[arg(long)]
    negative: bool,
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

#[derive(Args)]
pub struct AddArgs {
    name: String,
    /// Image files or directories (searched recursively); `-` reads standard input.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// A label for each new content (repeatable).
    #[arg(long = "label", value_name = "LABEL")]
    labels: Vec<String>,
    #[arg(long, default_value = "")]
    note: String,
    /// Bank the PDQ hash even of images whose PDQ quality is below 50 (such hashes match
    /// unrelated images); without it such an image is banked by its local features alone,
    /// or refused when it has none.
    #[arg(long)]
    allow_low_quality: bool,
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
    threads: Option<u16>,
    #[arg(long, value_enum, default_value_t)]
    format: Format,
    #[command(flatten)]
    media: MediaArgs,
}

#[derive(Args)]
pub struct ImportArgs {
    name: String,
    /// The hash list; `-` reads standard input.
    file: PathBuf,
    /// The list's format [default: recognised from its first bytes].
    #[arg(long = "format", value_enum)]
    list_format: Option<ListFormat>,
}

#[derive(Args)]
pub struct ExportArgs {
    name: String,
    #[arg(long = "format", value_enum, default_value_t = ListFormat::Tx)]
    list_format: ListFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    Tx,
    Csv,
    Json,
}

impl From<ListFormat> for HashListFormat {
    fn from(format: ListFormat) -> Self {
        match format {
            ListFormat::Tx => HashListFormat::Tx,
            ListFormat::Csv => HashListFormat::Csv,
            ListFormat::Json => HashListFormat::Json,
        }
    }
}

/// A bank as `bank list` and `bank show` print it.
#[derive(Serialize)]
struct BankLine<'a> {
    #[serde(flatten)]
    bank: &'a Bank,
    content_count: u64,
}

pub fn run(command: BankCommand, storage: &crate::Storage) -> anyhow::Result<ExitCode> {
    let mut store = crate::open_store(storage)?;
    match command {
        BankCommand::Create(args) => create(&mut store, args),
        BankCommand::List(args) => {
            for bank in store.banks()? {
                print_bank(&store, &bank, args.format)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        BankCommand::Show(args) => {
            let bank = store.bank(&args.name)?;
            print_bank(&store, &bank, args.format)?;
            Ok(ExitCode::SUCCESS)
        }
        BankCommand::Delete(args) => {
            let deleted = store.delete_bank(&args.name)?;
            match args.format {
                Format::Json => report::json_line(&serde_json::json!({
                    "bank": args.name, "deleted": true, "content_deleted": deleted
                }))?,
                Format::Text => {
                    report::text_line(&format!("deleted {} and its {deleted} content", args.name))?
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        BankCommand::Add(args) => add(&mut store, args),
        BankCommand::Import(args) => import(&mut store, args),
        BankCommand::Export(args) => export(&store, args),
    }
}

fn create(store: &mut Store, args: CreateArgs) -> anyhow::Result<ExitCode> {
    let name = BankName::new(&args.name)?;
    check_labels(&args.labels).map_err(|e| anyhow::anyhow!("--label: {e}"))?;
    let bank = store.create_bank(
        &name,
        NewBank {
            description: args.description,
            labels: args.labels,
            enabled: !args.disabled,
            enabled_ratio: 1.0,
            thresholds: BTreeMap::from([("pdq".to_string(), args.pdq_threshold)]),
            negative: args.negative,
        },
    )?;
    print_bank(store, &bank, args.format)?;
    Ok(ExitCode::SUCCESS)
}

fn print_bank(store: &Store, bank: &Bank, format: Format) -> anyhow::Result<()> {
    let content_count = store.content_count(bank.id)?;
    match format {
        Format::Json => report::json_line(&BankLine { bank, content_count })?,
        Format::Text => report::text_line(&format!(
            "{:<32} {:>10} {:<8} pdq<={:<3} {}",
            bank.name,
            content_count,
            match (bank.enabled, bank.negative) {
                (true, false) => "enabled",
                (true, true) => "negative",
                (false, _) => "disabled",
            },
            bank.thresholds
                .get("pdq")
                .copied()
                .unwrap_or(DEFAULT_PDQ_THRESHOLD),
            bank.description
        ))?,
    }
    Ok(())
}

/// One line of `bank add` output.
#[derive(Serialize)]
#[serde(untagged)]
enum AddLine {
    Added {
        path: String,
        content_id: i64,
        signals: BTreeMap<&'static str, String>,
        /// Local-feature keypoints stored (their text form is long; `bank export` shows it).
        keypoints: usize,
    },
    Failed {
        path: String,
        error: String,
    },
}

fn add(store: &mut Store, args: AddArgs) -> anyhow::Result<ExitCode> {
    // Refused before any hashing: what an export could not carry back in.
    check_content_metadata(None, &args.labels, &args.note)
        .map_err(|e| anyhow::anyhow!("--label/--note: {e}"))?;
    store.bank(&args.name)?;
    let inputs = inputs::expand(&args.paths);
    let hasher = args.media.hasher();
    let work = |input: &Input| {
        let (bytes, image) = args.media.read_and_decode(input)?;
        let signals = BankSignals::of(&image, &hasher);
        let digest = signals.pdq;
        let pdq = match signals.usable_pdq() {
            Some(hash) => Some(hash),
            None if args.allow_low_quality => Some(digest.hash),
            None if signals.is_matchable() => None,
            None => {
                return Err(format!(
                    "too little detail to match by: PDQ quality {} is below {QUALITY_THRESHOLD} \
                     (such hashes match unrelated images) and there are no local features \
                     (--allow-low-quality adds the PDQ hash anyway)",
                    digest.quality
                ));
            }
        };
        let facts = media_facts(&bytes, image.width(), image.height(), digest.hash, digest.quality);
        Ok((pdq, signals.other_pdq, signals.features, facts))
    };
    // Hash everything first, then write the good ones in one transaction.
    let mut hashed = Vec::new();
    let code = media::run_in_order(
        &inputs,
        media::thread_count(args.threads),
        "images",
        work,
        |path, result| {
            hashed.push((path, result));
            Ok(())
        },
    )?;
    let mut writer = store.content_writer(&args.name)?;
    let mut lines = Vec::new();
    for (path, result) in hashed {
        lines.push(match result {
            Ok((hash, other_pdq, features, facts)) => {
                let hash = hash.map(|hash| hash.to_hex());
                let mut signals: Vec<Signal> = hash
                    .clone()
                    .into_iter()
                    .chain(other_pdq.iter().map(|other| other.to_hex()))
                    .map(|value| Signal {
                        signal_type: SignalType::Pdq.name().to_string(),
                        value,
                    })
                    .collect();
                let keypoints: usize = features.iter().map(FeatureSet::len).sum();
                for features in features {
                    signals.push(Signal {
                        signal_type: SignalType::Features.name().to_string(),
                        value: features.to_string(),
                    });
                }
                let content_id = writer.insert(&NewContent {
                    external_id: None,
                    labels: args.labels.clone(),
                    note: args.note.clone(),
                    origin: format!("file:{path}"),
                    metadata: None,
                    signals,
                })?;
                writer.record_sighting(content_id, &facts)?;
                AddLine::Added {
                    path,
                    content_id,
                    // Empty when only features were banked, as HMA's answers have it.
                    signals: BTreeMap::from([("pdq", hash.unwrap_or_default())]),
                    keypoints,
                }
            }
            Err(error) => AddLine::Failed { path, error },
        });
    }
    writer.commit()?;
    for line in &lines {
        report::line(args.format, line, || match line {
            AddLine::Added {
                path,
                content_id,
                signals,
                keypoints,
            } => {
                let pdq = match signals.get("pdq").map_or("", String::as_str) {
                    "" => "- (quality too low)",
                    hash => hash,
                };
                format!("{path}  content {content_id}  pdq {pdq}  {keypoints} keypoints")
            }
            AddLine::Failed { path, error } => format!("{path}  error: {error}"),
        })?;
    }
    Ok(code)
}

/// Why an import stopped.
#[derive(Debug, thiserror::Error)]
enum ImportError {
    #[error(transparent)]
    Entry(#[from] EntryError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn import(store: &mut Store, args: ImportArgs) -> anyhow::Result<ExitCode> {
    let name = args.file.display().to_string();
    let (reader, size): (Box<dyn Read>, Option<u64>) = if args.file.as_os_str() == "-" {
        (Box::new(io::stdin().lock()), None)
    } else {
        let file = File::open(&args.file).with_context(|| format!("opening {name}"))?;
        let size = file.metadata().ok().map(|m| m.len());
        (Box::new(file), size)
    };
    let bar = report::progress_bytes(size);
    let reader = BufReader::with_capacity(1 << 16, bar.wrap_read(reader));
    let (format, reader): (HashListFormat, Box<dyn io::BufRead>) = match args.list_format {
        Some(format) => (format.into(), Box::new(reader)),
        None => {
            let (format, reader) = sniff_input(reader).with_context(|| format!("reading {name}"))?;
            (format, Box::new(reader))
        }
    };
    let mut writer = store.content_writer(&args.name)?;
    let imported = read_hash_list(reader, format, &format!("import:{name}"), |content| {
        writer.insert(&content).map(|_| ()).map_err(ImportError::from)
    });
    bar.finish_and_clear();
    let imported = match imported {
        Ok(count) => count,
        // The writer is dropped uncommitted: nothing of the file lands.
        Err(ImportError::Entry(error)) => bail!("{name}: {error}; nothing was imported"),
        Err(ImportError::Store(error)) => bail!("{name}: {error}; nothing was imported"),
    };
    writer.commit()?;
    report::json_line(&serde_json::json!({
        "bank": args.name, "file": name, "format": format!("{format:?}").to_lowercase(), "imported": imported
    }))?;
    Ok(ExitCode::SUCCESS)
}

fn export(store: &Store, args: ExportArgs) -> anyhow::Result<ExitCode> {
    let stdout = io::stdout().lock();
    let mut writer = HashListWriter::new(BufWriter::new(stdout), args.list_format.into())?;
    store.for_each_content(&args.name, |content| {
        writer.write(&content).map_err(anyhow::Error::from)
    })?;
    writer.finish()?;
    Ok(ExitCode::SUCCESS)
}
