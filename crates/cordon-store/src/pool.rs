//! Several connections to one store for one process, so that a slow query (or a stalled
//! PostgreSQL backend) holds up one request, not every request of the node.
//!
//! Every connection of a pool carries the same node name, so the change feed knows them
//! for one node. SQLite gets one connection whatever is asked: it has one writer at a time
//! anyway, and one connection keeps its transactions from ever meeting a busy database.

use std::sync::{Condvar, Mutex, MutexGuard};

use crate::{Store, StoreError, StoreLocation};

/// Connections to one store, lent out one request at a time.
pub struct StorePool {
    idle: Mutex<Vec<Store>>,
    returned: Condvar,
    size: usize,
    node: String,
    location: StoreLocation,
}

/// A connection borrowed from a [`StorePool`]; it goes back when dropped.
pub struct PooledStore<'a> {
    pool: &'a StorePool,
    store: Option<Store>,
}

impl StorePool {
    /// Opens `connections` connections to `location` (one for SQLite); each checks the
    /// schema as it opens, and only the first finds anything to migrate.
    pub fn open(location: &StoreLocation, connections: usize) -> Result<StorePool, StoreError> {
        let first = Store::open_at(location)?;
        Self::around(first, location, connections)
    }

    /// A pool that starts with `first` and opens more connections to `location` beside it.
    pub fn around(
        first: Store,
        location: &StoreLocation,
        connections: usize,
    ) -> Result<StorePool, StoreError> {
        let size = match location {
            StoreLocation::Sqlite(_) => 1,
            StoreLocation::Postgres(_) => connections.max(1),
        };
        let node = first.node().to_string();
        let mut idle = vec![first];
        while idle.len() < size {
            let mut more = Store::open_at(location)?;
            more.set_node(&node);
            idle.push(more);
        }
        Ok(StorePool {
            idle: Mutex::new(idle),
            returned: Condvar::new(),
            size,
            node,
            location: location.clone(),
        })
    }

    /// How many connections the pool holds.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The name every connection of this pool writes into the change feed.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// A connection, waiting for one to come back when all are lent out; a connection
    /// PostgreSQL closed is replaced. Its audit actor is `actor`, whoever used it before.
    pub fn get(&self, actor: &str) -> PooledStore<'_> {
        let mut idle = self.idle_connections();
        let mut store = loop {
            if let Some(store) = idle.pop() {
                break store;
            }
            idle = self
                .returned
                .wait(idle)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        };
        drop(idle);
        if store.is_closed() {
            // PostgreSQL went away (restarted, failed over): a new connection, if one can
            // be had now; else this one answers every query with the connection's error.
            if let Ok(mut fresh) = Store::open_at(&self.location) {
                fresh.set_node(&self.node);
                store = fresh;
            }
        }
        store.set_actor(actor);
        PooledStore {
            pool: self,
            store: Some(store),
        }
    }

    /// A poisoned lock (a panic while it was held) still holds whole connections: a
    /// panicking borrower's transaction rolls back when its guard drops.
    fn idle_connections(&self) -> MutexGuard<'_, Vec<Store>> {
        self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl std::ops::Deref for PooledStore<'_> {
    type Target = Store;

    fn deref(&self) -> &Store {
        // Present from `get` until `drop`.
        self.store
            .as_ref()
            .unwrap_or_else(|| unreachable!("a pooled store is lent until dropped"))
    }
}

impl std::ops::DerefMut for PooledStore<'_> {
    fn deref_mut(&mut self) -> &mut Store {
        self.store
            .as_mut()
            .unwrap_or_else(|| unreachable!("a pooled store is lent until dropped"))
    }
}

impl Drop for PooledStore<'_> {
    fn drop(&mut self) {
        if let Some(store) = self.store.take() {
            self.pool.idle_connections().push(store);
            self.pool.returned.notify_one();
        }
    }
}
