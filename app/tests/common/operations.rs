//! Customers in accounts of their own, and operations followed to their end: what the tests
//! that drive the lifecycle through the REST API share.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Answer, TestApp, unique};

const REP: &str = "rep@demo.nexus";

/// A 12-digit account id no other test uses.
pub fn fresh_account() -> String {
    let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{:012}", 400_000_000_000u64 + (n % 99_999_999_999) as u64)
}

/// A customer owned by the demo Rep with dev and prod environments in a fresh account.
pub struct Customer {
    pub id: String,
    pub dev: String,
    pub prod: String,
    pub account: String,
}

pub async fn customer(app: &TestApp, exec: &str) -> Customer {
    customer_in(app, exec, fresh_account()).await
}

pub async fn customer_in(app: &TestApp, exec: &str, account: String) -> Customer {
    let rep = app.user_id(REP).await;
    let slug = unique("c").replace('-', "").chars().rev().take(12).collect::<String>();
    let slug = format!("t{slug}");
    let c = app
        .call(
            Method::POST,
            "/api/v1/customers",
            Some(exec),
            Some(json!({"name": format!("Customer {slug}"), "slug": slug, "owner_id": rep, "cost_center": "CC-1042"})),
        )
        .await;
    assert_eq!(c.status, StatusCode::CREATED, "{}", c.text);
    let id = c.body["id"].as_str().unwrap().to_string();
    let mut envs = Vec::new();
    for name in ["dev", "prod"] {
        let e = app
            .call(
                Method::POST,
                &format!("/api/v1/customers/{id}/environments"),
                Some(exec),
                Some(json!({"name": name, "account_id": account, "region": "eu-west-1",
                    "role_arn": format!("arn:aws:iam::{account}:role/NexusDeploymentRole")})),
            )
            .await;
        assert_eq!(e.status, StatusCode::CREATED, "{}", e.text);
        envs.push(e.body["id"].as_str().unwrap().to_string());
    }
    Customer { prod: envs.pop().unwrap(), dev: envs.pop().unwrap(), account, id }
}

/// Polls the operation until `done` holds (30 s at most).
pub async fn wait_for(app: &TestApp, token: &str, op: &str, done: impl Fn(&Value) -> bool) -> Value {
    wait_for_within(app, token, op, Duration::from_secs(30), done).await
}

/// Polls the operation until `done` holds, `within` at most.
pub async fn wait_for_within(
    app: &TestApp,
    token: &str,
    op: &str,
    within: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let started = Instant::now();
    loop {
        let a = app.get(&format!("/api/v1/operations/{op}"), token).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        if done(&a.body) {
            return a.body;
        }
        assert!(started.elapsed() < within, "operation stuck: {}", a.text);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn state_is(s: &'static str) -> impl Fn(&Value) -> bool {
    move |op| op["state"] == s
}

pub fn terminal(op: &Value) -> bool {
    ["succeeded", "no_changes", "rolled_back", "failed", "rejected", "cancelled"]
        .contains(&op["state"].as_str().unwrap())
}

pub async fn post(app: &TestApp, token: &str, path: &str, body: Value) -> Answer {
    app.call(Method::POST, path, Some(token), Some(body)).await
}

/// A small health endpoint: `/ok` answers 200, `/down` 503.
pub async fn health_server() -> String {
    use axum::{Router, http::StatusCode as S, routing::get};
    let app = Router::new()
        .route("/ok", get(|| async { S::OK }))
        .route("/down", get(|| async { S::SERVICE_UNAVAILABLE }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}
