/// What can go wrong reading or writing the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the data folder {path}: {source}")]
    DataFolder { path: String, source: std::io::Error },
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    #[error(
        "the database at {path} has schema version {found}, newer than this Cordon ({supported}); upgrade Cordon"
    )]
    SchemaTooNew {
        path: String,
        found: i64,
        supported: i64,
    },
    #[error("no bank named {0}")]
    NoSuchBank(String),
    #[error("a bank named {0} already exists")]
    BankExists(String),
    #[error("no content with id {0}")]
    NoSuchContent(i64),
    #[error("invalid bank name {name:?}: {reason}")]
    InvalidBankName { name: String, reason: &'static str },
    #[error("a key named {0} already exists")]
    KeyExists(String),
    #[error("no key named {0}")]
    NoSuchKey(String),
    #[error("content {0} is not quarantined")]
    NotQuarantined(i64),
    #[error("corrupt value in the database ({what}): {detail}")]
    Corrupt { what: &'static str, detail: String },
}
