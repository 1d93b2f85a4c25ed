//! The lifecycle state machine: which operation states follow which, and what a finished
//! operation means for its deployment. The UI (which buttons to show) and the server (which
//! transitions to store) both ask this module, so they cannot disagree.

use serde::{Deserialize, Serialize};

/// A lifecycle action on a deployment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum OperationKind {
    Deploy,
    Upgrade,
    Rollback,
    /// Blue-green: make the other colour active.
    Switch,
    Delete,
    DriftCheck,
}

impl OperationKind {
    pub const ALL: [OperationKind; 6] = [
        OperationKind::Deploy,
        OperationKind::Upgrade,
        OperationKind::Rollback,
        OperationKind::Switch,
        OperationKind::Delete,
        OperationKind::DriftCheck,
    ];

    /// Whether the operation goes through a CloudFormation change set (and so can be previewed).
    /// A blue-green switch builds the other colour's stack from one.
    pub fn uses_change_set(self) -> bool {
        matches!(
            self,
            OperationKind::Deploy | OperationKind::Upgrade | OperationKind::Rollback | OperationKind::Switch
        )
    }

    /// Whether the operation changes what runs (and so needs the deploy permission and approvals).
    pub fn is_change(self) -> bool {
        !matches!(self, OperationKind::DriftCheck)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OperationKind::Deploy => "deploy",
            OperationKind::Upgrade => "upgrade",
            OperationKind::Rollback => "rollback",
            OperationKind::Switch => "switch",
            OperationKind::Delete => "delete",
            OperationKind::DriftCheck => "drift_check",
        }
    }
}

/// Where an operation is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum OperationState {
    /// Requested by someone who may not run it; waits for an approver.
    AwaitingApproval,
    /// Ready for a worker.
    Queued,
    CreatingChangeSet,
    /// The change set is ready: shown as a preview until someone confirms.
    PreviewReady,
    Executing,
    Succeeded,
    /// The change set had nothing to change.
    NoChanges,
    /// Failed; the stack was rolled back by CloudFormation (ROLLBACK_COMPLETE,
    /// UPDATE_ROLLBACK_COMPLETE …).
    RolledBack,
    Failed,
    Rejected,
    Cancelled,
}

impl OperationState {
    pub const ALL: [OperationState; 11] = [
        OperationState::AwaitingApproval,
        OperationState::Queued,
        OperationState::CreatingChangeSet,
        OperationState::PreviewReady,
        OperationState::Executing,
        OperationState::Succeeded,
        OperationState::NoChanges,
        OperationState::RolledBack,
        OperationState::Failed,
        OperationState::Rejected,
        OperationState::Cancelled,
    ];

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            OperationState::Succeeded
                | OperationState::NoChanges
                | OperationState::RolledBack
                | OperationState::Failed
                | OperationState::Rejected
                | OperationState::Cancelled
        )
    }

    /// An operation in one of these states holds its deployment: no second one may start.
    pub fn is_active(self) -> bool {
        !self.is_terminal()
    }

    /// Whether a user may still cancel (nothing has been executed on AWS yet).
    pub fn is_cancellable(self) -> bool {
        matches!(
            self,
            OperationState::AwaitingApproval
                | OperationState::Queued
                | OperationState::CreatingChangeSet
                | OperationState::PreviewReady
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OperationState::AwaitingApproval => "awaiting_approval",
            OperationState::Queued => "queued",
            OperationState::CreatingChangeSet => "creating_change_set",
            OperationState::PreviewReady => "preview_ready",
            OperationState::Executing => "executing",
            OperationState::Succeeded => "succeeded",
            OperationState::NoChanges => "no_changes",
            OperationState::RolledBack => "rolled_back",
            OperationState::Failed => "failed",
            OperationState::Rejected => "rejected",
            OperationState::Cancelled => "cancelled",
        }
    }
}

/// Whether a worker moves an operation in `state` on (the others wait for a user or are over).
pub fn is_worker_state(state: OperationState) -> bool {
    matches!(state, OperationState::Queued | OperationState::CreatingChangeSet | OperationState::Executing)
}

/// Refusal of an illegal transition.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a {kind} operation cannot go from {from} to {to}")]
pub struct TransitionError {
    pub kind: &'static str,
    pub from: &'static str,
    pub to: &'static str,
}

