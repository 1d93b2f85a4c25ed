//! Rollouts as the store keeps them: a header (with a lease, like an operation's), one record
//! per deployment, progress counters per wave and state moved in the same transaction as the
//! record they count, and a holder record per deployment so that one deployment is in at most
//! one active rollout. A deployment's operation is started in the same transaction that marks
//! its record running: a crash or a second scheduler cannot start two.
//! (Their keys: `store::keys`.)

use std::collections::{BTreeMap, HashMap};

use crate::domain::{
    ids::Id,
    model::{Operation, Page},
    rollout::ItemState,
    rollout_record::{Rollout, RolloutItem, WaveCounts},
};

use super::{
    super::store::{Cond, Item, Query, StoreError, Write, keys},
    Repo, RepoError, StartError, from_item, page, resume, to_json,
};

/// Deployments written per transaction when a rollout is created: each is its record and its
/// holder, plus at most one counter per wave.
pub const ITEMS_PER_BATCH: usize = 32;

/// Why a batch of a rollout's deployments could not be stored.
#[derive(Debug)]
pub enum HoldError {
    /// Another active rollout holds this deployment (its id).
    Held {
        deployment: Id,
        rollout: Id,
    },
    Repo(RepoError),
}

impl From<RepoError> for HoldError {
    fn from(e: RepoError) -> Self {
        HoldError::Repo(e)
    }
}

fn holder_key(deployment: &Id) -> (String, String) {
    (keys::rollout_holder(deployment), keys::sk::ROLLOUT_HOLD.into())
}

impl Repo {
    fn rollout_record(r: &Rollout) -> Item {
        let mut item = Item::new(keys::rollout(&r.id), keys::ROLLOUT_HEADER, r.rev, to_json(r)).with_index(
            keys::GSI1,
            keys::ROLLOUTS,
            r.id.to_string(),
        );
        if r.needs_scheduler() {
            item = item.with_index(keys::GSI2, keys::ROLLOUTS_ACTIVE, r.id.to_string());
        }
        item
    }

    fn rollout_item_record(i: &RolloutItem) -> Item {
        Item::new(
            keys::rollout(&i.rollout_id),
            keys::rollout_item(i.item.wave, &i.item.deployment_id),
            i.rev,
            to_json(i),
        )
    }

    fn count_write(rollout: &Id, wave: u32, state: &ItemState, delta: i64) -> Write {
        Write::Add { pk: keys::rollout(rollout), sk: keys::rollout_count(wave, state.name()), delta }
    }

    /// The first step of creating a rollout: its header, in state `Creating`.
    pub async fn begin_rollout(&self, r: &Rollout) -> Result<(), RepoError> {
        Ok(self.store.transact(vec![Write::put(Self::rollout_record(r), Cond::NotExists)]).await?)
    }

    /// Stores up to [`ITEMS_PER_BATCH`] deployments of a rollout being created, each with its
    /// holder. A holder left by a rollout that is no longer active is taken over.
    pub async fn add_rollout_items(&self, items: &[RolloutItem]) -> Result<(), HoldError> {
        assert!(items.len() <= ITEMS_PER_BATCH, "a batch holds at most {ITEMS_PER_BATCH} deployments");
        let Some(first) = items.first() else { return Ok(()) };
        let rollout = first.rollout_id.clone();
        // A stale holder (its rollout ended, the release cut short) is replaced at its revision.
        let mut stale: HashMap<Id, u64> = HashMap::new();
        loop {
            let mut writes = Vec::with_capacity(items.len() * 2 + 4);
            let mut waiting: BTreeMap<u32, i64> = BTreeMap::new();
            for i in items {
                writes.push(Write::put(Self::rollout_item_record(i), Cond::NotExists));
                let (pk, sk) = holder_key(&i.item.deployment_id);
                let cond = match stale.get(&i.item.deployment_id) {
                    Some(rev) => Cond::Rev(*rev),
                    None => Cond::NotExists,
                };
                let rev = stale.get(&i.item.deployment_id).map_or(1, |r| r + 1);
                writes.push(Write::put(Item::new(pk, sk, rev, rollout.to_string()), cond));
                *waiting.entry(i.item.wave).or_default() += 1;
            }
            for (wave, n) in waiting {
                writes.push(Self::count_write(&rollout, wave, &ItemState::Waiting, n));
            }
            match self.store.transact(writes).await {
                Ok(()) => return Ok(()),
                Err(StoreError::Conflict { index }) if index < items.len() * 2 && index % 2 == 1 => {
                    let deployment = items[index / 2].item.deployment_id.clone();
                    let (pk, sk) = holder_key(&deployment);
                    let Some(holder) = self.store.get(&pk, &sk).await.map_err(RepoError::from)? else {
                        continue;
                    };
                    let other = Id::parse(&holder.data).map_err(|_| {
                        RepoError::Store(StoreError::Corrupt(format!("{pk}: not a rollout id")))
                    })?;
                    let active = match self.rollout(&other).await {
                        Ok(r) => r.state.is_active(),
                        Err(RepoError::NotFound) => false,
                        Err(e) => return Err(e.into()),
                    };
                    if active || stale.get(&deployment) == Some(&holder.rev) {
                        return Err(HoldError::Held { deployment, rollout: other });
                    }
                    stale.insert(deployment, holder.rev);
                }
                Err(e) => return Err(RepoError::from(e).into()),
            }
        }
    }

