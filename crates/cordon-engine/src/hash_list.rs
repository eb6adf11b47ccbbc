//! Hash-list files: how banks are imported and exported.
//!
//! Three formats, each carrying a signal per entry plus optional metadata (`external_id`,
//! `labels`, `note`):
//!
//! * `tx`: python-threatexchange's local-file format, `<signal_type> <signal>` per line;
//!   Cordon allows a JSON object of metadata after the signal. Blank lines and lines
//!   starting with `#` are skipped.
//! * `csv`: a header naming `signal_type` and `signal`, and any of `external_id`,
//!   `labels` (separated by `;`) and `note`.
//! * `json`: an array whose elements are either a PDQ hash string or an object
//!   `{"signal_type", "signal", "external_id", "labels", "note"}`.
//!
//! A content's local features (long, and Cordon's own) ride along with its PDQ entry in
//! an optional `features` field (a key of the tx metadata object, a CSV column, a JSON
//! key), so that an entry stays one piece of content and other tools can ignore them; a
//! content with several sets spreads them over its PDQ entries.
//!
//! Every entry is validated while it is read (known signal type, well-formed value,
//! metadata types), and errors carry the line number.

use std::cell::Cell;
use std::fmt;
use std::io::{BufRead, Read, Write};
use std::rc::Rc;

use cordon_signals::{SignalType, quoted_excerpt};
use cordon_store::{Content, NewContent, Signal};
use serde::de::{self, DeserializeSeed, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

/// The signal types a hash list may hold.
pub const SIGNAL_TYPES: &[&str] = &["pdq", "features"];

/// The longest line (tx), record (CSV) or JSON element a hash list may hold: far beyond any real
/// entry (a PDQ line with metadata and local features is about 30 KB), and small enough
/// that a hostile file without line breaks cannot make a reader hold gigabytes.
pub const MAX_ENTRY_BYTES: u64 = 1 << 20;

/// How much of a file [`sniff_input`] reads to guess its format.
const SNIFF_BYTES: usize = 64 << 10;

/// The UTF-8 byte-order mark spreadsheets put before CSV and some tools before JSON.
pub const BYTE_ORDER_MARK: &[u8] = b"\xEF\xBB\xBF";

/// Longest label, external id and note accepted.
const MAX_LABEL_LEN: usize = 100;
const MAX_EXTERNAL_ID_LEN: usize = 512;
const MAX_NOTE_LEN: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashListFormat {
    Tx,
    Csv,
    Json,
}

impl HashListFormat {
    /// Guesses a file's format from its first non-blank byte and its header line.
    pub fn sniff(head: &[u8]) -> HashListFormat {
        let head = head.strip_prefix(BYTE_ORDER_MARK).unwrap_or(head);
        let text = String::from_utf8_lossy(head);
        let trimmed = text.trim_start();
        let first_line = trimmed.lines().next().unwrap_or_default();
        // A tx line's metadata may hold `,signal_type,` (in a note, say): what starts as a
        // comment or an entry is tx whatever follows, or an exported list would not import.
        let is_tx_line = first_line.starts_with('#')
            || first_line
                .split_once(char::is_whitespace)
                .is_some_and(|(name, _)| SignalType::from_name(name).is_some());
        if trimmed.starts_with('[') {
            HashListFormat::Json
        } else if !is_tx_line && first_line.split(',').any(|c| c.trim() == "signal_type") {
            HashListFormat::Csv
        } else {
            HashListFormat::Tx
        }
    }
}

/// Reads the start of `input` (up to the end of its first line that is not blank, at most
/// 64 KiB), guesses the format from it, and gives back a reader that starts from the
/// beginning again. A pipe may hand over its first line in pieces: one buffer of it is
/// not enough to guess from.
pub fn sniff_input<R: BufRead>(mut input: R) -> std::io::Result<(HashListFormat, impl BufRead)> {
    let mut head = Vec::new();
    loop {
        let wanted = SNIFF_BYTES.saturating_sub(head.len()) as u64;
        let read = (&mut input).take(wanted).read_until(b'\n', &mut head)?;
        let blank = head
            .iter()
            .all(|b| b.is_ascii_whitespace() || BYTE_ORDER_MARK.contains(b));
        if read == 0 || head.len() >= SNIFF_BYTES || !blank {
            break;
        }
    }
    let format = HashListFormat::sniff(&head);
    Ok((format, std::io::Cursor::new(head).chain(input)))
}

/// A bad entry in a hash list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct EntryError {
    /// 1-based line of the input where the problem is.
    pub line: u64,
    pub message: String,
}

