//! The REST API end to end through the real router and a real store: sign-in and sessions,
//! every read endpoint, bad input, role scoping, admin writes, the audit log and the security
//! layers. DynamoDB runs (on the emulator) prove the read paths never Scan.

mod common;

use std::collections::HashSet;

use axum::{
    body::Body,
    http::{Method, Request, StatusCode, header},
};
use common::{DEMO_PASSWORD, TestApp, unique};
use serde_json::{Value, json};

const EXEC: &str = "exec@demo.nexus";
const MANAGER: &str = "manager@demo.nexus";
const MANAGER2: &str = "manager2@demo.nexus";
const REP: &str = "rep@demo.nexus";
const REP2: &str = "rep2@demo.nexus";
const REP3: &str = "rep3@demo.nexus";

/// Every read route, with ids taken from the demo data.
async fn read_routes(app: &TestApp, token: &str) -> Vec<String> {
    let customers = app.get("/api/v1/customers?limit=200", token).await.body;
    let customer = customers["items"][0]["id"].as_str().unwrap().to_string();
    let deployments = app.get(&format!("/api/v1/deployments?customer={customer}"), token).await.body;
    let deployment = deployments["items"][0]["id"].as_str().unwrap().to_string();
    let detail = app.get(&format!("/api/v1/deployments/{deployment}"), token).await.body;
    let operation = detail["operations"][0]["id"].as_str().unwrap().to_string();
    vec![
        "/api/v1/me".into(),
        "/api/v1/capabilities".into(),
        "/api/v1/capabilities/lead-scoring".into(),
        "/api/v1/customers".into(),
        format!("/api/v1/customers/{customer}"),
        format!("/api/v1/customers/{customer}/environments"),
        "/api/v1/deployments".into(),
        format!("/api/v1/deployments?customer={customer}"),
        "/api/v1/deployments?environment=prod".into(),
        "/api/v1/deployments?capability=lead-scoring".into(),
        "/api/v1/deployments?capability=lead-scoring&environment=dev".into(),
        "/api/v1/deployments?status=failed".into(),
        "/api/v1/deployments?status=active&environment=staging&capability=customer-360".into(),
        format!("/api/v1/deployments/{deployment}"),
        format!("/api/v1/deployments/{deployment}/operations"),
        format!("/api/v1/operations/{operation}"),
        "/api/v1/fleet/summary".into(),
        "/api/v1/audit".into(),
        "/api/v1/audit/verify".into(),
        "/api/v1/audit/export?format=json".into(),
    ]
}

async fn drive_every_read_endpoint_without_scan(app: TestApp) {
    let token = app.login(EXEC).await;
    for path in read_routes(&app, &token).await {
        let a = app.get(&path, &token).await;
        assert_eq!(a.status, StatusCode::OK, "{} {path}: {}", app.state.repo.store().kind(), a.text);
    }
    let calls = app.state.repo.store().calls();
    println!("{} store calls after every read endpoint: {calls:?}", app.state.repo.store().kind());
    assert!(calls.query > 0 && calls.get > 0, "{calls:?}");
    assert_eq!(calls.scan, 0, "a read endpoint scanned: {calls:?}");
}

#[tokio::test]
async fn embedded_every_read_endpoint_answers_without_scan() {
    drive_every_read_endpoint_without_scan(TestApp::embedded(&[]).await).await;
}

#[tokio::test]
async fn dynamodb_every_read_endpoint_answers_without_scan() {
    let table = unique("nexus-api");
    let app = TestApp::dynamodb(&table, &[]).await;
    drive_every_read_endpoint_without_scan(app).await;
}

#[tokio::test]
async fn without_a_session_every_api_route_but_sign_in_and_the_document_is_401() {
    let app = TestApp::embedded(&[]).await;
    let token = app.login(EXEC).await;
    for path in read_routes(&app, &token).await {
        let a = app.call(Method::GET, &path, None, None).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{path}: {}", a.text);
        assert_eq!(a.body["error"]["code"], "unauthenticated");
    }
    for (method, path) in [(Method::POST, "/api/v1/customers"), (Method::POST, "/api/v1/auth/logout")] {
        let a = app.call(method, path, None, Some(json!({}))).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{path}");
    }
    let a = app.call(Method::GET, "/api/v1/auth/login", None, None).await;
    assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED);
    let doc = app.call(Method::GET, "/api/v1/openapi.json", None, None).await;
    assert_eq!(doc.status, StatusCode::OK);
    assert!(doc.body["paths"]["/api/v1/deployments"]["get"].is_object(), "{}", doc.text);
    assert!(doc.body["components"]["schemas"]["DeploymentView"].is_object());
    let health = app.call(Method::GET, "/health", None, None).await;
    assert_eq!(health.status, StatusCode::OK);
}

#[tokio::test]
async fn sign_in_sets_a_strict_cookie_and_sign_out_ends_the_session() {
    let app = TestApp::embedded(&[]).await;
    let a = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"email": "Rep@Demo.Nexus", "password": DEMO_PASSWORD})),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.body["user"]["role"], "rep");
    assert!(a.body["user"].get("password_hash").is_none(), "{}", a.text);
    assert!(a.body["expires_at"].as_str().unwrap().ends_with('Z'));
    let cookie = a.headers[header::SET_COOKIE].to_str().unwrap().to_string();
    for part in ["nexus_session=", "HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=1800"] {
        assert!(cookie.contains(part), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP: no Secure flag: {cookie}");
    let token = a.body["token"].as_str().unwrap().to_string();

    // The cookie alone authenticates a browser.
    let session = cookie.split(';').next().unwrap().to_string();
    let me = app
        .send(Request::get("/api/v1/me").header(header::COOKIE, &session).body(Body::empty()).unwrap())
        .await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["user"]["email"], "rep@demo.nexus");

    let out = app.call(Method::POST, "/api/v1/auth/logout", Some(&token), Some(json!({}))).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert!(out.headers[header::SET_COOKIE].to_str().unwrap().contains("Max-Age=0"));
    assert_eq!(app.get("/api/v1/me", &token).await.status, StatusCode::UNAUTHORIZED);
    let me = app
        .send(Request::get("/api/v1/me").header(header::COOKIE, &session).body(Body::empty()).unwrap())
        .await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn secure_cookies_and_hsts_when_served_over_https() {
    let app = TestApp::embedded(&[("NEXUS_PUBLIC_URL", "https://nexus.example.test")]).await;
    let a = app
        .send(
            Request::post("/api/v1/auth/login")
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::ORIGIN, "https://nexus.example.test")
                .body(Body::from(json!({"email": REP, "password": DEMO_PASSWORD}).to_string()))
                .unwrap(),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert!(a.headers[header::SET_COOKIE].to_str().unwrap().contains("; Secure"));
    assert!(a.headers[header::STRICT_TRANSPORT_SECURITY].to_str().unwrap().contains("max-age="));
}

#[tokio::test]
async fn wrong_and_unknown_sign_ins_answer_alike_then_lock_with_the_unlock_time() {
    let app = TestApp::embedded(&[]).await;
    let attempt = |email: &'static str| {
        let app = &app;
        async move {
            app.call(
                Method::POST,
                "/api/v1/auth/login",
                None,
                Some(json!({"email": email, "password": "Wrong-Password-1!"})),
            )
            .await
        }
    };
    let known = attempt(REP).await;
    let unknown = attempt("nobody@demo.nexus").await;
    assert_eq!(known.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        (unknown.status, &unknown.body),
        (known.status, &known.body),
        "answers must not tell users apart"
    );
    for _ in 0..3 {
        attempt(REP).await;
        attempt("nobody@demo.nexus").await;
    }
    for email in [REP, "nobody@demo.nexus"] {
        let locked = attempt(email).await;
        assert_eq!(locked.status, StatusCode::LOCKED, "{email}: {}", locked.text);
        assert_eq!(locked.body["error"]["code"], "locked");
        assert!(locked.body["error"]["unlocks_at"].as_str().unwrap().ends_with('Z'));
    }
    // The right password does not get through a lock.
    let a = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"email": REP, "password": DEMO_PASSWORD})),
        )
        .await;
    assert_eq!(a.status, StatusCode::LOCKED);

    // Failures and the lockout are audited with the source IP.
    let exec = app.login(EXEC).await;
    let events = app.get("/api/v1/audit?action=auth.lockout", &exec).await;
    let items = events.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{}", events.text);
    assert!(items.iter().all(|e| e["source_ip"] == "127.0.0.1"), "{}", events.text);
    let failures = app.get("/api/v1/audit?action=auth.login&target=user/rep@demo.nexus", &exec).await;
    let outcomes: Vec<&str> =
        failures.body["items"].as_array().unwrap().iter().map(|e| e["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes.iter().filter(|o| **o == "failure").count(), 5, "{outcomes:?}");
    assert!(!failures.text.contains("Wrong-Password-1!"), "passwords never enter the audit log");
    let metrics = app.call(Method::GET, "/metrics", None, None).await;
    assert!(metrics.text.contains("\nnexus_lockouts_total 2\n"), "{}", metrics.text);

    // The lock is not kept from its owner: a notice waits in their notifications (the audit
    // event says so), and Executives see every locked email, with the user who has it.
    let locked = app.get("/api/v1/users/locked", &exec).await;
    assert_eq!(locked.status, StatusCode::OK, "{}", locked.text);
    let rows = locked.body.as_array().unwrap().clone();
    let row = |email: &str| rows.iter().find(|r| r["email"] == email).cloned();
    let rep_row = row(REP).expect("the Rep's lock is listed");
    assert_eq!(rep_row["name"], "Riley Rep");
    assert!(rep_row["locked_until"].as_str().unwrap().ends_with('Z'));
    let nobody = row("nobody@demo.nexus").expect("a guessed email's lock is listed");
    assert_eq!((nobody["user_id"].is_null(), nobody["name"].is_null()), (true, true), "{nobody}");
    let manager = app.login(MANAGER).await;
    assert_eq!(app.get("/api/v1/users/locked", &manager).await.status, StatusCode::FORBIDDEN);
    let notified: Vec<(String, bool)> = items
        .iter()
        .map(|e| {
            (e["target"].as_str().unwrap().to_string(), e["details"]["owner_notified"].as_bool().unwrap())
        })
        .collect();
    assert!(notified.contains(&("user/rep@demo.nexus".into(), true)), "{notified:?}");
    assert!(notified.contains(&("user/nobody@demo.nexus".into(), false)), "{notified:?}");
    let rep_event = items.iter().find(|e| e["target"] == "user/rep@demo.nexus").unwrap();
    let rep_id = rep_row["user_id"].as_str().unwrap();
    assert_eq!(rep_event["actor_id"], rep_id, "the lockout names whose account it is");

    // Unlocked, the Rep signs in and reads what happened; nobody else gets the notice.
    let a = app.call(Method::POST, &format!("/api/v1/users/{rep_id}/unlock"), Some(&exec), None).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.text);
    let after = app.get("/api/v1/users/locked", &exec).await;
    assert!(after.body.as_array().unwrap().iter().all(|r| r["email"] != REP), "{}", after.text);
    let notices = app.get("/api/v1/me/notices", &app.login(REP).await).await;
    assert_eq!(notices.status, StatusCode::OK, "{}", notices.text);
    let n = &notices.body[0];
    assert_eq!((n["kind"].as_str(), n["failures"].as_u64()), (Some("locked"), Some(5)), "{}", notices.text);
    assert_eq!(n["source_ip"], "127.0.0.1");
    assert!(n["until"].as_str().unwrap().ends_with('Z'));
    assert_eq!(app.get("/api/v1/me/notices", &manager).await.body, json!([]));
}

