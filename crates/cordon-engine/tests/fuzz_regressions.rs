//! Inputs the fuzz targets (`fuzz/`) once failed on, run through the same entry points
//! and checks as the target that found them. Each file of `fuzz-regressions/<target>/` is
//! one input, exactly as the target read it.

use std::path::PathBuf;

use cordon_engine::hash_list::{EntryError, HashListFormat, HashListWriter, read_hash_list};
use cordon_store::{BankName, Content, NewContent, Signal};

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    cordon_testkit::fuzz_regressions(env!("CARGO_MANIFEST_DIR"), target)
}

const FORMATS: [HashListFormat; 3] = [HashListFormat::Tx, HashListFormat::Csv, HashListFormat::Json];

fn read_all(input: &[u8], format: HashListFormat) -> (Vec<NewContent>, Result<u64, EntryError>) {
    let mut entries = Vec::new();
    let result = read_hash_list(input, format, "fuzz", |content| {
        entries.push(content);
        Ok::<(), EntryError>(())
    });
    (entries, result)
}

fn exported(entries: &[NewContent], format: HashListFormat) -> Vec<u8> {
    let bank = BankName::new("FUZZ").unwrap();
    let mut out = Vec::new();
    let mut writer = HashListWriter::new(&mut out, format).unwrap();
    for (id, entry) in entries.iter().enumerate() {
        writer
            .write(&Content {
                id: id as i64 + 1,
                bank: bank.clone(),
                external_id: entry.external_id.clone(),
                labels: entry.labels.clone(),
                note: entry.note.clone(),
                origin: entry.origin.clone(),
                created_at: String::new(),
                disabled_until: None,
                metadata: serde_json::Value::Null,
                signals: entry.signals.clone(),
            })
            .unwrap();
    }
    writer.finish().unwrap();
    out
}

/// An entry's meaning; through CSV, which trims every field, without surrounding white space.
fn meaning(entry: &NewContent, format: HashListFormat) -> (Option<String>, Vec<String>, String, Vec<Signal>) {
    if format != HashListFormat::Csv {
        return (
            entry.external_id.clone(),
            entry.labels.clone(),
            entry.note.clone(),
            entry.signals.clone(),
        );
    }
    let external_id = entry
        .external_id
        .as_deref()
        .map(str::trim)
        .filter(|id| !id.is_empty());
    (
        external_id.map(str::to_string),
        entry
            .labels
            .iter()
            .map(|l| l.trim())
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect(),
        entry.note.trim().to_string(),
        entry.signals.clone(),
    )
}

/// The `hash_list` target: the first byte picks the format (sniffed, tx, CSV, JSON); what
/// reads exports in every format and imports again, sniffed, to the same entries.
#[test]
fn hash_lists() {
    for (path, data) in inputs("hash_list") {
        let Some((&selector, input)) = data.split_first() else {
            continue;
        };
        let format = match selector % 4 {
            0 => HashListFormat::sniff(&input[..input.len().min(1 << 16)]),
            n => FORMATS[usize::from(n) - 1],
        };
        let (entries, _) = read_all(input, format);
        for format in FORMATS {
            let text = exported(&entries, format);
            assert_eq!(HashListFormat::sniff(&text), format, "{}", path.display());
            let (again, result) = read_all(&text, format);
            assert!(result.is_ok(), "{}: {result:?}", path.display());
            let before: Vec<_> = entries.iter().map(|e| meaning(e, format)).collect();
            let after: Vec<_> = again.iter().map(|e| meaning(e, format)).collect();
            assert_eq!(before, after, "{}: {format:?}", path.display());
        }
    }
}
