//! Deployments, and the fleet counters kept in the same transaction as the deployments they
//! count (so the dashboard's summary never reads 15,000 deployments).

use std::collections::BTreeMap;

use crate::domain::{
    ids::Id,
    lifecycle::DeploymentStatus,
    model::{Deployment, EnvironmentName, Page},
};

use super::{
    super::store::{Cond, Item, Query, Write, keys},
    DeploymentRecord, Repo, RepoError, from_item, page, resume, to_json,
};

/// Which deployments a list asks for (`GET /deployments` filters).
#[derive(Clone, Debug, Default)]
pub struct DeploymentFilter {
    pub customer: Option<Id>,
    pub environment: Option<EnvironmentName>,
    pub capability: Option<String>,
    pub status: Option<DeploymentStatus>,
}

impl DeploymentFilter {
    fn accepts(&self, d: &Deployment) -> bool {
        self.status.is_none_or(|s| d.status == s)
            && self.capability.as_ref().is_none_or(|c| &d.capability == c)
            && self.environment.is_none_or(|e| d.environment == e)
            && self.customer.as_ref().is_none_or(|c| &d.customer_id == c)
    }

    /// The partitions that answer the filter for customers of `owners` (none: everyone's),
    /// each read from the `<env>#<capability>#` prefix they share. Each filter combination is
    /// one index partition (or, for a Sales Manager, their team's Reps' partitions one after
    /// another); what a partition cannot express is checked on the records read, never by a Scan.
    fn queries(&self, owners: Option<&[Id]>) -> Vec<Query> {
        let env_cap = keys::environment_capability_prefix(self.environment, self.capability.as_deref());
        if let Some(c) = &self.customer {
            return vec![Query::index(keys::GSI1, keys::customer(c.as_str())).prefix(env_cap)];
        }
        match owners {
            Some(owners) => owners
                .iter()
                .map(|o| Query::index(keys::GSI4, keys::owner(o.as_str())).prefix(env_cap.clone()))
                .collect(),
            None => match (self.status, &self.capability) {
                (Some(s), _) => vec![Query::index(keys::GSI3, keys::status(s)).prefix(env_cap)],
                (None, Some(c)) => vec![
                    Query::index(keys::GSI2, keys::capability(c))
                        .prefix(keys::environment_prefix(self.environment)),
                ],
                (None, None) => vec![Query::index(keys::GSI5, keys::DEPLOYMENTS).prefix(env_cap)],
            },
        }
    }
}

impl Repo {
    pub(super) fn deployment_item(r: &DeploymentRecord) -> Item {
        let d = &r.deployment;
        let order = keys::deployment_order(d.environment, &d.capability, &d.id);
        Item::new(keys::deployment(d.id.as_str()), keys::sk::DEPLOYMENT, d.rev, to_json(r))
            .with_index(keys::GSI1, keys::customer(d.customer_id.as_str()), order.clone())
            .with_index(
                keys::GSI2,
                keys::capability(&d.capability),
                keys::deployment_status_order(d.environment, d.status, &d.id),
            )
            .with_index(keys::GSI3, keys::status(d.status), order.clone())
            .with_index(keys::GSI4, keys::owner(r.owner_id.as_str()), order.clone())
            .with_index(keys::GSI5, keys::DEPLOYMENTS, order)
    }

    pub(super) fn counter_writes(r: &DeploymentRecord, delta: i64) -> [Write; 2] {
        let d = &r.deployment;
        let sk = keys::fleet_counter(&d.capability, d.environment, d.status);
        [
            Write::Add { pk: keys::summary_all(), sk: sk.clone(), delta },
            Write::Add { pk: keys::summary_owner(r.owner_id.as_str()), sk, delta },
        ]
    }

    /// The record that keeps one deployment per environment and capability.
    pub(super) fn envcap_write(r: &DeploymentRecord) -> Write {
        let d = &r.deployment;
        Write::put(
            Item::new(keys::envcap(&d.environment_id, &d.capability), keys::sk::ENVCAP, 1, d.id.to_string()),
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
        let item = self
            .store
            .get(&keys::deployment(id.as_str()), keys::sk::DEPLOYMENT)
            .await?
            .ok_or(RepoError::NotFound)?;
        from_item(&item)
    }

    /// The deployments `filter` asks for, of `owners`' customers (none: everyone's) and that
    /// `keep` accepts too, a page at a time.
    pub async fn deployments_matching(
        &self,
        filter: &DeploymentFilter,
        owners: Option<&[Id]>,
        keep: impl Fn(&DeploymentRecord) -> bool,
        limit: usize,
        after: Option<&str>,
    ) -> Result<Page<DeploymentRecord>, RepoError> {
        let queries = filter.queries(owners);
        self.query_many(
            &queries,
            |r: &DeploymentRecord| filter.accepts(&r.deployment) && keep(r),
            limit,
            after,
        )
        .await
    }

    /// A customer's deployments, optionally of one environment.
    pub async fn deployments_by_customer(
        &self,
        customer: &Id,
        env: Option<EnvironmentName>,
        limit: usize,
        after: Option<&str>,
    ) -> Result<Page<DeploymentRecord>, RepoError> {
        let q =
            Query::index(keys::GSI1, keys::customer(customer.as_str())).prefix(keys::environment_prefix(env));
        page(self.store.query(resume(q.limit(limit), after)?).await?)
    }

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
        let mut totals = BTreeMap::<String, i64>::new();
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
            if let Some((capability, env, status)) = keys::parse_fleet_counter(&sk)
                && n != 0
            {
                out.push((capability.to_string(), env, status, n));
            }
        }
        Ok(out)
    }
}
