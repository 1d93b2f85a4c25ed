//! Serialized answers of the hottest reads, kept until anything they may depend on changes.
//!
//! An answer depends on who asks (user and role; a manager's team is in the store), on the
//! request's path and query, on the store's data and on the catalog. So an entry is kept under
//! (user, role, path and query) and belongs to one *generation*: the store's write counter and the
//! catalog's revision, read before the answer is computed. Any write makes every entry of the old
//! generation unreachable (they are dropped at the next insert). Only stores that are the sole
//! writer of their data have a generation (the embedded store); on DynamoDB, where other replicas
//! write, nothing is cached. Errors are never cached: permission checks and validation run again.

use std::{
    collections::HashMap,
    future::Future,
    sync::{Arc, Mutex},
};

use axum::body::Bytes;
use serde::Serialize;

use crate::{
    domain::{ids::Id, model::Role},
    ssr::{auth::Actor, catalog::SharedCatalog, error::ServiceError, store::Store},
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Generation {
    store: u64,
    catalog: u64,
}

impl Generation {
    /// Both counters only grow, so a generation is newer when neither is behind.
    fn at_least(self, other: Generation) -> bool {
        self.store >= other.store && self.catalog >= other.catalog
    }
}

#[derive(Hash, PartialEq, Eq)]
struct Key {
    user: Id,
    role: Role,
    path_and_query: String,
}

struct Entries {
    generation: Generation,
    bytes: usize,
    map: HashMap<Key, Bytes>,
}

pub struct ReadCache {
    store: Arc<dyn Store>,
    catalog: SharedCatalog,
    max_bytes: usize,
    entries: Mutex<Entries>,
}

impl ReadCache {
    /// `max_bytes` bounds the answers kept (0: nothing is cached).
    pub fn new(store: Arc<dyn Store>, catalog: SharedCatalog, max_bytes: usize) -> Self {
        ReadCache {
            store,
            catalog,
            max_bytes,
            entries: Mutex::new(Entries {
                generation: Generation { store: 0, catalog: 0 },
                bytes: 0,
                map: HashMap::new(),
            }),
        }
    }

    fn generation(&self) -> Option<Generation> {
        if self.max_bytes == 0 {
            return None;
        }
        let store = self.store.generation()?;
        let catalog = self.catalog.read().unwrap_or_else(|p| p.into_inner()).revision();
        Some(Generation { store, catalog })
    }

    /// The JSON answer (serialized) for `actor` at `path_and_query`: the kept one when nothing
    /// changed since it was made, else `compute`'s (kept when it succeeds).
    pub async fn json<T, E, F>(
        &self,
        actor: &Actor,
        path_and_query: &str,
        compute: impl FnOnce() -> F,
    ) -> Result<Bytes, E>
    where
        T: Serialize,
        E: From<ServiceError>,
        F: Future<Output = Result<T, E>>,
    {
        // Read before computing: an answer is never kept under a generation newer than its data.
        let Some(generation) = self.generation() else {
            return serialize(&compute().await?);
        };
        let key =
            Key { user: actor.user.id.clone(), role: actor.user.role, path_and_query: path_and_query.into() };
        if let Some(body) = self.lookup(generation, &key) {
            return Ok(body);
        }
        let body = serialize(&compute().await?)?;
        self.keep(generation, key, body.clone());
        Ok(body)
    }

    fn lookup(&self, generation: Generation, key: &Key) -> Option<Bytes> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        (entries.generation == generation).then(|| entries.map.get(key).cloned()).flatten()
    }

    fn keep(&self, generation: Generation, key: Key, body: Bytes) {
        if body.len() > self.max_bytes {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.generation != generation {
            // An answer computed before a write finished must not evict the newer ones.
            if !generation.at_least(entries.generation) {
                return;
            }
            entries.generation = generation;
            entries.map.clear();
            entries.bytes = 0;
        }
        if entries.bytes + body.len() > self.max_bytes {
            entries.map.clear();
            entries.bytes = 0;
        }
        entries.bytes += body.len();
        if let Some(old) = entries.map.insert(key, body) {
            entries.bytes -= old.len();
        }
    }

    /// Answers kept now (tests and metrics).
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn serialize<T: Serialize, E: From<ServiceError>>(value: &T) -> Result<Bytes, E> {
    serde_json::to_vec(value).map(Bytes::from).map_err(|e| {
        tracing::error!(error = %e, "an answer could not be serialized");
        E::from(ServiceError::Internal)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ssr::{catalog::Catalog, store::RedbStore};

    fn cache(max_bytes: usize) -> (ReadCache, std::path::PathBuf) {
        let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let dir = std::env::temp_dir().join(format!("nexus-read-cache-{}-{n}", std::process::id()));
        let store: Arc<dyn Store> = Arc::new(RedbStore::open(&dir).unwrap());
        let catalog: SharedCatalog = Arc::new(std::sync::RwLock::new(Catalog::default()));
        (ReadCache::new(store, catalog, max_bytes), dir)
    }

    fn key(uri: &str) -> Key {
        Key {
            user: Id::parse("01HF7YAT020000000000000000").unwrap(),
            role: Role::Rep,
            path_and_query: uri.into(),
        }
    }

    fn at(store: u64, catalog: u64) -> Generation {
        Generation { store, catalog }
    }

    #[test]
    fn answers_belong_to_one_generation() {
        let (cache, dir) = cache(1024);
        cache.keep(at(1, 0), key("/a"), Bytes::from_static(b"one"));
        assert_eq!(cache.lookup(at(1, 0), &key("/a")).as_deref(), Some(&b"one"[..]));
        assert_eq!(cache.lookup(at(2, 0), &key("/a")), None, "after a write");
        assert_eq!(cache.lookup(at(1, 1), &key("/a")), None, "after a catalog change");
        assert_eq!(cache.lookup(at(1, 0), &key("/b")), None);
        // A newer answer replaces the generation; a late one computed before it is dropped.
        cache.keep(at(2, 0), key("/a"), Bytes::from_static(b"two"));
        cache.keep(at(1, 0), key("/b"), Bytes::from_static(b"late"));
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.lookup(at(2, 0), &key("/a")).as_deref(), Some(&b"two"[..]));
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn memory_stays_within_the_budget() {
        let (cache, dir) = cache(10);
        cache.keep(at(1, 0), key("/big"), Bytes::from_static(b"eleven byte"));
        assert!(cache.is_empty(), "an answer above the budget is not kept");
        cache.keep(at(1, 0), key("/a"), Bytes::from_static(b"123456"));
        cache.keep(at(1, 0), key("/b"), Bytes::from_static(b"123456"));
        assert_eq!(cache.len(), 1, "full: the old answers went");
        assert!(cache.entries.lock().unwrap().bytes <= 10);
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn the_embedded_store_counts_its_writes() {
        let (cache, dir) = cache(1024);
        let before = cache.store.generation().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(crate::ssr::store::set_schema_version(cache.store.as_ref(), 1)).unwrap();
        assert!(cache.store.generation().unwrap() > before);
        std::fs::remove_dir_all(dir).ok();
    }
}
