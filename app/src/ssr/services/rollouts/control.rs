//! What users do with a running rollout: pause, resume, cancel (operations in flight finish;
//! nothing new starts), approve its prod waves (never the creator; an Executive's rollout by
//! a second Executive), retry its failed deployments and skip one. Each is checked against the
//! rollout's state and saved with its audit event in one transaction; a scheduler's save in
//! between answers 409, as for operations.

use crate::{
    domain::{
        ids::Id,
        model::Role,
        rollout::{ItemState, RolloutState},
        rollout_record::{Control, Rollout, RolloutView, WaveApproval, may_skip},
    },
    ssr::{
        audit::ChangeError,
        auth::{Actor, require_step_up},
        clock,
        error::ServiceError,
        repo::RepoError,
    },
};

use super::RolloutService;

impl RolloutService {
    /// Pause, resume or cancel.
    pub async fn control(
        &self,
        actor: &Actor,
        id: &Id,
        control: Control,
    ) -> Result<RolloutView, ServiceError> {
        let mut r = self.visible(actor, id).await?;
        let to = control.apply(r.state).map_err(ServiceError::Conflict)?;
        let from = r.state;
        r.state = to;
        r.changed_by = Some(actor.user.id.clone());
        r.status_text = match control {
            Control::Pause => Some("paused by a user".into()),
            Control::Resume => None,
            Control::Cancel => Some("cancelled by a user".into()),
        };
        if to == RolloutState::Cancelled {
            r.in_flight = self.repo.rollout_counts(id).await?.iter().any(|c| c.running > 0);
        }
        let mut event =
            actor.audit(&format!("rollout.{}", control.as_str()), format!("rollout/{id}"), "success");
        event.details = serde_json::json!({"from": from, "to": to});
        let r = self.save(r, event).await?;
        if to == RolloutState::Cancelled {
            self.release(&r.id).await;
        }
        if control != Control::Resume {
            self.announce(&r).await;
        }
        self.scheduler_wake.notify_one();
        self.view(r).await
    }

    /// Approves the prod wave the rollout waits for.
    pub async fn approve(&self, actor: &Actor, id: &Id) -> Result<RolloutView, ServiceError> {
        let mut r = self.visible(actor, id).await?;
        if actor.role() != Role::Executive {
            return Err(ServiceError::Forbidden("only an Executive approves a rollout's prod waves".into()));
        }
        if r.created_by == actor.user.id {
            return Err(ServiceError::Forbidden(
                "you created this rollout: another Executive approves it (four eyes)".into(),
            ));
        }
        if r.state != RolloutState::AwaitingApproval {
            return Err(ServiceError::Conflict(format!(
                "the rollout is {}, not waiting for approval",
                crate::domain::rollout::state_words(r.state)
            )));
        }
        require_step_up(&self.repo, actor, clock::now()).await?;
        let wave = self.waiting_wave(&r).await?;
        r.approvals.push(WaveApproval { wave, by: actor.user.id.clone(), at: clock::now() });
        r.state = RolloutState::Running;
        r.status_text = None;
        r.changed_by = Some(actor.user.id.clone());
        let mut event = actor.audit("rollout.approve", format!("rollout/{id}"), "success");
        event.details = serde_json::json!({"wave": wave});
        let r = self.save(r, event).await?;
        self.scheduler_wake.notify_one();
        self.view(r).await
    }

