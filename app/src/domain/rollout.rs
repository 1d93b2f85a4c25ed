//! A rollout as it runs (issue 22): its deployments by wave and state, its gates, and the
//! scheduler's next step, decided purely from them, so the step is tested here once and the
//! worker only carries it out (creating ordinary operations, exactly once, under leases).
//!
//! A wave starts when the one before it passed its gate: every deployment succeeded, was
//! skipped, or failed within the tolerance; the health stayed Healthy for the bake time (a
//! deployment turning Degraded during the bake counts as a failure); and, before the first prod
//! wave, an approver approved. Beyond the tolerance the rollout pauses itself, saying why.

use serde::{Deserialize, Serialize};

pub use super::rollout_plan::{Gates, Tolerance};
use super::{
    ids::Id,
    lifecycle::Health,
    model::EnvironmentName,
    rollout_plan::{BatchSize, WaveSettings},
    time::Timestamp,
};

#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RolloutState {
    /// Being stored (its deployments are written in batches); a creation cut short is undone.
    Creating,
    Running,
    /// Stopped by a user or by the tolerance: nothing new starts until resumed.
    Paused,
    /// The next wave is prod and waits for an approver.
    AwaitingApproval,
    Completed,
    /// Stopped for good: nothing new starts (operations in flight finish).
    Cancelled,
}

impl RolloutState {
    pub fn is_active(self) -> bool {
        !matches!(self, RolloutState::Completed | RolloutState::Cancelled)
    }
}

/// Where one deployment of the rollout is.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ItemState {
    Waiting,
    /// Its operation was created (once: the id is stored before the operation starts).
    Running {
        operation_id: Id,
    },
    Succeeded {
        operation_id: Id,
    },
    Failed {
        operation_id: Id,
        error: String,
    },
    /// Left out by a user (`skip`), or after it failed and the rollout went on.
    Skipped,
}

impl ItemState {
    pub fn done(&self) -> bool {
        !matches!(self, ItemState::Waiting | ItemState::Running { .. })
    }

    /// The state's name (the progress counters are kept by it).
    pub fn name(&self) -> &'static str {
        match self {
            ItemState::Waiting => "waiting",
            ItemState::Running { .. } => "running",
            ItemState::Succeeded { .. } => "succeeded",
            ItemState::Failed { .. } => "failed",
            ItemState::Skipped => "skipped",
        }
    }
}

#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub deployment_id: Id,
    pub customer_id: Id,
    pub account_id: String,
    pub environment: EnvironmentName,
    /// 1-based wave number.
    pub wave: u32,
    pub state: ItemState,
    /// The deployment's health as last seen (the bake watches it).
    pub health: Health,
}

/// What the scheduler sees of a rollout.
#[derive(Clone)]
pub struct Progress<'a> {
    pub state: RolloutState,
    pub items: &'a [Item],
    pub settings: &'a WaveSettings,
    pub gates: &'a Gates,
    /// When the wave before `wave` (its number) finished, if it did.
    pub finished_at: &'a dyn Fn(u32) -> Option<Timestamp>,
    /// Prod waves approved (by number).
    pub approved: &'a [u32],
}

/// The scheduler's next step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Create operations for these deployments now.
    Start(Vec<Id>),
    /// Nothing to do until something changes (operations running, a bake, a window); why.
    Wait(String),
    /// The tolerance was exceeded: pause, saying why in one sentence.
    Pause(String),
    /// The next wave is prod and needs an approver.
    AwaitApproval {
        wave: u32,
    },
    Complete,
}

/// Why a deployment may not start now (outside its maintenance window, in a freeze), if so.
pub type Held<'a> = &'a dyn Fn(&Item) -> Option<String>;

