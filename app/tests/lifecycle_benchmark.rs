//! Lifecycle benchmarks (ignored: `make bench` runs them; they measure, they do not judge):
//! the time from a deploy request to the worker requesting the change set, and one reconciler
//! pass over the 15,000-deployment data set — against the emulator on loopback, on each store.

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use app::ssr::{catalog::Catalog, clock, seed::seed_scale};
use axum::http::{Method, StatusCode};
use common::{TestApp, require_emulator, unique};
use serde_json::json;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

const WORKER: [(&str, &str); 2] = [("NEXUS_WORKER", "on"), ("NEXUS_STACK_POLL_MS", "100")];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: make bench"]
async fn request_to_change_set_latency_embedded() {
    require_emulator();
    request_to_change_set(TestApp::embedded(&WORKER).await, "embedded").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: make bench"]
async fn request_to_change_set_latency_dynamodb() {
    request_to_change_set(TestApp::dynamodb(&unique("nexus-bench-ops"), &WORKER).await, "dynamodb").await;
}

async fn request_to_change_set(app: TestApp, store: &str) {
    let exec = app.login("exec@demo.nexus").await;
    let users = app.get("/api/v1/users?limit=200", &exec).await;
    let rep = users.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == "rep@demo.nexus")
        .unwrap()["id"]
        .clone();
    let mut envs = Vec::new();
    for i in 0..4 {
        let slug = format!(
            "b{}{i}",
            SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() % 1_000_000_000
        );
        let c = app
            .call(
                Method::POST,
                "/api/v1/customers",
                Some(&exec),
                Some(json!({"name": slug, "slug": slug, "owner_id": rep, "cost_center": "CC-1"})),
            )
            .await;
        assert_eq!(c.status, StatusCode::CREATED, "{}", c.text);
        let account = format!(
            "{:012}",
            600_000_000_000u64
                + (SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() % 99_999_999_999) as u64
        );
        for name in ["dev", "staging", "prod"] {
            let e = app
                .call(
                    Method::POST,
                    &format!("/api/v1/customers/{}/environments", c.body["id"].as_str().unwrap()),
                    Some(&exec),
                    Some(json!({"name": name, "account_id": account, "region": "us-east-1",
                    "role_arn": format!("arn:aws:iam::{account}:role/NexusDeploymentRole")})),
                )
                .await;
            envs.push((e.body["id"].as_str().unwrap().to_string(), name));
        }
    }
    let mut latencies = Vec::new();
    for (env, name) in &envs {
        for cap in ["lead-scoring", "churn-prediction", "sales-forecasting", "document-intelligence"] {
            let sent = clock::now();
            let a = app
                .call(
                    Method::POST,
                    "/api/v1/deployments",
                    Some(&exec),
                    Some(json!({"environment_id": env, "capability": cap, "version": "1.0.0",
                            "parameters": {"Environment": name}})),
                )
                .await;
            let answered = clock::now();
            assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
            let op = a.body["id"].as_str().unwrap().to_string();
            let started = Instant::now();
            let started_at = loop {
                let o = app.get(&format!("/api/v1/operations/{op}"), &exec).await.body;
                if let Some(t) = o["started_at"].as_str() {
                    break app::domain::time::Timestamp::parse(t).unwrap();
                }
                assert!(started.elapsed() < Duration::from_secs(10), "{o}");
                tokio::time::sleep(Duration::from_millis(2)).await;
            };
            let lag = (started_at.millis() - sent.millis()) as f64;
            if lag > 100.0 {
                println!(
                    "slow {cap}: {lag} ms (request answered after {} ms, op created {})",
                    answered.millis() - sent.millis(),
                    a.body["created_at"]
                );
            }
            latencies.push(lag);
        }
    }
    latencies.sort_by(f64::total_cmp);
    println!(
        "{store}: request -> change set requested ({} deploys, one at a time): p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms",
        latencies.len(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.95),
        latencies.last().unwrap()
    );
}

const RECONCILER: [(&str, &str); 1] = [("NEXUS_RECONCILE_RATE", "1000")];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: make bench"]
async fn reconciler_pass_over_the_scale_data_set_embedded() {
    require_emulator();
    reconciler_pass(TestApp::embedded(&RECONCILER).await, "embedded").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: make bench"]
async fn reconciler_pass_over_the_scale_data_set_dynamodb() {
    reconciler_pass(TestApp::dynamodb(&unique("nexus-bench-rec"), &RECONCILER).await, "dynamodb").await;
}

async fn reconciler_pass(app: TestApp, store: &str) {
    let catalog = Catalog::load(&app.state.config.catalog_dir, clock::now()).unwrap();
    let t = Instant::now();
    seed_scale(&app.state.repo, &catalog, 1000, &app.state.config.demo_password).await.unwrap();
    println!("{store}: seeded 1,000 customers in {:.1} s", t.elapsed().as_secs_f64());
    for pass in 1..=2 {
        let t = Instant::now();
        let report = app.state.reconciler.pass().await.unwrap();
        let secs = t.elapsed().as_secs_f64();
        println!(
            "{store}: reconciler pass {pass}: {} deployments checked, {} changed, {} errors in {secs:.1} s = {:.0} DescribeStacks/s",
            report.checked,
            report.changed,
            report.errors,
            report.aws_calls as f64 / secs
        );
    }
}
