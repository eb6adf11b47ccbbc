//! `cordon_engine::hash_list::read_hash_list` in each format (tx, CSV, JSON, or the one
//! `HashListFormat::sniff` guesses, as `cordon bank import` does), and `canonical_signal`
//! through it. The first byte picks the format; the rest is the file.
//!
//! What reads must also survive the trip back: every entry, exported with
//! `HashListWriter` in each format, imports again with the same signals and metadata
//! (`cordon bank export | cordon bank import` moves a bank between servers).
#![no_main]

use cordon_engine::hash_list::{EntryError, HashListFormat, HashListWriter, read_hash_list};
use cordon_fuzz::{sample_features, sample_hash_lists, write_seeds};
use cordon_store::{BankName, Content, NewContent, Signal};
use libfuzzer_sys::fuzz_target;

const FORMATS: [HashListFormat; 3] = [HashListFormat::Tx, HashListFormat::Csv, HashListFormat::Json];

/// How much of the file `cordon bank import` sniffs: its reader's first buffer.
const SNIFFED: usize = 1 << 16;

fn read_all(input: &[u8], format: HashListFormat) -> (Vec<NewContent>, Result<u64, EntryError>) {
    let mut entries = Vec::new();
    let result = read_hash_list(input, format, "fuzz", |content| {
        entries.push(content);
        Ok::<(), EntryError>(())
    });
    (entries, result)
}

fn exported(entries: &[NewContent], format: HashListFormat) -> Vec<u8> {
    let bank = BankName::new("FUZZ").expect("a valid bank name");
    let mut out = Vec::new();
    let mut writer = HashListWriter::new(&mut out, format).expect("writing to memory");
    for (id, entry) in entries.iter().enumerate() {
        let content = Content {
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
        };
        writer.write(&content).expect("writing to memory");
    }
    writer.finish().expect("writing to memory");
    out
}

/// What an entry means, without where it was read from. The CSV reader trims every field
/// (on purpose: hand-made files have spaces after their commas), so through CSV a value's
/// surrounding white space is not kept, and a label or external id of only white space
/// is none.
type Meaning = (Option<String>, Vec<String>, String, Vec<Signal>);

fn meaning(entry: &NewContent, format: HashListFormat) -> Meaning {
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
    let labels = entry.labels.iter().map(|l| l.trim()).filter(|l| !l.is_empty());
    (
        external_id.map(str::to_string),
        labels.map(str::to_string).collect(),
        entry.note.trim().to_string(),
        entry.signals.clone(),
    )
}

fuzz_target!(init: write_seeds(|| sample_hash_lists(&sample_features())), |data: &[u8]| {
    let Some((&selector, input)) = data.split_first() else {
        return;
    };
    let format = match selector % 4 {
        0 => HashListFormat::sniff(&input[..input.len().min(SNIFFED)]),
        n => FORMATS[usize::from(n) - 1],
    };
    let (entries, result) = read_all(input, format);
    if let Ok(count) = result {
        assert_eq!(count, entries.len() as u64);
    }
    for format in FORMATS {
        let text = exported(&entries, format);
        assert_eq!(HashListFormat::sniff(&text), format, "an export is sniffed as its format");
        let (again, result) = read_all(&text, format);
        if let Err(error) = result {
            panic!(
                "an export of {} entries does not import as {format:?}: {error}\n{}",
                entries.len(),
                String::from_utf8_lossy(&text)
            );
        }
        let before: Vec<_> = entries.iter().map(|e| meaning(e, format)).collect();
        let after: Vec<_> = again.iter().map(|e| meaning(e, format)).collect();
        assert_eq!(before, after, "{format:?} export and import");
    }
});
