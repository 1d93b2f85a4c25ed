//! Operation state changes, published for others: EventBridge (source `nexus.toolkit`,
//! detail-type `Deployment Operation State Change`) and, when configured, an SNS topic; and a
//! rollout's pause, wait for approval, completion or cancellation (detail-type
//! `Rollout State Change`). NoEcho values never leave: the events carry no parameters at all.

use std::{sync::Arc, time::Instant};

pub use crate::domain::events::{OperationEvent, RolloutEvent};
use crate::{
    domain::views::Notification,
    ssr::{metrics::Metrics, repo::Repo},
};
use async_trait::async_trait;
use aws_config::SdkConfig;

pub const SOURCE: &str = "nexus.toolkit";
pub const DETAIL_TYPE: &str = "Deployment Operation State Change";
pub const ROLLOUT_DETAIL_TYPE: &str = "Rollout State Change";

#[async_trait]
pub trait Notifier: Send + Sync {
    /// Publishes one event; failures are logged by the caller, never fail the operation.
    async fn publish(&self, event: &OperationEvent) -> Result<(), String>;

    /// Publishes a rollout's state change. The in-app feed lists operations only: by default
    /// a notifier takes it and does nothing.
    async fn publish_rollout(&self, _event: &RolloutEvent) -> Result<(), String> {
        Ok(())
    }
}

/// Publishes to several notifiers; every one is tried, the errors are joined.
pub struct FanoutNotifier(pub Vec<Arc<dyn Notifier>>);

#[async_trait]
impl Notifier for FanoutNotifier {
    async fn publish(&self, event: &OperationEvent) -> Result<(), String> {
        let mut errors = Vec::new();
        for n in &self.0 {
            if let Err(e) = n.publish(event).await {
                errors.push(e);
            }
        }
        if errors.is_empty() { Ok(()) } else { Err(errors.join("; ")) }
    }

    async fn publish_rollout(&self, event: &RolloutEvent) -> Result<(), String> {
        let mut errors = Vec::new();
        for n in &self.0 {
            if let Err(e) = n.publish_rollout(event).await {
                errors.push(e);
            }
        }
        if errors.is_empty() { Ok(()) } else { Err(errors.join("; ")) }
    }
}

/// The in-app feed: each state change stored for the customer's owner (and so their Sales
/// Manager) and for Executives, read by the notifications page.
pub struct StoreNotifier {
    pub repo: Repo,
}

#[async_trait]
impl Notifier for StoreNotifier {
    async fn publish(&self, event: &OperationEvent) -> Result<(), String> {
        let customer = self.repo.customer(&event.customer_id).await.map_err(|e| e.to_string())?;
        let n = Notification {
            operation_id: event.operation_id.clone(),
            deployment_id: event.deployment_id.clone(),
            customer_id: event.customer_id.clone(),
            customer_name: customer.name,
            environment: event.environment,
            capability: event.capability.clone(),
            kind: event.kind,
            state: event.state,
            target_version: event.target_version.clone(),
            requested_by: event.requested_by.clone(),
            error: event.error.clone(),
            at: event.at,
        };
        self.repo.put_notification(&customer.owner_id, &n).await.map_err(|e| e.to_string())
    }
}

/// Logs only: no bus configured (local use).
pub struct LogNotifier;

#[async_trait]
impl Notifier for LogNotifier {
    async fn publish(&self, event: &OperationEvent) -> Result<(), String> {
        tracing::info!(operation = %event.operation_id, kind = event.kind.as_str(), state = event.state.as_str(), "operation state changed");
        Ok(())
    }

    async fn publish_rollout(&self, event: &RolloutEvent) -> Result<(), String> {
        tracing::info!(rollout = %event.rollout_id, state = ?event.state, why = ?event.why, "rollout state changed");
        Ok(())
    }
}

/// EventBridge `PutEvents` on a bus, plus SNS `Publish` on a topic when one is set.
pub struct EventBridgeNotifier {
    events: aws_sdk_eventbridge::Client,
    bus: String,
    sns: Option<(aws_sdk_sns::Client, String)>,
    metrics: Arc<Metrics>,
}

impl EventBridgeNotifier {
    pub fn new(sdk: &SdkConfig, bus: String, topic: Option<String>, metrics: Arc<Metrics>) -> Self {
        EventBridgeNotifier {
            events: aws_sdk_eventbridge::Client::new(sdk),
            bus,
            sns: topic.map(|t| (aws_sdk_sns::Client::new(sdk), t)),
            metrics,
        }
    }
}

impl EventBridgeNotifier {
    /// One event on the bus (and the topic): `detail` as JSON, `resource` the stack if any.
    async fn send(
        &self,
        detail_type: &str,
        detail: &str,
        resource: Option<String>,
        subject: String,
    ) -> Result<(), String> {
        let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .source(SOURCE)
            .detail_type(detail_type)
            .detail(detail)
            .event_bus_name(&self.bus)
            .set_resources(resource.map(|r| vec![r]))
            .build();
        let started = Instant::now();
        let out = self.events.put_events().entries(entry).send().await;
        self.metrics.aws_call("eventbridge", "PutEvents", started.elapsed());
        let out = out.map_err(|e| {
            self.metrics.aws_error("eventbridge", "PutEvents", "Error");
            aws_sdk_eventbridge::error::DisplayErrorContext(&e).to_string()
        })?;
        if out.failed_entry_count() > 0 {
            self.metrics.aws_error("eventbridge", "PutEvents", "FailedEntry");
            return Err(format!(
                "EventBridge refused the event: {:?}",
                out.entries().first().and_then(|e| e.error_message())
            ));
        }
        if let Some((sns, topic)) = &self.sns {
            let started = Instant::now();
            let out = sns.publish().topic_arn(topic).subject(subject).message(detail).send().await;
            self.metrics.aws_call("sns", "Publish", started.elapsed());
            out.map_err(|e| {
                self.metrics.aws_error("sns", "Publish", "Error");
                aws_sdk_sns::error::DisplayErrorContext(&e).to_string()
            })?;
        }
        Ok(())
    }
}

#[async_trait]
impl Notifier for EventBridgeNotifier {
    async fn publish(&self, event: &OperationEvent) -> Result<(), String> {
        let detail = serde_json::to_string(event).map_err(|e| e.to_string())?;
        let subject = format!("{}: {} {}", DETAIL_TYPE, event.kind.as_str(), event.state.as_str());
        self.send(DETAIL_TYPE, &detail, Some(event.stack_name.clone()), subject).await
    }

    async fn publish_rollout(&self, event: &RolloutEvent) -> Result<(), String> {
        let detail = serde_json::to_string(event).map_err(|e| e.to_string())?;
        let state = serde_json::to_value(event.state).ok().and_then(|v| v.as_str().map(String::from));
        let subject = format!(
            "{}: {} {} {}",
            ROLLOUT_DETAIL_TYPE,
            event.capability,
            event.version,
            state.unwrap_or_default()
        );
        self.send(ROLLOUT_DETAIL_TYPE, &detail, None, subject).await
    }
}
