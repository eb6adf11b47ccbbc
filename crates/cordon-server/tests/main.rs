//! The crate's integration tests, linked into one binary (one module a file): each test
//! binary links every dependency, so one binary instead of several saves minutes of
//! linking and gigabytes of disk in a clean build.

mod common;

mod console;
mod hma_api;
mod submissions;
mod worker;
