//! The reconciler: keeps every deployment's view of its stack current — status (a stack gone
//! outside the toolkit shows as `missing`), outputs, drift verdict, and health from the stack's
//! `HealthCheckUrl` output — by walking all deployments every `NEXUS_RECONCILE_SECONDS`.
//!
//! Where customers' accounts forward CloudFormation's stack status events (EventBridge -> SQS,
//! `NEXUS_STACK_EVENTS_QUEUE_URL`), `stack_events` hands each named stack to `reconcile_stack`
//! at once; the passes stay as the safety net for events lost or never sent.
//!
//! AWS calls are bounded per account (`NEXUS_RECONCILE_RATE` per second; accounts are walked
//! side by side, a few at a time), so a large customer never sees a burst from the toolkit.
//! Deployments an operation is changing are left to the operation.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::sync::Semaphore;

use super::{
    deployer::{Deployer, Target},
    engine::probe,
};
use crate::{
    domain::{
        ids::Id,
        lifecycle::{DeploymentStatus, Drift, Health},
        stacks::{StackPhase, parse_stack_name, stack_phase},
    },
    ssr::{
        clock,
        http_client::StatusProbe,
        metrics::Metrics,
        repo::{DeploymentRecord, Repo, RepoError},
    },
};

#[derive(Clone, Debug)]
pub struct ReconcilerConfig {
    /// Time between passes; `None`: no background passes.
    pub interval: Option<Duration>,
    /// AWS calls per second per account.
    pub per_account_rate: f64,
    /// Accounts reconciled at once.
    pub accounts_in_parallel: usize,
}

impl Default for ReconcilerConfig {
    fn default() -> Self {
        ReconcilerConfig {
            interval: Some(Duration::from_secs(300)),
            per_account_rate: 2.0,
            accounts_in_parallel: 8,
        }
    }
}

/// What one pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PassReport {
    pub checked: u64,
    pub changed: u64,
    pub aws_calls: u64,
    pub errors: u64,
}

pub struct Reconciler {
    repo: Repo,
    deployer: Arc<dyn Deployer>,
    http: Arc<dyn StatusProbe>,
    metrics: Arc<Metrics>,
    config: ReconcilerConfig,
}

/// A stored deployment's fields the reconciler may change.
fn observed(d: &DeploymentRecord) -> (DeploymentStatus, Health, Drift, BTreeMap<String, String>) {
    let d = &d.deployment;
    (d.status, d.health, d.drift, d.outputs.clone())
}

impl Reconciler {
    pub fn new(
        repo: Repo,
        deployer: Arc<dyn Deployer>,
        http: Arc<dyn StatusProbe>,
        metrics: Arc<Metrics>,
        config: ReconcilerConfig,
    ) -> Self {
        Reconciler { repo, deployer, http, metrics, config }
    }

    pub async fn run(self: Arc<Self>) {
        let Some(interval) = self.config.interval else { return };
        loop {
            tokio::time::sleep(interval).await;
            match self.pass().await {
                Ok(r) => tracing::info!(
                    checked = r.checked,
                    changed = r.changed,
                    errors = r.errors,
                    "reconciler pass"
                ),
                Err(e) => tracing::warn!(error = %e, "reconciler pass failed"),
            }
        }
    }