/// The dashboard lists customers a page at a time: every customer exactly once over the pages,
/// each page sorted by name, the summary on every page, a bad cursor refused.
#[tokio::test]
async fn the_dashboard_pages_through_customers() {
    let app = TestApp::embedded(&[]).await;
    let exec = app.login(EXEC).await;
    let rep_id = app.user_id(REP).await;
    for i in 0..10 {
        let body =
            json!({"name": format!("Paging Customer {i:02}"), "owner_id": rep_id, "cost_center": "CC-1"});
        let a = app.call(Method::POST, "/api/v1/customers", Some(&exec), Some(body)).await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    }
    let all = app.get("/api/v1/customers?limit=200", &exec).await.body["items"].as_array().unwrap().len();
    assert!(all > app::server_fns::fleet::DASHBOARD_CUSTOMERS, "{all} customers fit on one page");

    let dashboard = |after: Option<String>| match after {
        None => "/sfn/dashboard".to_string(),
        Some(c) => format!("/sfn/dashboard?after={}", app::url::encode(&c)),
    };
    let (mut seen, mut after, mut pages) = (Vec::new(), None, 0);
    loop {
        let a = app.get_as_browser(&dashboard(after.clone()), &exec).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        assert!(a.body["summary"]["total"].as_i64().unwrap() > 0);
        let names: Vec<String> = a.body["customers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect();
        assert!(names.len() <= app::server_fns::fleet::DASHBOARD_CUSTOMERS);
        assert!(names.windows(2).all(|w| w[0].to_lowercase() <= w[1].to_lowercase()), "{names:?}");
        seen.extend(
            a.body["customers"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_string()),
        );
        pages += 1;
        match a.body["next_customers"].as_str() {
            Some(c) => after = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(pages, all.div_ceil(app::server_fns::fleet::DASHBOARD_CUSTOMERS));
    let unique: std::collections::HashSet<&String> = seen.iter().collect();
    assert_eq!((seen.len(), unique.len()), (all, all), "every customer once");

    let bad = app.get_as_browser(&dashboard(Some("not-a-cursor".into())), &exec).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.text);
}

/// Customer search reads through every page: a match behind many others is found on a first
/// page of one, the same on the REST list and the dashboard, within the user's scope only.
#[tokio::test]
async fn customers_are_searched_across_every_page() {
    let app = TestApp::embedded(&[]).await;
    let exec = app.login(EXEC).await;
    let rep = app.login(REP).await;
    let manager_id = app.user_id("manager@demo.nexus").await;
    let body = json!({"name": "Zebra Xylofjord Logistics", "owner_id": manager_id, "cost_center": "CC-ZQ77"});
    let a = app.call(Method::POST, "/api/v1/customers", Some(&exec), Some(body)).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    let id = a.body["id"].as_str().unwrap().to_string();
    let all = app.get("/api/v1/customers?limit=200", &exec).await.body["items"].as_array().unwrap().len();
    assert!(all > 3, "{all}");

    let found = |token: String, q: &'static str| {
        let app = &app;
        async move {
            let a = app.get(&format!("/api/v1/customers?limit=1&q={}", app::url::encode(q)), &token).await;
            assert_eq!(a.status, StatusCode::OK, "{}", a.text);
            let ids: Vec<String> = a.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["id"].as_str().unwrap().to_string())
                .collect();
            (ids, a.body["next_cursor"].is_string())
        }
    };
    assert_eq!(found(exec.clone(), "xylofjord zebra").await, (vec![id.clone()], false));
    assert_eq!(found(exec.clone(), "  XYLOFJORD ").await, (vec![id.clone()], false), "any case, trimmed");
    assert_eq!(found(exec.clone(), "cc-zq77").await, (vec![id.clone()], false), "the cost centre");
    assert_eq!(found(exec.clone(), "xylofjord nowhere").await, (vec![], false), "every word must match");
    assert_eq!(found(rep.clone(), "xylofjord").await, (vec![], false), "not the Rep's customer");
    // A blank search is no search: the first of every customer, with more to come.
    let (first, more) = found(exec.clone(), " ").await;
    assert_eq!((first.len(), more), (1, true));

    let d = app.get_as_browser("/sfn/dashboard?q=zebra%20xylofjord", &exec).await;
    assert_eq!(d.status, StatusCode::OK, "{}", d.text);
    let names: Vec<&str> =
        d.body["customers"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Zebra Xylofjord Logistics"]);
    assert!(d.body["summary"]["total"].as_i64().unwrap() > 0, "the summary is the whole fleet's");
}

/// The Users page lists users a page at a time (every user once, in email order) and names
/// every Sales Manager for the new-user form, wherever they fall in the pages.
#[tokio::test]
async fn the_users_page_pages_through_users() {
    use app::domain::model::{Role, User};
    let app = TestApp::embedded(&[]).await;
    let exec = app.login(EXEC).await;
    // Written to the store directly: 120 sign-ups through the API would hash 120 passwords.
    for i in 0..120u64 {
        let user = User {
            id: app::ssr::ids::new_id(),
            email: format!("paging{i:03}@users.test"),
            name: format!("Paging {i:03}"),
            role: if i == 119 { Role::SalesManager } else { Role::Rep },
            manager_id: None,
            active: true,
            created_at: app::domain::time::Timestamp::from_millis(1_700_000_000_000),
            rev: 0,
        };
        let record = app::ssr::repo::UserRecord { user, password_hash: None, sessions_valid_after: None };
        app.state.repo.create_user(record).await.unwrap();
    }
    let users = |after: Option<String>| match after {
        None => "/sfn/users".to_string(),
        Some(c) => format!("/sfn/users?after={}", app::url::encode(&c)),
    };
    let (mut emails, mut after, mut pages) = (Vec::<String>::new(), None, 0);
    loop {
        let a = app.get_as_browser(&users(after.clone()), &exec).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        let page = a.body["users"].as_array().unwrap();
        assert!(page.len() <= app::server_fns::users::USERS_PAGE);
        emails.extend(page.iter().map(|u| u["email"].as_str().unwrap().to_string()));
        let managers: Vec<&str> =
            a.body["managers"].as_array().unwrap().iter().map(|u| u["email"].as_str().unwrap()).collect();
        assert!(
            managers.contains(&"paging119@users.test") && managers.contains(&"manager@demo.nexus"),
            "{managers:?}"
        );
        assert!(a.body["managers"].as_array().unwrap().iter().all(|u| u["role"] == "sales_manager"));
        pages += 1;
        match a.body["next"].as_str() {
            Some(c) => after = Some(c.to_string()),
            None => break,
        }
    }
    let listed = app.get("/api/v1/users?limit=200", &exec).await.body["items"].as_array().unwrap().len();
    assert!(listed > app::server_fns::users::USERS_PAGE, "{listed}");
    assert_eq!(pages, listed.div_ceil(app::server_fns::users::USERS_PAGE));
    let mut sorted = emails.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(emails, sorted, "every user once, in email order");
    assert_eq!(emails.len(), listed);

    let rep = app.login(REP).await;
    assert_eq!(app.get_as_browser("/sfn/users", &rep).await.status, StatusCode::FORBIDDEN);
}

/// `/metrics` names each request's route pattern (never the raw path with its ids), method and
/// status in a latency histogram, and counts rate-limit refusals.
#[tokio::test]
async fn metrics_time_requests_by_route_and_count_refusals() {
    let app = TestApp::embedded(&[("NEXUS_LOGIN_RATE_LIMIT", "3/300")]).await;
    let exec = app.login(EXEC).await;
    let customers = app.get("/api/v1/customers?limit=1", &exec).await;
    let id = customers.body["items"][0]["id"].as_str().unwrap().to_string();
    for _ in 0..2 {
        assert_eq!(app.get(&format!("/api/v1/customers/{id}"), &exec).await.status, StatusCode::OK);
    }
    let missing = app.get("/api/v1/customers/01KB0000000000000000000000", &exec).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let page = app.get_as_browser(&format!("/customers/{id}"), &exec).await;
    assert_eq!(page.status, StatusCode::OK);
    // The fourth sign-in attempt from this address (after `login` and two more) is refused.
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let body = json!({"email": EXEC, "password": DEMO_PASSWORD});
        statuses.push(app.call(Method::POST, "/api/v1/auth/login", None, Some(body)).await.status);
    }
    assert_eq!(statuses, [StatusCode::OK, StatusCode::OK, StatusCode::TOO_MANY_REQUESTS]);

    let metrics = app.call(Method::GET, "/metrics", None, None).await;
    let m = &metrics.text;
    let series = |route: &str, method: &str, status: u16| {
        format!("route=\"{route}\",method=\"{method}\",status=\"{status}\"")
    };
    let get_ok = series("/api/v1/customers/{id}", "GET", 200);
    for expected in [
        "# TYPE nexus_http_request_duration_seconds histogram".to_string(),
        format!("nexus_http_request_duration_seconds_bucket{{{get_ok},le=\"+Inf\"}} 2\n"),
        format!("nexus_http_request_duration_seconds_count{{{get_ok}}} 2\n"),
        format!(
            "nexus_http_request_duration_seconds_count{{{}}} 1\n",
            series("/api/v1/customers/{id}", "GET", 404)
        ),
        format!("nexus_http_request_duration_seconds_count{{{}}} 1\n", series("/customers/{id}", "GET", 200)),
        format!(
            "nexus_http_request_duration_seconds_count{{{}}} 1\n",
            series("/api/v1/auth/login", "POST", 429)
        ),
        "nexus_rate_limited_total{limit=\"login\"} 1\n".to_string(),
        "nexus_rate_limited_total{limit=\"all\"} 0\n".to_string(),
        "nexus_lockouts_total 0\n".to_string(),
    ] {
        assert!(m.contains(&expected), "{expected} missing:\n{m}");
    }
    assert!(!m.contains(&id), "ids never become label values");
    // A made-up method does not make a series of its own.
    let odd = app.send(Request::builder().method("BREW").uri("/health").body(Body::empty()).unwrap()).await;
    assert_ne!(odd.status, StatusCode::OK);
    let m = app.call(Method::GET, "/metrics", None, None).await.text;
    assert!(!m.contains("BREW") && m.contains("method=\"OTHER\""), "{m}");
    // Buckets are cumulative: each is at least the one before.
    let buckets: Vec<u64> = m
        .lines()
        .filter(|l| l.starts_with(&format!("nexus_http_request_duration_seconds_bucket{{{get_ok}")))
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(buckets.len(), 13);
    assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "{buckets:?}");
}

