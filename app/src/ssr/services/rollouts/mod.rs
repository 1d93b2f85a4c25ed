//! Rollouts (issue 22): one capability version to many deployments, in waves. This part plans:
//! it reads what is stored (deployments in the caller's scope, their customers and
//! environments, the operations running, the rollouts holding deployments) and answers the plan
//! `domain::rollout_plan` makes of it, without calling AWS. `create` stores a plan as a
//! rollout, `control` is what users do with one, `scheduler` runs them.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use tokio::sync::Notify;

use crate::domain::{
    ids::Id,
    lifecycle::DeploymentStatus,
    model::{ConnectionStatus, DataClassification, Environment, Role},
    parameters::FieldError,
    permissions::{Action, may_deploy_classification},
    rollout_plan::{Candidate, Plan, RolloutRequest, plan},
    semver::Version,
};

use super::{
    super::{
        audit::AuditLog,
        auth::Actor,
        catalog::SharedCatalog,
        error::ServiceError,
        lifecycle::notifier::Notifier,
        repo::{DeploymentFilter, DeploymentRecord, Repo, RepoError},
    },
    operations::OperationService,
};

mod control;
mod create;
mod scheduler;

pub use scheduler::RolloutScheduler;

/// Deployments one plan reads at most (the fleet the product targets is 15,000).
const MAX_DEPLOYMENTS: usize = 20_000;
/// Operations read to learn which deployments are busy.
const MAX_ACTIVE_OPERATIONS: usize = 10_000;

#[derive(Clone)]
pub struct RolloutService {
    repo: Repo,
    catalog: SharedCatalog,
    operations: OperationService,
    audit: Arc<AuditLog>,
    /// Where a rollout's pause, wait for approval, completion and cancellation are announced.
    notifier: Arc<dyn Notifier>,
    /// Tells this process's scheduler that a rollout was made or changed (look now).
    scheduler_wake: Arc<Notify>,
}

impl RolloutService {
    pub fn new(
        repo: Repo,
        catalog: SharedCatalog,
        operations: OperationService,
        audit: Arc<AuditLog>,
        notifier: Arc<dyn Notifier>,
    ) -> Self {
        RolloutService { repo, catalog, operations, audit, notifier, scheduler_wake: Arc::new(Notify::new()) }
    }

    /// Announces the rollout's state now (never fails the change: the outbox keeps what the
    /// bus refuses; what even that cannot keep is logged).
    async fn announce(&self, r: &crate::domain::rollout_record::Rollout) {
        announce(&self.notifier, r).await;
    }

    /// The plan for `req`, from stored state only.
    pub async fn plan(&self, actor: &Actor, req: &RolloutRequest) -> Result<Plan, ServiceError> {
        actor.require(Action::ManageRollouts)?;
        let target = self.target(actor.role(), req)?;
        let problems: Vec<FieldError> = req
            .waves
            .problems()
            .into_iter()
            .chain(req.gates.problems())
            .map(|(field, message)| FieldError::new(field, "invalid_setting", message))
            .collect();
        if !problems.is_empty() {
            return Err(ServiceError::fields(problems));
        }
        if let Some(customers) = &req.selection.customers {
            for id in customers {
                let customer = match self.repo.customer(id).await {
                    Err(RepoError::NotFound) => return Err(ServiceError::NotFound("customer")),
                    other => other?,
                };
                actor.check_customer(Action::ViewCustomers, &customer.owner_id, "customer")?;
            }
        }
        let records = self.deployments(actor, &req.capability).await?;
        let busy = self.busy().await?;
        let held = self.repo.rollout_holders().await?;
        let mut customers: HashMap<Id, (String, Vec<Environment>)> = HashMap::new();
        let mut candidates = Vec::with_capacity(records.len());
        for r in records {
            let d = &r.deployment;
            if !customers.contains_key(&d.customer_id) {
                let name = self.repo.customer(&d.customer_id).await?.name;
                let environments = self.repo.environments(&d.customer_id).await?;
                customers.insert(d.customer_id.clone(), (name, environments));
            }
            let (name, environments) = &customers[&d.customer_id];
            let env = environments.iter().find(|e| e.id == d.environment_id);
            // Only deployments that would move are checked against the target's parameters.
            let moves = d.version < target && d.status == DeploymentStatus::Active;
            let parameter_problem = moves
                .then(|| {
                    self.operations.parameters_problem(
                        &d.capability,
                        &target,
                        &req.parameters,
                        &d.parameters,
                        &d.id,
                    )
                })
                .flatten();
            candidates.push(Candidate {
                deployment_id: d.id.clone(),
                customer_id: d.customer_id.clone(),
                customer_name: name.clone(),
                environment: d.environment,
                account_id: env.map(|e| e.account_id.clone()).unwrap_or_default(),
                version: d.version.clone(),
                status: d.status,
                connected: env.is_some_and(|e| e.connection != ConnectionStatus::Failed),
                busy: busy.contains(&d.id),
                in_rollout: held.get(&d.id).cloned(),
                parameter_problem,
            });
        }
        Ok(plan(&target, &candidates, &req.selection, &req.waves))
    }

