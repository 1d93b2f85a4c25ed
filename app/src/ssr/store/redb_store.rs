//! The embedded store: one redb file (ACID, crash-safe, copy-on-write B-trees) in the data
//! directory. The same item model as DynamoDB: an `items` table keyed by (pk, sk) and one table
//! per secondary index keyed by (index pk, index sk, pk, sk), maintained in the same write
//! transaction as the item, so an index can never disagree with its items.

use std::{
    ops::Bound,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use super::{
    CallCounter, CallCounts, Cond, INDEX_COUNT, Item, Query, QueryPage, Store, StoreError, Write,
    redb_envelope::Stored, validate_transaction,
};
use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

/// (index pk, index sk, pk, sk)
type IndexKey<'a> = (&'a str, &'a str, &'a str, &'a str);
type IndexTable<'t> = redb::Table<'t, IndexKey<'static>, ()>;
type ItemEntry<'a> = Result<
    (redb::AccessGuard<'a, (&'static str, &'static str)>, redb::AccessGuard<'a, &'static [u8]>),
    redb::StorageError,
>;

const ITEMS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("items");
const INDEXES: [TableDefinition<IndexKey<'static>, ()>; INDEX_COUNT] = [
    TableDefinition::new("gsi1"),
    TableDefinition::new("gsi2"),
    TableDefinition::new("gsi3"),
    TableDefinition::new("gsi4"),
    TableDefinition::new("gsi5"),
];
/// Above every character a key uses: the end of a prefix range.
const HIGH: &str = "\u{10FFFF}";

/// Details go to the logs; the error carries a user-safe message.
fn unavailable(e: impl std::fmt::Display) -> StoreError {
    tracing::warn!(error = %e, "embedded store call failed");
    StoreError::Unavailable("the embedded store is unavailable".into())
}

fn decode(bytes: &[u8]) -> Result<Stored, StoreError> {
    Stored::decode(bytes)
}

pub struct RedbStore {
    db: Arc<Database>,
    path: PathBuf,
    calls: Arc<CallCounter>,
    /// Bumped after each write transaction, committed or not (see `Store::generation`).
    generation: Arc<AtomicU64>,
}

impl RedbStore {
    pub const FILE_NAME: &'static str = "nexus.redb";

    /// Opens (or creates) the store file in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(unavailable)?;
        Self::open_file(&dir.join(Self::FILE_NAME))
    }

    /// Opens (or creates) the store file at `path`.
    pub fn open_file(path: &Path) -> Result<Self, StoreError> {
        let path = path.to_path_buf();
        let db = Database::create(&path).map_err(unavailable)?;
        // Create every table up front so readers never meet a missing one.
        let txn = db.begin_write().map_err(unavailable)?;
        {
            txn.open_table(ITEMS).map_err(unavailable)?;
            for def in INDEXES {
                txn.open_table(def).map_err(unavailable)?;
            }
        }
        txn.commit().map_err(unavailable)?;
        Ok(RedbStore { db: Arc::new(db), path, calls: Arc::default(), generation: Arc::default() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes a consistent copy of the whole store to `target` (a new file), from one read
    /// snapshot, while the store stays in use.
    pub fn backup(&self, target: &Path) -> Result<u64, StoreError> {
        if target.exists() {
            return Err(StoreError::Invalid(format!("{} already exists", target.display())));
        }
        let copy = Database::create(target).map_err(unavailable)?;
        let read = self.db.begin_read().map_err(unavailable)?;
        let items = read.open_table(ITEMS).map_err(unavailable)?;
        let write = copy.begin_write().map_err(unavailable)?;
        let mut count = 0;
        {
            let mut out = write.open_table(ITEMS).map_err(unavailable)?;
            for entry in items.iter().map_err(unavailable)? {
                let (k, v) = entry.map_err(unavailable)?;
                let (pk, sk) = k.value();
                out.insert((pk, sk), v.value()).map_err(unavailable)?;
                count += 1;
            }
            for def in INDEXES {
                let src = read.open_table(def).map_err(unavailable)?;
                let mut dst = write.open_table(def).map_err(unavailable)?;
                for entry in src.iter().map_err(unavailable)? {
                    let (k, _) = entry.map_err(unavailable)?;
                    dst.insert(k.value(), ()).map_err(unavailable)?;
                }
            }
        }
        write.commit().map_err(unavailable)?;
        Ok(count)
    }

    fn run_transaction(db: &Database, writes: &[Write]) -> Result<(), StoreError> {
        let txn = db.begin_write().map_err(unavailable)?;
        {
            let mut items = txn.open_table(ITEMS).map_err(unavailable)?;
            // Check every condition before changing anything; dropping the transaction without
            // commit discards whatever was done, so a failure leaves nothing behind.
            let mut current = Vec::with_capacity(writes.len());
            for (i, w) in writes.iter().enumerate() {
                let (pk, sk) = w.key();
                let existing =
                    items.get((pk, sk)).map_err(unavailable)?.map(|v| decode(v.value())).transpose()?;
                let cond = match w {
                    Write::Put { cond, .. } | Write::Delete { cond, .. } | Write::Check { cond, .. } => *cond,
                    Write::Add { .. } => Cond::None,
                };
                let ok = match cond {
                    Cond::None => true,
                    Cond::NotExists => existing.is_none(),
                    Cond::Exists => existing.is_some(),
                    Cond::Rev(r) => existing.as_ref().is_some_and(|s| s.rev == r),
                };
                if !ok {
                    return Err(StoreError::Conflict { index: i });
                }
                current.push(existing);
            }
            let mut indexes = Vec::with_capacity(INDEX_COUNT);
            for def in INDEXES {
                indexes.push(txn.open_table(def).map_err(unavailable)?);
            }
            for (w, existing) in writes.iter().zip(current) {
                let (pk, sk) = w.key();
                let remove_index_entries =
                    |indexes: &mut Vec<IndexTable<'_>>, old: &Option<Stored>| -> Result<(), StoreError> {
                        if let Some(old) = old {
                            for (i, key) in old.index.iter().enumerate() {
                                if let Some((ipk, isk)) = key {
                                    indexes[i]
                                        .remove((ipk.as_str(), isk.as_str(), pk, sk))
                                        .map_err(unavailable)?;
                                }
                            }
                        }
                        Ok(())
                    };
                match w {
                    Write::Put { item, .. } => {
                        remove_index_entries(&mut indexes, &existing)?;
                        let stored = Stored {
                            rev: item.rev,
                            n: item.n,
                            data: item.data.clone(),
                            index: item.index.to_vec(),
                        };
                        items.insert((pk, sk), stored.encode().as_slice()).map_err(unavailable)?;
                        for (i, key) in item.index.iter().enumerate() {
                            if let Some((ipk, isk)) = key {
                                indexes[i]
                                    .insert((ipk.as_str(), isk.as_str(), pk, sk), ())
                                    .map_err(unavailable)?;
                            }
                        }
                    }
                    Write::Delete { .. } => {
                        remove_index_entries(&mut indexes, &existing)?;
                        items.remove((pk, sk)).map_err(unavailable)?;
                    }
                    Write::Add { delta, .. } => {
                        let mut stored = existing.unwrap_or(Stored {
                            rev: 0,
                            n: 0,
                            data: String::new(),
                            index: Vec::new(),
                        });
                        stored.n += delta;
                        items.insert((pk, sk), stored.encode().as_slice()).map_err(unavailable)?;
                    }
                    Write::Check { .. } => {}
                }
            }
        }
        txn.commit().map_err(unavailable)?;
        Ok(())
    }

    fn run_query(db: &Database, q: &Query) -> Result<QueryPage, StoreError> {
        let read = db.begin_read().map_err(unavailable)?;
        let items = read.open_table(ITEMS).map_err(unavailable)?;
        let upper = format!("{}{HIGH}", q.sk_prefix);
        let want = q.limit + 1;
        let mut out = Vec::with_capacity(want.min(256));
        match q.index {
            None => {
                let lo = match &q.after {
                    Some(c) if !q.descending => Bound::Excluded((q.pk.as_str(), c.sk.as_str())),
                    _ => Bound::Included((q.pk.as_str(), q.sk_prefix.as_str())),
                };
                let hi = match &q.after {
                    Some(c) if q.descending => Bound::Excluded((q.pk.as_str(), c.sk.as_str())),
                    _ => Bound::Excluded((q.pk.as_str(), upper.as_str())),
                };
                let range = items.range::<(&str, &str)>((lo, hi)).map_err(unavailable)?;
                let mut push = |entry: ItemEntry<'_>| -> Result<bool, StoreError> {
                    let (k, v) = entry.map_err(unavailable)?;
                    let (pk, sk) = k.value();
                    if sk.starts_with(q.sk_prefix.as_str()) {
                        out.push(decode(v.value())?.into_item(pk, sk));
                    }
                    Ok(out.len() < want)
                };
                if q.descending {
                    for entry in range.rev() {
                        if !push(entry)? {
                            break;
                        }
                    }
                } else {
                    for entry in range {
                        if !push(entry)? {
                            break;
                        }
                    }
                }
            }
            Some(i) => {
                let index = read.open_table(INDEXES[i]).map_err(unavailable)?;
                let after = q.after.as_ref().map(|c| {
                    (
                        c.ipk.clone().unwrap_or_default(),
                        c.isk.clone().unwrap_or_default(),
                        c.pk.clone(),
                        c.sk.clone(),
                    )
                });
                let lo = match &after {
                    Some((a, b, c, d)) if !q.descending => {
                        Bound::Excluded((a.as_str(), b.as_str(), c.as_str(), d.as_str()))
                    }
                    _ => Bound::Included((q.pk.as_str(), q.sk_prefix.as_str(), "", "")),
                };
                let hi = match &after {
                    Some((a, b, c, d)) if q.descending => {
                        Bound::Excluded((a.as_str(), b.as_str(), c.as_str(), d.as_str()))
                    }
                    _ => Bound::Excluded((q.pk.as_str(), upper.as_str(), "", "")),
                };
                let range = index.range::<(&str, &str, &str, &str)>((lo, hi)).map_err(unavailable)?;
                let keys: Box<dyn Iterator<Item = _>> =
                    if q.descending { Box::new(range.rev()) } else { Box::new(range) };
                for entry in keys {
                    let (k, _) = entry.map_err(unavailable)?;
                    let (ipk, isk, pk, sk) = k.value();
                    if ipk != q.pk || !isk.starts_with(q.sk_prefix.as_str()) {
                        continue;
                    }
                    let v = items
                        .get((pk, sk))
                        .map_err(unavailable)?
                        .ok_or_else(|| StoreError::Corrupt(format!("index entry without item {pk}/{sk}")))?;
                    out.push(decode(v.value())?.into_item(pk, sk));
                    if out.len() >= want {
                        break;
                    }
                }
            }
        }
        let next = if out.len() > q.limit {
            out.truncate(q.limit);
            out.last().map(|last| q.cursor_for(last))
        } else {
            None
        };
        Ok(QueryPage { items: out, next })
    }
}

#[async_trait]
impl Store for RedbStore {
    fn kind(&self) -> &'static str {
        "embedded"
    }

    // Reads run on the calling task: a redb read is a short, bounded walk of cached pages (a
    // page of at most a query's limit), cheaper than a hop to the blocking pool, which under
    // 100 concurrent requests grew threads and doubled the p95. Writes (fsync) still hop.
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        CallCounter::bump(&self.calls.get);
        let read = self.db.begin_read().map_err(unavailable)?;
        let items = read.open_table(ITEMS).map_err(unavailable)?;
        let found = items.get((pk, sk)).map_err(unavailable)?;
        found.map(|v| decode(v.value()).map(|s| s.into_item(pk, sk))).transpose()
    }

    async fn query(&self, query: Query) -> Result<QueryPage, StoreError> {
        CallCounter::bump(&self.calls.query);
        if query.limit == 0 {
            return Err(StoreError::Invalid("a query's limit must be at least 1".into()));
        }
        Self::run_query(&self.db, &query)
    }

    async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        CallCounter::bump(&self.calls.transact);
        validate_transaction(&writes)?;
        let db = self.db.clone();
        let outcome = tokio::task::spawn_blocking(move || Self::run_transaction(&db, &writes)).await;
        // After the commit is visible and before the writer hears of it: a reader that sees the
        // new number reads the new data; failed transactions bump too (cheap, and never stale).
        self.generation.fetch_add(1, Ordering::Release);
        outcome.map_err(unavailable)?
    }

    async fn ping(&self) -> Result<(), StoreError> {
        CallCounter::bump(&self.calls.other);
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            let read = db.begin_read().map_err(unavailable)?;
            read.open_table(ITEMS).map_err(unavailable)?;
            Ok(())
        })
        .await
        .map_err(unavailable)?
    }

    fn calls(&self) -> CallCounts {
        self.calls.snapshot()
    }

    fn generation(&self) -> Option<u64> {
        Some(self.generation.load(Ordering::Acquire))
    }
}
