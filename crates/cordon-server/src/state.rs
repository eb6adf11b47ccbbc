//! What every request shares: the store, the live matcher, and how media is read.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64};
use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use cordon_engine::flood::FloodGuard;
use cordon_engine::matcher::{Matcher, MatcherError};
use cordon_engine::policy::Policy;
use cordon_engine::provenance::Ledger;
use cordon_signals::{DecodeLimits, PdqHasher};
use cordon_store::{PooledStore, Store, StoreLocation, StorePool};

use crate::error::ApiError;
use crate::fetch::MediaFetcher;
use crate::metrics::Metrics;

/// Who the audit log names for changes the server makes on its own (no key behind them).
const SERVER_ACTOR: &str = "cordon:server";

/// The name of the key a request came with, put on the request by the key check.
#[derive(Clone, Debug)]
pub struct Caller(pub String);

pub struct AppState {
    stores: StorePool,
    matcher: RwLock<Matcher>,
    /// Shared by writes on their way to the indexes, exclusive to a reload: see
    /// [`AppState::writing_indexes`].
    index_gate: RwLock<()>,
    pub hasher: PdqHasher,
    pub limits: DecodeLimits,
    /// When the index was last built from the store (unix seconds).
    pub built_at: i64,
    pub metrics: Metrics,
    /// Rules and webhooks, from `cordon.toml`.
    pub policy: Policy,
    /// Wakes the webhook worker when decisions are written.
    pub deliveries: tokio::sync::Notify,
    /// Log every request as a JSON line on stderr (`request_log.rs`). Off unless set:
    /// `cordon serve` sets it unless `--quiet`; tests and `cordon worker` leave it off.
    pub log_requests: bool,
    /// Media by URL, from the hosts `[fetch]` allows.
    pub fetcher: MediaFetcher,
    /// Every sighting's PDQ hash, for provenance.
    ledger: RwLock<Ledger>,
    /// Bank entries matching far more than usual, held for review.
    flood: Mutex<FloodGuard>,
    /// Review items each reviewer chose to see unblurred (reviewer, submission id). Kept in
    /// memory: after a restart everything is blurred again, which errs on the safe side.
    revealed: Mutex<std::collections::HashSet<(String, i64)>>,
    /// Failed key checks per address, and request allowances per key.
    pub throttle: crate::throttle::Throttle,
    /// Keys checked lately, so that a request's key check seldom asks the store.
    pub keys: cordon_engine::access::KeyCache,
    /// Where the store is (other nodes may share it).
    pub location: StoreLocation,
    /// The last change of the store's feed applied to the indexes here.
    pub feed_cursor: AtomicI64,
    /// Wakes the feed follower (a `NOTIFY` arrived).
    pub changes_waiting: tokio::sync::Notify,
    /// Whether this node runs the background duties (webhook deliveries).
    pub leading: AtomicBool,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Matcher(#[from] MatcherError),
    #[error("{0}")]
    Fetcher(String),
}

impl AppState {
    /// Opens the store in `data` and loads every bank into the matcher.
    pub fn open(data: &Path, limits: DecodeLimits, policy: Policy) -> Result<AppState, StartError> {
        let store = Store::open(data).map_err(MatcherError::from)?;
        Self::with_store(store, StoreLocation::in_data_folder(data), limits, policy)
    }

    /// Opens the store at `location` and loads every bank into the matcher.
    pub fn open_at(
        location: &cordon_store::StoreLocation,
        limits: DecodeLimits,
        policy: Policy,
    ) -> Result<AppState, StartError> {
        let store = Store::open_at(location).map_err(MatcherError::from)?;
        Self::with_store(store, location.clone(), limits, policy)
    }

    fn with_store(
        store: Store,
        location: StoreLocation,
        limits: DecodeLimits,
        policy: Policy,
    ) -> Result<AppState, StartError> {
        let Loaded {
            matcher,
            ledger,
            flood,
            cursor,
        } = load_in_snapshot(&store, &policy)?;
        let throttle = crate::throttle::Throttle::new(policy.limits.clone());
        let fetcher =
            MediaFetcher::new(policy.fetch.clone(), limits.max_bytes).map_err(StartError::Fetcher)?;
        let stores = StorePool::around(store, &location, policy.limits.store_connections)
            .map_err(MatcherError::from)?;
        Ok(AppState {
            stores,
            matcher: RwLock::new(matcher),
            index_gate: RwLock::new(()),
            hasher: PdqHasher::default(),
            limits,
            built_at: time::OffsetDateTime::now_utc().unix_timestamp(),
            metrics: Metrics::default(),
            policy,
            deliveries: tokio::sync::Notify::new(),
            log_requests: false,
            fetcher,
            ledger: RwLock::new(ledger),
            flood: Mutex::new(flood),
            revealed: Mutex::default(),
            throttle,
            keys: cordon_engine::access::KeyCache::default(),
            location,
            feed_cursor: AtomicI64::new(cursor),
            changes_waiting: tokio::sync::Notify::new(),
            leading: AtomicBool::new(false),
        })
    }

    /// Loads the indexes and the quarantines again from the store, as at start, with the
    /// feed position of the same snapshot: for a node that fell behind further than the
    /// feed reaches back. The caller holds the index gate alone ([`AppState::indexes_alone`]), so that no
    /// write lands between the snapshot and the swap unseen.
    pub fn reload_indexes(&self, _alone: &IndexesAlone<'_>) -> Result<(), MatcherError> {
        let Loaded {
            matcher,
            ledger,
            flood,
            cursor,
        } = load_in_snapshot(&self.store(), &self.policy)?;
        *self.matcher_mut() = matcher;
        *self.ledger_mut() = ledger;
        *self.flood() = flood;
        self.feed_cursor
            .store(cursor, std::sync::atomic::Ordering::Release);
        Ok(())
    }