    /// Removes what a creation cut short wrote: its deployments, their holders (where they
    /// still name it), its counters and its header.
    pub async fn discard_rollout(&self, id: &Id) -> Result<(), RepoError> {
        let items = self.rollout_items(id).await?;
        for chunk in items.chunks(ITEMS_PER_BATCH) {
            let mut writes = Vec::new();
            for i in chunk {
                let (pk, sk) = holder_key(&i.item.deployment_id);
                if let Some(h) = self.store.get(&pk, &sk).await?
                    && h.data == id.as_str()
                {
                    writes.push(Write::Delete { pk, sk, cond: Cond::Rev(h.rev) });
                }
                let r = Self::rollout_item_record(i);
                writes.push(Write::Delete { pk: r.pk, sk: r.sk, cond: Cond::None });
            }
            self.store.transact(writes).await?;
        }
        let counters = self
            .store
            .query(Query::table(keys::rollout(id)).prefix(keys::ROLLOUT_COUNT_PREFIX).limit(1000))
            .await?;
        let mut writes: Vec<Write> = counters
            .items
            .iter()
            .map(|c| Write::Delete { pk: c.pk.clone(), sk: c.sk.clone(), cond: Cond::None })
            .collect();
        writes.push(Write::Delete {
            pk: keys::rollout(id),
            sk: keys::ROLLOUT_HEADER.into(),
            cond: Cond::None,
        });
        for chunk in writes.chunks(super::super::store::MAX_TRANSACTION_ITEMS) {
            self.store.transact(chunk.to_vec()).await?;
        }
        Ok(())
    }

    pub async fn rollout(&self, id: &Id) -> Result<Rollout, RepoError> {
        match self.store.get(&keys::rollout(id), keys::ROLLOUT_HEADER).await? {
            Some(item) => from_item(&item),
            None => Err(RepoError::NotFound),
        }
    }

    /// Every rollout, newest first.
    pub async fn rollouts(&self, limit: usize, after: Option<&str>) -> Result<Page<Rollout>, RepoError> {
        let q = Query::index(keys::GSI1, keys::ROLLOUTS).descending().limit(limit);
        page(self.store.query(resume(q, after)?).await?)
    }

    /// The rollouts a scheduler has to look at (being created, running, paused, waiting for
    /// approval, cancelled with operations in flight), oldest first.
    pub async fn active_rollouts(&self, limit: usize) -> Result<Vec<Rollout>, RepoError> {
        let p = self.store.query(Query::index(keys::GSI2, keys::ROLLOUTS_ACTIVE).limit(limit)).await?;
        p.items.iter().map(from_item).collect()
    }

