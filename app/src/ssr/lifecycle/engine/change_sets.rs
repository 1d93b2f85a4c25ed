//! Making and finding an operation's change set, and where it acts: the environment's account
//! (checked first when its connection is stale), the template (inline or from the artifacts
//! bucket) and the stack's tags.

use super::{Engine, StepError};
use crate::{
    domain::{
        lifecycle::{DeploymentStatus, OperationKind, OperationState},
        model::{ConnectionStatus, Operation},
        stacks::{self, TokenStep},
    },
    ssr::{
        clock,
        lifecycle::{
            connection, crash,
            deployer::{ChangeSetRequest, ChangeSetStatus, Target, TemplateSource},
        },
        repo::DeploymentRecord,
    },
};

impl Engine {
    /// Where the operation acts: the environment's account, the session named after it. When
    /// the environment's last successful connection check is older than `connect_max_age` (or
    /// there was none), it is checked first and the operation fails, saying so, if it does not
    /// pass; the result is stored on the environment like a user's check.
    pub(super) async fn target(
        &self,
        op: &Operation,
        deployment: &DeploymentRecord,
    ) -> Result<Target, StepError> {
        let env = self.repo.environment(&deployment.deployment.environment_id).await?;
        let target = Target::of(&env, format!("nexus-{}", op.id));
        let now = clock::now();
        let fresh = env.connection == ConnectionStatus::Connected
            && env
                .connection_checked_at
                .is_some_and(|t| now.millis() - t.millis() < self.config.connect_max_age.as_millis() as i64);
        if fresh {
            return Ok(target);
        }
        let (checked, outcome) = connection::check(self.deployer.as_ref(), &env, &target).await;
        if let Err(e) = &outcome
            && e.is_transient()
        {
            // Paused by the account's circuit, or AWS throttling: try again (nothing to store).
            return Err(e.clone().into());
        }
        // Someone changed the environment meanwhile: their write wins; the next step checks again.
        if let Err(e) = self.repo.update_environment(checked.clone()).await {
            tracing::info!(operation = %op.id, error = %e, "the connection check was not stored");
        }
        match outcome {
            Ok(()) => Ok(target),
            Err(_) => Err(StepError::Fatal(format!(
                "the account could not be reached through the environment's role ({}); check the connection on the customer page",
                checked.connection_error.unwrap_or_default()
            ))),
        }
    }

    /// The template inline, or by URL from the artifacts bucket when it is too big.
    pub(super) async fn template(&self, op: &Operation) -> Result<TemplateSource, StepError> {
        let version =
            op.target_version.clone().ok_or_else(|| StepError::Fatal("no target version".into()))?;
        let (body, needs_url, sha) = {
            let catalog = self.catalog.read().unwrap_or_else(|p| p.into_inner());
            let v = catalog.version(&op.capability, &version).ok_or_else(|| {
                StepError::Fatal(format!("{} {version} is not in the catalog", op.capability))
            })?;
            (v.template_body.clone(), v.needs_url, v.meta.template_sha256.clone())
        };
        if !needs_url {
            return Ok(TemplateSource::Body(body));
        }
        let key = format!("templates/{}/{version}-{}.template", op.capability, &sha[..12.min(sha.len())]);
        match self.artifacts.url_for(&key, body.as_bytes()).await {
            Ok(Some(url)) => Ok(TemplateSource::Url(url)),
            Ok(None) => Err(StepError::Fatal(
                "the template is over 51,200 bytes: CloudFormation needs it from an S3 bucket (set NEXUS_ARTIFACTS_BUCKET)".into(),
            )),
            Err(e) => Err(StepError::Transient(e.to_string())),
        }
    }

    pub(super) fn tags(&self, op: &Operation, customer_cost_center: &str) -> Vec<(String, String)> {
        vec![
            ("Project".into(), "nexus-toolkit".into()),
            ("Environment".into(), op.environment.as_str().into()),
            ("CostCenter".into(), customer_cost_center.into()),
            ("nexus:capability".into(), op.capability.clone()),
            ("nexus:version".into(), op.target_version.as_ref().map(|v| v.to_string()).unwrap_or_default()),
            ("nexus:deployment".into(), op.deployment_id.to_string()),
        ]
    }

    /// Moves to Executing and marks the deployment as changing (a drift check changes nothing).
    pub(super) async fn start_executing(&self, op: &mut Operation) -> Result<(), StepError> {
        let r = self.repo.deployment(&op.deployment_id).await?;
        if op.status_before.is_none() {
            op.status_before = Some(r.deployment.status);
        }
        self.transition(op, OperationState::Executing).await?;
        if op.kind != OperationKind::DriftCheck && r.deployment.status != DeploymentStatus::InProgress {
            let mut after = r.clone();
            after.deployment.status = DeploymentStatus::InProgress;
            after.deployment.last_operation_id = Some(op.id.clone());
            after.deployment.updated_at = clock::now();
            // A concurrent reconciler write only delays the label; the finish sets the truth.
            if let Err(e) = self.repo.update_deployment(&r, after).await {
                tracing::info!(operation = %op.id, error = %e, "deployment not marked in progress");
            }
        }
        Ok(())
    }

