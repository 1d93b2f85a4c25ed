//! What is published about an operation's state change (EventBridge `detail`, SNS message).
//! A plain record, so the outbox can keep an undelivered one in the store and send it later
//! exactly as it was made. NoEcho values never leave: it carries no parameters at all.

use serde::{Deserialize, Serialize};

use super::{
    ids::Id,
    lifecycle::{OperationKind, OperationState},
    model::{EnvironmentName, Operation},
    time::Timestamp,
};

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
        assert_eq!(serde_json::from_value::<OperationEvent>(json).unwrap(), event);
    }
}
