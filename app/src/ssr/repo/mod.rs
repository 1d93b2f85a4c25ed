//! Typed access to the entities, over any [`Store`]: key layouts from [`keys`], revisions for
//! optimistic concurrency, and the fleet counters kept in the same transaction as the
//! deployments they count (so the dashboard summary never reads 15,000 deployments).

use std::sync::Arc;

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::domain::{
    ids::Id,
    model::{Deployment, Page, User},
};

use super::store::{Cursor, Item, Query, Store, StoreError, keys};

mod catalog_records;
mod customers;
mod deployments;
mod maintenance;
mod mfa;
mod operations;
mod outbox;
mod rollouts;
mod sessions;
mod users;

pub use catalog_records::CatalogRecord;
pub use deployments::DeploymentFilter;
pub use operations::StartError;
pub use outbox::Held;
pub use rollouts::{HoldError, ITEMS_PER_BATCH};
pub use sessions::{LoginAttempts, Session};

/// The writes a change may make in one transaction: the store's limit less the audit record
/// (the event and the chain head) that `AuditLog::with_change` adds to the same transaction.
pub const CHANGE_WRITES: usize = super::store::MAX_TRANSACTION_ITEMS - AUDIT_RECORD_WRITES;
/// The writes of one audit record.
pub const AUDIT_RECORD_WRITES: usize = 2;

#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("not found")]
    NotFound,
    /// A stale revision or a duplicate: nothing was written.
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("invalid cursor")]
    BadCursor,
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for RepoError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict { .. } => {
                RepoError::Conflict("the record was changed by someone else".into())
            }
            other => RepoError::Store(other),
        }
    }
}

/// What is stored for a user: the public record plus sign-in state. (Failed sign-ins live per
/// submitted email in `LoginAttempts`; records written before that may still carry
/// `failed_logins`/`locked_until`, which are ignored.)
#[derive(Clone, Debug, Serialize)]
pub struct UserRecord {
    #[serde(flatten)]
    pub user: User,
    pub password_hash: Option<String>,
    /// Sessions opened before this end (set by a password reset or a deactivation).
    pub sessions_valid_after: Option<crate::domain::time::Timestamp>,
}

/// The fields of a [`UserRecord`] beside the user's.
#[derive(Deserialize)]
struct SignInState {
    password_hash: Option<String>,
    #[serde(default)]
    sessions_valid_after: Option<crate::domain::time::Timestamp>,
}

/// What is stored for a deployment: the record plus its owner, for scoping and counters.
#[derive(Clone, Debug, Serialize)]
pub struct DeploymentRecord {
    #[serde(flatten)]
    pub deployment: Deployment,
    pub owner_id: Id,
}

#[derive(Deserialize)]
struct Owner {
    owner_id: Id,
}

/// Reads one flat JSON object as two structs, each taking its own fields. This is what
/// `#[serde(flatten)]` does, without its buffering of every value into an intermediate tree,
/// which made reading records the costliest part of a list request.
fn read_flat<'de, D, A, B>(d: D) -> Result<(A, B), D::Error>
where
    D: serde::Deserializer<'de>,
    A: DeserializeOwned,
    B: DeserializeOwned,
{
    use serde::de::Error;
    let raw = Box::<serde_json::value::RawValue>::deserialize(d)?;
    let a = serde_json::from_str(raw.get()).map_err(D::Error::custom)?;
    let b = serde_json::from_str(raw.get()).map_err(D::Error::custom)?;
    Ok((a, b))
}

impl<'de> Deserialize<'de> for UserRecord {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (user, SignInState { password_hash, sessions_valid_after }) = read_flat(d)?;
        Ok(Self { user, password_hash, sessions_valid_after })
    }
}

impl<'de> Deserialize<'de> for DeploymentRecord {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (deployment, Owner { owner_id }) = read_flat(d)?;
        Ok(Self { deployment, owner_id })
    }
}

fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("domain records serialize")
}

fn from_item<T: DeserializeOwned>(item: &Item) -> Result<T, RepoError> {
    serde_json::from_str(&item.data)
        .map_err(|e| RepoError::Store(StoreError::Corrupt(format!("{}/{}: {e}", item.pk, item.sk))))
}