/// The next step for `p` at `now`; `held` says which deployments a window or freeze holds back.
pub fn next_step(p: &Progress, now: Timestamp, held: Held) -> Step {
    if p.state != RolloutState::Running {
        return Step::Wait(format!("the rollout is {}", state_words(p.state)));
    }
    let total = p.items.len();
    let failed_total = p.items.iter().filter(|i| matches!(i.state, ItemState::Failed { .. })).count();
    if !p.gates.total.allows(failed_total, total) {
        return Step::Pause(format!(
            "{failed_total} of {total} deployments failed, more than the rollout tolerates"
        ));
    }
    let Some(wave) = p.items.iter().filter(|i| !i.state.done()).map(|i| i.wave).min() else {
        return Step::Complete;
    };
    let in_wave: Vec<&Item> = p.items.iter().filter(|i| i.wave == wave).collect();
    // The gate of the wave before this one.
    if wave > 1 && !in_wave.iter().any(|i| i.state != ItemState::Waiting) {
        let before: Vec<&Item> = p.items.iter().filter(|i| i.wave == wave - 1).collect();
        let failed = before.iter().filter(|i| matches!(i.state, ItemState::Failed { .. })).count();
        let degraded = before
            .iter()
            .filter(|i| matches!(i.state, ItemState::Succeeded { .. }) && i.health == Health::Degraded)
            .count();
        if !p.gates.per_wave.allows(failed + degraded, before.len()) {
            return Step::Pause(format!(
                "wave {}: {} of {} deployments failed or turned degraded, more than a wave tolerates",
                wave - 1,
                failed + degraded,
                before.len()
            ));
        }
        if let Some(done) = (p.finished_at)(wave - 1) {
            let bake_ends = Timestamp::from_millis(done.millis() + i64::from(p.gates.bake_minutes) * 60_000);
            if now < bake_ends {
                return Step::Wait(format!("wave {} bakes until {bake_ends}", wave - 1));
            }
        }
        let first_prod =
            in_wave[0].environment == EnvironmentName::Prod && before[0].environment != EnvironmentName::Prod;
        if first_prod && !p.approved.contains(&wave) {
            return Step::AwaitApproval { wave };
        }
    } else if wave == 1
        && in_wave[0].environment == EnvironmentName::Prod
        && !p.approved.contains(&wave)
        && in_wave.iter().all(|i| i.state == ItemState::Waiting)
    {
        return Step::AwaitApproval { wave };
    }
    // Within the wave: as many as the limits allow.
    let running: Vec<&Item> =
        p.items.iter().filter(|i| matches!(i.state, ItemState::Running { .. })).collect();
    let mut free = (p.settings.max_concurrency as usize).saturating_sub(running.len());
    let mut per_account: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for i in &running {
        *per_account.entry(i.account_id.as_str()).or_default() += 1;
    }
    let mut start = Vec::new();
    let mut reasons = Vec::new();
    for i in in_wave.iter().filter(|i| i.state == ItemState::Waiting) {
        if free == 0 {
            break;
        }
        if let Some(why) = held(i) {
            reasons.push(why);
            continue;
        }
        let n = per_account.entry(i.account_id.as_str()).or_default();
        if *n >= p.settings.per_account as usize {
            continue;
        }
        *n += 1;
        free -= 1;
        start.push(i.deployment_id.clone());
    }
    if !start.is_empty() {
        return Step::Start(start);
    }
    Step::Wait(match reasons.first() {
        Some(why) => why.clone(),
        None => format!("wave {wave}: operations running"),
    })
}

pub fn state_words(s: RolloutState) -> &'static str {
    match s {
        RolloutState::Creating => "being created",
        RolloutState::Running => "running",
        RolloutState::Paused => "paused",
        RolloutState::AwaitingApproval => "waiting for approval",
        RolloutState::Completed => "completed",
        RolloutState::Cancelled => "cancelled",
    }
}