#[tokio::test]
async fn bad_input_is_400_naming_the_field() {
    let app = TestApp::embedded(&[]).await;
    let token = app.login(EXEC).await;
    let cases = [
        ("/api/v1/customers/not-an-id", "id", "invalid_id"),
        ("/api/v1/deployments/123", "id", "invalid_id"),
        ("/api/v1/operations/zzzzzzzzzzzzzzzzzzzzzzzzzz", "id", "invalid_id"),
        ("/api/v1/deployments?customer=nope", "customer", "invalid_id"),
        ("/api/v1/deployments?environment=qa", "environment", "invalid_environment"),
        ("/api/v1/deployments?status=exploded", "status", "invalid_status"),
        ("/api/v1/deployments?limit=0", "limit", "invalid_limit"),
        ("/api/v1/deployments?limit=201", "limit", "invalid_limit"),
        ("/api/v1/deployments?limit=ten", "limit", "invalid_limit"),
        ("/api/v1/deployments?cursor=garbage", "cursor", "invalid_cursor"),
        ("/api/v1/customers?cursor=eyJwIjo5OSwiYyI6e319", "cursor", "invalid_cursor"),
        ("/api/v1/deployments?colour=blue", "colour", "unknown_parameter"),
        ("/api/v1/deployments?capability=teleport", "capability", "unknown_capability"),
        ("/api/v1/audit?from=yesterday", "from", "invalid_time"),
        ("/api/v1/audit/export?format=xml", "format", "invalid_format"),
    ];
    for (path, field, code) in cases {
        let a = app.get(path, &token).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{path}: {}", a.text);
        assert_eq!(a.body["error"]["field"], field, "{path}: {}", a.text);
        assert_eq!(a.body["error"]["code"], code, "{path}: {}", a.text);
        assert!(!a.body["error"]["message"].as_str().unwrap().is_empty());
    }
    // A cursor from one list is refused by another.
    let page = app.get("/api/v1/customers?limit=2", &token).await;
    let cursor = page.body["next_cursor"].as_str().unwrap();
    let a = app.get(&format!("/api/v1/deployments?cursor={cursor}"), &token).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.text);

    for path in [
        "/api/v1/customers/01JDQ8ZK3M6V2C0N7R5T9W4XYA",
        "/api/v1/deployments/01JDQ8ZK3M6V2C0N7R5T9W4XYA",
        "/api/v1/operations/01JDQ8ZK3M6V2C0N7R5T9W4XYA",
        "/api/v1/capabilities/teleport",
        "/api/v1/nothing-here",
    ] {
        let a = app.get(path, &token).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(a.body["error"]["code"], "not_found", "{path}");
    }

    // Bodies: unknown fields, wrong types, missing fields, not JSON, over 1 MiB.
    let post = |body: Value| app.call(Method::POST, "/api/v1/customers", Some(&token), Some(body));
    let a = post(json!({"name": "X", "owner_id": "x", "cost_center": "CC", "colour": "blue"})).await;
    assert_eq!(
        (a.status, a.body["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("colour")),
        "{}",
        a.text
    );
    let a = post(json!({"name": 5, "owner_id": "x", "cost_center": "CC"})).await;
    assert_eq!(
        (a.status, a.body["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("name")),
        "{}",
        a.text
    );
    let a = post(json!({"name": "X", "cost_center": "CC"})).await;
    assert_eq!(
        (a.status, a.body["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("owner_id")),
        "{}",
        a.text
    );
    let big = "x".repeat(1024 * 1024 + 1);
    let a = post(json!({"name": big, "owner_id": "x", "cost_center": "CC"})).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", a.text);
    assert_eq!(a.body["error"]["code"], "payload_too_large");
    let a = app
        .send(
            Request::post("/api/v1/customers")
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .header(header::CONTENT_TYPE, "text/plain")
                .body(Body::from("name=x"))
                .unwrap(),
        )
        .await;
    assert_eq!(a.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // Nothing of the refused requests was written.
    let all = app.get("/api/v1/customers?limit=200", &token).await;
    assert_eq!(all.body["items"].as_array().unwrap().len(), 20);
}

#[tokio::test]
async fn lists_page_past_several_pages_without_gaps_or_repeats() {
    let app = TestApp::embedded(&[]).await;
    for email in [EXEC, MANAGER, REP] {
        let token = app.login(email).await;
        let mut seen = HashSet::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let path = match &cursor {
                None => "/api/v1/deployments?limit=20".to_string(),
                Some(c) => format!("/api/v1/deployments?limit=20&cursor={c}"),
            };
            let a = app.get(&path, &token).await;
            assert_eq!(a.status, StatusCode::OK, "{}", a.text);
            let items = a.body["items"].as_array().unwrap();
            assert!(items.len() <= 20);
            for d in items {
                assert!(seen.insert(d["id"].as_str().unwrap().to_string()), "repeated {d}");
            }
            pages += 1;
            match a.body["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => break,
            }
        }
        let summary = app.get("/api/v1/fleet/summary", &token).await;
        let total = summary.body["total"].as_i64().unwrap() as usize;
        println!("{email}: {} deployments over {pages} pages; fleet total {total}", seen.len());
        assert_eq!(seen.len(), total, "{email}: the list and the fleet counters agree");
        assert!(pages >= 3, "{email}: {pages} pages");
    }
}

#[tokio::test]
async fn fleet_summary_puts_problems_first_and_filters_agree_with_it() {
    let app = TestApp::embedded(&[]).await;
    let token = app.login(EXEC).await;
    let s = app.get("/api/v1/fleet/summary", &token).await.body;
    let rows = s["rows"].as_array().unwrap();
    let first_ok = rows.iter().position(|r| r["problem"] == false).unwrap();
    assert!(first_ok > 0, "the demo data has problems: {s}");
    assert!(rows[first_ok..].iter().all(|r| r["problem"] == false), "problems first: {s}");
    let failed: i64 =
        rows.iter().filter(|r| r["status"] == "failed").map(|r| r["count"].as_i64().unwrap()).sum();
    let listed = app.get("/api/v1/deployments?status=failed&limit=200", &token).await;
    assert_eq!(listed.body["items"].as_array().unwrap().len() as i64, failed);
    let prod_lead: i64 = rows
        .iter()
        .filter(|r| r["capability"] == "lead-scoring" && r["environment"] == "prod")
        .map(|r| r["count"].as_i64().unwrap())
        .sum();
    let listed =
        app.get("/api/v1/deployments?capability=lead-scoring&environment=prod&limit=200", &token).await;
    let items = listed.body["items"].as_array().unwrap();
    assert_eq!(items.len() as i64, prod_lead);
    assert!(items.iter().all(|d| d["capability"] == "lead-scoring" && d["environment"] == "prod"));
}

#[tokio::test]
async fn no_echo_parameters_never_leave_the_server() {
    let app = TestApp::embedded(&[]).await;
    let token = app.login(EXEC).await;
    let list = app.get("/api/v1/deployments?capability=customer-360&limit=200", &token).await;
    let items = list.body["items"].as_array().unwrap();
    assert!(!items.is_empty());
    for d in items {
        if let Some(v) = d["parameters"].get("CrmApiToken") {
            assert_eq!(v, "****", "{d}");
        }
    }
}

/// Who may see and change what (PRODUCT.md §3), tried for every role on a customer of each
/// relation: in scope answers, out of scope is 404 (never 403); actions the role lacks are 403
/// whatever the id. (Deploy/approve actions join this table with the lifecycle engine.)
#[tokio::test]
async fn every_role_against_every_action_and_out_of_scope_customer() {
    let app = TestApp::embedded(&[]).await;
    let exec = app.login(EXEC).await;
    let all = app.get("/api/v1/customers?limit=200", &exec).await.body;
    let rep_id = app.user_id(REP).await;
    let rep3_id = app.user_id(REP3).await;
    let of = |owner: &str| {
        all["items"].as_array().unwrap().iter().find(|c| c["owner_id"] == owner).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (rep_customer, rep3_customer) = (of(&rep_id), of(&rep3_id));

    // (role, customer, may see, may manage)
    let cases = [
        (EXEC, &rep_customer, true, true),
        (EXEC, &rep3_customer, true, true),
        (MANAGER, &rep_customer, true, false),
        (MANAGER, &rep3_customer, false, false),
        (MANAGER2, &rep_customer, false, false),
        (MANAGER2, &rep3_customer, true, false),
        (REP, &rep_customer, true, false),
        (REP, &rep3_customer, false, false),
        (REP3, &rep_customer, false, false),
        (REP3, &rep3_customer, true, false),
    ];
    for (email, customer, see, manage) in cases {
        let token = app.login(email).await;
        let deployments = app.get(&format!("/api/v1/deployments?customer={rep_customer}"), &exec).await.body;
        let deployment = deployments["items"][0]["id"].as_str().unwrap().to_string();
        let deployment = if customer == &rep_customer {
            deployment
        } else {
            app.get(&format!("/api/v1/deployments?customer={rep3_customer}"), &exec).await.body["items"][0]["id"]
                .as_str()
                .unwrap()
                .to_string()
        };
        let detail = app.get(&format!("/api/v1/deployments/{deployment}"), &exec).await.body;
        let operation = detail["operations"][0]["id"].as_str().unwrap().to_string();
        let visible = if see { StatusCode::OK } else { StatusCode::NOT_FOUND };
        for path in [
            format!("/api/v1/customers/{customer}"),
            format!("/api/v1/customers/{customer}/environments"),
            format!("/api/v1/deployments?customer={customer}"),
            format!("/api/v1/deployments/{deployment}"),
            format!("/api/v1/deployments/{deployment}/operations"),
            format!("/api/v1/operations/{operation}"),
        ] {
            let a = app.get(&path, &token).await;
            assert_eq!(a.status, visible, "{email} GET {path}: {}", a.text);
        }
        // Changes: an Executive's; others get 403 in scope and 404 out of it.
        let current = app.get(&format!("/api/v1/customers/{customer}"), &exec).await.body;
        let rev = current["rev"].as_u64().unwrap();
        let a = app
            .call(
                Method::PATCH,
                &format!("/api/v1/customers/{customer}"),
                Some(&token),
                Some(json!({"rev": rev, "cost_center": "CC-9999"})),
            )
            .await;
        // Managing customers is an Executive's: others are refused by role, before any lookup,
        // so the answer says nothing about the id either.
        let expected = if manage { StatusCode::OK } else { StatusCode::FORBIDDEN };
        assert_eq!(a.status, expected, "{email} PATCH customer: {}", a.text);
    }

    // Lists hold only what is in scope.
    for (email, owners) in [(REP, 1usize), (MANAGER, 2), (MANAGER2, 1), (EXEC, 3)] {
        let token = app.login(email).await;
        let list = app.get("/api/v1/customers?limit=200", &token).await.body;
        let distinct: HashSet<&str> =
            list["items"].as_array().unwrap().iter().map(|c| c["owner_id"].as_str().unwrap()).collect();
        assert_eq!(distinct.len(), owners, "{email}: {list}");
    }

    // The audit log: Reps none, Sales Managers their team's, only Executives verify.
    let rep = app.login(REP).await;
    assert_eq!(app.get("/api/v1/audit", &rep).await.status, StatusCode::FORBIDDEN);
    let manager = app.login(MANAGER).await;
    assert_eq!(app.get("/api/v1/audit/verify", &manager).await.status, StatusCode::FORBIDDEN);
    let events = app.get("/api/v1/audit?limit=200", &manager).await.body;
    for e in events["items"].as_array().unwrap() {
        assert_ne!(e["actor_email"], "rep3@demo.nexus", "another team's event: {e}");
    }
    // Denials are audited.
    let denied = app.get("/api/v1/audit?action=access.denied&limit=200", &exec).await.body;
    assert!(denied["items"].as_array().unwrap().len() >= 8, "{denied}");
}

#[tokio::test]
async fn executives_create_and_update_customers_and_environments_with_versioning() {
    let app = TestApp::embedded(&[]).await;
    let exec = app.login(EXEC).await;
    let rep_id = app.user_id(REP).await;
    let rep3_id = app.user_id(REP3).await;

    // Every bad field is named at once.
    let a = app
        .call(
            Method::POST,
            "/api/v1/customers",
            Some(&exec),
            Some(json!({"name": "", "slug": "Bad Slug", "owner_id": "nope", "cost_center": "!"})),
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.text);
    let fields: Vec<&str> =
        a.body["error"]["details"].as_array().unwrap().iter().map(|d| d["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["name", "slug", "cost_center", "owner_id"], "{}", a.text);

    let a = app
        .call(
            Method::POST,
            "/api/v1/customers",
            Some(&exec),
            Some(json!({"name": "Vega Robotics", "owner_id": rep_id, "cost_center": "CC-7000"})),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    assert_eq!(a.body["slug"], "vega-robotics");
    let id = a.body["id"].as_str().unwrap().to_string();
    let dup = app
        .call(
            Method::POST,
            "/api/v1/customers",
            Some(&exec),
            Some(json!({"name": "Vega Robotics", "owner_id": rep_id, "cost_center": "CC-7000"})),
        )
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT, "the slug is unique: {}", dup.text);

    let env = json!({"name": "prod", "account_id": "123456789012", "region": "eu-west-1",
                     "role_arn": "arn:aws:iam::123456789012:role/NexusDeployer"});
    let a = app
        .call(Method::POST, &format!("/api/v1/customers/{id}/environments"), Some(&exec), Some(env.clone()))
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    assert_eq!(a.body["connection"], "unchecked");
    let external_id = a.body["external_id"].as_str().unwrap().to_string();
    let a = app
        .call(Method::POST, &format!("/api/v1/customers/{id}/environments"), Some(&exec), Some(env.clone()))
        .await;
    assert_eq!(a.status, StatusCode::CONFLICT, "one prod per customer: {}", a.text);
    let mut bad = env.clone();
    bad["name"] = "qa".into();
    bad["account_id"] = "12345".into();
    bad["role_arn"] = "arn:aws:iam::999999999999:role/X".into();
    let a =
        app.call(Method::POST, &format!("/api/v1/customers/{id}/environments"), Some(&exec), Some(bad)).await;
    let fields: Vec<&str> =
        a.body["error"]["details"].as_array().unwrap().iter().map(|d| d["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["name", "account_id", "role_arn"], "{}", a.text);

    // Optimistic versioning: the second writer with the old revision gets 409 and changes nothing.
    let path = format!("/api/v1/customers/{id}");
    let first = app
        .call(Method::PATCH, &path, Some(&exec), Some(json!({"rev": 1, "name": "Vega Robotics AG"})))
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    assert_eq!(first.body["rev"], 2);
    let stale =
        app.call(Method::PATCH, &path, Some(&exec), Some(json!({"rev": 1, "cost_center": "CC-1"}))).await;
    assert_eq!(stale.status, StatusCode::CONFLICT, "{}", stale.text);
    let now = app.get(&path, &exec).await.body;
    assert_eq!(
        (now["name"].as_str(), now["cost_center"].as_str()),
        (Some("Vega Robotics AG"), Some("CC-7000"))
    );

    let env_path = format!("/api/v1/customers/{id}/environments/prod");
    let a = app
        .call(Method::PATCH, &env_path, Some(&exec), Some(json!({"rev": 1, "region": "eu-central-1"})))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let a =
        app.call(Method::PATCH, &env_path, Some(&exec), Some(json!({"rev": 1, "region": "us-east-1"}))).await;
    assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.text);

    // Moving a customer with deployments to another owner moves their fleet counters too.
    let demo = app.get("/api/v1/customers?limit=200", &exec).await.body;
    let moved =
        demo["items"].as_array().unwrap().iter().find(|c| c["owner_id"] == rep_id.as_str()).unwrap().clone();
    let count =
        app.get(&format!("/api/v1/deployments?customer={}", moved["id"].as_str().unwrap()), &exec).await.body
            ["items"]
            .as_array()
            .unwrap()
            .len() as i64;
    let rep3 = app.login(REP3).await;
    let before = app.get("/api/v1/fleet/summary", &rep3).await.body["total"].as_i64().unwrap();
    let a = app
        .call(
            Method::PATCH,
            &format!("/api/v1/customers/{}", moved["id"].as_str().unwrap()),
            Some(&exec),
            Some(json!({"rev": moved["rev"], "owner_id": rep3_id})),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let after = app.get("/api/v1/fleet/summary", &rep3).await.body["total"].as_i64().unwrap();
    assert_eq!(after, before + count);
    let listed =
        app.get(&format!("/api/v1/deployments?customer={}", moved["id"].as_str().unwrap()), &rep3).await;
    assert_eq!(listed.status, StatusCode::OK);

    // Changes are audited with before and after, and the external id never enters the log.
    let log = app.get("/api/v1/audit?action=environment.&limit=200", &exec).await;
    assert_eq!(log.body["items"].as_array().unwrap().len(), 2, "{}", log.text);
    assert!(log.text.contains("\"before\""), "{}", log.text);
    assert!(!log.text.contains(&external_id), "{}", log.text);
}

#[tokio::test]
async fn the_audit_chain_verifies_exports_and_names_an_edited_record() {
    let app = TestApp::embedded(&[]).await;
    let exec = app.login(EXEC).await;
    for email in [REP, MANAGER] {
        app.login(email).await;
    }
    let report = app.get("/api/v1/audit/verify", &exec).await.body;
    assert_eq!(report["ok"], true, "{report}");
    assert!(report["checked"].as_u64().unwrap() >= 3);
    // A fresh store is keyed from its first record; checkpoints go to a file beside the data.
    assert_eq!(
        (&report["keyed_from"], &report["tail_cut"], &report["anchor"]),
        (&json!(1), &json!(false), &json!("file"))
    );
    assert_eq!(report["planted"], json!([]));

    let csv = app.get("/api/v1/audit/export?format=csv", &exec).await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(csv.headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/csv"));
    assert!(csv.text.starts_with("seq,at,actor_email"), "{}", csv.text);
    assert!(csv.text.contains("auth.login"));
    let json = app.get("/api/v1/audit/export?format=json", &exec).await;
    assert!(json.body.as_array().unwrap().len() >= 3);

    // Edit event 2 directly in the store: verification fails at exactly that record.
    use app::ssr::store::{Cond, Write};
    let store = app.state.repo.store();
    let mut item = store.get("AUDIT", &format!("{:020}", 2)).await.unwrap().unwrap();
    let mut event: Value = serde_json::from_str(&item.data).unwrap();
    event["outcome"] = "failure".into();
    item.data = event.to_string();
    store.transact(vec![Write::put(item, Cond::None)]).await.unwrap();
    let report = app.get("/api/v1/audit/verify", &exec).await.body;
    assert_eq!(report["ok"], false, "{report}");
    assert_eq!(report["first_broken"], 2, "{report}");
}

#[tokio::test]
async fn a_tail_cut_after_the_shutdown_checkpoint_is_reported() {
    let app = TestApp::embedded(&[]).await;
    let exec = app.login(EXEC).await;
    app.login(REP).await;
    // Stopping the server anchors the head.
    app.state.shutdown().await;
    let head = app.get("/api/v1/audit/verify", &exec).await.body["checked"].as_u64().unwrap();
    use app::ssr::store::{Cond, Write};
    let store = app.state.repo.store();
    let previous: Value =
        serde_json::from_str(&store.get("AUDIT", &format!("{:020}", head - 1)).await.unwrap().unwrap().data)
            .unwrap();
    let head_item = store.get("AUDIT", "HEAD").await.unwrap().unwrap();
    let mut moved = head_item.clone();
    moved.data = json!({"seq": head - 1, "hash": previous["hash"]}).to_string();
    moved.rev += 1;
    store
        .transact(vec![
            Write::Delete { pk: "AUDIT".into(), sk: format!("{head:020}"), cond: Cond::None },
            Write::put(moved, Cond::Rev(head_item.rev)),
        ])
        .await
        .unwrap();
    let report = app.get("/api/v1/audit/verify", &exec).await.body;
    assert_eq!((&report["ok"], &report["tail_cut"]), (&json!(false), &json!(true)), "{report}");
    assert_eq!(report["checkpoint"], json!(head), "{report}");
}

#[tokio::test]
async fn state_changing_requests_from_another_origin_are_refused() {
    let app = TestApp::embedded(&[]).await;
    let login = |origin: Option<&'static str>| {
        let mut req = Request::post("/api/v1/auth/login")
            .header(header::HOST, "localhost")
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(o) = origin {
            req = req.header(header::ORIGIN, o);
        }
        req.body(Body::from(json!({"email": REP, "password": DEMO_PASSWORD}).to_string())).unwrap()
    };
    assert_eq!(app.send(login(Some("https://evil.example"))).await.status, StatusCode::FORBIDDEN);
    let ok = app.send(login(Some("http://localhost"))).await;
    assert_eq!(ok.status, StatusCode::OK);
    // A script without cookies (no Origin) may sign in.
    assert_eq!(app.send(login(None)).await.status, StatusCode::OK);
    // A cookie-carrying state change without an Origin is refused.
    let cookie = ok.headers[header::SET_COOKIE].to_str().unwrap().split(';').next().unwrap().to_string();
    let a = app
        .send(
            Request::post("/api/v1/auth/logout")
                .header(header::HOST, "localhost")
                .header(header::COOKIE, &cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.text);
    assert_eq!(a.body["error"]["code"], "bad_origin");
    let a = app
        .send(
            Request::post("/api/v1/auth/logout")
                .header(header::HOST, "localhost")
                .header(header::ORIGIN, "http://localhost")
                .header(header::COOKIE, &cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn security_headers_on_pages_and_api() {
    let app = TestApp::embedded(&[]).await;
    let token = app.login(EXEC).await;
    let a = app.get("/api/v1/capabilities", &token).await;
    assert_eq!(a.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert_eq!(a.headers[header::X_FRAME_OPTIONS], "DENY");
    assert!(a.headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap().contains("frame-ancestors 'none'"));
    assert!(a.headers.get(header::REFERRER_POLICY).is_some());
    assert!(a.headers.get(header::STRICT_TRANSPORT_SECURITY).is_none(), "no HSTS over plain HTTP");
}

/// Bodies above a packet are compressed in the encoding the client prefers (and say `Vary`);
/// tiny ones are sent as they are, where compressing would only cost time.
#[tokio::test]
async fn large_bodies_are_compressed_and_tiny_ones_are_not() {
    let app = TestApp::embedded(&[]).await;
    let get = |path: &str, encoding: &str| {
        Request::get(path).header(header::ACCEPT_ENCODING, encoding).body(Body::empty()).unwrap()
    };
    for encoding in ["br", "gzip"] {
        let a = app.send(get("/api/v1/openapi.json", encoding)).await;
        assert_eq!(a.status, StatusCode::OK);
        assert_eq!(a.headers[header::CONTENT_ENCODING], encoding);
        assert_eq!(a.headers[header::VARY], "accept-encoding");
        assert!(a.body.is_null(), "a compressed body is not JSON as sent");
    }
    let plain = app.send(get("/api/v1/openapi.json", "identity")).await;
    assert!(plain.text.len() > usize::from(app::ssr::http::MIN_COMPRESSED), "{}", plain.text.len());

    let small = app.send(get("/health", "br, gzip")).await;
    assert_eq!(small.status, StatusCode::OK);
    assert!(small.headers.get(header::CONTENT_ENCODING).is_none());
    assert!(small.text.len() < usize::from(app::ssr::http::MIN_COMPRESSED));
    assert_eq!(small.body["status"], "ok");
}

/// 2,100 requests from one client IP: exactly 2,000 pass, the rest are 429 with Retry-After,
/// and another IP is unaffected. (The limit is set explicitly: the other tests switch it off.)
#[tokio::test]
async fn the_rate_limit_is_exact_per_client_ip() {
    let app =
        TestApp::embedded(&[("NEXUS_RATE_LIMIT", "2000/300"), ("NEXUS_TRUSTED_PROXIES", "127.0.0.1")]).await;
    let from = |ip: &str| Request::get("/health").header("x-forwarded-for", ip).body(Body::empty()).unwrap();
    let mut ok = 0;
    let mut limited = 0;
    for _ in 0..2100 {
        let a = app.send(from("203.0.113.7")).await;
        match a.status {
            StatusCode::OK => ok += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                limited += 1;
                let retry: u64 = a.headers[header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
                assert!((1..=300).contains(&retry), "{retry}");
                assert_eq!(a.body["error"]["code"], "rate_limited");
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((ok, limited), (2000, 100));
    assert_eq!(app.send(from("203.0.113.8")).await.status, StatusCode::OK, "another IP is unaffected");
    // Without a trusted proxy in between, X-Forwarded-For is not believed.
    let direct = TestApp::embedded(&[("NEXUS_RATE_LIMIT", "3/300")]).await;
    for ip in ["198.51.100.1", "198.51.100.2", "198.51.100.3"] {
        assert_eq!(direct.send(from(ip)).await.status, StatusCode::OK);
    }
    assert_eq!(direct.send(from("198.51.100.4")).await.status, StatusCode::TOO_MANY_REQUESTS);
}

/// A store written by layout 1 (deployments without the `DEPS` index) is re-indexed at start-up:
/// an Executive's unfiltered list finds every deployment again.
#[tokio::test]
async fn a_layout_1_store_is_migrated_at_start_up() {
    use app::ssr::{
        state::AppState,
        store::{Cond, Item, Query, Write, keys, set_schema_version},
    };
    let dir = std::env::temp_dir().join(unique("nexus-migrate"));
    let dir_s = dir.to_str().unwrap().to_string();
    let config = common::test_config(&[("NEXUS_DATA_DIR", &dir_s), ("NEXUS_SEED_DEMO", "if-empty")]);
    {
        let state = AppState::build(config.clone(), common::leptos_options()).await.unwrap();
        let store = state.repo.store().clone();
        // Rewrite every deployment as layout 1 stored it: no gsi5 entry.
        let mut after = None;
        loop {
            let page =
                store.query(Query::index(keys::GSI5, "DEPS").limit(100).after(after.take())).await.unwrap();
            for item in &page.items {
                let mut old: Item = item.clone();
                old.index[keys::GSI5] = None;
                store.transact(vec![Write::put(old, Cond::Rev(item.rev))]).await.unwrap();
            }
            if page.next.is_none() {
                break;
            }
            // The partition shrinks as items leave it: start again from the top.
        }
        assert!(store.query(Query::index(keys::GSI5, "DEPS").limit(1)).await.unwrap().items.is_empty());
        set_schema_version(&*store, 1).await.unwrap();
    }
    let app = TestApp::build(config, dir).await;
    let token = app.login(EXEC).await;
    let all = app.get("/api/v1/deployments?limit=200", &token).await;
    let second = app
        .get(
            &format!("/api/v1/deployments?limit=200&cursor={}", all.body["next_cursor"].as_str().unwrap()),
            &token,
        )
        .await;
    let n = all.body["items"].as_array().unwrap().len() + second.body["items"].as_array().unwrap().len();
    assert_eq!(n as i64, app.get("/api/v1/fleet/summary", &token).await.body["total"].as_i64().unwrap());
    let schema = app.state.repo.store().get(keys::META, keys::SCHEMA).await.unwrap().unwrap();
    assert_eq!(schema.data, app::ssr::store::SCHEMA_VERSION.to_string());
}

#[tokio::test]
async fn executives_manage_users_roles_teams_passwords_and_locks() {
    let app = TestApp::embedded(&[]).await;
    let exec = app.login(EXEC).await;
    let manager_id = app.user_id(MANAGER).await;

    // Others may not.
    let rep = app.login(REP).await;
    assert_eq!(app.get("/api/v1/users", &rep).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.get("/api/v1/users", &exec).await.body["items"].as_array().unwrap().len(), 7);

    // The password policy names every unmet rule.
    let new = |password: &str| json!({"email": "New.Rep@Demo.Nexus", "name": "Nova Rep", "role": "rep", "manager_id": manager_id, "password": password});
    let a = app.call(Method::POST, "/api/v1/users", Some(&exec), Some(new("short"))).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.text);
    assert_eq!(a.body["error"]["field"], "password");
    let message = a.body["error"]["message"].as_str().unwrap();
    for rule in ["12 characters", "upper-case", "digit", "symbol"] {
        assert!(message.contains(rule), "{message}");
    }
    let a = app.call(Method::POST, "/api/v1/users", Some(&exec), Some(new("Nova-Password-2026!"))).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    assert_eq!(a.body["email"], "new.rep@demo.nexus");
    assert_eq!(a.body["manager_id"], manager_id.as_str());
    let id = a.body["id"].as_str().unwrap().to_string();
    let dup = app.call(Method::POST, "/api/v1/users", Some(&exec), Some(new("Nova-Password-2026!"))).await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    let login = |password: &'static str| {
        app.call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"email": "new.rep@demo.nexus", "password": password})),
        )
    };
    let nova = login("Nova-Password-2026!").await;
    assert_eq!(nova.status, StatusCode::OK);
    let nova_token = nova.body["token"].as_str().unwrap().to_string();
    // The manager's team now includes the new Rep.
    let team = app.get("/api/v1/me", &app.login(MANAGER).await).await.body["team"].clone();
    assert!(team.as_array().unwrap().iter().any(|t| t == id.as_str()), "{team}");

    // Changes carry the revision read.
    let path = format!("/api/v1/users/{id}");
    let a =
        app.call(Method::PATCH, &path, Some(&exec), Some(json!({"rev": 1, "role": "sales_manager"}))).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!((a.body["role"].as_str(), a.body["manager_id"].as_str()), (Some("sales_manager"), None));
    let a = app.call(Method::PATCH, &path, Some(&exec), Some(json!({"rev": 1, "name": "Stale"}))).await;
    assert_eq!(a.status, StatusCode::CONFLICT);

    // Reset: the old password stops working, the new one works.
    let a = app
        .call(
            Method::POST,
            &format!("{path}/password"),
            Some(&exec),
            Some(json!({"password": "Reset-Password-2026!"})),
        )
        .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.text);
    assert_eq!(login("Nova-Password-2026!").await.status, StatusCode::UNAUTHORIZED);
    // A reset ends the sessions opened before it.
    assert_eq!(app.get("/api/v1/me", &nova_token).await.status, StatusCode::UNAUTHORIZED);
    let after_reset = login("Reset-Password-2026!").await;
    assert_eq!(after_reset.status, StatusCode::OK);
    let nova_token = after_reset.body["token"].as_str().unwrap().to_string();

    // Deactivating ends their sessions at once (the reset made revision 3).
    assert_eq!(app.get("/api/v1/me", &nova_token).await.status, StatusCode::OK);
    let a = app.call(Method::PATCH, &path, Some(&exec), Some(json!({"rev": 3, "active": false}))).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(app.get("/api/v1/me", &nova_token).await.status, StatusCode::UNAUTHORIZED);

    // Unlock a locked account.
    for _ in 0..5 {
        app.call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"email": REP3, "password": "Wrong-Password-1!"})),
        )
        .await;
    }
    let rep3 = || {
        app.call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"email": REP3, "password": DEMO_PASSWORD})),
        )
    };
    assert_eq!(rep3().await.status, StatusCode::LOCKED);
    let users = app.get("/api/v1/users?limit=200", &exec).await.body;
    let rep3_id = users["items"].as_array().unwrap().iter().find(|u| u["email"] == REP3).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let a = app
        .call(Method::POST, &format!("/api/v1/users/{rep3_id}/unlock"), Some(&exec), Some(json!({})))
        .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.text);
    assert_eq!(rep3().await.status, StatusCode::OK);

    let log = app.get("/api/v1/audit?action=user.&limit=200", &exec).await;
    let actions: Vec<&str> =
        log.body["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        ["user.unlock", "user.update", "user.password_reset", "user.update", "user.create"],
        "{}",
        log.text
    );
    assert!(
        !log.text.contains("Reset-Password-2026!") && !log.text.contains("password_hash"),
        "{}",
        log.text
    );
}

fn template(version_note: &str) -> String {
    let shipped =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../catalog/lead-scoring/1.1.0.yaml"))
            .unwrap();
    let start = shipped.find("    Changelog: |").unwrap();
    let end = start + shipped[start..].find("\nParameters:").unwrap();
    format!("{}    Changelog: |\n      {version_note}{}", &shipped[..start], &shipped[end..])
}

#[tokio::test]
async fn executives_publish_and_deprecate_versions_and_both_survive_a_restart() {
    let app = TestApp::embedded(&[]).await;
    let exec = app.login(EXEC).await;
    let publish = |token: String, version: &'static str, body: String| {
        let app = &app;
        async move {
            app.call(
                Method::POST,
                "/api/v1/capabilities/lead-scoring/versions",
                Some(&token),
                Some(json!({"version": version, "template": body})),
            )
            .await
        }
    };
    let manager = app.login(MANAGER).await;
    assert_eq!(publish(manager, "1.2.0", template("x")).await.status, StatusCode::FORBIDDEN);
    let a = publish(exec.clone(), "1.2.0", "Resources: {}\n".into()).await;
    assert_eq!(
        (a.status, a.body["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("template")),
        "{}",
        a.text
    );
    assert!(a.text.contains("Metadata.Nexus"), "{}", a.text);
    let a = publish(exec.clone(), "one.two", template("x")).await;
    assert_eq!(a.body["error"]["field"], "version", "{}", a.text);

    let a = publish(exec.clone(), "1.2.0", template("Scores leads in real time.")).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    assert_eq!(a.body["version"], "1.2.0");
    assert!(
        a.body["parameters"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "ScoreRetentionDays")
    );
    assert_eq!(publish(exec.clone(), "1.2.0", template("again")).await.status, StatusCode::CONFLICT);
    let stored = app.dir.join("artifacts/catalog/lead-scoring/1.2.0.yaml");
    assert!(std::fs::read_to_string(&stored).unwrap().contains("Scores leads in real time."));

    let a = app
        .call(
            Method::POST,
            "/api/v1/capabilities/lead-scoring/versions/1.0.0/deprecate",
            Some(&exec),
            Some(json!({})),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.body["deprecated"], true);
    let a = app
        .call(
            Method::POST,
            "/api/v1/capabilities/lead-scoring/versions/9.9.9/deprecate",
            Some(&exec),
            Some(json!({})),
        )
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    let running = app.get("/api/v1/deployments?capability=lead-scoring&limit=200", &exec).await.body;
    for d in running["items"].as_array().unwrap() {
        assert_eq!(d["version_deprecated"], d["version"] == "1.0.0", "{d}");
    }

    // Restart on the same data: the published version and the deprecation are still there.
    let config = app.state.config.as_ref().clone();
    let dir = app.keep();
    let app = TestApp::build(config, dir).await;
    let exec = app.login(EXEC).await;
    let cap = app.get("/api/v1/capabilities/lead-scoring", &exec).await.body;
    assert_eq!(cap["latest"], "1.2.0", "{cap}");
    let releases = cap["releases"].as_array().unwrap();
    assert_eq!(releases[0]["version"], "1.2.0");
    assert!(releases.iter().any(|r| r["version"] == "1.0.0" && r["deprecated"] == true), "{cap}");
    let log = app.get("/api/v1/audit?action=catalog.&limit=10", &exec).await;
    let actions: Vec<&str> =
        log.body["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["catalog.deprecate", "catalog.publish"]);
}

#[tokio::test]
async fn published_templates_go_to_the_artifacts_bucket_on_s3() {
    common::require_emulator();
    let bucket = unique("nexus-art");
    let s3 = app::ssr::artifacts::S3Artifacts::new(&app::ssr::aws::load_sdk_config().await, bucket.clone());
    s3.client().create_bucket().bucket(&bucket).send().await.expect("create the bucket on the emulator");
    let app = TestApp::embedded(&[("NEXUS_ARTIFACTS_BUCKET", &bucket)]).await;
    let exec = app.login(EXEC).await;
    let body = template("Published to S3.");
    let a = app
        .call(
            Method::POST,
            "/api/v1/capabilities/lead-scoring/versions",
            Some(&exec),
            Some(json!({"version": "1.3.0", "template": body})),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    let object =
        s3.client().get_object().bucket(&bucket).key("catalog/lead-scoring/1.3.0.yaml").send().await.unwrap();
    let stored = object.body.collect().await.unwrap().into_bytes();
    assert_eq!(String::from_utf8(stored.to_vec()).unwrap(), body);
    assert!(!app.dir.join("artifacts").exists(), "nothing written locally");
}

/// Production reads the signing key from Secrets Manager (here: the emulator's).
#[tokio::test]
async fn the_signing_key_comes_from_secrets_manager() {
    common::require_emulator();
    let sdk = app::ssr::aws::load_sdk_config().await;
    let client = aws_sdk_secretsmanager::Client::new(&sdk);
    let key = format!("fake-secrets-manager-signing-key-{}", unique("k"));
    let created = client.create_secret().name(unique("nexus-jwt")).secret_string(&key).send().await.unwrap();
    let arn = created.arn().unwrap().to_string();

    let app = TestApp::embedded(&[("NEXUS_JWT_SECRET_ARN", &arn)]).await;
    let token = app.login(REP).await;
    let header = token.split('.').next().unwrap();
    use base64::Engine;
    let header: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).unwrap())
            .unwrap();
    let expected = app::ssr::auth::tokens::TokenSigner::new(key.as_bytes());
    assert_eq!(header["kid"], expected.kid(), "signed with the secret's key, not NEXUS_JWT_SECRET");
    assert!(expected.verify(&token, app::ssr::clock::now()).is_ok());

    // A secret that cannot be read stops start-up, naming the variable (never the value).
    let missing = "arn:aws:secretsmanager:us-east-1:000000000000:secret:nexus-missing-abcdef";
    let dir = std::env::temp_dir().join(unique("nexus-jwt-missing"));
    let config =
        common::test_config(&[("NEXUS_DATA_DIR", dir.to_str().unwrap()), ("NEXUS_JWT_SECRET_ARN", missing)]);
    let error = match app::ssr::state::AppState::build(config, common::leptos_options()).await {
        Ok(_) => panic!("start-up must fail without its signing key"),
        Err(e) => e.to_string(),
    };
    assert!(error.contains("NEXUS_JWT_SECRET_ARN"), "{error}");
    let _ = std::fs::remove_dir_all(dir);
}

/// A store that is down answers 503 (and loses nothing: nothing was accepted); `/health` names
/// the failing check.
#[tokio::test]
async fn a_store_that_is_down_answers_503() {
    common::require_emulator();
    // A DynamoDB table that does not exist: start-up tolerates it, every call fails.
    let table = unique("nexus-missing");
    let config = common::test_config(&[("NEXUS_STORE", "dynamodb"), ("NEXUS_TABLE", &table)]);
    let app = TestApp::build(config, std::env::temp_dir().join(unique("nexus-down"))).await;
    let a = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"email": REP, "password": DEMO_PASSWORD})),
        )
        .await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{}", a.text);
    assert_eq!(a.body["error"]["code"], "unavailable");
    assert!(!a.text.contains(&table), "internal details stay in the logs: {}", a.text);
    let health = app.call(Method::GET, "/health", None, None).await;
    assert_eq!(health.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(health.body["checks"]["store"]["status"], "fail");
}