/// Whether `kind` may move from `from` to `to`.
pub fn can_transition(kind: OperationKind, from: OperationState, to: OperationState) -> bool {
    use OperationState::*;
    let change_set = kind.uses_change_set();
    match (from, to) {
        (AwaitingApproval, Queued | Rejected | Cancelled) => true,
        // An approved change set: run at once, or shown to confirm (see `after_approval`).
        (AwaitingApproval, Executing | PreviewReady) => change_set,
        (Queued, CreatingChangeSet) => change_set,
        (Queued, Executing) => !change_set,
        (Queued, Cancelled | Failed) => true,
        // A request that needs approval waits with its change set made, so the approver sees it.
        (CreatingChangeSet, PreviewReady | NoChanges | Failed | Cancelled | AwaitingApproval) => change_set,
        // `auto_execute`: straight on once the change set exists.
        (CreatingChangeSet, Executing) => change_set,
        (PreviewReady, Executing | Cancelled | Failed) => change_set,
        (Executing, Succeeded | Failed) => true,
        (Executing, RolledBack) => kind != OperationKind::DriftCheck,
        _ => false,
    }
}

/// [`can_transition`] as a `Result`, for the server's store writes.
pub fn check_transition(
    kind: OperationKind,
    from: OperationState,
    to: OperationState,
) -> Result<(), TransitionError> {
    if can_transition(kind, from, to) {
        Ok(())
    } else {
        Err(TransitionError { kind: kind.as_str(), from: from.as_str(), to: to.as_str() })
    }
}

/// The first state of a new operation. A change that needs approval is queued all the same:
/// its change set is made first (nothing runs), and it waits for approval with it, so the
/// approver decides on the actual change. Only a delete (no change set) waits at once.
pub fn initial_state(kind: OperationKind, needs_approval: bool) -> OperationState {
    if needs_approval && !kind.uses_change_set() {
        OperationState::AwaitingApproval
    } else {
        OperationState::Queued
    }
}

/// Where approving a waiting request leads. A change whose change set was made goes on with that
/// very change set: at once when the requester asked for it (`auto_execute`), else to the
/// preview for a last confirmation. A request without one (a delete, or a change stored before
/// requests waited with their change sets) is queued; such a change then gets its change set
/// made and waits again, for approval of what it will actually do.
pub fn after_approval(kind: OperationKind, has_change_set: bool, auto_execute: bool) -> OperationState {
    match (kind.uses_change_set() && has_change_set, auto_execute) {
        (true, true) => OperationState::Executing,
        (true, false) => OperationState::PreviewReady,
        (false, _) => OperationState::Queued,
    }
}

/// What a deployment is, as far as its stack goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DeploymentStatus {
    /// Created; its first deploy has not finished.
    Pending,
    /// An operation is changing the stack.
    InProgress,
    /// The stack runs the deployment's current version.
    Active,
    /// The last change failed and was rolled back: the previous version still runs.
    UpdateFailed,
    /// The first deploy failed: nothing runs.
    Failed,
    Deleted,
    /// The stack disappeared outside the toolkit (found by the reconciler).
    Missing,
}

