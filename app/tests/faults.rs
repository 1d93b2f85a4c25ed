//! What the review promises under faults ("AWS throttling is retried with backoff", RTO/RPO),
//! proven with faults injected around the real adapters (`common/faults.rs`): the emulator
//! stays the AWS server, the store stays a real store, the event bus a real bus.

#[path = "common/bus.rs"]
mod bus;
mod common;
#[path = "common/faults.rs"]
mod faults;
#[path = "common/operations.rs"]
mod operations;

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use common::{TestApp, require_emulator};
use faults::{Calls, Faults};
use operations::{customer, post, state_is, terminal, wait_for_within};
use serde_json::json;

const EXEC: &str = "exec@demo.nexus";

/// A worker that looks often, and a store of `kind` (`embedded` or `dynamodb`), wrapped.
async fn app(faults: &std::sync::Arc<Faults>, dynamodb: bool) -> TestApp {
    require_emulator();
    let vars = [
        ("NEXUS_WORKER", "on"),
        ("NEXUS_WORKER_POLL_MS", "100"),
        ("NEXUS_STACK_POLL_MS", "100"),
        ("NEXUS_HEALTH_ALLOW_LOOPBACK", "true"),
    ];
    let wrap = |a| faults.wrap(a);
    if dynamodb {
        TestApp::dynamodb_wrapped(&common::unique("nexus-faults"), &vars, wrap).await
    } else {
        TestApp::embedded_wrapped(&vars, wrap).await
    }
}

/// Throttling that outlasts the SDK's own retries, on DescribeStacks and CreateChangeSet, and
/// on the store's writes: each step is tried again after a jittered backoff (the operation
/// records the attempts and the last transient error) and the deployment completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_is_retried_with_backoff_and_the_operation_completes() {
    let faults = Faults::new();
    let app = app(&faults, false).await;
    let exec = app.login(EXEC).await;
    let c = customer(&app, &exec).await;
    faults.fail(Calls::Named("DescribeStacks"), "Throttling", 1);
    faults.fail(Calls::Named("CreateChangeSet"), "ThrottlingException", 1);

    let started = Instant::now();
    let a = post(
        &app,
        &exec,
        "/api/v1/deployments",
        json!({"environment_id": c.dev, "capability": "lead-scoring", "version": "1.0.0",
               "parameters": {"Environment": "dev"}, "auto_execute": true}),
    )
    .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
    // The store's next two writes are the worker's (claim, steps): refused as a throttled
    // table would refuse them.
    faults.fail(Calls::Named("transact"), "ProvisionedThroughputExceededException", 2);
    let op = a.body["id"].as_str().unwrap().to_string();
    let done = wait_for_within(&app, &exec, &op, Duration::from_secs(90), terminal).await;
    assert_eq!(done["state"], "succeeded", "{done}");

    assert_eq!(faults.refused("DescribeStacks"), 1);
    assert_eq!(faults.refused("CreateChangeSet"), 1);
    assert_eq!(faults.refused("transact"), 2);
    assert!(faults.count("CreateChangeSet") >= 2, "tried again after the throttling");
    // Each throttled AWS step was a claim of its own, and the first retry waited at least the
    // backoff's first half-second.
    assert!(done["attempts"].as_u64().unwrap() >= 3, "{done}");
    assert!(started.elapsed() >= Duration::from_millis(1000), "backed off");
    assert_eq!(done["error"], serde_json::Value::Null, "a success clears the transient error: {done}");
    let d = app.get(&format!("/api/v1/deployments/{}", done["deployment_id"].as_str().unwrap()), &exec).await;
    assert_eq!(
        (d.body["status"].as_str(), d.body["version"].as_str()),
        (Some("active"), Some("1.0.0")),
        "{}",
        d.text
    );
}

