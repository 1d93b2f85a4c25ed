//! Lifecycle requests as users make them, and the decisions on them. Each call is authorised
//! here (scope, role, approvals) and stores an operation before any AWS call; the engine's
//! workers do the rest. `requests` asks for changes (deploy, upgrade, roll back, switch, delete,
//! check drift), `decisions` answers them (execute a preview, approve, reject, cancel, the
//! inbox); what both share (parameters, versions, the new operation and its storing) is here.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
    time::Duration,
};

use crate::domain::{
    blue_green,
    ids::Id,
    lifecycle::{OperationKind, OperationState, check_transition, initial_state},
    model::{Approver, DataClassification, Deployment, EnvironmentName, Operation, Role, Strategy},
    outbound_url::OutboundPolicy,
    parameters::{FieldError, MASK},
    permissions::{self, Action},
    semver::Version,
    stacks::StackEvent,
    time::Timestamp,
    views::Notification,
};

use super::super::{
    audit::{AuditLog, ChangeError, NewEvent},
    auth::{Actor, require_step_up},
    catalog::SharedCatalog,
    clock,
    error::ServiceError,
    ids::new_id,
    lifecycle::{
        engine::Engine,
        secrets::{ParameterCipher, is_sealed},
    },
    repo::{DeploymentRecord, Repo, RepoError, StartError},
};
use super::deployments::DeploymentService;
pub use for_rollouts::RolloutStart;

mod decisions;
mod for_rollouts;
mod requests;

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
        OperationService {
            repo,
            catalog,
            engine,
            cipher,
            timeout,
            audit,
            deployments,
            outbound,
            prod_four_eyes,
        }
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

    /// Why the stored values `current` with `given` do not make valid parameters for
    /// `version`, if they do not: the fields and what is wrong with each (a rollout lists such
    /// a deployment as blocked rather than failing it halfway).
    pub(crate) fn parameters_problem(
        &self,
        capability: &str,
        version: &Version,
        given: &BTreeMap<String, String>,
        current: &BTreeMap<String, String>,
        deployment: &Id,
    ) -> Option<String> {
        match self.resolve_parameters(capability, version, given, current, deployment) {
            Ok(_) => None,
            Err(ServiceError::Invalid { details, message, .. })
                if !details.is_empty() || !message.is_empty() =>
            {
                let named: Vec<String> = details
                    .iter()
                    .map(|e| format!("{}: {}", e.field.trim_start_matches("parameters."), e.message))
                    .collect();
                Some(if named.is_empty() { message } else { named.join("; ") })
            }
            Err(e) => Some(e.to_string()),
        }
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

    fn new_operation(&self, requested_by: &Id, d: &Deployment, plan: Plan, approver: Approver) -> Operation {
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
            requested_by: requested_by.clone(),
            target_version: plan.version,
            parameters: plan.parameters,
            auto_execute: plan.auto_execute,
            created_at: now,
            approver,
            stack_name,
            deadline: (state == OperationState::Queued)
                .then(|| Timestamp::from_millis(now.millis() + self.timeout.as_millis() as i64)),
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
        // The request and its audit event in one transaction.
        let event = self.request_event(actor, &op, owner);
        let started = self
            .audit
            .with_change(event, clock::now(), |repo| {
                let op = op.clone();
                async move { repo.start_operation(op, new_deployment, idempotency_key).await }
            })
            .await;
        let op = match started {
            Ok(op) => op,
            Err(ChangeError::Audit(e)) => return Err(e),
            Err(ChangeError::Change(StartError::Busy(holder))) => {
                return Err(ServiceError::Conflict(match holder {
                    Some(id) => format!(
                        "operation {id} is still running on this deployment: wait for it or cancel it"
                    ),
                    None => "another operation is running on this deployment".into(),
                }));
            }
            Err(ChangeError::Change(StartError::AlreadyDeployed(id))) => {
                return Err(ServiceError::Conflict(format!(
                    "the environment already has this capability (deployment {}): upgrade it instead",
                    id.map(|i| i.to_string()).unwrap_or_default()
                )));
            }
            Err(ChangeError::Change(StartError::Repeated(id))) => {
                return self.deployments.operation(actor, &id).await;
            }
            Err(ChangeError::Change(StartError::Repo(e))) => return Err(e.into()),
        };
        self.engine.published(&op).await;
        if op.state == OperationState::Queued {
            self.engine.start_now(op.clone());
        }
        Ok(self.deployments.mask(op))
    }

    /// What the audit log records of a request.
    fn request_event(&self, actor: &Actor, op: &Operation, owner: &Id) -> NewEvent {
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
            && actor.role() == Role::Executive
        {
            event.details["four_eyes"] = serde_json::json!("off");
        }
        event
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
        if to.is_terminal() {
            op.finished_at = Some(clock::now());
            op.lease_owner = None;
            op.lease_until = None;
        } else if op.deadline.is_none()
            || from == OperationState::AwaitingApproval
            || from == OperationState::PreviewReady
        {
            op.deadline =
                Some(Timestamp::from_millis(clock::now().millis() + self.timeout.as_millis() as i64));
        }
        let mut event = actor.audit(action, format!("operation/{}", op.id), "success");
        event.owner_id = Some(owner.clone());
        event.details = serde_json::json!({"from": from, "to": to, "deployment": op.deployment_id});
        // The transition and its audit event in one transaction.
        let saved = self
            .audit
            .with_change(event, clock::now(), |repo| {
                let mut op = op.clone();
                async move {
                    if to.is_terminal() {
                        repo.finish_operation(&mut op, None).await?;
                    } else {
                        repo.save_operation(&mut op).await?;
                    }
                    Ok::<_, RepoError>(op)
                }
            })
            .await;
        let op = match saved {
            Ok(op) => op,
            Err(ChangeError::Change(RepoError::Conflict(_))) => {
                return Err(ServiceError::Conflict("the operation changed meanwhile: reload it".into()));
            }
            Err(e) => return Err(e.into()),
        };
        self.engine.published(&op).await;
        if crate::domain::lifecycle::is_worker_state(to) {
            self.engine.start_now(op.clone());
        }
        Ok(self.deployments.mask(op))
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

    /// The stack events an operation caused, oldest first.
    pub async fn events(&self, actor: &Actor, id: &Id) -> Result<Vec<StackEvent>, ServiceError> {
        self.deployments.operation(actor, id).await?;
        Ok(self.repo.stack_events(id).await?)
    }
}

/// The notifications page shows this many, newest first.
pub const NOTIFICATIONS_LIMIT: usize = 50;

/// The inbox reads at most this many waiting operations (approvals and previews together).
pub const INBOX_LIMIT: usize = 500;
