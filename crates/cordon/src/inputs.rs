//! The media a command was pointed at: files, directories (recursed), or `-` for
//! standard input, read within a byte limit.

use std::fs::File;
use std::io::{self, BufRead, Read};
use std::path::{Path, PathBuf};

use cordon_engine::hash_list::BYTE_ORDER_MARK;
use cordon_signals::ImageFormat;

/// One input named on the command line, or found under a directory named there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    Stdin,
    File(PathBuf),
}

impl Input {
    /// The name printed in results: the path as given, or `-`.
    pub fn display_name(&self) -> String {
        match self {
            Input::Stdin => "-".to_string(),
            Input::File(path) => path.display().to_string(),
        }
    }

    /// The whole input, refusing anything larger than `max_bytes` without reading it all.
    pub fn read(&self, max_bytes: u64) -> Result<Vec<u8>, InputError> {
        match self {
            Input::Stdin => read_limited(io::stdin().lock(), max_bytes),
            Input::File(path) => {
                let file = File::open(path).map_err(InputError::Io)?;
                let size = file.metadata().map_err(InputError::Io)?.len();
                if size > max_bytes {
                    return Err(InputError::TooLarge {
                        size,
                        limit: max_bytes,
                    });
                }
                read_limited(file, max_bytes)
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{0}")]
    Io(io::Error),
    #[error("{size} bytes is over the limit of {limit} bytes")]
    TooLarge { size: u64, limit: u64 },
    #[error("more than {limit} bytes, over the limit")]
    StreamTooLarge { limit: u64 },
}

fn read_limited(reader: impl Read, max_bytes: u64) -> Result<Vec<u8>, InputError> {
    let mut bytes = Vec::new();
    // One byte past the limit tells a file at the limit from one over it.
    reader
        .take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(InputError::Io)?;
    if bytes.len() as u64 > max_bytes {
        return Err(InputError::StreamTooLarge { limit: max_bytes });
    }
    Ok(bytes)
}

/// Expands command-line arguments into inputs, in order. A named file is always an input
/// (so a bad one gets reported); a directory contributes, sorted by path, the files under
/// it whose first bytes are an image format Cordon reads. Links inside directories are
/// not followed.
pub fn expand(arguments: &[PathBuf]) -> Vec<Result<Input, (String, String)>> {
    let mut inputs = Vec::new();
    let mut stdin_named = false;
    for argument in arguments {
        if argument.as_os_str() == "-" {
            // Standard input can be read once: a second `-` would get what the first
            // left, depending on which thread read first.
            inputs.push(match std::mem::replace(&mut stdin_named, true) {
                false => Ok(Input::Stdin),
                true => Err((
                    "-".to_string(),
                    "standard input is named twice; it can be read once".to_string(),
                )),
            });
        } else if argument.is_dir() {
            for entry in walkdir::WalkDir::new(argument)
                .follow_links(false)
                .sort_by_file_name()
            {
                match entry {
                    Ok(entry) if entry.file_type().is_file() && looks_like_image(entry.path()) => {
                        inputs.push(Ok(Input::File(entry.into_path())))
                    }
                    Ok(_) => {}
                    Err(error) => {
                        let name = error.path().unwrap_or(argument).display().to_string();
                        inputs.push(Err((name, error.to_string())));
                    }
                }
            }
        } else {
            inputs.push(Ok(Input::File(argument.clone())));
        }
    }
    inputs
}

fn looks_like_image(path: &Path) -> bool {
    let mut head = [0u8; 16];
    let Ok(mut file) = File::open(path) else {
        // Unreadable: keep it, so the error is reported rather than hidden.
        return true;
    };
    let mut filled = 0;
    while filled < head.len() {
        match file.read(&mut head[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(_) => return true,
        }
    }
    ImageFormat::sniff(&head[..filled]).is_some()
}

/// Longest line of a list of hashes: a PDQ hash is 64 characters; room for white space.
const MAX_HASH_LINE_BYTES: u64 = 4096;

/// The trimmed, non-empty lines of `file` (`-` for standard input), read as they are
/// needed, so a list of millions of hashes is never held whole. A byte-order mark before
/// the first line is skipped; a line that is not UTF-8 or longer than 4 KiB ends the list
/// with an error naming the file and the line.
pub fn non_empty_lines(file: &Path) -> anyhow::Result<impl Iterator<Item = anyhow::Result<String>>> {
    use anyhow::Context;
    let reader: Box<dyn io::BufRead> = if file.as_os_str() == "-" {
        Box::new(io::stdin().lock())
    } else {
        let opened = File::open(file).with_context(|| format!("opening {}", file.display()))?;
        Box::new(io::BufReader::new(opened))
    };
    let mut lines = HashLines {
        reader,
        name: file.display().to_string(),
        number: 0,
        failed: false,
    };
    // After an error `next_non_empty` answers None for good: the list ends there.
    Ok(std::iter::from_fn(move || lines.next_non_empty()))
}

struct HashLines {
    reader: Box<dyn io::BufRead>,
    name: String,
    number: u64,
    failed: bool,
}

impl HashLines {
    fn next_non_empty(&mut self) -> Option<anyhow::Result<String>> {
        while !self.failed {
            let mut bytes = Vec::new();
            self.number += 1;
            let fail = |message: String| anyhow::anyhow!("{} line {}: {message}", self.name, self.number);
            let read = match (&mut self.reader)
                .take(MAX_HASH_LINE_BYTES + 1)
                .read_until(b'\n', &mut bytes)
            {
                Ok(0) => return None,
                Ok(read) => read,
                Err(error) => {
                    self.failed = true;
                    return Some(Err(fail(format!("cannot read: {error}"))));
                }
            };
            if read as u64 > MAX_HASH_LINE_BYTES && !bytes.ends_with(b"\n") {
                self.failed = true;
                return Some(Err(fail(format!("longer than {MAX_HASH_LINE_BYTES} bytes"))));
            }
            if self.number == 1 && bytes.starts_with(BYTE_ORDER_MARK) {
                bytes.drain(..BYTE_ORDER_MARK.len());
            }
            let Ok(text) = String::from_utf8(bytes) else {
                self.failed = true;
                return Some(Err(fail("not UTF-8 text".to_string())));
            };
            let line = text.trim();
            if !line.is_empty() {
                return Some(Ok(line.to_string()));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_stops_one_byte_past_the_limit() {
        assert_eq!(read_limited(&b"abcd"[..], 4).unwrap(), b"abcd");
        assert!(matches!(
            read_limited(&b"abcde"[..], 4),
            Err(InputError::StreamTooLarge { limit: 4 })
        ));
    }
}
