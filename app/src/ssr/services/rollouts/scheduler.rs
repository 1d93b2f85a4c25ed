//! The rollout scheduler: in every process with a worker, it looks at the active rollouts,
//! claims each with a lease (a conditional write on its header, like an operation's), and
//! carries out the step `domain::rollout::next_step` decides: start operations (each in one
//! transaction with the rollout marking its deployment running), wait saying why, pause
//! saying why, wait for approval, or complete. Finished operations settle their deployment's
//! record first. Everything it does is stored before the next step, so a process killed at
//! any point leaves a rollout the next pass (here or on another replica) simply continues.

use std::{collections::HashMap, sync::Arc, time::Duration};

use tokio::sync::Notify;

use super::RolloutService;
use crate::{
    domain::{
        ids::Id,
        lifecycle::OperationState,
        maintenance::{Gate, gate},
        model::EnvironmentName,
        rollout::{Item, ItemState, Progress, RolloutState, Step, next_step},
        rollout_record::{Rollout, RolloutItem, WaveEnd},
        time::Timestamp,
    },
    ssr::{
        audit::{AuditLog, ChangeError, NewEvent},
        clock,
        lifecycle::{crash, notifier::Notifier},
        maintenance,
        repo::{Repo, RepoError},
        services::operations::{OperationService, RolloutStart},
    },
};

/// A creation not finished after this long was cut short (its process died): it is undone.
const CREATION_TIMEOUT_MS: i64 = 5 * 60_000;
/// Active rollouts one pass looks at.
const MAX_ACTIVE: usize = 200;

pub struct RolloutScheduler {
    repo: Repo,
    operations: OperationService,
    audit: Arc<AuditLog>,
    notifier: Arc<dyn Notifier>,
    wake: Arc<Notify>,
    worker_id: String,
    lease: Duration,
    poll: Duration,
}

impl RolloutScheduler {
    pub fn new(service: &RolloutService, worker_id: String, lease: Duration, poll: Duration) -> Self {
        RolloutScheduler {
            repo: service.repo.clone(),
            operations: service.operations.clone(),
            audit: service.audit.clone(),
            notifier: service.notifier.clone(),
            wake: service.scheduler_wake.clone(),
            worker_id,
            lease,
            poll,
        }
    }

    /// Passes over the active rollouts until the process ends.
    pub async fn run(self: Arc<Self>) {
        tracing::info!(worker = %self.worker_id, "rollout scheduler started");
        loop {
            self.tick().await;
            tokio::select! {
                _ = tokio::time::sleep(self.poll) => {}
                _ = self.wake.notified() => {}
            }
        }
    }

