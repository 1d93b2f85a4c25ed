//! Deployments and operations as users read them, within their scope (the repo answers each
//! filter from the index partitions that hold it: `repo::DeploymentFilter`).

use crate::domain::{
    ids::Id,
    lifecycle::DeploymentStatus,
    model::{EnvironmentName, Operation, Page},
    permissions::Action,
    semver::Version,
    views::{CapabilityUsage, DeploymentDetail, DeploymentView, USAGE_LIMIT, UsageCustomer, VersionUsage},
};

use std::collections::{BTreeMap, BTreeSet, HashMap};

use futures::{StreamExt, TryStreamExt};

use super::super::{
    auth::Actor,
    catalog::SharedCatalog,
    error::ServiceError,
    repo::{DeploymentRecord, Repo, RepoError},
};

pub use super::super::repo::DeploymentFilter;

/// `values` masked by `schema` (its `NoEcho` parameters), or every value when the schema is
/// unknown; and any value still sealed (`enc:`) is masked whatever the schema says, so no
/// ciphertext ever leaves the server (a client could otherwise replay it elsewhere).
fn masked(
    schema: Option<&crate::domain::parameters::ParameterSchema>,
    values: &std::collections::BTreeMap<String, String>,
) -> std::collections::BTreeMap<String, String> {
    let mut out = match schema {
        Some(s) => s.masked(values),
        None => mask_all(values),
    };
    for v in out.values_mut() {
        if crate::ssr::lifecycle::secrets::is_sealed(v) {
            *v = crate::domain::parameters::MASK.to_string();
        }
    }
    out
}

/// When the schema is unknown, every value is masked rather than risk showing a secret.
fn mask_all(
    values: &std::collections::BTreeMap<String, String>,
) -> std::collections::BTreeMap<String, String> {
    values.keys().map(|k| (k.clone(), crate::domain::parameters::MASK.to_string())).collect()
}

#[derive(Clone)]
pub struct DeploymentService {
    repo: Repo,
    catalog: SharedCatalog,
}

impl DeploymentService {
    pub fn new(repo: Repo, catalog: SharedCatalog) -> Self {
        DeploymentService { repo, catalog }
    }

    /// Masks `NoEcho` parameters and flags deprecated versions.
    pub fn view(&self, r: DeploymentRecord) -> DeploymentView {
        let mut d = r.deployment;
        let catalog = self.catalog.read().unwrap_or_else(|p| p.into_inner());
        let version = catalog.version(&d.capability, &d.version);
        d.parameters = masked(version.map(|v| &v.meta.parameters), &d.parameters);
        // The rollback target's values, by the schema of the version they were made for.
        let previous = d.previous_version.as_ref().and_then(|p| catalog.version(&d.capability, p));
        d.previous_parameters = masked(previous.map(|v| &v.meta.parameters), &d.previous_parameters);
        DeploymentView { version_deprecated: version.is_some_and(|v| v.meta.deprecated), deployment: d }
    }