    /// The target version, checked: the capability exists, the version is published and not
    /// deprecated, and the caller may deploy its classification.
    fn target(&self, role: Role, req: &RolloutRequest) -> Result<Version, ServiceError> {
        let catalog = self.catalog.read().unwrap_or_else(|p| p.into_inner());
        let entry = catalog.get(&req.capability).ok_or_else(|| {
            ServiceError::invalid(
                "capability",
                "unknown_capability",
                format!("no capability `{}`", req.capability),
            )
        })?;
        let classification: DataClassification = entry.capability.classification;
        if !may_deploy_classification(role, classification) {
            return Err(ServiceError::Forbidden(format!(
                "{} is Restricted: only an Executive rolls it out",
                req.capability
            )));
        }
        let target: Version = req.version.parse().map_err(|_| {
            ServiceError::invalid("version", "invalid_version", format!("`{}` is not a version", req.version))
        })?;
        let version = catalog.version(&req.capability, &target).ok_or_else(|| {
            ServiceError::invalid(
                "version",
                "unknown_version",
                format!("{} has no version {target}", req.capability),
            )
        })?;
        if version.meta.deprecated {
            return Err(ServiceError::invalid(
                "version",
                "deprecated_version",
                format!("{} {target} is deprecated: roll out a newer version", req.capability),
            ));
        }
        Ok(target)
    }

    /// The capability's deployments the actor sees (deleted ones run nothing).
    async fn deployments(
        &self,
        actor: &Actor,
        capability: &str,
    ) -> Result<Vec<DeploymentRecord>, ServiceError> {
        let filter =
            DeploymentFilter { capability: Some(capability.to_string()), ..DeploymentFilter::default() };
        let owners = actor.visible_owners();
        let keep = |r: &DeploymentRecord| r.deployment.status != DeploymentStatus::Deleted;
        let (mut records, mut cursor) = (Vec::new(), None::<String>);
        loop {
            let page = self
                .repo
                .deployments_matching(&filter, owners.as_deref(), keep, 500, cursor.as_deref())
                .await?;
            records.extend(page.items);
            match page.next_cursor {
                Some(next) if records.len() < MAX_DEPLOYMENTS => cursor = Some(next),
                Some(_) => {
                    return Err(ServiceError::invalid(
                        "selection",
                        "too_many",
                        format!("more than {MAX_DEPLOYMENTS} deployments: select environments or customers"),
                    ));
                }
                None => return Ok(records),
            }
        }
    }

    /// Deployments an operation holds (running, or waiting for a user).
    async fn busy(&self) -> Result<HashSet<Id>, ServiceError> {
        let mut busy = HashSet::new();
        for op in self.repo.work_queue(MAX_ACTIVE_OPERATIONS).await? {
            busy.insert(op.deployment_id);
        }
        for op in self.repo.waiting_operations(MAX_ACTIVE_OPERATIONS).await? {
            busy.insert(op.deployment_id);
        }
        Ok(busy)
    }
}

/// [`RolloutService::announce`], shared with the scheduler.
async fn announce(notifier: &Arc<dyn Notifier>, r: &crate::domain::rollout_record::Rollout) {
    let event = crate::domain::events::RolloutEvent::of(r, super::super::clock::now());
    if let Err(e) = notifier.publish_rollout(&event).await {
        tracing::warn!(rollout = %r.id, error = %e, "the rollout's state change was not announced");
    }
}