    /// Held by a request from before it writes to the store until the in-memory indexes
    /// (matcher, ledger, flood guard) show what it wrote; a reload holds it exclusively
    /// from its snapshot until the loaded indexes are in place. Without it, a write
    /// committed after the snapshot and applied to the indexes about to be replaced would
    /// be lost: the feed follower skips this node's own changes. Take it before a store
    /// connection, since a waiting reload needs one.
    pub fn writing_indexes(&self) -> RwLockReadGuard<'_, ()> {
        self.index_gate
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The gate alone, once no write is on its way to the indexes; later writes wait.
    pub fn indexes_alone(&self) -> IndexesAlone<'_> {
        self.index_gate
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The gate alone, when no write is on its way to the indexes (see
    /// [`AppState::writing_indexes`]): what the feed follower holds while it applies other
    /// nodes' changes, so that none overtakes a write of this node committed before it.
    /// `None` while writes are in flight: waiting would hold every later write up behind
    /// the longest one in flight (an import).
    pub fn try_indexes_alone(&self) -> Option<IndexesAlone<'_>> {
        match self.index_gate.try_write() {
            Ok(alone) => Some(alone),
            Err(std::sync::TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }

    pub fn revealed(&self) -> MutexGuard<'_, std::collections::HashSet<(String, i64)>> {
        self.revealed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn flood(&self) -> MutexGuard<'_, FloodGuard> {
        self.flood.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A connection to the store, whose changes the audit log records as the server's own.
    pub fn store(&self) -> PooledStore<'_> {
        self.stores.get(SERVER_ACTOR)
    }

    /// A connection to the store, whose changes the audit log records under `caller`'s name.
    pub fn store_as(&self, caller: &Caller) -> PooledStore<'_> {
        self.stores.get(&format!("key:{}", caller.0))
    }

    pub fn matcher(&self) -> RwLockReadGuard<'_, Matcher> {
        self.matcher
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn ledger(&self) -> RwLockReadGuard<'_, Ledger> {
        self.ledger
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn ledger_mut(&self) -> RwLockWriteGuard<'_, Ledger> {
        self.ledger
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn matcher_mut(&self) -> RwLockWriteGuard<'_, Matcher> {
        self.matcher
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The index gate held alone: no write is between its store commit and its indexes.
pub type IndexesAlone<'a> = RwLockWriteGuard<'a, ()>;

/// What a node holds in memory, and the feed position it is current to.
struct Loaded {
    matcher: Matcher,
    ledger: Ledger,
    /// The flood guard with the store's quarantines (the hit counts stay in the store).
    flood: FloodGuard,
    cursor: i64,
}

/// Everything a node holds in memory, from one snapshot: the follower then applies
/// exactly what came after.
fn load_in_snapshot(store: &Store, policy: &Policy) -> Result<Loaded, MatcherError> {
    store.in_snapshot(|store| {
        Ok(Loaded {
            matcher: Matcher::load(store)?,
            ledger: Ledger::load(store)?,
            flood: FloodGuard::new(policy.flood_guard.clone(), &store.quarantines()?),
            cursor: store.last_change()?,
        })
    })
}

/// Runs blocking work (SQLite, decoding, hashing) off the async workers.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::internal(format!("worker failed: {e}")))?
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use cordon_signals::PdqHash;
    use cordon_store::{BankName, NewBank, NewContent, Signal};

    use super::*;
    use crate::banking::{NewBankContent, store_content};

    /// A store whose bank `BIG` holds `count` distinct hashes: slow enough to load that a
    /// write can land while a reload is under way.
    fn big_store(location: &StoreLocation, count: u64) {
        let mut store = Store::open_at(location).unwrap();
        let bank = NewBank {
            enabled: true,
            thresholds: [("pdq".to_string(), 31)].into(),
            ..NewBank::default()
        };
        store.create_bank(&BankName::new("BIG").unwrap(), bank).unwrap();
        let mut writer = store.content_writer("BIG").unwrap();
        for i in 0..count {
            let bits = i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            let value = format!("{:016x}", bits).repeat(4);
            let signals = vec![Signal {
                signal_type: "pdq".to_string(),
                value,
            }];
            writer
                .insert(&NewContent {
                    signals,
                    ..NewContent::default()
                })
                .unwrap();
        }
        writer.commit().unwrap();
    }

    #[test]
    fn content_added_while_the_indexes_reload_is_matched_after() {
        // PostgreSQL: a node has several connections there, so a request can write while a
        // reload reads (on SQLite its one connection makes them take turns).
        let url = cordon_testkit::shared_postgres().new_database("reload");
        let location = StoreLocation::parse(&url).unwrap();
        big_store(&location, 50_000);
        let state = Arc::new(
            AppState::open_at(&location, DecodeLimits::default(), Policy::parse("").unwrap()).unwrap(),
        );
        let added: PdqHash = "f0".repeat(32).parse().unwrap();
        assert!(state.matcher().match_pdq(&added).is_empty());

        let reloading = {
            let state = state.clone();
            std::thread::spawn(move || state.reload_indexes(&state.indexes_alone()).unwrap())
        };
        // Let the reload take its snapshot, so that the content is written while it loads:
        // applied to the indexes being replaced, it would be lost.
        std::thread::sleep(Duration::from_millis(20));
        let content = NewBankContent::of_hash(added, String::new());
        store_content(&state, &Caller("test".to_string()), "BIG", "test", content).unwrap();
        reloading.join().unwrap();
        assert!(!state.matcher().match_pdq(&added).is_empty());
    }
}
