//! Rollouts (issue 22), planned over the demo data through the REST API: every deployment of the
//! capability in the caller's scope is either in a wave or left out with its reason; waves go
//! dev, staging, prod with a canary first; scope, roles and bad input answer as everywhere else.

mod common;

use std::collections::HashSet;

use axum::http::{Method, StatusCode};
use common::TestApp;
use serde_json::{Value, json};

const EXEC: &str = "exec@demo.nexus";
const MANAGER: &str = "manager@demo.nexus";
const REP: &str = "rep@demo.nexus";

async fn plan(app: &TestApp, token: &str, body: Value) -> common::Answer {
    app.call(Method::POST, "/api/v1/rollouts", Some(token), Some(body)).await
}

/// Every deployment of `capability` the caller sees (deleted ones run nothing).
async fn visible(app: &TestApp, token: &str, capability: &str) -> HashSet<String> {
    let mut ids = HashSet::new();
    let mut cursor = String::new();
    loop {
        let page =
            app.get(&format!("/api/v1/deployments?capability={capability}&limit=200{cursor}"), token).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        for d in page.body["items"].as_array().unwrap() {
            if d["status"] != "deleted" {
                ids.insert(d["id"].as_str().unwrap().to_string());
            }
        }
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => return ids,
        }
    }
}

