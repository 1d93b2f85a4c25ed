//! Operations as the lifecycle engine writes them: started together with their deployment's
//! lock (one operation at a time per deployment) and an optional idempotency key, claimed by a
//! worker with a lease (a conditional write), and finished together with the deployment they
//! changed and the release of the lock.
//! (Their keys, with the lock, idempotency and stack-event records: `store::keys`.)

use crate::domain::{
    ids::Id,
    model::{Operation, Page},
    stacks::StackEvent,
    views::Notification,
};

use super::{
    super::store::{Cond, Item, Query, StoreError, Write, keys},
    DeploymentRecord, Repo, RepoError, from_item, page, resume, to_json,
};

/// Why an operation could not start.
#[derive(Debug)]
pub enum StartError {
    /// Another operation holds the deployment (its id).
    Busy(Option<Id>),
    /// The environment already has this capability (the existing deployment's id).
    AlreadyDeployed(Option<Id>),
    /// The idempotency key was used before: the operation it started.
    Repeated(Id),
    Repo(RepoError),
}

impl From<RepoError> for StartError {
    fn from(e: RepoError) -> Self {
        StartError::Repo(e)
    }
}

fn lock_key(deployment: &Id) -> (String, String) {
    (keys::deployment(deployment.as_str()), keys::sk::LOCK.into())
}

fn envcap_key(environment: &Id, capability: &str) -> (String, String) {
    (keys::envcap(environment, capability), keys::sk::ENVCAP.into())
}

fn idem_key(user: &Id, key: &str) -> (String, String) {
    (keys::idempotency(user, key), keys::sk::IDEMPOTENCY.into())
}

impl Repo {
    pub(super) fn operation_item(o: &Operation) -> Item {
        let mut item =
            Item::new(keys::deployment(o.deployment_id.as_str()), keys::operation(&o.id), o.rev, to_json(o))
                .with_index(keys::GSI1, keys::operation(&o.id), keys::sk::OPERATION_BY_ID);
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
        let p = self.store.query(Query::index(keys::GSI1, keys::operation(id)).limit(1)).await?;
        p.items.first().map(from_item).transpose()?.ok_or(RepoError::NotFound)
    }

    /// A deployment's operations, newest first.
    pub async fn operations(
        &self,
        deployment: &Id,
        limit: usize,
        after: Option<&str>,
    ) -> Result<Page<Operation>, RepoError> {
        let q =
            Query::table(keys::deployment(deployment.as_str())).prefix(keys::OPERATION_PREFIX).descending();
        page(self.store.query(resume(q.limit(limit), after)?).await?)
    }

    /// The write that holds `deployment` for operation `op` while it is active.
    pub(super) fn lock_write(deployment: &Id, op: &Id) -> Write {
        let (pk, sk) = lock_key(deployment);
        Write::put(Item::new(pk, sk, 1, op.to_string()), Cond::NotExists)
    }

    /// Stores a new operation, holding its deployment; `new_deployment` is created with it (a
    /// first deploy), `idempotency` remembers the request's key. All or nothing.
    pub async fn start_operation(
        &self,
        op: Operation,
        new_deployment: Option<&DeploymentRecord>,
        idempotency: Option<&str>,
    ) -> Result<Operation, StartError> {
        self.start_operation_with(op, new_deployment, idempotency, Vec::new()).await
    }

