//! Making a rollout from its plan, and reading rollouts back. Creation stores the header
//! first (state `Creating`), then the deployments in batches with their holders, then moves
//! the header on with its audit event in one transaction; a creation cut short is undone here
//! on a conflict, or by the scheduler when the process died (see `scheduler`).

use crate::{
    domain::{
        ids::Id,
        model::{EnvironmentName, Page, Role},
        rollout::{Item, ItemState, RolloutState},
        rollout_plan::RolloutRequest,
        rollout_record::{Rollout, RolloutItem, RolloutView, WavePlan},
    },
    ssr::{
        audit::ChangeError,
        auth::Actor,
        clock,
        error::ServiceError,
        ids::new_id,
        repo::{HoldError, ITEMS_PER_BATCH, RepoError},
    },
};

use super::RolloutService;
use crate::domain::permissions::Action;

impl RolloutService {
    /// Stores the rollout `req` plans (202 on the REST API); an earlier request with the same
    /// idempotency key answers the rollout it made.
    pub async fn create(
        &self,
        actor: &Actor,
        req: &RolloutRequest,
        idempotency_key: Option<&str>,
    ) -> Result<RolloutView, ServiceError> {
        actor.require(Action::ManageRollouts)?;
        if let Some(key) = idempotency_key
            && let Some(id) = self.repo.idempotent_rollout(&actor.user.id, key).await?
        {
            return self.get(actor, &id).await;
        }
        let plan = self.plan(actor, req).await?;
        if plan.deployments() == 0 {
            return Err(ServiceError::invalid(
                "selection",
                "nothing_to_roll_out",
                format!(
                    "no deployment would move: {} left out (see the plan's reasons with \"dry_run\": true)",
                    plan.excluded.len()
                ),
            ));
        }
        let now = clock::now();
        let id = new_id();
        let mut header = Rollout {
            id: id.clone(),
            capability: req.capability.clone(),
            version: req.version.parse().map_err(|_| ServiceError::Internal)?,
            state: RolloutState::Creating,
            created_by: actor.user.id.clone(),
            team: (actor.role() != Role::Executive).then(|| actor.user.id.clone()),
            settings: req.waves,
            gates: req.gates,
            waves: plan
                .waves
                .iter()
                .map(|w| WavePlan {
                    number: w.number,
                    environment: w.environment,
                    size: w.deployments.len() as u32,
                })
                .collect(),
            parameters: Default::default(),
            approvals: Vec::new(),
            finished_waves: Vec::new(),
            status_text: None,
            in_flight: false,
            changed_by: None,
            created_at: now,
            updated_at: now,
            lease_owner: None,
            lease_until: None,
            rev: 1,
        };
        header.parameters = self.operations.seal_rollout_parameters(&header, &req.parameters);
        self.repo.begin_rollout(&header).await?;
        let items: Vec<RolloutItem> = plan
            .waves
            .iter()
            .flat_map(|w| {
                w.deployments.iter().map(|d| RolloutItem {
                    rollout_id: id.clone(),
                    item: Item {
                        deployment_id: d.deployment_id.clone(),
                        customer_id: d.customer_id.clone(),
                        account_id: d.account_id.clone(),
                        environment: d.environment,
                        wave: w.number,
                        state: ItemState::Waiting,
                        health: crate::domain::lifecycle::Health::Unknown,
                    },
                    customer: d.customer.clone(),
                    from_version: d.from_version.clone(),
                    note: None,
                    finished_at: None,
                    rev: 1,
                })
            })
            .collect();
        for batch in items.chunks(ITEMS_PER_BATCH) {
            if let Err(e) = self.repo.add_rollout_items(batch).await {
                self.undo(&id).await;
                return Err(match e {
                    HoldError::Held { deployment, rollout } => ServiceError::Conflict(format!(
                        "deployment {deployment} joined rollout {rollout} meanwhile: plan again"
                    )),
                    HoldError::Repo(e) => e.into(),
                });
            }
        }
        let first_prod = header.waves.first().is_some_and(|w| w.environment == EnvironmentName::Prod);
        header.state = if first_prod { RolloutState::AwaitingApproval } else { RolloutState::Running };
        let mut event = actor.audit("rollout.create", format!("rollout/{id}"), "success");
        event.details = serde_json::json!({
            "capability": header.capability, "version": header.version,
            "deployments": items.len(), "waves": header.waves.len(),
            "settings": header.settings, "gates": header.gates,
        });
        let activated = self
            .audit
            .with_change(event, now, |repo| {
                let mut h = header.clone();
                async move { repo.activate_rollout(&mut h, idempotency_key).await.map(|()| h) }
            })
            .await;
        match activated {
            Ok(h) => {
                tracing::info!(rollout = %id, deployments = items.len(), "rollout created");
                self.scheduler_wake.notify_one();
                let counts = self.repo.rollout_counts(&id).await?;
                Ok(RolloutView { rollout: h, counts, items: Vec::new() })
            }
            // The same key made a rollout meanwhile: that one is the answer.
            Err(ChangeError::Change(RepoError::Conflict(earlier))) if !earlier.is_empty() => {
                self.undo(&id).await;
                let earlier = Id::parse(&earlier).map_err(|_| ServiceError::Internal)?;
                self.get(actor, &earlier).await
            }
            Err(e) => {
                self.undo(&id).await;
                Err(e.into())
            }
        }
    }

    /// Removes a creation cut short; when even that fails, the scheduler finishes it later.
    async fn undo(&self, id: &Id) {
        if let Err(e) = self.repo.discard_rollout(id).await {
            tracing::warn!(rollout = %id, error = %e, "cannot undo a rollout's creation now: the scheduler will");
        }
    }

    /// A rollout the actor may see: an Executive any, a Sales Manager their own team's.
    pub(super) async fn visible(&self, actor: &Actor, id: &Id) -> Result<Rollout, ServiceError> {
        actor.require(Action::ManageRollouts)?;
        let r = match self.repo.rollout(id).await {
            Err(RepoError::NotFound) => return Err(ServiceError::NotFound("rollout")),
            other => other?,
        };
        if r.state == RolloutState::Creating && actor.user.id != r.created_by {
            return Err(ServiceError::NotFound("rollout"));
        }
        if actor.role() == Role::Executive || r.team.as_ref() == Some(&actor.user.id) {
            Ok(r)
        } else {
            Err(ServiceError::Hidden("rollout"))
        }
    }

    /// One rollout with its progress and its deployments.
    pub async fn get(&self, actor: &Actor, id: &Id) -> Result<RolloutView, ServiceError> {
        let rollout = self.visible(actor, id).await?;
        let counts = self.repo.rollout_counts(id).await?;
        let items = self.repo.rollout_items(id).await?;
        Ok(RolloutView { rollout, counts, items })
    }

    /// The rollouts the actor may see, newest first, with their progress (not their
    /// deployments: a page of rollouts reads counters only).
    pub async fn list(
        &self,
        actor: &Actor,
        limit: usize,
        after: Option<&str>,
    ) -> Result<Page<RolloutView>, ServiceError> {
        actor.require(Action::ManageRollouts)?;
        let page = self.repo.rollouts(limit, after).await?;
        let mut items = Vec::with_capacity(page.items.len());
        for rollout in page.items {
            let mine = actor.role() == Role::Executive || rollout.team.as_ref() == Some(&actor.user.id);
            if !mine || rollout.state == RolloutState::Creating {
                continue;
            }
            let counts = self.repo.rollout_counts(&rollout.id).await?;
            items.push(RolloutView { rollout, counts, items: Vec::new() });
        }
        Ok(Page { items, next_cursor: page.next_cursor })
    }
}
