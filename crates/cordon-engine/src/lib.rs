//! Cordon's loop.
//!
//! This crate owns what happens between a signal and an action: the [`matcher`] (banks
//! loaded into the index, per-bank thresholds, dihedral matching) and [`hash_list`] (the
//! hash-list files banks are imported from and exported to). It speaks to storage only
//! through `cordon-store` and never speaks HTTP: the server and the CLI are thin layers
//! over it.

pub mod access;
pub mod flood;
pub mod hash_list;
pub mod image_signals;
pub mod matcher;
pub mod policy;
pub mod provenance;
pub mod review;