impl DeploymentStatus {
    pub const ALL: [DeploymentStatus; 7] = [
        DeploymentStatus::Pending,
        DeploymentStatus::InProgress,
        DeploymentStatus::Active,
        DeploymentStatus::UpdateFailed,
        DeploymentStatus::Failed,
        DeploymentStatus::Deleted,
        DeploymentStatus::Missing,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeploymentStatus::Pending => "pending",
            DeploymentStatus::InProgress => "in_progress",
            DeploymentStatus::Active => "active",
            DeploymentStatus::UpdateFailed => "update_failed",
            DeploymentStatus::Failed => "failed",
            DeploymentStatus::Deleted => "deleted",
            DeploymentStatus::Missing => "missing",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// Problems sort first on the dashboard.
    pub fn is_problem(self) -> bool {
        matches!(self, DeploymentStatus::Failed | DeploymentStatus::UpdateFailed | DeploymentStatus::Missing)
    }

    /// Whether a stack exists to upgrade, roll back, switch, check or delete.
    pub fn has_stack(self) -> bool {
        matches!(self, DeploymentStatus::Active | DeploymentStatus::UpdateFailed)
    }
}

/// Which operations may be requested on a deployment in `status` (none while one runs).
pub fn allowed_operations(status: DeploymentStatus, blue_green: bool) -> Vec<OperationKind> {
    use OperationKind::*;
    match status {
        DeploymentStatus::Pending
        | DeploymentStatus::Failed
        | DeploymentStatus::Deleted
        | DeploymentStatus::Missing => {
            vec![Deploy]
        }
        DeploymentStatus::InProgress => vec![],
        DeploymentStatus::Active | DeploymentStatus::UpdateFailed => {
            let mut ops = vec![Upgrade, Rollback, Delete, DriftCheck];
            if blue_green {
                ops.push(Switch);
            }
            ops
        }
    }
}

/// The deployment's status once an operation of `kind` ends in `end` (`before` is its status
/// when the operation started). `None`: unchanged.
pub fn status_after(
    kind: OperationKind,
    end: OperationState,
    before: DeploymentStatus,
) -> Option<DeploymentStatus> {
    use OperationState::*;
    if kind == OperationKind::DriftCheck {
        return None;
    }
    match (kind, end) {
        (OperationKind::Delete, Succeeded) => Some(DeploymentStatus::Deleted),
        (_, Succeeded | NoChanges) => Some(DeploymentStatus::Active),
        (OperationKind::Deploy, RolledBack | Failed) => Some(DeploymentStatus::Failed),
        (_, RolledBack | Failed) if before.has_stack() => Some(DeploymentStatus::UpdateFailed),
        (_, RolledBack | Failed) => Some(DeploymentStatus::Failed),
        (_, Rejected | Cancelled) => None,
        _ => None,
    }
}

/// Health from the capability's `HealthCheckUrl`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Health {
    Healthy,
    Degraded,
    Unknown,
}

/// Result of the last drift detection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Drift {
    NotChecked,
    InSync,
    Drifted,
    Unknown,
}

impl DeploymentStatus {
    /// For people: "in progress", "update failed".
    pub fn label(self) -> String {
        self.as_str().replace('_', " ")
    }
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Healthy => "healthy",
            Health::Degraded => "degraded",
            Health::Unknown => "unknown",
        }
    }
}

impl Drift {
    pub fn as_str(self) -> &'static str {
        match self {
            Drift::NotChecked => "not checked",
            Drift::InSync => "in sync",
            Drift::Drifted => "drifted",
            Drift::Unknown => "unknown",
        }
    }
}