    /// [`Repo::start_operation`] with `extra` writes in the same transaction (a rollout marks
    /// its deployment running with the operation); a conflict on them answers
    /// [`RepoError::Conflict`].
    pub(super) async fn start_operation_with(
        &self,
        mut op: Operation,
        new_deployment: Option<&DeploymentRecord>,
        idempotency: Option<&str>,
        extra: Vec<Write>,
    ) -> Result<Operation, StartError> {
        op.rev = 1;
        let mut writes = Vec::new();
        let mut envcap_at = None;
        if let Some(r) = new_deployment {
            let mut r = r.clone();
            r.deployment.rev = 1;
            let (pk, sk) = envcap_key(&r.deployment.environment_id, &r.deployment.capability);
            envcap_at = Some(writes.len());
            writes.push(Write::put(Item::new(pk, sk, 1, r.deployment.id.to_string()), Cond::NotExists));
            writes.push(Write::put(Self::deployment_item(&r), Cond::NotExists));
            writes.extend(Self::counter_writes(&r, 1));
        }
        let lock_at = writes.len();
        writes.push(Self::lock_write(&op.deployment_id, &op.id));
        writes.push(Write::put(Self::operation_item(&op), Cond::NotExists));
        let idem_at = writes.len();
        if let Some(key) = idempotency {
            let (pk, sk) = idem_key(&op.requested_by, key);
            writes.push(Write::put(Item::new(pk, sk, 1, op.id.to_string()), Cond::NotExists));
        }
        let extra_at = writes.len();
        writes.extend(extra);
        match self.store.transact(writes).await {
            Ok(()) => Ok(op),
            Err(StoreError::Conflict { index }) if index >= extra_at => {
                Err(StartError::Repo(RepoError::Conflict("the rollout's deployment changed".into())))
            }
            Err(StoreError::Conflict { index }) if Some(index) == envcap_at => {
                let r = new_deployment.expect("set with envcap_at");
                let (pk, sk) = envcap_key(&r.deployment.environment_id, &r.deployment.capability);
                let existing = self.store.get(&pk, &sk).await.map_err(RepoError::from)?;
                Err(StartError::AlreadyDeployed(existing.and_then(|i| Id::parse(&i.data).ok())))
            }
            Err(StoreError::Conflict { index }) if index == lock_at => {
                Err(StartError::Busy(self.lock_holder(&op.deployment_id).await?))
            }
            Err(StoreError::Conflict { index }) if idempotency.is_some() && index == idem_at => {
                let (pk, sk) = idem_key(&op.requested_by, idempotency.unwrap_or_default());
                match self.store.get(&pk, &sk).await.map_err(RepoError::from)? {
                    Some(item) => Err(StartError::Repeated(Id::parse(&item.data).map_err(|_| {
                        RepoError::Store(StoreError::Corrupt(format!("{pk}: not an operation id")))
                    })?)),
                    None => Err(StartError::Repo(RepoError::Conflict("retry the request".into()))),
                }
            }
            Err(e) => Err(StartError::Repo(e.into())),
        }
    }

    /// The operation holding a deployment, if any.
    pub async fn lock_holder(&self, deployment: &Id) -> Result<Option<Id>, RepoError> {
        let (pk, sk) = lock_key(deployment);
        Ok(self.store.get(&pk, &sk).await?.and_then(|i| Id::parse(&i.data).ok()))
    }

    /// The operation an idempotency key started, if it was used.
    pub async fn idempotent_operation(&self, user: &Id, key: &str) -> Result<Option<Id>, RepoError> {
        let (pk, sk) = idem_key(user, key);
        Ok(self.store.get(&pk, &sk).await?.and_then(|i| Id::parse(&i.data).ok()))
    }

    /// The deployment of `capability` in an environment, if one was ever made.
    pub async fn deployment_in(&self, environment: &Id, capability: &str) -> Result<Option<Id>, RepoError> {
        let (pk, sk) = envcap_key(environment, capability);
        Ok(self.store.get(&pk, &sk).await?.and_then(|i| Id::parse(&i.data).ok()))
    }

    /// Saves an operation read at `op.rev` (bumped here). A stale revision means another
    /// worker or user changed it: the caller lets go.
    pub async fn save_operation(&self, op: &mut Operation) -> Result<(), RepoError> {
        let read_at = op.rev;
        op.rev += 1;
        let res = self.store.transact(vec![Write::put(Self::operation_item(op), Cond::Rev(read_at))]).await;
        if res.is_err() {
            op.rev = read_at;
        }
        Ok(res?)
    }