impl fmt::Display for EntryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// Checks a signal and returns its canonical text form.
pub fn canonical_signal(signal_type: &str, value: &str) -> Result<Signal, String> {
    let Some(known) = SignalType::from_name(signal_type) else {
        return Err(format!(
            "unsupported signal type {} (Cordon reads: {})",
            quoted_excerpt(signal_type),
            SIGNAL_TYPES.join(", ")
        ));
    };
    Ok(Signal {
        signal_type: known.name().to_string(),
        value: known.canonical(value)?,
    })
}

/// Checks metadata limits; labels may not hold `;` (the CSV separator) or control
/// characters.
fn check_metadata(meta: &Metadata) -> Result<(), String> {
    check_content_metadata(meta.external_id.as_deref(), &meta.labels, &meta.note)
}

/// Checks what a content's metadata may hold: what every format can carry out and back in
/// (`cordon bank add` checks its options with it, so that an exported bank imports).
pub fn check_content_metadata(
    external_id: Option<&str>,
    labels: &[String],
    note: &str,
) -> Result<(), String> {
    if let Some(id) = external_id
        && (id.is_empty() || id.len() > MAX_EXTERNAL_ID_LEN)
    {
        return Err(format!("external_id must be 1 to {MAX_EXTERNAL_ID_LEN} bytes"));
    }
    check_labels(labels)?;
    if note.len() > MAX_NOTE_LEN {
        return Err(format!("note is longer than {MAX_NOTE_LEN} bytes"));
    }
    Ok(())
}

/// Checks labels, a content's or a bank's: 1 to 100 bytes, no `;` (the CSV separator) and
/// no control characters.
pub fn check_labels(labels: &[String]) -> Result<(), String> {
    for label in labels {
        if label.is_empty()
            || label.len() > MAX_LABEL_LEN
            || label.contains(';')
            || label.chars().any(char::is_control)
        {
            return Err(format!(
                "bad label {}: 1 to {MAX_LABEL_LEN} bytes, no ';' or control characters",
                quoted_excerpt(label)
            ));
        }
    }
    Ok(())
}

#[derive(Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
struct Metadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    external_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    labels: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    note: String,
    /// The content's local features, beside its PDQ signal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    features: Option<String>,
}

impl Metadata {
    fn is_empty(&self) -> bool {
        self.external_id.is_none()
            && self.labels.is_empty()
            && self.note.is_empty()
            && self.features.is_none()
    }

    fn of(content: &Content) -> Metadata {
        Metadata {
            external_id: content.external_id.clone(),
            labels: content.labels.clone(),
            note: content.note.clone(),
            features: None,
        }
    }
}

fn new_content(signal: Signal, meta: Metadata, origin: String) -> Result<NewContent, String> {
    check_metadata(&meta)?;
    let mut signals = vec![signal];
    if let Some(features) = &meta.features {
        if signals[0].signal_type == SignalType::Features.name() {
            return Err("a features entry cannot carry a second `features` field".to_string());
        }
        signals.push(canonical_signal(SignalType::Features.name(), features)?);
    }
    Ok(NewContent {
        external_id: meta.external_id,
        labels: meta.labels,
        note: meta.note,
        origin,
        metadata: None,
        signals,
    })
}

/// Reads every entry of `input`, calling `accept` with each one in order. Stops at the
/// first bad entry (or the first error `accept` returns) and returns it.
pub fn read_hash_list<E: From<EntryError>>(
    mut input: impl BufRead,
    format: HashListFormat,
    origin: &str,
    accept: impl FnMut(NewContent) -> Result<(), E>,
) -> Result<u64, E> {
    skip_byte_order_mark(&mut input).map_err(|e| EntryError {
        line: 1,
        message: format!("cannot read: {e}"),
    })?;
    let input = Bounded::new(input, format);
    match format {
        HashListFormat::Tx => read_tx(input, origin, accept),
        HashListFormat::Csv => read_csv(input, origin, accept),
        HashListFormat::Json => read_json(input, origin, accept),
    }
}