impl OperationKind {
    /// For people: "drift check".
    pub fn label(self) -> String {
        self.as_str().replace('_', " ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use OperationState::*;

    #[test]
    fn terminal_states_have_no_way_out() {
        for kind in OperationKind::ALL {
            for from in OperationState::ALL.into_iter().filter(|s| s.is_terminal()) {
                for to in OperationState::ALL {
                    assert!(!can_transition(kind, from, to), "{kind:?}: {from:?} -> {to:?}");
                }
            }
        }
    }

    #[test]
    fn every_non_terminal_state_can_finish() {
        // From every active state some path reaches a terminal state (no dead ends).
        for kind in OperationKind::ALL {
            for start in OperationState::ALL.into_iter().filter(|s| s.is_active()) {
                let reachable_from = |s: OperationState| {
                    OperationState::ALL.into_iter().filter(move |t| can_transition(kind, s, *t))
                };
                if kind.uses_change_set() || !matches!(start, CreatingChangeSet | PreviewReady) {
                    let mut seen = vec![start];
                    let mut i = 0;
                    while i < seen.len() {
                        for t in reachable_from(seen[i]) {
                            if !seen.contains(&t) {
                                seen.push(t);
                            }
                        }
                        i += 1;
                    }
                    assert!(seen.iter().any(|s| s.is_terminal()), "{kind:?} stuck from {start:?}");
                }
            }
        }
    }

    #[test]
    fn the_change_set_path() {
        let k = OperationKind::Upgrade;
        for (from, to) in [
            (AwaitingApproval, Queued),
            (Queued, CreatingChangeSet),
            (CreatingChangeSet, PreviewReady),
            (PreviewReady, Executing),
            (Executing, Succeeded),
        ] {
            assert!(check_transition(k, from, to).is_ok(), "{from:?} -> {to:?}");
        }
        assert!(can_transition(k, CreatingChangeSet, Executing), "auto_execute");
        assert!(can_transition(k, CreatingChangeSet, NoChanges));
        assert!(can_transition(k, Executing, RolledBack));
        assert!(!can_transition(k, Queued, Executing), "a change needs its change set first");
        assert!(!can_transition(k, Executing, Cancelled), "nothing is cancelled once executing");
        assert!(can_transition(k, CreatingChangeSet, AwaitingApproval), "waits with its change set");
        assert!(!can_transition(OperationKind::Delete, AwaitingApproval, Executing), "no change set to run");
    }

    #[test]
    fn a_request_for_approval_waits_with_its_change_set_and_approval_runs_that_one() {
        use OperationKind::*;
        assert_eq!(initial_state(Upgrade, true), Queued, "the change set is made first");
        assert_eq!(initial_state(Upgrade, false), Queued);
        assert_eq!(initial_state(Delete, true), AwaitingApproval, "nothing to make for a delete");
        assert_eq!(initial_state(Delete, false), Queued);
        assert_eq!(after_approval(Deploy, true, true), Executing);
        assert_eq!(after_approval(Deploy, true, false), PreviewReady);
        assert_eq!(after_approval(Deploy, false, true), Queued, "an older request gets its change set");
        assert_eq!(after_approval(Delete, false, true), Queued);
        for kind in OperationKind::ALL {
            for (has, auto) in [(true, true), (true, false), (false, true), (false, false)] {
                let to = after_approval(kind, has && kind.uses_change_set(), auto);
                assert!(can_transition(kind, AwaitingApproval, to), "{kind:?} -> {to:?}");
            }
        }
    }

    #[test]
    fn operations_without_change_sets_go_straight_to_executing() {
        for k in [OperationKind::Delete, OperationKind::DriftCheck] {
            assert!(can_transition(k, Queued, Executing));
            assert!(!can_transition(k, Queued, CreatingChangeSet));
            assert!(!can_transition(k, PreviewReady, Executing));
        }
        assert!(!can_transition(OperationKind::DriftCheck, Executing, RolledBack));
    }

    #[test]
    fn errors_name_both_states() {
        let e = check_transition(OperationKind::Deploy, Succeeded, Executing).unwrap_err();
        assert_eq!(e.to_string(), "a deploy operation cannot go from succeeded to executing");
    }

    #[test]
    fn cancellable_only_before_execution() {
        assert!(
            Queued.is_cancellable() && PreviewReady.is_cancellable() && AwaitingApproval.is_cancellable()
        );
        assert!(!Executing.is_cancellable() && !Succeeded.is_cancellable());
        for s in OperationState::ALL.into_iter().filter(|s| s.is_cancellable()) {
            assert!(can_transition(OperationKind::Deploy, s, Cancelled), "{s:?}");
        }
    }

    #[test]
    fn deployment_status_after_each_outcome() {
        use DeploymentStatus as D;
        assert_eq!(status_after(OperationKind::Deploy, Succeeded, D::Pending), Some(D::Active));
        assert_eq!(status_after(OperationKind::Deploy, RolledBack, D::Pending), Some(D::Failed));
        assert_eq!(status_after(OperationKind::Upgrade, RolledBack, D::Active), Some(D::UpdateFailed));
        assert_eq!(status_after(OperationKind::Rollback, Succeeded, D::UpdateFailed), Some(D::Active));
        assert_eq!(status_after(OperationKind::Upgrade, NoChanges, D::Active), Some(D::Active));
        assert_eq!(status_after(OperationKind::Delete, Succeeded, D::Active), Some(D::Deleted));
        assert_eq!(status_after(OperationKind::DriftCheck, Succeeded, D::Active), None);
        assert_eq!(status_after(OperationKind::Upgrade, Cancelled, D::Active), None);
    }

    #[test]
    fn allowed_operations_follow_status() {
        use DeploymentStatus as D;
        assert_eq!(allowed_operations(D::Pending, false), vec![OperationKind::Deploy]);
        assert!(allowed_operations(D::InProgress, true).is_empty());
        assert!(allowed_operations(D::Active, true).contains(&OperationKind::Switch));
        assert!(!allowed_operations(D::Active, false).contains(&OperationKind::Switch));
        assert!(allowed_operations(D::UpdateFailed, false).contains(&OperationKind::Rollback));
    }

    #[test]
    fn json_names_are_snake_case() {
        assert_eq!(serde_json::to_string(&AwaitingApproval).unwrap(), "\"awaiting_approval\"");
        assert_eq!(serde_json::to_string(&OperationKind::DriftCheck).unwrap(), "\"drift_check\"");
        for s in OperationState::ALL {
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{}\"", s.as_str()));
        }
        for s in DeploymentStatus::ALL {
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{}\"", s.as_str()));
        }
    }
}
