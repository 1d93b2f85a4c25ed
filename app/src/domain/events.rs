//! What is published about an operation's state change, and about a rollout's (EventBridge
//! `detail`, SNS message). Plain records, so the outbox can keep an undelivered one in the store
//! and send it later exactly as it was made. NoEcho values never leave: they carry no
//! parameters at all.

use serde::{Deserialize, Serialize};

use super::{
    ids::Id,
    lifecycle::{OperationKind, OperationState},
    model::{EnvironmentName, Operation},
    rollout::RolloutState,
    rollout_record::Rollout,
    time::Timestamp,
};

/// A rollout paused (by itself or a user), waits for an approver, completed, or was cancelled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloutEvent {
    pub rollout_id: Id,
    pub capability: String,
    pub version: String,
    pub state: RolloutState,
    /// Why, in one sentence (a pause's reason, the wave waiting for approval).
    pub why: Option<String>,
    pub created_by: Id,
    /// The Sales Manager whose team it is (`None`: an Executive's).
    pub team: Option<Id>,
    pub at: Timestamp,
}

impl RolloutEvent {
    pub fn of(r: &Rollout, at: Timestamp) -> Self {
        RolloutEvent {
            rollout_id: r.id.clone(),
            capability: r.capability.clone(),
            version: r.version.to_string(),
            state: r.state,
            why: r.status_text.clone(),
            created_by: r.created_by.clone(),
            team: r.team.clone(),
            at,
        }
    }
}

/// Anything published, as the outbox keeps it (untagged: an operation's event reads back as
/// it was stored before rollouts had events).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Published {
    Operation(OperationEvent),
    Rollout(RolloutEvent),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationEvent {
    pub operation_id: Id,
    pub deployment_id: Id,
    pub customer_id: Id,
    pub environment: EnvironmentName,
    pub capability: String,
    pub kind: OperationKind,
    pub state: OperationState,
    pub target_version: Option<String>,
    pub requested_by: Id,
    pub stack_name: String,
    pub error: Option<String>,
    /// When the operation reached `state` (consumers order by it: delivery is at least once and
    /// events held back by an outage arrive after newer ones).
    pub at: Timestamp,
}

impl OperationEvent {
    pub fn of(op: &Operation, at: Timestamp) -> Self {
        OperationEvent {
            operation_id: op.id.clone(),
            deployment_id: op.deployment_id.clone(),
            customer_id: op.customer_id.clone(),
            environment: op.environment,
            capability: op.capability.clone(),
            kind: op.kind,
            state: op.state,
            target_version: op.target_version.as_ref().map(|v| v.to_string()),
            requested_by: op.requested_by.clone(),
            stack_name: op.stack_name.clone(),
            error: op.error.clone(),
            at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The published field names and values are the wire contract of every consumer's rule: the
    /// enums go out as the same snake_case words as before they were typed.
    #[test]
    fn the_event_goes_out_in_snake_case_and_reads_back_the_same() {
        let event = OperationEvent {
            operation_id: Id::from_parts(1, 1),
            deployment_id: Id::from_parts(1, 2),
            customer_id: Id::from_parts(1, 3),
            environment: EnvironmentName::Prod,
            capability: "lead-scoring".into(),
            kind: OperationKind::DriftCheck,
            state: OperationState::CreatingChangeSet,
            target_version: Some("1.2.0".into()),
            requested_by: Id::from_parts(1, 4),
            stack_name: "nexus-acme-lead-scoring-prod".into(),
            error: None,
            at: Timestamp::from_millis(1_700_000_000_000),
        };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["environment"], "prod");
        assert_eq!(json["kind"], "drift_check");
        assert_eq!(json["state"], "creating_change_set");
        assert_eq!(serde_json::from_value::<OperationEvent>(json.clone()).unwrap(), event);
        // The outbox reads back what it kept before rollouts had events as an operation's.
        assert_eq!(serde_json::from_value::<Published>(json).unwrap(), Published::Operation(event));
        let rollout = RolloutEvent {
            rollout_id: Id::from_parts(2, 1),
            capability: "lead-scoring".into(),
            version: "1.2.0".into(),
            state: RolloutState::AwaitingApproval,
            why: Some("wave 3 goes to prod".into()),
            created_by: Id::from_parts(1, 4),
            team: None,
            at: Timestamp::from_millis(1_700_000_000_000),
        };
        let json = serde_json::to_value(&rollout).unwrap();
        assert_eq!(json["state"], "awaiting_approval");
        assert_eq!(serde_json::from_value::<Published>(json).unwrap(), Published::Rollout(rollout));
    }
}
