//! API keys and roles: who may call what.
//!
//! A key reads `ck_<id>_<secret>`. The id (16 hex characters) finds the key's row; only a
//! SHA-256 of the secret (32 random bytes, 64 hex characters) is stored, and the presented
//! secret's hash is compared with it in constant time. A fast hash is enough: the secret
//! is random, not a password that could be guessed.

use std::fmt;
use std::str::FromStr;

use cordon_store::{ApiKey, Store, StoreError};
use sha2::{Digest, Sha256};

/// What a key may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Everything.
    Admin,
    /// Banks and their content.
    Curator,
    /// Hash, look up and submit media.
    Submitter,
    /// Decide on the review queue.
    Reviewer,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Admin, Role::Curator, Role::Submitter, Role::Reviewer];

    pub const fn name(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Curator => "curator",
            Role::Submitter => "submitter",
            Role::Reviewer => "reviewer",
        }
    }

    /// Whether a key of this role may use what `needed` guards.
    pub fn allows(self, needed: Role) -> bool {
        self == Role::Admin || self == needed
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(text: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.name() == text)
            .ok_or_else(|| format!("unknown role {text:?} (admin, curator, submitter, reviewer)"))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no randomness available: {0}")]
    Random(String),
    #[error("invalid key name {0:?}: 1 to 64 letters, digits, '-', '_' or '.'")]
    BadName(String),
}

/// A newly issued key: the only time its secret is seen.
pub struct IssuedKey {
    pub key: String,
    pub record: ApiKey,
}

/// `bytes` random bytes as hex: secrets, session tokens, CSRF tokens.
pub fn random_hex(bytes: usize) -> Result<String, AccessError> {
    let mut buffer = vec![0u8; bytes];
    getrandom::fill(&mut buffer).map_err(|e| AccessError::Random(e.to_string()))?;
    Ok(buffer.iter().map(|b| format!("{b:02x}")).collect())
}

fn secret_hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// Creates and stores a key.
pub fn issue_key(store: &mut Store, name: &str, role: Role) -> Result<IssuedKey, AccessError> {
    let valid_name = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if !valid_name {
        return Err(AccessError::BadName(name.to_string()));
    }
    let id = random_hex(8)?;
    let secret = random_hex(32)?;
    let record = store.create_key(&id, name, role.name(), &secret_hash(&secret))?;
    Ok(IssuedKey {
        key: format!("ck_{id}_{secret}"),
        record,
    })
}

/// The role of a presented key, or `None` if it is malformed, unknown or revoked.
pub fn check_key(store: &Store, presented: &str) -> Result<Option<(ApiKey, Role)>, StoreError> {
    let Some((id, secret)) = split_key(presented) else {
        return Ok(None);
    };
    Ok(store
        .key_for_check(id)?
        .and_then(|(record, stored)| judge(record, &stored, secret)))
}

