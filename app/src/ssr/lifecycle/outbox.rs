//! Events the bus cannot take now are not lost: the outbox keeps each refused one in the store
//! and a worker sends them again, oldest first, until the bus takes them. Operations never wait
//! for the bus. Delivery is at least once (a replica may stop between sending and forgetting,
//! two replicas may send the same held event): consumers key on (operation id, state) and order
//! by `at`, since a held event arrives after newer ones sent straight through.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;

use super::notifier::{Notifier, OperationEvent, RolloutEvent};
use crate::domain::events::Published;
use crate::ssr::{metrics::Metrics, repo::Repo};

/// Events read from the outbox at a time.
const BATCH: usize = 50;

pub struct OutboxNotifier {
    /// The bus (EventBridge and SNS, or the log).
    bus: Arc<dyn Notifier>,
    repo: Repo,
    metrics: Arc<Metrics>,
}

impl OutboxNotifier {
    pub fn new(bus: Arc<dyn Notifier>, repo: Repo, metrics: Arc<Metrics>) -> Self {
        OutboxNotifier { bus, repo, metrics }
    }

    /// Sends what the outbox holds, oldest first, forgetting each one the bus takes; stops at
    /// the first refusal (the bus is still down: the rest waits for the next round). Answers
    /// how many were delivered.
    pub async fn drain(&self) -> Result<usize, String> {
        let mut delivered = 0;
        loop {
            let held = self.repo.held_events(BATCH).await.map_err(|e| e.to_string())?;
            if held.is_empty() {
                return Ok(delivered);
            }
            for h in held {
                match &h.event {
                    Published::Operation(e) => self.bus.publish(e).await?,
                    Published::Rollout(e) => self.bus.publish_rollout(e).await?,
                }
                self.repo.release_event(&h.key).await.map_err(|e| e.to_string())?;
                self.metrics.outbox_delivered();
                delivered += 1;
            }
        }
    }

    /// Drains the outbox every `every`, until the process ends.
    pub async fn run(self: Arc<Self>, every: Duration) {
        loop {
            tokio::time::sleep(every).await;
            match self.drain().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(delivered = n, "held operation events delivered"),
                Err(e) => tracing::debug!(error = %e, "the outbox waits: the bus or the store still refuses"),
            }
        }
    }
}

#[async_trait]
impl Notifier for OutboxNotifier {
    /// Straight to the bus; what it refuses is kept. Fails only when the store cannot keep it
    /// either (the event is then only in the log).
    async fn publish(&self, event: &OperationEvent) -> Result<(), String> {
        let Err(refused) = self.bus.publish(event).await else {
            return Ok(());
        };
        match self.repo.hold_event(event).await {
            Ok(()) => {
                self.metrics.outbox_held();
                tracing::warn!(
                    operation = %event.operation_id,
                    state = event.state.as_str(),
                    error = %refused,
                    "the bus refused the operation event: kept in the outbox"
                );
                Ok(())
            }
            Err(e) => Err(format!("{refused}; not kept for later either: {e}")),
        }
    }

    async fn publish_rollout(&self, event: &RolloutEvent) -> Result<(), String> {
        let Err(refused) = self.bus.publish_rollout(event).await else {
            return Ok(());
        };
        match self.repo.hold_rollout_event(event).await {
            Ok(()) => {
                self.metrics.outbox_held();
                tracing::warn!(rollout = %event.rollout_id, error = %refused, "the bus refused the rollout event: kept in the outbox");
                Ok(())
            }
            Err(e) => Err(format!("{refused}; not kept for later either: {e}")),
        }
    }
}
