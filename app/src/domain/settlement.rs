//! How a finished operation settles its deployment: the pure half of the engine's finish. The
//! engine reads the deployment, probes a changed stack's health and writes both records in one
//! transaction; what it writes is decided here (and read by the tests without AWS or a store).
//! The status alone comes from [`status_after`], the lifecycle's table.

use std::collections::BTreeMap;

use super::{
    lifecycle::{DeploymentStatus, Drift, Health, OperationKind, OperationState, status_after},
    model::{Deployment, FailureCause, Operation},
    time::Timestamp,
};

/// How an operation ended, as the engine saw it.
#[derive(Clone, Debug)]
pub struct Ending {
    pub state: OperationState,
    /// The stack's id and outputs, when the change made or changed one.
    pub stack: Option<(String, BTreeMap<String, String>)>,
    /// The changed stack's health, probed once at the end (blue-green changes probed theirs
    /// before the cut-over).
    pub health: Option<Health>,
    /// Which resource failed, and why.
    pub cause: Option<FailureCause>,
    pub at: Timestamp,
}

/// The deployment and the operation as they are to be stored once `op` ended as `ending`
/// (`deployment` as read now).
pub fn settle(deployment: &Deployment, op: &Operation, ending: &Ending) -> (Deployment, Operation) {
    let end = ending.state;
    let mut d = deployment.clone();
    let status_before = op.status_before.unwrap_or(deployment.status);
    if let Some(status) = status_after(op.kind, end, status_before) {
        d.status = status;
    } else if d.status == DeploymentStatus::InProgress {
        d.status = status_before;
    }
    let succeeded = matches!(end, OperationState::Succeeded | OperationState::NoChanges);
    match op.kind {
        OperationKind::Deploy | OperationKind::Upgrade | OperationKind::Rollback | OperationKind::Switch
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
            if let Some((id, outputs)) = &ending.stack {
                d.stack_id = Some(id.clone());
                d.outputs = outputs.clone();
            }
            if let Some(h) = ending.health {
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
    // A blue-green change that succeeded serves from its new colour's stack.
    if let (Some(bg), true) = (&op.blue_green, end == OperationState::Succeeded) {
        d.stack_name = op.stack_name.clone();
        d.active_color = Some(bg.to);
        if bg.healthy {
            d.health = Health::Healthy;
        }
    }
    d.last_operation_id = Some(op.id.clone());
    d.last_synced_at = Some(ending.at);
    d.updated_at = ending.at;

    let mut ended = op.clone();
    ended.state = end;
    ended.finished_at = Some(ending.at);
    ended.lease_owner = None;
    ended.lease_until = None;
    if ending.cause.is_some() {
        ended.failure = ending.cause.clone();
    }
    if succeeded {
        ended.error = None;
    }
    (d, ended)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        ids::Id,
        model::{BlueGreen, Color, EnvironmentName},
        semver::Version,
    };

    fn v(s: &str) -> Version {
        s.parse().unwrap()
    }

    fn deployment(status: DeploymentStatus) -> Deployment {
        Deployment {
            id: Id::from_parts(1, 1),
            customer_id: Id::from_parts(1, 2),
            environment_id: Id::from_parts(1, 3),
            environment: EnvironmentName::Staging,
            capability: "customer-360".into(),
            version: v("1.0.0"),
            parameters: BTreeMap::from([("Region".into(), "eu-west-1".into())]),
            stack_name: "nexus-customer-360-acme-staging".into(),
            stack_id: Some("arn:stack/old".into()),
            status,
            health: Health::Degraded,
            drift: Drift::InSync,
            outputs: BTreeMap::new(),
            active_color: None,
            last_operation_id: None,
            last_synced_at: None,
            previous_version: None,
            previous_parameters: BTreeMap::new(),
            created_at: Timestamp::from_millis(1),
            updated_at: Timestamp::from_millis(1),
            rev: 4,
        }
    }

    fn op(kind: OperationKind, state: OperationState) -> Operation {
        Operation {
            id: Id::from_parts(2, 9),
            kind,
            state,
            target_version: Some(v("1.1.0")),
            parameters: BTreeMap::from([("Region".into(), "us-east-1".into())]),
            stack_name: "nexus-customer-360-acme-staging".into(),
            lease_owner: Some("worker-1".into()),
            lease_until: Some(Timestamp::from_millis(99)),
            error: Some("a transient failure before".into()),
            status_before: Some(DeploymentStatus::Active),
            ..Operation::blank()
        }
    }

    fn ending(state: OperationState) -> Ending {
        Ending { state, stack: None, health: None, cause: None, at: Timestamp::from_millis(1_000) }
    }

    #[test]
    fn a_successful_upgrade_moves_the_version_and_keeps_the_one_before() {
        let d = deployment(DeploymentStatus::InProgress);
        let o = op(OperationKind::Upgrade, OperationState::Executing);
        let mut end = ending(OperationState::Succeeded);
        end.stack = Some(("arn:stack/new".into(), BTreeMap::from([("Url".into(), "https://x".into())])));
        end.health = Some(Health::Healthy);
        let (after, ended) = settle(&d, &o, &end);
        assert_eq!(after.status, DeploymentStatus::Active);
        assert_eq!((after.version.clone(), after.previous_version.clone()), (v("1.1.0"), Some(v("1.0.0"))));
        assert_eq!(after.parameters["Region"], "us-east-1");
        assert_eq!(after.previous_parameters["Region"], "eu-west-1");
        assert_eq!(after.stack_id.as_deref(), Some("arn:stack/new"));
        assert_eq!(after.health, Health::Healthy);
        assert_eq!(after.last_operation_id, Some(o.id.clone()));
        assert_eq!((after.updated_at, after.last_synced_at), (end.at, Some(end.at)));
        assert_eq!(ended.state, OperationState::Succeeded);
        assert_eq!((ended.lease_owner, ended.lease_until, ended.error), (None, None, None));
        assert_eq!(ended.finished_at, Some(end.at));
    }

    #[test]
    fn a_first_deploy_has_nothing_to_roll_back_to() {
        let d = deployment(DeploymentStatus::InProgress);
        let mut o = op(OperationKind::Deploy, OperationState::Executing);
        o.status_before = Some(DeploymentStatus::Pending);
        let (after, _) = settle(&d, &o, &ending(OperationState::Succeeded));
        assert_eq!(after.version, v("1.1.0"));
        assert_eq!(after.previous_version, None);
    }

    #[test]
    fn a_failure_keeps_the_version_names_the_cause_and_marks_the_stack_failed() {
        let d = deployment(DeploymentStatus::InProgress);
        let o = op(OperationKind::Upgrade, OperationState::Executing);
        let mut end = ending(OperationState::RolledBack);
        end.cause = Some(FailureCause {
            logical_id: Some("Queue".into()),
            resource_type: Some("AWS::SQS::Queue".into()),
            reason: "denied".into(),
            stack_status: Some("UPDATE_ROLLBACK_COMPLETE".into()),
        });
        let (after, ended) = settle(&d, &o, &end);
        assert_eq!(after.status, DeploymentStatus::UpdateFailed);
        assert_eq!((after.version.clone(), after.stack_id.clone()), (v("1.0.0"), d.stack_id.clone()));
        assert_eq!(ended.failure, end.cause);
        assert_eq!(ended.error.as_deref(), Some("a transient failure before"), "a failure keeps its message");
    }

    #[test]
    fn a_rejected_request_puts_the_status_back() {
        let d = deployment(DeploymentStatus::InProgress);
        let o = op(OperationKind::Upgrade, OperationState::AwaitingApproval);
        let (after, ended) = settle(&d, &o, &ending(OperationState::Rejected));
        assert_eq!(after.status, DeploymentStatus::Active, "the status it had before");
        assert_eq!(after.version, v("1.0.0"));
        assert_eq!(ended.state, OperationState::Rejected);
    }

    #[test]
    fn a_delete_clears_the_stack_and_a_drift_check_reads_its_answer() {
        let d = deployment(DeploymentStatus::InProgress);
        let (after, _) = settle(
            &d,
            &op(OperationKind::Delete, OperationState::Executing),
            &ending(OperationState::Succeeded),
        );
        assert_eq!(after.status, DeploymentStatus::Deleted);
        assert_eq!((after.stack_id, after.health, after.drift), (None, Health::Unknown, Drift::NotChecked));

        let d = deployment(DeploymentStatus::Active);
        for (answer, drift) in
            [("DRIFTED", Drift::Drifted), ("IN_SYNC", Drift::InSync), ("UNKNOWN", Drift::Unknown)]
        {
            let mut o = op(OperationKind::DriftCheck, OperationState::Executing);
            o.stack_status = Some(answer.into());
            let (after, _) = settle(&d, &o, &ending(OperationState::Succeeded));
            assert_eq!((after.drift, after.status), (drift, DeploymentStatus::Active), "{answer}");
        }
    }

    #[test]
    fn a_blue_green_switch_serves_from_the_new_colour() {
        let mut d = deployment(DeploymentStatus::InProgress);
        d.stack_name = "nexus-customer-360-acme-staging-blue".into();
        d.active_color = Some(Color::Blue);
        let mut o = op(OperationKind::Upgrade, OperationState::Executing);
        o.stack_name = "nexus-customer-360-acme-staging-green".into();
        o.blue_green = Some(BlueGreen {
            to: Color::Green,
            from: Some(Color::Blue),
            old_stack: Some(d.stack_name.clone()),
            healthy: true,
            switched_at: Some(Timestamp::from_millis(900)),
            old_deleted: true,
            abandoned: false,
        });
        let (after, _) = settle(&d, &o, &ending(OperationState::Succeeded));
        assert_eq!(after.stack_name, o.stack_name);
        assert_eq!((after.active_color, after.health), (Some(Color::Green), Health::Healthy));

        let (failed, _) = settle(&d, &o, &ending(OperationState::Failed));
        assert_eq!((failed.stack_name, failed.active_color), (d.stack_name.clone(), Some(Color::Blue)));
    }
}
