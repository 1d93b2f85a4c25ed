//! State storage: one item-level [`Store`] trait, implemented on DynamoDB ([`DynamoStore`]) and
//! on an embedded file ([`RedbStore`]), with the same semantics, proven by one conformance suite
//! (`app/tests/store_conformance.rs`).
//!
//! # Data model (single table)
//!
//! Every record is an [`Item`] with a partition key `pk`, a sort key `sk`, a revision `rev`, a JSON
//! body `data`, a counter `n`, and up to five secondary-index key pairs (`gsi1pk`/`gsi1sk` …
//! `gsi5pk`/`gsi5sk`; an item without a pair is not in that index). Queries always name a
//! partition (`pk`, or an index's partition key) and an optional sort-key prefix: there is no
//! Scan anywhere. The key layouts of each entity are documented in [`keys`].
//!
//! # Writes
//!
//! All writes go through [`Store::transact`]: up to [`MAX_TRANSACTION_ITEMS`] puts, deletes,
//! counter additions and condition checks that land together or not at all. Each may carry a
//! [`Cond`]: `NotExists` for creation, `Rev(n)` for optimistic concurrency (a stale write is
//! refused with [`StoreError::Conflict`], never silently applied). On DynamoDB this is
//! `TransactWriteItems` with condition expressions; in the embedded store one write transaction.

pub mod dynamo_store;
pub mod keys;
mod redb_envelope;
pub mod redb_store;

use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};

pub use dynamo_store::DynamoStore;
pub use redb_store::RedbStore;

/// Number of secondary indexes.
pub const INDEX_COUNT: usize = 5;
/// DynamoDB's limit, enforced by both stores.
pub const MAX_TRANSACTION_ITEMS: usize = 100;
/// The store layout version recorded in the store (`META`/`SCHEMA`). 2: deployments gained
/// the `gsi5` (`DEPS`) index; 3: active operations split into the workers' and the users'
/// queues; 4: the embedded store's binary item envelope (`redb_envelope`; older values still
/// read, so nothing is rewritten, but a build before it cannot read the new values); 5: sealed
/// `NoEcho` values bound to their deployment (`enc:v2:`, re-sealed from `enc:v1:` at start-up),
/// and environments indexed by account (`ACCOUNT#…` in gsi2).
/// Older stores are re-indexed at start-up (`Repo::migrate`).
pub const SCHEMA_VERSION: u64 = 5;

/// One stored record.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Item {
    pub pk: String,
    pub sk: String,
    pub rev: u64,
    /// Secondary-index keys: `index[i] = Some((partition, sort))` puts the item in index `i`.
    pub index: [Option<(String, String)>; INDEX_COUNT],
    /// The record itself, as JSON.
    pub data: String,
    /// A counter, changed by [`Write::Add`].
    pub n: i64,
}

impl Item {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>, rev: u64, data: impl Into<String>) -> Self {
        Item { pk: pk.into(), sk: sk.into(), rev, data: data.into(), ..Default::default() }
    }

    pub fn with_index(mut self, i: usize, pk: impl Into<String>, sk: impl Into<String>) -> Self {
        self.index[i] = Some((pk.into(), sk.into()));
        self
    }
}

/// A write's precondition on the item it touches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cond {
    None,
    NotExists,
    Exists,
    /// The item exists with exactly this revision.
    Rev(u64),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Write {
    /// Stores the item whole (its `rev` as given: the caller bumps it).
    Put {
        item: Box<Item>,
        cond: Cond,
    },
    Delete {
        pk: String,
        sk: String,
        cond: Cond,
    },
    /// Adds `delta` to the item's counter, creating the item at 0 first if needed.
    Add {
        pk: String,
        sk: String,
        delta: i64,
    },
    /// Only checks the condition.
    Check {
        pk: String,
        sk: String,
        cond: Cond,
    },
}

impl Write {
    pub fn put(item: Item, cond: Cond) -> Self {
        Write::Put { item: Box::new(item), cond }
    }

    fn key(&self) -> (&str, &str) {
        match self {
            Write::Put { item, .. } => (&item.pk, &item.sk),
            Write::Delete { pk, sk, .. } | Write::Add { pk, sk, .. } | Write::Check { pk, sk, .. } => {
                (pk, sk)
            }
        }
    }
}

/// Checks what both stores refuse the same way: empty or oversized transactions, an item touched
/// twice, empty keys.
fn validate_transaction(writes: &[Write]) -> Result<(), StoreError> {
    if writes.is_empty() || writes.len() > MAX_TRANSACTION_ITEMS {
        return Err(StoreError::Invalid(format!(
            "a transaction holds 1 to {MAX_TRANSACTION_ITEMS} writes, not {}",
            writes.len()
        )));
    }
    let mut seen = std::collections::HashSet::new();
    for w in writes {
        let (pk, sk) = w.key();
        if pk.is_empty() || sk.is_empty() {
            return Err(StoreError::Invalid("keys must not be empty".into()));
        }
        if !seen.insert((pk, sk)) {
            return Err(StoreError::Invalid(format!("the item {pk}/{sk} appears twice in one transaction")));
        }
        if let Write::Put { item, .. } = w
            && item.index.iter().flatten().any(|(p, s)| p.is_empty() || s.is_empty())
        {
            return Err(StoreError::Invalid("index keys must not be empty".into()));
        }
    }
    Ok(())
}

/// Where a page ended; opaque to API clients (see [`Cursor::encode`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    pub pk: String,
    pub sk: String,
    /// For index queries: the last item's index keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isk: Option<String>,
}

