//! Asking for a change: deploy (a first deployment), upgrade, roll back, switch colour, delete,
//! check drift. Each resolves to a plan, checked and stored by the shared half in `mod.rs`.

use std::collections::BTreeMap;

use super::{OperationService, Plan};
use crate::{
    domain::{
        ids::Id,
        lifecycle::{OperationKind, allowed_operations},
        model::{Approver, Color, Deployment, EnvironmentName, Operation},
        permissions::Action,
        semver::Version,
        stacks,
        views::{ChangeRequest, DeleteRequest, DeployRequest, UpgradeRequest},
    },
    ssr::{
        auth::Actor,
        clock,
        error::ServiceError,
        ids::new_id,
        repo::{DeploymentRecord, RepoError},
    },
};

impl OperationService {
    pub async fn deploy(
        &self,
        actor: &Actor,
        req: DeployRequest,
        idempotency_key: Option<&str>,
    ) -> Result<Operation, ServiceError> {
        if let Some(op) = self.repeated(actor, idempotency_key).await? {
            return Ok(op);
        }
        let env_id = Id::parse(&req.environment_id)
            .map_err(|_| ServiceError::invalid("environment_id", "invalid_id", "not an id"))?;
        let env = match self.repo.environment(&env_id).await {
            Err(RepoError::NotFound) => return Err(ServiceError::NotFound("environment")),
            other => other?,
        };
        let customer = self.repo.customer(&env.customer_id).await?;
        if self.classification(&req.capability).is_none() {
            actor.check_customer(Action::RequestChange, &customer.owner_id, "environment")?;
            return Err(ServiceError::invalid(
                "capability",
                "unknown_capability",
                format!("no capability `{}`", req.capability),
            ));
        }
        let approver = self.approval(actor, &customer.owner_id, env.name, &req.capability, "environment")?;
        let version = self.parse_version(&req.capability, &req.version, true)?;
        let existing = self.repo.deployment_in(&env.id, &req.capability).await?;
        let (deployment, new) = match existing {
            Some(id) => {
                let r = self.repo.deployment(&id).await?;
                if !allowed_operations(r.deployment.status, false).contains(&OperationKind::Deploy) {
                    return Err(ServiceError::Conflict(format!(
                        "the environment already runs {} (deployment {id}): upgrade it instead",
                        req.capability
                    )));
                }
                (r, false)
            }
            None => {
                let now = clock::now();
                let color = self.blue_green(&req.capability, &version).then_some(Color::Blue);
                let d = Deployment {
                    id: new_id(),
                    customer_id: customer.id.clone(),
                    environment_id: env.id.clone(),
                    environment: env.name,
                    capability: req.capability.clone(),
                    version: version.clone(),
                    parameters: BTreeMap::new(),
                    stack_name: stacks::stack_name(&req.capability, &customer.slug, env.name, color),
                    stack_id: None,
                    status: crate::domain::lifecycle::DeploymentStatus::Pending,
                    health: crate::domain::lifecycle::Health::Unknown,
                    drift: crate::domain::lifecycle::Drift::NotChecked,
                    outputs: BTreeMap::new(),
                    active_color: color,
                    last_operation_id: None,
                    last_synced_at: None,
                    created_at: now,
                    updated_at: now,
                    rev: 1,
                    previous_version: None,
                    previous_parameters: BTreeMap::new(),
                };
                (DeploymentRecord { deployment: d, owner_id: customer.owner_id.clone() }, true)
            }
        };
        let parameters = self.resolve_parameters(
            &req.capability,
            &version,
            &req.parameters,
            &BTreeMap::new(),
            &deployment.deployment.id,
        )?;
        let plan = Plan {
            kind: OperationKind::Deploy,
            version: Some(version.clone()),
            parameters,
            auto_execute: req.auto_execute,
        };
        let op = self.new_operation(&actor.user.id, &deployment.deployment, plan, approver);
        self.start(actor, op, new.then_some(&deployment), idempotency_key, &customer.owner_id).await
    }

    /// A deployment the actor may change, and the operation kind checked against its status.
    pub(super) async fn changeable(
        &self,
        actor: &Actor,
        id: &Id,
        kind: OperationKind,
    ) -> Result<DeploymentRecord, ServiceError> {
        let r = self.deployments.record(actor, id).await?;
        let d = &r.deployment;
        // A stack deleted outside the toolkit can still have its deployment deleted.
        let missing_delete =
            kind == OperationKind::Delete && d.status == crate::domain::lifecycle::DeploymentStatus::Missing;
        let allowed =
            allowed_operations(d.status, self.blue_green(&d.capability, &d.version)).contains(&kind);
        if !(allowed || missing_delete) {
            return Err(ServiceError::Conflict(format!(
                "a {} deployment cannot be given a {} operation",
                d.status.as_str(),
                kind.as_str()
            )));
        }
        Ok(r)
    }