/// A presented key's public id and secret, if it has the form of one.
fn split_key(presented: &str) -> Option<(&str, &str)> {
    let (id, secret) = presented.strip_prefix("ck_")?.split_once('_')?;
    (id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some((id, secret))
}

/// The key and its role, if `secret` is its secret and it is not revoked.
fn judge(record: ApiKey, stored: &[u8], secret: &str) -> Option<(ApiKey, Role)> {
    if !constant_time_eq(&secret_hash(secret), stored) || record.revoked_at.is_some() {
        return None;
    }
    record.role.parse().ok().map(|role| (record, role))
}

/// Keys as the store held them lately, so that checking the key of every request does not
/// ask the store every time (on PostgreSQL a round trip on every lookup). An entry is
/// trusted for [`KeyCache::TRUST`]; the change feed makes a revocation forget it at once
/// (see [`KeyCache::forget`]), so the time only bounds what a change behind Cordon's back
/// (SQL by hand) takes to be seen.
#[derive(Default)]
pub struct KeyCache {
    known: std::sync::Mutex<std::collections::HashMap<String, KnownKey>>,
}

struct KnownKey {
    record: ApiKey,
    secret_hash: Vec<u8>,
    fetched: std::time::Instant,
}

impl KeyCache {
    /// How long a key read from the store is trusted.
    pub const TRUST: std::time::Duration = std::time::Duration::from_secs(30);
    /// Keys kept at most; beyond, the cache starts afresh (keys are few: a deployment has
    /// tens or hundreds).
    const MAX_KEYS: usize = 10_000;

    /// The answer for `presented` from memory: `Some` when it is known (or malformed),
    /// `None` when the store must be asked ([`KeyCache::fetch`]).
    pub fn lookup(&self, presented: &str) -> Option<Option<(ApiKey, Role)>> {
        let Some((id, secret)) = split_key(presented) else {
            return Some(None);
        };
        let known = self.known();
        let key = known.get(id).filter(|k| k.fetched.elapsed() < Self::TRUST)?;
        Some(judge(key.record.clone(), &key.secret_hash, secret))
    }

    /// Asks the store about `presented`, and remembers what it said.
    pub fn fetch(&self, store: &Store, presented: &str) -> Result<Option<(ApiKey, Role)>, StoreError> {
        let Some((id, secret)) = split_key(presented) else {
            return Ok(None);
        };
        let Some((record, stored)) = store.key_for_check(id)? else {
            return Ok(None);
        };
        let mut known = self.known();
        if known.len() >= Self::MAX_KEYS {
            known.clear();
        }
        let answer = judge(record.clone(), &stored, secret);
        known.insert(
            id.to_string(),
            KnownKey {
                record,
                secret_hash: stored,
                fetched: std::time::Instant::now(),
            },
        );
        Ok(answer)
    }

    /// Forgets the key with public id `id` (it was revoked): the next check asks the store.
    pub fn forget(&self, id: &str) {
        self.known().remove(id);
    }

    fn known(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, KnownKey>> {
        // A poisoned map is still a map of whole entries.
        self.known.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Equality that takes as long whatever the contents, so timing tells nothing of the secret.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_cache_answers_from_memory_until_told_to_forget() {
        let mut store = Store::open_in_memory().unwrap();
        let issued = issue_key(&mut store, "platform-1", Role::Submitter).unwrap();
        let cache = KeyCache::default();
        assert_eq!(cache.lookup(&issued.key), None, "not checked yet: ask the store");
        let (record, role) = cache.fetch(&store, &issued.key).unwrap().unwrap();
        assert_eq!((record.name.as_str(), role), ("platform-1", Role::Submitter));
        assert_eq!(cache.lookup(&issued.key).unwrap().unwrap().1, Role::Submitter);

        // A wrong secret for a known id is refused from memory too.
        let mut wrong = issued.key.clone();
        let last = wrong.pop().unwrap();
        wrong.push(if last == '0' { '1' } else { '0' });
        assert_eq!(cache.lookup(&wrong), Some(None));
        assert_eq!(cache.lookup("not-a-key"), Some(None));

        // Revoked in the store: remembered as good until forgotten, then refused.
        store.revoke_key("platform-1").unwrap();
        assert!(cache.lookup(&issued.key).unwrap().is_some());
        cache.forget(&record.id);
        assert_eq!(cache.lookup(&issued.key), None);
        assert!(cache.fetch(&store, &issued.key).unwrap().is_none());
        assert_eq!(cache.lookup(&issued.key), Some(None), "now known as revoked");
    }

    #[test]
    fn issued_keys_check_and_revoked_keys_do_not() {
        let mut store = Store::open_in_memory().unwrap();
        let issued = issue_key(&mut store, "platform-1", Role::Submitter).unwrap();
        assert!(issued.key.starts_with("ck_"));
        let (record, role) = check_key(&store, &issued.key).unwrap().unwrap();
        assert_eq!((record.name.as_str(), role), ("platform-1", Role::Submitter));

        // One character off, truncated, or garbage: no access.
        let mut wrong = issued.key.clone();
        let last = wrong.pop().unwrap();
        wrong.push(if last == '0' { '1' } else { '0' });
        for bad in [
            wrong.as_str(),
            &issued.key[..20],
            "",
            "ck_",
            "Bearer x",
            "ck_zzzzzzzzzzzzzzzz_00",
        ] {
            assert!(check_key(&store, bad).unwrap().is_none(), "{bad:?}");
        }
        store.revoke_key("platform-1").unwrap();
        assert!(check_key(&store, &issued.key).unwrap().is_none());
        // The secret itself is not stored.
        let listed = format!("{:?}", store.keys().unwrap());
        assert!(!listed.contains(&issued.key[20..]));
    }

    #[test]
    fn admin_allows_everything_and_others_only_their_own() {
        assert!(Role::Admin.allows(Role::Curator));
        assert!(Role::Curator.allows(Role::Curator));
        assert!(!Role::Submitter.allows(Role::Curator));
        assert!(!Role::Reviewer.allows(Role::Submitter));
        assert_eq!("curator".parse::<Role>(), Ok(Role::Curator));
        assert!("root".parse::<Role>().is_err());
    }
}