fn read_tx<E: From<EntryError>>(
    input: Bounded<impl BufRead>,
    origin: &str,
    mut accept: impl FnMut(NewContent) -> Result<(), E>,
) -> Result<u64, E> {
    let mut count = 0;
    for (index, line) in std::io::BufReader::new(input).lines().enumerate() {
        let number = index as u64 + 1;
        let fail = |message: String| EntryError {
            line: number,
            message,
        };
        let line = line.map_err(|e| fail(format!("cannot read: {e}")))?;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (signal_type, rest) = line
            .split_once(char::is_whitespace)
            .ok_or_else(|| fail("expected `<signal_type> <signal>`".to_string()))?;
        let rest = rest.trim_start();
        let (value, meta) = match rest.split_once(char::is_whitespace) {
            Some((value, meta)) => (value, meta.trim()),
            None => (rest, ""),
        };
        let signal = canonical_signal(signal_type, value).map_err(fail)?;
        let meta: Metadata = if meta.is_empty() {
            Metadata::default()
        } else {
            serde_json::from_str(meta)
                .map_err(|e| fail(format!("metadata after the signal must be a JSON object: {e}")))?
        };
        accept(new_content(signal, meta, format!("{origin}:{number}")).map_err(fail)?)?;
        count += 1;
    }
    Ok(count)
}

fn read_csv<E: From<EntryError>>(
    input: Bounded<impl BufRead>,
    origin: &str,
    mut accept: impl FnMut(NewContent) -> Result<(), E>,
) -> Result<u64, E> {
    let lines = input.lines.clone();
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(input);
    let header_error = |message: String| EntryError { line: 1, message };
    let headers = reader
        .headers()
        .map_err(|e| header_error(format!("cannot read the header: {e}")))?
        .clone();
    let column = |name: &str| headers.iter().position(|h| h == name);
    for (index, name) in headers.iter().enumerate() {
        // Only one of two same-named columns would be read: the other's data would be lost.
        if headers.iter().take(index).any(|earlier| earlier == name) {
            return Err(header_error(format!("column {name:?} is named twice")).into());
        }
        if ![
            "signal_type",
            "signal",
            "external_id",
            "labels",
            "note",
            "features",
        ]
        .contains(&name)
        {
            return Err(header_error(format!(
                "unknown column {name:?} (known: signal_type, signal, external_id, labels, note, features)"
            ))
            .into());
        }
    }
    let (Some(type_column), Some(signal_column)) = (column("signal_type"), column("signal")) else {
        return Err(
            header_error("the header must name the columns signal_type and signal".to_string()).into(),
        );
    };
    let (id_column, labels_column, note_column) = (column("external_id"), column("labels"), column("note"));
    let features_column = column("features");
    let mut count = 0;
    for record in reader.records() {
        let record = record.map_err(|e| EntryError {
            // A read error has no position: the line being read when it struck.
            line: e.position().map_or(lines.get() + 1, |p| p.line()),
            message: e.to_string(),
        })?;
        let number = record.position().map_or(0, |p| p.line());
        let fail = |message: String| EntryError {
            line: number,
            message,
        };
        let field = |c: Option<usize>| c.and_then(|c| record.get(c)).unwrap_or("");
        let signal = canonical_signal(field(Some(type_column)), field(Some(signal_column))).map_err(fail)?;
        let meta = Metadata {
            external_id: Some(field(id_column).to_string()).filter(|s| !s.is_empty()),
            labels: field(labels_column)
                .split(';')
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect(),
            note: field(note_column).to_string(),
            features: Some(field(features_column).to_string()).filter(|s| !s.is_empty()),
        };
        accept(new_content(signal, meta, format!("{origin}:{number}")).map_err(fail)?)?;
        count += 1;
    }
    Ok(count)
}

/// An object element of a JSON hash list.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonEntry {
    signal_type: String,
    signal: String,
    #[serde(default)]
    external_id: Option<String>,
    #[serde(default)]
    labels: Vec<String>,
    #[serde(default)]
    note: String,
    #[serde(default)]
    features: Option<String>,
}

/// Interprets one element: a PDQ hash string, or an object.
fn json_element(value: serde_json::Value, origin: String) -> Result<NewContent, String> {
    match value {
        serde_json::Value::String(hash) => {
            new_content(canonical_signal("pdq", &hash)?, Metadata::default(), origin)
        }
        object @ serde_json::Value::Object(_) => {
            let entry: JsonEntry = serde_json::from_value(object).map_err(|e| e.to_string())?;
            let meta = Metadata {
                external_id: entry.external_id,
                labels: entry.labels,
                note: entry.note,
                features: entry.features,
            };
            new_content(canonical_signal(&entry.signal_type, &entry.signal)?, meta, origin)
        }
        _ => Err("expected a PDQ hash string or an object".to_string()),
    }
}