/// Guesses sent all at once get no more verifications than the lockout allows: each attempt is
/// counted (conditionally) before its password is checked.
#[tokio::test]
async fn parallel_guesses_do_not_get_around_the_lockout() {
    let app = TestApp::embedded(&[]).await;
    let guesses = (0..20).map(|i| {
        app.call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"email": REP2, "password": format!("Wrong-Password-{i}!")})),
        )
    });
    let answers = futures::future::join_all(guesses).await;
    let unauthorized = answers.iter().filter(|a| a.status == StatusCode::UNAUTHORIZED).count();
    let locked = answers.iter().filter(|a| a.status == StatusCode::LOCKED).count();
    assert_eq!((unauthorized, locked), (4, 16), "{:?}", answers.iter().map(|a| a.status).collect::<Vec<_>>());
    let right = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"email": REP2, "password": DEMO_PASSWORD})),
        )
        .await;
    assert_eq!(right.status, StatusCode::LOCKED, "the right password does not get through the lock");
}

#[tokio::test]
async fn hot_reads_are_kept_per_user_until_a_write_or_a_catalog_change() {
    let app = TestApp::embedded(&[]).await;
    let (exec, rep, rep2) = (app.login(EXEC).await, app.login(REP).await, app.login(REP2).await);
    let customers = app.get("/api/v1/customers", &rep).await;
    let customer = customers.body["items"][0]["id"].as_str().unwrap().to_string();
    let list = format!("/api/v1/deployments?customer={customer}");
    let detail = format!("/api/v1/customers/{customer}");

    let first = app.get(&list, &rep).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    let before = app.get(&detail, &rep).await;
    let queries = app.state.repo.store().calls().query;
    let again = app.get(&list, &rep).await;
    assert_eq!(again.text, first.text);
    assert_eq!(app.state.repo.store().calls().query, queries, "the second read was answered from memory");
    assert!(app.state.read_cache.len() >= 3, "customers, deployments and detail kept");

    // Another user asking the very same URL gets their own answer: not the Rep's customer.
    let other = app.get(&list, &rep2).await;
    assert_eq!(other.status, StatusCode::NOT_FOUND, "{}", other.text);

    // A write anywhere makes the kept answers stale: the next read shows it.
    let rename = app
        .call(
            Method::PATCH,
            &detail,
            Some(&exec),
            Some(json!({"rev": before.body["rev"], "name": "Renamed While Cached"})),
        )
        .await;
    assert_eq!(rename.status, StatusCode::OK, "{}", rename.text);
    let after = app.get(&detail, &rep).await;
    assert_eq!(after.body["name"], "Renamed While Cached", "{}", after.text);
    let listed = app.get("/api/v1/customers", &rep).await;
    let renamed =
        listed.body["items"].as_array().unwrap().iter().find(|c| c["id"] == customer.as_str()).unwrap();
    assert_eq!(renamed["name"], "Renamed While Cached", "{}", listed.text);

    // So does a catalog change that writes nothing to the store (the in-memory catalog alone).
    let kept = app.get(&list, &rep).await;
    let deployment = &kept.body["items"][0];
    assert_eq!(deployment["version_deprecated"], false, "{}", kept.text);
    let (slug, version) =
        (deployment["capability"].as_str().unwrap(), deployment["version"].as_str().unwrap());
    let queries = app.state.repo.store().calls().query;
    app.state.catalog.write().unwrap().set_deprecated(slug, &version.parse().unwrap()).unwrap();
    let flagged = app.get(&list, &rep).await;
    assert!(app.state.repo.store().calls().query > queries, "computed again");
    let id = &deployment["id"];
    let same = flagged.body["items"].as_array().unwrap().iter().find(|d| &d["id"] == id).unwrap();
    assert_eq!(same["version_deprecated"], true, "{}", flagged.text);
}

