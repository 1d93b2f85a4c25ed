//! Exactly-once operations across real server processes sharing one DynamoDB table on the
//! emulator: two replicas racing for 50 operations, and a server killed at the engine's crash
//! points (after the change set is created, after it is executed; in a blue-green cut-over, after
//! the colour switch and after the old colour's deletion) and started again.

mod common;

use common::processes::{Server, crashed_at, deploy, environments, unique, wait_terminal};
use serde_json::json;

const CAPABILITIES: [&str; 5] =
    ["lead-scoring", "sales-forecasting", "document-intelligence", "customer-360", "churn-prediction"];

#[test]
fn two_replicas_run_fifty_operations_exactly_once() {
    let table = unique("nexus-replicas");
    let a = Server::start(&table, &[]);
    let b = Server::start(&table, &[]);
    let token = a.login();
    let envs = environments(&a, &token, 4);
    let mut ops = Vec::new();
    for (i, (env, cap)) in
        envs.iter().flat_map(|e| CAPABILITIES.iter().map(move |c| (e, *c))).take(50).enumerate()
    {
        // Requests alternate between the replicas; both workers race for every operation.
        let server = if i % 2 == 0 { &a } else { &b };
        ops.push(deploy(server, &token, env, cap));
    }
    for op in &ops {
        let o = wait_terminal(&a, &token, op);
        assert_eq!(o["state"], "succeeded", "{o}");
    }
    let executed = a.changes("ExecuteChangeSet") + b.changes("ExecuteChangeSet");
    let created = a.changes("CreateChangeSet") + b.changes("CreateChangeSet");
    assert_eq!((executed, created), (50, 50), "one change set and one execution per operation");
    assert!(a.changes("ExecuteChangeSet") > 0 && b.changes("ExecuteChangeSet") > 0, "both replicas worked");
}

fn crash_and_recover(point: &str) {
    let table = unique("nexus-crash");
    let mut first = Server::start(&table, &[("NEXUS_TEST_CRASH_AT", point)]);
    let token = first.login();
    let env = environments(&first, &token, 1).remove(0);
    let op = deploy(&first, &token, &env, "lead-scoring");
    crashed_at(&mut first, point);

    let second = Server::start(&table, &[]);
    let o = wait_terminal(&second, &token, &op);
    assert_eq!(o["state"], "succeeded", "{o}");
    let (executed, created) = (second.changes("ExecuteChangeSet"), second.changes("CreateChangeSet"));
    match point {
        // The change set was made before the crash: found again, executed once, here.
        "after_change_set_created" => assert_eq!((created, executed), (0, 1)),
        // Executed before the crash: never again.
        _ => assert_eq!((created, executed), (0, 0)),
    }
    let (_, d) = second.call(
        "GET",
        &format!("/api/v1/deployments/{}", o["deployment_id"].as_str().unwrap()),
        Some(&token),
        None,
    );
    assert_eq!(d["status"], "active", "{d}");
    assert_eq!(d["operations"].as_array().unwrap().len(), 1, "history consistent: {d}");
    let (_, events) = second.call("GET", &format!("/api/v1/operations/{op}/events"), Some(&token), None);
    let creates = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["resource_type"] == "AWS::CloudFormation::Stack" && e["status"] == "CREATE_COMPLETE")
        .count();
    assert_eq!(creates, 1, "one stack, created once: {events}");
}

#[test]
fn a_crash_after_the_change_set_is_created_resumes_with_one_execution() {
    crash_and_recover("after_change_set_created");
}

#[test]
fn a_crash_after_execution_never_executes_again() {
    crash_and_recover("after_change_set_executed");
}