/// The store unreachable for ten seconds while an operation runs: `/health` names the store,
/// requests are answered 503 (nothing half-written), and once it is back the operation
/// completes and its deployment is consistent with it. On both stores.
async fn the_store_down_mid_operation(dynamodb: bool) {
    let faults = Faults::new();
    let app = app(&faults, dynamodb).await;
    let exec = app.login(EXEC).await;
    let c = customer(&app, &exec).await;
    let a = post(
        &app,
        &exec,
        "/api/v1/deployments",
        json!({"environment_id": c.dev, "capability": "lead-scoring", "version": "1.0.0",
               "parameters": {"Environment": "dev"}}),
    )
    .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
    let op = a.body["id"].as_str().unwrap().to_string();
    let deployment = a.body["deployment_id"].as_str().unwrap().to_string();
    wait_for_within(&app, &exec, &op, Duration::from_secs(60), state_is("preview_ready")).await;
    let run = post(&app, &exec, &format!("/api/v1/operations/{op}/execute"), json!({})).await;
    assert_eq!(run.status, StatusCode::ACCEPTED, "{}", run.text);

    let outage = Duration::from_secs(10);
    let down_at = Instant::now();
    faults.fail_for(Calls::All("store"), "ServiceUnavailable", outage);
    let health = app.call(axum::http::Method::GET, "/health", None, None).await;
    assert_eq!(health.status, StatusCode::SERVICE_UNAVAILABLE, "{}", health.text);
    assert_eq!(
        health.body["checks"]["store"]["status"], "fail",
        "the failing check is named: {}",
        health.text
    );
    let read = app.get("/api/v1/customers", &exec).await;
    assert_eq!(read.status, StatusCode::SERVICE_UNAVAILABLE, "{}", read.text);
    assert_eq!(read.body["error"]["code"], "unavailable", "{}", read.text);
    let write = post(&app, &exec, &format!("/api/v1/deployments/{deployment}/drift"), json!({})).await;
    assert_eq!(write.status, StatusCode::SERVICE_UNAVAILABLE, "{}", write.text);

    // Back: the operation goes on where it stopped and ends.
    tokio::time::sleep(outage.saturating_sub(down_at.elapsed())).await;
    let done = wait_for_within(&app, &exec, &op, Duration::from_secs(90), terminal).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert!(faults.refused("store") > 0, "the outage was felt");
    let health = app.call(axum::http::Method::GET, "/health", None, None).await;
    assert_eq!(health.status, StatusCode::OK, "{}", health.text);
    let d = app.get(&format!("/api/v1/deployments/{deployment}"), &exec).await;
    assert_eq!(d.body["status"], "active", "{}", d.text);
    assert_eq!(d.body["last_operation_id"], op.as_str(), "{}", d.text);
    // The refused drift check left nothing behind: the deployment is free for the next one.
    let next = post(&app, &exec, &format!("/api/v1/deployments/{deployment}/drift"), json!({})).await;
    assert_eq!(next.status, StatusCode::ACCEPTED, "{}", next.text);
}

mod the_store_down_for_ten_seconds_mid_operation {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn embedded_store() {
        super::the_store_down_mid_operation(false).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dynamodb_store() {
        super::the_store_down_mid_operation(true).await;
    }
}

/// A change and its audit event are one transaction: a customer created, an environment
/// added, a deployment requested and then approved each reach the store as one write that
/// carries the audit record too (the event and the chain's head). When the store refuses that
/// write, neither the change nor its event exists; when it takes it, both do. On both stores.
async fn a_change_and_its_audit_event_in_one_transaction(dynamodb: bool) {
    let faults = Faults::new();
    let app = app(&faults, dynamodb).await;
    let exec = app.login(EXEC).await;
    let audited = |action: &'static str| {
        let (app, exec) = (&app, &exec);
        async move {
            let a = app.get(&format!("/api/v1/audit?action={action}&limit=200"), exec).await;
            assert_eq!(a.status, StatusCode::OK, "{}", a.text);
            a.body["items"].as_array().unwrap().len()
        }
    };
    let before = audited("customer.create").await;
    let rep = app.user_id("rep@demo.nexus").await;
    let slug =
        format!("t{}", common::unique("x").replace('-', "").chars().rev().take(12).collect::<String>());
    let input =
        json!({"name": format!("Customer {slug}"), "slug": slug, "owner_id": rep, "cost_center": "CC-1042"});

