//! The operation engine: moves stored operations through the lifecycle state machine, one
//! step at a time, each step stored before the next AWS call. Here: the worker loop (claim,
//! leases, backoff, drive) and the ending of an operation; `change_sets` makes and finds change
//! sets, `execution` runs them and follows the stack, `blue_green` carries out a colour switch.
//!
//! Exactly once: a worker holds an operation only while its lease (a conditional write) is
//! current, and every save names the revision it read, so a worker whose lease was taken over
//! loses its next write and stops. The AWS side is idempotent on its own: one change-set name
//! per operation (a retried create finds it), execution only while the change set is still
//! AVAILABLE (with a token derived from the operation id), deletion with a token.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use tokio::sync::{Notify, Semaphore};

use super::{
    deployer::{DeployError, Deployer},
    notifier::{Notifier, OperationEvent},
    secrets::ParameterCipher,
};
use crate::{
    domain::{
        lifecycle::{Health, OperationState, check_transition, is_worker_state},
        model::{FailureCause, Operation},
        settlement::{Ending, settle},
        time::Timestamp,
    },
    ssr::{
        artifacts::ArtifactStore,
        catalog::SharedCatalog,
        clock,
        http_client::StatusProbe,
        metrics::Metrics,
        repo::{Repo, RepoError},
    },
};

mod blue_green;
mod change_sets;
mod execution;

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
    /// Try again at this time: the account's circuit is open until then. The operation's own
    /// backoff would keep growing through a long storm and wait past the account's recovery.
    Paused(String, Timestamp),
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
        match e {
            DeployError::Paused { message, until } => StepError::Paused(message, until),
            e if e.is_transient() => StepError::Transient(e.to_string()),
            e => StepError::Fatal(e.to_string()),
        }
    }
}

pub struct Engine {
    repo: Repo,
    catalog: SharedCatalog,
    deployer: Arc<dyn Deployer>,
    notifier: Arc<dyn Notifier>,
    cipher: ParameterCipher,
    artifacts: Arc<dyn ArtifactStore>,
    metrics: Arc<Metrics>,
    config: EngineConfig,
    worker_id: String,
    wake: Notify,
    http: Arc<dyn StatusProbe>,
    /// Operations this process drives at once (the worker loop and `start_now` share them).
    slots: Arc<Semaphore>,
    /// Whether this process runs a worker (`NEXUS_WORKER`).
    running: std::sync::atomic::AtomicBool,
}

/// The stack output a capability's health check is read from.
pub const HEALTH_OUTPUT: &str = "HealthCheckUrl";

/// Health from a `HealthCheckUrl`: 2xx within the timeout is healthy, anything else degraded,
/// no URL unknown.
pub async fn probe(http: &dyn StatusProbe, url: Option<&str>) -> Health {
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
        http: Arc<dyn StatusProbe>,
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

    /// The deployer the engine calls customers' accounts through (behind their circuits).
    pub fn deployer(&self) -> &Arc<dyn Deployer> {
        &self.deployer
    }

    /// This process's worker name (leases name it).
    pub fn worker_id(&self) -> &str {
        &self.worker_id
    }

    /// The engine's timings.
    pub fn config(&self) -> &EngineConfig {
        &self.config
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
            Err(StepError::Transient(message)) => self.retry_later(op, message, None).await,
            Err(StepError::Paused(message, until)) => self.retry_later(op, message, Some(until)).await,
            Err(StepError::Fatal(message)) => {
                if let Err(e) = self.fail(&mut op, message, None).await {
                    tracing::warn!(operation = %op.id, error = ?e, "cannot record the failure: the lease will expire");
                }
            }
        }
    }

    /// Leaves the operation for a later claim: at `at` when given (the account's circuit
    /// half-opens then), else after the backoff its attempts so far earn; past its deadline it
    /// fails instead.
    async fn retry_later(&self, mut op: Operation, message: String, at: Option<Timestamp>) {
        let now = clock::now();
        if op.deadline.is_some_and(|d| d < now) {
            let _ = self.fail(&mut op, format!("gave up at the deadline: {message}"), None).await;
            return;
        }
        let retry_in = match at {
            Some(at) => (at.millis() - now.millis()).max(100),
            None => backoff_ms(op.attempts),
        };
        tracing::warn!(operation = %op.id, retry_in_ms = retry_in, %message, "transient failure: retrying later");
        op.lease_owner = None;
        op.lease_until = None;
        op.not_before = Some(Timestamp::from_millis(now.millis() + retry_in));
        op.error = Some(message);
        let _ = self.repo.save_operation(&mut op).await;
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

    /// Ends the operation and updates its deployment, in one transaction with the lock release
    /// (what both become: `domain::settlement`).
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
                Some(probe(self.http.as_ref(), outputs.get(HEALTH_OUTPUT).map(String::as_str)).await)
            }
            _ => None,
        };
        let ending = Ending { state: end, stack, health, cause, at: clock::now() };
        for _ in 0..5 {
            let before = self.repo.deployment(&op.deployment_id).await?;
            let (deployment, mut ended) = settle(&before.deployment, op, &ending);
            let mut after = before.clone();
            after.deployment = deployment;
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
