//! Cordon's match index: every entry within a Hamming radius of a query, exactly.
//!
//! This crate owns in-memory search over signals: [`PdqIndex`] finds every stored PDQ hash
//! within a radius of a query (multi-index hashing, a [`HammingIndex`] proved equal to
//! brute force by property tests), and [`FeatureIndex`] finds every stored local-feature set that verifies
//! against a query's (leaving out query descriptors far too common to tell images apart);
//! both take inserts and removals live, visible to the very next query.
//! It stores opaque [`EntryId`]s chosen by the caller and knows nothing of banks,
//! thresholds, policies or storage: those belong to the stages above it.

mod feature_index;
mod hamming_index;
mod hash_store;

pub use feature_index::{COMMON_FACTOR, COMMON_FLOOR, FeatureHit, FeatureIndex, FeatureSearch};
pub use hamming_index::{DescriptorParts, HammingIndex, Hit, Parts, PdqIndex, PdqParts};

/// The caller's name for an entry (for example a signal's row id in the store).
pub type EntryId = u64;