/// Streams the elements of a JSON array into `accept`, so a list of millions of hashes
/// is never held in memory whole. Errors raised inside get serde_json's line numbers.
struct JsonEntries<'a, F> {
    origin: &'a str,
    accept: F,
    count: u64,
    /// Lines consumed so far by the parser (serde_json's own position runs ahead).
    lines: Rc<Cell<u64>>,
    /// Bytes read since the last element ended, reset here after each one.
    entry_bytes: Rc<Cell<u64>>,
    /// A bad element, with the line where it ends.
    element_error: Option<EntryError>,
    /// An error from `accept` itself, kept to be returned as it is.
    accept_error: Option<String>,
}

impl<'de, F: FnMut(NewContent) -> Result<(), String>> Visitor<'de> for &mut JsonEntries<'_, F> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of PDQ hashes or {\"signal_type\", \"signal\", ...} objects")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        loop {
            let element = ElementSeed {
                origin: self.origin,
                number: self.count + 1,
            };
            let next = seq.next_element_seed(element)?;
            self.entry_bytes.set(0);
            let content = match next {
                None => break,
                Some(Ok(content)) => content,
                Some(Err(message)) => {
                    let error = EntryError {
                        line: self.lines.get() + 1,
                        message,
                    };
                    self.element_error = Some(error.clone());
                    return Err(de::Error::custom(error.message));
                }
            };
            self.count += 1;
            if let Err(e) = (self.accept)(content) {
                self.accept_error = Some(e.clone());
                return Err(de::Error::custom(e));
            }
        }
        Ok(())
    }
}

/// Reads and validates one element, so that an error carries the element's own line.
struct ElementSeed<'a> {
    origin: &'a str,
    number: u64,
}

impl<'de> DeserializeSeed<'de> for ElementSeed<'_> {
    /// A well-formed element that may still be invalid (its message then).
    type Value = Result<NewContent, String>;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        let origin = format!("{}:element {}", self.origin, self.number);
        Ok(json_element(value, origin).map_err(|e| format!("element {}: {e}", self.number)))
    }
}

/// A reader that counts the lines it hands out and refuses an entry longer than
/// [`MAX_ENTRY_BYTES`]: the bytes since the last newline (tx) or the last newline outside
/// a quoted field (CSV), or since the JSON reader last reset `entry_bytes` at the end of
/// an element.
struct Bounded<R> {
    inner: R,
    lines: Rc<Cell<u64>>,
    entry_bytes: Rc<Cell<u64>>,
    entry_end: EntryEnd,
}

/// What ends an entry for [`Bounded`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EntryEnd {
    Newline,
    /// A newline outside quotes: a quoted CSV field holds newlines, and the csv reader
    /// holds its whole record, so counting lines alone would let one record grow to the
    /// size of the file.
    CsvRecord(CsvQuoting),
    /// Only the reader's reset of `entry_bytes`.
    Reset,
}

/// Where a CSV byte stands with respect to quotes, as the csv reader (quote `"`, quotes
/// escaped by doubling) reads them: a quote opens a quoted field only as a field's first
/// byte, and is a plain byte anywhere else in an unquoted one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CsvQuoting {
    FieldStart,
    Unquoted,
    Quoted,
    /// A quote inside a quoted field: it closes the field unless another follows.
    QuoteInQuoted,
}

impl CsvQuoting {
    fn after(self, byte: u8) -> CsvQuoting {
        use CsvQuoting::*;
        match (self, byte) {
            (Quoted, b'"') => QuoteInQuoted,
            (Quoted, _) => Quoted,
            (QuoteInQuoted, b'"') | (FieldStart, b'"') => Quoted,
            (_, b',' | b'\n' | b'\r') => FieldStart,
            _ => Unquoted,
        }
    }
}

impl<R> Bounded<R> {
    fn new(inner: R, format: HashListFormat) -> Self {
        Bounded {
            inner,
            lines: Rc::new(Cell::new(0)),
            entry_bytes: Rc::new(Cell::new(0)),
            entry_end: match format {
                HashListFormat::Tx => EntryEnd::Newline,
                HashListFormat::Csv => EntryEnd::CsvRecord(CsvQuoting::FieldStart),
                HashListFormat::Json => EntryEnd::Reset,
            },
        }
    }
}

impl<R: std::io::Read> std::io::Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let (mut lines, mut run) = (self.lines.get(), self.entry_bytes.get());
        for &byte in &buf[..n] {
            let entry_ends = match &mut self.entry_end {
                EntryEnd::Newline => byte == b'\n',
                EntryEnd::CsvRecord(quoting) => {
                    *quoting = quoting.after(byte);
                    byte == b'\n' && *quoting == CsvQuoting::FieldStart
                }
                EntryEnd::Reset => false,
            };
            if byte == b'\n' {
                lines += 1;
            }
            if entry_ends {
                run = 0;
                continue;
            }
            run += 1;
            if run > MAX_ENTRY_BYTES {
                self.lines.set(lines);
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("an entry is longer than {MAX_ENTRY_BYTES} bytes"),
                ));
            }
        }
        self.lines.set(lines);
        self.entry_bytes.set(run);
        Ok(n)
    }
}