/// The canary size a setting gives a wave of `n` (for the progress view).
pub fn canary_of(settings: &WaveSettings, n: usize) -> usize {
    match settings.canary {
        BatchSize::Count(c) => (c as usize).min(n),
        BatchSize::Percent(p) => (n * p as usize).div_ceil(100).clamp(1, n.max(1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(n: u64, wave: u32, env: EnvironmentName, account: &str) -> Item {
        Item {
            deployment_id: Id::from_parts(n, 1),
            customer_id: Id::from_parts(n, 2),
            account_id: account.into(),
            environment: env,
            wave,
            state: ItemState::Waiting,
            health: Health::Healthy,
        }
    }

    fn op(n: u64) -> Id {
        Id::from_parts(n, 9)
    }

    const NOW: i64 = 1_800_000_000_000;

    fn step(
        items: &[Item],
        settings: &WaveSettings,
        gates: &Gates,
        finished: Option<i64>,
        approved: &[u32],
    ) -> Step {
        let finished_at = move |_: u32| finished.map(Timestamp::from_millis);
        let p = Progress {
            state: RolloutState::Running,
            items,
            settings,
            gates,
            finished_at: &finished_at,
            approved,
        };
        next_step(&p, Timestamp::from_millis(NOW), &|_| None)
    }

    #[test]
    fn a_wave_starts_as_many_as_the_limits_allow() {
        use EnvironmentName::*;
        let items: Vec<Item> = (0..6).map(|n| item(n, 1, Dev, if n < 4 { "A" } else { "B" })).collect();
        let settings = WaveSettings { max_concurrency: 3, per_account: 2, ..WaveSettings::default() };
        let gates = Gates::default();
        // Account A takes two, B one: three at once.
        assert_eq!(
            step(&items, &settings, &gates, None, &[]),
            Step::Start(vec![
                items[0].deployment_id.clone(),
                items[1].deployment_id.clone(),
                items[4].deployment_id.clone()
            ])
        );
        let mut busy = items.clone();
        for i in [0, 1, 4] {
            busy[i].state = ItemState::Running { operation_id: op(i as u64) };
        }
        assert_eq!(
            step(&busy, &settings, &gates, None, &[]),
            Step::Wait("wave 1: operations running".into())
        );
    }

    #[test]
    fn gates_between_waves_tolerance_bake_and_approval_before_prod() {
        use EnvironmentName::*;
        let mut items = vec![item(1, 1, Dev, "A"), item(2, 1, Dev, "B"), item(3, 2, Prod, "A")];
        let settings = WaveSettings::default();
        let gates = Gates { bake_minutes: 10, per_wave: Tolerance::Count(0), total: Tolerance::Count(1) };
        items[0].state = ItemState::Succeeded { operation_id: op(1) };
        items[1].state = ItemState::Succeeded { operation_id: op(2) };
        // Finished a minute ago: it bakes.
        let wait = step(&items, &settings, &gates, Some(NOW - 60_000), &[]);
        assert!(matches!(&wait, Step::Wait(w) if w.starts_with("wave 1 bakes until")), "{wait:?}");
        // Baked: the prod wave waits for its approver, then starts.
        assert_eq!(
            step(&items, &settings, &gates, Some(NOW - 600_000), &[]),
            Step::AwaitApproval { wave: 2 }
        );
        assert_eq!(
            step(&items, &settings, &gates, Some(NOW - 600_000), &[2]),
            Step::Start(vec![items[2].deployment_id.clone()])
        );
        // Degraded during the bake counts as a failure: beyond the wave's tolerance, pause.
        let mut degraded = items.clone();
        degraded[1].health = Health::Degraded;
        let pause = step(&degraded, &settings, &gates, Some(NOW - 600_000), &[2]);
        assert_eq!(
            pause,
            Step::Pause(
                "wave 1: 1 of 2 deployments failed or turned degraded, more than a wave tolerates".into()
            )
        );
        // A wave that tolerates one failure goes on past it.
        let lenient = Gates { per_wave: Tolerance::Percent(50), ..gates };
        let mut failed = items.clone();
        failed[1].state = ItemState::Failed { operation_id: op(2), error: "bucket exists".into() };
        assert_eq!(
            step(&failed, &settings, &lenient, Some(NOW - 600_000), &[2]),
            Step::Start(vec![items[2].deployment_id.clone()])
        );
        // Beyond the total tolerance the rollout pauses whatever the wave allows.
        let mut two = failed.clone();
        two[0].state = ItemState::Failed { operation_id: op(1), error: "x".into() };
        assert_eq!(
            step(&two, &settings, &lenient, Some(NOW - 600_000), &[2]),
            Step::Pause("2 of 3 deployments failed, more than the rollout tolerates".into())
        );
        // All done.
        let mut done = items.clone();
        done[2].state = ItemState::Skipped;
        assert_eq!(step(&done, &settings, &gates, Some(NOW - 600_000), &[2]), Step::Complete);
    }

    #[test]
    fn a_held_deployment_waits_visibly_and_a_paused_rollout_starts_nothing() {
        use EnvironmentName::*;
        let items = vec![item(1, 1, Prod, "A")];
        let settings = WaveSettings::default();
        let gates = Gates::default();
        let finished_at = |_: u32| None;
        let p = Progress {
            state: RolloutState::Running,
            items: &items,
            settings: &settings,
            gates: &gates,
            finished_at: &finished_at,
            approved: &[1],
        };
        let held = |_: &Item| Some("waiting for window: Tue 02:00 Europe/Berlin, in 3 h".to_string());
        assert_eq!(
            next_step(&p, Timestamp::from_millis(NOW), &held),
            Step::Wait("waiting for window: Tue 02:00 Europe/Berlin, in 3 h".into())
        );
        let paused = Progress { state: RolloutState::Paused, ..p.clone() };
        assert_eq!(
            next_step(&paused, Timestamp::from_millis(NOW), &|_| None),
            Step::Wait("the rollout is paused".into())
        );
        let unapproved = Progress { approved: &[], ..p };
        assert_eq!(
            next_step(&unapproved, Timestamp::from_millis(NOW), &|_| None),
            Step::AwaitApproval { wave: 1 }
        );
    }

    #[test]
    fn tolerances_count_or_share() {
        assert!(Tolerance::Count(1).allows(1, 10) && !Tolerance::Count(1).allows(2, 10));
        assert!(Tolerance::Percent(10).allows(1, 10) && !Tolerance::Percent(10).allows(2, 10));
        assert!(Tolerance::Count(0).allows(0, 0));
        assert_eq!(
            canary_of(&WaveSettings { canary: BatchSize::Percent(10), ..WaveSettings::default() }, 25),
            3
        );
    }
}
