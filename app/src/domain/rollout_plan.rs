//! A rollout's plan: which deployments of a capability move to the target version, in which
//! waves, and why each other one is left out. Pure, so the plan the browser previews is the
//! plan the server stores.
//!
//! Waves go by environment (dev, then staging, then prod; absent ones skipped), and within an
//! environment in batches: a canary batch first, then growing batches (linear: the canary's
//! size more each time; doubling). Deployments are taken in customer-name order, so the same
//! selection always makes the same plan.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{
    ids::Id, lifecycle::DeploymentStatus, model::EnvironmentName, semver::Version,
    version_range::VersionRange,
};

/// What a rollout is asked to do (`POST /api/v1/rollouts`): everything but the capability and
/// the version has a default.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RolloutRequest {
    pub capability: String,
    pub version: String,
    #[serde(default)]
    pub selection: Selection,
    #[serde(default)]
    pub waves: WaveSettings,
    /// Values for parameters the target version adds (and the deployments' values do not give);
    /// the deployments' own values carry over.
    #[serde(default)]
    pub parameters: BTreeMap<String, String>,
    /// When a wave may start after the one before it.
    #[serde(default)]
    pub gates: Gates,
    /// Answer the plan without storing anything.
    #[serde(default)]
    pub dry_run: bool,
}

/// Which deployments a rollout moves.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Selection {
    /// Only deployments whose version is in this range (default: any version below the target).
    #[cfg_attr(feature = "ssr", schema(value_type = Option<String>, example = ">=1.1.0 <1.2.0"))]
    pub from: Option<VersionRange>,
    /// Only these environments (default: every one).
    pub environments: Vec<EnvironmentName>,
    /// Only these customers (default: every customer the requester sees).
    pub customers: Option<Vec<Id>>,
    /// Upgrades to a new major version are left out unless this is set.
    pub include_major: bool,
}

/// The size of a wave's first (canary) batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub enum BatchSize {
    Count(u32),
    /// Of the environment's deployments, rounded up (at least one).
    Percent(u32),
}

/// How the batches after the canary grow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub enum Growth {
    /// The canary's size more each batch (1, 2, 3 … canaries).
    Linear,
    /// Twice the batch before.
    #[default]
    Doubling,
}

/// How waves are cut and paced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct WaveSettings {
    pub canary: BatchSize,
    pub growth: Growth,
    /// Operations of the rollout running at once.
    pub max_concurrency: u32,
    /// Operations running at once in one customer AWS account (API rates are per account).
    pub per_account: u32,
}

impl Default for WaveSettings {
    fn default() -> Self {
        WaveSettings {
            canary: BatchSize::Count(1),
            growth: Growth::Doubling,
            max_concurrency: 8,
            per_account: 2,
        }
    }
}

/// Limits on the settings, so a typo cannot make a rollout that never moves or floods AWS.
pub const MAX_CONCURRENCY: u32 = 64;

impl WaveSettings {
    /// The settings' problems, by field.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        match self.canary {
            BatchSize::Count(0) => {
                out.push(("waves.canary", "a canary batch has at least one deployment".into()))
            }
            BatchSize::Percent(p) if p == 0 || p > 100 => {
                out.push(("waves.canary", "a canary percentage is from 1 to 100".into()))
            }
            _ => {}
        }
        if self.max_concurrency == 0 || self.max_concurrency > MAX_CONCURRENCY {
            out.push(("waves.max_concurrency", format!("from 1 to {MAX_CONCURRENCY}")));
        }
        if self.per_account == 0 || self.per_account > self.max_concurrency.max(1) {
            out.push(("waves.per_account", "from 1 to max_concurrency".into()));
        }
        out
    }
}

/// Failures accepted before the rollout pauses.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tolerance {
    Count(u32),
    Percent(u32),
}