    pub async fn list(
        &self,
        actor: &Actor,
        filter: &DeploymentFilter,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<DeploymentView>, ServiceError> {
        actor.require(Action::ViewCustomers)?;
        if let Some(c) = &filter.customer {
            let customer = match self.repo.customer(c).await {
                Err(RepoError::NotFound) => return Err(ServiceError::NotFound("customer")),
                other => other?,
            };
            actor.check_customer(Action::ViewCustomers, &customer.owner_id, "customer")?;
        }
        if let Some(cap) = &filter.capability
            && self.catalog.read().unwrap_or_else(|p| p.into_inner()).get(cap).is_none()
        {
            return Err(ServiceError::invalid(
                "capability",
                "unknown_capability",
                format!("no capability `{cap}`"),
            ));
        }
        let owners = actor.visible_owners();
        let page = self.repo.deployments_matching(filter, owners.as_deref(), |_| true, limit, cursor).await?;
        Ok(Page {
            items: page.items.into_iter().map(|r| self.view(r)).collect(),
            next_cursor: page.next_cursor,
        })
    }

    /// Which customers run which version of `slug` (deleted deployments run nothing), reading at
    /// most `USAGE_LIMIT` deployments.
    pub async fn usage(&self, actor: &Actor, slug: &str) -> Result<CapabilityUsage, ServiceError> {
        actor.require(Action::ViewCustomers)?;
        if self.catalog.read().unwrap_or_else(|p| p.into_inner()).get(slug).is_none() {
            return Err(ServiceError::NotFound("capability"));
        }
        let filter = DeploymentFilter { capability: Some(slug.to_string()), ..DeploymentFilter::default() };
        let owners = actor.visible_owners();
        let keep = |r: &DeploymentRecord| r.deployment.status != DeploymentStatus::Deleted;
        let (mut records, mut cursor, mut truncated) = (Vec::new(), None::<String>, false);
        loop {
            let page = self
                .repo
                .deployments_matching(&filter, owners.as_deref(), keep, 200, cursor.as_deref())
                .await?;
            records.extend(page.items);
            match page.next_cursor {
                Some(next) if records.len() < USAGE_LIMIT => cursor = Some(next),
                Some(_) => {
                    truncated = true;
                    break;
                }
                None => break,
            }
        }
        // version -> customer -> environments
        let mut by_version: BTreeMap<Version, (usize, BTreeMap<Id, Vec<EnvironmentName>>)> = BTreeMap::new();
        for r in &records {
            let d = &r.deployment;
            let (count, customers) = by_version.entry(d.version.clone()).or_default();
            *count += 1;
            customers.entry(d.customer_id.clone()).or_default().push(d.environment);
        }
        let ids: BTreeSet<Id> = by_version.values().flat_map(|(_, c)| c.keys().cloned()).collect();
        let names: HashMap<Id, String> = futures::stream::iter(ids)
            .map(|id| async move { self.repo.customer(&id).await.map(|c| (id, c.name)) })
            .buffer_unordered(16)
            .try_collect()
            .await?;
        let catalog = self.catalog.read().unwrap_or_else(|p| p.into_inner());
        let versions = by_version
            .into_iter()
            .rev()
            .map(|(version, (deployments, customers))| {
                let mut customers: Vec<UsageCustomer> = customers
                    .into_iter()
                    .map(|(id, mut environments)| {
                        environments.sort();
                        environments.dedup();
                        let name = names.get(&id).cloned().unwrap_or_default();
                        UsageCustomer { id, name, environments }
                    })
                    .collect();
                customers.sort_by(|a, b| a.name.cmp(&b.name));
                let deprecated = catalog.version(slug, &version).is_some_and(|v| v.meta.deprecated);
                VersionUsage { version, deprecated, deployments, customers }
            })
            .collect();
        Ok(CapabilityUsage { capability: slug.to_string(), versions, truncated })
    }

    /// A deployment the actor may see (404 otherwise).
    pub async fn record(&self, actor: &Actor, id: &Id) -> Result<DeploymentRecord, ServiceError> {
        actor.require(Action::ViewCustomers)?;
        let r = match self.repo.deployment(id).await {
            Err(RepoError::NotFound) => return Err(ServiceError::NotFound("deployment")),
            other => other?,
        };
        actor.check_customer(Action::ViewCustomers, &r.owner_id, "deployment")?;
        Ok(r)
    }

    pub async fn get(&self, actor: &Actor, id: &Id) -> Result<DeploymentDetail, ServiceError> {
        let r = self.record(actor, id).await?;
        let ops = self.repo.operations(id, 50, None).await?;
        Ok(DeploymentDetail {
            operations: ops.items.into_iter().map(|o| self.mask(o)).collect(),
            operations_next_cursor: ops.next_cursor,
            view: self.view(r),
        })
    }

    pub async fn operations(
        &self,
        actor: &Actor,
        deployment: &Id,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<Operation>, ServiceError> {
        self.record(actor, deployment).await?;
        let page = self.repo.operations(deployment, limit, cursor).await?;
        Ok(Page {
            items: page.items.into_iter().map(|o| self.mask(o)).collect(),
            next_cursor: page.next_cursor,
        })
    }

    pub async fn operation(&self, actor: &Actor, id: &Id) -> Result<Operation, ServiceError> {
        actor.require(Action::ViewCustomers)?;
        let op = match self.repo.operation(id).await {
            Err(RepoError::NotFound) => return Err(ServiceError::NotFound("operation")),
            other => other?,
        };
        // Scope follows the deployment's owner.
        match self.record(actor, &op.deployment_id).await {
            Err(ServiceError::NotFound(_)) => Err(ServiceError::NotFound("operation")),
            Err(ServiceError::Hidden(_)) => Err(ServiceError::Hidden("operation")),
            Err(e) => Err(e),
            Ok(_) => Ok(self.mask(op)),
        }
    }

    /// `NoEcho` values never leave the server: masked by the target version's schema, or
    /// all masked when the schema is unknown.
    pub fn mask(&self, mut op: Operation) -> Operation {
        let catalog = self.catalog.read().unwrap_or_else(|p| p.into_inner());
        let schema = op.target_version.as_ref().and_then(|v| catalog.version(&op.capability, v));
        op.parameters = masked(schema.map(|v| &v.meta.parameters), &op.parameters);
        op
    }
}