    /// A rollout's deployments, by wave.
    pub async fn rollout_items(&self, id: &Id) -> Result<Vec<RolloutItem>, RepoError> {
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let q =
                Query::table(keys::rollout(id)).prefix(keys::ROLLOUT_ITEM_PREFIX).limit(1000).after(after);
            let p = self.store.query(q).await?;
            for item in &p.items {
                out.push(from_item(item)?);
            }
            match p.next {
                Some(c) => after = Some(c),
                None => return Ok(out),
            }
        }
    }

    /// A rollout's progress per wave, from its counters (never its deployments).
    pub async fn rollout_counts(&self, id: &Id) -> Result<Vec<WaveCounts>, RepoError> {
        let q = Query::table(keys::rollout(id)).prefix(keys::ROLLOUT_COUNT_PREFIX).limit(1000);
        let mut by_wave: BTreeMap<u32, WaveCounts> = BTreeMap::new();
        for item in self.store.query(q).await?.items {
            if let Some((wave, state)) = keys::parse_rollout_count(&item.sk) {
                by_wave
                    .entry(wave)
                    .or_insert_with(|| WaveCounts { wave, ..Default::default() })
                    .add(state, item.n);
            }
        }
        Ok(by_wave.into_values().collect())
    }

    /// Saves a rollout's header read at `r.rev` (bumped here); stale: conflict.
    pub async fn save_rollout(&self, r: &mut Rollout) -> Result<(), RepoError> {
        let read_at = r.rev;
        r.rev += 1;
        let res = self.store.transact(vec![Write::put(Self::rollout_record(r), Cond::Rev(read_at))]).await;
        if res.is_err() {
            r.rev = read_at;
        }
        Ok(res?)
    }

    /// Lets go of the deployments of a rollout that ended (a holder naming another rollout is
    /// left alone). Again is harmless.
    pub async fn release_rollout(&self, id: &Id) -> Result<(), RepoError> {
        for chunk in self.rollout_items(id).await?.chunks(ITEMS_PER_BATCH) {
            let mut writes = Vec::new();
            for i in chunk {
                let (pk, sk) = holder_key(&i.item.deployment_id);
                if let Some(h) = self.store.get(&pk, &sk).await?
                    && h.data == id.as_str()
                {
                    writes.push(Write::Delete { pk, sk, cond: Cond::Rev(h.rev) });
                }
            }
            if !writes.is_empty() {
                self.store.transact(writes).await?;
            }
        }
        Ok(())
    }

    /// The active rollout holding each deployment that one holds.
    pub async fn rollout_holders(&self) -> Result<HashMap<Id, Id>, RepoError> {
        let mut held = HashMap::new();
        for r in self.active_rollouts(1000).await?.into_iter().filter(|r| r.state.is_active()) {
            for i in self.rollout_items(&r.id).await? {
                held.insert(i.item.deployment_id, r.id.clone());
            }
        }
        Ok(held)
    }

    /// Moves a deployment of a rollout to `item.item.state` (its counters with it); the
    /// record must still be at the revision it was read at.
    pub async fn save_rollout_item(
        &self,
        before: &ItemState,
        item: &mut RolloutItem,
    ) -> Result<(), RepoError> {
        let writes = self.item_writes(before, item);
        let res = self.store.transact(writes).await;
        if res.is_err() {
            item.rev -= 1;
        }
        Ok(res?)
    }

    /// The item's move from `before` (bumping its revision) and its counters.
    fn item_writes(&self, before: &ItemState, item: &mut RolloutItem) -> Vec<Write> {
        let read_at = item.rev;
        item.rev += 1;
        let mut writes = vec![Write::put(Self::rollout_item_record(item), Cond::Rev(read_at))];
        if before.name() != item.item.state.name() {
            writes.push(Self::count_write(&item.rollout_id, item.item.wave, before, -1));
            writes.push(Self::count_write(&item.rollout_id, item.item.wave, &item.item.state, 1));
        }
        writes
    }

    /// Starts `op` for a waiting deployment of a rollout and marks the deployment running
    /// with it, in one transaction: both happen or neither does.
    pub async fn start_rollout_item(
        &self,
        item: &mut RolloutItem,
        op: Operation,
    ) -> Result<Operation, StartError> {
        let before = item.item.state.clone();
        item.item.state = ItemState::Running { operation_id: op.id.clone() };
        let extra = self.item_writes(&before, item);
        let res = self.start_operation_with(op, None, None, extra).await;
        if res.is_err() {
            item.rev -= 1;
            item.item.state = before;
        }
        res
    }

    /// The last step of creating a rollout: its header leaves `Creating` (in the state `r` now
    /// has), remembering the request's idempotency key. A key used meanwhile answers the
    /// rollout it made, as [`RepoError::Conflict`] carrying its id.
    pub async fn activate_rollout(
        &self,
        r: &mut Rollout,
        idempotency: Option<&str>,
    ) -> Result<(), RepoError> {
        let read_at = r.rev;
        r.rev += 1;
        let mut writes = vec![Write::put(Self::rollout_record(r), Cond::Rev(read_at))];
        if let Some(key) = idempotency {
            let pk = keys::rollout_idempotency(&r.created_by, key);
            writes
                .push(Write::put(Item::new(pk, keys::sk::IDEMPOTENCY, 1, r.id.to_string()), Cond::NotExists));
        }
        match self.store.transact(writes).await {
            Ok(()) => Ok(()),
            Err(StoreError::Conflict { index: 1 }) => {
                r.rev = read_at;
                let earlier = self.idempotent_rollout(&r.created_by, idempotency.unwrap_or_default()).await?;
                Err(RepoError::Conflict(earlier.map(|id| id.to_string()).unwrap_or_default()))
            }
            Err(e) => {
                r.rev = read_at;
                Err(e.into())
            }
        }
    }

    /// The rollout an idempotency key created, if it was used.
    pub async fn idempotent_rollout(&self, user: &Id, key: &str) -> Result<Option<Id>, RepoError> {
        let pk = keys::rollout_idempotency(user, key);
        Ok(self.store.get(&pk, keys::sk::IDEMPOTENCY).await?.and_then(|i| Id::parse(&i.data).ok()))
    }
}