    faults.fail(Calls::Writing("CUST#"), "InternalServerError", 1);
    let refused = post(&app, &exec, "/api/v1/customers", input.clone()).await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE, "{}", refused.text);
    assert_eq!(faults.refused("transact"), 1);
    assert!(
        matches!(app.state.repo.customer_by_slug(&slug).await, Err(app::ssr::repo::RepoError::NotFound)),
        "no customer"
    );
    assert_eq!(audited("customer.create").await, before, "no event either");

    let created = post(&app, &exec, "/api/v1/customers", input).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(audited("customer.create").await, before + 1);
    let id = created.body["id"].as_str().unwrap();
    first_write_with_its_audit_record(&faults, 0, &format!("CUST#{id}"), "CUST");

    let account = operations::fresh_account();
    let env = post(
        &app,
        &exec,
        &format!("/api/v1/customers/{id}/environments"),
        json!({"name": "prod", "account_id": account, "region": "eu-west-1",
               "role_arn": format!("arn:aws:iam::{account}:role/NexusDeploymentRole")}),
    )
    .await;
    assert_eq!(env.status, StatusCode::CREATED, "{}", env.text);
    first_write_with_its_audit_record(&faults, 0, &format!("CUST#{id}"), "ENV#prod");

    // A Rep's prod request waits for approval; the approval moves it on.
    let rep_token = app.login("rep@demo.nexus").await;
    let a = post(
        &app,
        &rep_token,
        "/api/v1/deployments",
        json!({"environment_id": env.body["id"], "capability": "lead-scoring", "version": "1.0.0",
               "parameters": {"Environment": "prod"}}),
    )
    .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
    let op = a.body["id"].as_str().unwrap();
    let deployment = format!("DEP#{}", a.body["deployment_id"].as_str().unwrap());
    first_write_with_its_audit_record(&faults, 0, &deployment, &format!("OP#{op}"));
    wait_for_within(&app, &exec, op, Duration::from_secs(60), state_is("awaiting_approval")).await;
    let so_far = faults.transactions().len();
    let approve = post(&app, &exec, &format!("/api/v1/operations/{op}/approve"), json!({})).await;
    assert_eq!(approve.status, StatusCode::ACCEPTED, "{}", approve.text);
    // The first write of the operation after the approval is the approval's.
    first_write_with_its_audit_record(&faults, so_far, &deployment, &format!("OP#{op}"));
    let verify = app.get("/api/v1/audit/verify", &exec).await;
    assert_eq!(verify.body["ok"], true, "the chain holds: {}", verify.text);
}

/// The first store write from the `from`th on that put (`pk`, a sort key starting with `sk`)
/// also wrote the audit event and moved the chain's head.
fn first_write_with_its_audit_record(faults: &Faults, from: usize, pk: &str, sk: &str) {
    let writes = faults.transactions();
    let write = writes[from..]
        .iter()
        .find(|t| t.iter().any(|(p, s)| p == pk && s.starts_with(sk)))
        .unwrap_or_else(|| panic!("{pk}/{sk} written"));
    let audit: Vec<&str> = write.iter().filter(|(p, _)| p == "AUDIT").map(|(_, s)| s.as_str()).collect();
    assert_eq!(audit.len(), 2, "the event and the head, in the same write: {write:?}");
    assert!(audit.contains(&"HEAD"), "{audit:?}");
}

mod a_change_and_its_audit_event_are_one_transaction {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn embedded_store() {
        super::a_change_and_its_audit_event_in_one_transaction(false).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dynamodb_store() {
        super::a_change_and_its_audit_event_in_one_transaction(true).await;
    }
}

/// A storm of 5xx answers from one customer's account: after three failures in a row its
/// circuit opens and the engine stops adding to the storm (calls into it are refused without
/// reaching AWS, one probe per cool-down), while another customer's operation runs to its end
/// meanwhile; once the account answers again, its operations complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_5xx_storm_on_one_account_pauses_it_and_the_others_keep_flowing() {
    require_emulator();
    let faults = Faults::new();
    let vars = [
        ("NEXUS_WORKER", "on"),
        ("NEXUS_WORKER_POLL_MS", "100"),
        ("NEXUS_STACK_POLL_MS", "100"),
        ("NEXUS_PROD_FOUR_EYES", "off"),
        ("NEXUS_BREAKER_FAILURES", "3"),
        ("NEXUS_BREAKER_COOL_DOWN_SECONDS", "4"),
    ];
    let app = TestApp::embedded_wrapped(&vars, |a| faults.wrap(a)).await;
    let exec = app.login(EXEC).await;
    let stormy = customer(&app, &exec).await;
    let calm = customer(&app, &exec).await;
    assert_ne!(stormy.account, calm.account);