/// (planned, excluded) deployment ids, each listed once.
fn listed(plan: &Value) -> (Vec<String>, Vec<String>) {
    let planned: Vec<String> = plan["waves"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|w| {
            w["deployments"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["deployment_id"].as_str().unwrap().to_string())
        })
        .collect();
    let excluded: Vec<String> = plan["excluded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["deployment_id"].as_str().unwrap().to_string())
        .collect();
    (planned, excluded)
}

/// customer-360 1.2.0 needs a `CrmApiToken` (NoEcho, 16 characters or more) the demo's 1.0.0
/// deployments do not have: the rollout gives it.
const TOKEN: &str = "fake-crm-token-0123456789";

#[tokio::test]
async fn a_dry_run_plans_every_deployment_in_scope_or_says_why_not() {
    let app = TestApp::embedded(&[]).await;
    let exec = app.login(EXEC).await;
    let body = json!({"capability": "customer-360", "version": "1.2.0", "dry_run": true,
                      "parameters": {"CrmApiToken": TOKEN}});
    let a = plan(&app, &exec, body.clone()).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let (planned, excluded) = listed(&a.body);
    assert!(!planned.is_empty(), "the demo data has deployments to move: {}", a.text);
    let all: HashSet<String> = planned.iter().chain(&excluded).cloned().collect();
    assert_eq!(all.len(), planned.len() + excluded.len(), "each deployment once");
    assert_eq!(all, visible(&app, &exec, "customer-360").await, "every deployment accounted for");

    // Dev, then staging, then prod; each environment starts with a one-deployment canary and
    // the batches after it double.
    let waves = a.body["waves"].as_array().unwrap();
    let order = |e: &Value| ["dev", "staging", "prod"].iter().position(|n| e == n).unwrap();
    let envs: Vec<usize> = waves.iter().map(|w| order(&w["environment"])).collect();
    assert!(envs.windows(2).all(|p| p[0] <= p[1]), "{envs:?}");
    for (i, w) in waves.iter().enumerate() {
        assert_eq!(w["number"], i + 1);
        let size = w["deployments"].as_array().unwrap().len();
        if i == 0 || waves[i - 1]["environment"] != w["environment"] {
            assert_eq!(size, 1, "a canary first: {w}");
        } else {
            let before = waves[i - 1]["deployments"].as_array().unwrap().len();
            assert!(size <= before * 2, "doubling at most: {before} then {size}");
        }
        for d in w["deployments"].as_array().unwrap() {
            assert_eq!(d["environment"], w["environment"]);
            assert_eq!(d["from_version"], "1.0.0");
        }
    }
    for e in a.body["excluded"].as_array().unwrap() {
        assert!(e["reason"].is_string() && e["reason_text"].is_string(), "{e}");
        if e["version"] == "1.2.0" {
            assert_eq!(e["reason"], "at_target", "{e}");
        }
    }

    // Without the new required value, or with one the target refuses, every deployment is
    // blocked (listed, not failed halfway), naming the parameter; the value itself never shows.
    for parameters in [json!({}), json!({"CrmApiToken": "too-short"})] {
        let mut without = body.clone();
        without["parameters"] = parameters;
        let blocked = plan(&app, &exec, without).await;
        assert_eq!(blocked.status, StatusCode::OK, "{}", blocked.text);
        assert!(blocked.body["waves"].as_array().unwrap().is_empty(), "{}", blocked.text);
        let reasons: Vec<&Value> = blocked.body["excluded"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| planned.contains(&e["deployment_id"].as_str().unwrap().to_string()))
            .collect();
        assert_eq!(reasons.len(), planned.len());
        assert!(
            reasons
                .iter()
                .all(|e| e["reason"] == "blocked" && e["problem"].as_str().unwrap().contains("CrmApiToken")),
            "{reasons:?}"
        );
        assert!(!blocked.text.contains("too-short"), "NoEcho values never echo");
    }

    // A deployment with an operation waiting is busy, and left out.
    let first = &planned[0];
    let up = app
        .call(
            Method::POST,
            &format!("/api/v1/deployments/{first}/upgrade"),
            Some(&exec),
            Some(json!({"version": "1.2.0", "parameters": {"CrmApiToken": TOKEN}})),
        )
        .await;
    assert_eq!(up.status, StatusCode::ACCEPTED, "{}", up.text);
    let again = plan(&app, &exec, body.clone()).await;
    let busy = again.body["excluded"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["deployment_id"] == first.as_str())
        .cloned();
    assert_eq!(busy.map(|e| e["reason"].clone()), Some(json!("busy")), "{}", again.text);
    assert_eq!(listed(&again.body).0.len(), planned.len() - 1);
}

#[tokio::test]
async fn scope_roles_and_bad_input_answer_as_everywhere() {
    let app = TestApp::embedded(&[]).await;
    let (exec, manager, rep) = (app.login(EXEC).await, app.login(MANAGER).await, app.login(REP).await);
    let body = json!({"capability": "lead-scoring", "version": "1.1.0", "dry_run": true});

    let a = plan(&app, &rep, body.clone()).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "Reps do not roll out: {}", a.text);
    let restricted = json!({"capability": "customer-360", "version": "1.2.0", "dry_run": true});
    let a = plan(&app, &manager, restricted).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "Restricted capabilities only by Executives: {}", a.text);

    // A Sales Manager's plan holds the team's deployments and nobody else's.
    let a = plan(&app, &manager, body.clone()).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let (planned, excluded) = listed(&a.body);
    let mine: HashSet<String> = planned.into_iter().chain(excluded).collect();
    assert_eq!(mine, visible(&app, &manager, "lead-scoring").await);
    assert!(mine.len() < visible(&app, &exec, "lead-scoring").await.len(), "the team is not everyone");

    // A customer outside the team is not found, as anywhere else.
    let customers = app.get("/api/v1/customers?limit=200", &exec).await.body;
    let team: HashSet<String> = app.get("/api/v1/customers?limit=200", &manager).await.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    let other = customers["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| !team.contains(c["id"].as_str().unwrap()))
        .unwrap();
    let mut outside = body.clone();
    outside["selection"] = json!({"customers": [other["id"]]});
    assert_eq!(plan(&app, &manager, outside).await.status, StatusCode::NOT_FOUND);

    // Selecting one environment leaves the others out, saying so.
    let mut prod_only = body.clone();
    prod_only["selection"] = json!({"environments": ["prod"]});
    let a = plan(&app, &exec, prod_only).await;
    assert!(a.body["waves"].as_array().unwrap().iter().all(|w| w["environment"] == "prod"), "{}", a.text);
    assert!(
        a.body["excluded"].as_array().unwrap().iter().any(|e| e["reason"] == "environment_not_selected"),
        "{}",
        a.text
    );

    for (change, field) in [
        (json!({"version": "9.9.9"}), "version"),
        (json!({"version": "1.1"}), "version"),
        (json!({"capability": "no-such-thing"}), "capability"),
        (json!({"waves": {"max_concurrency": 0}}), "waves.max_concurrency"),
    ] {
        let mut bad = body.clone();
        for (k, v) in change.as_object().unwrap() {
            bad[k] = v.clone();
        }
        let a = plan(&app, &exec, bad).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{change}: {}", a.text);
        assert_eq!(a.body["error"]["field"], field, "{change}: {}", a.text);
    }
    let a = plan(
        &app,
        &exec,
        json!({"capability": "lead-scoring", "version": "1.1.0", "dry_run": true,
        "selection": {"from": ">=1.0 <1.1.0"}}),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.text);
}

