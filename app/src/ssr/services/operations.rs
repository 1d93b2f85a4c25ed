//! Lifecycle requests as users make them: deploy, upgrade, roll back, delete, check drift,
//! execute a previewed change set, approve, reject, cancel, and connecting an environment.
//! Each call is authorised here (scope, role, approvals) and stores an operation before any
//! AWS call; the engine's workers do the rest.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
    time::Duration,
};

use crate::domain::{
    blue_green,
    ids::Id,
    lifecycle::{
        OperationKind, OperationState, after_approval, allowed_operations, check_transition, initial_state,
    },
    model::{
        Approver, Color, Customer, DataClassification, Deployment, Environment, EnvironmentName, Operation, Role,
        Strategy,
    },
    outbound_url::OutboundPolicy,
    parameters::{FieldError, MASK},
    permissions::{self, Action, Decision},
    semver::Version,
    stacks::{self, StackEvent},
    time::Timestamp,
    views::{
        ChangeRequest, DecisionRequest, DeleteRequest, DeployRequest, InboxItem, Notification, UpgradeRequest,
    },
};

use super::super::{
    audit::AuditLog,
    auth::{Actor, require_step_up},
    catalog::SharedCatalog,
    clock,
    error::ServiceError,
    ids::new_id,
    lifecycle::{
        deployer::Target,
        engine::Engine,
        secrets::{ParameterCipher, is_sealed},
    },
    repo::{DeploymentRecord, Repo, RepoError, StartError},
};
use super::{customers::shown, deployments::DeploymentService};

#[derive(Clone)]
pub struct OperationService {
    repo: Repo,
    catalog: SharedCatalog,
    /// Told about each new or decided operation (to start it now and announce it), asked to
    /// discard a change set and to check a connection.
    engine: Arc<Engine>,
    /// Seals and opens `NoEcho` parameter values.
    cipher: ParameterCipher,
    /// How long a queued operation may take (`NEXUS_OPERATION_TIMEOUT_MINUTES`).
    timeout: Duration,
    audit: Arc<AuditLog>,
    deployments: DeploymentService,
    /// Which addresses a health URL may name (`NEXUS_HEALTH_ALLOW_LOOPBACK`).
    outbound: OutboundPolicy,
    /// `NEXUS_PROD_FOUR_EYES`: an Executive's prod change waits for a second Executive.
    prod_four_eyes: bool,
}

/// What a request resolves to before it is stored.
struct Plan {
    kind: OperationKind,
    version: Option<Version>,
    parameters: BTreeMap<String, String>,
    auto_execute: bool,
}