    /// The steps every change to an existing deployment shares: an earlier request with the
    /// same key answers its operation; scope, status and approval are checked; `target` says
    /// which version and parameters the change moves to.
    pub(super) async fn change(
        &self,
        actor: &Actor,
        id: &Id,
        kind: OperationKind,
        auto_execute: bool,
        idempotency_key: Option<&str>,
        target: impl FnOnce(&Deployment) -> Result<(Option<Version>, BTreeMap<String, String>), ServiceError>,
    ) -> Result<Operation, ServiceError> {
        if let Some(op) = self.repeated(actor, idempotency_key).await? {
            return Ok(op);
        }
        let r = self.changeable(actor, id, kind).await?;
        let d = &r.deployment;
        let approver = self.approval(actor, &r.owner_id, d.environment, &d.capability, "deployment")?;
        let (version, parameters) = target(d)?;
        let plan = Plan { kind, version, parameters, auto_execute };
        let op = self.new_operation(&actor.user.id, d, plan, approver);
        self.start(actor, op, None, idempotency_key, &r.owner_id).await
    }

    pub async fn upgrade(
        &self,
        actor: &Actor,
        id: &Id,
        req: UpgradeRequest,
        idempotency_key: Option<&str>,
    ) -> Result<Operation, ServiceError> {
        self.change(actor, id, OperationKind::Upgrade, req.auto_execute, idempotency_key, |d| {
            let version = self.parse_version(&d.capability, &req.version, true)?;
            let parameters =
                self.resolve_parameters(&d.capability, &version, &req.parameters, &d.parameters, &d.id)?;
            Ok((Some(version), parameters))
        })
        .await
    }

    /// Back to the previous successful version and parameters (after a failed upgrade, the
    /// version that still runs).
    pub async fn rollback(
        &self,
        actor: &Actor,
        id: &Id,
        req: ChangeRequest,
        idempotency_key: Option<&str>,
    ) -> Result<Operation, ServiceError> {
        self.change(actor, id, OperationKind::Rollback, req.auto_execute, idempotency_key, |d| {
            if d.status == crate::domain::lifecycle::DeploymentStatus::UpdateFailed {
                return Ok((Some(d.version.clone()), d.parameters.clone()));
            }
            match &d.previous_version {
                Some(v) => Ok((Some(v.clone()), d.previous_parameters.clone())),
                None => Err(ServiceError::Conflict("there is no earlier version to roll back to".into())),
            }
        })
        .await
    }

    /// Blue-green: the other colour takes over with the previous version (a switch back is the
    /// rollback of a blue-green capability).
    pub async fn switch(
        &self,
        actor: &Actor,
        id: &Id,
        req: ChangeRequest,
        idempotency_key: Option<&str>,
    ) -> Result<Operation, ServiceError> {
        self.change(actor, id, OperationKind::Switch, req.auto_execute, idempotency_key, |d| {
            Ok(match &d.previous_version {
                Some(v) => (Some(v.clone()), d.previous_parameters.clone()),
                None => (Some(d.version.clone()), d.parameters.clone()),
            })
        })
        .await
    }

    pub async fn delete(
        &self,
        actor: &Actor,
        id: &Id,
        req: DeleteRequest,
        idempotency_key: Option<&str>,
    ) -> Result<Operation, ServiceError> {
        self.change(actor, id, OperationKind::Delete, true, idempotency_key, |d| {
            if d.environment == EnvironmentName::Prod && req.confirm.as_deref() != Some(d.stack_name.as_str())
            {
                return Err(ServiceError::invalid(
                    "confirm",
                    "confirmation_required",
                    format!(
                        "deleting a prod deployment needs its stack name typed as confirmation: `{}`",
                        d.stack_name
                    ),
                ));
            }
            Ok((None, BTreeMap::new()))
        })
        .await
    }

    /// Drift detection reads only: anyone who sees the deployment may ask for it.
    pub async fn drift_check(&self, actor: &Actor, id: &Id) -> Result<Operation, ServiceError> {
        let r = self.changeable(actor, id, OperationKind::DriftCheck).await?;
        let plan = Plan {
            kind: OperationKind::DriftCheck,
            version: None,
            parameters: BTreeMap::new(),
            auto_execute: true,
        };
        let op = self.new_operation(&actor.user.id, &r.deployment, plan, Approver::None);
        self.start(actor, op, None, None, &r.owner_id).await
    }
}