/// Planning over the scale data set (1,000 customers x 3 environments x 5 capabilities =
/// 15,000 deployments; the capability's 3,000 are read): p50/p95/max of a dry run through the
/// REST API on the embedded store. A benchmark, not a timed test: `make bench` runs it.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "a benchmark: run with `make bench`"]
async fn planning_benchmark() {
    use std::time::{Duration, Instant};
    let app = TestApp::embedded(&[]).await;
    let catalog =
        app::ssr::catalog::Catalog::load(&app.state.config.catalog_dir, app::ssr::clock::now()).unwrap();
    app::ssr::seed::seed_scale(&app.state.repo, &catalog, 1000, &app.state.config.demo_password)
        .await
        .unwrap();
    let exec = app.login(EXEC).await;
    let body = json!({"capability": "churn-prediction", "version": "1.1.0", "dry_run": true});
    let first = plan(&app, &exec, body.clone()).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    let (planned, excluded) = listed(&first.body);
    let mut times: Vec<Duration> = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let a = plan(&app, &exec, body.clone()).await;
        times.push(t.elapsed());
        assert_eq!(a.status, StatusCode::OK);
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "rollout plan, embedded store: {} deployments read ({} planned in {} waves, {} left out); 20 runs: p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms",
        planned.len() + excluded.len(),
        planned.len(),
        first.body["waves"].as_array().unwrap().len(),
        excluded.len(),
        ms(times[10]),
        ms(times[18]),
        ms(times[19]),
    );
}

/// A customer's time zone and weekly prod windows: set by an Executive through the customer's
/// PATCH, read back as written, refused with the field named when they do not make sense.
#[tokio::test]
async fn a_customer_has_a_time_zone_and_weekly_windows() {
    let app = TestApp::embedded(&[]).await;
    let (exec, manager) = (app.login(EXEC).await, app.login(MANAGER).await);
    let customers = app.get("/api/v1/customers?limit=200", &exec).await;
    let c = customers.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["windows"].as_array().unwrap().is_empty())
        .unwrap()
        .clone();
    let id = c["id"].as_str().unwrap();
    let path = format!("/api/v1/customers/{id}");
    let patch = |body: Value| {
        let (app, path, exec, manager) = (&app, path.clone(), &exec, &manager);
        async move {
            let token = if body["as"] == "manager" { manager } else { exec };
            app.call(Method::PATCH, &path, Some(token), Some(body["change"].clone())).await
        }
    };
    let rev = c["rev"].as_u64().unwrap();

    let a = patch(json!({"change": {"rev": rev, "windows": ["Tue 02:00-04:00"], "time_zone": ""}})).await;
    assert_eq!(
        (a.status, a.body["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("windows")),
        "{}",
        a.text
    );
    let a = patch(json!({"change": {"rev": rev, "time_zone": "Mars/Olympus_Mons"}})).await;
    assert_eq!(
        (a.status, a.body["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("time_zone")),
        "{}",
        a.text
    );
    let a = patch(json!({"change": {"rev": rev, "windows": ["Tue 2am"]}})).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.text);
    assert!(a.text.contains("Tue 2am"), "the bad window is named: {}", a.text);
    let a = patch(json!({"as": "manager", "change": {"rev": rev, "time_zone": "Europe/Berlin"}})).await;
    assert!(matches!(a.status, StatusCode::FORBIDDEN | StatusCode::NOT_FOUND), "{}", a.text);

    let a = patch(json!({"change": {"rev": rev, "time_zone": "Europe/Berlin", "windows": ["Tue 02:00-04:00", "Sat 23:00-01:00"]}})).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.body["time_zone"], "Europe/Berlin");
    assert_eq!(a.body["windows"], json!(["Tue 02:00-04:00", "Sat 23:00-01:00"]));
    let read = app.get(&path, &exec).await;
    assert_eq!(read.body["windows"], json!(["Tue 02:00-04:00", "Sat 23:00-01:00"]), "{}", read.text);
    let audit = app.get(&format!("/api/v1/audit?action=customer.update&target=customer/{id}"), &exec).await;
    assert!(audit.text.contains("Sat 23:00-01:00"), "the change is audited: {}", audit.text);
}
