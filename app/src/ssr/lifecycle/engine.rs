//! The operation engine: moves stored operations through the lifecycle state machine, one
//! step at a time, each step stored before the next AWS call.
//!
//! Exactly once: a worker holds an operation only while its lease (a conditional write) is
//! current, and every save names the revision it read, so a worker whose lease was taken over
//! loses its next write and stops. The AWS side is idempotent on its own: one change-set name
//! per operation (a retried create finds it), execution only while the change set is still
//! AVAILABLE (with a token derived from the operation id), deletion with a token.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use tokio::sync::{Notify, Semaphore};

use super::{
    crash,
    deployer::{ChangeSetRequest, ChangeSetStatus, DeployError, Deployer, Target, TemplateSource},
    notifier::{Notifier, OperationEvent},
    secrets::ParameterCipher,
};
use crate::{
    domain::{
        lifecycle::{
            DeploymentStatus, Drift, Health, OperationKind, OperationState, check_transition,
            is_worker_state, status_after,
        },
        model::{CUSTOMER_ROLE_VERSION_PARAMETER, ConnectionStatus, Environment, FailureCause, Operation},
        stacks::{self, StackPhase, TokenStep},
        time::Timestamp,
    },
    ssr::{
        artifacts::ArtifactStore,
        catalog::SharedCatalog,
        clock,
        metrics::Metrics,
        repo::{DeploymentRecord, Repo, RepoError},
    },
};

/// Timings of the engine (`NEXUS_WORKER_*`, `NEXUS_OPERATION_TIMEOUT_MINUTES`).
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// How long a claim lasts without renewal.
    pub lease: Duration,
    /// How often the queue is read when nothing wakes the worker.
    pub poll: Duration,
    /// How often a running stack is looked at.
    pub follow: Duration,
    /// Operations one process drives at once.
    pub concurrency: usize,
    /// How long an operation may run before it is failed.
    pub timeout: Duration,
    /// Blue-green: how long the new colour may take to answer healthy.
    pub health_wait: Duration,
    /// Blue-green: how long the old colour stays after the switch.
    pub bake: Duration,
    /// An operation first checks the environment's connection when the last successful check
    /// is older than this (the role may have been changed or removed meanwhile).
    pub connect_max_age: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            lease: Duration::from_secs(30),
            poll: Duration::from_secs(1),
            follow: Duration::from_secs(2),
            concurrency: 8,
            timeout: Duration::from_secs(3600),
            health_wait: Duration::from_secs(300),
            bake: Duration::from_secs(300),
            connect_max_age: Duration::from_secs(24 * 3600),
        }
    }
}

/// Why a step stopped.
#[derive(Debug)]
enum StepError {
    /// Another worker or a user changed the operation: let go.
    LostLease,
    /// Try again later (AWS throttling, 5xx, the store unavailable).
    Transient(String),
    /// The operation cannot succeed: it fails with this message.
    Fatal(String),
}

impl From<RepoError> for StepError {
    fn from(e: RepoError) -> Self {
        match e {
            RepoError::Conflict(_) => StepError::LostLease,
            other => StepError::Transient(format!("the store: {other}")),
        }
    }
}

impl From<DeployError> for StepError {
    fn from(e: DeployError) -> Self {
        if e.is_transient() { StepError::Transient(e.to_string()) } else { StepError::Fatal(e.to_string()) }
    }
}

pub struct Engine {
    pub(crate) repo: Repo,
    catalog: SharedCatalog,
    deployer: Arc<dyn Deployer>,
    notifier: Arc<dyn Notifier>,
    pub(crate) cipher: ParameterCipher,
    artifacts: Arc<dyn ArtifactStore>,
    metrics: Arc<Metrics>,
    pub(crate) config: EngineConfig,
    worker_id: String,
    wake: Notify,
    http: crate::ssr::http_client::HttpClient,
    /// Operations this process drives at once (the worker loop and `start_now` share them).
    slots: Arc<Semaphore>,
    /// Whether this process runs a worker (`NEXUS_WORKER`).
    running: std::sync::atomic::AtomicBool,
}

/// The stack output a capability's health check is read from.
pub const HEALTH_OUTPUT: &str = "HealthCheckUrl";

/// Health from a `HealthCheckUrl`: 2xx within the timeout is healthy, anything else degraded,
/// no URL unknown.
pub async fn probe(http: &crate::ssr::http_client::HttpClient, url: Option<&str>) -> Health {
    match url.filter(|u| !u.is_empty()) {
        None => Health::Unknown,
        Some(u) => match http.status(u, Duration::from_secs(3)).await {
            Ok(code) if (200..300).contains(&code) => Health::Healthy,
            Ok(_) | Err(_) => Health::Degraded,
        },
    }
}

fn ms(d: Duration) -> i64 {
    d.as_millis() as i64
}