fn page<T: DeserializeOwned>(p: super::store::QueryPage) -> Result<Page<T>, RepoError> {
    Ok(Page {
        items: p.items.iter().map(from_item).collect::<Result<_, _>>()?,
        next_cursor: p.next.map(|c| c.encode()),
    })
}

/// The query resumed at an API cursor, which must belong to the query's partition.
fn resume(q: Query, after: Option<&str>) -> Result<Query, RepoError> {
    match after {
        None => Ok(q),
        Some(s) => {
            let c = Cursor::decode(s).filter(|c| q.owns(c)).ok_or(RepoError::BadCursor)?;
            Ok(q.after(Some(c)))
        }
    }
}

/// A position in a read over several partitions, one after another.
#[derive(Serialize, Deserialize)]
struct MultiCursor {
    p: usize,
    c: Cursor,
}

impl MultiCursor {
    fn encode(&self) -> String {
        use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).expect("cursor serializes"))
    }

    fn decode(s: &str) -> Option<Self> {
        use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(s).ok()?).ok()
    }
}

#[derive(Clone)]
pub struct Repo {
    store: Arc<dyn Store>,
}

impl Repo {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Repo { store }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Whether the store holds no users yet (demo data is loaded only then).
    pub async fn is_empty(&self) -> Result<bool, RepoError> {
        Ok(self.store.query(Query::index(keys::GSI1, keys::USERS).limit(1)).await?.items.is_empty())
    }

    /// Reads `queries` one after another, keeping the records `keep` accepts, up to `limit`;
    /// the cursor says where to resume (partition and position), so a Sales Manager's list over
    /// several Reps pages like any other.
    pub async fn query_many<T: DeserializeOwned>(
        &self,
        queries: &[Query],
        keep: impl Fn(&T) -> bool,
        limit: usize,
        after: Option<&str>,
    ) -> Result<Page<T>, RepoError> {
        let (mut part, mut inner) = match after {
            None => (0, None),
            Some(s) => {
                let m = MultiCursor::decode(s)
                    .filter(|m| queries.get(m.p).is_some_and(|q| q.owns(&m.c)))
                    .ok_or(RepoError::BadCursor)?;
                (m.p, Some(m.c))
            }
        };
        let mut items = Vec::new();
        while part < queries.len() {
            // Read a little ahead: filtered-out records do not count.
            let batch = (limit - items.len()).max(25);
            let q = queries[part].clone().limit(batch).after(inner.take());
            let p = self.store.query(q.clone()).await?;
            let count = p.items.len();
            for (i, item) in p.items.iter().enumerate() {
                let v: T = from_item(item)?;
                if !keep(&v) {
                    continue;
                }
                items.push(v);
                if items.len() == limit {
                    let at_end = p.next.is_none() && i + 1 == count && part + 1 == queries.len();
                    let next = (!at_end).then(|| MultiCursor { p: part, c: q.cursor_for(item) }.encode());
                    return Ok(Page { items, next_cursor: next });
                }
            }
            match p.next {
                Some(c) => inner = Some(c),
                None => part += 1,
            }
        }
        Ok(Page { items, next_cursor: None })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_read_back_what_they_wrote_as_one_flat_object() {
        let json = r#"{"id":"01KB0000000000000000000001","email":"rep@demo.nexus","name":"Rep",
            "role":"rep","manager_id":null,"active":true,"created_at":"2026-11-28T10:00:00Z","rev":3,
            "password_hash":"$argon2id$fake","failed_logins":2,"locked_until":null}"#;
        // Written before sign-in state moved out: the extra fields are ignored.
        let r: UserRecord = serde_json::from_str(json).unwrap();
        assert_eq!((r.user.email.as_str(), r.user.rev), ("rep@demo.nexus", 3));
        assert_eq!(r.password_hash.as_deref(), Some("$argon2id$fake"));
        assert_eq!(r.sessions_valid_after, None);

        let written = serde_json::to_string(&r).unwrap();
        let flat: serde_json::Value = serde_json::from_str(&written).unwrap();
        assert_eq!(flat["email"], "rep@demo.nexus", "one flat object: {written}");
        let again: UserRecord = serde_json::from_str(&written).unwrap();
        assert_eq!((again.user, again.password_hash), (r.user, r.password_hash));

        let bad = r#"{"owner_id":"not-an-id"}"#;
        assert!(serde_json::from_str::<DeploymentRecord>(bad).is_err());
    }
}
