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
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Bank {
    #[serde(skip)]
    pub id: i64,
    pub name: BankName,
    pub description: String,
    pub labels: Vec<String>,
    pub enabled: bool,
    /// Largest distance that counts as a match, per signal type (`"pdq": 31`).
    pub thresholds: BTreeMap<String, u32>,
    pub created_at: String,
}

#[derive(Clone, Debug, Default)]
pub struct NewBank {
    pub description: String,
    pub labels: Vec<String>,
    pub enabled: bool,
    pub thresholds: BTreeMap<String, u32>,
}

/// Changes to a bank; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct BankUpdate {
    pub description: Option<String>,
    pub labels: Option<Vec<String>>,
    pub enabled: Option<bool>,
    pub thresholds: Option<BTreeMap<String, u32>>,
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
    pub signals: Vec<Signal>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NewContent {
    pub external_id: Option<String>,
    pub labels: Vec<String>,
    pub note: String,
    pub origin: String,
    pub signals: Vec<Signal>,
}

/// One signal as the index loader reads it: just what matching needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignalRow {
    pub content_id: ContentId,
    pub bank_id: i64,
    pub value: String,
}