impl Engine {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        repo: Repo,
        catalog: SharedCatalog,
        deployer: Arc<dyn Deployer>,
        notifier: Arc<dyn Notifier>,
        cipher: ParameterCipher,
        artifacts: Arc<dyn ArtifactStore>,
        metrics: Arc<Metrics>,
        config: EngineConfig,
        http: crate::ssr::http_client::HttpClient,
    ) -> Self {
        let worker_id = format!("worker-{}", crate::ssr::ids::new_id());
        let config_concurrency = config.concurrency;
        Engine {
            repo,
            catalog,
            deployer,
            notifier,
            cipher,
            artifacts,
            metrics,
            config,
            worker_id,
            wake: Notify::new(),
            http,
            slots: Arc::new(Semaphore::new(config_concurrency)),
            running: std::sync::atomic::AtomicBool::new(false),
        }
    }

    pub fn deployer(&self) -> &Arc<dyn Deployer> {
        &self.deployer
    }

    /// Something was queued: look now rather than at the next poll.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// A request just queued `op`: claim and drive it now instead of at the next poll (the
    /// claim is the same conditional write, so the loop or another replica racing for it is
    /// harmless). Nothing happens in a process without a worker.
    pub fn start_now(self: &Arc<Self>, op: Operation) {
        if !self.running.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        let engine = self.clone();
        tokio::spawn(async move {
            let Ok(permit) = engine.slots.clone().try_acquire_owned() else {
                engine.wake();
                return;
            };
            if let Some(op) = engine.claim(op).await {
                engine.drive(op).await;
            }
            drop(permit);
            // A slot is free: queued work need not wait for the next poll.
            engine.wake();
        });
    }

    /// The worker loop: claims what is due and drives it, until the process ends.
    pub async fn run(self: Arc<Self>) {
        tracing::info!(worker = %self.worker_id, "lifecycle worker started");
        self.running.store(true, std::sync::atomic::Ordering::Relaxed);
        let slots = self.slots.clone();
        loop {
            match self.repo.work_queue(200).await {
                Ok(ops) => {
                    let now = clock::now();
                    for op in ops {
                        let free = op.lease_until.is_none_or(|t| t < now);
                        let due = op.not_before.is_none_or(|t| t <= now);
                        if !(free && due && is_worker_state(op.state)) {
                            continue;
                        }
                        let Ok(permit) = slots.clone().try_acquire_owned() else { break };
                        if let Some(op) = self.claim(op).await {
                            let engine = self.clone();
                            tokio::spawn(async move {
                                engine.drive(op).await;
                                drop(permit);
                                engine.wake();
                            });
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot read the operation queue"),
            }
            tokio::select! {
                _ = tokio::time::sleep(self.config.poll) => {}
                _ = self.wake.notified() => {}
            }
        }
    }

    async fn claim(&self, mut op: Operation) -> Option<Operation> {
        // Operations stored before these fields existed take them from their deployment.
        if (op.capability.is_empty() || op.stack_name.is_empty())
            && let Ok(r) = self.repo.deployment(&op.deployment_id).await
        {
            if op.capability.is_empty() {
                op.capability = r.deployment.capability.clone();
            }
            if op.stack_name.is_empty() {
                op.stack_name = r.deployment.stack_name.clone();
            }
        }
        op.lease_owner = Some(self.worker_id.clone());
        op.lease_until = Some(Timestamp::from_millis(clock::now().millis() + ms(self.config.lease)));
        op.attempts += 1;
        if op.deadline.is_none() {
            op.deadline = Some(Timestamp::from_millis(clock::now().millis() + ms(self.config.timeout)));
        }
        match self.repo.save_operation(&mut op).await {
            Ok(()) => Some(op),
            Err(RepoError::Conflict(_)) => None,
            Err(e) => {
                tracing::warn!(error = %e, operation = %op.id, "cannot claim an operation");
                None
            }
        }
    }

    /// Runs an operation as far as it goes now; on a transient error it is left for a retry
    /// with backoff, on a fatal one it fails.
    async fn drive(&self, mut op: Operation) {
        let span = tracing::info_span!("operation", id = %op.id, kind = op.kind.as_str());
        let _enter = span.enter();
        match self.advance(&mut op).await {
            Ok(()) => {}
            Err(StepError::LostLease) => {
                tracing::info!(operation = %op.id, "the operation changed elsewhere: letting go");
                // Cancelled while its change set was being made: the cancel found none to delete.
                if op.state == OperationState::CreatingChangeSet
                    && op.change_set_id.is_some()
                    && let Ok(now) = self.repo.operation(&op.id).await
                    && now.state == OperationState::Cancelled
                    && let Ok(d) = self.repo.deployment(&op.deployment_id).await
                {
                    self.discard_change_set(&op, &d.deployment.environment_id).await;
                }
            }
            Err(StepError::Transient(message)) => {
                let now = clock::now();
                if op.deadline.is_some_and(|d| d < now) {
                    let _ = self.fail(&mut op, format!("gave up at the deadline: {message}"), None).await;
                    return;
                }
                let backoff = backoff_ms(op.attempts);
                tracing::warn!(operation = %op.id, retry_in_ms = backoff, %message, "transient failure: retrying later");
                op.lease_owner = None;
                op.lease_until = None;
                op.not_before = Some(Timestamp::from_millis(now.millis() + backoff));
                op.error = Some(message);
                let _ = self.repo.save_operation(&mut op).await;
            }
            Err(StepError::Fatal(message)) => {
                if let Err(e) = self.fail(&mut op, message, None).await {
                    tracing::warn!(operation = %op.id, error = ?e, "cannot record the failure: the lease will expire");
                }
            }
        }
    }

    /// A cancelled preview's change set is deleted, and so is the empty stack (REVIEW_IN_PROGRESS)
    /// a first deploy's change set made. Best effort, logged: AWS itself drops a stack's change
    /// sets when the next one is executed, and the next deploy takes over an empty stack.
    pub async fn discard_change_set(&self, op: &Operation, environment: &crate::domain::ids::Id) {
        let env = match self.repo.environment(environment).await {
            Ok(env) => env,
            Err(e) => {
                tracing::warn!(operation = %op.id, error = %e, "change set of a cancelled operation left: no environment");
                return;
            }
        };
        let target = Target::of(&env, format!("nexus-{}", op.id));
        let deployer = &self.deployer;
        let name = stacks::change_set_name(&op.id);
        if let Err(e) = deployer.delete_change_set(&target, &op.stack_name, &name).await {
            tracing::info!(operation = %op.id, error = %e, "no change set deleted for the cancelled operation");
        }
        match deployer.stack(&target, &op.stack_name).await {
            Ok(Some(s)) if s.status == "REVIEW_IN_PROGRESS" => {
                let token = stacks::client_token(&op.id, stacks::TokenStep::Delete);
                if let Err(e) = deployer.delete_stack(&target, &op.stack_name, &token).await {
                    tracing::warn!(operation = %op.id, error = %e, "the empty stack of a cancelled deploy stays");
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::info!(operation = %op.id, error = %e, "stack of a cancelled operation not looked at")
            }
        }
    }

    fn lease_until(&self) -> Option<Timestamp> {
        Some(Timestamp::from_millis(clock::now().millis() + ms(self.config.lease)))
    }

    /// Saves `op` in state `to` (a legal transition), renewing the lease, and publishes it.
    async fn transition(&self, op: &mut Operation, to: OperationState) -> Result<(), StepError> {
        check_transition(op.kind, op.state, to).map_err(|e| StepError::Fatal(e.to_string()))?;
        let before = op.clone();
        op.state = to;
        if is_worker_state(to) {
            op.lease_until = self.lease_until();
        } else {
            // Waiting for a user: no worker holds it.
            op.lease_owner = None;
            op.lease_until = None;
        }
        if op.started_at.is_none() {
            op.started_at = Some(clock::now());
        }
        if let Err(e) = self.repo.save_operation(op).await {
            *op = before;
            return Err(e.into());
        }
        self.published(op).await;
        Ok(())
    }

    /// Renews the lease (a save at the same state).
    async fn renew(&self, op: &mut Operation) -> Result<(), StepError> {
        op.lease_until = self.lease_until();
        self.repo.save_operation(op).await.map_err(Into::into)
    }

    /// Tells the notifiers (and the metrics) about the operation's new state; requests and user
    /// decisions are announced by the service, worker steps here.
    pub async fn published(&self, op: &Operation) {
        self.metrics.operation_state(op.kind.as_str(), op.state.as_str());
        if let Err(e) = self.notifier.publish(&OperationEvent::of(op, clock::now())).await {
            tracing::warn!(operation = %op.id, error = %e, "the operation event was not published");
        }
    }

    /// Where the operation acts: the environment's account, the session named after it. When
    /// the environment's last successful connection check is older than `connect_max_age` (or
    /// there was none), it is checked first and the operation fails, saying so, if it does not
    /// pass; the result is stored on the environment like a user's check.
    async fn target(&self, op: &Operation, deployment: &DeploymentRecord) -> Result<Target, StepError> {
        let env = self.repo.environment(&deployment.deployment.environment_id).await?;
        let target = Target::of(&env, format!("nexus-{}", op.id));
        let now = clock::now();
        let fresh = env.connection == ConnectionStatus::Connected
            && env
                .connection_checked_at
                .is_some_and(|t| now.millis() - t.millis() < self.config.connect_max_age.as_millis() as i64);
        if fresh {
            return Ok(target);
        }
        let (checked, outcome) = self.check_connection(&env, &target).await;
        if let Err(e) = &outcome
            && e.is_transient()
        {
            return Err(StepError::Transient(e.to_string()));
        }
        // Someone changed the environment meanwhile: their write wins; the next step checks again.
        if let Err(e) = self.repo.update_environment(checked.clone()).await {
            tracing::info!(operation = %op.id, error = %e, "the connection check was not stored");
        }
        match outcome {
            Ok(()) => Ok(target),
            Err(_) => Err(StepError::Fatal(format!(
                "the account could not be reached through the environment's role ({}); check the connection on the customer page",
                checked.connection_error.unwrap_or_default()
            ))),
        }
    }

    /// Checks an environment's connection: AssumeRole with its external id, the account behind
    /// it, and the customer role's version. Answers the environment as it is to be stored after
    /// the check (status, time, an error that names no toolkit ARN), and the outcome. A user's
    /// connect and an operation's stale-connection check both go through here.
    pub(crate) async fn check_connection(
        &self,
        env: &Environment,
        target: &Target,
    ) -> (Environment, Result<(), DeployError>) {
        let outcome = self.deployer.verify_account(target).await;
        let mut checked = env.clone();
        checked.connection_checked_at = Some(clock::now());
        match &outcome {
            Ok(()) => {
                checked.connection = ConnectionStatus::Connected;
                checked.connection_error = None;
                // Roles before version 2 neither have the parameter nor may read it.
                checked.role_version =
                    match self.deployer.parameter(target, CUSTOMER_ROLE_VERSION_PARAMETER).await {
                        Ok(Some(v)) => Some(v.trim().parse().unwrap_or(1)),
                        Ok(None) | Err(DeployError::Access(_)) => Some(1),
                        Err(e) => {
                            tracing::warn!(error = %e, "the customer role's version could not be read");
                            env.role_version
                        }
                    };
            }
            Err(e) => {
                checked.connection = ConnectionStatus::Failed;
                checked.connection_error = Some(stacks::without_foreign_arns(&e.to_string(), &env.role_arn));
            }
        }
        (checked, outcome)
    }

    /// The template inline, or by URL from the artifacts bucket when it is too big.
    async fn template(&self, op: &Operation) -> Result<TemplateSource, StepError> {
        let version =
            op.target_version.clone().ok_or_else(|| StepError::Fatal("no target version".into()))?;
        let (body, needs_url, sha) = {
            let catalog = self.catalog.read().unwrap_or_else(|p| p.into_inner());
            let v = catalog.version(&op.capability, &version).ok_or_else(|| {
                StepError::Fatal(format!("{} {version} is not in the catalog", op.capability))
            })?;
            (v.template_body.clone(), v.needs_url, v.meta.template_sha256.clone())
        };
        if !needs_url {
            return Ok(TemplateSource::Body(body));
        }
        let key = format!("templates/{}/{version}-{}.template", op.capability, &sha[..12.min(sha.len())]);
        match self.artifacts.url_for(&key, body.as_bytes()).await {
            Ok(Some(url)) => Ok(TemplateSource::Url(url)),
            Ok(None) => Err(StepError::Fatal(
                "the template is over 51,200 bytes: CloudFormation needs it from an S3 bucket (set NEXUS_ARTIFACTS_BUCKET)".into(),
            )),
            Err(e) => Err(StepError::Transient(e.to_string())),
        }
    }

    fn tags(&self, op: &Operation, customer_cost_center: &str) -> Vec<(String, String)> {
        vec![
            ("Project".into(), "nexus-toolkit".into()),
            ("Environment".into(), op.environment.as_str().into()),
            ("CostCenter".into(), customer_cost_center.into()),
            ("nexus:capability".into(), op.capability.clone()),
            ("nexus:version".into(), op.target_version.as_ref().map(|v| v.to_string()).unwrap_or_default()),
            ("nexus:deployment".into(), op.deployment_id.to_string()),
        ]
    }

    async fn advance(&self, op: &mut Operation) -> Result<(), StepError> {
        loop {
            if op.deadline.is_some_and(|d| d < clock::now()) {
                return Err(StepError::Fatal("the operation did not finish before its deadline".into()));
            }
            match op.state {
                OperationState::Queued => {
                    if op.kind.uses_change_set() {
                        self.transition(op, OperationState::CreatingChangeSet).await?;
                    } else {
                        self.start_executing(op).await?;
                    }
                }
                OperationState::CreatingChangeSet => {
                    if !self.create_change_set(op).await? {
                        return Ok(());
                    }
                }
                OperationState::Executing => return self.execute(op).await,
                // Waiting for a user, or over.
                _ => return Ok(()),
            }
        }
    }

    /// Moves to Executing and marks the deployment as changing (a drift check changes nothing).
    async fn start_executing(&self, op: &mut Operation) -> Result<(), StepError> {
        let r = self.repo.deployment(&op.deployment_id).await?;
        if op.status_before.is_none() {
            op.status_before = Some(r.deployment.status);
        }
        self.transition(op, OperationState::Executing).await?;
        if op.kind != OperationKind::DriftCheck && r.deployment.status != DeploymentStatus::InProgress {
            let mut after = r.clone();
            after.deployment.status = DeploymentStatus::InProgress;
            after.deployment.last_operation_id = Some(op.id.clone());
            after.deployment.updated_at = clock::now();
            // A concurrent reconciler write only delays the label; the finish sets the truth.
            if let Err(e) = self.repo.update_deployment(&r, after).await {
                tracing::info!(operation = %op.id, error = %e, "deployment not marked in progress");
            }
        }
        Ok(())
    }

    /// Creates (or finds) the change set. `true`: go on; `false`: the operation waits or ended.
    async fn create_change_set(&self, op: &mut Operation) -> Result<bool, StepError> {
        let r = self.repo.deployment(&op.deployment_id).await?;
        let target = self.target(op, &r).await?;
        let customer = self.repo.customer(&r.deployment.customer_id).await?;
        let existing = self.deployer.stack(&target, &op.stack_name).await?;
        if let Some(s) = &existing
            && s.status == "DELETE_IN_PROGRESS"
        {
            tokio::time::sleep(self.config.follow).await;
            self.renew(op).await?;
            return Ok(true);
        }
        // A first deploy that failed leaves a ROLLBACK_COMPLETE stack, which can only be deleted.
        if let Some(s) = &existing
            && s.status == "ROLLBACK_COMPLETE"
        {
            self.deployer
                .delete_stack(&target, &op.stack_name, &stacks::client_token(&op.id, TokenStep::Delete))
                .await?;
            self.renew(op).await?;
            return Ok(true);
        }
        let create = existing
            .as_ref()
            .is_none_or(|s| s.status == "REVIEW_IN_PROGRESS" || s.status == "DELETE_COMPLETE");
        let parameters = self
            .cipher
            .open_all(&op.parameters, &op.deployment_id)
            .map_err(|e| StepError::Fatal(e.to_string()))?;
        let req = ChangeSetRequest {
            stack_name: op.stack_name.clone(),
            change_set_name: stacks::change_set_name(&op.id),
            client_token: stacks::client_token(&op.id, TokenStep::CreateChangeSet),
            create,
            template: self.template(op).await?,
            parameters,
            tags: self.tags(op, &customer.cost_center),
        };
        let info = self.deployer.create_change_set(&target, &req).await?;
        crash::point("after_change_set_created");
        op.change_set_id = Some(info.id.clone());
        op.changes = info.changes.clone();
        match info.status {
            ChangeSetStatus::Empty => {
                if let Err(e) =
                    self.deployer.delete_change_set(&target, &op.stack_name, &req.change_set_name).await
                {
                    tracing::info!(error = %e, "the empty change set stays");
                }
                self.finish(op, OperationState::NoChanges, None, None).await?;
                Ok(false)
            }
            ChangeSetStatus::Failed(reason) => {
                Err(StepError::Fatal(format!("the change set failed: {reason}")))
            }
            ChangeSetStatus::Pending => {
                Err(StepError::Transient("the change set is still being computed".into()))
            }
            // A request that needs approval waits with its change set: the approver decides on
            // exactly this change (approving runs it; see `OperationService::approve`).
            ChangeSetStatus::Ready if op.awaits_approval() => {
                self.transition(op, OperationState::AwaitingApproval).await?;
                Ok(false)
            }
            ChangeSetStatus::Ready if op.auto_execute => {
                self.start_executing(op).await?;
                Ok(true)
            }
            ChangeSetStatus::Ready => {
                self.transition(op, OperationState::PreviewReady).await?;
                Ok(false)
            }
        }
    }

    /// Starts the change (once) and follows the stack to the end.
    async fn execute(&self, op: &mut Operation) -> Result<(), StepError> {
        let r = self.repo.deployment(&op.deployment_id).await?;
        let target = self.target(op, &r).await?;
        if op.kind == OperationKind::DriftCheck {
            return self.drift_check(op, &target).await;
        }
        let token = match op.kind {
            OperationKind::Delete => stacks::client_token(&op.id, TokenStep::Delete),
            _ => stacks::client_token(&op.id, TokenStep::Execute),
        };
        if !op.executed {
            if op.kind == OperationKind::Delete {
                if self.deployer.stack(&target, &op.stack_name).await?.is_some() {
                    self.deployer.delete_stack(&target, &op.stack_name, &token).await?;
                }
            } else {
                let name = stacks::change_set_name(&op.id);
                let cs = self.deployer.change_set(&target, &op.stack_name, &name).await?;
                // Executed already (by this operation before a crash): never a second time.
                if !cs.executed() {
                    self.deployer.execute_change_set(&target, &op.stack_name, &name, &token).await?;
                }
                crash::point("after_change_set_executed");
            }
            op.executed = true;
            self.renew(op).await?;
        }
        // The new colour failed its health wait before a restart: finish removing it.
        if op.blue_green.as_ref().is_some_and(|b| b.abandoned) && op.kind != OperationKind::Delete {
            return self.remove_new_colour(op, &target, None).await;
        }
        let stack_ref = r
            .deployment
            .stack_id
            .clone()
            .filter(|_| op.kind == OperationKind::Delete)
            .unwrap_or_else(|| op.stack_name.clone());
        let mut seen = std::collections::HashSet::new();
        let mut last_renew = clock::now();
        loop {
            let stack = self.deployer.stack(&target, &stack_ref).await?;
            if let Some(s) = &stack {
                let events = self.record_events(op, &target, &s.stack_id, &token, &mut seen).await?;
                op.stack_status = Some(s.status.clone());
                match stacks::stack_phase(&s.status) {
                    StackPhase::InProgress => {}
                    StackPhase::Complete if op.blue_green.is_some() && op.kind != OperationKind::Delete => {
                        return self.cut_over(op, &target, s.clone()).await;
                    }
                    StackPhase::Complete => {
                        let outputs = s.outputs.clone();
                        return self
                            .finish(op, OperationState::Succeeded, Some((s.stack_id.clone(), outputs)), None)
                            .await;
                    }
                    StackPhase::Deleted if op.kind == OperationKind::Delete => {
                        return self.finish(op, OperationState::Succeeded, None, None).await;
                    }
                    StackPhase::Deleted => {
                        let cause = FailureCause {
                            logical_id: None,
                            resource_type: None,
                            reason: "the stack was deleted while the operation ran".into(),
                            stack_status: Some(s.status.clone()),
                        };
                        return self.finish(op, OperationState::Failed, None, Some(cause)).await;
                    }
                    phase @ (StackPhase::RolledBack | StackPhase::Failed) => {
                        let cause = self.cause(op, &target, &s.stack_id, events, &token, &s.status).await;
                        let end = if phase == StackPhase::RolledBack {
                            OperationState::RolledBack
                        } else {
                            OperationState::Failed
                        };
                        return self.finish(op, end, None, Some(cause)).await;
                    }
                }
            } else if op.kind == OperationKind::Delete {
                return self.finish(op, OperationState::Succeeded, None, None).await;
            } else {
                return Err(StepError::Fatal("the stack does not exist".into()));
            }
            if clock::now().millis() - last_renew.millis() > ms(self.config.lease) / 3 {
                self.renew(op).await?;
                last_renew = clock::now();
            }
            tokio::time::sleep(self.config.follow).await;
        }
    }

    /// Stores the operation's new stack events; returns all of its events so far.
    async fn record_events(
        &self,
        op: &Operation,
        target: &Target,
        stack_id: &str,
        token: &str,
        seen: &mut std::collections::HashSet<String>,
    ) -> Result<Vec<stacks::StackEvent>, StepError> {
        let started = op.started_at.unwrap_or(op.created_at);
        let all = self.deployer.stack_events(target, stack_id).await?;
        let own: Vec<_> = all
            .into_iter()
            .filter(|e| match &e.client_request_token {
                Some(t) => t == token,
                None => e.timestamp >= started,
            })
            .collect();
        let fresh: Vec<_> = own.iter().filter(|e| !seen.contains(&e.event_id)).cloned().collect();
        if !fresh.is_empty() {
            self.repo.put_stack_events(&op.id, &fresh).await?;
            seen.extend(fresh.into_iter().map(|e| e.event_id));
        }
        Ok(own)
    }

    /// Which resource failed: from the stack events, or, when only the stack failed (a
    /// pre-deployment validation), from the operation's validation events.
    async fn cause(
        &self,
        op: &Operation,
        target: &Target,
        stack_id: &str,
        mut events: Vec<stacks::StackEvent>,
        token: &str,
        status: &str,
    ) -> FailureCause {
        let cause = stacks::failure_cause(&events, Some(token), Some(status));
        if cause.resource_type.as_deref() != Some("AWS::CloudFormation::Stack") {
            return cause;
        }
        match self.deployer.validation_failures(target, stack_id).await {
            Ok(found) if !found.is_empty() => {
                let started = op.started_at.unwrap_or(op.created_at);
                let fresh: Vec<_> = found.into_iter().filter(|e| e.timestamp >= started).collect();
                if let Err(e) = self.repo.put_stack_events(&op.id, &fresh).await {
                    tracing::warn!(error = %e, "validation events not stored");
                }
                events.extend(fresh);
                stacks::failure_cause(&events, Some(token), Some(status))
            }
            Ok(_) => cause,
            Err(e) => {
                tracing::info!(error = %e, "no validation events");
                cause
            }
        }
    }

    /// Blue-green, once the new colour's stack is complete: wait until it answers healthy,
    /// switch the active colour, keep the old colour for the bake time, delete it. Each step is
    /// saved before the next, so a resumed operation goes on where it stopped.
    async fn cut_over(
        &self,
        op: &mut Operation,
        target: &Target,
        stack: super::deployer::StackInfo,
    ) -> Result<(), StepError> {
        let mut bg = op.blue_green.clone().expect("checked by the caller");
        let url = stack.outputs.get(HEALTH_OUTPUT).cloned();
        if !bg.healthy {
            let started = clock::now();
            loop {
                match probe(&self.http, url.as_deref()).await {
                    Health::Healthy | Health::Unknown => break,
                    Health::Degraded
                        if clock::now().millis() - started.millis() < ms(self.config.health_wait) =>
                    {
                        self.renew(op).await?;
                        tokio::time::sleep(self.config.follow).await;
                    }
                    Health::Degraded => {
                        // Stored before the new colour is removed, so a resumed operation removes
                        // it rather than waiting for its health again.
                        bg.abandoned = true;
                        op.blue_green = Some(bg);
                        self.renew(op).await?;
                        return self.remove_new_colour(op, target, url.as_deref()).await;
                    }
                }
            }
            bg.healthy = true;
            op.blue_green = Some(bg.clone());
            self.renew(op).await?;
        }
        if bg.switched_at.is_none() {
            let name = format!("/nexus/{}/active", op.deployment_id);
            // Read first: a resumed operation that switched before a crash does not switch again.
            if self.deployer.parameter(target, &name).await?.as_deref() != Some(bg.to.as_str()) {
                self.deployer.put_parameter(target, &name, bg.to.as_str()).await?;
            }
            crash::point("after_colour_switched");
            bg.switched_at = Some(clock::now());
            op.blue_green = Some(bg.clone());
            self.renew(op).await?;
        }
        if let (Some(old), Some(from), false) = (bg.old_stack.clone(), bg.from, bg.old_deleted) {
            let bake_end = bg.switched_at.map(|t| t.millis()).unwrap_or(0) + ms(self.config.bake);
            while clock::now().millis() < bake_end {
                let left = Duration::from_millis((bake_end - clock::now().millis()).max(0) as u64);
                tokio::time::sleep(left.min(self.config.lease / 3)).await;
                self.renew(op).await?;
            }
            if old != op.stack_name {
                self.delete_colour(op, target, &old, from).await?;
                crash::point("after_old_colour_deleted");
            }
            bg.old_deleted = true;
            op.blue_green = Some(bg);
            self.renew(op).await?;
        }
        self.finish(op, OperationState::Succeeded, Some((stack.stack_id, stack.outputs)), None).await
    }

    /// Deletes one colour's stack (once: a stack already gone is not asked again) and waits
    /// until it is gone.
    async fn delete_colour(
        &self,
        op: &mut Operation,
        target: &Target,
        stack: &str,
        colour: crate::domain::model::Color,
    ) -> Result<(), StepError> {
        let token = stacks::client_token(&op.id, TokenStep::DeleteStack(colour));
        let mut asked = false;
        while let Some(s) = self.deployer.stack(target, stack).await? {
            match stacks::stack_phase(&s.status) {
                StackPhase::Deleted => break,
                _ if !asked => {
                    self.deployer.delete_stack(target, stack, &token).await?;
                    asked = true;
                }
                _ if s.status == "DELETE_FAILED" => {
                    return Err(StepError::Fatal(format!(
                        "the {} stack could not be deleted: {}",
                        colour.as_str(),
                        s.reason.clone().unwrap_or(s.status)
                    )));
                }
                _ => {
                    tokio::time::sleep(self.config.follow).await;
                    self.renew(op).await?;
                }
            }
        }
        Ok(())
    }

    /// Blue-green, when the new colour never answered healthy: traffic stays on the old colour
    /// (the switch was never made) and the new colour's stack is deleted, so a failed upgrade
    /// leaves nothing running that nobody uses. A first deploy has no other colour: its stack
    /// stays for the user to look at or deploy again.
    async fn remove_new_colour(
        &self,
        op: &mut Operation,
        target: &Target,
        url: Option<&str>,
    ) -> Result<(), StepError> {
        let bg = op.blue_green.clone().expect("checked by the caller");
        let mut message = format!(
            "the {} stack did not answer healthy{} within {} s: traffic stays on {}",
            bg.to.as_str(),
            url.map(|u| format!(" at {u}")).unwrap_or_default(),
            self.config.health_wait.as_secs(),
            bg.from.map(|c| c.as_str()).unwrap_or("nothing"),
        );
        if bg.from.is_some() && bg.old_stack.as_deref() != Some(op.stack_name.as_str()) {
            let stack = op.stack_name.clone();
            self.delete_colour(op, target, &stack, bg.to).await?;
            message.push_str(&format!("; the {} stack was deleted", bg.to.as_str()));
        }
        Err(StepError::Fatal(message))
    }

    async fn drift_check(&self, op: &mut Operation, target: &Target) -> Result<(), StepError> {
        let report = self.deployer.detect_drift(target, &op.stack_name).await?;
        op.drift = report.resources;
        op.stack_status = Some(report.stack_status);
        self.finish(op, OperationState::Succeeded, None, None).await
    }

    /// Fails the operation with a message (and puts its deployment back to what it was).
    async fn fail(
        &self,
        op: &mut Operation,
        message: String,
        cause: Option<FailureCause>,
    ) -> Result<(), StepError> {
        op.error = Some(message);
        // Whatever state it was in, a failure ends it.
        if !crate::domain::lifecycle::can_transition(op.kind, op.state, OperationState::Failed) {
            op.state = OperationState::Executing;
        }
        self.finish(op, OperationState::Failed, None, cause).await
    }

    /// Ends the operation and updates its deployment, in one transaction with the lock release.
    async fn finish(
        &self,
        op: &mut Operation,
        end: OperationState,
        stack: Option<(String, BTreeMap<String, String>)>,
        cause: Option<FailureCause>,
    ) -> Result<(), StepError> {
        check_transition(op.kind, op.state, end).map_err(|e| StepError::Fatal(e.to_string()))?;
        // A changed stack's health is checked once now, so its page says Healthy (or not) at
        // the end of the change rather than at the reconciler's next pass. Blue-green changes
        // checked theirs before the cut-over.
        let health = match (&stack, &op.blue_green) {
            (Some((_, outputs)), None) if end == OperationState::Succeeded => {
                Some(probe(&self.http, outputs.get(HEALTH_OUTPUT).map(String::as_str)).await)
            }
            _ => None,
        };
        let now = clock::now();
        for _ in 0..5 {
            let before = self.repo.deployment(&op.deployment_id).await?;
            let mut after = before.clone();
            let d = &mut after.deployment;
            let status_before = op.status_before.unwrap_or(before.deployment.status);
            if let Some(status) = status_after(op.kind, end, status_before) {
                d.status = status;
            } else if d.status == DeploymentStatus::InProgress {
                d.status = status_before;
            }
            let succeeded = matches!(end, OperationState::Succeeded | OperationState::NoChanges);
            match op.kind {
                OperationKind::Deploy
                | OperationKind::Upgrade
                | OperationKind::Rollback
                | OperationKind::Switch
                    if succeeded =>
                {
                    if let Some(v) = &op.target_version
                        && (v != &d.version || op.parameters != d.parameters)
                    {
                        // A first deploy has nothing before it to roll back to.
                        if op.kind != OperationKind::Deploy {
                            d.previous_version = Some(d.version.clone());
                            d.previous_parameters = d.parameters.clone();
                        }
                        d.version = v.clone();
                        d.parameters = op.parameters.clone();
                    }
                    if let Some((id, outputs)) = &stack {
                        d.stack_id = Some(id.clone());
                        d.outputs = outputs.clone();
                    }
                    if let Some(h) = health {
                        d.health = h;
                    }
                }
                OperationKind::Delete if succeeded => {
                    d.stack_id = None;
                    d.outputs.clear();
                    d.health = Health::Unknown;
                    d.drift = Drift::NotChecked;
                }
                OperationKind::DriftCheck if succeeded => {
                    d.drift = match op.stack_status.as_deref() {
                        Some("IN_SYNC") => Drift::InSync,
                        Some("DRIFTED") => Drift::Drifted,
                        _ => Drift::Unknown,
                    };
                }
                _ => {}
            }
            if let (Some(bg), true) = (&op.blue_green, succeeded && end == OperationState::Succeeded) {
                d.stack_name = op.stack_name.clone();
                d.active_color = Some(bg.to);
                d.health = if bg.healthy { Health::Healthy } else { d.health };
            }
            d.last_operation_id = Some(op.id.clone());
            d.last_synced_at = Some(now);
            d.updated_at = now;
            let mut ended = op.clone();
            ended.state = end;
            ended.finished_at = Some(now);
            ended.lease_owner = None;
            ended.lease_until = None;
            if cause.is_some() {
                ended.failure = cause.clone();
            }
            if succeeded {
                ended.error = None;
            }
            match self.repo.finish_operation(&mut ended, Some((&before, after))).await {
                Ok(()) => {
                    *op = ended;
                    self.published(op).await;
                    return Ok(());
                }
                Err(RepoError::Conflict(_)) => {
                    // Which one changed: the operation (someone else has it) or the deployment?
                    let current = self.repo.operation(&op.id).await?;
                    if current.rev != op.rev {
                        return Err(StepError::LostLease);
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(StepError::Transient("the deployment keeps changing: finishing later".into()))
    }
}

/// Retry delay after the n-th attempt: exponential from 1 s up to 5 min, with jitter.
fn backoff_ms(attempts: u32) -> i64 {
    let base = 1000i64.saturating_mul(1 << attempts.min(8)).min(300_000);
    let mut b = [0u8; 2];
    let _ = getrandom::fill(&mut b);
    base / 2 + (i64::from(u16::from_le_bytes(b)) * base / 2) / 65_535
}

#[cfg(test)]
mod tests {
    use super::backoff_ms;

    #[test]
    fn backoff_grows_and_is_bounded() {
        for attempts in 0..40 {
            let b = backoff_ms(attempts);
            let base = (1000i64 << attempts.min(8)).min(300_000);
            assert!(b >= base / 2 && b <= base, "{attempts}: {b}");
        }
    }
}