/// Steps over a UTF-8 byte-order mark at the start of `input`, if there is one.
fn skip_byte_order_mark(input: &mut impl BufRead) -> std::io::Result<()> {
    if input.fill_buf()?.starts_with(BYTE_ORDER_MARK) {
        input.consume(BYTE_ORDER_MARK.len());
    }
    Ok(())
}

impl<'de, F: FnMut(NewContent) -> Result<(), String>> DeserializeSeed<'de> for &mut JsonEntries<'_, F> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

fn read_json<E: From<EntryError>>(
    input: Bounded<impl BufRead>,
    origin: &str,
    mut accept: impl FnMut(NewContent) -> Result<(), E>,
) -> Result<u64, E> {
    // `accept`'s own error is carried out of serde through this slot.
    let mut failure: Option<E> = None;
    let mut entries = JsonEntries {
        origin,
        accept: |content| {
            accept(content).map_err(|e| {
                failure = Some(e);
                "stopped".to_string()
            })
        },
        count: 0,
        lines: input.lines.clone(),
        entry_bytes: input.entry_bytes.clone(),
        element_error: None,
        accept_error: None,
    };
    let mut deserializer = serde_json::Deserializer::from_reader(input);
    let result = (&mut entries)
        .deserialize(&mut deserializer)
        .and_then(|()| deserializer.end());
    let count = entries.count;
    let accept_failed = entries.accept_error.is_some();
    let element_error = entries.element_error.take();
    drop(entries);
    let Err(error) = result else { return Ok(count) };
    if accept_failed && let Some(failure) = failure.take() {
        return Err(failure);
    }
    if let Some(bad_element) = element_error {
        return Err(bad_element.into());
    }
    let message = error.to_string();
    // serde_json appends " at line L column C"; the line is reported on its own.
    let message = message.split(" at line ").next().unwrap_or(&message).to_string();
    Err(EntryError {
        line: error.line() as u64,
        message,
    }
    .into())
}

/// An element of an exported JSON hash list, fields in reading order.
#[derive(Serialize)]
struct JsonExportEntry<'a> {
    signal_type: &'a str,
    signal: &'a str,
    #[serde(flatten)]
    meta: &'a Metadata,
}

/// Writes one bank's content as a hash list; call [`HashListWriter::finish`] at the end.
pub struct HashListWriter<W: Write> {
    out: W,
    format: HashListFormat,
    written: u64,
}

impl<W: Write> HashListWriter<W> {
    pub fn new(mut out: W, format: HashListFormat) -> std::io::Result<Self> {
        match format {
            HashListFormat::Csv => writeln!(out, "signal_type,signal,external_id,labels,note,features")?,
            HashListFormat::Json => out.write_all(b"[")?,
            HashListFormat::Tx => {}
        }
        Ok(HashListWriter {
            out,
            format,
            written: 0,
        })
    }

    /// Writes an entry per signal of `content`, each of its local-feature sets riding
    /// along with one of its other signals, in order (a set left over, or any set of a
    /// content with no other signal, stands alone).
    pub fn write(&mut self, content: &Content) -> std::io::Result<()> {
        let is_features = |signal: &&Signal| signal.signal_type == SignalType::Features.name();
        let features: Vec<&Signal> = content.signals.iter().filter(is_features).collect();
        let others: Vec<&Signal> = content.signals.iter().filter(|s| !is_features(s)).collect();
        let riding = features.len().min(others.len());
        let entries = others
            .iter()
            .enumerate()
            .map(|(i, signal)| (*signal, features.get(i).copied()))
            .chain(features[riding..].iter().map(|alone| (*alone, None)));
        for (signal, features) in entries {
            let mut meta = Metadata::of(content);
            meta.features = features.map(|f| f.value.clone());
            match self.format {
                HashListFormat::Tx => {
                    write!(self.out, "{} {}", signal.signal_type, signal.value)?;
                    if !meta.is_empty() {
                        write!(self.out, " {}", serde_json::to_string(&meta)?)?;
                    }
                    writeln!(self.out)?;
                }
                HashListFormat::Csv => {
                    let mut row = csv::WriterBuilder::new()
                        .has_headers(false)
                        .from_writer(Vec::new());
                    row.write_record([
                        signal.signal_type.as_str(),
                        signal.value.as_str(),
                        meta.external_id.as_deref().unwrap_or(""),
                        &meta.labels.join(";"),
                        &meta.note,
                        meta.features.as_deref().unwrap_or(""),
                    ])?;
                    let bytes = row
                        .into_inner()
                        .map_err(|e| std::io::Error::other(e.to_string()))?;
                    self.out.write_all(&bytes)?;
                }
                HashListFormat::Json => {
                    let entry = JsonExportEntry {
                        signal_type: &signal.signal_type,
                        signal: &signal.value,
                        meta: &meta,
                    };
                    let separator = if self.written == 0 { "\n" } else { ",\n" };
                    write!(self.out, "{separator}{}", serde_json::to_string(&entry)?)?;
                }
            }
            self.written += 1;
        }
        Ok(())
    }

