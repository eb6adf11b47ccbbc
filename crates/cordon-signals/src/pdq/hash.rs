//! The 256-bit PDQ hash value, its text form and its distance.

use std::fmt;
use std::str::FromStr;

/// A 256-bit PDQ hash.
///
/// Bit `k` is bit `k` of the 256-bit integer whose big-endian hex is the text form, and
/// `k = 16 * row + column` of the 16x16 DCT it was thresholded from. This is the layout of
/// the reference `Hash256` (sixteen 16-bit words, printed from the last word to the first),
/// so the text form is the one HMA, python-threatexchange and the hash-sharing programmes
/// exchange.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct PdqHash {
    /// `words[q]` holds bits `64 q .. 64 q + 63`.
    words: [u64; 4],
}

/// Why a text could not be read as a PDQ hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseHashError {
    #[error("a PDQ hash has 64 hex characters, this one has {0}")]
    Length(usize),
    #[error("a PDQ hash is hex (0-9, a-f), found {found:?} at position {position}")]
    NotHex { position: usize, found: char },
}

impl PdqHash {
    /// The hash with no bit set, which the reference gives images too small to hash.
    pub const ZERO: PdqHash = PdqHash { words: [0; 4] };

    /// Builds a hash from its four 64-bit words, least significant first.
    pub const fn from_words(words: [u64; 4]) -> Self {
        PdqHash { words }
    }

    /// The four 64-bit words, least significant first.
    pub const fn words(&self) -> [u64; 4] {
        self.words
    }

    /// The 32 bytes in text order (byte 0 holds bits 255..248), as python-threatexchange's
    /// `unhexlify` gives them to faiss.
    pub fn to_be_bytes(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (chunk, word) in out.chunks_exact_mut(8).zip(self.words.iter().rev()) {
            chunk.copy_from_slice(&word.to_be_bytes());
        }
        out
    }

    /// The inverse of [`PdqHash::to_be_bytes`].
    pub fn from_be_bytes(bytes: [u8; 32]) -> Self {
        let mut words = [0u64; 4];
        for (q, chunk) in bytes.chunks_exact(8).enumerate() {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            words[3 - q] = u64::from_be_bytes(word);
        }
        PdqHash { words }
    }

    pub fn bit(&self, k: usize) -> bool {
        (self.words[k / 64] >> (k % 64)) & 1 == 1
    }

    pub(crate) fn set_bit(&mut self, k: usize) {
        self.words[k / 64] |= 1 << (k % 64);
    }

    /// Number of bits set; a hash of a non-flat image has exactly 128.
    pub fn popcount(&self) -> u32 {
        self.words.iter().map(|w| w.count_ones()).sum()
    }

    /// Hamming distance: the number of bits that differ.
    pub fn distance(&self, other: &PdqHash) -> u32 {
        self.words
            .iter()
            .zip(other.words.iter())
            .map(|(a, b)| (a ^ b).count_ones())
            .sum()
    }

    /// The 64-character lowercase hex text form.
    pub fn to_hex(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for PdqHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for word in self.words.iter().rev() {
            write!(f, "{word:016x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for PdqHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PdqHash({self})")
    }
}

impl FromStr for PdqHash {
    type Err = ParseHashError;

    /// Reads the 64-hex text form. Upper-case hex is accepted (and printed back in lower
    /// case); anything else, including surrounding white space, is an error.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let count = text.chars().count();
        if count != 64 {
            return Err(ParseHashError::Length(count));
        }
        let mut words = [0u64; 4];
        for (position, c) in text.chars().enumerate() {
            let nibble = c
                .to_digit(16)
                .ok_or(ParseHashError::NotHex { position, found: c })?;
            // Character 0 is the most significant nibble of word 3.
            let word = 3 - position / 16;
            words[word] = (words[word] << 4) | u64::from(nibble);
        }
        Ok(PdqHash { words })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_round_trips_and_keeps_reference_bit_order() {
        let text = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22";
        let hash: PdqHash = text.parse().unwrap();
        assert_eq!(hash.to_hex(), text);
        // The last hex character is DCT row 0, columns 3..0: 0x2 = bit 1 only.
        assert!(!hash.bit(0));
        assert!(hash.bit(1));
        assert!(!hash.bit(2));
        // The first hex character 0xf is bits 255..252.
        assert!((252..256).all(|k| hash.bit(k)));
        assert_eq!(hash.popcount(), 128);
        assert_eq!(PdqHash::from_be_bytes(hash.to_be_bytes()), hash);
        assert_eq!(hash.to_be_bytes()[0], 0xf8);
    }

    #[test]
    fn parse_errors_say_what_is_wrong() {
        assert_eq!("abc".parse::<PdqHash>(), Err(ParseHashError::Length(3)));
        let mut bad = "0".repeat(63);
        bad.push('g');
        assert_eq!(
            bad.parse::<PdqHash>(),
            Err(ParseHashError::NotHex {
                position: 63,
                found: 'g'
            })
        );
        let upper = "F".repeat(64);
        assert_eq!(upper.parse::<PdqHash>().unwrap().to_hex(), "f".repeat(64));
    }

    #[test]
    fn distance_counts_differing_bits() {
        let a = PdqHash::ZERO;
        let mut b = PdqHash::ZERO;
        for k in [0, 63, 64, 200, 255] {
            b.set_bit(k);
        }
        assert_eq!(a.distance(&b), 5);
        assert_eq!(b.distance(&b), 0);
    }
}
