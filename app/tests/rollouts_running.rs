//! Stored rollouts run against the AWS emulator (issue 22): deployments that really exist are
//! moved in waves, each exactly once; a deployment is in one active rollout at most; a
//! repeated Idempotency-Key answers the first rollout; a failure beyond the tolerance pauses
//! the rollout, saying why, and skipping it lets the rollout complete.

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
    let a = app
        .send(
            axum::http::Request::post("/api/v1/rollouts")
                .header("authorization", format!("Bearer {exec}"))
                .header("content-type", "application/json")
                .header("idempotency-key", &key)
                .body(axum::body::Body::from(body.to_string()))
                .unwrap(),
        )
        .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
    let id = a.body["id"].as_str().unwrap().to_string();
    assert_eq!(a.body["state"], "running", "{}", a.text);
    let sizes: Vec<u64> =
        a.body["waves"].as_array().unwrap().iter().map(|w| w["size"].as_u64().unwrap()).collect();
    assert_eq!(sizes, [1, 2, 3], "a canary of one, then doubling: {}", a.text);

    // The same key again: the same rollout, not a second one.
    let again = app
        .send(
            axum::http::Request::post("/api/v1/rollouts")
                .header("authorization", format!("Bearer {exec}"))
                .header("content-type", "application/json")
                .header("idempotency-key", &key)
                .body(axum::body::Body::from(body.to_string()))
                .unwrap(),
        )
        .await;
    assert_eq!(again.body["id"], id.as_str(), "{}", again.text);

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