impl OperationService {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        repo: Repo,
        catalog: SharedCatalog,
        engine: Arc<Engine>,
        cipher: ParameterCipher,
        timeout: Duration,
        audit: Arc<AuditLog>,
        deployments: DeploymentService,
        outbound: OutboundPolicy,
        prod_four_eyes: bool,
    ) -> Self {
        OperationService { repo, catalog, engine, cipher, timeout, audit, deployments, outbound, prod_four_eyes }
    }

    fn classification(&self, capability: &str) -> Option<DataClassification> {
        let catalog = self.catalog.read().unwrap_or_else(|p| p.into_inner());
        catalog.get(capability).map(|c| c.capability.classification)
    }

    /// The version's parameter values checked against its schema (every field's error at
    /// once) and sealed for storage, bound to `deployment`. `current` fills in values the
    /// request leaves out; for a `NoEcho` parameter, [`MASK`] (what reads show) also keeps the
    /// current value. Sealed values (`enc:…`) are never taken from a client: one copied from
    /// another deployment would otherwise be decrypted into this one.
    fn resolve_parameters(
        &self,
        capability: &str,
        version: &Version,
        given: &BTreeMap<String, String>,
        current: &BTreeMap<String, String>,
        deployment: &Id,
    ) -> Result<BTreeMap<String, String>, ServiceError> {
        let catalog = self.catalog.read().unwrap_or_else(|p| p.into_inner());
        let v = catalog.version(capability, version).ok_or_else(|| {
            ServiceError::invalid(
                "version",
                "unknown_version",
                format!("{capability} has no version {version}"),
            )
        })?;
        let schema = &v.meta.parameters;
        let mut values = self.cipher.open_all(current, deployment).map_err(|e| {
            tracing::error!(error = %e, %deployment, "stored parameters cannot be decrypted");
            ServiceError::Internal
        })?;
        // Only values the new version knows carry over.
        values.retain(|k, _| schema.get(k).is_some());
        let mut errors = Vec::new();
        for (k, v) in given {
            let field = format!("parameters.{k}");
            if is_sealed(v) {
                errors.push(FieldError::new(
                    field,
                    "sealed_value",
                    format!("sealed values are not accepted: send the value itself, or `{MASK}` to keep the current one"),
                ));
            } else if v == MASK && schema.get(k).is_some_and(|s| s.no_echo) {
                if !values.contains_key(k) {
                    errors.push(FieldError::new(
                        field,
                        "nothing_to_keep",
                        format!("`{MASK}` keeps the current value, and there is none"),
                    ));
                }
            } else {
                values.insert(k.clone(), v.clone());
            }
        }
        let outbound = schema.outbound_errors(&values, self.outbound);
        let resolved = match schema.validate(&values) {
            Ok(resolved) if outbound.is_empty() && errors.is_empty() => resolved,
            Ok(_) => {
                errors.extend(outbound);
                return Err(ServiceError::fields(errors));
            }
            Err(invalid) => {
                let named: Vec<String> = errors.iter().map(|e| e.field.clone()).collect();
                errors.extend(invalid.into_iter().filter(|e| !named.contains(&e.field)));
                errors.extend(outbound);
                return Err(ServiceError::fields(errors));
            }
        };
        Ok(self.cipher.seal_all(schema, &resolved, deployment))
    }

    fn parse_version(&self, capability: &str, version: &str, for_new: bool) -> Result<Version, ServiceError> {
        let v: Version = version.parse().map_err(|_| {
            ServiceError::invalid("version", "invalid_version", format!("`{version}` is not a version"))
        })?;
        let catalog = self.catalog.read().unwrap_or_else(|p| p.into_inner());
        let entry = catalog.version(capability, &v).ok_or_else(|| {
            ServiceError::invalid("version", "unknown_version", format!("{capability} has no version {v}"))
        })?;
        if for_new && entry.meta.deprecated {
            return Err(ServiceError::invalid(
                "version",
                "deprecated_version",
                format!("{capability} {v} is deprecated: choose a newer version"),
            ));
        }
        Ok(v)
    }

    fn blue_green(&self, capability: &str, version: &Version) -> bool {
        let catalog = self.catalog.read().unwrap_or_else(|p| p.into_inner());
        catalog.version(capability, version).is_some_and(|v| v.meta.strategy == Strategy::BlueGreen)
    }

    /// Who must approve, after checking the actor may ask at all: outside their scope, the
    /// answer is exactly the one for an unknown `what` (the record the request named).
    fn approval(
        &self,
        actor: &Actor,
        owner: &Id,
        env: EnvironmentName,
        capability: &str,
        what: &'static str,
    ) -> Result<Approver, ServiceError> {
        actor.check_customer(Action::RequestChange, owner, what)?;
        let classification = self.classification(capability).unwrap_or(DataClassification::Restricted);
        Ok(permissions::required_approver(actor.role(), env, classification, self.prod_four_eyes))
    }

    fn new_operation(&self, actor: &Actor, d: &Deployment, plan: Plan, approver: Approver) -> Operation {
        let now = clock::now();
        let state = initial_state(plan.kind, approver != Approver::None);
        let blue_green =
            blue_green::plan(plan.kind, d, plan.version.as_ref(), |v| self.blue_green(&d.capability, v));
        // A template that takes its colour as a parameter gets the one it is built as.
        let mut plan = plan;
        if let Some(bg) = &blue_green
            && let Some(c) = plan.parameters.get_mut("Color")
        {
            *c = bg.to.as_str().to_string();
        }
        let stack_name = blue_green::stack_name(d, blue_green.as_ref());
        Operation {
            blue_green,
            id: new_id(),
            deployment_id: d.id.clone(),
            customer_id: d.customer_id.clone(),
            environment: d.environment,
            capability: d.capability.clone(),
            kind: plan.kind,
            state,
            requested_by: actor.user.id.clone(),
            target_version: plan.version,
            parameters: plan.parameters,
            auto_execute: plan.auto_execute,
            created_at: now,
            approver,
            stack_name,
            deadline: (state == OperationState::Queued).then(|| {
                Timestamp::from_millis(now.millis() + self.timeout.as_millis() as i64)
            }),
            ..Operation::blank()
        }
    }

    /// Stores the operation (and a first deployment), or explains why not.
    async fn start(
        &self,
        actor: &Actor,
        op: Operation,
        new_deployment: Option<&DeploymentRecord>,
        idempotency_key: Option<&str>,
        owner: &Id,
    ) -> Result<Operation, ServiceError> {
        // A prod change that runs with nobody else's approval or confirmation: the requester's
        // recent second factor stands in for it.
        let runs_at_once = op.approver == Approver::None && (op.auto_execute || !op.kind.uses_change_set());
        if op.environment == EnvironmentName::Prod && op.kind.is_change() && runs_at_once {
            require_step_up(&self.repo, actor, clock::now()).await?;
        }
        let op = match self.repo.start_operation(op, new_deployment, idempotency_key).await {
            Ok(op) => op,
            Err(StartError::Busy(holder)) => {
                return Err(ServiceError::Conflict(match holder {
                    Some(id) => format!(
                        "operation {id} is still running on this deployment: wait for it or cancel it"
                    ),
                    None => "another operation is running on this deployment".into(),
                }));
            }
            Err(StartError::AlreadyDeployed(id)) => {
                return Err(ServiceError::Conflict(format!(
                    "the environment already has this capability (deployment {}): upgrade it instead",
                    id.map(|i| i.to_string()).unwrap_or_default()
                )));
            }
            Err(StartError::Repeated(id)) => return self.deployments.operation(actor, &id).await,
            Err(StartError::Repo(e)) => return Err(e.into()),
        };
        let mut event = actor.audit(
            &format!("operation.{}", op.kind.as_str()),
            format!("deployment/{}", op.deployment_id),
            "success",
        );
        event.owner_id = Some(owner.clone());
        event.details = serde_json::json!({
            "operation": op.id, "state": op.state, "version": op.target_version,
            "approver": op.approver, "stack": op.stack_name,
        });
        // A prod change by an Executive that nobody else approves says so, every time.
        if !self.prod_four_eyes
            && op.environment == EnvironmentName::Prod
            && op.kind.is_change()
            && actor.role() == crate::domain::model::Role::Executive
        {
            event.details["four_eyes"] = serde_json::json!("off");
        }
        self.audit.append(event, clock::now()).await?;
        self.engine.published(&op).await;
        if op.state == OperationState::Queued {
            self.engine.start_now(op.clone());
        }
        Ok(self.deployments.mask(op))
    }

    /// An earlier request with the same idempotency key: its operation, not a second one.
    async fn repeated(&self, actor: &Actor, key: Option<&str>) -> Result<Option<Operation>, ServiceError> {
        if let Some(key) = key
            && let Some(id) = self.repo.idempotent_operation(&actor.user.id, key).await?
        {
            return Ok(Some(self.deployments.operation(actor, &id).await?));
        }
        Ok(None)
    }

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
                let color =
                    self.blue_green(&req.capability, &version).then_some(Color::Blue);
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
        let op = self.new_operation(actor, &deployment.deployment, plan, approver);
        self.start(actor, op, new.then_some(&deployment), idempotency_key, &customer.owner_id).await
    }

    /// A deployment the actor may change, and the operation kind checked against its status.
    async fn changeable(
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
    async fn change(
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
        let op = self.new_operation(actor, d, plan, approver);
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
        let op = self.new_operation(actor, &r.deployment, plan, Approver::None);
        self.start(actor, op, None, None, &r.owner_id).await
    }

    /// An operation the actor may see, with its deployment's owner.
    async fn visible_operation(
        &self,
        actor: &Actor,
        id: &Id,
    ) -> Result<(Operation, DeploymentRecord), ServiceError> {
        self.deployments.operation(actor, id).await?;
        let op = self.repo.operation(id).await?;
        let r = self.repo.deployment(&op.deployment_id).await?;
        Ok((op, r))
    }

    /// Saves a user's transition; a worker or another user changing it first answers 409.
    async fn save_user_transition(
        &self,
        actor: &Actor,
        mut op: Operation,
        to: OperationState,
        owner: &Id,
        action: &str,
    ) -> Result<Operation, ServiceError> {
        check_transition(op.kind, op.state, to).map_err(|e| ServiceError::Conflict(e.to_string()))?;
        let from = op.state;
        op.state = to;
        let result = if to.is_terminal() {
            op.finished_at = Some(clock::now());
            op.lease_owner = None;
            op.lease_until = None;
            self.repo.finish_operation(&mut op, None).await
        } else {
            if op.deadline.is_none()
                || from == OperationState::AwaitingApproval
                || from == OperationState::PreviewReady
            {
                op.deadline = Some(Timestamp::from_millis(
                    clock::now().millis() + self.timeout.as_millis() as i64,
                ));
            }
            self.repo.save_operation(&mut op).await
        };
        match result {
            Ok(()) => {}
            Err(RepoError::Conflict(_)) => {
                return Err(ServiceError::Conflict("the operation changed meanwhile: reload it".into()));
            }
            Err(e) => return Err(e.into()),
        }
        let mut event = actor.audit(action, format!("operation/{}", op.id), "success");
        event.owner_id = Some(owner.clone());
        event.details = serde_json::json!({"from": from, "to": to, "deployment": op.deployment_id});
        self.audit.append(event, clock::now()).await?;
        self.engine.published(&op).await;
        if crate::domain::lifecycle::is_worker_state(to) {
            self.engine.start_now(op.clone());
        }
        Ok(self.deployments.mask(op))
    }

    /// Confirms a previewed change set: the requester once approved, or anyone who may run it.
    pub async fn execute(&self, actor: &Actor, id: &Id) -> Result<Operation, ServiceError> {
        let (op, r) = self.visible_operation(actor, id).await?;
        let may_run = actor.check_customer(Action::Operate(op.environment), &r.owner_id, "operation");
        let approved_requester =
            op.requested_by == actor.user.id && (op.approver == Approver::None || op.approved_by.is_some());
        if !(matches!(may_run, Ok(Decision::Allow)) || approved_requester) {
            return Err(ServiceError::Forbidden(format!(
                "{} may not execute this change",
                actor.role().with_article()
            )));
        }
        if op.state != OperationState::PreviewReady {
            return Err(ServiceError::Conflict(format!(
                "the operation is {}, not waiting for confirmation",
                op.state.as_str()
            )));
        }
        if op.environment == EnvironmentName::Prod {
            require_step_up(&self.repo, actor, clock::now()).await?;
        }
        let mut op = op;
        op.status_before = Some(r.deployment.status);
        self.save_user_transition(actor, op, OperationState::Executing, &r.owner_id, "operation.execute")
            .await
    }

    /// Approves a waiting request: its change set, which the approver saw, runs (or goes to a
    /// last confirmation when the requester asked for one). A request still without a change
    /// set (a delete, or one stored before requests waited with theirs) is queued: a change then
    /// comes back with its change set, for approval of what it will actually do.
    pub async fn approve(
        &self,
        actor: &Actor,
        id: &Id,
        req: DecisionRequest,
    ) -> Result<Operation, ServiceError> {
        let (mut op, r) = self.decide(actor, id).await?;
        let note = decision_note(req.note)?;
        let has_change_set = op.change_set_id.is_some();
        let to = after_approval(op.kind, has_change_set, op.auto_execute);
        if op.kind.uses_change_set() && !has_change_set {
            // Nothing to approve yet: make the change set first; the approval comes after.
            return self
                .save_user_transition(actor, op, to, &r.owner_id, "operation.prepare_change_set")
                .await;
        }
        if op.environment == EnvironmentName::Prod {
            require_step_up(&self.repo, actor, clock::now()).await?;
        }
        op.approved_by = Some(actor.user.id.clone());
        op.decision_note = note;
        if to == OperationState::Executing {
            op.status_before = Some(r.deployment.status);
        }
        self.save_user_transition(actor, op, to, &r.owner_id, "operation.approve").await
    }

    pub async fn reject(
        &self,
        actor: &Actor,
        id: &Id,
        req: DecisionRequest,
    ) -> Result<Operation, ServiceError> {
        let (mut op, r) = self.decide(actor, id).await?;
        let note = decision_note(req.note)?;
        op.rejected_by = Some(actor.user.id.clone());
        op.error = note.as_ref().map(|n| format!("rejected: {n}"));
        op.decision_note = note;
        let had_change_set = op.change_set_id.is_some();
        let op = self
            .save_user_transition(actor, op, OperationState::Rejected, &r.owner_id, "operation.reject")
            .await?;
        if had_change_set {
            self.engine.discard_change_set(&op, &r.deployment.environment_id).await;
        }
        Ok(op)
    }

    /// The checks approve and reject share.
    async fn decide(&self, actor: &Actor, id: &Id) -> Result<(Operation, DeploymentRecord), ServiceError> {
        let (op, r) = self.visible_operation(actor, id).await?;
        if op.state != OperationState::AwaitingApproval {
            return Err(ServiceError::Conflict(format!(
                "the operation is {}, not awaiting approval",
                op.state.as_str()
            )));
        }
        may_decide(actor, &op, &r.owner_id)?;
        Ok((op, r))
    }

    /// Requests awaiting approval that the user may see, oldest first: the ones they may decide,
    /// and their own (waiting on someone else).
    pub async fn inbox(&self, actor: &Actor) -> Result<Vec<InboxItem>, ServiceError> {
        actor.require(Action::ViewCustomers)?;
        let waiting = self.repo.waiting_operations(INBOX_LIMIT).await?;
        let mut customers: HashMap<Id, Customer> = HashMap::new();
        let mut items = Vec::new();
        for op in waiting.into_iter().filter(|o| o.state == OperationState::AwaitingApproval) {
            if !customers.contains_key(&op.customer_id) {
                match self.repo.customer(&op.customer_id).await {
                    Ok(c) => {
                        customers.insert(op.customer_id.clone(), c);
                    }
                    Err(RepoError::NotFound) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            let customer = &customers[&op.customer_id];
            if actor.check_customer(Action::ViewCustomers, &customer.owner_id, "operation").is_err() {
                continue;
            }
            let may = may_decide(actor, &op, &customer.owner_id).is_ok();
            if may || op.requested_by == actor.user.id {
                items.push(InboxItem {
                    operation: self.deployments.mask(op),
                    customer_name: customer.name.clone(),
                    may_decide: may,
                });
            }
        }
        Ok(items)
    }

    /// The newest operation state changes on the customers the user sees.
    pub async fn notifications(&self, actor: &Actor) -> Result<Vec<Notification>, ServiceError> {
        actor.require(Action::ViewCustomers)?;
        let owners = actor.visible_owners();
        let mut items = self.repo.notifications(owners.as_deref(), NOTIFICATIONS_LIMIT).await?;
        // Entries are filed under the owner at the time; a customer moved to someone else since
        // takes its history with it: only customers the user sees now stay in the feed.
        if let Some(owners) = &owners {
            let mut current: HashMap<Id, bool> = HashMap::new();
            let mut kept = Vec::with_capacity(items.len());
            for n in items {
                let visible = match current.get(&n.customer_id) {
                    Some(v) => *v,
                    None => {
                        let v = match self.repo.customer(&n.customer_id).await {
                            Ok(c) => owners.contains(&c.owner_id),
                            Err(RepoError::NotFound) => false,
                            Err(e) => return Err(e.into()),
                        };
                        current.insert(n.customer_id.clone(), v);
                        v
                    }
                };
                if visible {
                    kept.push(n);
                }
            }
            items = kept;
        }
        // A feed entry shows the first line of an error; the operation has all of it.
        for n in &mut items {
            n.error =
                n.error.take().map(|e| e.lines().next().unwrap_or_default().chars().take(300).collect());
        }
        Ok(items)
    }

    /// Cancels before anything ran on AWS: the requester, or anyone who may run it.
    pub async fn cancel(&self, actor: &Actor, id: &Id) -> Result<Operation, ServiceError> {
        let (op, r) = self.visible_operation(actor, id).await?;
        let may_run = matches!(
            actor.check_customer(Action::Operate(op.environment), &r.owner_id, "operation"),
            Ok(Decision::Allow)
        );
        if !(op.requested_by == actor.user.id || may_run) {
            return Err(ServiceError::Forbidden(format!(
                "{} may not cancel this operation",
                actor.role().with_article()
            )));
        }
        if !op.state.is_cancellable() {
            return Err(ServiceError::Conflict(format!(
                "a {} operation can no longer be cancelled",
                op.state.as_str()
            )));
        }
        let had_change_set =
            matches!(op.state, OperationState::PreviewReady | OperationState::CreatingChangeSet)
                || (op.state == OperationState::AwaitingApproval && op.change_set_id.is_some());
        let op = self
            .save_user_transition(actor, op, OperationState::Cancelled, &r.owner_id, "operation.cancel")
            .await?;
        if had_change_set {
            self.engine.discard_change_set(&op, &r.deployment.environment_id).await;
        }
        Ok(op)
    }

    /// The stack events an operation caused, oldest first.
    pub async fn events(&self, actor: &Actor, id: &Id) -> Result<Vec<StackEvent>, ServiceError> {
        self.deployments.operation(actor, id).await?;
        Ok(self.repo.stack_events(id).await?)
    }

    /// AssumeRole + GetCallerIdentity into the environment's account; the result is stored on
    /// the environment and audited.
    pub async fn connect(&self, actor: &Actor, id: &Id) -> Result<Environment, ServiceError> {
        let env = match self.repo.environment(id).await {
            Err(RepoError::NotFound) => return Err(ServiceError::NotFound("environment")),
            other => other?,
        };
        let customer = self.repo.customer(&env.customer_id).await?;
        let decision = actor.check_customer(Action::Operate(env.name), &customer.owner_id, "environment")?;
        if !matches!(decision, Decision::Allow | Decision::NeedsApproval) {
            return Err(ServiceError::Forbidden(format!("{} may not do this", actor.role().with_article())));
        }
        // Production's connection (it assumes the prod role) is checked by Executives only.
        if env.name == EnvironmentName::Prod && actor.role() != Role::Executive {
            return Err(ServiceError::Forbidden(
                "only an Executive may check a production connection".into(),
            ));
        }
        let target = Target::of(&env, format!("nexus-connect-{}", new_id()));
        let (updated, outcome) = self.engine.check_connection(&env, &target).await;
        let saved = match self.repo.update_environment(updated).await {
            Err(RepoError::Conflict(_)) => {
                return Err(ServiceError::Conflict("the environment changed meanwhile: try again".into()));
            }
            other => other?,
        };
        let mut event = actor.audit(
            "environment.connect",
            format!("environment/{}", env.id),
            if outcome.is_ok() { "success" } else { "failure" },
        );
        event.owner_id = Some(customer.owner_id.clone());
        event.details = serde_json::json!({
            "account": env.account_id, "error": saved.connection_error, "role_version": saved.role_version,
        });
        self.audit.append(event, clock::now()).await?;
        Ok(shown(saved, actor.role()))
    }
}

/// The notifications page shows this many, newest first.
pub const NOTIFICATIONS_LIMIT: usize = 50;

/// The inbox reads at most this many waiting operations (approvals and previews together).
pub const INBOX_LIMIT: usize = 500;

/// Whether this user may approve or reject this request (the service's rule, once).
/// The longest decision note kept.
const NOTE_MAX_CHARS: usize = 500;

/// A decision's note, trimmed; empty is none; longer than [`NOTE_MAX_CHARS`] is refused (400),
/// never cut without a word.
fn decision_note(note: Option<String>) -> Result<Option<String>, ServiceError> {
    let note = note.map(|n| n.trim().to_string()).filter(|n| !n.is_empty());
    if let Some(n) = &note {
        if n.chars().count() > NOTE_MAX_CHARS {
            return Err(ServiceError::invalid(
                "note",
                "too_long",
                format!("a note has at most {NOTE_MAX_CHARS} characters"),
            ));
        }
        if n.chars().any(|c| c.is_control() && c != '\n') {
            return Err(ServiceError::invalid(
                "note",
                "invalid_characters",
                "a note may not hold control characters",
            ));
        }
    }
    Ok(note)
}

fn may_decide(actor: &Actor, op: &Operation, owner: &Id) -> Result<(), ServiceError> {
    let own = op.requested_by == actor.user.id;
    if own {
        return Err(ServiceError::Forbidden("nobody approves or rejects their own request".into()));
    }
    // Requests stored before approvers were recorded: prod needs an Executive, the rest a
    // Sales Manager (or an Executive).
    let needed = match op.approver {
        Approver::None if op.environment == EnvironmentName::Prod => Approver::Executive,
        Approver::None => Approver::SalesManager,
        a => a,
    };
    if !permissions::may_approve(actor.role(), actor.relation(owner), op.environment, needed, own) {
        return Err(ServiceError::Forbidden(match needed {
            Approver::Executive => "only an Executive may approve this request".into(),
            _ => "only the requester's Sales Manager or an Executive may approve this request".into(),
        }));
    }
    Ok(())
}
