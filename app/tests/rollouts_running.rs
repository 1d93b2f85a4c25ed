//! Stored rollouts run against the AWS emulator (issue 22): deployments that really exist are
//! moved in waves, each exactly once; a deployment is in one active rollout at most; a
//! repeated Idempotency-Key answers the first rollout; a failure beyond the tolerance pauses
//! the rollout, saying why, and skipping it lets the rollout complete.

#[path = "common/bus.rs"]
mod bus;
mod common;
#[path = "common/operations.rs"]
mod operations;

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use common::{TestApp, require_emulator};
use operations::{customer, post, terminal, wait_for};
use serde_json::{Value, json};

const EXEC: &str = "exec@demo.nexus";
const MANAGER: &str = "manager@demo.nexus";
const REP: &str = "rep@demo.nexus";

async fn app(extra: &[(&str, &str)]) -> TestApp {
    require_emulator();
    let mut vars =
        vec![("NEXUS_WORKER", "on"), ("NEXUS_WORKER_POLL_MS", "100"), ("NEXUS_STACK_POLL_MS", "100")];
    vars.extend_from_slice(extra);
    TestApp::embedded(&vars).await
}

/// `n` customers of the demo Rep, each with lead-scoring `version` deployed to dev for real.
async fn deployed(app: &TestApp, exec: &str, n: usize, version: &str) -> (Vec<String>, Vec<String>) {
    let (mut customers, mut ops) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let c = customer(app, exec).await;
        let a = post(app, exec, "/api/v1/deployments",
            json!({"environment_id": c.dev, "capability": "lead-scoring", "version": version, "auto_execute": true,
                   "parameters": {"Environment": "dev"}})).await;
        assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
        ops.push(a.body["id"].as_str().unwrap().to_string());
        customers.push(c.id);
    }
    let mut deployments = Vec::new();
    for op in ops {
        let done = wait_for(app, exec, &op, terminal).await;
        assert_eq!(done["state"], "succeeded", "{done}");
        deployments.push(done["deployment_id"].as_str().unwrap().to_string());
    }
    (customers, deployments)
}

