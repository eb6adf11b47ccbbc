//! Which store a test's data folder uses. By default the SQLite file inside it; with
//! `CORDON_TEST_STORE=postgres` in the environment, a database of its own on the shared
//! PostgreSQL server, so that the same suites run on both backends.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// The environment variable that picks the backend the suites run on.
pub const BACKEND_VARIABLE: &str = "CORDON_TEST_STORE";

/// Whether this test process runs its suites on PostgreSQL.
pub fn on_postgres() -> bool {
    std::env::var(BACKEND_VARIABLE).is_ok_and(|v| v == "postgres")
}

/// The store URL (`--store`) for the data folder `data`: the same URL every time it is
/// asked for the same folder, so that reopening a folder finds what was written.
pub fn store_url_for(data: &Path) -> String {
    if !on_postgres() {
        return format!("sqlite://{}", data.join("cordon.sqlite3").display());
    }
    static DATABASES: OnceLock<Mutex<HashMap<PathBuf, String>>> = OnceLock::new();
    let mut databases = DATABASES
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    databases
        .entry(data.to_path_buf())
        .or_insert_with(|| crate::shared_postgres().new_database("suite"))
        .clone()
}
