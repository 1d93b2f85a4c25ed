//! The lifecycle engine through the REST API, against the AWS emulator the test command
//! starts: every deployment here goes into an account of its own, through AssumeRole, as
//! CloudFormation change sets that really run.

#[path = "common/bus.rs"]
mod bus;
mod common;
#[path = "common/operations.rs"]
mod operations;

use std::time::{Duration, Instant};

use app::ssr::auth::mfa;
use axum::http::{Method, StatusCode};
use bus::{bus_with_queue, queue_with_arn, read_states};
use common::{TestApp, require_emulator, unique};
use operations::{customer, customer_in, fresh_account, health_server, post, state_is, terminal, wait_for};
use serde_json::{Value, json};

const EXEC: &str = "exec@demo.nexus";
const MANAGER: &str = "manager@demo.nexus";
const MANAGER2: &str = "manager2@demo.nexus";
const REP: &str = "rep@demo.nexus";

async fn app(extra: &[(&str, &str)]) -> TestApp {
    require_emulator();
    // These tests' health server listens on loopback, which only this test-only setting opens.
    let mut vars = vec![
        ("NEXUS_WORKER", "on"),
        ("NEXUS_WORKER_POLL_MS", "100"),
        ("NEXUS_STACK_POLL_MS", "100"),
        ("NEXUS_HEALTH_ALLOW_LOOPBACK", "true"),
    ];
    vars.extend_from_slice(extra);
    TestApp::embedded(&vars).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_with_preview_then_upgrade_roll_back_and_delete() {
    let app = app(&[]).await;
    let exec = app.login(EXEC).await;
    let c = customer(&app, &exec).await;

    let a = post(&app, &exec, "/api/v1/deployments",
        json!({"environment_id": c.dev, "capability": "lead-scoring", "version": "1.0.0", "parameters": {"Environment": "dev"}})).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
    assert_eq!(a.body["state"], "queued");
    let op = a.body["id"].as_str().unwrap().to_string();
    let deployment = a.body["deployment_id"].as_str().unwrap().to_string();

    // The preview: the change set's resources, nothing executed yet.
    let preview = wait_for(&app, &exec, &op, state_is("preview_ready")).await;
    let changes: Vec<&str> =
        preview["changes"].as_array().unwrap().iter().map(|c| c["logical_id"].as_str().unwrap()).collect();
    assert!(changes.contains(&"ModelBucket") && changes.contains(&"ScoreTable"), "{preview}");
    assert!(preview["changes"].as_array().unwrap().iter().all(|c| c["action"] == "Add"));
    let d = app.get(&format!("/api/v1/deployments/{deployment}"), &exec).await;
    assert_eq!(d.body["status"], "pending", "{}", d.text);
    assert!(d.body["stack_name"].as_str().unwrap().starts_with("nexus-lead-scoring-t"));

    // A second operation while this one is open: 409, naming it.
    let busy = post(&app, &exec, &format!("/api/v1/deployments/{deployment}/rollback"), json!({})).await;
    assert_eq!(busy.status, StatusCode::CONFLICT, "{}", busy.text);

    let a = post(&app, &exec, &format!("/api/v1/operations/{op}/execute"), json!({})).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
    let done = wait_for(&app, &exec, &op, terminal).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert!(done["executed"].as_bool().unwrap());
    let d = app.get(&format!("/api/v1/deployments/{deployment}"), &exec).await;
    assert_eq!(d.body["status"], "active", "{}", d.text);
    assert_eq!(d.body["version"], "1.0.0");
    assert_eq!(d.body["previous_version"], Value::Null, "a first deploy has nothing to roll back to");
    assert!(d.body["outputs"]["ScoreTableName"].is_string(), "outputs stored: {}", d.text);
    assert!(
        d.body["stack_id"].as_str().unwrap().contains(&c.account),
        "the stack is in the customer's account"
    );
    let events = app.get(&format!("/api/v1/operations/{op}/events"), &exec).await;
    let events = events.body.as_array().unwrap().clone();
    assert!(
        events
            .iter()
            .any(|e| e["status"] == "CREATE_COMPLETE" && e["resource_type"] == "AWS::CloudFormation::Stack")
    );
    // A browser reconnecting to the live stream with `Last-Event-ID` gets only what it missed:
    // the last stack event (its id is its position), the operation, and the end.
    let seen = (events.len() - 1).to_string();
    let path = format!("/api/v1/operations/{op}/events/stream");
    let mut stream = app.open_stream(&path, &exec, Some(&seen)).await.map_err(|a| a.text).unwrap();
    let rest = stream.read_to_end(Duration::from_secs(10)).await;
    let kinds: Vec<(&str, Option<&str>)> = rest.iter().map(|e| (e.event.as_str(), e.id.as_deref())).collect();
    let last_id = events.len().to_string();
    assert_eq!(kinds, [("stack-event", Some(last_id.as_str())), ("operation", None), ("end", None)]);
    assert_eq!(rest[0].data, events[events.len() - 1]);
    assert_eq!(rest[2].data["reason"], "finished");

    // Upgrade without a preview; parameters not given keep their values.
    let a = post(
        &app,
        &exec,
        &format!("/api/v1/deployments/{deployment}/upgrade"),
        json!({"version": "1.1.0", "auto_execute": true}),
    )
    .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
    let up = wait_for(&app, &exec, a.body["id"].as_str().unwrap(), terminal).await;
    assert_eq!(up["state"], "succeeded", "{up}");
    let d = app.get(&format!("/api/v1/deployments/{deployment}"), &exec).await;
    assert_eq!(
        (d.body["version"].as_str(), d.body["previous_version"].as_str()),
        (Some("1.1.0"), Some("1.0.0"))
    );

    // The same again changes nothing: "no changes", not a failure.
    let a = post(
        &app,
        &exec,
        &format!("/api/v1/deployments/{deployment}/upgrade"),
        json!({"version": "1.1.0", "auto_execute": true}),
    )
    .await;
    let same = wait_for(&app, &exec, a.body["id"].as_str().unwrap(), terminal).await;
    assert_eq!(same["state"], "no_changes", "{same}");

    // Roll back: the previous version and parameters, as an update.
    let a = post(
        &app,
        &exec,
        &format!("/api/v1/deployments/{deployment}/rollback"),
        json!({"auto_execute": true}),
    )
    .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
    assert_eq!(a.body["target_version"], "1.0.0");
    let back = wait_for(&app, &exec, a.body["id"].as_str().unwrap(), terminal).await;
    assert_eq!(back["state"], "succeeded", "{back}");
    let d = app.get(&format!("/api/v1/deployments/{deployment}"), &exec).await;
    assert_eq!(d.body["version"], "1.0.0");

    // Drift: the emulator compares the resources and finds them in sync.
    let a = post(&app, &exec, &format!("/api/v1/deployments/{deployment}/drift"), json!({})).await;
    let drift = wait_for(&app, &exec, a.body["id"].as_str().unwrap(), terminal).await;
    assert_eq!(drift["state"], "succeeded", "{drift}");
    assert!(
        drift["drift"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["logical_id"] == "ScoreTable" && r["status"] == "IN_SYNC"),
        "{drift}"
    );
    let d = app.get(&format!("/api/v1/deployments/{deployment}"), &exec).await;
    assert_eq!(d.body["drift"], "in_sync");

    // Delete: the stack goes, the history stays.
    let a = app.call(Method::DELETE, &format!("/api/v1/deployments/{deployment}"), Some(&exec), None).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
    let del = wait_for(&app, &exec, a.body["id"].as_str().unwrap(), terminal).await;
    assert_eq!(del["state"], "succeeded", "{del}");
    let d = app.get(&format!("/api/v1/deployments/{deployment}"), &exec).await;
    assert_eq!(d.body["status"], "deleted");
    assert!(d.body["stack_id"].is_null());
    let kinds: Vec<&str> =
        d.body["operations"].as_array().unwrap().iter().map(|o| o["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["delete", "drift_check", "rollback", "upgrade", "upgrade", "deploy"]);

    // Every change was audited with its operation.
    let log = app.get("/api/v1/audit?action=operation.&limit=50", &exec).await;
    assert!(log.body["items"].as_array().unwrap().len() >= 7, "{}", log.text);
}

/// Cancelling a preview deletes its change set from the customer's account, and the empty
/// stack a first deploy's change set made; an upgrade's cancelled preview leaves the stack as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_preview_leaves_no_change_set_behind() {
    let app = app(&[]).await;
    let exec = app.login(EXEC).await;
    let c = customer(&app, &exec).await;
    let env = app.state.repo.environment(&app::domain::ids::Id::parse(&c.dev).unwrap()).await.unwrap();
    let target = app::ssr::lifecycle::deployer::Target::of(&env, "test-observer");
    let deployer = app.state.engine.deployer().clone();
    let change_set = |op: &Value| {
        app::domain::stacks::change_set_name(
            &app::domain::ids::Id::parse(op["id"].as_str().unwrap()).unwrap(),
        )
    };

    let a = post(&app, &exec, "/api/v1/deployments",
        json!({"environment_id": c.dev, "capability": "lead-scoring", "version": "1.0.0", "parameters": {"Environment": "dev"}})).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
    let stack = a.body["stack_name"].as_str().unwrap().to_string();
    let preview = wait_for(&app, &exec, a.body["id"].as_str().unwrap(), state_is("preview_ready")).await;
    assert!(
        deployer.change_set(&target, &stack, &change_set(&preview)).await.is_ok(),
        "the change set exists"
    );
    let before = deployer.stack(&target, &stack).await.unwrap().expect("a change set's stack");
    assert_eq!(before.status, "REVIEW_IN_PROGRESS");
    let cancel = post(
        &app,
        &exec,
        &format!("/api/v1/operations/{}/cancel", preview["id"].as_str().unwrap()),
        json!({}),
    )
    .await;
    assert_eq!(cancel.status, StatusCode::OK, "{}", cancel.text);
    assert_eq!(cancel.body["state"], "cancelled");
    assert!(
        deployer.change_set(&target, &stack, &change_set(&preview)).await.is_err(),
        "the change set is gone"
    );
    assert_eq!(deployer.stack(&target, &stack).await.unwrap(), None, "and so is the empty stack");

    // Deployed after all, then an upgrade previewed and cancelled: the stack stays as it was.
    let a = post(&app, &exec, "/api/v1/deployments",
        json!({"environment_id": c.dev, "capability": "lead-scoring", "version": "1.0.0", "auto_execute": true,
               "parameters": {"Environment": "dev"}})).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
    assert_eq!(wait_for(&app, &exec, a.body["id"].as_str().unwrap(), terminal).await["state"], "succeeded");
    let deployment = a.body["deployment_id"].as_str().unwrap();
    let a =
        post(&app, &exec, &format!("/api/v1/deployments/{deployment}/upgrade"), json!({"version": "1.1.0"}))
            .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
    let preview = wait_for(&app, &exec, a.body["id"].as_str().unwrap(), state_is("preview_ready")).await;
    assert!(deployer.change_set(&target, &stack, &change_set(&preview)).await.is_ok());
    let cancel = post(
        &app,
        &exec,
        &format!("/api/v1/operations/{}/cancel", preview["id"].as_str().unwrap()),
        json!({}),
    )
    .await;
    assert_eq!(cancel.status, StatusCode::OK, "{}", cancel.text);
    assert!(
        deployer.change_set(&target, &stack, &change_set(&preview)).await.is_err(),
        "the change set is gone"
    );
    let after = deployer.stack(&target, &stack).await.unwrap().expect("the stack stays");
    assert_eq!(after.status, "CREATE_COMPLETE");
    let d = app.get(&format!("/api/v1/deployments/{deployment}"), &exec).await.body;
    assert_eq!((d["status"].as_str(), d["version"].as_str()), (Some("active"), Some("1.0.0")), "{d}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused_with_every_field_and_nothing_is_stored() {
    let app = app(&[]).await;
    let exec = app.login(EXEC).await;
    let c = customer(&app, &exec).await;
    let a = post(
        &app,
        &exec,
        "/api/v1/deployments",
        json!({"environment_id": c.dev, "capability": "lead-scoring", "version": "1.0.0",
               "parameters": {"ScoreRetentionDays": "2", "Colour": "blue"}}),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.text);
    let fields: Vec<&str> =
        a.body["error"]["details"].as_array().unwrap().iter().map(|d| d["field"].as_str().unwrap()).collect();
    for f in ["parameters.Colour", "parameters.Environment", "parameters.ScoreRetentionDays"] {
        assert!(fields.contains(&f), "{f} in {}", a.text);
    }
    for (body, field) in [
        (json!({"environment_id": c.dev, "capability": "nope", "version": "1.0.0"}), "capability"),
        (json!({"environment_id": c.dev, "capability": "lead-scoring", "version": "9.9.9"}), "version"),
        (json!({"environment_id": "x", "capability": "lead-scoring", "version": "1.0.0"}), "environment_id"),
    ] {
        let a = post(&app, &exec, "/api/v1/deployments", body).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.text);
        assert_eq!(a.body["error"]["field"], field, "{}", a.text);
    }
    let a = post(&app, &exec, "/api/v1/deployments",
        json!({"environment_id": "01JDQ8ZK3M6V2C0N7R5T9W4XYA", "capability": "lead-scoring", "version": "1.0.0"})).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.text);
    let list = app.get("/api/v1/deployments?environment=dev&capability=lead-scoring&limit=200", &exec).await;
    assert!(!list.text.contains(&c.dev), "nothing was stored for the refused requests");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_returns_the_first_operation() {
    let app = app(&[]).await;
    let exec = app.login(EXEC).await;
    let c = customer(&app, &exec).await;
    let body = json!({"environment_id": c.dev, "capability": "churn-prediction", "version": "1.0.0",
                      "parameters": {"Environment": "dev"}});
    let send = || {
        let app = &app;
        let exec = exec.clone();
        let body = body.clone();
        async move {
            let req = axum::http::Request::builder()
                .method(Method::POST)
                .uri("/api/v1/deployments")
                .header("host", "localhost")
                .header("origin", "http://localhost")
                .header("authorization", format!("Bearer {exec}"))
                .header("content-type", "application/json")
                .header("idempotency-key", "deploy-churn-once")
                .body(axum::body::Body::from(body.to_string()))
                .unwrap();
            app.send(req).await
        }
    };
    let (a, b) = tokio::join!(send(), send());
    let c2 = send().await;
    let ids: std::collections::HashSet<&str> =
        [&a, &b, &c2].iter().filter_map(|x| x.body["id"].as_str()).collect();
    assert_eq!(ids.len(), 1, "one operation: {} / {} / {}", a.text, b.text, c2.text);
    let d =
        app.get(&format!("/api/v1/deployments/{}", c2.body["deployment_id"].as_str().unwrap()), &exec).await;
    assert_eq!(d.body["operations"].as_array().unwrap().len(), 1, "{}", d.text);
}

/// Issue 20 §8: a request waits for approval with its change set made, the approver sees the
/// change and approves exactly that change set (with a note kept), nobody approves their own,
/// and an Executive's prod change waits for a second Executive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_wait_for_the_right_approver_with_their_change_set_and_nobody_approves_their_own() {
    let app = app(&[]).await;
    let exec = app.login(EXEC).await;
    let exec2 = app.login("exec2@demo.nexus").await;
    let rep = app.login(REP).await;
    let manager = app.login(MANAGER).await;
    let other_manager = app.login(MANAGER2).await;
    let c = customer(&app, &exec).await;

    // A Rep's dev request: its change set is made first (nothing runs), then it waits for their
    // Sales Manager, showing what it will change.
    let a = post(
        &app,
        &rep,
        "/api/v1/deployments",
        json!({"environment_id": c.dev, "capability": "lead-scoring", "version": "1.1.0",
               "parameters": {"Environment": "dev"}, "auto_execute": true}),
    )
    .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
    assert_eq!(a.body["approver"], "sales_manager", "{}", a.text);
    let op = a.body["id"].as_str().unwrap().to_string();
    let waiting = wait_for(&app, &exec, &op, state_is("awaiting_approval")).await;
    let change_set = waiting["change_set_id"].as_str().expect("waits with its change set").to_string();
    let changes: Vec<&str> =
        waiting["changes"].as_array().unwrap().iter().map(|c| c["logical_id"].as_str().unwrap()).collect();
    assert!(changes.contains(&"ScoreTable"), "the approver sees the change: {waiting}");
    assert_eq!(waiting["executed"], false);
    let approve = |token: String, op: String, note: Value| {
        let app = &app;
        async move { post(app, &token, &format!("/api/v1/operations/{op}/approve"), note).await }
    };
    assert_eq!(
        approve(rep.clone(), op.clone(), json!({})).await.status,
        StatusCode::FORBIDDEN,
        "not their own"
    );
    assert_eq!(
        approve(other_manager.clone(), op.clone(), json!({})).await.status,
        StatusCode::NOT_FOUND,
        "another team"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    let still = app.get(&format!("/api/v1/operations/{op}"), &exec).await;
    assert_eq!(still.body["state"], "awaiting_approval", "nothing runs before approval");
    let long = "x".repeat(501);
    let a = approve(manager.clone(), op.clone(), json!({"note": long})).await;
    assert_eq!(
        (a.status, a.body["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("note")),
        "{}",
        a.text
    );
    let a = approve(manager.clone(), op.clone(), json!({"note": "  Checked the table: fine.  "})).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
    assert_eq!(a.body["state"], "executing", "the approved change set runs at once (auto_execute)");
    let done = wait_for(&app, &exec, &op, terminal).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["approved_by"], app.user_id(MANAGER).await.as_str());
    assert_eq!(done["change_set_id"], change_set.as_str(), "the very change set approved ran");
    assert_eq!(done["decision_note"], "Checked the table: fine.");

    // Prod: only an Executive approves; a rejection is recorded with who rejected and why.
    let a = post(
        &app,
        &rep,
        "/api/v1/deployments",
        json!({"environment_id": c.prod, "capability": "lead-scoring", "version": "1.1.0",
               "parameters": {"Environment": "prod"}}),
    )
    .await;
    assert_eq!(a.body["approver"], "executive", "{}", a.text);
    let op = a.body["id"].as_str().unwrap().to_string();
    wait_for(&app, &exec, &op, state_is("awaiting_approval")).await;
    let a = approve(manager.clone(), op.clone(), json!({})).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.text);
    let a =
        post(&app, &exec, &format!("/api/v1/operations/{op}/reject"), json!({"note": "not this quarter"}))
            .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.body["state"], "rejected");
    assert_eq!(a.body["rejected_by"], app.user_id(EXEC).await.as_str());
    assert_eq!(a.body["decision_note"], "not this quarter");
    assert_eq!(
        approve(exec.clone(), op.clone(), json!({})).await.status,
        StatusCode::CONFLICT,
        "already decided"
    );

    // A Sales Manager's prod change waits for an Executive; without auto_execute the approved
    // change set goes to a last confirmation, and runs as approved.
    let a = post(
        &app,
        &manager,
        "/api/v1/deployments",
        json!({"environment_id": c.prod, "capability": "lead-scoring", "version": "1.1.0",
               "parameters": {"Environment": "prod"}}),
    )
    .await;
    assert_eq!(a.body["approver"], "executive", "{}", a.text);
    let op = a.body["id"].as_str().unwrap().to_string();
    let change_set = wait_for(&app, &exec, &op, state_is("awaiting_approval")).await["change_set_id"].clone();
    let a = approve(exec.clone(), op.clone(), json!({"note": "go"})).await;
    assert_eq!(
        (a.status, a.body["state"].as_str()),
        (StatusCode::ACCEPTED, Some("preview_ready")),
        "{}",
        a.text
    );
    let a = post(&app, &manager, &format!("/api/v1/operations/{op}/execute"), json!({})).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "the approved requester confirms: {}", a.text);
    let done = wait_for(&app, &exec, &op, terminal).await;
    assert_eq!((done["state"].as_str(), &done["change_set_id"]), (Some("succeeded"), &change_set), "{done}");
    let prod_deployment = done["deployment_id"].as_str().unwrap().to_string();

    // Four eyes: an Executive's own prod change waits for a second Executive.
    let a = post(
        &app,
        &exec,
        "/api/v1/deployments",
        json!({"environment_id": c.prod, "capability": "churn-prediction", "version": "1.0.0",
               "parameters": {"Environment": "prod"}, "auto_execute": true}),
    )
    .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
    assert_eq!(a.body["approver"], "executive", "{}", a.text);
    let op = a.body["id"].as_str().unwrap().to_string();
    wait_for(&app, &exec, &op, state_is("awaiting_approval")).await;
    let own = approve(exec.clone(), op.clone(), json!({})).await;
    assert_eq!(own.status, StatusCode::FORBIDDEN, "{}", own.text);
    // The second Executive has an authenticator app: approving a prod change needs it proved
    // within the step-up window (here: ten minutes ago is too long), and then goes through.
    let secret = enrol_totp(&app, &exec2).await;
    age_the_factor(&app, &exec2).await;
    let a = approve(exec2.clone(), op.clone(), json!({"note": "second pair of eyes"})).await;
    assert_eq!(
        (a.status, a.body["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("mfa_required")),
        "{}",
        a.text
    );
    let code = mfa::totp_code(&secret, now_secs() + mfa::STEP_SECONDS);
    let up = post(&app, &exec2, "/api/v1/auth/step-up", json!({"code": code})).await;
    assert_eq!(up.status, StatusCode::NO_CONTENT, "{}", up.text);
    let a = approve(exec2.clone(), op.clone(), json!({"note": "second pair of eyes"})).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
    let done = wait_for(&app, &exec, &op, terminal).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    let exec2_id = app.get("/api/v1/me", &exec2).await.body["user"]["id"].clone();
    assert_eq!(done["approved_by"], exec2_id);

    // Deleting in prod needs the stack name typed.
    let a =
        app.call(Method::DELETE, &format!("/api/v1/deployments/{prod_deployment}"), Some(&exec), None).await;
    assert_eq!(
        (a.status, a.body["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("confirm")),
        "{}",
        a.text
    );
}

/// Sets up an authenticator app for the session's user; answers its secret.
async fn enrol_totp(app: &TestApp, token: &str) -> Vec<u8> {
    let start = post(app, token, "/api/v1/me/mfa/totp", json!({})).await;
    let secret = mfa::from_base32(start.body["secret"].as_str().unwrap()).unwrap();
    let code = mfa::totp_code(&secret, now_secs());
    let ok = post(app, token, "/api/v1/me/mfa/totp/confirm", json!({"code": code})).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    secret
}

fn now_secs() -> u64 {
    (app::ssr::clock::now().millis() / 1000) as u64
}

/// Makes the session of `token` have last proved a factor ten minutes ago (time passing).
async fn age_the_factor(app: &TestApp, token: &str) {
    let client = app::ssr::auth::ClientInfo::default();
    let now = app::ssr::clock::now();
    let actor = app.state.auth.authenticate(token, &client, now).await.unwrap().actor;
    let long_ago = app::domain::time::Timestamp::from_millis(now.millis() - 10 * 60 * 1000);
    app.state.repo.update_session(&actor.session_id, |s| s.mfa_at = Some(long_ago)).await.unwrap();
}

/// Four eyes off (`NEXUS_PROD_FOUR_EYES=off`, a one-person organisation): an Executive's prod
/// change runs at once, and its audit event says four eyes were off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_four_eyes_an_executives_prod_change_runs_and_the_audit_says_so() {
    let app = app(&[("NEXUS_PROD_FOUR_EYES", "off")]).await;
    let exec = app.login(EXEC).await;
    let c = customer(&app, &exec).await;
    let a = post(
        &app,
        &exec,
        "/api/v1/deployments",
        json!({"environment_id": c.prod, "capability": "lead-scoring", "version": "1.1.0",
               "parameters": {"Environment": "prod"}, "auto_execute": true}),
    )
    .await;
    assert_eq!((a.status, a.body["approver"].as_str()), (StatusCode::ACCEPTED, Some("none")), "{}", a.text);
    let op = a.body["id"].as_str().unwrap().to_string();
    assert_eq!(wait_for(&app, &exec, &op, terminal).await["state"], "succeeded");
    let d = a.body["deployment_id"].as_str().unwrap();
    let events =
        app.get(&format!("/api/v1/audit?action=operation.deploy&target=deployment/{d}"), &exec).await;
    assert_eq!(events.body["items"][0]["details"]["four_eyes"], "off", "{}", events.text);
    // Outside prod nothing is said: four eyes never applied there.
    let a = post(
        &app,
        &exec,
        "/api/v1/deployments",
        json!({"environment_id": c.dev, "capability": "lead-scoring", "version": "1.1.0",
               "parameters": {"Environment": "dev"}, "auto_execute": true}),
    )
    .await;
    let d = a.body["deployment_id"].as_str().unwrap();
    let events =
        app.get(&format!("/api/v1/audit?action=operation.deploy&target=deployment/{d}"), &exec).await;
    assert!(events.body["items"][0]["details"].get("four_eyes").is_none(), "{}", events.text);
}

/// A request stored before requests waited with their change sets (or the demo's) has none:
/// approving it first has its change set made, and it comes back for approval of that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_request_without_a_change_set_gets_one_before_it_is_approved() {
    let app = app(&[]).await;
    let exec = app.login(EXEC).await;
    let manager = app.login(MANAGER).await;
    let c = customer(&app, &exec).await;
    let rep = app.login(REP).await;
    let a = post(
        &app,
        &rep,
        "/api/v1/deployments",
        json!({"environment_id": c.dev, "capability": "lead-scoring", "version": "1.1.0",
               "parameters": {"Environment": "dev"}, "auto_execute": true}),
    )
    .await;
    let op = a.body["id"].as_str().unwrap().to_string();
    wait_for(&app, &exec, &op, state_is("awaiting_approval")).await;
    // As an older build stored it: waiting, no change set.
    let id = app::domain::ids::Id::parse(&op).unwrap();
    let mut stored = app.state.repo.operation(&id).await.unwrap();
    stored.change_set_id = None;
    stored.changes.clear();
    app.state.repo.save_operation(&mut stored).await.unwrap();

    let a = post(&app, &manager, &format!("/api/v1/operations/{op}/approve"), json!({"note": "ok"})).await;
    assert_eq!((a.status, a.body["state"].as_str()), (StatusCode::ACCEPTED, Some("queued")), "{}", a.text);
    assert!(a.body["approved_by"].is_null(), "not approved yet: {}", a.text);
    let back = wait_for(&app, &exec, &op, state_is("awaiting_approval")).await;
    assert!(back["change_set_id"].is_string() && !back["changes"].as_array().unwrap().is_empty(), "{back}");
    let a = post(&app, &manager, &format!("/api/v1/operations/{op}/approve"), json!({})).await;
    assert_eq!((a.status, a.body["state"].as_str()), (StatusCode::ACCEPTED, Some("executing")), "{}", a.text);
    assert_eq!(wait_for(&app, &exec, &op, terminal).await["state"], "succeeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_stack_names_the_resource_and_the_reason() {
    // An Executive deploys to prod here: no second Executive in this test.
    let app = app(&[("NEXUS_PROD_FOUR_EYES", "off")]).await;
    let exec = app.login(EXEC).await;
    let c = customer(&app, &exec).await;
    // A version whose bucket has a fixed name: the second copy in the account cannot have it.
    let shipped =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../catalog/lead-scoring/1.1.0.yaml"))
            .unwrap();
    let template = shipped
        .replacen(
            "Parameters:\n",
            "Parameters:\n  FixedBucketName:\n    Type: String\n    Description: A bucket name.\n",
            1,
        )
        .replacen(
            "    Properties:\n      VersioningConfiguration:",
            "    Properties:\n      BucketName: !Ref FixedBucketName\n      VersioningConfiguration:",
            1,
        );
    assert_ne!(template, shipped);
    let a = post(
        &app,
        &exec,
        "/api/v1/capabilities/lead-scoring/versions",
        json!({"version": "1.2.0", "template": template}),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    let bucket = format!("taken-{}", c.account);
    let mut results = Vec::new();
    for env in [&c.dev, &c.prod] {
        let env_name = if env == &c.dev { "dev" } else { "prod" };
        let a = post(&app, &exec, "/api/v1/deployments",
            json!({"environment_id": env, "capability": "lead-scoring", "version": "1.2.0", "auto_execute": true,
                   "parameters": {"Environment": env_name, "FixedBucketName": bucket}})).await;
        assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
        results.push(wait_for(&app, &exec, a.body["id"].as_str().unwrap(), terminal).await);
    }
    assert_eq!(results[0]["state"], "succeeded", "{}", results[0]);
    let failed = &results[1];
    assert_eq!(failed["state"], "rolled_back", "{failed}");
    assert_eq!(failed["failure"]["logical_id"], "ModelBucket", "{failed}");
    assert_eq!(failed["failure"]["resource_type"], "AWS::S3::Bucket");
    assert_eq!(failed["failure"]["stack_status"], "ROLLBACK_COMPLETE");
    assert!(failed["failure"]["reason"].as_str().unwrap().contains(&bucket), "{failed}");
    let d =
        app.get(&format!("/api/v1/deployments/{}", failed["deployment_id"].as_str().unwrap()), &exec).await;
    assert_eq!(d.body["status"], "failed", "{}", d.text);

    // The failed first deploy left a ROLLBACK_COMPLETE stack, which CloudFormation only lets one
    // delete: deploying again removes it and creates the stack anew, on the same deployment.
    let env = app.state.repo.environment(&app::domain::ids::Id::parse(&c.prod).unwrap()).await.unwrap();
    let target = app::ssr::lifecycle::deployer::Target::of(&env, "test-observer");
    let stack_name = d.body["stack_name"].as_str().unwrap().to_string();
    let stack = app.state.engine.deployer().stack(&target, &stack_name).await.unwrap().unwrap();
    assert_eq!(stack.status, "ROLLBACK_COMPLETE");
    let again = post(&app, &exec, "/api/v1/deployments",
        json!({"environment_id": c.prod, "capability": "lead-scoring", "version": "1.2.0", "auto_execute": true,
               "parameters": {"Environment": "prod", "FixedBucketName": format!("free-{}", c.account)}})).await;
    assert_eq!(again.status, StatusCode::ACCEPTED, "{}", again.text);
    assert_eq!(again.body["deployment_id"], failed["deployment_id"], "the same deployment");
    let done = wait_for(&app, &exec, again.body["id"].as_str().unwrap(), terminal).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    let stack = app.state.engine.deployer().stack(&target, &stack_name).await.unwrap().unwrap();
    assert_eq!(stack.status, "CREATE_COMPLETE", "a new stack, not the rolled-back one");
    let d =
        app.get(&format!("/api/v1/deployments/{}", failed["deployment_id"].as_str().unwrap()), &exec).await;
    assert_eq!(d.body["status"], "active", "{}", d.text);
}

/// lead-scoring 1.1.0 padded with YAML comments: the same resources, over 51,200 bytes of text.
fn large_template() -> String {
    let shipped =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../catalog/lead-scoring/1.1.0.yaml"))
            .unwrap();
    let padding: String =
        (0..900).map(|i| format!("# padding line {i:04} of a large template, kept for its size\n")).collect();
    let template = format!("{shipped}{padding}");
    assert!(template.len() > 51_200, "{}", template.len());
    template
}

/// Publishes `template` as lead-scoring 1.4.0 and deploys it to `env` at once: the request's
/// answer and the operation at its end.
async fn publish_and_deploy(app: &TestApp, exec: &str, template: &str, env: &str) -> (common::Answer, Value) {
    let a = post(
        app,
        exec,
        "/api/v1/capabilities/lead-scoring/versions",
        json!({"version": "1.4.0", "template": template}),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    let a = post(
        app,
        exec,
        "/api/v1/deployments",
        json!({"environment_id": env, "capability": "lead-scoring", "version": "1.4.0", "auto_execute": true,
               "parameters": {"Environment": "dev"}}),
    )
    .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
    let op = wait_for(app, exec, a.body["id"].as_str().unwrap(), terminal).await;
    (a, op)
}

/// A template over CloudFormation's 51,200-byte inline limit cannot be sent inline: without an
/// artifacts bucket to pass it by URL from, the operation fails saying what to set, before any
/// change set exists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_over_the_inline_limit_needs_the_artifacts_bucket() {
    let app = app(&[]).await;
    let template = large_template();
    let exec = app.login(EXEC).await;
    let c = customer(&app, &exec).await;
    let (_, op) = publish_and_deploy(&app, &exec, &template, &c.dev).await;
    assert_eq!(op["state"], "failed", "{op}");
    assert!(op["error"].as_str().unwrap_or_default().contains("NEXUS_ARTIFACTS_BUCKET"), "{op}");
    assert_eq!(app.state.metrics.changes("CreateChangeSet"), 0, "nothing deployed");
}

/// With the artifacts bucket set, a template over the inline limit is written there and
/// CloudFormation reads it by `TemplateURL`: the stack is built from it. The environment is in the
/// toolkit's own account: the emulator keeps S3 buckets per account (AWS's bucket names are
/// global), so its CloudFormation finds the object only from there. Another account's role reads
/// it on AWS through the grants in infra/data.yaml and infra/customer-role.yaml.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_over_the_inline_limit_goes_by_url_from_the_artifacts_bucket() {
    require_emulator();
    let sdk = app::ssr::aws::load_sdk_config().await;
    let own = aws_sdk_sts::Client::new(&sdk).get_caller_identity().send().await.unwrap();
    let own = own.account().unwrap().to_string();
    let bucket = unique("nexus-art");
    let s3 = app::ssr::artifacts::S3Artifacts::new(&sdk, bucket.clone());
    s3.client().create_bucket().bucket(&bucket).send().await.expect("create the bucket on the emulator");
    let app = app(&[("NEXUS_ARTIFACTS_BUCKET", &bucket)]).await;
    let exec = app.login(EXEC).await;
    let c = customer_in(&app, &exec, own).await;
    let template = large_template();
    let (a, op) = publish_and_deploy(&app, &exec, &template, &c.dev).await;
    assert_eq!(op["state"], "succeeded", "{op}");
    // The copy CloudFormation read: under templates/, byte for byte the published template.
    let listed = s3.client().list_objects_v2().bucket(&bucket).prefix("templates/").send().await.unwrap();
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let copy = s3.client().get_object().bucket(&bucket).key(keys[0]).send().await.unwrap();
    assert_eq!(copy.body.collect().await.unwrap().into_bytes().as_ref(), template.as_bytes());
    let env = app.state.repo.environment(&app::domain::ids::Id::parse(&c.dev).unwrap()).await.unwrap();
    let target = app::ssr::lifecycle::deployer::Target::of(&env, "test-observer");
    let stack = app.state.engine.deployer().stack(&target, a.body["stack_name"].as_str().unwrap()).await;
    let stack = stack.unwrap().expect("the stack exists");
    assert_eq!(stack.status, "CREATE_COMPLETE", "{stack:?}");
    assert_eq!(app.state.metrics.changes("CreateChangeSet"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_checks_the_account_behind_the_role() {
    let app = app(&[]).await;
    let exec = app.login(EXEC).await;
    let rep = app.login(REP).await;
    let c = customer(&app, &exec).await;
    let a = post(&app, &exec, &format!("/api/v1/environments/{}/connect", c.dev), json!({})).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.body["connection"], "connected", "{}", a.text);
    assert!(a.body["connection_checked_at"].is_string());
    // No customer role stack in this account: a role before version 2, which does not say.
    assert_eq!(a.body["role_version"], 1, "{}", a.text);
    assert_eq!(
        post(&app, &rep, &format!("/api/v1/environments/{}/connect", c.dev), json!({})).await.status,
        StatusCode::FORBIDDEN
    );

    // The role is in another account than the environment says: refused, and said why. (The
    // API refuses such an environment, so the record is changed in the store directly.)
    let _ = &c.id;
    let id = app::domain::ids::Id::parse(&c.prod).unwrap();
    let mut env = app.state.repo.environment(&id).await.unwrap();
    let other = fresh_account();
    env.role_arn = format!("arn:aws:iam::{other}:role/NexusDeploymentRole");
    app.state.repo.update_environment(env).await.unwrap();
    let prod = json!({"id": c.prod});
    let a = post(
        &app,
        &exec,
        &format!("/api/v1/environments/{}/connect", prod["id"].as_str().unwrap()),
        json!({}),
    )
    .await;
    assert_eq!(a.body["connection"], "failed", "{}", a.text);
    assert!(a.body["connection_error"].as_str().unwrap().contains(&other), "{}", a.text);
}

/// An operation in an environment whose connection was never checked (or long ago) checks it
/// first: it passes and is stored, or the operation fails saying the account cannot be reached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operation_checks_a_stale_connection_first() {
    let app = app(&[]).await;
    let exec = app.login(EXEC).await;
    let c = customer(&app, &exec).await;
    let a = post(
        &app,
        &exec,
        "/api/v1/deployments",
        json!({"environment_id": c.dev, "capability": "lead-scoring", "version": "1.0.0",
               "parameters": {"Environment": "dev"}, "auto_execute": true}),
    )
    .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
    assert_eq!(wait_for(&app, &exec, a.body["id"].as_str().unwrap(), terminal).await["state"], "succeeded");
    let dev = app.state.repo.environment(&app::domain::ids::Id::parse(&c.dev).unwrap()).await.unwrap();
    assert_eq!(dev.connection, app::domain::model::ConnectionStatus::Connected);
    assert!(dev.connection_checked_at.is_some());

    // The prod role now answers for another account than the environment's (changed in the
    // store: the API refuses such an environment). Never checked, so the operation checks it.
    let id = app::domain::ids::Id::parse(&c.prod).unwrap();
    let mut env = app.state.repo.environment(&id).await.unwrap();
    let other = fresh_account();
    env.role_arn = format!("arn:aws:iam::{other}:role/NexusDeploymentRole");
    app.state.repo.update_environment(env).await.unwrap();
    let a = post(
        &app,
        &exec,
        "/api/v1/deployments",
        json!({"environment_id": c.prod, "capability": "lead-scoring", "version": "1.0.0",
               "parameters": {"Environment": "prod"}, "auto_execute": true}),
    )
    .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
    let done = wait_for(&app, &exec, a.body["id"].as_str().unwrap(), terminal).await;
    assert_eq!(done["state"], "failed", "{done}");
    assert!(done["error"].as_str().unwrap().contains("could not be reached"), "{done}");
    let prod = app.state.repo.environment(&id).await.unwrap();
    assert_eq!(prod.connection, app::domain::model::ConnectionStatus::Failed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_state_change_is_published_to_eventbridge_and_sns() {
    require_emulator();
    let sdk = app::ssr::aws::load_sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let (bus, queue) = bus_with_queue(&sdk).await;

    // The SNS topic, read through a second queue subscribed to it.
    let sns = aws_sdk_sns::Client::new(&sdk);
    let topic =
        sns.create_topic().name(unique("nexus-topic")).send().await.unwrap().topic_arn().unwrap().to_string();
    let (topic_queue, topic_queue_arn) = queue_with_arn(&sqs, &unique("nexus-topic-q")).await;
    sns.subscribe().topic_arn(&topic).protocol("sqs").endpoint(&topic_queue_arn).send().await.unwrap();

    let app = app(&[("NEXUS_EVENT_BUS", bus.as_str()), ("NEXUS_SNS_TOPIC_ARN", topic.as_str())]).await;
    let exec = app.login(EXEC).await;
    let c = customer(&app, &exec).await;
    let a = post(
        &app,
        &exec,
        "/api/v1/deployments",
        json!({"environment_id": c.dev, "capability": "churn-prediction", "version": "1.0.0",
               "parameters": {"Environment": "dev"}, "auto_execute": true}),
    )
    .await;
    let op = a.body["id"].as_str().unwrap().to_string();
    assert_eq!(wait_for(&app, &exec, &op, terminal).await["state"], "succeeded");

    // The request itself (queued) is announced by the service, each later step by the worker.
    let expected = ["queued", "creating_change_set", "executing", "succeeded"];
    let states = read_states(&sqs, &queue, &op, Duration::from_secs(15), |v| {
        assert_eq!(v["source"], "nexus.toolkit");
        assert_eq!(v["detail-type"], "Deployment Operation State Change");
        v["detail"].clone()
    })
    .await;
    assert_eq!(states, expected);
    // SNS wraps the same detail in its envelope (`Message`), or delivers it raw.
    let states =
        read_states(&sqs, &topic_queue, &op, Duration::from_secs(15), |v| match v["Message"].as_str() {
            Some(m) => serde_json::from_str(m).unwrap(),
            None => v.clone(),
        })
        .await;
    assert_eq!(states, expected);
}

/// The SSM parameter the capability's routing reads, from inside the customer's account.
async fn active_colour(account: &str, deployment: &str) -> Option<String> {
    let sdk = app::ssr::aws::load_sdk_config().await;
    let creds = aws_sdk_sts::Client::new(&sdk)
        .assume_role()
        .role_arn(format!("arn:aws:iam::{account}:role/NexusDeploymentRole"))
        .role_session_name("nexus-test-reader")
        .external_id("fake-external-id-1234")
        .send()
        .await
        .unwrap()
        .credentials()
        .unwrap()
        .clone();
    let conf = sdk
        .to_builder()
        .region(aws_sdk_ssm::config::Region::new("eu-west-1"))
        .credentials_provider(aws_sdk_ssm::config::SharedCredentialsProvider::new(
            aws_sdk_ssm::config::Credentials::new(
                creds.access_key_id(),
                creds.secret_access_key(),
                Some(creds.session_token().to_string()),
                None,
                "test",
            ),
        ))
        .build();
    let ssm = aws_sdk_ssm::Client::new(&conf);
    ssm.get_parameter()
        .name(format!("/nexus/{deployment}/active"))
        .send()
        .await
        .ok()?
        .parameter()?
        .value()
        .map(str::to_string)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blue_green_builds_the_other_colour_switches_when_healthy_and_removes_the_old_one() {
    let app = app(&[("NEXUS_BAKE_SECONDS", "0"), ("NEXUS_HEALTH_WAIT_SECONDS", "1")]).await;
    let health = health_server().await;
    let exec = app.login(EXEC).await;
    let c = customer(&app, &exec).await;
    let ok = format!("{health}/ok");
    let a = post(&app, &exec, "/api/v1/deployments",
        json!({"environment_id": c.dev, "capability": "sales-forecasting", "version": "1.0.0", "auto_execute": true,
               "parameters": {"Environment": "dev", "HealthEndpoint": ok}})).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
    let deployment = a.body["deployment_id"].as_str().unwrap().to_string();
    assert_eq!(wait_for(&app, &exec, a.body["id"].as_str().unwrap(), terminal).await["state"], "succeeded");
    let d = app.get(&format!("/api/v1/deployments/{deployment}"), &exec).await.body;
    assert!(d["stack_name"].as_str().unwrap().ends_with("-dev-blue"), "{d}");
    assert_eq!((d["active_color"].as_str(), d["health"].as_str()), (Some("blue"), Some("healthy")), "{d}");
    assert_eq!(active_colour(&c.account, &deployment).await.as_deref(), Some("blue"));
    let blue_stack = d["stack_name"].as_str().unwrap().to_string();

    // Upgrade: green is built beside blue, checked, made active; blue goes after the bake time.
    let a = post(
        &app,
        &exec,
        &format!("/api/v1/deployments/{deployment}/upgrade"),
        json!({"version": "2.0.0", "auto_execute": true}),
    )
    .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
    assert!(a.body["stack_name"].as_str().unwrap().ends_with("-dev-green"), "{}", a.text);
    let op = wait_for(&app, &exec, a.body["id"].as_str().unwrap(), terminal).await;
    assert_eq!(op["state"], "succeeded", "{op}");
    assert_eq!(op["blue_green"]["old_deleted"], true, "{op}");
    assert_eq!(op["parameters"]["Color"], "green", "the template is told its colour");
    let d = app.get(&format!("/api/v1/deployments/{deployment}"), &exec).await.body;
    assert!(d["stack_name"].as_str().unwrap().ends_with("-dev-green"), "{d}");
    assert_eq!((d["active_color"].as_str(), d["version"].as_str()), (Some("green"), Some("2.0.0")), "{d}");
    assert_eq!(active_colour(&c.account, &deployment).await.as_deref(), Some("green"));
    let env = app.state.repo.environment(&app::domain::ids::Id::parse(&c.dev).unwrap()).await.unwrap();
    let target = app::ssr::lifecycle::deployer::Target::of(&env, "nexus-test-reader");
    let deployer = app.state.engine.deployer().clone();
    let parameter = format!("/nexus/{deployment}/active");
    assert_eq!(deployer.parameter(&target, &parameter).await.unwrap().as_deref(), Some("green"));
    assert_eq!(deployer.parameter(&target, "/nexus/no-such/active").await.unwrap(), None);
    assert!(deployer.stack(&target, &blue_stack).await.unwrap().is_none(), "the blue stack is gone");
    let green_stack = d["stack_name"].as_str().unwrap().to_string();

    // Switching back is the rollback: blue again, with the previous version.
    let a =
        post(&app, &exec, &format!("/api/v1/deployments/{deployment}/switch"), json!({"auto_execute": true}))
            .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
    let op = wait_for(&app, &exec, a.body["id"].as_str().unwrap(), terminal).await;
    assert_eq!(op["state"], "succeeded", "{op}");
    let d = app.get(&format!("/api/v1/deployments/{deployment}"), &exec).await.body;
    assert_eq!((d["active_color"].as_str(), d["version"].as_str()), (Some("blue"), Some("1.0.0")), "{d}");
    assert_eq!(active_colour(&c.account, &deployment).await.as_deref(), Some("blue"));

    assert!(deployer.stack(&target, &green_stack).await.unwrap().is_none(), "the green stack is gone");

    // A new colour that never answers healthy: no switch, traffic stays where it was, and the
    // unhealthy green stack is deleted (it was built, then removed: nothing left running).
    let a = post(&app, &exec, &format!("/api/v1/deployments/{deployment}/upgrade"),
        json!({"version": "2.0.0", "auto_execute": true, "parameters": {"HealthEndpoint": format!("{health}/down")}})).await;
    let op = wait_for(&app, &exec, a.body["id"].as_str().unwrap(), terminal).await;
    assert_eq!(op["state"], "failed", "{op}");
    let error = op["error"].as_str().unwrap();
    assert!(error.contains("traffic stays on blue") && error.contains("the green stack was deleted"), "{op}");
    assert_eq!(op["blue_green"]["abandoned"], true, "{op}");
    assert!(op["stack_status"].as_str().is_some_and(|s| s.ends_with("_COMPLETE")), "green was built: {op}");
    assert!(
        deployer.stack(&target, &green_stack).await.unwrap().is_none(),
        "the unhealthy green stack is gone"
    );
    assert!(deployer.stack(&target, &blue_stack).await.unwrap().is_some(), "blue still serves");
    assert_eq!(active_colour(&c.account, &deployment).await.as_deref(), Some("blue"));
    let d = app.get(&format!("/api/v1/deployments/{deployment}"), &exec).await.body;
    assert_eq!(
        (d["active_color"].as_str(), d["version"].as_str(), d["status"].as_str()),
        (Some("blue"), Some("1.0.0"), Some("update_failed")),
        "{d}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reconciler_finds_stacks_gone_out_of_band_and_polls_health() {
    let app = app(&[("NEXUS_RECONCILE_RATE", "200")]).await;
    let health = health_server().await;
    let exec = app.login(EXEC).await;
    let c = customer(&app, &exec).await;
    let mut deployments = Vec::new();
    for (capability, url) in
        [("churn-prediction", format!("{health}/ok")), ("lead-scoring", format!("{health}/down"))]
    {
        let a = post(&app, &exec, "/api/v1/deployments",
            json!({"environment_id": c.dev, "capability": capability, "version": "1.0.0", "auto_execute": true,
                   "parameters": {"Environment": "dev", "HealthEndpoint": url}})).await;
        assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
        assert_eq!(
            wait_for(&app, &exec, a.body["id"].as_str().unwrap(), terminal).await["state"],
            "succeeded"
        );
        deployments.push(a.body["deployment_id"].as_str().unwrap().to_string());
    }
    let report = app.state.reconciler.pass().await.unwrap();
    assert!(report.checked >= 2, "{report:?}");
    let get = |id: String| {
        let app = &app;
        let exec = exec.clone();
        async move { app.get(&format!("/api/v1/deployments/{id}"), &exec).await.body }
    };
    let (ok, down) = (get(deployments[0].clone()).await, get(deployments[1].clone()).await);
    assert_eq!((ok["status"].as_str(), ok["health"].as_str()), (Some("active"), Some("healthy")), "{ok}");
    assert_eq!(
        (down["status"].as_str(), down["health"].as_str()),
        (Some("active"), Some("degraded")),
        "{down}"
    );

    // Someone deletes the stack in the customer's account, outside the toolkit.
    let env = app.state.repo.environment(&app::domain::ids::Id::parse(&c.dev).unwrap()).await.unwrap();
    let target = app::ssr::lifecycle::deployer::Target::of(&env, "someone-else");
    let stack = ok["stack_name"].as_str().unwrap();
    app.state.engine.deployer().delete_stack(&target, stack, "outofband-1").await.unwrap();
    let report = app.state.reconciler.pass().await.unwrap();
    assert!(report.changed >= 1, "{report:?}");
    let gone = get(deployments[0].clone()).await;
    assert_eq!(
        (gone["status"].as_str(), gone["health"].as_str()),
        (Some("missing"), Some("unknown")),
        "{gone}"
    );
    let summary = app.get("/api/v1/fleet/summary", &exec).await;
    assert!(summary.text.contains("missing"), "{}", summary.text);
    // A missing deployment can be deployed again.
    let a = post(&app, &exec, "/api/v1/deployments",
        json!({"environment_id": c.dev, "capability": "churn-prediction", "version": "1.1.0", "auto_execute": true,
               "parameters": {"Environment": "dev"}})).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
    assert_eq!(a.body["deployment_id"], deployments[0].as_str(), "the same deployment, not a second one");
    assert_eq!(wait_for(&app, &exec, a.body["id"].as_str().unwrap(), terminal).await["state"], "succeeded");
    let metrics = app.call(Method::GET, "/metrics", None, None).await;
    assert!(metrics.text.contains("nexus_reconcile_passes_total 2"), "{}", metrics.text);
    // AWS calls are timed per service and operation, as histograms.
    for series in [
        "nexus_aws_call_duration_seconds_count{service=\"cloudformation\",operation=\"CreateChangeSet\"}",
        "nexus_aws_call_duration_seconds_bucket{service=\"cloudformation\",operation=\"ExecuteChangeSet\",le=\"+Inf\"}",
        "nexus_operations_total{kind=\"deploy\",state=\"succeeded\"}",
    ] {
        assert!(metrics.text.contains(series), "{series} missing:\n{}", metrics.text);
    }
}

/// Stack status events (EventBridge -> SQS) make the reconciler look at once: no pass runs in
/// this test. The emulator's CloudFormation emits no events, so the test puts on the queue the
/// message EventBridge delivers for a stack deleted in the customer's account (AWS's documented
/// shape, with the emulator's real stack ARN); receiving, reconciling and deleting are real.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stack_status_event_on_the_queue_reconciles_its_deployment_at_once() {
    require_emulator();
    let sqs = aws_sdk_sqs::Client::new(&app::ssr::aws::load_sdk_config().await);
    let (queue, _) = queue_with_arn(&sqs, &unique("nexus-stack-events")).await;
    let app =
        app(&[("NEXUS_STACK_EVENTS_QUEUE_URL", queue.as_str()), ("NEXUS_RECONCILE_SECONDS", "0")]).await;
    let exec = app.login(EXEC).await;
    let c = customer(&app, &exec).await;
    let a = post(&app, &exec, "/api/v1/deployments",
        json!({"environment_id": c.dev, "capability": "lead-scoring", "version": "1.0.0", "auto_execute": true,
               "parameters": {"Environment": "dev"}})).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
    assert_eq!(wait_for(&app, &exec, a.body["id"].as_str().unwrap(), terminal).await["state"], "succeeded");
    let id = a.body["deployment_id"].as_str().unwrap().to_string();
    let deployment = app.get(&format!("/api/v1/deployments/{id}"), &exec).await.body;
    let (stack, stack_id) =
        (deployment["stack_name"].as_str().unwrap(), deployment["stack_id"].as_str().unwrap());

    let env = app.state.repo.environment(&app::domain::ids::Id::parse(&c.dev).unwrap()).await.unwrap();
    let target = app::ssr::lifecycle::deployer::Target::of(&env, "someone-else");
    app.state.engine.deployer().delete_stack(&target, stack, "outofband-2").await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let status = || {
        let (app, exec, id) = (&app, exec.clone(), id.clone());
        async move {
            app.get(&format!("/api/v1/deployments/{id}"), &exec).await.body["status"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    assert_eq!(status().await, "active", "nothing looked yet");

    let event = |stack_id: &str| {
        json!({"version": "0", "id": unique("event"), "detail-type": "CloudFormation Stack Status Change",
               "source": "aws.cloudformation", "account": env.account_id, "time": "2026-11-28T12:00:00Z",
               "region": env.region, "resources": [stack_id],
               "detail": {"stack-id": stack_id, "status-details": {"status": "DELETE_COMPLETE", "status-reason": ""}}})
        .to_string()
    };
    // A stranger's stack and a message that is no event are dropped, not retried forever.
    let foreign =
        format!("arn:aws:cloudformation:{}:{}:stack/someone-elses-stack/1234", env.region, env.account_id);
    for body in [event(&foreign), "not an event".to_string(), event(stack_id)] {
        sqs.send_message().queue_url(&queue).message_body(body).send().await.unwrap();
    }
    let started = Instant::now();
    while status().await != "missing" {
        assert!(started.elapsed() < Duration::from_secs(30), "the event did not reach the deployment");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let left = || {
        let (sqs, queue) = (&sqs, &queue);
        async move {
            let attrs = sqs
                .get_queue_attributes()
                .queue_url(queue.as_str())
                .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
                .send()
                .await
                .unwrap();
            let n = |k: aws_sdk_sqs::types::QueueAttributeName| {
                attrs.attributes().and_then(|a| a.get(&k)).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
            };
            n(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
                + n(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        }
    };
    let started = Instant::now();
    while left().await > 0 {
        assert!(started.elapsed() < Duration::from_secs(30), "handled messages were not deleted");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let metrics = app.call(Method::GET, "/metrics", None, None).await;
    assert!(metrics.text.contains("operation=\"ReceiveMessage\""), "{}", metrics.text);
    assert!(!metrics.text.contains("nexus_reconcile_passes_total 1"), "no pass ran");
}

/// The customer's side of the contract: `infra/customer-role.yaml`, created by CloudFormation in
/// the customer's own account (the emulator takes the account from the access key id), gives the
/// role ARN an Executive enters; the toolkit connects through it and deploys into that account.
/// (The emulator does not evaluate trust policies or permissions: that the role's policy allows
/// exactly what the catalog needs is checked by cfn-lint and review, not here.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_customer_role_template_makes_the_role_the_toolkit_deploys_through() {
    use aws_sdk_cloudformation::types::{Capability, Parameter, StackStatus};
    let app = app(&[]).await;
    let exec = app.login(EXEC).await;
    let account = fresh_account();
    // The environment first: the toolkit makes its external id, which the customer's role takes.
    let rep = app.user_id(REP).await;
    let c = post(
        &app,
        &exec,
        "/api/v1/customers",
        json!({"name": format!("Role Co {account}"), "owner_id": rep, "cost_center": "CC-1042"}),
    )
    .await;
    assert_eq!(c.status, StatusCode::CREATED, "{}", c.text);
    let e = post(
        &app,
        &exec,
        &format!("/api/v1/customers/{}/environments", c.body["id"].as_str().unwrap()),
        json!({"name": "dev", "account_id": account, "region": "eu-west-1",
               "role_arn": format!("arn:aws:iam::{account}:role/NexusDeploymentRole")}),
    )
    .await;
    assert_eq!(e.status, StatusCode::CREATED, "{}", e.text);
    let env = e.body["id"].as_str().unwrap().to_string();
    let external_id = e.body["external_id"].as_str().unwrap().to_string();
    assert!(external_id.len() >= 32, "{external_id}");

    let sdk = app::ssr::aws::load_sdk_config().await;
    let in_customer_account = sdk
        .to_builder()
        .region(aws_sdk_cloudformation::config::Region::new("eu-west-1"))
        .credentials_provider(aws_sdk_cloudformation::config::SharedCredentialsProvider::new(
            aws_sdk_cloudformation::config::Credentials::new(
                &account,
                "fake-local-secret-key",
                None,
                None,
                "test",
            ),
        ))
        .build();
    let cfn = aws_sdk_cloudformation::Client::new(&in_customer_account);
    let template =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/customer-role.yaml")).unwrap();
    let param = |k: &str, v: &str| Parameter::builder().parameter_key(k).parameter_value(v).build();
    cfn.create_stack()
        .stack_name("nexus-customer-role")
        .template_body(template)
        .capabilities(Capability::CapabilityNamedIam)
        .parameters(param("Environment", "dev"))
        .parameters(param("ToolkitTaskRoleArn", "arn:aws:iam::000000000000:role/nexus-toolkit-dev-task"))
        .parameters(param("ExternalId", &external_id))
        .send()
        .await
        .unwrap();
    let started = Instant::now();
    let role_arn = loop {
        let stacks = cfn.describe_stacks().stack_name("nexus-customer-role").send().await.unwrap();
        let stack = &stacks.stacks()[0];
        match stack.stack_status() {
            Some(StackStatus::CreateComplete) => {
                break stack
                    .outputs()
                    .iter()
                    .find(|o| o.output_key() == Some("RoleArn"))
                    .and_then(|o| o.output_value())
                    .unwrap()
                    .to_string();
            }
            Some(StackStatus::CreateInProgress) => {}
            other => panic!("the customer role stack ended {other:?}: {:?}", stack.stack_status_reason()),
        }
        assert!(started.elapsed() < Duration::from_secs(30), "the customer role stack is stuck");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(role_arn, format!("arn:aws:iam::{account}:role/NexusDeploymentRole"));

    let a = post(&app, &exec, &format!("/api/v1/environments/{env}/connect"), json!({})).await;
    assert_eq!(a.body["connection"], "connected", "{}", a.text);
    // The connect check reads the role's version from the account.
    assert_eq!(a.body["role_version"], app::domain::model::CUSTOMER_ROLE_VERSION, "{}", a.text);

    let a = post(
        &app,
        &exec,
        "/api/v1/deployments",
        json!({"environment_id": env, "capability": "lead-scoring",
        "version": "1.0.0", "parameters": {"Environment": "dev"}, "auto_execute": true}),
    )
    .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
    let done = wait_for(&app, &exec, a.body["id"].as_str().unwrap(), terminal).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    // The stack is in the customer's account, beside the role's own stack.
    let d =
        app.get(&format!("/api/v1/deployments/{}", a.body["deployment_id"].as_str().unwrap()), &exec).await;
    let stack_name = d.body["stack_name"].as_str().unwrap();
    let stacks = cfn.describe_stacks().stack_name(stack_name).send().await.unwrap();
    assert_eq!(stacks.stacks()[0].stack_status(), Some(&StackStatus::CreateComplete));
    assert!(stacks.stacks()[0].stack_id().unwrap().contains(&account), "{:?}", stacks.stacks()[0].stack_id());

    // A version whose role carries the boundary the role stack made deploys there too. (The
    // emulator keeps no boundary on roles CloudFormation makes: that IAM enforces it is for the
    // IAM policy simulator on AWS, infra/README.md.) One document type: the emulator checks a
    // CommaDelimitedList's AllowedValues against the whole list, not each item as AWS does.
    let a = post(
        &app,
        &exec,
        "/api/v1/deployments",
        json!({"environment_id": env, "capability": "document-intelligence",
        "version": "1.1.1", "parameters": {"Environment": "dev", "DocumentTypes": "invoice"}, "auto_execute": true}),
    )
    .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
    let done = wait_for(&app, &exec, a.body["id"].as_str().unwrap(), terminal).await;
    assert_eq!(done["state"], "succeeded", "{done}");
}