/// Polls the rollout until `done` holds.
async fn rollout_until(
    app: &TestApp,
    token: &str,
    id: &str,
    within: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let started = Instant::now();
    loop {
        let a = app.get(&format!("/api/v1/rollouts/{id}"), token).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        if done(&a.body) {
            return a.body;
        }
        assert!(started.elapsed() < within, "rollout stuck: {}", a.text);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn item_states(r: &Value) -> Vec<(String, String)> {
    r["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["deployment_id"].as_str().unwrap().to_string(),
                i["state"]["state"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// `POST /api/v1/rollouts` with an `Idempotency-Key`.
async fn create_with_key(app: &TestApp, token: &str, key: &str, body: &Value) -> common::Answer {
    app.send(
        axum::http::Request::post("/api/v1/rollouts")
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .header("idempotency-key", key)
            .body(axum::body::Body::from(body.to_string()))
            .unwrap(),
    )
    .await
}

/// Upgrade operations a deployment has had.
async fn upgrades(app: &TestApp, token: &str, deployment: &str) -> Vec<Value> {
    let a = app.get(&format!("/api/v1/deployments/{deployment}/operations?limit=200"), token).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    a.body["items"].as_array().unwrap().iter().filter(|o| o["kind"] == "upgrade").cloned().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_moves_every_selected_deployment_once_in_waves() {
    let app = app(&[]).await;
    let exec = app.login(EXEC).await;
    let (customers, deployments) = deployed(&app, &exec, 6, "1.0.0").await;
    let body = json!({"capability": "lead-scoring", "version": "1.1.0",
        "selection": {"customers": customers},
        "waves": {"canary": {"count": 1}, "growth": "doubling", "max_concurrency": 2, "per_account": 1},
        "gates": {"bake_minutes": 0}});

    // Roles: a Rep never makes a rollout; a Sales Manager outside the team sees nothing of it.
    let rep = app.login(REP).await;
    let a = post(&app, &rep, "/api/v1/rollouts", body.clone()).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.text);

    let key = format!("rollout-{}", common::unique("k"));
    let a = create_with_key(&app, &exec, &key, &body).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
    let id = a.body["id"].as_str().unwrap().to_string();
    assert_eq!(a.body["state"], "running", "{}", a.text);
    let sizes: Vec<u64> =
        a.body["waves"].as_array().unwrap().iter().map(|w| w["size"].as_u64().unwrap()).collect();
    assert_eq!(sizes, [1, 2, 3], "a canary of one, then doubling: {}", a.text);

    // The same key again: the same rollout, not a second one.
    let again = create_with_key(&app, &exec, &key, &body).await;
    assert_eq!(again.body["id"], id.as_str(), "{}", again.text);
    let doc = app.get("/api/v1/openapi.json", &exec).await;
    for path in [
        "/api/v1/rollouts",
        "/api/v1/rollouts/{id}",
        "/api/v1/rollouts/{id}/approve",
        "/api/v1/rollouts/{id}/deployments/{deployment}/skip",
    ] {
        assert!(doc.body["paths"][path].is_object(), "{path} in the OpenAPI document");
    }
    assert!(doc.body["components"]["schemas"]["RolloutView"].is_object());

    // The deployments are held: another rollout plans none of them, naming this one.
    let mut dry = body.clone();
    dry["dry_run"] = json!(true);
    let plan = post(&app, &exec, "/api/v1/rollouts", dry.clone()).await;
    assert_eq!(plan.status, StatusCode::OK, "{}", plan.text);
    let held: Vec<&Value> =
        plan.body["excluded"].as_array().unwrap().iter().filter(|e| e["reason"] == "in_rollout").collect();
    assert_eq!(held.len(), deployments.len(), "{}", plan.text);
    assert!(held.iter().all(|e| e["rollout_id"] == id.as_str()), "{}", plan.text);
    let second = post(&app, &exec, "/api/v1/rollouts", body.clone()).await;
    assert_eq!(second.status, StatusCode::BAD_REQUEST, "{}", second.text);
    assert_eq!(second.body["error"]["code"], "nothing_to_roll_out", "{}", second.text);

    // A Sales Manager whose team does not own it: as if it did not exist.
    let manager = app.login(MANAGER).await;
    let list = app.get("/api/v1/rollouts", &exec).await;
    assert!(list.body["items"].as_array().unwrap().iter().any(|r| r["id"] == id.as_str()), "{}", list.text);
    let other = app.get(&format!("/api/v1/rollouts/{id}"), &manager).await;
    assert_eq!(other.status, StatusCode::NOT_FOUND, "{}", other.text);

    let done = rollout_until(&app, &exec, &id, Duration::from_secs(240), |r| r["state"] == "completed").await;
    let states = item_states(&done);
    assert_eq!(states.len(), deployments.len(), "{done}");
    assert!(states.iter().all(|(_, s)| s == "succeeded"), "{done}");
    let counted: Vec<(u64, u64)> = done["counts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["wave"].as_u64().unwrap(), c["succeeded"].as_u64().unwrap()))
        .collect();
    assert_eq!(counted, [(1, 1), (2, 2), (3, 3)], "the counters follow the deployments: {done}");
    for d in &deployments {
        let r = app.get(&format!("/api/v1/deployments/{d}"), &exec).await;
        assert_eq!(
            (r.body["version"].as_str(), r.body["status"].as_str()),
            (Some("1.1.0"), Some("active")),
            "{}",
            r.text
        );
        let ups = upgrades(&app, &exec, d).await;
        assert_eq!(ups.len(), 1, "exactly one upgrade per deployment: {ups:?}");
        assert_eq!(ups[0]["rollout_id"], id.as_str());
    }
    // The waves ran in order: no deployment of a wave started before the wave before it ended.
    let items = done["items"].as_array().unwrap();
    for wave in 2..=3u64 {
        let ended_before = items
            .iter()
            .filter(|i| i["wave"].as_u64() == Some(wave - 1))
            .map(|i| i["finished_at"].as_str().unwrap().to_string())
            .max()
            .unwrap();
        for i in items.iter().filter(|i| i["wave"].as_u64() == Some(wave)) {
            let op = app
                .get(&format!("/api/v1/operations/{}", i["state"]["operation_id"].as_str().unwrap()), &exec)
                .await;
            assert!(
                op.body["created_at"].as_str().unwrap() >= ended_before.as_str(),
                "wave {wave} started early: {}",
                op.text
            );
        }
    }

    // Completed: the deployments are free again, and at the target.
    let plan = post(&app, &exec, "/api/v1/rollouts", dry).await;
    let ours: Vec<&Value> = plan.body["excluded"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| deployments.iter().any(|d| e["deployment_id"] == d.as_str()))
        .collect();
    assert_eq!(ours.len(), deployments.len(), "{}", plan.text);
    assert!(ours.iter().all(|e| e["reason"] == "at_target"), "{}", plan.text);

    // Every decision is in the audit log, and the chain holds.
    let audit = app.get("/api/v1/audit?limit=200", &exec).await;
    let actions: Vec<&str> =
        audit.body["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert!(actions.contains(&"rollout.create") && actions.contains(&"rollout.completed"), "{actions:?}");
    assert_eq!(
        actions.iter().filter(|a| **a == "operation.upgrade").count(),
        deployments.len(),
        "{actions:?}"
    );
    let verify = app.get("/api/v1/audit/verify", &exec).await;
    assert_eq!(verify.body["ok"], true, "{}", verify.text);
}

/// lead-scoring 1.2.0 with a bucket of a fixed name (a parameter with a default): the first
/// deployment in an account takes the name, the next one in the same account cannot.
async fn publish_colliding_version(app: &TestApp, exec: &str, bucket: &str) {
    let shipped =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../catalog/lead-scoring/1.1.0.yaml"))
            .unwrap();
    let template = shipped
        .replacen(
            "Parameters:\n",
            &format!("Parameters:\n  FixedBucketName:\n    Type: String\n    Default: {bucket}\n    Description: A bucket name.\n"),
            1,
        )
        .replacen(
            "    Properties:\n      VersioningConfiguration:",
            "    Properties:\n      BucketName: !Ref FixedBucketName\n      VersioningConfiguration:",
            1,
        );
    assert_ne!(template, shipped);
    let a = post(
        app,
        exec,
        "/api/v1/capabilities/lead-scoring/versions",
        json!({"version": "1.2.0", "template": template}),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_beyond_the_tolerance_pauses_the_rollout_and_a_skip_lets_it_complete() {
    require_emulator();
    let sdk = app::ssr::aws::load_sdk_config().await;
    let (bus, queue) = bus::bus_with_queue(&sdk).await;
    let app = app(&[("NEXUS_EVENT_BUS", bus.as_str())]).await;
    let exec = app.login(EXEC).await;
    // Bucket names are global, as on AWS: the second copy of the fixed name fails.
    let (a, b) = (customer(&app, &exec).await, customer(&app, &exec).await);
    let account = a.account.clone();
    let mut deployments = Vec::new();
    for c in [&a, &b] {
        let r = post(&app, &exec, "/api/v1/deployments",
            json!({"environment_id": c.dev, "capability": "lead-scoring", "version": "1.1.0", "auto_execute": true,
                   "parameters": {"Environment": "dev"}})).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
        let done = wait_for(&app, &exec, r.body["id"].as_str().unwrap(), terminal).await;
        assert_eq!(done["state"], "succeeded", "{done}");
        deployments.push(done["deployment_id"].as_str().unwrap().to_string());
    }
    publish_colliding_version(&app, &exec, &format!("taken-{account}")).await;

    let r = post(
        &app,
        &exec,
        "/api/v1/rollouts",
        json!({"capability": "lead-scoring", "version": "1.2.0",
        "selection": {"customers": [a.id, b.id]}, "gates": {"bake_minutes": 0}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let id = r.body["id"].as_str().unwrap().to_string();

    let paused = rollout_until(&app, &exec, &id, Duration::from_secs(120), |r| r["state"] == "paused").await;
    assert_eq!(
        paused["status_text"], "1 of 2 deployments failed, more than the rollout tolerates",
        "a paused rollout says why in one sentence: {paused}"
    );
    let failed: Vec<&Value> =
        paused["items"].as_array().unwrap().iter().filter(|i| i["state"]["state"] == "failed").collect();
    assert_eq!(failed.len(), 1, "{paused}");
    let error = failed[0]["state"]["error"].as_str().unwrap();
    assert!(
        error.starts_with("ModelBucket: ") && error.contains(&format!("taken-{account}")),
        "attributed: {error}"
    );
    let failed_deployment = failed[0]["deployment_id"].as_str().unwrap().to_string();

    // Paused: resuming as it is pauses again; a succeeded deployment cannot be skipped.
    let succeeded = deployments.iter().find(|d| **d != failed_deployment).unwrap();
    let s =
        post(&app, &exec, &format!("/api/v1/rollouts/{id}/deployments/{succeeded}/skip"), json!({})).await;
    assert_eq!(s.status, StatusCode::CONFLICT, "{}", s.text);
    let s =
        post(&app, &exec, &format!("/api/v1/rollouts/{id}/deployments/{failed_deployment}/skip"), json!({}))
            .await;
    assert_eq!(s.status, StatusCode::OK, "{}", s.text);
    let resumed = post(&app, &exec, &format!("/api/v1/rollouts/{id}/resume"), json!({})).await;
    assert_eq!(resumed.status, StatusCode::OK, "{}", resumed.text);
    let done = rollout_until(&app, &exec, &id, Duration::from_secs(60), |r| r["state"] == "completed").await;
    let mut states: Vec<String> = item_states(&done).into_iter().map(|(_, s)| s).collect();
    states.sort();
    assert_eq!(states, ["skipped", "succeeded"], "{done}");
    for d in &deployments {
        assert_eq!(upgrades(&app, &exec, d).await.len(), 1, "one attempt each");
    }
    // The pause and the completion were announced on the bus (a user's skip and resume are
    // in the audit log).
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let mut announced = Vec::new();
    let waited = Instant::now();
    while !announced.contains(&"completed".to_string()) && waited.elapsed() < Duration::from_secs(15) {
        announced.extend(bus::receive_states(&sqs, &queue, &id, |v| v["detail"].clone()).await);
    }
    assert_eq!(announced, ["paused", "completed"]);
    // Controls that do not fit the state answer 409.
    let again = post(&app, &exec, &format!("/api/v1/rollouts/{id}/resume"), json!({})).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.text);
}

/// Today's weekday as windows name it, and another day.
fn weekdays() -> (&'static str, &'static str) {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    let today =
        jiff::Timestamp::now().to_zoned_datetime(jiff::tz::TimeZone::UTC).weekday().to_monday_zero_offset()
            as usize;
    (DAYS[today], DAYS[(today + 3) % 7])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prod_waits_for_a_second_executive_and_the_customers_window() {
    // The setup's prod deploy by an Executive runs without a second one.
    let app = app(&[("NEXUS_PROD_FOUR_EYES", "off")]).await;
    let (exec, exec2, manager) =
        (app.login(EXEC).await, app.login("exec2@demo.nexus").await, app.login(MANAGER).await);
    let c = customer(&app, &exec).await;
    let r = post(&app, &exec, "/api/v1/deployments",
        json!({"environment_id": c.prod, "capability": "lead-scoring", "version": "1.0.0", "auto_execute": true,
               "parameters": {"Environment": "prod"}})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let done = wait_for(&app, &exec, r.body["id"].as_str().unwrap(), terminal).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    let deployment = done["deployment_id"].as_str().unwrap().to_string();
    // The customer's only window is on another day.
    let (today, other_day) = weekdays();
    let customer = app.get(&format!("/api/v1/customers/{}", c.id), &exec).await;
    let rev = customer.body["rev"].as_u64().unwrap();
    let p = app
        .call(
            axum::http::Method::PATCH,
            &format!("/api/v1/customers/{}", c.id),
            Some(&exec),
            Some(json!({"rev": rev, "time_zone": "UTC", "windows": [format!("{other_day} 02:00-04:00")]})),
        )
        .await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.text);

    let r = post(
        &app,
        &exec,
        "/api/v1/rollouts",
        json!({"capability": "lead-scoring", "version": "1.1.0",
        "selection": {"customers": [c.id]}, "gates": {"bake_minutes": 0}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    assert_eq!(r.body["state"], "awaiting_approval", "a prod wave first waits for approval: {}", r.text);
    let id = r.body["id"].as_str().unwrap().to_string();
    let approve = |token: String| {
        let (app, path) = (&app, format!("/api/v1/rollouts/{id}/approve"));
        async move { post(app, &token, &path, json!({})).await }
    };
    let own = approve(exec.clone()).await;
    assert_eq!(own.status, StatusCode::FORBIDDEN, "the creator never approves: {}", own.text);
    let by_manager = approve(manager.clone()).await;
    assert_eq!(by_manager.status, StatusCode::NOT_FOUND, "not the manager's rollout: {}", by_manager.text);
    let ok = approve(exec2.clone()).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    assert_eq!(ok.body["approvals"][0]["wave"], 1, "{}", ok.text);

    // Approved, but outside the window: it waits, saying for what, and starts nothing.
    let waiting = rollout_until(&app, &exec, &id, Duration::from_secs(30), |r| {
        r["status_text"].as_str().is_some_and(|s| s.starts_with("waiting for"))
    })
    .await;
    let why = waiting["status_text"].as_str().unwrap();
    assert!(why.contains(&format!("{other_day} 02:00-04:00 UTC")), "{why}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(upgrades(&app, &exec, &deployment).await.is_empty(), "nothing starts outside the window");

    // The window opens (today, all day): the upgrade runs.
    let customer = app.get(&format!("/api/v1/customers/{}", c.id), &exec).await;
    let rev = customer.body["rev"].as_u64().unwrap();
    let p = app
        .call(
            axum::http::Method::PATCH,
            &format!("/api/v1/customers/{}", c.id),
            Some(&exec),
            Some(json!({"rev": rev, "windows": [format!("{today} 00:00-24:00")]})),
        )
        .await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.text);
    let done = rollout_until(&app, &exec, &id, Duration::from_secs(60), |r| r["state"] == "completed").await;
    assert_eq!(item_states(&done)[0].1, "succeeded", "{done}");
    let audit = app.get("/api/v1/audit?limit=200", &exec).await;
    let approved =
        audit.body["items"].as_array().unwrap().iter().find(|e| e["action"] == "rollout.approve").cloned();
    assert!(approved.is_some_and(|e| e["details"]["wave"] == 1), "{}", audit.text);
}

fn millis(t: &Value) -> i64 {
    let t: jiff::Timestamp = t.as_str().unwrap().parse().unwrap();
    t.as_millisecond()
}

/// The orchestration overhead of rollouts on the emulator, gates off (`make bench`): N
/// dev deployments of document-intelligence (`NEXUS_BENCH_ROLLOUT_SIZE`, default 1,000) moved
/// 1.0.0 -> 1.0.1 -> 1.1.0 -> 1.1.1 in one wave each, at max concurrency 8, 32 and 64: wall
/// time, deployments per minute, the operations' own time (started -> finished: the
/// emulator's CloudFormation work) and what the rollout adds per deployment beyond it.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "a benchmark: run with `make bench`"]
async fn orchestration_benchmark() {
    let n: usize =
        std::env::var("NEXUS_BENCH_ROLLOUT_SIZE").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
    let app = app(&[("NEXUS_WORKER_CONCURRENCY", "64"), ("NEXUS_LEASE_SECONDS", "60")]).await;
    let exec = app.login(EXEC).await;
    let started = Instant::now();
    let mut customers = Vec::new();
    let mut ops = Vec::new();
    // Dev only: a prod wave would wait for an approver.
    while ops.len() < n {
        let c = customer(&app, &exec).await;
        let a = post(
            &app,
            &exec,
            "/api/v1/deployments",
            json!({"environment_id": c.dev, "capability": "document-intelligence", "version": "1.0.0",
                   "auto_execute": true, "parameters": {"Environment": "dev", "DocumentTypes": "invoice"}}),
        )
        .await;
        assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
        ops.push(a.body["id"].as_str().unwrap().to_string());
        customers.push(c.id);
    }
    for op in &ops {
        let done = operations::wait_for_within(&app, &exec, op, Duration::from_secs(1800), terminal).await;
        assert_eq!(done["state"], "succeeded", "{done}");
    }
    println!("setup: {n} deployments in {:.0} s", started.elapsed().as_secs_f64());
    println!(
        "| max concurrency | deployments | wall s | deployments/min | operation p50 ms | operation p95 ms | added per deployment ms |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (concurrency, version) in [(8, "1.0.1"), (32, "1.1.0"), (64, "1.1.1")] {
        let t = Instant::now();
        let a = post(
            &app,
            &exec,
            "/api/v1/rollouts",
            json!({"capability": "document-intelligence", "version": version,
            "selection": {"customers": customers},
            "waves": {"canary": {"percent": 100}, "max_concurrency": concurrency, "per_account": 2},
            "gates": {"bake_minutes": 0, "total": {"count": 0}}}),
        )
        .await;
        assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
        let id = a.body["id"].as_str().unwrap().to_string();
        let done = rollout_until(&app, &exec, &id, Duration::from_secs(3600), |r| {
            r["state"] == "completed" || r["state"] == "paused"
        })
        .await;
        let wall = t.elapsed().as_secs_f64();
        assert_eq!(done["state"], "completed", "{}", done["status_text"]);
        let mut own = Vec::new();
        for i in done["items"].as_array().unwrap() {
            let op = app
                .get(&format!("/api/v1/operations/{}", i["state"]["operation_id"].as_str().unwrap()), &exec)
                .await;
            own.push(millis(&op.body["finished_at"]) - millis(&op.body["started_at"]));
        }
        own.sort_unstable();
        let total: i64 = own.iter().sum();
        // Were the operations back to back at full concurrency, this long; the rest is ours.
        let ideal_ms = total as f64 / concurrency as f64;
        let added = (wall * 1000.0 - ideal_ms).max(0.0) * concurrency as f64 / n as f64;
        println!(
            "| {concurrency} | {n} | {wall:.1} | {:.0} | {} | {} | {added:.0} |",
            n as f64 / wall * 60.0,
            own[own.len() / 2],
            own[own.len() * 95 / 100],
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_rollout_starts_nothing_new_and_settles_what_was_running() {
    let app = app(&[]).await;
    let exec = app.login(EXEC).await;
    let (customers, deployments) = deployed(&app, &exec, 3, "1.0.0").await;
    let r = post(
        &app,
        &exec,
        "/api/v1/rollouts",
        json!({"capability": "lead-scoring", "version": "1.1.0",
        "selection": {"customers": customers}, "gates": {"bake_minutes": 0}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let id = r.body["id"].as_str().unwrap().to_string();
    // The canary (a wave of one) is running: cancel.
    let started = Instant::now();
    loop {
        let a = app.get(&format!("/api/v1/rollouts/{id}"), &exec).await;
        if item_states(&a.body).iter().any(|(_, s)| s == "running") {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "the canary never ran: {}", a.text);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let c = post(&app, &exec, &format!("/api/v1/rollouts/{id}/cancel"), json!({})).await;
    assert_eq!(c.status, StatusCode::OK, "{}", c.text);
    assert_eq!(c.body["state"], "cancelled", "{}", c.text);
    // The operation in flight finishes and is settled; nothing else starts.
    let done = rollout_until(&app, &exec, &id, Duration::from_secs(60), |r| {
        !item_states(r).iter().any(|(_, s)| s == "running")
    })
    .await;
    let mut states: Vec<String> = item_states(&done).into_iter().map(|(_, s)| s).collect();
    states.sort();
    assert_eq!(states, ["succeeded", "waiting", "waiting"], "{done}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut upgraded = 0;
    for d in &deployments {
        upgraded += upgrades(&app, &exec, d).await.len();
    }
    assert_eq!(upgraded, 1, "only the canary ran");
    // Cancelled for good: no control moves it, and its deployments are free for another.
    let resume = post(&app, &exec, &format!("/api/v1/rollouts/{id}/resume"), json!({})).await;
    assert_eq!(resume.status, StatusCode::CONFLICT, "{}", resume.text);
    let plan = post(
        &app,
        &exec,
        "/api/v1/rollouts",
        json!({"capability": "lead-scoring", "version": "1.1.0",
        "selection": {"customers": customers}, "dry_run": true}),
    )
    .await;
    let planned: usize = plan.body["waves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["deployments"].as_array().unwrap().len())
        .sum();
    assert_eq!(planned, 2, "{}", plan.text);
}
