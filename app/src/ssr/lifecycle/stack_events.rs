//! Stack status events: CloudFormation's "Stack Status Change" events, forwarded by an
//! EventBridge rule in each customer account (`infra/customer-role.yaml`) to an SQS queue of the
//! toolkit (`NEXUS_STACK_EVENTS_QUEUE_URL`), make the reconciler look at that deployment at once
//! rather than at its next pass.
//!
//! A message is deleted once handled, or when it is not a stack event of the toolkit; when the
//! store or AWS fails it is left, and SQS offers it again after its visibility timeout.

use std::{sync::Arc, time::Duration};

use aws_config::SdkConfig;
use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use super::reconciler::Reconciler;
use crate::ssr::metrics::Metrics;

pub struct StackEvents {
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    reconciler: Arc<Reconciler>,
    metrics: Arc<Metrics>,
}

/// What one receive did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    pub received: usize,
    pub reconciled: usize,
    pub ignored: usize,
    pub retried: usize,
}

impl StackEvents {
    pub fn new(
        sdk: &SdkConfig,
        queue_url: String,
        reconciler: Arc<Reconciler>,
        metrics: Arc<Metrics>,
    ) -> Self {
        StackEvents { sqs: aws_sdk_sqs::Client::new(sdk), queue_url, reconciler, metrics }
    }

    /// Long-polls the queue for as long as the process runs.
    pub async fn run(self: Arc<Self>) {
        tracing::info!(queue = %self.queue_url, "following stack status events");
        loop {
            let started = std::time::Instant::now();
            match self.receive(Duration::from_secs(20)).await {
                // An endpoint that does not long-poll answers empty at once: do not spin on it.
                Ok(b) if b.received == 0 && started.elapsed() < Duration::from_secs(1) => {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "stack events: the queue could not be read; trying again in 5 s");
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
            }
        }
    }

    /// Receives up to ten messages (waiting at most `wait` for the first) and handles them.
    pub async fn receive(&self, wait: Duration) -> Result<Batch, String> {
        let started = std::time::Instant::now();
        let out = self
            .sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(wait.as_secs().min(20) as i32)
            .send()
            .await
            .map_err(|e| self.failed("ReceiveMessage", e))?;
        self.metrics.aws_call("sqs", "ReceiveMessage", started.elapsed());
        let mut batch = Batch { received: out.messages().len(), ..Batch::default() };
        for m in out.messages() {
            let handled = match stack_name_of(m.body().unwrap_or_default()) {
                None => {
                    batch.ignored += 1;
                    true
                }
                Some(stack) => match self.reconciler.reconcile_stack(&stack).await {
                    Ok(Some(changed)) => {
                        tracing::info!(%stack, changed, "stack event reconciled");
                        batch.reconciled += 1;
                        true
                    }
                    Ok(None) => {
                        tracing::debug!(%stack, "stack event for a stack the toolkit does not know");
                        batch.ignored += 1;
                        true
                    }
                    Err(e) => {
                        tracing::warn!(%stack, error = %e, "stack event not handled; SQS offers it again");
                        batch.retried += 1;
                        false
                    }
                },
            };
            if let (true, Some(receipt)) = (handled, m.receipt_handle()) {
                let started = std::time::Instant::now();
                match self
                    .sqs
                    .delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(receipt)
                    .send()
                    .await
                {
                    Ok(_) => self.metrics.aws_call("sqs", "DeleteMessage", started.elapsed()),
                    Err(e) => {
                        let e = self.failed("DeleteMessage", e);
                        tracing::warn!(error = %e, "a handled stack event could not be deleted (it will be handled again)");
                    }
                }
            }
        }
        Ok(batch)
    }

    fn failed<E, R>(&self, op: &'static str, e: SdkError<E, R>) -> String
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        let code = match &e {
            SdkError::ServiceError(ctx) => ctx.err().code().unwrap_or("Unknown").to_string(),
            _ => "Unreachable".to_string(),
        };
        self.metrics.aws_error("sqs", op, &code);
        DisplayErrorContext(e).to_string()
    }
}

/// The stack an EventBridge "CloudFormation Stack Status Change" event is about (the message
/// body EventBridge delivers to SQS), read from `detail.stack-id`
/// (`arn:aws:cloudformation:<region>:<account>:stack/<name>/<uuid>`).
pub fn stack_name_of(body: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    if v["source"] != "aws.cloudformation" || v["detail-type"] != "CloudFormation Stack Status Change" {
        return None;
    }
    let arn = v["detail"]["stack-id"].as_str()?;
    let name = arn.splitn(6, ':').nth(5)?.strip_prefix("stack/")?.split('/').next()?;
    (!name.is_empty()).then(|| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::stack_name_of;

    /// The shape AWS documents for CloudFormation's events on EventBridge.
    const EVENT: &str = r#"{
        "version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": "CloudFormation Stack Status Change", "source": "aws.cloudformation",
        "account": "111122223333", "time": "2026-11-28T12:00:00Z", "region": "eu-west-1",
        "resources": ["arn:aws:cloudformation:eu-west-1:111122223333:stack/nexus-lead-scoring-acme-prod/e722ae60-fe62-11e8-9a0e-0ae8cc519968"],
        "detail": {
            "stack-id": "arn:aws:cloudformation:eu-west-1:111122223333:stack/nexus-lead-scoring-acme-prod/e722ae60-fe62-11e8-9a0e-0ae8cc519968",
            "status-details": {"status": "DELETE_COMPLETE", "status-reason": ""}
        }
    }"#;

    #[test]
    fn the_stack_comes_from_the_events_stack_id() {
        assert_eq!(stack_name_of(EVENT).as_deref(), Some("nexus-lead-scoring-acme-prod"));
        let other =
            EVENT.replace("CloudFormation Stack Status Change", "CloudFormation Resource Status Change");
        assert_eq!(stack_name_of(&other), None, "resource events are not stack events");
        let forged = EVENT.replace("aws.cloudformation", "nexus.toolkit");
        assert_eq!(stack_name_of(&forged), None);
        assert_eq!(stack_name_of("not json"), None);
        assert_eq!(stack_name_of(&EVENT.replace("stack/nexus", "nexus")), None, "not a stack ARN");
    }
}