impl Tolerance {
    pub fn allows(self, failed: usize, of: usize) -> bool {
        match self {
            Tolerance::Count(n) => failed <= n as usize,
            Tolerance::Percent(p) => failed * 100 <= of * p as usize,
        }
    }
}

#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Gates {
    /// How long a finished wave's deployments stay Healthy before the next wave starts.
    pub bake_minutes: u32,
    pub per_wave: Tolerance,
    pub total: Tolerance,
}

/// The longest bake a rollout may ask for (a week).
pub const MAX_BAKE_MINUTES: u32 = 7 * 24 * 60;

impl Gates {
    /// The settings' problems, by field.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if self.bake_minutes > MAX_BAKE_MINUTES {
            out.push(("gates.bake_minutes", format!("at most {MAX_BAKE_MINUTES} (a week)")));
        }
        for (field, t) in [("gates.per_wave", self.per_wave), ("gates.total", self.total)] {
            if matches!(t, Tolerance::Percent(p) if p > 100) {
                out.push((field, "a percentage is from 0 to 100".into()));
            }
        }
        out
    }
}

impl Default for Gates {
    fn default() -> Self {
        Gates { bake_minutes: 5, per_wave: Tolerance::Count(0), total: Tolerance::Count(0) }
    }
}

/// A deployment of the capability as stored, with what the plan needs to judge it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub deployment_id: Id,
    pub customer_id: Id,
    pub customer_name: String,
    pub environment: EnvironmentName,
    pub account_id: String,
    pub version: Version,
    pub status: DeploymentStatus,
    /// The environment's connection was checked and works (or was never checked: unchecked
    /// environments are tried, the operation checks first).
    pub connected: bool,
    /// An operation is running on it.
    pub busy: bool,
    /// Another active rollout holds it.
    pub in_rollout: Option<Id>,
    /// Why its parameters do not validate against the target version, if they do not.
    pub parameter_problem: Option<String>,
}

/// Why a deployment is left out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub enum Exclusion {
    AtTarget,
    /// It runs a newer version than the target (a rollout never downgrades; roll back instead).
    NewerThanTarget,
    OutsideRange {
        range: String,
    },
    /// The target is a new major version and the rollout does not include major upgrades.
    MajorUpgrade,
    EnvironmentNotSelected,
    CustomerNotSelected,
    /// Only active deployments move (a failed or missing one needs a look first).
    NotActive {
        status: DeploymentStatus,
    },
    NotConnected,
    Busy,
    InRollout {
        rollout_id: Id,
    },
    /// The target version's parameters do not validate with this deployment's values.
    Blocked {
        problem: String,
    },
}

impl Exclusion {
    /// One sentence for the plan.
    pub fn describe(&self) -> String {
        match self {
            Exclusion::AtTarget => "already at the target version".into(),
            Exclusion::NewerThanTarget => "runs a newer version than the target".into(),
            Exclusion::OutsideRange { range } => format!("its version is outside {range}"),
            Exclusion::MajorUpgrade => {
                "a major upgrade, and the rollout does not include major upgrades".into()
            }
            Exclusion::EnvironmentNotSelected => "its environment is not selected".into(),
            Exclusion::CustomerNotSelected => "its customer is not selected".into(),
            Exclusion::NotActive { status } => {
                format!("it is {}, not active", status.as_str().replace('_', " "))
            }
            Exclusion::NotConnected => "its environment's connection failed: connect it again first".into(),
            Exclusion::Busy => "an operation is running on it".into(),
            Exclusion::InRollout { rollout_id } => format!("in rollout {rollout_id}"),
            Exclusion::Blocked { problem } => format!("blocked: {problem}"),
        }
    }
}