    let storm = Duration::from_secs(16);
    let storm_started = Instant::now();
    faults.fail_for(Calls::Account(stormy.account.clone()), "ServiceUnavailable", storm);
    let mut waiting = Vec::new();
    for (env, name) in [(&stormy.dev, "dev"), (&stormy.prod, "prod")] {
        for (capability, version) in [("lead-scoring", "1.0.0"), ("churn-prediction", "1.0.0")] {
            let a = post(
                &app,
                &exec,
                "/api/v1/deployments",
                json!({"environment_id": env, "capability": capability, "version": version,
                       "parameters": {"Environment": name}, "auto_execute": true}),
            )
            .await;
            assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
            waiting.push(a.body["id"].as_str().unwrap().to_string());
        }
    }
    let a = post(
        &app,
        &exec,
        "/api/v1/deployments",
        json!({"environment_id": calm.dev, "capability": "lead-scoring", "version": "1.0.0",
               "parameters": {"Environment": "dev"}, "auto_execute": true}),
    )
    .await;
    let calm_op = a.body["id"].as_str().unwrap().to_string();
    let done = wait_for_within(&app, &exec, &calm_op, storm, terminal).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert!(storm_started.elapsed() < storm, "the other account's operation ended during the storm");

    // Well into the storm: the paused account's operations wait, and say why.
    tokio::time::sleep((storm * 3 / 4).saturating_sub(storm_started.elapsed())).await;
    let mut errors = Vec::new();
    for op in &waiting {
        let a = app.get(&format!("/api/v1/operations/{op}"), &exec).await;
        assert!(!terminal(&a.body), "{}", a.text);
        let error = a.body["error"].as_str().unwrap_or_default().to_string();
        // Refused by the circuit, an operation comes back when it half-opens (its own backoff,
        // grown through the storm, would wait longer than the account's recovery).
        if error.contains("paused after repeated failures") && a.body["not_before"].is_string() {
            let at: app::domain::time::Timestamp =
                serde_json::from_value(a.body["not_before"].clone()).unwrap();
            let now = app::ssr::clock::now();
            assert!(at.millis() - now.millis() <= 4_000 + 1_000, "back within a cool-down: {}", a.text);
        }
        errors.push(error);
    }
    assert!(errors.iter().any(|e| e.contains("paused after repeated failures")), "{errors:?}");

    tokio::time::sleep(storm.saturating_sub(storm_started.elapsed())).await;
    let reached = faults.count(&format!("account:{}", stormy.account));
    // Four operations retrying each on its own backoff (1, 2, 4, 8 s …) would have called
    // about four times each in the storm; with the circuit: three failures, then one probe
    // per cool-down, whichever operation makes it.
    let cool_downs = storm.as_secs() / 4;
    assert!(reached <= 3 + cool_downs + 2, "calls that reached the stormy account: {reached}");
    assert!(faults.refused(&format!("account:{}", stormy.account)) >= 3);

    for op in &waiting {
        let done = wait_for_within(&app, &exec, op, Duration::from_secs(120), terminal).await;
        assert_eq!(done["state"], "succeeded", "{done}");
    }
}