    /// One walk over every deployment.
    pub async fn pass(&self) -> Result<PassReport, RepoError> {
        let started = Instant::now();
        // Group by account and region: the unit the call rate is bounded on.
        let mut groups: HashMap<(String, String), Vec<(DeploymentRecord, Target)>> = HashMap::new();
        let mut envs: HashMap<Id, Option<Target>> = HashMap::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = self.repo.all_deployments(500, cursor.as_deref()).await?;
            for r in page.items {
                if !matches!(
                    r.deployment.status,
                    DeploymentStatus::Active | DeploymentStatus::UpdateFailed | DeploymentStatus::Missing
                ) {
                    continue;
                }
                let env_id = r.deployment.environment_id.clone();
                if !envs.contains_key(&env_id) {
                    let target = match self.repo.environment(&env_id).await {
                        Ok(e) => Some(Target::of(&e, "nexus-reconciler")),
                        Err(RepoError::NotFound) => None,
                        Err(e) => return Err(e),
                    };
                    envs.insert(env_id.clone(), target);
                }
                if let Some(Some(t)) = envs.get(&env_id) {
                    groups.entry((t.account_id.clone(), t.region.clone())).or_default().push((r, t.clone()));
                }
            }
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        let slots = Arc::new(Semaphore::new(self.config.accounts_in_parallel.max(1)));
        let pause = Duration::from_secs_f64(1.0 / self.config.per_account_rate.max(0.01));
        let mut tasks = Vec::new();
        for (_, items) in groups {
            let slots = slots.clone();
            tasks.push(async move {
                let _slot = slots.acquire().await;
                let mut report = PassReport::default();
                for (i, (r, target)) in items.into_iter().enumerate() {
                    if i > 0 {
                        tokio::time::sleep(pause).await;
                    }
                    report.checked += 1;
                    report.aws_calls += 1;
                    match self.reconcile(r, &target).await {
                        Ok(true) => report.changed += 1,
                        Ok(false) => {}
                        Err(e) => {
                            report.errors += 1;
                            tracing::debug!(error = %e, "deployment not reconciled");
                        }
                    }
                }
                report
            });
        }
        let mut total = PassReport::default();
        for r in futures::future::join_all(tasks).await {
            total.checked += r.checked;
            total.changed += r.changed;
            total.aws_calls += r.aws_calls;
            total.errors += r.errors;
        }
        self.metrics.reconciled(started.elapsed(), total.checked, total.changed);
        Ok(total)
    }

    /// Looks at the deployment a stack of this name belongs to, now (a stack status event named
    /// it): `Some(changed)`, or `None` when no deployment of the toolkit has that stack.
    /// Deployments an operation is changing are left to it.
    pub async fn reconcile_stack(&self, stack_name: &str) -> Result<Option<bool>, String> {
        for (capability, slug, env, _) in parse_stack_name(stack_name) {
            let customer = match self.repo.customer_by_slug(&slug).await {
                Ok(c) => c,
                Err(RepoError::NotFound) => continue,
                Err(e) => return Err(e.to_string()),
            };
            let page = self
                .repo
                .deployments_by_customer(&customer.id, Some(env), 50, None)
                .await
                .map_err(|e| e.to_string())?;
            let Some(record) = page.items.into_iter().find(|r| r.deployment.capability == capability) else {
                continue;
            };
            if !matches!(
                record.deployment.status,
                DeploymentStatus::Active | DeploymentStatus::UpdateFailed | DeploymentStatus::Missing
            ) {
                return Ok(Some(false));
            }
            let e =
                self.repo.environment(&record.deployment.environment_id).await.map_err(|e| e.to_string())?;
            return self.reconcile(record, &Target::of(&e, "nexus-reconciler")).await.map(Some);
        }
        Ok(None)
    }

    /// Brings one deployment up to date; `true` when something changed.
    async fn reconcile(&self, before: DeploymentRecord, target: &Target) -> Result<bool, String> {
        let d = &before.deployment;
        let stack_ref = d.stack_id.clone().unwrap_or_else(|| d.stack_name.clone());
        let stack = self.deployer.stack(target, &stack_ref).await.map_err(|e| e.to_string())?;
        let mut after = before.clone();
        let a = &mut after.deployment;
        match stack.filter(|s| stack_phase(&s.status) != StackPhase::Deleted) {
            None => {
                a.status = DeploymentStatus::Missing;
                a.health = Health::Unknown;
            }
            Some(s) => {
                if a.status == DeploymentStatus::Missing {
                    a.status = DeploymentStatus::Active;
                }
                a.outputs = s.outputs.clone();
                a.drift = match s.drift.as_deref() {
                    Some("IN_SYNC") => Drift::InSync,
                    Some("DRIFTED") => Drift::Drifted,
                    _ => a.drift,
                };
                a.health = probe(
                    self.http.as_ref(),
                    s.outputs.get(super::engine::HEALTH_OUTPUT).map(String::as_str),
                )
                .await;
            }
        }
        let changed = observed(&before) != observed(&after);
        let stale = d.last_synced_at.is_none_or(|t| clock::now().millis() - t.millis() > 3_600_000);
        if !(changed || stale) {
            return Ok(false);
        }
        after.deployment.last_synced_at = Some(clock::now());
        match self.repo.update_deployment(&before, after).await {
            Ok(_) => Ok(changed),
            // An operation or a user changed it meanwhile: the next pass looks again.
            Err(RepoError::Conflict(_)) => Ok(false),
            Err(e) => Err(e.to_string()),
        }
    }
}