/// A deployment the rollout moves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct PlannedDeployment {
    pub deployment_id: Id,
    pub customer_id: Id,
    pub customer: String,
    pub environment: EnvironmentName,
    pub account_id: String,
    #[cfg_attr(feature = "ssr", schema(value_type = String))]
    pub from_version: Version,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Wave {
    /// 1-based, in the order the waves run.
    pub number: u32,
    pub environment: EnvironmentName,
    pub deployments: Vec<PlannedDeployment>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Excluded {
    pub deployment_id: Id,
    pub customer: String,
    pub environment: EnvironmentName,
    #[cfg_attr(feature = "ssr", schema(value_type = String))]
    pub version: Version,
    #[serde(flatten)]
    pub why: Exclusion,
    /// [`Exclusion::describe`], for readers of the JSON.
    pub reason_text: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Plan {
    pub waves: Vec<Wave>,
    pub excluded: Vec<Excluded>,
}

impl Plan {
    pub fn deployments(&self) -> usize {
        self.waves.iter().map(|w| w.deployments.len()).sum()
    }
}

/// Why `c` stays out of a rollout to `target` under `selection`, if it does.
pub fn exclusion(c: &Candidate, target: &Version, selection: &Selection) -> Option<Exclusion> {
    if !selection.environments.is_empty() && !selection.environments.contains(&c.environment) {
        return Some(Exclusion::EnvironmentNotSelected);
    }
    if selection.customers.as_ref().is_some_and(|ids| !ids.contains(&c.customer_id)) {
        return Some(Exclusion::CustomerNotSelected);
    }
    if c.version == *target {
        return Some(Exclusion::AtTarget);
    }
    if c.version > *target {
        return Some(Exclusion::NewerThanTarget);
    }
    if let Some(range) = &selection.from
        && !range.contains(&c.version)
    {
        return Some(Exclusion::OutsideRange { range: range.to_string() });
    }
    if target.major > c.version.major && !selection.include_major {
        return Some(Exclusion::MajorUpgrade);
    }
    if c.status != DeploymentStatus::Active {
        return Some(Exclusion::NotActive { status: c.status });
    }
    if !c.connected {
        return Some(Exclusion::NotConnected);
    }
    if let Some(id) = &c.in_rollout {
        return Some(Exclusion::InRollout { rollout_id: id.clone() });
    }
    if c.busy {
        return Some(Exclusion::Busy);
    }
    c.parameter_problem.as_ref().map(|p| Exclusion::Blocked { problem: p.clone() })
}

/// The sizes of the batches `total` deployments of one environment are cut into.
pub fn batch_sizes(total: usize, canary: BatchSize, growth: Growth) -> Vec<usize> {
    if total == 0 {
        return Vec::new();
    }
    let first = match canary {
        BatchSize::Count(n) => n as usize,
        BatchSize::Percent(p) => (total * p as usize).div_ceil(100),
    }
    .clamp(1, total);
    let mut sizes = vec![first];
    let mut left = total - first;
    while left > 0 {
        let next = match growth {
            Growth::Linear => first * (sizes.len() + 1),
            Growth::Doubling => sizes.last().copied().unwrap_or(first).saturating_mul(2),
        }
        .min(left);
        sizes.push(next);
        left -= next;
    }
    sizes
}

/// The plan for moving `candidates` to `target`.
pub fn plan(
    target: &Version,
    candidates: &[Candidate],
    selection: &Selection,
    settings: &WaveSettings,
) -> Plan {
    let mut chosen: Vec<&Candidate> = Vec::new();
    let mut excluded = Vec::new();
    for c in candidates {
        match exclusion(c, target, selection) {
            None => chosen.push(c),
            Some(why) => excluded.push(Excluded {
                deployment_id: c.deployment_id.clone(),
                customer: c.customer_name.clone(),
                environment: c.environment,
                version: c.version.clone(),
                reason_text: why.describe(),
                why,
            }),
        }
    }
    chosen.sort_by(|a, b| {
        (a.environment, &a.customer_name, &a.deployment_id).cmp(&(
            b.environment,
            &b.customer_name,
            &b.deployment_id,
        ))
    });
    excluded.sort_by(|a, b| {
        (a.environment, &a.customer, &a.deployment_id).cmp(&(b.environment, &b.customer, &b.deployment_id))
    });
    let mut waves = Vec::new();
    for env in EnvironmentName::ALL {
        let here: Vec<&Candidate> = chosen.iter().copied().filter(|c| c.environment == env).collect();
        let mut rest = here.as_slice();
        for size in batch_sizes(here.len(), settings.canary, settings.growth) {
            let (batch, after) = rest.split_at(size);
            rest = after;
            waves.push(Wave {
                number: waves.len() as u32 + 1,
                environment: env,
                deployments: batch
                    .iter()
                    .map(|c| PlannedDeployment {
                        deployment_id: c.deployment_id.clone(),
                        customer_id: c.customer_id.clone(),
                        customer: c.customer_name.clone(),
                        environment: c.environment,
                        account_id: c.account_id.clone(),
                        from_version: c.version.clone(),
                    })
                    .collect(),
            });
        }
    }
    Plan { waves, excluded }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        s.parse().unwrap()
    }

    fn candidate(n: u64, customer: &str, env: EnvironmentName, version: &str) -> Candidate {
        Candidate {
            deployment_id: Id::from_parts(n, 1),
            customer_id: Id::from_parts(n, 2),
            customer_name: customer.into(),
            environment: env,
            account_id: format!("{:012}", 100_000_000_000 + n),
            version: v(version),
            status: DeploymentStatus::Active,
            connected: true,
            busy: false,
            in_rollout: None,
            parameter_problem: None,
        }
    }

    #[test]
    fn batches_start_with_the_canary_and_grow() {
        assert_eq!(batch_sizes(10, BatchSize::Count(1), Growth::Doubling), [1, 2, 4, 3]);
        assert_eq!(batch_sizes(10, BatchSize::Count(2), Growth::Linear), [2, 4, 4]);
        assert_eq!(batch_sizes(10, BatchSize::Percent(10), Growth::Linear), [1, 2, 3, 4]);
        assert_eq!(batch_sizes(3, BatchSize::Percent(1), Growth::Doubling), [1, 2], "at least one");
        assert_eq!(batch_sizes(2, BatchSize::Count(5), Growth::Doubling), [2], "never more than there are");
        assert!(batch_sizes(0, BatchSize::Count(1), Growth::Doubling).is_empty());
        for total in 1..200 {
            for canary in
                [BatchSize::Count(1), BatchSize::Count(7), BatchSize::Percent(5), BatchSize::Percent(100)]
            {
                for growth in [Growth::Linear, Growth::Doubling] {
                    let sizes = batch_sizes(total, canary, growth);
                    assert_eq!(sizes.iter().sum::<usize>(), total, "{total} {canary:?} {growth:?}");
                    assert!(sizes.iter().all(|s| *s > 0));
                }
            }
        }
    }

    #[test]
    fn waves_go_dev_staging_prod_in_customer_order() {
        use EnvironmentName::*;
        let candidates = vec![
            candidate(1, "Zeta", Prod, "1.1.0"),
            candidate(2, "Acme", Dev, "1.1.0"),
            candidate(3, "Beta", Dev, "1.0.5"),
            candidate(4, "Acme", Prod, "1.1.2"),
            candidate(5, "Cora", Dev, "1.1.0"),
        ];
        let p = plan(&v("1.2.0"), &candidates, &Selection::default(), &WaveSettings::default());
        let shape: Vec<(u32, EnvironmentName, Vec<&str>)> = p
            .waves
            .iter()
            .map(|w| (w.number, w.environment, w.deployments.iter().map(|d| d.customer.as_str()).collect()))
            .collect();
        assert_eq!(
            shape,
            [
                (1, Dev, vec!["Acme"]),
                (2, Dev, vec!["Beta", "Cora"]),
                (3, Prod, vec!["Acme"]),
                (4, Prod, vec!["Zeta"])
            ]
        );
        assert!(p.excluded.is_empty());
        assert_eq!(p.deployments(), 5);
        assert_eq!(p.waves[1].deployments[0].from_version, v("1.0.5"));
    }

    #[test]
    fn each_left_out_deployment_says_why() {
        use EnvironmentName::*;
        let target = v("2.0.0");
        let base = candidate(1, "Acme", Dev, "1.1.0");
        let selection = Selection { from: Some(">=1.1.0 <2.0.0".parse().unwrap()), ..Selection::default() };
        let why = |c: Candidate, s: &Selection| exclusion(&c, &target, s);
        let with_major = Selection { include_major: true, ..selection.clone() };
        assert_eq!(why(base.clone(), &selection), Some(Exclusion::MajorUpgrade));
        assert_eq!(why(base.clone(), &with_major), None);
        assert_eq!(
            why(Candidate { version: v("2.0.0"), ..base.clone() }, &with_major),
            Some(Exclusion::AtTarget)
        );
        assert_eq!(
            why(Candidate { version: v("2.1.0"), ..base.clone() }, &with_major),
            Some(Exclusion::NewerThanTarget)
        );
        assert_eq!(
            why(Candidate { version: v("1.0.0"), ..base.clone() }, &with_major),
            Some(Exclusion::OutsideRange { range: ">=1.1.0 <2.0.0".into() })
        );
        let only_prod = Selection { environments: vec![Prod], ..with_major.clone() };
        assert_eq!(why(base.clone(), &only_prod), Some(Exclusion::EnvironmentNotSelected));
        let others = Selection { customers: Some(vec![Id::from_parts(9, 9)]), ..with_major.clone() };
        assert_eq!(why(base.clone(), &others), Some(Exclusion::CustomerNotSelected));
        assert_eq!(
            why(Candidate { status: DeploymentStatus::UpdateFailed, ..base.clone() }, &with_major),
            Some(Exclusion::NotActive { status: DeploymentStatus::UpdateFailed })
        );
        assert_eq!(
            why(Candidate { connected: false, ..base.clone() }, &with_major),
            Some(Exclusion::NotConnected)
        );
        assert_eq!(why(Candidate { busy: true, ..base.clone() }, &with_major), Some(Exclusion::Busy));
        let held = Candidate { in_rollout: Some(Id::from_parts(7, 7)), ..base.clone() };
        assert_eq!(why(held, &with_major), Some(Exclusion::InRollout { rollout_id: Id::from_parts(7, 7) }));
        let blocked = Candidate { parameter_problem: Some("Tier: required".into()), ..base.clone() };
        assert_eq!(
            why(blocked.clone(), &with_major),
            Some(Exclusion::Blocked { problem: "Tier: required".into() })
        );

        let p = plan(&target, &[base.clone(), blocked], &with_major, &WaveSettings::default());
        assert_eq!(p.deployments(), 2 - 1);
        assert_eq!(p.excluded.len(), 1);
        assert_eq!(p.excluded[0].reason_text, "blocked: Tier: required");
        let json = serde_json::to_value(&p.excluded[0]).unwrap();
        assert_eq!(json["reason"], "blocked", "{json}");
        assert_eq!(json["problem"], "Tier: required", "{json}");
    }

    #[test]
    fn settings_out_of_bounds_name_their_field() {
        assert!(WaveSettings::default().problems().is_empty());
        let bad = WaveSettings {
            canary: BatchSize::Percent(0),
            max_concurrency: 0,
            per_account: 0,
            ..Default::default()
        };
        let fields: Vec<&str> = bad.problems().into_iter().map(|(f, _)| f).collect();
        assert_eq!(fields, ["waves.canary", "waves.max_concurrency", "waves.per_account"]);
        let json: WaveSettings =
            serde_json::from_str(r#"{"canary":{"percent":10},"growth":"linear"}"#).unwrap();
        assert_eq!(json.canary, BatchSize::Percent(10));
        assert_eq!((json.growth, json.max_concurrency), (Growth::Linear, 8));
    }
}
