//! Rollouts across real server processes on one DynamoDB table of the emulator (issue 22): two
//! replicas' schedulers racing over a rollout of 50 deployments, and a server killed (abort, as
//! kill -9) at the scheduler's two crash points — right after it started a deployment's
//! operation, right after it settled a finished one — then another server finishing the
//! rollout. Every deployment is upgraded exactly once.

mod common;

use std::time::{Duration, Instant};

use common::processes::{Server, crashed_at, deploy_version, environments, unique, wait_terminal};
use serde_json::{Value, json};

/// 25 customers x dev and staging: 50 deployments of lead-scoring 1.0.0, really deployed.
fn fifty_deployments(server: &Server, token: &str) -> (Vec<String>, Vec<String>) {
    let envs: Vec<(String, &str)> =
        environments(server, token, 25).into_iter().filter(|(_, name)| *name != "prod").collect();
    let ops: Vec<String> =
        envs.iter().map(|env| deploy_version(server, token, env, "lead-scoring", "1.0.0")).collect();
    let mut deployments = Vec::new();
    for op in &ops {
        let o = wait_terminal(server, token, op);
        assert_eq!(o["state"], "succeeded", "{o}");
        deployments.push(o["deployment_id"].as_str().unwrap().to_string());
    }
    let mut customers = Vec::new();
    for d in &deployments {
        let (_, r) = server.call("GET", &format!("/api/v1/deployments/{d}"), Some(token), None);
        let c = r["customer_id"].as_str().unwrap().to_string();
        if !customers.contains(&c) {
            customers.push(c);
        }
    }
    assert_eq!(deployments.len(), 50);
    (customers, deployments)
}

fn create_rollout(server: &Server, token: &str, customers: &[String]) -> String {
    let (s, r) = server.call(
        "POST",
        "/api/v1/rollouts",
        Some(token),
        Some(json!({"capability": "lead-scoring", "version": "1.1.0", "selection": {"customers": customers},
            "waves": {"canary": {"count": 2}, "max_concurrency": 16, "per_account": 2},
            "gates": {"bake_minutes": 0}})),
    );
    assert_eq!(s, 202, "{r}");
    r["id"].as_str().unwrap().to_string()
}

fn completed(server: &Server, token: &str, id: &str) -> Value {
    let started = Instant::now();
    loop {
        let (_, r) = server.call("GET", &format!("/api/v1/rollouts/{id}"), Some(token), None);
        if r["state"] == "completed" {
            return r;
        }
        assert!(started.elapsed() < Duration::from_secs(300), "rollout stuck: {r}\n{}", server.log());
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Every deployment succeeded in the rollout, runs 1.1.0, and had exactly one upgrade.
fn each_upgraded_once(server: &Server, token: &str, rollout: &Value, deployments: &[String]) {
    let items = rollout["items"].as_array().unwrap();
    assert_eq!(items.len(), deployments.len(), "{rollout}");
    assert!(items.iter().all(|i| i["state"]["state"] == "succeeded"), "{rollout}");
    let total: u64 =
        rollout["counts"].as_array().unwrap().iter().map(|c| c["succeeded"].as_u64().unwrap()).sum();
    assert_eq!(total, deployments.len() as u64, "the counters agree: {rollout}");
    for d in deployments {
        let (_, ops) =
            server.call("GET", &format!("/api/v1/deployments/{d}/operations?limit=200"), Some(token), None);
        let upgrades = ops["items"].as_array().unwrap().iter().filter(|o| o["kind"] == "upgrade").count();
        assert_eq!(upgrades, 1, "deployment {d}: {ops}");
        let (_, r) = server.call("GET", &format!("/api/v1/deployments/{d}"), Some(token), None);
        assert_eq!((r["version"].as_str(), r["status"].as_str()), (Some("1.1.0"), Some("active")), "{r}");
    }
}

#[test]
fn two_replicas_roll_out_fifty_deployments_exactly_once() {
    let table = unique("nexus-rollout-replicas");
    let a = Server::start(&table, &[]);
    let b = Server::start(&table, &[]);
    let token = a.login();
    let (customers, deployments) = fifty_deployments(&a, &token);
    let (created_before, executed_before) = (
        a.changes("CreateChangeSet") + b.changes("CreateChangeSet"),
        a.changes("ExecuteChangeSet") + b.changes("ExecuteChangeSet"),
    );
    let id = create_rollout(&b, &token, &customers);
    let done = completed(&a, &token, &id);
    each_upgraded_once(&a, &token, &done, &deployments);
    let created = a.changes("CreateChangeSet") + b.changes("CreateChangeSet") - created_before;
    let executed = a.changes("ExecuteChangeSet") + b.changes("ExecuteChangeSet") - executed_before;
    assert_eq!((created, executed), (50, 50), "one change set and one execution per deployment");
}

fn crash_and_finish(point: &str) {
    let table = unique("nexus-rollout-crash");
    let (token, customers, deployments) = {
        let setup = Server::start(&table, &[]);
        let token = setup.login();
        let (customers, deployments) = fifty_deployments(&setup, &token);
        (token, customers, deployments)
    };
    let mut crashing = Server::start(&table, &[("NEXUS_TEST_CRASH_AT", point)]);
    create_rollout(&crashing, &token, &customers);
    crashed_at(&mut crashing, point);
    drop(crashing);
    let again = Server::start(&table, &[]);
    let (_, list) = again.call("GET", "/api/v1/rollouts", Some(&token), None);
    let id = list["items"][0]["id"].as_str().unwrap().to_string();
    let done = completed(&again, &token, &id);
    each_upgraded_once(&again, &token, &done, &deployments);
}

#[test]
fn a_crash_right_after_a_rollout_started_an_operation_starts_it_never_again() {
    crash_and_finish("rollout_after_operation_started");
}

#[test]
fn a_crash_right_after_a_deployment_settled_goes_on_from_there() {
    crash_and_finish("rollout_after_deployment_settled");
}
