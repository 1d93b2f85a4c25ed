//! Answering a request: the requester confirms a preview or cancels; an approver approves
//! (running exactly the change set the request waits with) or rejects, with a note; the inbox
//! lists what waits for the user.

use std::collections::HashMap;

use super::{INBOX_LIMIT, OperationService};
use crate::{
    domain::{
        ids::Id,
        lifecycle::{OperationState, after_approval},
        model::{Approver, Customer, EnvironmentName, Operation},
        permissions::{self, Action, Decision},
        views::{DecisionRequest, InboxItem},
    },
    ssr::{
        auth::{Actor, require_step_up},
        clock,
        error::ServiceError,
        repo::{DeploymentRecord, RepoError},
    },
};

impl OperationService {
    /// Confirms a previewed change set: the requester once approved, or anyone who may run it.
    pub async fn execute(&self, actor: &Actor, id: &Id) -> Result<Operation, ServiceError> {
        let (op, r) = self.visible_operation(actor, id).await?;
        let may_run = actor.check_customer(Action::Operate(op.environment), &r.owner_id, "operation");
        let approved_requester =
            op.requested_by == actor.user.id && (op.approver == Approver::None || op.approved_by.is_some());
        if !(matches!(may_run, Ok(Decision::Allow)) || approved_requester) {
            return Err(ServiceError::Forbidden(format!(
                "{} may not execute this change",
                actor.role().with_article()
            )));
        }
        if op.state != OperationState::PreviewReady {
            return Err(ServiceError::Conflict(format!(
                "the operation is {}, not waiting for confirmation",
                op.state.as_str()
            )));
        }
        if op.environment == EnvironmentName::Prod {
            require_step_up(&self.repo, actor, clock::now()).await?;
        }
        let mut op = op;
        op.status_before = Some(r.deployment.status);
        self.save_user_transition(actor, op, OperationState::Executing, &r.owner_id, "operation.execute")
            .await
    }

    /// Approves a waiting request: its change set, which the approver saw, runs (or goes to a
    /// last confirmation when the requester asked for one). A request still without a change
    /// set (a delete, or one stored before requests waited with theirs) is queued: a change then
    /// comes back with its change set, for approval of what it will actually do.
    pub async fn approve(
        &self,
        actor: &Actor,
        id: &Id,
        req: DecisionRequest,
    ) -> Result<Operation, ServiceError> {
        let (mut op, r) = self.decide(actor, id).await?;
        let note = decision_note(req.note)?;
        let has_change_set = op.change_set_id.is_some();
        let to = after_approval(op.kind, has_change_set, op.auto_execute);
        if op.kind.uses_change_set() && !has_change_set {
            // Nothing to approve yet: make the change set first; the approval comes after.
            return self
                .save_user_transition(actor, op, to, &r.owner_id, "operation.prepare_change_set")
                .await;
        }
        if op.environment == EnvironmentName::Prod {
            require_step_up(&self.repo, actor, clock::now()).await?;
        }
        op.approved_by = Some(actor.user.id.clone());
        op.decision_note = note;
        if to == OperationState::Executing {
            op.status_before = Some(r.deployment.status);
        }
        self.save_user_transition(actor, op, to, &r.owner_id, "operation.approve").await
    }

    pub async fn reject(
        &self,
        actor: &Actor,
        id: &Id,
        req: DecisionRequest,
    ) -> Result<Operation, ServiceError> {
        let (mut op, r) = self.decide(actor, id).await?;
        let note = decision_note(req.note)?;
        op.rejected_by = Some(actor.user.id.clone());
        op.error = note.as_ref().map(|n| format!("rejected: {n}"));
        op.decision_note = note;
        let had_change_set = op.change_set_id.is_some();
        let op = self
            .save_user_transition(actor, op, OperationState::Rejected, &r.owner_id, "operation.reject")
            .await?;
        if had_change_set {
            self.engine.discard_change_set(&op, &r.deployment.environment_id).await;
        }
        Ok(op)
    }

    /// The checks approve and reject share.
    pub(super) async fn decide(
        &self,
        actor: &Actor,
        id: &Id,
    ) -> Result<(Operation, DeploymentRecord), ServiceError> {
        let (op, r) = self.visible_operation(actor, id).await?;
        if op.state != OperationState::AwaitingApproval {
            return Err(ServiceError::Conflict(format!(
                "the operation is {}, not awaiting approval",
                op.state.as_str()
            )));
        }
        may_decide(actor, &op, &r.owner_id)?;
        Ok((op, r))
    }

