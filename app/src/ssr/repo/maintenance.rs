//! Keeping the store's data current: bulk import of a customer with its history (the scale data
//! set), and the migrations from older layouts, each idempotent.

use std::collections::BTreeMap;

use crate::domain::{
    ids::Id,
    model::{Customer, Environment, Operation},
};

use super::{
    super::store::{self, Cond, Item, Query, StoreError, Write, keys},
    DeploymentRecord, Repo, RepoError, from_item,
};

impl Repo {
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
        for chunk in operations.chunks(store::MAX_TRANSACTION_ITEMS / 2) {
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
            Item::new(keys::customer_slug(&customer.slug), keys::sk::SLUG, 1, customer.id.to_string()),
            Cond::NotExists,
        ));
        writes.extend(environments.iter().map(|e| Write::put(Self::environment_item(e), Cond::NotExists)));
        let mut deltas = BTreeMap::<(String, String), i64>::new();
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
    pub(super) async fn rewrite(&self, item: Item, rev: u64) -> Result<bool, RepoError> {
        match self.store.transact(vec![Write::put(item, Cond::Rev(rev))]).await {
            Ok(()) => Ok(true),
            Err(StoreError::Conflict { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Every customer's id, all pages (migrations only).
    pub(super) async fn all_customer_ids(&self) -> Result<Vec<Id>, RepoError> {
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
                let p =
                    self.store.query(Query::index(keys::GSI2, keys::OPS_ACTIVE_BEFORE_V3).limit(100)).await?;
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
        f: impl Fn(&BTreeMap<String, String>, &Id) -> Option<BTreeMap<String, String>>,
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
}