    pub fn finish(mut self) -> std::io::Result<u64> {
        if self.format == HashListFormat::Json {
            self.out.write_all(b"\n]\n")?;
        }
        self.out.flush()?;
        Ok(self.written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H1: &str = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22";
    const H2: &str = "30a10efd71c83f429013d48d0ffffc52e34e0e17ada952a9d29685211ea9e5af";

    fn read_all(text: &str, format: HashListFormat) -> Result<Vec<NewContent>, EntryError> {
        let mut out = Vec::new();
        read_hash_list(text.as_bytes(), format, "test", |c| {
            out.push(c);
            Ok::<(), EntryError>(())
        })?;
        Ok(out)
    }

    #[test]
    fn tx_lines_with_and_without_metadata() {
        let text = format!(
            "# a comment\n\npdq {H1}\npdq {}  {{\"external_id\":\"x-1\",\"labels\":[\"tvec\"],\"note\":\"n\"}}\n",
            H2.to_uppercase()
        );
        let entries = read_all(&text, HashListFormat::Tx).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].signals[0].value, H1);
        assert_eq!(entries[0].origin, "test:3");
        assert_eq!(entries[1].signals[0].value, H2, "canonical lower case");
        assert_eq!(entries[1].external_id.as_deref(), Some("x-1"));
        assert_eq!(entries[1].labels, vec!["tvec"]);
    }

    #[test]
    fn bad_lines_are_reported_with_their_number() {
        let cases = [
            (format!("pdq {H1}\npdq 1234\n"), HashListFormat::Tx, 2, "64 hex"),
            (
                format!("pdq {H1}\n\nmd5 {H1}\n"),
                HashListFormat::Tx,
                3,
                "unsupported signal type",
            ),
            (
                format!("pdq {H1} {{\"colour\":1}}\n"),
                HashListFormat::Tx,
                1,
                "unknown field",
            ),
            ("pdq\n".to_string(), HashListFormat::Tx, 1, "expected"),
            (
                format!("pdq {H1}\npdq {}\n", "0".repeat(64)),
                HashListFormat::Tx,
                2,
                "all-zero",
            ),
            (
                format!("pdq {H1}\nfeatures f1:\n"),
                HashListFormat::Tx,
                2,
                "0 keypoints",
            ),
            (
                format!("signal_type,signal\npdq,{H1}\npdq,{H1}x\n"),
                HashListFormat::Csv,
                3,
                "64 hex",
            ),
            (
                format!("signal_type,sig\npdq,{H1}\n"),
                HashListFormat::Csv,
                1,
                "unknown column",
            ),
            (
                format!("signal_type,signal,note,note\npdq,{H1},a,b\n"),
                HashListFormat::Csv,
                1,
                "column \"note\" is named twice",
            ),
            (
                format!("signal_type,signal,labels\npdq,{H1},a;b\npdq,{H2},\"bad\u{7}\"\n"),
                HashListFormat::Csv,
                3,
                "bad label",
            ),
            (
                format!("[\n\"{H1}\",\n\"nope\"\n]"),
                HashListFormat::Json,
                3,
                "element 2",
            ),
            (
                "[\n{\"signal_type\":\"pdq\",\"signal\":5}\n]".to_string(),
                HashListFormat::Json,
                2,
                "",
            ),
            (format!("[\n\"{H1}\",\n"), HashListFormat::Json, 3, "EOF"),
            ("{\"a\":1}".to_string(), HashListFormat::Json, 1, "array"),
        ];
        for (text, format, line, words) in cases {
            let error = read_all(&text, format).expect_err(&text);
            assert_eq!(error.line, line, "{text:?}: {error}");
            assert!(error.message.contains(words), "{text:?}: {error}");
        }
    }

