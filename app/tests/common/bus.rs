//! An EventBridge bus whose events land on an SQS queue the test reads: what the tests of
//! published operation events share.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::unique;

/// A fresh bus with a rule sending every `nexus.toolkit` event to a fresh queue: (bus name,
/// queue URL).
pub async fn bus_with_queue(sdk: &aws_config::SdkConfig) -> (String, String) {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let events = aws_sdk_eventbridge::Client::new(sdk);
    let bus = unique("nexus-bus");
    events.create_event_bus().name(&bus).send().await.unwrap();
    let (queue, arn) = queue_with_arn(&sqs, &unique("nexus-events")).await;
    events
        .put_rule()
        .name("to-queue")
        .event_bus_name(&bus)
        .event_pattern(r#"{"source":["nexus.toolkit"]}"#)
        .send()
        .await
        .unwrap();
    events
        .put_targets()
        .rule("to-queue")
        .event_bus_name(&bus)
        .targets(aws_sdk_eventbridge::types::Target::builder().id("q").arn(arn).build().unwrap())
        .send()
        .await
        .unwrap();
    (bus, queue)
}

pub async fn queue_with_arn(sqs: &aws_sdk_sqs::Client, name: &str) -> (String, String) {
    let url = sqs.create_queue().queue_name(name).send().await.unwrap().queue_url().unwrap().to_string();
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes()
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone();
    (url, arn)
}

/// The states published for `op` on a queue, in order of arrival, until `succeeded` (or
/// `within` passes); `detail` takes the event out of a message body.
pub async fn read_states(
    sqs: &aws_sdk_sqs::Client,
    queue: &str,
    op: &str,
    within: Duration,
    detail: impl Fn(&Value) -> Value,
) -> Vec<String> {
    let mut states = Vec::new();
    let started = Instant::now();
    while !states.contains(&"succeeded".to_string()) && started.elapsed() < within {
        states.extend(receive_states(sqs, queue, op, &detail).await);
    }
    states
}

/// One receive (waiting up to a second): the states of `op` (an operation or a rollout) among
/// the messages.
pub async fn receive_states(
    sqs: &aws_sdk_sqs::Client,
    queue: &str,
    op: &str,
    detail: impl Fn(&Value) -> Value,
) -> Vec<String> {
    let got = sqs
        .receive_message()
        .queue_url(queue)
        .max_number_of_messages(10)
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap();
    let mut states = Vec::new();
    for m in got.messages() {
        let v: Value = serde_json::from_str(m.body().unwrap()).unwrap();
        let d = detail(&v);
        assert!(d.get("parameters").is_none(), "no parameter values leave: {v}");
        // An operation's events, or a rollout's.
        if d["operation_id"] == op || d["rollout_id"] == op {
            states.push(d["state"].as_str().unwrap().to_string());
        }
    }
    states
}