    /// Requests awaiting approval that the user may see, oldest first: the ones they may decide,
    /// and their own (waiting on someone else).
    pub async fn inbox(&self, actor: &Actor) -> Result<Vec<InboxItem>, ServiceError> {
        actor.require(Action::ViewCustomers)?;
        let waiting = self.repo.waiting_operations(INBOX_LIMIT).await?;
        let mut customers: HashMap<Id, Customer> = HashMap::new();
        let mut items = Vec::new();
        for op in waiting.into_iter().filter(|o| o.state == OperationState::AwaitingApproval) {
            if !customers.contains_key(&op.customer_id) {
                match self.repo.customer(&op.customer_id).await {
                    Ok(c) => {
                        customers.insert(op.customer_id.clone(), c);
                    }
                    Err(RepoError::NotFound) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            let customer = &customers[&op.customer_id];
            if actor.check_customer(Action::ViewCustomers, &customer.owner_id, "operation").is_err() {
                continue;
            }
            let may = may_decide(actor, &op, &customer.owner_id).is_ok();
            if may || op.requested_by == actor.user.id {
                items.push(InboxItem {
                    operation: self.deployments.mask(op),
                    customer_name: customer.name.clone(),
                    may_decide: may,
                });
            }
        }
        Ok(items)
    }

    /// Cancels before anything ran on AWS: the requester, or anyone who may run it.
    pub async fn cancel(&self, actor: &Actor, id: &Id) -> Result<Operation, ServiceError> {
        let (op, r) = self.visible_operation(actor, id).await?;
        let may_run = matches!(
            actor.check_customer(Action::Operate(op.environment), &r.owner_id, "operation"),
            Ok(Decision::Allow)
        );
        if !(op.requested_by == actor.user.id || may_run) {
            return Err(ServiceError::Forbidden(format!(
                "{} may not cancel this operation",
                actor.role().with_article()
            )));
        }
        if !op.state.is_cancellable() {
            return Err(ServiceError::Conflict(format!(
                "a {} operation can no longer be cancelled",
                op.state.as_str()
            )));
        }
        let had_change_set =
            matches!(op.state, OperationState::PreviewReady | OperationState::CreatingChangeSet)
                || (op.state == OperationState::AwaitingApproval && op.change_set_id.is_some());
        let op = self
            .save_user_transition(actor, op, OperationState::Cancelled, &r.owner_id, "operation.cancel")
            .await?;
        if had_change_set {
            self.engine.discard_change_set(&op, &r.deployment.environment_id).await;
        }
        Ok(op)
    }
}
/// The longest decision note kept.
const NOTE_MAX_CHARS: usize = 500;

/// A decision's note, trimmed; empty is none; longer than [`NOTE_MAX_CHARS`] is refused (400),
/// never cut without a word.
fn decision_note(note: Option<String>) -> Result<Option<String>, ServiceError> {
    let note = note.map(|n| n.trim().to_string()).filter(|n| !n.is_empty());
    if let Some(n) = &note {
        if n.chars().count() > NOTE_MAX_CHARS {
            return Err(ServiceError::invalid(
                "note",
                "too_long",
                format!("a note has at most {NOTE_MAX_CHARS} characters"),
            ));
        }
        if n.chars().any(|c| c.is_control() && c != '\n') {
            return Err(ServiceError::invalid(
                "note",
                "invalid_characters",
                "a note may not hold control characters",
            ));
        }
    }
    Ok(note)
}

/// Whether this user may approve or reject this request (the service's rule, once).
fn may_decide(actor: &Actor, op: &Operation, owner: &Id) -> Result<(), ServiceError> {
    let own = op.requested_by == actor.user.id;
    if own {
        return Err(ServiceError::Forbidden("nobody approves or rejects their own request".into()));
    }
    // Requests stored before approvers were recorded: prod needs an Executive, the rest a
    // Sales Manager (or an Executive).
    let needed = match op.approver {
        Approver::None if op.environment == EnvironmentName::Prod => Approver::Executive,
        Approver::None => Approver::SalesManager,
        a => a,
    };
    if !permissions::may_approve(actor.role(), actor.relation(owner), op.environment, needed, own) {
        return Err(ServiceError::Forbidden(match needed {
            Approver::Executive => "only an Executive may approve this request".into(),
            _ => "only the requester's Sales Manager or an Executive may approve this request".into(),
        }));
    }
    Ok(())
}