    #[test]
    fn every_feature_set_is_exported_and_imported_back() {
        let signal = |signal_type: &str, value: &str| Signal {
            signal_type: signal_type.to_string(),
            value: value.to_string(),
        };
        let content = |signals: Vec<Signal>| Content {
            id: 1,
            bank: cordon_store::BankName::new("TVEC").unwrap(),
            external_id: None,
            labels: Vec::new(),
            note: String::new(),
            origin: String::new(),
            created_at: String::new(),
            disabled_until: None,
            metadata: serde_json::json!({}),
            signals,
        };
        // As few keypoints as can ever match: fewer are refused.
        let set = |x: f32| {
            let size = cordon_signals::features::MIN_INLIERS as usize;
            cordon_signals::features::FeatureSet {
                keypoints: (0..size)
                    .map(|i| cordon_signals::features::Keypoint {
                        x,
                        y: i as f32,
                        level: 0,
                        angle: 0.0,
                    })
                    .collect(),
                descriptors: (0..size).map(|i| [x as u64 + i as u64; 4]).collect(),
            }
            .to_string()
        };
        let (f1, f2, f3) = (set(1.0), set(2.0), set(3.0));
        assert_ne!(f1, f2);
        // Two sets (a picture with transparency) or three (one on a plain ground too), with
        // two PDQ hashes, one or none: each rides with a hash or stands alone.
        for (pdq, sets, entries) in [
            (vec![H1, H2], vec![&f1, &f2], 2),
            (vec![H1], vec![&f1, &f2], 2),
            (vec![], vec![&f1, &f2], 2),
            (vec![H1, H2], vec![&f1, &f2, &f3], 3),
            (vec![H1], vec![&f1, &f2, &f3], 3),
        ] {
            let mut signals: Vec<Signal> = pdq.iter().map(|h| signal("pdq", h)).collect();
            signals.extend(sets.iter().map(|set| signal("features", set)));
            for format in [HashListFormat::Tx, HashListFormat::Csv, HashListFormat::Json] {
                let mut out = Vec::new();
                let mut writer = HashListWriter::new(&mut out, format).unwrap();
                writer.write(&content(signals.clone())).unwrap();
                writer.finish().unwrap();
                let text = String::from_utf8(out).unwrap();
                let back = read_all(&text, format).unwrap();
                assert_eq!(back.len(), entries, "{pdq:?} {format:?}: {text}");
                let read_back: Vec<&str> = back
                    .iter()
                    .flat_map(|c| &c.signals)
                    .filter(|s| s.signal_type == "features")
                    .map(|s| s.value.as_str())
                    .collect();
                let hashes = back
                    .iter()
                    .flat_map(|c| &c.signals)
                    .filter(|s| s.signal_type == "pdq")
                    .count();
                assert_eq!(hashes, pdq.len(), "{pdq:?} {format:?}: {text}");
                let written: Vec<&str> = sets.iter().map(|set| set.as_str()).collect();
                assert_eq!(read_back, written, "{pdq:?} {format:?}: {text}");
            }
        }
    }

    #[test]
    fn formats_are_recognised_from_their_start() {
        assert_eq!(HashListFormat::sniff(b"  [\"ab\"]"), HashListFormat::Json);
        assert_eq!(
            HashListFormat::sniff(b"signal_type,signal\n"),
            HashListFormat::Csv
        );
        assert_eq!(HashListFormat::sniff(b"pdq abc\n"), HashListFormat::Tx);
        // Tx entries and comments that name the CSV column stay tx.
        assert_eq!(
            HashListFormat::sniff(b"pdq abc {\"note\":\"a,signal_type,b\"}\n"),
            HashListFormat::Tx
        );
        assert_eq!(HashListFormat::sniff(b"# pdq,signal_type\n"), HashListFormat::Tx);
        assert_eq!(
            HashListFormat::sniff(b"signal_type, signal\n"),
            HashListFormat::Csv
        );
    }

    #[test]
    fn a_byte_order_mark_is_stepped_over_in_every_format() {
        let lists = [
            (format!("\u{feff}pdq {H1}\n"), HashListFormat::Tx),
            (
                format!("\u{feff}signal_type,signal\npdq,{H1}\n"),
                HashListFormat::Csv,
            ),
            (format!("\u{feff}[\"{H1}\"]"), HashListFormat::Json),
        ];
        for (text, format) in lists {
            assert_eq!(HashListFormat::sniff(text.as_bytes()), format, "{text:?}");
            let entries = read_all(&text, format).unwrap();
            assert_eq!(entries[0].signals[0].value, H1, "{text:?}");
        }
    }

