//! A change and the audit event that records it, in one transaction: a crash, or the store
//! failing, between the two can no longer leave a change unaudited (nor record a change that
//! never happened). Both stores transact (DynamoDB `TransactWriteItems`, redb's write
//! transactions), so this holds on both.
//!
//! The change is written through a [`Repo`] over [`ChangeStore`], which adds the audit
//! record's writes (the event and the moved head) to the change's first transaction. When
//! another process extended the chain meanwhile, nothing was written and the change is made
//! again over the new head, as a plain append would be.

use std::{
    future::Future,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
};

use async_trait::async_trait;

use super::{AuditLog, MAX_ATTEMPTS, NewEvent, ServiceError, scrub};
use crate::{
    domain::time::Timestamp,
    ssr::{
        repo::Repo,
        store::{CallCounts, Item, Query, QueryPage, Store, StoreError, Write},
    },
};

/// Why an audited change was not made.
#[derive(Debug)]
pub enum ChangeError<E> {
    /// The change itself refused (a conflict, a validation): as the repo said it.
    Change(E),
    /// The audit log could not be written (the store down, the chain contended too long).
    Audit(ServiceError),
}

impl<E> From<ChangeError<E>> for ServiceError
where
    ServiceError: From<E>,
{
    fn from(e: ChangeError<E>) -> Self {
        match e {
            ChangeError::Change(e) => e.into(),
            ChangeError::Audit(e) => e,
        }
    }
}

/// The store as one audited change sees it.
struct ChangeStore {
    inner: Arc<dyn Store>,
    /// The audit record's writes, until the change's first transaction takes them.
    record: Mutex<Option<Vec<Write>>>,
    /// That transaction failed on the audit record's writes: the chain moved on.
    chain_moved: AtomicBool,
}

impl ChangeStore {
    fn record_written(&self) -> bool {
        self.record.lock().unwrap_or_else(|p| p.into_inner()).is_none()
    }
}

#[async_trait]
impl Store for ChangeStore {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        self.inner.get(pk, sk).await
    }

    async fn query(&self, query: Query) -> Result<QueryPage, StoreError> {
        self.inner.query(query).await
    }

    async fn transact(&self, mut writes: Vec<Write>) -> Result<(), StoreError> {
        let record = self.record.lock().unwrap_or_else(|p| p.into_inner()).take();
        let Some(record) = record else {
            return self.inner.transact(writes).await;
        };
        let own = writes.len();
        writes.extend(record.iter().cloned());
        match self.inner.transact(writes).await {
            Ok(()) => Ok(()),
            Err(e) => {
                if matches!(e, StoreError::Conflict { index } if index >= own) {
                    self.chain_moved.store(true, Ordering::Relaxed);
                }
                // Nothing was written: a later transaction of the change carries the record.
                *self.record.lock().unwrap_or_else(|p| p.into_inner()) = Some(record);
                Err(e)
            }
        }
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }

    fn calls(&self) -> CallCounts {
        self.inner.calls()
    }

    fn generation(&self) -> Option<u64> {
        self.inner.generation()
    }
}

impl AuditLog {
    /// Makes a change (`change`, through the repo it is given) and appends `new` in the same
    /// transaction. `change` may run more than once (the chain moved meanwhile): it must
    /// write nothing before its first transaction. Should it succeed without writing at all,
    /// the event is appended alone.
    pub async fn with_change<T, E, F, Fut>(
        &self,
        new: NewEvent,
        at: Timestamp,
        mut change: F,
    ) -> Result<T, ChangeError<E>>
    where
        F: FnMut(Repo) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let _turn = self.local.lock().await;
        self.ensure_keyed().await.map_err(ChangeError::Audit)?;
        let mut details = new.details.clone();
        scrub(&mut details);
        let mut planted = Vec::new();
        for attempt in 0..MAX_ATTEMPTS {
            let (head, rev) = self.head().await.map_err(ChangeError::Audit)?;
            let (event, record) = self.next_record(&new, &details, &head, rev, at);
            debug_assert_eq!(record.len(), crate::ssr::repo::AUDIT_RECORD_WRITES, "room is kept for it");
            let store = Arc::new(ChangeStore {
                inner: self.store.clone(),
                record: Mutex::new(Some(record)),
                chain_moved: AtomicBool::new(false),
            });
            let result = change(Repo::new(store.clone())).await;
            if store.chain_moved.load(Ordering::Relaxed) {
                self.after_conflict(event.seq, rev, attempt, &mut planted)
                    .await
                    .map_err(ChangeError::Audit)?;
                continue;
            }
            let value = result.map_err(ChangeError::Change)?;
            if !store.record_written() {
                let (_, more) = self.append_one(new, at).await.map_err(ChangeError::Audit)?;
                planted.extend(more);
            }
            self.note_planted(planted, at).await;
            return Ok(value);
        }
        tracing::error!("audited change gave up after {MAX_ATTEMPTS} conflicting attempts");
        Err(ChangeError::Audit(ServiceError::Unavailable))
    }
}
