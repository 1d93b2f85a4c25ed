//! The operation a rollout starts for one of its deployments: an upgrade like a user's, with
//! the deployment's own parameters carried over and the rollout's values for new ones, stored
//! in one transaction with the rollout marking the deployment running (so a crash or a second
//! scheduler never starts two), and audited in the name of the rollout's creator.

use std::collections::BTreeMap;

use super::{OperationService, Plan};
use crate::{
    domain::{
        lifecycle::{DeploymentStatus, OperationKind, OperationState},
        model::{Approver, Operation},
        rollout_record::{Rollout, RolloutItem},
    },
    ssr::{
        audit::{ChangeError, NewEvent},
        clock,
        error::ServiceError,
        repo::{RepoError, StartError},
    },
};

/// Why a rollout's deployment did not start.
#[derive(Debug)]
pub enum RolloutStart {
    /// It cannot move any more (changed since the rollout was made, parameters no longer
    /// valid): the rollout skips it, saying why.
    Skip(String),
    /// Another operation holds it now: try again later.
    Busy,
    /// The rollout's record of it changed meanwhile (another scheduler): let go.
    Lost,
    Failed(ServiceError),
}

impl From<RepoError> for RolloutStart {
    fn from(e: RepoError) -> Self {
        RolloutStart::Failed(e.into())
    }
}

impl OperationService {
    /// Starts the upgrade of `item` for rollout `r`; `item` is left running with it.
    pub async fn start_for_rollout(
        &self,
        r: &Rollout,
        item: &mut RolloutItem,
    ) -> Result<Operation, RolloutStart> {
        let record = match self.repo.deployment(&item.item.deployment_id).await {
            Err(RepoError::NotFound) => {
                return Err(RolloutStart::Skip("the deployment no longer exists".into()));
            }
            other => other?,
        };
        let d = &record.deployment;
        if d.status != DeploymentStatus::Active {
            return Err(RolloutStart::Skip(format!(
                "it is {} now, not active",
                d.status.as_str().replace('_', " ")
            )));
        }
        if d.version != item.from_version {
            return Err(RolloutStart::Skip(format!(
                "it runs {} now, not {} as when the rollout was made",
                d.version, item.from_version
            )));
        }
        let given = self.cipher.open_all(&r.parameters, &r.id).map_err(|e| {
            tracing::error!(error = %e, rollout = %r.id, "the rollout's parameters cannot be decrypted");
            RolloutStart::Failed(ServiceError::Internal)
        })?;
        let parameters =
            match self.resolve_parameters(&d.capability, &r.version, &given, &d.parameters, &d.id) {
                Ok(p) => p,
                Err(ServiceError::Invalid { message, details, .. }) => {
                    let named: Vec<String> =
                        details.iter().map(|e| format!("{}: {}", e.field, e.message)).collect();
                    return Err(RolloutStart::Skip(format!(
                        "blocked: {}",
                        if named.is_empty() { message } else { named.join("; ") }
                    )));
                }
                Err(e) => return Err(RolloutStart::Failed(e)),
            };
        let plan = Plan {
            kind: OperationKind::Upgrade,
            version: Some(r.version.clone()),
            parameters,
            auto_execute: true,
        };
        // The rollout's own gates (and, before prod, its approval) stand for the operation's.
        let mut op = self.new_operation(&r.created_by, d, plan, Approver::None);
        op.rollout_id = Some(r.id.clone());
        let event = NewEvent {
            actor_id: Some(r.created_by.clone()),
            action: "operation.upgrade".into(),
            target: format!("deployment/{}", d.id),
            outcome: "success".into(),
            owner_id: Some(record.owner_id.clone()),
            details: serde_json::json!({
                "operation": op.id, "state": op.state, "version": op.target_version,
                "approver": op.approver, "stack": op.stack_name, "rollout": r.id,
            }),
            ..NewEvent::default()
        };
        let started = self
            .audit
            .with_change(event, clock::now(), |repo| {
                let (op, mut item) = (op.clone(), item.clone());
                async move {
                    let op = repo.start_rollout_item(&mut item, op).await?;
                    Ok::<_, StartError>((op, item))
                }
            })
            .await;
        let op = match started {
            Ok((op, saved)) => {
                *item = saved;
                op
            }
            Err(ChangeError::Change(StartError::Busy(_))) => return Err(RolloutStart::Busy),
            Err(ChangeError::Change(StartError::Repo(RepoError::Conflict(_)))) => {
                return Err(RolloutStart::Lost);
            }
            Err(ChangeError::Change(StartError::Repo(e))) => return Err(e.into()),
            Err(ChangeError::Change(other)) => {
                tracing::warn!(?other, rollout = %r.id, "unexpected answer starting a rollout's operation");
                return Err(RolloutStart::Failed(ServiceError::Internal));
            }
            Err(ChangeError::Audit(e)) => return Err(RolloutStart::Failed(e)),
        };
        self.engine.published(&op).await;
        if op.state == OperationState::Queued {
            self.engine.start_now(op.clone());
        }
        Ok(op)
    }

    /// The rollout's values for new parameters, `NoEcho` ones sealed (bound to the rollout).
    pub(crate) fn seal_rollout_parameters(
        &self,
        r: &Rollout,
        given: &BTreeMap<String, String>,
    ) -> BTreeMap<String, String> {
        let catalog = self.catalog.read().unwrap_or_else(|p| p.into_inner());
        match catalog.version(&r.capability, &r.version) {
            Some(v) => self.cipher.seal_all(&v.meta.parameters, given, &r.id),
            None => given.clone(),
        }
    }
}