    /// Hands out its bytes a few at a time, as a pipe may.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(self.0.len()).min(3);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn the_format_of_a_trickling_input_is_guessed_from_its_whole_first_line() {
        let text = format!("\n  \nsignal_type,signal\npdq,{H1}\n");
        let input = std::io::BufReader::with_capacity(4, Trickle(text.as_bytes()));
        let (format, mut reader) = sniff_input(input).unwrap();
        assert_eq!(format, HashListFormat::Csv);
        let mut again = String::new();
        reader.read_to_string(&mut again).unwrap();
        assert_eq!(again, text, "nothing read to guess is lost");
    }

    #[test]
    fn the_entry_bound_is_exact_whatever_the_reads() {
        let max = MAX_ENTRY_BYTES as usize;
        // Bytes since the last newline (tx, CSV), or all bytes with newlines (JSON, whose
        // reader resets the count between elements): at the limit fine, one over refused,
        // counting the lines up to where the entry went over.
        let cases = [
            (format!("ab\n{}\n", "x".repeat(max)), HashListFormat::Tx, None),
            (
                format!("ab\n{}\nc", "x".repeat(max + 1)),
                HashListFormat::Tx,
                Some(1),
            ),
            (format!("ab\n{}\n", "x".repeat(max)), HashListFormat::Csv, None),
            (
                format!("ab\n{}\nc", "x".repeat(max + 1)),
                HashListFormat::Csv,
                Some(1),
            ),
            (
                format!("{}\n{}", "x".repeat(max - 10), "y".repeat(9)),
                HashListFormat::Json,
                None,
            ),
            (
                format!("{}\n{}", "x".repeat(max - 10), "y".repeat(10)),
                HashListFormat::Json,
                Some(1),
            ),
            (format!("{}\n", "x".repeat(max)), HashListFormat::Json, Some(1)),
        ];
        for (text, format, refused_at_line) in cases {
            for chunk in [3, 8192] {
                let input = std::io::BufReader::with_capacity(chunk, Trickle(text.as_bytes()));
                let mut bounded = Bounded::new(input, format);
                let read = std::io::copy(&mut bounded, &mut std::io::sink());
                let lines = bounded.lines.get();
                match refused_at_line {
                    None => assert_eq!(read.unwrap(), text.len() as u64),
                    Some(line) => {
                        assert!(read.is_err(), "{format:?} {chunk}");
                        assert_eq!(lines, line, "{format:?} {chunk}");
                    }
                }
            }
        }
    }

    #[test]
    fn an_entry_longer_than_the_limit_is_refused_not_held() {
        let long = "a".repeat(MAX_ENTRY_BYTES as usize + 10);
        for (text, format) in [
            (format!("pdq {H1}\npdq {long}\n"), HashListFormat::Tx),
            (format!("signal_type,signal\npdq,{long}\n"), HashListFormat::Csv),
            (format!("[\"{H1}\",\n\"{long}\"]"), HashListFormat::Json),
        ] {
            let error = read_all(&text, format).unwrap_err();
            assert_eq!(error.line, 2, "{format:?}: {error}");
            assert!(
                error.message.contains("longer than 1048576 bytes"),
                "{format:?}: {error}"
            );
        }
        // Many entries, each well within it, on one JSON line are fine.
        let one_line = format!("[{}]", vec![format!("\"{H1}\""); 20_000].join(","));
        assert!(one_line.len() as u64 > MAX_ENTRY_BYTES);
        assert_eq!(read_all(&one_line, HashListFormat::Json).unwrap().len(), 20_000);
    }

    #[test]
    fn a_csv_field_quoted_across_lines_is_bounded_as_one_entry() {
        // A quoted field runs on past its newlines: the record, not its lines, is the entry.
        let lines = "x\n".repeat(MAX_ENTRY_BYTES as usize / 2 + 10);
        let text = format!("signal_type,signal,note\npdq,{H1},\"{lines}\"\npdq,{H2},\n");
        let error = read_all(&text, HashListFormat::Csv).unwrap_err();
        assert!(error.message.contains("longer than 1048576 bytes"), "{error}");
        // Within it, quoted newlines, escaped quotes and quotes inside an unquoted field
        // read as before, and a line of its own still starts a new entry.
        let text = format!(
            "signal_type,signal,note\npdq,{H1},\"two\nlines, \"\"quoted\"\"\"\npdq,{H2},5\" \"frame\"\n"
        );
        let entries = read_all(&text, HashListFormat::Csv).unwrap();
        assert_eq!(entries[0].note, "two\nlines, \"quoted\"");
        assert_eq!(entries[1].note, "5\" \"frame\"");
    }
}