    /// Creates (or finds) the change set. `true`: go on; `false`: the operation waits or ended.
    pub(super) async fn create_change_set(&self, op: &mut Operation) -> Result<bool, StepError> {
        let r = self.repo.deployment(&op.deployment_id).await?;
        let target = self.target(op, &r).await?;
        let customer = self.repo.customer(&r.deployment.customer_id).await?;
        let existing = self.deployer.stack(&target, &op.stack_name).await?;
        if let Some(s) = &existing
            && s.status == "DELETE_IN_PROGRESS"
        {
            tokio::time::sleep(self.config.follow).await;
            self.renew(op).await?;
            return Ok(true);
        }
        // A first deploy that failed leaves a ROLLBACK_COMPLETE stack, which can only be deleted.
        if let Some(s) = &existing
            && s.status == "ROLLBACK_COMPLETE"
        {
            self.deployer
                .delete_stack(&target, &op.stack_name, &stacks::client_token(&op.id, TokenStep::Delete))
                .await?;
            self.renew(op).await?;
            return Ok(true);
        }
        let create = existing
            .as_ref()
            .is_none_or(|s| s.status == "REVIEW_IN_PROGRESS" || s.status == "DELETE_COMPLETE");
        let parameters = self
            .cipher
            .open_all(&op.parameters, &op.deployment_id)
            .map_err(|e| StepError::Fatal(e.to_string()))?;
        let req = ChangeSetRequest {
            stack_name: op.stack_name.clone(),
            change_set_name: stacks::change_set_name(&op.id),
            client_token: stacks::client_token(&op.id, TokenStep::CreateChangeSet),
            create,
            template: self.template(op).await?,
            parameters,
            tags: self.tags(op, &customer.cost_center),
        };
        let info = self.deployer.create_change_set(&target, &req).await?;
        crash::point("after_change_set_created");
        op.change_set_id = Some(info.id.clone());
        op.changes = info.changes.clone();
        match info.status {
            ChangeSetStatus::Empty => {
                if let Err(e) =
                    self.deployer.delete_change_set(&target, &op.stack_name, &req.change_set_name).await
                {
                    tracing::info!(error = %e, "the empty change set stays");
                }
                self.finish(op, OperationState::NoChanges, None, None).await?;
                Ok(false)
            }
            ChangeSetStatus::Failed(reason) => {
                Err(StepError::Fatal(format!("the change set failed: {reason}")))
            }
            ChangeSetStatus::Pending => {
                Err(StepError::Transient("the change set is still being computed".into()))
            }
            // A request that needs approval waits with its change set: the approver decides on
            // exactly this change (approving runs it; see `OperationService::approve`).
            ChangeSetStatus::Ready if op.awaits_approval() => {
                self.transition(op, OperationState::AwaitingApproval).await?;
                Ok(false)
            }
            ChangeSetStatus::Ready if op.auto_execute => {
                self.start_executing(op).await?;
                Ok(true)
            }
            ChangeSetStatus::Ready => {
                self.transition(op, OperationState::PreviewReady).await?;
                Ok(false)
            }
        }
    }

    /// A cancelled preview's change set is deleted, and so is the empty stack (REVIEW_IN_PROGRESS)
    /// a first deploy's change set made. Best effort, logged: AWS itself drops a stack's change
    /// sets when the next one is executed, and the next deploy takes over an empty stack.
    pub async fn discard_change_set(&self, op: &Operation, environment: &crate::domain::ids::Id) {
        let env = match self.repo.environment(environment).await {
            Ok(env) => env,
            Err(e) => {
                tracing::warn!(operation = %op.id, error = %e, "change set of a cancelled operation left: no environment");
                return;
            }
        };
        let target = Target::of(&env, format!("nexus-{}", op.id));
        let deployer = &self.deployer;
        let name = stacks::change_set_name(&op.id);
        if let Err(e) = deployer.delete_change_set(&target, &op.stack_name, &name).await {
            tracing::info!(operation = %op.id, error = %e, "no change set deleted for the cancelled operation");
        }
        match deployer.stack(&target, &op.stack_name).await {
            Ok(Some(s)) if s.status == "REVIEW_IN_PROGRESS" => {
                let token = stacks::client_token(&op.id, stacks::TokenStep::Delete);
                if let Err(e) = deployer.delete_stack(&target, &op.stack_name, &token).await {
                    tracing::warn!(operation = %op.id, error = %e, "the empty stack of a cancelled deploy stays");
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::info!(operation = %op.id, error = %e, "stack of a cancelled operation not looked at")
            }
        }
    }
}
