//! Typed access to the entities, over any [`Store`]: key layouts from [`keys`], revisions for
//! optimistic concurrency, and the fleet counters kept in the same transaction as the
//! deployments they count (so the dashboard summary never reads 15,000 deployments).

use std::sync::Arc;

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::domain::{
    ids::Id,
    lifecycle::DeploymentStatus,
    model::{Customer, Deployment, Environment, EnvironmentName, Operation, Page, Role, User},
};

use super::store::{Cond, Cursor, Item, Query, Store, StoreError, Write, keys};

mod catalog_records;
mod mfa;
mod operations;
mod sessions;

pub use catalog_records::CatalogRecord;
pub use operations::StartError;
pub use sessions::{LoginAttempts, Session};

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

/// The fleet counter key of a deployment state.
fn counter_sk(capability: &str, env: EnvironmentName, status: DeploymentStatus) -> String {
    format!("{capability}#{}#{}", env.as_str(), status.as_str())
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
        Ok(self.store.query(Query::index(keys::GSI1, "USERS").limit(1)).await?.items.is_empty())
    }

    // --- users ---

    fn user_item(r: &UserRecord) -> Item {
        let u = &r.user;
        let mut item = Item::new(keys::user(u.id.as_str()), "USER", u.rev, to_json(r)).with_index(
            keys::GSI1,
            "USERS",
            u.email.to_ascii_lowercase(),
        );
        if let Some(m) = &u.manager_id {
            item = item.with_index(keys::GSI2, format!("TEAM#{m}"), u.email.to_ascii_lowercase());
        }
        item
    }

    /// Creates a user; the email is unique (case-insensitive).
    pub async fn create_user(&self, mut record: UserRecord) -> Result<User, RepoError> {
        record.user.rev = 1;
        let email_item = Item::new(keys::email(&record.user.email), "EMAIL", 1, record.user.id.to_string());
        self.store
            .transact(vec![
                Write::put(Self::user_item(&record), Cond::NotExists),
                Write::put(email_item, Cond::NotExists),
            ])
            .await
            .map_err(|e| match e {
                StoreError::Conflict { .. } => {
                    RepoError::Conflict(format!("{} is already a user", record.user.email))
                }
                e => e.into(),
            })?;
        Ok(record.user)
    }

    /// Saves a changed user (read as `before`): refused when it changed meanwhile.
    pub async fn update_user(&self, before: &UserRecord, mut after: UserRecord) -> Result<User, RepoError> {
        after.user.rev = before.user.rev + 1;
        // The email (and its uniqueness link) does not change here.
        after.user.email = before.user.email.clone();
        self.store.transact(vec![Write::put(Self::user_item(&after), Cond::Rev(before.user.rev))]).await?;
        Ok(after.user)
    }

    pub async fn user(&self, id: &Id) -> Result<UserRecord, RepoError> {
        let item = self.store.get(&keys::user(id.as_str()), "USER").await?.ok_or(RepoError::NotFound)?;
        from_item(&item)
    }

    pub async fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>, RepoError> {
        let Some(link) = self.store.get(&keys::email(email), "EMAIL").await? else { return Ok(None) };
        let id = Id::parse(&link.data).map_err(|e| RepoError::Store(StoreError::Corrupt(e.to_string())))?;
        Ok(Some(self.user(&id).await?))
    }

    pub async fn users(&self, limit: usize, after: Option<&str>) -> Result<Page<User>, RepoError> {
        let p = self.store.query(resume(Query::index(keys::GSI1, "USERS").limit(limit), after)?).await?;
        let records: Page<UserRecord> = page(p)?;
        Ok(Page {
            items: records.items.into_iter().map(|r| r.user).collect(),
            next_cursor: records.next_cursor,
        })
    }

    /// Every user with `role` (at most `limit`), in email order: read through all users, kept
    /// for the few lists that need them all (the Sales Managers a new Rep can report to).
    pub async fn users_with_role(&self, role: Role, limit: usize) -> Result<Vec<User>, RepoError> {
        let all = [Query::index(keys::GSI1, "USERS")];
        let p = self.query_many(&all, |r: &UserRecord| r.user.role == role, limit, None).await?;
        Ok(p.items.into_iter().map(|r| r.user).collect())
    }

    /// The Reps whose manager is `manager`.
    pub async fn team(&self, manager: &Id) -> Result<Vec<User>, RepoError> {
        let p = self.store.query(Query::index(keys::GSI2, format!("TEAM#{manager}")).limit(1000)).await?;
        let records: Page<UserRecord> = page(p)?;
        Ok(records.items.into_iter().map(|r| r.user).collect())
    }

    // --- customers and environments ---

    fn customer_item(c: &Customer) -> Item {
        let order = format!("{}#{}", c.name.to_lowercase(), c.id);
        Item::new(keys::customer(c.id.as_str()), "CUST", c.rev, to_json(c))
            .with_index(keys::GSI1, "CUSTOMERS", order.clone())
            .with_index(keys::GSI2, keys::owner(c.owner_id.as_str()), order)
    }

    /// Creates a customer; its slug (part of stack names) is unique.
    pub async fn create_customer(&self, mut c: Customer) -> Result<Customer, RepoError> {
        c.rev = 1;
        let slug = Item::new(format!("CUSTSLUG#{}", c.slug), "CUSTSLUG", 1, c.id.to_string());
        self.store
            .transact(vec![
                Write::put(Self::customer_item(&c), Cond::NotExists),
                Write::put(slug, Cond::NotExists),
            ])
            .await
            .map_err(|e| match e {
                StoreError::Conflict { index: 1 } => {
                    RepoError::Conflict(format!("another customer has the slug `{}`", c.slug))
                }
                e => e.into(),
            })?;
        Ok(c)
    }

    /// Saves a changed customer (`c.rev` is the revision it was read at). When the owner
    /// changes, the customer's deployments (read at their revisions) move to the new owner in
    /// the same transaction, with the owners' fleet counters; any of them changed meanwhile
    /// refuses the whole change.
    pub async fn update_customer(
        &self,
        mut c: Customer,
        moved: &[DeploymentRecord],
    ) -> Result<Customer, RepoError> {
        let read_at = c.rev;
        c.rev += 1;
        let mut writes = vec![Write::put(Self::customer_item(&c), Cond::Rev(read_at))];
        let mut deltas = std::collections::BTreeMap::<String, i64>::new();
        for before in moved {
            let mut after = before.clone();
            after.owner_id = c.owner_id.clone();
            after.deployment.rev += 1;
            writes.push(Write::put(Self::deployment_item(&after), Cond::Rev(before.deployment.rev)));
            let d = &before.deployment;
            let sk = counter_sk(&d.capability, d.environment, d.status);
            *deltas.entry(format!("{}|{sk}", keys::summary_owner(before.owner_id.as_str()))).or_default() -=
                1;
            *deltas.entry(format!("{}|{sk}", keys::summary_owner(c.owner_id.as_str()))).or_default() += 1;
        }
        for (key, delta) in deltas {
            if delta != 0 {
                let (pk, sk) = key.split_once('|').expect("joined above");
                writes.push(Write::Add { pk: pk.into(), sk: sk.into(), delta });
            }
        }
        if writes.len() > super::store::MAX_TRANSACTION_ITEMS {
            return Err(RepoError::Conflict(format!(
                "the customer has too many deployments ({}) to move to another owner at once",
                moved.len()
            )));
        }
        self.store.transact(writes).await?;
        Ok(c)
    }

    pub async fn customer(&self, id: &Id) -> Result<Customer, RepoError> {
        let item = self.store.get(&keys::customer(id.as_str()), "CUST").await?.ok_or(RepoError::NotFound)?;
        from_item(&item)
    }

    /// The customer a slug belongs to (stack names carry slugs, not ids).
    pub async fn customer_by_slug(&self, slug: &str) -> Result<Customer, RepoError> {
        let item =
            self.store.get(&format!("CUSTSLUG#{slug}"), "CUSTSLUG").await?.ok_or(RepoError::NotFound)?;
        let id = Id::parse(&item.data).map_err(|_| {
            RepoError::Store(StoreError::Corrupt(format!("slug `{slug}` names no customer id")))
        })?;
        self.customer(&id).await
    }

    /// All customers (`owner = None`) or one owner's, by name.
    pub async fn customers(
        &self,
        owner: Option<&Id>,
        limit: usize,
        after: Option<&str>,
    ) -> Result<Page<Customer>, RepoError> {
        let q = match owner {
            None => Query::index(keys::GSI1, "CUSTOMERS"),
            Some(o) => Query::index(keys::GSI2, keys::owner(o.as_str())),
        };
        page(self.store.query(resume(q.limit(limit), after)?).await?)
    }

    fn environment_item(e: &Environment) -> Item {
        Item::new(
            keys::customer(e.customer_id.as_str()),
            format!("ENV#{}", e.name.as_str()),
            e.rev,
            to_json(e),
        )
        .with_index(keys::GSI1, format!("ENV#{}", e.id), "ENV")
        .with_index(
            keys::GSI2,
            keys::account(&e.account_id),
            format!("{}#{}", e.customer_id, e.name.as_str()),
        )
    }

    /// One environment per name per customer.
    pub async fn create_environment(&self, mut e: Environment) -> Result<Environment, RepoError> {
        e.rev = 1;
        self.store
            .transact(vec![
                Write::Check {
                    pk: keys::customer(e.customer_id.as_str()),
                    sk: "CUST".into(),
                    cond: Cond::Exists,
                },
                Write::put(Self::environment_item(&e), Cond::NotExists),
            ])
            .await
            .map_err(|err| match err {
                StoreError::Conflict { index: 0 } => RepoError::NotFound,
                StoreError::Conflict { .. } => {
                    RepoError::Conflict(format!("the customer already has a {} environment", e.name.as_str()))
                }
                other => other.into(),
            })?;
        Ok(e)
    }

    /// Saves a changed environment; `e.rev` is the revision it was read at.
    pub async fn update_environment(&self, mut e: Environment) -> Result<Environment, RepoError> {
        let read_at = e.rev;
        e.rev += 1;
        self.store.transact(vec![Write::put(Self::environment_item(&e), Cond::Rev(read_at))]).await?;
        Ok(e)
    }

    pub async fn environments(&self, customer: &Id) -> Result<Vec<Environment>, RepoError> {
        let p = self.store.query(Query::table(keys::customer(customer.as_str())).prefix("ENV#")).await?;
        Ok(page(p)?.items)
    }

    /// Every environment, of any customer, that points at this AWS account.
    pub async fn environments_in_account(&self, account: &str) -> Result<Vec<Environment>, RepoError> {
        let p = self.store.query(Query::index(keys::GSI2, keys::account(account)).limit(100)).await?;
        Ok(page(p)?.items)
    }

    pub async fn environment(&self, id: &Id) -> Result<Environment, RepoError> {
        let p = self.store.query(Query::index(keys::GSI1, format!("ENV#{id}")).limit(1)).await?;
        p.items.first().map(from_item).transpose()?.ok_or(RepoError::NotFound)
    }

    // --- deployments ---

    fn deployment_item(r: &DeploymentRecord) -> Item {
        let d = &r.deployment;
        let env = d.environment.as_str();
        let id = d.id.as_str();
        Item::new(keys::deployment(id), "DEP", d.rev, to_json(r))
            .with_index(
                keys::GSI1,
                keys::customer(d.customer_id.as_str()),
                format!("{env}#{}#{id}", d.capability),
            )
            .with_index(
                keys::GSI2,
                format!("CAP#{}", d.capability),
                format!("{env}#{}#{id}", d.status.as_str()),
            )
            .with_index(
                keys::GSI3,
                format!("STATUS#{}", d.status.as_str()),
                format!("{env}#{}#{id}", d.capability),
            )
            .with_index(keys::GSI4, keys::owner(r.owner_id.as_str()), format!("{env}#{}#{id}", d.capability))
            .with_index(keys::GSI5, "DEPS", format!("{env}#{}#{id}", d.capability))
    }

    fn counter_writes(r: &DeploymentRecord, delta: i64) -> [Write; 2] {
        let d = &r.deployment;
        let sk = counter_sk(&d.capability, d.environment, d.status);
        [
            Write::Add { pk: keys::summary_all(), sk: sk.clone(), delta },
            Write::Add { pk: keys::summary_owner(r.owner_id.as_str()), sk, delta },
        ]
    }

    /// The record that keeps one deployment per environment and capability.
    fn envcap_write(r: &DeploymentRecord) -> Write {
        let d = &r.deployment;
        Write::put(
            Item::new(format!("ENVCAP#{}#{}", d.environment_id, d.capability), "ENVCAP", 1, d.id.to_string()),
            Cond::NotExists,
        )
    }

    pub async fn create_deployment(&self, mut r: DeploymentRecord) -> Result<Deployment, RepoError> {
        r.deployment.rev = 1;
        let mut writes = vec![Write::put(Self::deployment_item(&r), Cond::NotExists), Self::envcap_write(&r)];
        writes.extend(Self::counter_writes(&r, 1));
        self.store.transact(writes).await?;
        Ok(r.deployment)
    }

    /// Saves a changed deployment and moves its fleet counters, all in one transaction.
    pub async fn update_deployment(
        &self,
        before: &DeploymentRecord,
        mut after: DeploymentRecord,
    ) -> Result<Deployment, RepoError> {
        after.deployment.rev = before.deployment.rev + 1;
        let mut writes = vec![Write::put(Self::deployment_item(&after), Cond::Rev(before.deployment.rev))];
        let moved = (before.deployment.status, before.owner_id.as_str())
            != (after.deployment.status, after.owner_id.as_str());
        if moved {
            writes.extend(Self::counter_writes(before, -1));
            writes.extend(Self::counter_writes(&after, 1));
        }
        self.store.transact(writes).await?;
        Ok(after.deployment)
    }

    pub async fn deployment(&self, id: &Id) -> Result<DeploymentRecord, RepoError> {
        let item = self.store.get(&keys::deployment(id.as_str()), "DEP").await?.ok_or(RepoError::NotFound)?;
        from_item(&item)
    }

    /// A customer's deployments, optionally of one environment.
    pub async fn deployments_by_customer(
        &self,
        customer: &Id,
        env: Option<EnvironmentName>,
        limit: usize,
        after: Option<&str>,
    ) -> Result<Page<DeploymentRecord>, RepoError> {
        let prefix = env.map(|e| format!("{}#", e.as_str())).unwrap_or_default();
        let q = Query::index(keys::GSI1, keys::customer(customer.as_str())).prefix(prefix);
        page(self.store.query(resume(q.limit(limit), after)?).await?)
    }

    // --- operations ---

    fn operation_item(o: &Operation) -> Item {
        let mut item =
            Item::new(keys::deployment(o.deployment_id.as_str()), format!("OP#{}", o.id), o.rev, to_json(o))
                .with_index(keys::GSI1, format!("OP#{}", o.id), "OP");
        // Active operations are in one of two queues: the workers' (`OPS#WORK`) and the users'
        // (`OPS#WAIT`: approvals and previews), so workers never page past waiting ones.
        if o.state.is_active() {
            let queue = if crate::domain::lifecycle::is_worker_state(o.state) {
                keys::OPS_WORK
            } else {
                keys::OPS_WAIT
            };
            item = item.with_index(keys::GSI2, queue, o.id.to_string());
        }
        item
    }

    /// Stores an operation as it is (demo and imported history); an active one holds its
    /// deployment like any other.
    pub async fn create_operation(&self, mut o: Operation) -> Result<Operation, RepoError> {
        o.rev = 1;
        let mut writes = vec![Write::put(Self::operation_item(&o), Cond::NotExists)];
        if o.state.is_active() {
            writes.push(Self::lock_write(&o.deployment_id, &o.id));
        }
        self.store.transact(writes).await?;
        Ok(o)
    }

    pub async fn operation(&self, id: &Id) -> Result<Operation, RepoError> {
        let p = self.store.query(Query::index(keys::GSI1, format!("OP#{id}")).limit(1)).await?;
        p.items.first().map(from_item).transpose()?.ok_or(RepoError::NotFound)
    }

    /// A deployment's operations, newest first.
    pub async fn operations(
        &self,
        deployment: &Id,
        limit: usize,
        after: Option<&str>,
    ) -> Result<Page<Operation>, RepoError> {
        let q = Query::table(keys::deployment(deployment.as_str())).prefix("OP#").descending();
        page(self.store.query(resume(q.limit(limit), after)?).await?)
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

    /// Loads one customer with its environments, deployments and operations in one transaction
    /// (bulk loading: the scale data set). Fleet counters are summed per key first, since a
    /// transaction touches each item once. `false`: the customer existed already, nothing written.
    pub async fn import_customer(
        &self,
        customer: &Customer,
        environments: &[Environment],
        deployments: &[DeploymentRecord],
        operations: &[Operation],
    ) -> Result<bool, RepoError> {
        // The history first (rewriting it is harmless), so an interrupted import that left it
        // without its customer completes when run again.
        for chunk in operations.chunks(super::store::MAX_TRANSACTION_ITEMS / 2) {
            let mut writes = Vec::new();
            for o in chunk {
                writes.push(Write::put(Self::operation_item(o), Cond::None));
                if o.state.is_active() {
                    let mut lock = Self::lock_write(&o.deployment_id, &o.id);
                    if let Write::Put { cond, .. } = &mut lock {
                        *cond = Cond::None;
                    }
                    writes.push(lock);
                }
            }
            self.store.transact(writes).await?;
        }
        let mut writes = vec![Write::put(Self::customer_item(customer), Cond::NotExists)];
        writes.push(Write::put(
            Item::new(format!("CUSTSLUG#{}", customer.slug), "CUSTSLUG", 1, customer.id.to_string()),
            Cond::NotExists,
        ));
        writes.extend(environments.iter().map(|e| Write::put(Self::environment_item(e), Cond::NotExists)));
        let mut deltas = std::collections::BTreeMap::<(String, String), i64>::new();
        for r in deployments {
            writes.push(Write::put(Self::deployment_item(r), Cond::NotExists));
            writes.push(Self::envcap_write(r));
            for w in Self::counter_writes(r, 1) {
                if let Write::Add { pk, sk, delta } = w {
                    *deltas.entry((pk, sk)).or_default() += delta;
                }
            }
        }
        writes.extend(deltas.into_iter().map(|((pk, sk), delta)| Write::Add { pk, sk, delta }));
        match self.store.transact(writes).await {
            Ok(()) => Ok(true),
            Err(StoreError::Conflict { index: 0 }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Puts a record back under its own revision (a migration rewriting its layout): `false`
    /// when it changed meanwhile, and whoever changed it wrote the new layout already.
    async fn rewrite(&self, item: Item, rev: u64) -> Result<bool, RepoError> {
        match self.store.transact(vec![Write::put(item, Cond::Rev(rev))]).await {
            Ok(()) => Ok(true),
            Err(StoreError::Conflict { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Every customer's id, all pages (migrations only).
    async fn all_customer_ids(&self) -> Result<Vec<Id>, RepoError> {
        let mut ids = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let customers = self.customers(None, 200, cursor.as_deref()).await?;
            ids.extend(customers.items.into_iter().map(|c| c.id));
            match customers.next_cursor {
                Some(c) => cursor = Some(c),
                None => return Ok(ids),
            }
        }
    }

    /// Brings a store written by an older layout up to date (from version `from`); idempotent,
    /// so an interrupted migration simply runs again at the next start.
    pub async fn migrate(&self, from: u64) -> Result<usize, RepoError> {
        let mut touched = 0;
        if from < 2 {
            // v2 added the `DEPS` index: rewrite every deployment (same revision) to index it.
            for c in self.all_customer_ids().await? {
                for r in self.deployments_by_customer(&c, None, 1000, None).await?.items {
                    touched += usize::from(self.rewrite(Self::deployment_item(&r), r.deployment.rev).await?);
                }
            }
        }
        if from < 3 {
            // v3 split the active operations into the workers' and the users' queues.
            loop {
                let p = self.store.query(Query::index(keys::GSI2, "OPS#ACTIVE").limit(100)).await?;
                if p.items.is_empty() {
                    break;
                }
                for item in &p.items {
                    let o: Operation = from_item(item)?;
                    self.rewrite(Self::operation_item(&o), o.rev).await?;
                    touched += 1;
                }
            }
        }
        if from < 5 {
            // v5 indexed environments by account (one (account, role) pair per customer).
            for c in self.all_customer_ids().await? {
                for e in self.environments(&c).await? {
                    touched += usize::from(self.rewrite(Self::environment_item(&e), e.rev).await?);
                }
            }
        }
        Ok(touched)
    }

    /// Passes every deployment's parameter sets (current and previous) and every operation's
    /// through `f`, and writes back what it changed (a migration of sealed values: `f` answers
    /// `None` to leave a set alone). Records keep their revision; one changed meanwhile was
    /// written by current code and is skipped. Idempotent.
    pub async fn rewrite_parameters(
        &self,
        f: impl Fn(
            &std::collections::BTreeMap<String, String>,
            &Id,
        ) -> Option<std::collections::BTreeMap<String, String>>,
    ) -> Result<usize, RepoError> {
        let mut touched = 0;
        let mut cursor: Option<String> = None;
        loop {
            let deployments = self.all_deployments(200, cursor.as_deref()).await?;
            for mut r in deployments.items {
                let id = r.deployment.id.clone();
                let current = f(&r.deployment.parameters, &id);
                let previous = f(&r.deployment.previous_parameters, &id);
                if current.is_some() || previous.is_some() {
                    if let Some(p) = current {
                        r.deployment.parameters = p;
                    }
                    if let Some(p) = previous {
                        r.deployment.previous_parameters = p;
                    }
                    touched += usize::from(self.rewrite(Self::deployment_item(&r), r.deployment.rev).await?);
                }
                let mut after: Option<String> = None;
                loop {
                    let ops = self.operations(&id, 200, after.as_deref()).await?;
                    for mut o in ops.items {
                        if let Some(p) = f(&o.parameters, &id) {
                            o.parameters = p;
                            touched += usize::from(self.rewrite(Self::operation_item(&o), o.rev).await?);
                        }
                    }
                    match ops.next_cursor {
                        Some(c) => after = Some(c),
                        None => break,
                    }
                }
            }
            match deployments.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        Ok(touched)
    }

    // --- fleet summary ---

    /// Deployment counts by (capability, environment, status): everyone's (`None`) or the given
    /// owners' summed. Reads counters, never deployments.
    pub async fn fleet_counts(
        &self,
        owners: Option<&[Id]>,
    ) -> Result<Vec<(String, EnvironmentName, DeploymentStatus, i64)>, RepoError> {
        let partitions: Vec<String> = match owners {
            None => vec![keys::summary_all()],
            Some(ids) => ids.iter().map(|o| keys::summary_owner(o.as_str())).collect(),
        };
        let mut totals = std::collections::BTreeMap::<String, i64>::new();
        for pk in partitions {
            let mut after = None;
            loop {
                let p = self.store.query(Query::table(pk.clone()).limit(1000).after(after)).await?;
                for item in &p.items {
                    *totals.entry(item.sk.clone()).or_default() += item.n;
                }
                match p.next {
                    Some(c) => after = Some(c),
                    None => break,
                }
            }
        }
        let mut out = Vec::new();
        for (sk, n) in totals {
            let mut parts = sk.rsplitn(3, '#');
            let (Some(status), Some(env), Some(cap)) = (parts.next(), parts.next(), parts.next()) else {
                continue;
            };
            let status =
                crate::domain::lifecycle::DeploymentStatus::ALL.into_iter().find(|s| s.as_str() == status);
            if let (Some(status), Some(env)) = (status, EnvironmentName::parse(env))
                && n != 0
            {
                out.push((cap.to_string(), env, status, n));
            }
        }
        Ok(out)
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
