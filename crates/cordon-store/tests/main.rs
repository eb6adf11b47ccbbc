//! The crate's integration tests, linked into one binary (one module a file): each test
//! binary links every dependency, so one binary instead of several saves minutes of
//! linking and gigabytes of disk in a clean build.

mod concurrent;
mod place;
mod pool;
mod races;
mod store;
mod tls;