/// EventBridge refusing everything for a while: the operation does not wait for it (it ends
/// during the outage), its events are kept in the outbox, and once the bus takes events again
/// each is delivered once, in the order they happened, and the outbox is empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_the_bus_refuses_wait_in_the_outbox_and_are_delivered_later() {
    require_emulator();
    let sdk = app::ssr::aws::load_sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let (bus, queue) = bus::bus_with_queue(&sdk).await;
    let faults = Faults::new();
    let vars = [
        ("NEXUS_WORKER", "on"),
        ("NEXUS_WORKER_POLL_MS", "100"),
        ("NEXUS_STACK_POLL_MS", "100"),
        ("NEXUS_EVENT_BUS", bus.as_str()),
        ("NEXUS_OUTBOX_RETRY_SECONDS", "1"),
    ];
    let app = TestApp::embedded_wrapped(&vars, |a| faults.wrap(a)).await;
    let exec = app.login(EXEC).await;
    let c = customer(&app, &exec).await;

    let outage = Duration::from_secs(12);
    let outage_started = Instant::now();
    faults.fail_for(Calls::All("notifier"), "ServiceUnavailable", outage);
    let a = post(
        &app,
        &exec,
        "/api/v1/deployments",
        json!({"environment_id": c.dev, "capability": "lead-scoring", "version": "1.0.0",
               "parameters": {"Environment": "dev"}, "auto_execute": true}),
    )
    .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
    let op = a.body["id"].as_str().unwrap().to_string();
    let done = wait_for_within(&app, &exec, &op, outage, terminal).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert!(outage_started.elapsed() < outage, "the operation ended while the bus was down");

    // Meanwhile: every state change held, in order; the queue has none of them.
    let expected = ["queued", "creating_change_set", "executing", "succeeded"];
    let held: Vec<String> = app
        .state
        .repo
        .held_events(50)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|h| match h.event {
            app::domain::events::Published::Operation(e) if e.operation_id.as_str() == op => {
                Some(e.state.as_str().to_string())
            }
            _ => None,
        })
        .collect();
    assert_eq!(held, expected);
    assert!(bus::receive_states(&sqs, &queue, &op, |v| v["detail"].clone()).await.is_empty());
    assert!(faults.refused("notifier") >= 4, "each event was offered to the bus first");

    // After: delivered in order, once each, and forgotten.
    let states =
        bus::read_states(&sqs, &queue, &op, outage + Duration::from_secs(20), |v| v["detail"].clone()).await;
    assert_eq!(states, expected);
    assert!(outage_started.elapsed() >= outage, "nothing reached the bus during the outage");
    let emptied = Instant::now();
    while !app.state.repo.held_events(1).await.unwrap().is_empty() {
        assert!(emptied.elapsed() < Duration::from_secs(10), "the outbox is emptied once delivered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(bus::receive_states(&sqs, &queue, &op, |v| v["detail"].clone()).await.is_empty(), "no repeats");
    assert_eq!(faults.count("delivered"), 4);
    let metrics = app.state.metrics.render();
    assert!(metrics.contains("nexus_outbox_held_total 4\n"), "{metrics}");
    assert!(metrics.contains("nexus_outbox_delivered_total 4\n"), "{metrics}");
}

/// Latency on the way to a capability's health URL (the HTTP client wrapped): within the
/// probe's three-second timeout the deployment stays healthy (the wait is felt); past it the
/// reconciler finds it degraded (no answer); once the network is quick again, healthy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_health_url_is_degraded_only_past_the_probes_timeout() {
    require_emulator();
    let faults = Faults::new();
    let vars = [
        ("NEXUS_WORKER", "on"),
        ("NEXUS_WORKER_POLL_MS", "100"),
        ("NEXUS_STACK_POLL_MS", "100"),
        ("NEXUS_HEALTH_ALLOW_LOOPBACK", "true"),
        ("NEXUS_RECONCILE_RATE", "200"),
    ];
    let app = TestApp::embedded_wrapped(&vars, |a| faults.wrap(a)).await;
    let health = operations::health_server().await;
    let exec = app.login(EXEC).await;
    let c = customer(&app, &exec).await;
    let a = post(
        &app,
        &exec,
        "/api/v1/deployments",
        json!({"environment_id": c.dev, "capability": "churn-prediction", "version": "1.0.0", "auto_execute": true,
               "parameters": {"Environment": "dev", "HealthEndpoint": format!("{health}/ok")}}),
    )
    .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
    let done =
        wait_for_within(&app, &exec, a.body["id"].as_str().unwrap(), Duration::from_secs(60), terminal).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    let deployment = format!("/api/v1/deployments/{}", a.body["deployment_id"].as_str().unwrap());
    let health_now = || async {
        app.state.reconciler.pass().await.unwrap();
        app.get(&deployment, &exec).await.body["health"].as_str().unwrap().to_string()
    };
    assert_eq!(health_now().await, "healthy");

    let probes = faults.count("http");
    faults.delay_for(Calls::All("http"), Duration::from_millis(1500), Duration::from_secs(120));
    let started = Instant::now();
    assert_eq!(health_now().await, "healthy", "slow but within the timeout");
    assert!(started.elapsed() >= Duration::from_millis(1500), "the latency was felt");

    faults.clear();
    faults.delay_for(Calls::All("http"), Duration::from_secs(4), Duration::from_secs(120));
    assert_eq!(health_now().await, "degraded", "no answer within the probe's timeout");

    faults.clear();
    assert_eq!(health_now().await, "healthy", "quick again");
    assert!(faults.count("http") >= probes + 3, "every probe went through the wrapper");
}