#[tokio::test]
async fn the_read_cache_can_be_turned_off() {
    let app = TestApp::embedded(&[("NEXUS_READ_CACHE_MB", "0")]).await;
    let token = app.login(EXEC).await;
    let first = app.get("/api/v1/fleet/summary", &token).await;
    let queries = app.state.repo.store().calls().query;
    let second = app.get("/api/v1/fleet/summary", &token).await;
    assert_eq!(second.text, first.text);
    assert!(app.state.repo.store().calls().query > queries, "read again from the store");
    assert!(app.state.read_cache.is_empty());
}

#[tokio::test]
async fn the_catalog_says_which_customers_run_which_version() {
    let app = TestApp::embedded(&[]).await;
    let (exec, rep) = (app.login(EXEC).await, app.login(REP).await);
    for (token, who) in [(&rep, "rep"), (&exec, "executive")] {
        let usage = app.get("/api/v1/capabilities/lead-scoring/usage", token).await;
        assert_eq!(usage.status, StatusCode::OK, "{}", usage.text);
        // Every deployment the caller may see that still runs, counted once under its version.
        let list = app.get("/api/v1/deployments?capability=lead-scoring&limit=200", token).await;
        let running: Vec<&Value> =
            list.body["items"].as_array().unwrap().iter().filter(|d| d["status"] != "deleted").collect();
        let versions = usage.body["versions"].as_array().unwrap();
        let counted: u64 = versions.iter().map(|v| v["deployments"].as_u64().unwrap()).sum();
        assert_eq!(counted as usize, running.len(), "{who}: {}", usage.text);
        assert!(counted > 0, "{who}: the demo runs lead scoring");
        for v in versions {
            let at: HashSet<&str> = running
                .iter()
                .filter(|d| d["version"] == v["version"])
                .map(|d| d["customer_id"].as_str().unwrap())
                .collect();
            let shown: HashSet<&str> =
                v["customers"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
            assert_eq!(shown, at, "{who}: customers of v{}", v["version"]);
            assert!(
                v["customers"].as_array().unwrap().iter().all(|c| !c["name"].as_str().unwrap().is_empty())
            );
        }
        assert_eq!(usage.body["truncated"], false);
    }
    // Newest version first.
    let usage = app.get("/api/v1/capabilities/lead-scoring/usage", &exec).await;
    let shown: Vec<app::domain::semver::Version> = usage.body["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(shown.windows(2).all(|w| w[0] > w[1]), "{shown:?}");
    let unknown = app.get("/api/v1/capabilities/no-such-thing/usage", &exec).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.text);
}

#[tokio::test]
async fn the_audit_log_is_searched_by_words() {
    let app = TestApp::embedded(&[]).await;
    let exec = app.login(EXEC).await;
    app.login(REP).await;
    let found = app.get("/api/v1/audit?q=REP%40demo.nexus%20login&limit=200", &exec).await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.text);
    let items = found.body["items"].as_array().unwrap();
    assert!(!items.is_empty(), "the Rep's sign-in: {}", found.text);
    for e in items {
        let text =
            format!("{} {} {} {}", e["actor_email"], e["action"], e["target"], e["outcome"]).to_lowercase();
        assert!(text.contains("rep@demo.nexus") && text.contains("login"), "{text}");
    }
    let csv = app.get("/api/v1/audit/export?q=rep%40demo.nexus%20login", &exec).await;
    assert_eq!(csv.status, StatusCode::OK);
    assert_eq!(
        csv.text.trim().lines().count(),
        items.len() + 1,
        "the export has the same events: {}",
        csv.text
    );
    let none = app.get("/api/v1/audit?q=rep%40demo.nexus%20no-such-word", &exec).await;
    assert_eq!(none.body["items"].as_array().unwrap().len(), 0, "{}", none.text);
}