impl Cursor {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).expect("cursor serializes"))
    }

    pub fn decode(s: &str) -> Option<Cursor> {
        let bytes = URL_SAFE_NO_PAD.decode(s).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

/// A query on one partition of the table or of an index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    /// `None`: the table; `Some(i)`: index `i`.
    pub index: Option<usize>,
    pub pk: String,
    pub sk_prefix: String,
    pub descending: bool,
    pub limit: usize,
    pub after: Option<Cursor>,
}

impl Query {
    pub fn table(pk: impl Into<String>) -> Self {
        Query {
            index: None,
            pk: pk.into(),
            sk_prefix: String::new(),
            descending: false,
            limit: 100,
            after: None,
        }
    }

    pub fn index(i: usize, pk: impl Into<String>) -> Self {
        Query { index: Some(i), ..Query::table(pk) }
    }

    pub fn prefix(mut self, p: impl Into<String>) -> Self {
        self.sk_prefix = p.into();
        self
    }

    pub fn descending(mut self) -> Self {
        self.descending = true;
        self
    }

    pub fn limit(mut self, n: usize) -> Self {
        self.limit = n;
        self
    }

    pub fn after(mut self, c: Option<Cursor>) -> Self {
        self.after = c;
        self
    }

    /// Where a page ending at `item` (a result of this query) resumes.
    pub fn cursor_for(&self, item: &Item) -> Cursor {
        let (ipk, isk) = match self.index {
            Some(i) => item.index[i].clone().map(|(p, s)| (Some(p), Some(s))).unwrap_or((None, None)),
            None => (None, None),
        };
        Cursor { pk: item.pk.clone(), sk: item.sk.clone(), ipk, isk }
    }
}

impl Query {
    /// Whether `c` is a position in this query's partition (a cursor from elsewhere is refused).
    pub fn owns(&self, c: &Cursor) -> bool {
        match self.index {
            None => c.pk == self.pk && c.ipk.is_none(),
            Some(_) => c.ipk.as_deref() == Some(self.pk.as_str()) && c.isk.is_some(),
        }
    }
}

/// One page of a query; `next` is set only when more items follow.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueryPage {
    pub items: Vec<Item>,
    pub next: Option<Cursor>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A condition failed: write number `index` of the transaction (0-based). Nothing was written.
    #[error("conflict: the record changed or already exists (write {index})")]
    Conflict { index: usize },
    #[error("invalid request to the store: {0}")]
    Invalid(String),
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

/// Calls by kind, for tests and metrics. `scan` must stay 0.
#[derive(Debug, Default)]
pub struct CallCounter {
    pub get: AtomicU64,
    pub query: AtomicU64,
    pub transact: AtomicU64,
    pub scan: AtomicU64,
    pub other: AtomicU64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CallCounts {
    pub get: u64,
    pub query: u64,
    pub transact: u64,
    pub scan: u64,
    pub other: u64,
}

impl CallCounter {
    pub fn snapshot(&self) -> CallCounts {
        CallCounts {
            get: self.get.load(Ordering::Relaxed),
            query: self.query.load(Ordering::Relaxed),
            transact: self.transact.load(Ordering::Relaxed),
            scan: self.scan.load(Ordering::Relaxed),
            other: self.other.load(Ordering::Relaxed),
        }
    }

    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Item-level storage with conditional, all-or-nothing writes.
#[async_trait]
pub trait Store: Send + Sync {
    /// `embedded` or `dynamodb`.
    fn kind(&self) -> &'static str;
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError>;
    async fn query(&self, query: Query) -> Result<QueryPage, StoreError>;
    async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError>;
    /// A cheap round trip proving the store answers (for `/health`).
    async fn ping(&self) -> Result<(), StoreError>;
    fn calls(&self) -> CallCounts;
    /// A number that grows after every write that may have changed something, when this store
    /// is the only writer of its data (the embedded store: one process holds the file). `None`
    /// when other processes write too (DynamoDB replicas): then nothing may be cached against it.
    fn generation(&self) -> Option<u64> {
        None
    }
}

/// Records the layout version in an empty store, and refuses a store written by a newer one.
pub async fn check_schema(store: &dyn Store) -> Result<u64, StoreError> {
    match store.get(keys::META, keys::SCHEMA).await? {
        Some(item) => {
            let v: u64 = item.data.parse().map_err(|_| StoreError::Corrupt("schema version".into()))?;
            if v > SCHEMA_VERSION {
                return Err(StoreError::Invalid(format!(
                    "the store has layout version {v}; this build understands up to {SCHEMA_VERSION}"
                )));
            }
            Ok(v)
        }
        None => {
            let item = Item::new(keys::META, keys::SCHEMA, 1, SCHEMA_VERSION.to_string());
            match store.transact(vec![Write::put(item, Cond::NotExists)]).await {
                Ok(()) | Err(StoreError::Conflict { .. }) => Ok(SCHEMA_VERSION),
                Err(e) => Err(e),
            }
        }
    }
}

/// Records that the store now has layout `version` (after a migration).
pub async fn set_schema_version(store: &dyn Store, version: u64) -> Result<(), StoreError> {
    let current = store.get(keys::META, keys::SCHEMA).await?;
    let (rev, cond) = match &current {
        Some(item) => (item.rev + 1, Cond::Rev(item.rev)),
        None => (1, Cond::NotExists),
    };
    store
        .transact(vec![Write::put(Item::new(keys::META, keys::SCHEMA, rev, version.to_string()), cond)])
        .await
}
