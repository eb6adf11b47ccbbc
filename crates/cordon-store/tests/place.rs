//! Where a test's store lives, for the tests that run on both backends: a real SQLite file,
//! and a database of its own on a real PostgreSQL server started for the test process.

use cordon_store::{Store, StoreLocation};
use cordon_testkit::shared_postgres;

/// Where one test's store lives.
pub enum Place {
    Sqlite(tempfile::TempDir),
    Postgres(String),
}

impl Place {
    pub fn sqlite() -> Place {
        Place::Sqlite(tempfile::tempdir().unwrap())
    }

    pub fn postgres() -> Place {
        Place::Postgres(shared_postgres().new_database("store"))
    }

    pub fn location(&self) -> StoreLocation {
        match self {
            Place::Sqlite(dir) => StoreLocation::in_data_folder(dir.path()),
            Place::Postgres(url) => StoreLocation::parse(url).unwrap(),
        }
    }

    /// A new connection to it.
    pub fn open(&self) -> Store {
        Store::open_at(&self.location()).unwrap()
    }

    /// Runs SQL past Cordon, as someone with the file or a database login could.
    pub fn raw_sql(&self, sql: &str) -> Result<(), String> {
        match self {
            Place::Sqlite(dir) => rusqlite::Connection::open(dir.path().join(cordon_store::DATABASE_FILE))
                .and_then(|conn| conn.execute_batch(sql))
                .map_err(|e| e.to_string()),
            Place::Postgres(url) => ::postgres::Client::connect(url, ::postgres::NoTls)
                .and_then(|mut client| client.batch_execute(sql))
                .map_err(|e| format!("{e}: {}", e.as_db_error().map_or("", |d| d.message()))),
        }
    }

    /// A new, empty place on the same backend.
    pub fn another(&self) -> Place {
        match self {
            Place::Sqlite(_) => Place::sqlite(),
            Place::Postgres(_) => Place::postgres(),
        }
    }
}

/// Each named test function (taking a [`Place`]), once per backend.
macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(#[test] fn $test() { super::$test($crate::place::Place::sqlite()) })*
        }
        mod postgres {
            $(#[test] fn $test() { super::$test($crate::place::Place::postgres()) })*
        }
    };
}
pub(crate) use on_both_backends;