    /// Gives every failed deployment another attempt (a new operation each), and resumes a
    /// rollout the failures paused.
    pub async fn retry(&self, actor: &Actor, id: &Id) -> Result<RolloutView, ServiceError> {
        let mut r = self.visible(actor, id).await?;
        if !r.state.is_active() || r.state == RolloutState::Creating {
            return Err(ServiceError::Conflict("only an active rollout retries".into()));
        }
        let mut retried = 0;
        for mut item in self.repo.rollout_items(id).await? {
            if let ItemState::Failed { .. } = item.item.state {
                let before = item.item.state.clone();
                item.item.state = ItemState::Waiting;
                item.note = Some("retried".into());
                item.finished_at = None;
                self.repo.save_rollout_item(&before, &mut item).await.map_err(conflict)?;
                retried += 1;
            }
        }
        if retried == 0 {
            return Err(ServiceError::Conflict("no deployment of the rollout failed".into()));
        }
        if r.state == RolloutState::Paused {
            r.state = RolloutState::Running;
            r.status_text = None;
        }
        r.changed_by = Some(actor.user.id.clone());
        let mut event = actor.audit("rollout.retry", format!("rollout/{id}"), "success");
        event.details = serde_json::json!({"deployments": retried});
        let r = self.save(r, event).await?;
        self.scheduler_wake.notify_one();
        self.view(r).await
    }

    /// Leaves one waiting or failed deployment out of the rollout.
    pub async fn skip(&self, actor: &Actor, id: &Id, deployment: &Id) -> Result<RolloutView, ServiceError> {
        let mut r = self.visible(actor, id).await?;
        if !r.state.is_active() || r.state == RolloutState::Creating {
            return Err(ServiceError::Conflict("only an active rollout's deployments are skipped".into()));
        }
        let mut item = self
            .repo
            .rollout_items(id)
            .await?
            .into_iter()
            .find(|i| &i.item.deployment_id == deployment)
            .ok_or(ServiceError::NotFound("deployment"))?;
        if !may_skip(&item.item.state) {
            return Err(ServiceError::Conflict(format!(
                "the deployment is {}: only a waiting or failed one is skipped",
                item.item.state.name()
            )));
        }
        let before = item.item.state.clone();
        item.item.state = ItemState::Skipped;
        item.note = Some(format!("skipped by a user (was {})", before.name()));
        item.finished_at = Some(clock::now());
        self.repo.save_rollout_item(&before, &mut item).await.map_err(conflict)?;
        r.changed_by = Some(actor.user.id.clone());
        let mut event = actor.audit("rollout.skip", format!("rollout/{id}"), "success");
        event.details = serde_json::json!({"deployment": deployment, "was": before.name()});
        let r = self.save(r, event).await?;
        self.scheduler_wake.notify_one();
        self.view(r).await
    }

    /// The wave an `AwaitingApproval` rollout waits for: the first with a deployment not done.
    async fn waiting_wave(&self, r: &Rollout) -> Result<u32, ServiceError> {
        let items = self.repo.rollout_items(&r.id).await?;
        items
            .iter()
            .filter(|i| !i.item.state.done())
            .map(|i| i.item.wave)
            .min()
            .ok_or_else(|| ServiceError::Conflict("every deployment of the rollout is done".into()))
    }

    /// Saves the header with its audit event; a scheduler's save in between answers 409.
    async fn save(
        &self,
        mut r: Rollout,
        event: crate::ssr::audit::NewEvent,
    ) -> Result<Rollout, ServiceError> {
        r.updated_at = clock::now();
        let saved = self
            .audit
            .with_change(event, clock::now(), |repo| {
                let mut r = r.clone();
                async move { repo.save_rollout(&mut r).await.map(|()| r) }
            })
            .await;
        match saved {
            Ok(r) => Ok(r),
            Err(ChangeError::Change(e)) => Err(conflict(e)),
            Err(ChangeError::Audit(e)) => Err(e),
        }
    }

    pub(super) async fn release(&self, id: &Id) {
        if let Err(e) = self.repo.release_rollout(id).await {
            tracing::warn!(rollout = %id, error = %e, "cannot release a rollout's deployments now: a new rollout takes them over");
        }
    }

    async fn view(&self, rollout: Rollout) -> Result<RolloutView, ServiceError> {
        let counts = self.repo.rollout_counts(&rollout.id).await?;
        Ok(RolloutView { rollout, counts, items: Vec::new() })
    }
}

fn conflict(e: RepoError) -> ServiceError {
    match e {
        RepoError::Conflict(_) => ServiceError::Conflict("the rollout changed meanwhile: reload it".into()),
        other => other.into(),
    }
}