    /// Ends an operation: the operation (at its revision), the deployment it changed (at the
    /// revision `before` was read at; `None` leaves the deployment as is) and the lock release,
    /// in one transaction.
    pub async fn finish_operation(
        &self,
        op: &mut Operation,
        deployment: Option<(&DeploymentRecord, DeploymentRecord)>,
    ) -> Result<(), RepoError> {
        let read_at = op.rev;
        op.rev += 1;
        let (lpk, lsk) = lock_key(&op.deployment_id);
        let mut writes = vec![
            Write::put(Self::operation_item(op), Cond::Rev(read_at)),
            Write::Delete { pk: lpk, sk: lsk, cond: Cond::None },
        ];
        if let Some((before, mut after)) = deployment {
            after.deployment.rev = before.deployment.rev + 1;
            writes.push(Write::put(Self::deployment_item(&after), Cond::Rev(before.deployment.rev)));
            if (before.deployment.status, &before.owner_id) != (after.deployment.status, &after.owner_id) {
                writes.extend(Self::counter_writes(before, -1));
                writes.extend(Self::counter_writes(&after, 1));
            }
        }
        let res = self.store.transact(writes).await;
        if res.is_err() {
            op.rev = read_at;
        }
        Ok(res?)
    }

    /// Operations a worker has to move on (queued, creating a change set, executing), oldest first.
    pub async fn work_queue(&self, limit: usize) -> Result<Vec<Operation>, RepoError> {
        let p = self.store.query(Query::index(keys::GSI2, keys::OPS_WORK).limit(limit)).await?;
        p.items.iter().map(from_item).collect()
    }

    /// Operations waiting for a user (approvals, previews), oldest first.
    pub async fn waiting_operations(&self, limit: usize) -> Result<Vec<Operation>, RepoError> {
        let p = self.store.query(Query::index(keys::GSI2, keys::OPS_WAIT).limit(limit)).await?;
        p.items.iter().map(from_item).collect()
    }

    /// Adds a state change to the feed of the customer's owner and to everyone's (Executives').
    pub async fn put_notification(&self, owner: &Id, n: &Notification) -> Result<(), RepoError> {
        let sk = keys::notification(n.at, &n.operation_id, n.state);
        let writes = [keys::notifications(Some(owner)), keys::notifications(None)]
            .into_iter()
            .map(|pk| Write::put(Item::new(pk, sk.clone(), 1, to_json(n)), Cond::None))
            .collect();
        Ok(self.store.transact(writes).await?)
    }

    /// The newest `limit` notifications of these owners' customers (`None`: everyone's).
    pub async fn notifications(
        &self,
        owners: Option<&[Id]>,
        limit: usize,
    ) -> Result<Vec<Notification>, RepoError> {
        let partitions: Vec<String> = match owners {
            None => vec![keys::notifications(None)],
            Some(owners) => owners.iter().map(|o| keys::notifications(Some(o))).collect(),
        };
        let mut all = Vec::new();
        for pk in partitions {
            let p = self.store.query(Query::table(pk).descending().limit(limit)).await?;
            for item in &p.items {
                all.push(from_item::<Notification>(item)?);
            }
        }
        all.sort_by(|a, b| {
            b.at.cmp(&a.at).then_with(|| b.operation_id.as_str().cmp(a.operation_id.as_str()))
        });
        all.truncate(limit);
        Ok(all)
    }

    /// Every deployment, a page at a time (the reconciler's walk; one index partition).
    pub async fn all_deployments(
        &self,
        limit: usize,
        after: Option<&str>,
    ) -> Result<crate::domain::model::Page<DeploymentRecord>, RepoError> {
        let q = super::resume(Query::index(keys::GSI5, keys::DEPLOYMENTS).limit(limit), after)?;
        super::page(self.store.query(q).await?)
    }

    /// Records stack events of an operation (again is harmless: same keys, same content).
    pub async fn put_stack_events(&self, op: &Id, events: &[StackEvent]) -> Result<(), RepoError> {
        for chunk in events.chunks(super::super::store::MAX_TRANSACTION_ITEMS) {
            let writes = chunk
                .iter()
                .map(|e| {
                    let sk = keys::stack_event(e.timestamp, &e.event_id);
                    Write::put(Item::new(keys::stack_events(op), sk, 1, to_json(e)), Cond::None)
                })
                .collect();
            self.store.transact(writes).await?;
        }
        Ok(())
    }

    /// An operation's stack events, oldest first.
    pub async fn stack_events(&self, op: &Id) -> Result<Vec<StackEvent>, RepoError> {
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let p = self.store.query(Query::table(keys::stack_events(op)).limit(500).after(after)).await?;
            for item in &p.items {
                out.push(from_item(item)?);
            }
            match p.next {
                Some(c) => after = Some(c),
                None => return Ok(out),
            }
        }
    }
}