    /// One pass over every active rollout this scheduler can claim.
    pub async fn tick(&self) {
        let rollouts = match self.repo.active_rollouts(MAX_ACTIVE).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the active rollouts");
                return;
            }
        };
        let now = clock::now();
        for r in rollouts {
            if r.lease_until.is_some_and(|t| t > now) && r.lease_owner.as_deref() != Some(&self.worker_id) {
                continue;
            }
            let id = r.id.clone();
            if let Err(e) = self.pass(r).await {
                match e {
                    RepoError::Conflict(_) => tracing::debug!(rollout = %id, "the rollout changed elsewhere"),
                    e => {
                        tracing::warn!(rollout = %id, error = %e, "rollout pass stopped: the next one goes on")
                    }
                }
            }
        }
    }

    async fn pass(&self, mut r: Rollout) -> Result<(), RepoError> {
        let now = clock::now();
        if r.state == RolloutState::Creating {
            if now.millis() - r.created_at.millis() > CREATION_TIMEOUT_MS {
                tracing::warn!(rollout = %r.id, "a rollout's creation was cut short: undoing it");
                self.repo.discard_rollout(&r.id).await?;
            }
            return Ok(());
        }
        let mut items = self.repo.rollout_items(&r.id).await?;
        let running = items.iter().any(|i| matches!(i.item.state, ItemState::Running { .. }));
        // Paused or waiting for approval: only operations in flight move it (and the reason
        // it stopped for stays as it was).
        if r.state != RolloutState::Running && !running {
            if r.in_flight {
                // Cancelled, and its last operation has been settled: let it go.
                r.in_flight = false;
                self.repo.save_rollout(&mut r).await?;
            }
            return Ok(());
        }
        // Claim: a second scheduler's claim of the same revision loses here.
        r.lease_owner = Some(self.worker_id.clone());
        r.lease_until = Some(Timestamp::from_millis(now.millis() + self.lease.as_millis() as i64));
        self.repo.save_rollout(&mut r).await?;

        self.settle_finished(&mut items).await?;
        for (wave, at) in finished_waves(&items) {
            if r.wave_finished_at(wave).is_none() {
                r.finished_waves.push(WaveEnd { wave, at });
            }
        }
        if r.state != RolloutState::Running {
            r.in_flight = r.state == RolloutState::Cancelled
                && items.iter().any(|i| matches!(i.item.state, ItemState::Running { .. }));
            r.lease_owner = None;
            r.lease_until = None;
            return self.repo.save_rollout(&mut r).await;
        }
        let held = self.window_holds(&items, now).await;
        let step = {
            let plain: Vec<Item> = items.iter().map(|i| i.item.clone()).collect();
            let approved = r.approved_waves();
            let finished = |wave: u32| r.wave_finished_at(wave);
            let progress = Progress {
                state: r.state,
                items: &plain,
                settings: &r.settings,
                gates: &r.gates,
                finished_at: &finished,
                approved: &approved,
            };
            next_step(&progress, now, &|i: &Item| held.get(&i.deployment_id).cloned())
        };
        let before = r.state;
        match step {
            Step::Start(ids) => {
                r.status_text = None;
                for id in ids {
                    let Some(item) = items.iter_mut().find(|i| i.item.deployment_id == id) else { continue };
                    if !self.start(&r, item).await? {
                        break;
                    }
                }
            }
            Step::Wait(why) => r.status_text = Some(why),
            Step::Pause(why) => {
                r.state = RolloutState::Paused;
                r.status_text = Some(why);
            }
            Step::AwaitApproval { wave } => {
                r.state = RolloutState::AwaitingApproval;
                r.status_text =
                    Some(format!("wave {wave} goes to prod: it waits for an Executive's approval"));
            }
            Step::Complete => {
                r.state = RolloutState::Completed;
                r.status_text = None;
            }
        }
        r.lease_owner = None;
        r.lease_until = None;
        r.updated_at = clock::now();
        if r.state == before {
            self.repo.save_rollout(&mut r).await?;
        } else {
            self.save_decision(&mut r, before).await?;
        }
        if !r.state.is_active() {
            self.repo.release_rollout(&r.id).await?;
        }
        Ok(())
    }

    /// Starts one deployment's operation; `false` when this pass should start no more.
    async fn start(&self, r: &Rollout, item: &mut RolloutItem) -> Result<bool, RepoError> {
        match self.operations.start_for_rollout(r, item).await {
            Ok(op) => {
                tracing::info!(rollout = %r.id, deployment = %item.item.deployment_id, operation = %op.id, "rollout started an operation");
                crash::point("rollout_after_operation_started");
                Ok(true)
            }
            Err(RolloutStart::Skip(why)) => {
                let before = item.item.state.clone();
                item.item.state = ItemState::Skipped;
                item.note = Some(why);
                item.finished_at = Some(clock::now());
                self.repo.save_rollout_item(&before, item).await?;
                Ok(true)
            }
            Err(RolloutStart::Busy) => {
                tracing::info!(rollout = %r.id, deployment = %item.item.deployment_id, "another operation holds the deployment: later");
                Ok(true)
            }
            Err(RolloutStart::Lost) => Err(RepoError::Conflict("the rollout's deployment changed".into())),
            Err(RolloutStart::Failed(e)) => {
                tracing::warn!(rollout = %r.id, error = %e, "cannot start a rollout's operation: next pass");
                Ok(false)
            }
        }
    }

    /// Deployments whose operation ended take its outcome (and their health after it).
    async fn settle_finished(&self, items: &mut [RolloutItem]) -> Result<(), RepoError> {
        for item in items.iter_mut() {
            let ItemState::Running { operation_id } = &item.item.state else { continue };
            let op = match self.repo.operation(operation_id).await {
                Ok(op) => op,
                Err(RepoError::NotFound) => continue,
                Err(e) => return Err(e),
            };
            if !op.state.is_terminal() {
                continue;
            }
            let before = item.item.state.clone();
            if op.state == OperationState::Succeeded {
                item.item.state = ItemState::Succeeded { operation_id: op.id.clone() };
                item.note = None;
            } else {
                let error = match (&op.failure, &op.error) {
                    (Some(f), _) => match &f.logical_id {
                        Some(resource) => format!("{resource}: {}", f.reason),
                        None => f.reason.clone(),
                    },
                    (None, Some(e)) => e.lines().next().unwrap_or_default().to_string(),
                    (None, None) => format!("the operation ended {}", op.state.as_str()),
                };
                item.item.state = ItemState::Failed { operation_id: op.id.clone(), error };
            }
            if let Ok(d) = self.repo.deployment(&op.deployment_id).await {
                item.item.health = d.deployment.health;
            }
            item.finished_at = Some(op.finished_at.unwrap_or_else(clock::now));
            self.repo.save_rollout_item(&before, item).await?;
            crash::point("rollout_after_deployment_settled");
        }
        Ok(())
    }

    /// Why prod deployments may not start now (outside their customer's window), by id.
    async fn window_holds(&self, items: &[RolloutItem], now: Timestamp) -> HashMap<Id, String> {
        let mut by_customer: HashMap<Id, Option<String>> = HashMap::new();
        let mut out = HashMap::new();
        for i in items
            .iter()
            .filter(|i| i.item.environment == EnvironmentName::Prod && i.item.state == ItemState::Waiting)
        {
            if !by_customer.contains_key(&i.item.customer_id) {
                let why = self.customer_hold(&i.item.customer_id, now).await;
                by_customer.insert(i.item.customer_id.clone(), why);
            }
            if let Some(why) = by_customer[&i.item.customer_id].clone() {
                out.insert(i.item.deployment_id.clone(), why);
            }
        }
        out
    }

    async fn customer_hold(&self, customer: &Id, now: Timestamp) -> Option<String> {
        let c = match self.repo.customer(customer).await {
            Ok(c) => c,
            Err(e) => return Some(format!("its customer cannot be read now ({e})")),
        };
        let (Some(zone_name), false) = (c.time_zone.as_deref(), c.windows.is_empty()) else {
            return None;
        };
        let tz = match maintenance::zone(zone_name) {
            Ok(tz) => tz,
            Err(e) => return Some(e),
        };
        let g = gate(&c.windows, &[], now, maintenance::week_time(now, &tz));
        match &g {
            Gate::Open => None,
            Gate::Frozen { reason, until } => Some(format!("frozen until {until}: {reason}")),
            Gate::OutsideWindow { next, in_minutes } => Some(format!(
                "waiting for {}'s window: {next} {zone_name}, in {}{}",
                c.name,
                humanize(*in_minutes),
                maintenance::opens_at(&g, now, &tz).map(|t| format!(" ({t})")).unwrap_or_default()
            )),
        }
    }

    /// Saves a change of state the scheduler decided, with its audit event.
    async fn save_decision(&self, r: &mut Rollout, from: RolloutState) -> Result<(), RepoError> {
        let action = match r.state {
            RolloutState::Paused => "rollout.paused",
            RolloutState::AwaitingApproval => "rollout.awaiting_approval",
            RolloutState::Completed => "rollout.completed",
            _ => "rollout.state",
        };
        let event = NewEvent {
            action: action.into(),
            target: format!("rollout/{}", r.id),
            outcome: "success".into(),
            details: serde_json::json!({"from": from, "to": r.state, "why": r.status_text}),
            ..NewEvent::default()
        };
        let saved = self
            .audit
            .with_change(event, clock::now(), |repo| {
                let mut h = r.clone();
                async move { repo.save_rollout(&mut h).await.map(|()| h) }
            })
            .await;
        match saved {
            Ok(h) => {
                tracing::info!(rollout = %r.id, state = ?h.state, why = ?h.status_text, "rollout decision");
                super::announce(&self.notifier, &h).await;
                *r = h;
                Ok(())
            }
            Err(ChangeError::Change(e)) => Err(e),
            Err(ChangeError::Audit(e)) => Err(RepoError::Conflict(format!("the audit log: {e}"))),
        }
    }
}

/// The waves whose every deployment is done, with when the last one finished.
fn finished_waves(items: &[RolloutItem]) -> Vec<(u32, Timestamp)> {
    let mut by_wave: std::collections::BTreeMap<u32, Option<Timestamp>> = Default::default();
    for i in items {
        let entry = by_wave.entry(i.item.wave).or_insert(Some(Timestamp::from_millis(0)));
        match (entry.as_mut(), i.item.state.done()) {
            (Some(at), true) => *at = (*at).max(i.finished_at.unwrap_or(*at)),
            _ => *entry = None,
        }
    }
    by_wave.into_iter().filter_map(|(w, at)| at.map(|at| (w, at))).collect()
}

fn humanize(minutes: u32) -> String {
    match minutes {
        m if m < 60 => format!("{m} min"),
        m if m % 60 == 0 => format!("{} h", m / 60),
        m => format!("{} h {} min", m / 60, m % 60),
    }
}