/// Blue-green's cut-over interrupted: the upgrade builds green beside blue, then the server
/// aborts right after the active colour is switched (before that step is saved), or right after
/// the old colour's stack is deleted (likewise). A new server finishes the operation without
/// building, switching or deleting anything twice.
fn blue_green_crash_and_recover(point: &str) {
    let table = unique("nexus-bg-crash");
    let fast = ("NEXUS_BAKE_SECONDS", "0");
    let (token, env, deployment, blue_stack) = {
        let first = Server::start(&table, &[fast]);
        let token = first.login();
        let env = environments(&first, &token, 1).remove(0);
        let (s, op) = first.call(
            "POST",
            "/api/v1/deployments",
            Some(&token),
            Some(json!({"environment_id": env.0, "capability": "sales-forecasting", "version": "1.0.0",
                        "auto_execute": true, "parameters": {"Environment": env.1}})),
        );
        assert_eq!(s, 202, "{op}");
        let o = wait_terminal(&first, &token, op["id"].as_str().unwrap());
        assert_eq!(o["state"], "succeeded", "{o}");
        let deployment = o["deployment_id"].as_str().unwrap().to_string();
        let (_, d) = first.call("GET", &format!("/api/v1/deployments/{deployment}"), Some(&token), None);
        assert_eq!(d["active_color"], "blue", "{d}");
        (token, env, deployment, d["stack_name"].as_str().unwrap().to_string())
    };

    let mut second = Server::start(&table, &[fast, ("NEXUS_TEST_CRASH_AT", point)]);
    let (s, op) = second.call(
        "POST",
        &format!("/api/v1/deployments/{deployment}/upgrade"),
        Some(&token),
        Some(json!({"version": "2.0.0", "auto_execute": true})),
    );
    assert_eq!(s, 202, "{op}");
    let op = op["id"].as_str().unwrap().to_string();
    crashed_at(&mut second, point);
    assert_eq!(second.changes("ExecuteChangeSet"), 0, "the counters died with the process");

    let third = Server::start(&table, &[fast]);
    let o = wait_terminal(&third, &token, &op);
    assert_eq!(o["state"], "succeeded", "{o}");
    assert_eq!(
        (o["blue_green"]["to"].as_str(), o["blue_green"]["old_deleted"].as_bool()),
        (Some("green"), Some(true)),
        "{o}"
    );
    let counts =
        ["CreateChangeSet", "ExecuteChangeSet", "PutParameter", "DeleteStack"].map(|c| third.changes(c));
    match point {
        // Switched before the crash, not saved: the parameter is read, found green, not written again.
        "after_colour_switched" => assert_eq!(counts, [0, 0, 0, 1], "only blue's deletion was left"),
        // Blue deleted before the crash, not saved: found gone, not asked again.
        _ => assert_eq!(counts, [0, 0, 0, 0], "nothing was left to do in AWS"),
    }
    let (_, d) = third.call("GET", &format!("/api/v1/deployments/{deployment}"), Some(&token), None);
    assert_eq!(
        (d["active_color"].as_str(), d["version"].as_str(), d["status"].as_str()),
        (Some("green"), Some("2.0.0"), Some("active")),
        "{d}"
    );
    assert_eq!(d["operations"].as_array().unwrap().len(), 2, "history consistent: {d}");
    let green_stack = d["stack_name"].as_str().unwrap().to_string();
    assert!(green_stack.ends_with("-green"), "{d}");

    // What the customer's account holds, read with the toolkit's own AWS adapter.
    let (_, c) = third.call(
        "GET",
        &format!("/api/v1/customers/{}", d["customer_id"].as_str().unwrap()),
        Some(&token),
        None,
    );
    let e = c["environments"].as_array().unwrap().iter().find(|e| e["id"] == env.0.as_str()).unwrap();
    let target = app::ssr::lifecycle::deployer::Target {
        account_id: e["account_id"].as_str().unwrap().to_string(),
        region: e["region"].as_str().unwrap().to_string(),
        role_arn: e["role_arn"].as_str().unwrap().to_string(),
        external_id: "fake-external-id-1234".into(),
        session_name: "nexus-test-reader".into(),
    };
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        use app::ssr::lifecycle::deployer::Deployer;
        let sdk = app::ssr::aws::load_sdk_config().await;
        let aws = app::ssr::lifecycle::cloudformation::CloudFormationDeployer::new(&sdk, Default::default());
        let active = aws.parameter(&target, &format!("/nexus/{deployment}/active")).await.unwrap();
        assert_eq!(active.as_deref(), Some("green"));
        assert!(aws.stack(&target, &blue_stack).await.unwrap().is_none(), "blue is gone");
        let green = aws.stack(&target, &green_stack).await.unwrap().expect("green serves");
        assert_eq!(green.outputs.get("Color").map(String::as_str), Some("green"), "{green:?}");
    });
}

#[test]
fn a_crash_right_after_the_colour_switch_finishes_without_switching_again() {
    blue_green_crash_and_recover("after_colour_switched");
}

#[test]
fn a_crash_right_after_the_old_colour_is_deleted_finishes_without_deleting_again() {
    blue_green_crash_and_recover("after_old_colour_deleted");
}
