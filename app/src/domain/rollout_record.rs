//! A stored rollout (issue 22) as the store keeps it and the API shows it: the header (what it
//! moves, how, and where it stands), its deployments (one record each, with the version they
//! came from), and the progress counts per wave (kept as counters, so reading progress costs
//! the number of waves, not of deployments).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{
    ids::Id,
    model::EnvironmentName,
    rollout::{Gates, Item, ItemState, RolloutState},
    rollout_plan::WaveSettings,
    semver::Version,
    time::Timestamp,
};

/// A wave as planned: its number, environment and size.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct WavePlan {
    pub number: u32,
    pub environment: EnvironmentName,
    pub size: u32,
}

/// Who approved a prod wave, and when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct WaveApproval {
    pub wave: u32,
    pub by: Id,
    pub at: Timestamp,
}

/// When a wave's last deployment finished (the bake is counted from here).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct WaveEnd {
    pub wave: u32,
    pub at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Rollout {
    pub id: Id,
    pub capability: String,
    pub version: Version,
    pub state: RolloutState,
    pub created_by: Id,
    /// The Sales Manager whose team's customers it moves (`None`: an Executive's).
    pub team: Option<Id>,
    pub settings: WaveSettings,
    pub gates: Gates,
    pub waves: Vec<WavePlan>,
    /// Values for parameters the target adds; `NoEcho` ones sealed, bound to the rollout.
    #[serde(default)]
    pub parameters: BTreeMap<String, String>,
    #[serde(default)]
    pub approvals: Vec<WaveApproval>,
    #[serde(default)]
    pub finished_waves: Vec<WaveEnd>,
    /// Why it waits or paused, in one sentence, as the scheduler last said.
    #[serde(default)]
    pub status_text: Option<String>,
    /// Cancelled while operations of it still ran: the scheduler settles them before it lets
    /// the rollout go.
    #[serde(default)]
    pub in_flight: bool,
    /// Who paused, resumed or cancelled it last (`None`: the scheduler itself).
    #[serde(default)]
    pub changed_by: Option<Id>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// The scheduler holding it, and until when (a conditional write claims it).
    #[serde(default)]
    pub lease_owner: Option<String>,
    #[serde(default)]
    pub lease_until: Option<Timestamp>,
    pub rev: u64,
}

impl Rollout {
    /// Whether a scheduler still has something to do with it.
    pub fn needs_scheduler(&self) -> bool {
        self.state.is_active() || self.in_flight
    }

    pub fn approved_waves(&self) -> Vec<u32> {
        self.approvals.iter().map(|a| a.wave).collect()
    }

    pub fn wave_finished_at(&self, wave: u32) -> Option<Timestamp> {
        self.finished_waves.iter().find(|w| w.wave == wave).map(|w| w.at)
    }
}

/// One deployment of a rollout, as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RolloutItem {
    pub rollout_id: Id,
    #[serde(flatten)]
    pub item: Item,
    pub customer: String,
    pub from_version: Version,
    /// Why it was skipped or failed, or a note on how it went.
    #[serde(default)]
    pub note: Option<String>,
    #[serde(default)]
    pub finished_at: Option<Timestamp>,
    pub rev: u64,
}

/// How many deployments of one wave are in each state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct WaveCounts {
    pub wave: u32,
    pub waiting: u32,
    pub running: u32,
    pub succeeded: u32,
    pub failed: u32,
    pub skipped: u32,
}

impl WaveCounts {
    /// Adds `n` to the count of the state named `state` (as [`ItemState::name`] names it).
    pub fn add(&mut self, state: &str, n: i64) {
        let slot = match state {
            "waiting" => &mut self.waiting,
            "running" => &mut self.running,
            "succeeded" => &mut self.succeeded,
            "failed" => &mut self.failed,
            "skipped" => &mut self.skipped,
            _ => return,
        };
        *slot = (i64::from(*slot) + n).max(0) as u32;
    }

    pub fn total(&self) -> u32 {
        self.waiting + self.running + self.succeeded + self.failed + self.skipped
    }
}

