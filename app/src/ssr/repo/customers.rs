//! Customers (their unique slug, their owner, and moving their deployments with a new owner)
//! and their environments (one per name, found by id or by the AWS account they point at).

use std::collections::BTreeMap;

use crate::domain::{
    ids::Id,
    model::{Customer, Environment, Page},
};

use super::{
    super::store::{Cond, Item, Query, StoreError, Write, keys},
    DeploymentRecord, Repo, RepoError, from_item, page, resume, to_json,
};

impl Repo {
    pub(super) fn customer_item(c: &Customer) -> Item {
        let order = keys::customer_order(&c.name, &c.id);
        Item::new(keys::customer(c.id.as_str()), keys::sk::CUSTOMER, c.rev, to_json(c))
            .with_index(keys::GSI1, keys::CUSTOMERS, order.clone())
            .with_index(keys::GSI2, keys::owner(c.owner_id.as_str()), order)
    }

    /// Creates a customer; its slug (part of stack names) is unique.
    pub async fn create_customer(&self, mut c: Customer) -> Result<Customer, RepoError> {
        c.rev = 1;
        let slug = Item::new(keys::customer_slug(&c.slug), keys::sk::SLUG, 1, c.id.to_string());
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
        let mut deltas = BTreeMap::<(String, String), i64>::new();
        for before in moved {
            let mut after = before.clone();
            after.owner_id = c.owner_id.clone();
            after.deployment.rev += 1;
            writes.push(Write::put(Self::deployment_item(&after), Cond::Rev(before.deployment.rev)));
            let d = &before.deployment;
            let sk = keys::fleet_counter(&d.capability, d.environment, d.status);
            *deltas.entry((keys::summary_owner(before.owner_id.as_str()), sk.clone())).or_default() -= 1;
            *deltas.entry((keys::summary_owner(c.owner_id.as_str()), sk)).or_default() += 1;
        }
        writes.extend(
            deltas.into_iter().filter(|(_, delta)| *delta != 0).map(|((pk, sk), delta)| Write::Add {
                pk,
                sk,
                delta,
            }),
        );
        if writes.len() > super::CHANGE_WRITES {
            return Err(RepoError::Conflict(format!(
                "the customer has too many deployments ({}) to move to another owner at once",
                moved.len()
            )));
        }
        self.store.transact(writes).await?;
        Ok(c)
    }

    pub async fn customer(&self, id: &Id) -> Result<Customer, RepoError> {
        let item = self
            .store
            .get(&keys::customer(id.as_str()), keys::sk::CUSTOMER)
            .await?
            .ok_or(RepoError::NotFound)?;
        from_item(&item)
    }

    /// The customer a slug belongs to (stack names carry slugs, not ids).
    pub async fn customer_by_slug(&self, slug: &str) -> Result<Customer, RepoError> {
        let item =
            self.store.get(&keys::customer_slug(slug), keys::sk::SLUG).await?.ok_or(RepoError::NotFound)?;
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
            None => Query::index(keys::GSI1, keys::CUSTOMERS),
            Some(o) => Query::index(keys::GSI2, keys::owner(o.as_str())),
        };
        page(self.store.query(resume(q.limit(limit), after)?).await?)
    }

    /// The customers of `owners` (none: everyone's) that `keep` accepts, a page at a time, by
    /// name within each owner.
    pub async fn customers_matching(
        &self,
        owners: Option<&[Id]>,
        keep: impl Fn(&Customer) -> bool,
        limit: usize,
        after: Option<&str>,
    ) -> Result<Page<Customer>, RepoError> {
        let queries: Vec<Query> = match owners {
            None => vec![Query::index(keys::GSI1, keys::CUSTOMERS)],
            Some(owners) => {
                owners.iter().map(|o| Query::index(keys::GSI2, keys::owner(o.as_str()))).collect()
            }
        };
        self.query_many(&queries, keep, limit, after).await
    }

    pub(super) fn environment_item(e: &Environment) -> Item {
        Item::new(keys::customer(e.customer_id.as_str()), keys::environment(e.name), e.rev, to_json(e))
            .with_index(keys::GSI1, keys::environment_id(&e.id), keys::sk::ENVIRONMENT_BY_ID)
            .with_index(keys::GSI2, keys::account(&e.account_id), keys::account_order(&e.customer_id, e.name))
    }

    /// One environment per name per customer.
    pub async fn create_environment(&self, mut e: Environment) -> Result<Environment, RepoError> {
        e.rev = 1;
        self.store
            .transact(vec![
                Write::Check {
                    pk: keys::customer(e.customer_id.as_str()),
                    sk: keys::sk::CUSTOMER.into(),
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
        let p = self
            .store
            .query(Query::table(keys::customer(customer.as_str())).prefix(keys::ENVIRONMENT_PREFIX))
            .await?;
        Ok(page(p)?.items)
    }

    /// Every environment, of any customer, that points at this AWS account.
    pub async fn environments_in_account(&self, account: &str) -> Result<Vec<Environment>, RepoError> {
        let p = self.store.query(Query::index(keys::GSI2, keys::account(account)).limit(100)).await?;
        Ok(page(p)?.items)
    }

    pub async fn environment(&self, id: &Id) -> Result<Environment, RepoError> {
        let p = self.store.query(Query::index(keys::GSI1, keys::environment_id(id)).limit(1)).await?;
        p.items.first().map(from_item).transpose()?.ok_or(RepoError::NotFound)
    }
}
