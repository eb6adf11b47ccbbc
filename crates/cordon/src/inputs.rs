//! The media a command was pointed at: files, directories (recursed), or `-` for
//! standard input, read within a byte limit.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

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
    for argument in arguments {
        if argument.as_os_str() == "-" {
            inputs.push(Ok(Input::Stdin));
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

/// The trimmed, non-empty lines of `file` (`-` for standard input): hash lists.
pub fn non_empty_lines(file: &Path) -> anyhow::Result<Vec<String>> {
    use anyhow::Context;
    use std::io::BufRead;
    let reader: Box<dyn BufRead> = if file.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let opened = std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
        Box::new(std::io::BufReader::new(opened))
    };
    let mut lines = Vec::new();
    for line in reader.lines() {
        let line = line.with_context(|| format!("reading {}", file.display()))?;
        let line = line.trim();
        if !line.is_empty() {
            lines.push(line.to_string());
        }
    }
    Ok(lines)
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
