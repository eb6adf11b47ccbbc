//! Cordon's first stage: media bytes in, signals out.
//!
//! This crate owns decoding untrusted media within limits ([`media`]) and the signal
//! types computed from it, starting with PDQ ([`pdq`]): their values, text forms and
//! distance functions. It is a pure library: it never touches storage, the network or a
//! clock, so the same bytes always give the same signals, and every other stage can trust
//! that a hash computed here is the hash the reference computes.

pub mod features;
pub mod media;
pub mod pdq;
pub mod region;
mod signal_type;

pub use media::{DecodeError, DecodeLimits, DecodedImage, ImageFormat, PixelLayout, decode};
pub use pdq::{Dihedral, DihedralHashes, PdqDigest, PdqFamily, PdqHash, PdqHasher};
pub use region::{Region, trim_borders, trim_page};
pub use signal_type::{SignalType, quoted_excerpt};
