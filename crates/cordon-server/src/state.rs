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
    /// feed reaches back.
    pub fn reload_indexes(&self) -> Result<(), MatcherError> {
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
