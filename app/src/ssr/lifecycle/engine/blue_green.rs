//! Carrying out a blue-green plan (`domain::blue_green`) once the new colour's stack is complete:
//! wait for it to answer healthy, switch the active colour, bake, delete the old colour; or,
//! when it never answers healthy, remove it and leave traffic where it was.

use std::time::Duration;

use super::{Engine, HEALTH_OUTPUT, StepError, ms, probe};
use crate::{
    domain::{
        lifecycle::{Health, OperationState},
        model::{Color, Operation},
        stacks::{self, StackPhase, TokenStep},
    },
    ssr::{
        clock,
        lifecycle::{
            crash,
            deployer::{StackInfo, Target},
        },
    },
};

impl Engine {
    /// Blue-green, once the new colour's stack is complete: wait until it answers healthy,
    /// switch the active colour, keep the old colour for the bake time, delete it. Each step is
    /// saved before the next, so a resumed operation goes on where it stopped.
    pub(super) async fn cut_over(
        &self,
        op: &mut Operation,
        target: &Target,
        stack: StackInfo,
    ) -> Result<(), StepError> {
        let mut bg = op.blue_green.clone().expect("checked by the caller");
        let url = stack.outputs.get(HEALTH_OUTPUT).cloned();
        if !bg.healthy {
            let started = clock::now();
            loop {
                match probe(self.http.as_ref(), url.as_deref()).await {
                    Health::Healthy | Health::Unknown => break,
                    Health::Degraded
                        if clock::now().millis() - started.millis() < ms(self.config.health_wait) =>
                    {
                        self.renew(op).await?;
                        tokio::time::sleep(self.config.follow).await;
                    }
                    Health::Degraded => {
                        // Stored before the new colour is removed, so a resumed operation removes
                        // it rather than waiting for its health again.
                        bg.abandoned = true;
                        op.blue_green = Some(bg);
                        self.renew(op).await?;
                        return self.remove_new_colour(op, target, url.as_deref()).await;
                    }
                }
            }
            bg.healthy = true;
            op.blue_green = Some(bg.clone());
            self.renew(op).await?;
        }
        if bg.switched_at.is_none() {
            let name = format!("/nexus/{}/active", op.deployment_id);
            // Read first: a resumed operation that switched before a crash does not switch again.
            if self.deployer.parameter(target, &name).await?.as_deref() != Some(bg.to.as_str()) {
                self.deployer.put_parameter(target, &name, bg.to.as_str()).await?;
            }
            crash::point("after_colour_switched");
            bg.switched_at = Some(clock::now());
            op.blue_green = Some(bg.clone());
            self.renew(op).await?;
        }
        if let (Some(old), Some(from), false) = (bg.old_stack.clone(), bg.from, bg.old_deleted) {
            let bake_end = bg.switched_at.map(|t| t.millis()).unwrap_or(0) + ms(self.config.bake);
            while clock::now().millis() < bake_end {
                let left = Duration::from_millis((bake_end - clock::now().millis()).max(0) as u64);
                tokio::time::sleep(left.min(self.config.lease / 3)).await;
                self.renew(op).await?;
            }
            if old != op.stack_name {
                self.delete_colour(op, target, &old, from).await?;
                crash::point("after_old_colour_deleted");
            }
            bg.old_deleted = true;
            op.blue_green = Some(bg);
            self.renew(op).await?;
        }
        self.finish(op, OperationState::Succeeded, Some((stack.stack_id, stack.outputs)), None).await
    }

    /// Deletes one colour's stack (once: a stack already gone is not asked again) and waits
    /// until it is gone.
    pub(super) async fn delete_colour(
        &self,
        op: &mut Operation,
        target: &Target,
        stack: &str,
        colour: Color,
    ) -> Result<(), StepError> {
        let token = stacks::client_token(&op.id, TokenStep::DeleteStack(colour));
        let mut asked = false;
        while let Some(s) = self.deployer.stack(target, stack).await? {
            match stacks::stack_phase(&s.status) {
                StackPhase::Deleted => break,
                _ if !asked => {
                    self.deployer.delete_stack(target, stack, &token).await?;
                    asked = true;
                }
                _ if s.status == "DELETE_FAILED" => {
                    return Err(StepError::Fatal(format!(
                        "the {} stack could not be deleted: {}",
                        colour.as_str(),
                        s.reason.clone().unwrap_or(s.status)
                    )));
                }
                _ => {
                    tokio::time::sleep(self.config.follow).await;
                    self.renew(op).await?;
                }
            }
        }
        Ok(())
    }

    /// Blue-green, when the new colour never answered healthy: traffic stays on the old colour
    /// (the switch was never made) and the new colour's stack is deleted, so a failed upgrade
    /// leaves nothing running that nobody uses. A first deploy has no other colour: its stack
    /// stays for the user to look at or deploy again.
    pub(super) async fn remove_new_colour(
        &self,
        op: &mut Operation,
        target: &Target,
        url: Option<&str>,
    ) -> Result<(), StepError> {
        let bg = op.blue_green.clone().expect("checked by the caller");
        let mut message = format!(
            "the {} stack did not answer healthy{} within {} s: traffic stays on {}",
            bg.to.as_str(),
            url.map(|u| format!(" at {u}")).unwrap_or_default(),
            self.config.health_wait.as_secs(),
            bg.from.map(|c| c.as_str()).unwrap_or("nothing"),
        );
        if bg.from.is_some() && bg.old_stack.as_deref() != Some(op.stack_name.as_str()) {
            let stack = op.stack_name.clone();
            self.delete_colour(op, target, &stack, bg.to).await?;
            message.push_str(&format!("; the {} stack was deleted", bg.to.as_str()));
        }
        Err(StepError::Fatal(message))
    }
}
