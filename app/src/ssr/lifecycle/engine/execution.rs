//! Running an operation's change (execute a change set, delete a stack, detect drift) and
//! following its stack to the end: the stack events are stored as they come, and a failure is
//! traced to the resource that caused it.

use std::collections::HashSet;

use super::{Engine, StepError, ms};
use crate::{
    domain::{
        lifecycle::{OperationKind, OperationState},
        model::{FailureCause, Operation},
        stacks::{self, StackEvent, StackPhase, TokenStep},
    },
    ssr::{
        clock,
        lifecycle::{crash, deployer::Target},
    },
};

impl Engine {
    /// Starts the change (once) and follows the stack to the end.
    pub(super) async fn execute(&self, op: &mut Operation) -> Result<(), StepError> {
        let r = self.repo.deployment(&op.deployment_id).await?;
        let target = self.target(op, &r).await?;
        if op.kind == OperationKind::DriftCheck {
            return self.drift_check(op, &target).await;
        }
        let token = match op.kind {
            OperationKind::Delete => stacks::client_token(&op.id, TokenStep::Delete),
            _ => stacks::client_token(&op.id, TokenStep::Execute),
        };
        if !op.executed {
            if op.kind == OperationKind::Delete {
                if self.deployer.stack(&target, &op.stack_name).await?.is_some() {
                    self.deployer.delete_stack(&target, &op.stack_name, &token).await?;
                }
            } else {
                let name = stacks::change_set_name(&op.id);
                let cs = self.deployer.change_set(&target, &op.stack_name, &name).await?;
                // Executed already (by this operation before a crash): never a second time.
                if !cs.executed() {
                    self.deployer.execute_change_set(&target, &op.stack_name, &name, &token).await?;
                }
                crash::point("after_change_set_executed");
            }
            op.executed = true;
            self.renew(op).await?;
        }
        // The new colour failed its health wait before a restart: finish removing it.
        if op.blue_green.as_ref().is_some_and(|b| b.abandoned) && op.kind != OperationKind::Delete {
            return self.remove_new_colour(op, &target, None).await;
        }
        let stack_ref = r
            .deployment
            .stack_id
            .clone()
            .filter(|_| op.kind == OperationKind::Delete)
            .unwrap_or_else(|| op.stack_name.clone());
        let mut seen = HashSet::new();
        let mut last_renew = clock::now();
        loop {
            let stack = self.deployer.stack(&target, &stack_ref).await?;
            if let Some(s) = &stack {
                let events = self.record_events(op, &target, &s.stack_id, &token, &mut seen).await?;
                op.stack_status = Some(s.status.clone());
                match stacks::stack_phase(&s.status) {
                    StackPhase::InProgress => {}
                    StackPhase::Complete if op.blue_green.is_some() && op.kind != OperationKind::Delete => {
                        return self.cut_over(op, &target, s.clone()).await;
                    }
                    StackPhase::Complete => {
                        let outputs = s.outputs.clone();
                        return self
                            .finish(op, OperationState::Succeeded, Some((s.stack_id.clone(), outputs)), None)
                            .await;
                    }
                    StackPhase::Deleted if op.kind == OperationKind::Delete => {
                        return self.finish(op, OperationState::Succeeded, None, None).await;
                    }
                    StackPhase::Deleted => {
                        let cause = FailureCause {
                            logical_id: None,
                            resource_type: None,
                            reason: "the stack was deleted while the operation ran".into(),
                            stack_status: Some(s.status.clone()),
                        };
                        return self.finish(op, OperationState::Failed, None, Some(cause)).await;
                    }
                    phase @ (StackPhase::RolledBack | StackPhase::Failed) => {
                        let cause = self.cause(op, &target, &s.stack_id, events, &token, &s.status).await;
                        let end = if phase == StackPhase::RolledBack {
                            OperationState::RolledBack
                        } else {
                            OperationState::Failed
                        };
                        return self.finish(op, end, None, Some(cause)).await;
                    }
                }
            } else if op.kind == OperationKind::Delete {
                return self.finish(op, OperationState::Succeeded, None, None).await;
            } else {
                return Err(StepError::Fatal("the stack does not exist".into()));
            }
            if clock::now().millis() - last_renew.millis() > ms(self.config.lease) / 3 {
                self.renew(op).await?;
                last_renew = clock::now();
            }
            tokio::time::sleep(self.config.follow).await;
        }
    }

    /// Stores the operation's new stack events; returns all of its events so far.
    pub(super) async fn record_events(
        &self,
        op: &Operation,
        target: &Target,
        stack_id: &str,
        token: &str,
        seen: &mut HashSet<String>,
    ) -> Result<Vec<StackEvent>, StepError> {
        let started = op.started_at.unwrap_or(op.created_at);
        let all = self.deployer.stack_events(target, stack_id).await?;
        let own: Vec<_> = all
            .into_iter()
            .filter(|e| match &e.client_request_token {
                Some(t) => t == token,
                None => e.timestamp >= started,
            })
            .collect();
        let fresh: Vec<_> = own.iter().filter(|e| !seen.contains(&e.event_id)).cloned().collect();
        if !fresh.is_empty() {
            self.repo.put_stack_events(&op.id, &fresh).await?;
            seen.extend(fresh.into_iter().map(|e| e.event_id));
        }
        Ok(own)
    }

    /// Which resource failed: from the stack events, or, when only the stack failed (a
    /// pre-deployment validation), from the operation's validation events.
    pub(super) async fn cause(
        &self,
        op: &Operation,
        target: &Target,
        stack_id: &str,
        mut events: Vec<StackEvent>,
        token: &str,
        status: &str,
    ) -> FailureCause {
        let cause = stacks::failure_cause(&events, Some(token), Some(status));
        if cause.resource_type.as_deref() != Some("AWS::CloudFormation::Stack") {
            return cause;
        }
        match self.deployer.validation_failures(target, stack_id).await {
            Ok(found) if !found.is_empty() => {
                let started = op.started_at.unwrap_or(op.created_at);
                let fresh: Vec<_> = found.into_iter().filter(|e| e.timestamp >= started).collect();
                if let Err(e) = self.repo.put_stack_events(&op.id, &fresh).await {
                    tracing::warn!(error = %e, "validation events not stored");
                }
                events.extend(fresh);
                stacks::failure_cause(&events, Some(token), Some(status))
            }
            Ok(_) => cause,
            Err(e) => {
                tracing::info!(error = %e, "no validation events");
                cause
            }
        }
    }

    pub(super) async fn drift_check(&self, op: &mut Operation, target: &Target) -> Result<(), StepError> {
        let report = self.deployer.detect_drift(target, &op.stack_name).await?;
        op.drift = report.resources;
        op.stack_status = Some(report.stack_status);
        self.finish(op, OperationState::Succeeded, None, None).await
    }
}