/// A rollout with its progress (and, read one at a time, its deployments).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RolloutView {
    #[serde(flatten)]
    pub rollout: Rollout,
    pub counts: Vec<WaveCounts>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<RolloutItem>,
}

/// Counts from the items themselves (what the counters must always equal).
pub fn count_items(items: &[RolloutItem]) -> Vec<WaveCounts> {
    let mut by_wave: BTreeMap<u32, WaveCounts> = BTreeMap::new();
    for i in items {
        let c = by_wave
            .entry(i.item.wave)
            .or_insert_with(|| WaveCounts { wave: i.item.wave, ..Default::default() });
        c.add(i.item.state.name(), 1);
    }
    by_wave.into_values().collect()
}

/// Whether a user's control applies in this state, and what it leads to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub enum Control {
    Pause,
    Resume,
    Cancel,
}

impl Control {
    pub fn as_str(self) -> &'static str {
        match self {
            Control::Pause => "pause",
            Control::Resume => "resume",
            Control::Cancel => "cancel",
        }
    }

    /// The state `control` moves a rollout in `from` to, or why it cannot.
    pub fn apply(self, from: RolloutState) -> Result<RolloutState, String> {
        use RolloutState::*;
        match (self, from) {
            (Control::Pause, Running | AwaitingApproval) => Ok(Paused),
            (Control::Resume, Paused) => Ok(Running),
            (Control::Cancel, Running | Paused | AwaitingApproval) => Ok(Cancelled),
            (c, s) => Err(format!(
                "a rollout that is {} cannot be {}",
                super::rollout::state_words(s),
                match c {
                    Control::Pause => "paused",
                    Control::Resume => "resumed",
                    Control::Cancel => "cancelled",
                }
            )),
        }
    }
}

/// Whether a failed or waiting deployment may be skipped, a failed one retried.
pub fn may_skip(state: &ItemState) -> bool {
    matches!(state, ItemState::Waiting | ItemState::Failed { .. })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_move_only_from_states_they_fit() {
        use RolloutState::*;
        assert_eq!(Control::Pause.apply(Running), Ok(Paused));
        assert_eq!(Control::Pause.apply(AwaitingApproval), Ok(Paused));
        assert_eq!(Control::Resume.apply(Paused), Ok(Running));
        assert_eq!(Control::Cancel.apply(Paused), Ok(Cancelled));
        assert_eq!(Control::Resume.apply(Running), Err("a rollout that is running cannot be resumed".into()));
        for c in [Control::Pause, Control::Resume, Control::Cancel] {
            assert!(c.apply(Completed).is_err() && c.apply(Cancelled).is_err() && c.apply(Creating).is_err());
        }
    }

    #[test]
    fn counts_follow_the_items() {
        let item = |wave: u32, state: ItemState| RolloutItem {
            rollout_id: Id::from_parts(1, 1),
            item: Item {
                deployment_id: Id::from_parts(u64::from(wave), 2),
                customer_id: Id::from_parts(1, 3),
                account_id: "111111111111".into(),
                environment: EnvironmentName::Dev,
                wave,
                state,
                health: crate::domain::lifecycle::Health::Unknown,
            },
            customer: "Acme".into(),
            from_version: "1.0.0".parse().unwrap(),
            note: None,
            finished_at: None,
            rev: 1,
        };
        let op = Id::from_parts(9, 9);
        let items = [
            item(1, ItemState::Succeeded { operation_id: op.clone() }),
            item(2, ItemState::Running { operation_id: op }),
            item(2, ItemState::Waiting),
            item(2, ItemState::Skipped),
        ];
        let counts = count_items(&items);
        assert_eq!(counts.len(), 2);
        assert_eq!((counts[0].wave, counts[0].succeeded, counts[0].total()), (1, 1, 1));
        assert_eq!(
            (counts[1].running, counts[1].waiting, counts[1].skipped, counts[1].total()),
            (1, 1, 1, 3)
        );
        assert!(may_skip(&ItemState::Waiting) && !may_skip(&items[1].item.state));
    }
}
