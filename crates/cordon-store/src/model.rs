//! What the store holds.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::StoreError;

pub type ContentId = i64;

/// A bank's name: upper snake case (`ISIL_EXECUTIONS`), as HMA requires.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct BankName(String);

impl BankName {
    pub const MAX_LEN: usize = 100;

    pub fn new(name: &str) -> Result<BankName, StoreError> {
        let invalid = |reason| StoreError::InvalidBankName {
            name: name.to_string(),
            reason,
        };
        let mut chars = name.chars();
        match chars.next() {
            None => return Err(invalid("it is empty")),
            Some(c) if !c.is_ascii_uppercase() => return Err(invalid("it must start with a letter A-Z")),
            Some(_) => {}
        }
        if name.len() > Self::MAX_LEN {
            return Err(invalid("it is longer than 100 characters"));
        }
        if !chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_') {
            return Err(invalid("only A-Z, 0-9 and _ are allowed (upper snake case)"));
        }
        Ok(BankName(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BankName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A named collection of known content, such as one hash-sharing programme's list.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Bank {
    #[serde(skip)]
    pub id: i64,
    pub name: BankName,
    pub description: String,
    pub labels: Vec<String>,
    pub enabled: bool,
    /// Share of lookups that search this bank (HMA's gradual roll-out), 0.0 to 1.0.
    pub enabled_ratio: f64,
    /// Largest distance that counts as a match, per signal type (`"pdq": 31`).
    pub thresholds: BTreeMap<String, u32>,
    pub created_at: String,
    /// Known harmless content that commonly collides: a match here never acts on its
    /// own, and holds any other match of the same upload for review.
    pub negative: bool,
}

#[derive(Clone, Debug)]
pub struct NewBank {
    pub description: String,
    pub labels: Vec<String>,
    pub enabled: bool,
    pub enabled_ratio: f64,
    pub thresholds: BTreeMap<String, u32>,
    pub negative: bool,
}

impl Default for NewBank {
    fn default() -> Self {
        NewBank {
            description: String::new(),
            labels: Vec::new(),
            enabled: true,
            enabled_ratio: 1.0,
            thresholds: BTreeMap::new(),
            negative: false,
        }
    }
}

/// Changes to a bank; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct BankUpdate {
    pub name: Option<BankName>,
    pub description: Option<String>,
    pub enabled_ratio: Option<f64>,
    pub labels: Option<Vec<String>>,
    pub enabled: Option<bool>,
    pub thresholds: Option<BTreeMap<String, u32>>,
    pub negative: Option<bool>,
}

/// Changes to a piece of content; `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContentUpdate {
    pub note: Option<String>,
    /// `Some(Some(time))` sets the time until which it does not match (RFC 3339, as
    /// [`crate::format_time`] writes it); `Some(None)` clears it.
    pub disabled_until: Option<Option<String>>,
}

/// One signal of a piece of content, in its text form (`pdq`, 64 hex characters).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Signal {
    pub signal_type: String,
    pub value: String,
}

/// A piece of known content in a bank.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Content {
    pub id: ContentId,
    pub bank: BankName,
    pub external_id: Option<String>,
    pub labels: Vec<String>,
    pub note: String,
    /// Where it came from: a file, an import line, an API call.
    pub origin: String,
    pub created_at: String,
    /// While set and in the future, the content does not match.
    pub disabled_until: Option<String>,
    /// Free-form metadata from the API (HMA's `content_id`, `content_uri`, `json`).
    pub metadata: serde_json::Value,
    pub signals: Vec<Signal>,
}

/// What a list of a bank's content shows of each.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ContentSummary {
    pub id: ContentId,
    pub external_id: Option<String>,
    pub note: String,
    pub origin: String,
    pub created_at: String,
    pub disabled_until: Option<String>,
    /// Whether the file it was made from is kept.
    pub has_media: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NewContent {
    pub external_id: Option<String>,
    pub labels: Vec<String>,
    pub note: String,
    pub origin: String,
    pub metadata: Option<serde_json::Value>,
    pub signals: Vec<Signal>,
}

/// An API key as listed: never its secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ApiKey {
    /// The public part of the key, which finds its row.
    pub id: String,
    pub name: String,
    pub role: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

/// One signal as the index loader reads it: just what matching needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignalRow {
    pub content_id: ContentId,
    pub bank_id: i64,
    pub value: String,
}
