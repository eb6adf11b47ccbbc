/// What can go wrong reading or writing the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the data folder {path}: {source}")]
    DataFolder { path: String, source: std::io::Error },
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("PostgreSQL error: {}", postgres_detail(.0))]
    Postgres(#[from] postgres::Error),
    #[error("invalid store address {url:?}: {reason}")]
    StoreUrl { url: String, reason: String },
    #[error("cannot connect to the store at {url}: {reason}")]
    Connect { url: String, reason: String },
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
    #[error("submission {0} is not in the review queue")]
    NoSuchReview(i64),
    #[error("submission {0} has been reviewed already")]
    ReviewDecided(i64),
    #[error("submission {submission_id} is claimed by {reviewer} until {until}")]
    ReviewClaimed {
        submission_id: i64,
        reviewer: String,
        until: String,
    },
    #[error("{reviewer} does not hold submission {submission_id}: claim it first (claims lapse)")]
    ReviewNotClaimed { submission_id: i64, reviewer: String },
    #[error("account {0} is not suspended")]
    NotSuspended(String),
    #[error("account {account_id} has a pending appeal already ({appeal_id})")]
    AppealPending { account_id: String, appeal_id: i64 },
    #[error("no appeal {0}")]
    NoSuchAppeal(i64),
    #[error("appeal {0} has been decided already")]
    AppealDecided(i64),
    #[error("corrupt value in the database ({what}): {detail}")]
    Corrupt { what: &'static str, detail: String },
}

/// The server's own message when there is one (the client's `Display` says only "db error").
fn postgres_detail(error: &postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => error.to_string(),
    }
}
