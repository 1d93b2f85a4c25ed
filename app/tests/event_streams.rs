//! The live event stream outlives nothing (issue 20 §7): it ends within seconds of a sign-out,
//! a deactivation or a role change, ends at its lifetime cap, and one user holds at most ten.

mod common;

use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use common::{LiveStream, SseEvent, TestApp};
use serde_json::json;

const EXEC: &str = "exec@demo.nexus";
const MANAGER: &str = "manager@demo.nexus";
const REP: &str = "rep@demo.nexus";
/// The session is checked every 2 s and the store polled every 0.5 s; this leaves room for a
/// slow machine without letting a stream that never ends pass.
const SOON: Duration = Duration::from_secs(8);

/// A demo operation of the Rep's customers that waits for approval (so it never ends by itself).
async fn waiting_operation(app: &TestApp) -> String {
    let rep = app.login(REP).await;
    let d = app.get("/api/v1/deployments?status=pending&limit=1", &rep).await;
    assert_eq!(d.status, StatusCode::OK, "{}", d.text);
    let op = d.body["items"][0]["last_operation_id"].as_str().expect("the demo has a waiting request");
    let o = app.get(&format!("/api/v1/operations/{op}"), &rep).await;
    assert_eq!(o.body["state"], "awaiting_approval", "{}", o.text);
    op.to_string()
}

async fn open(app: &TestApp, op: &str, token: &str) -> LiveStream {
    match app.open_stream(&format!("/api/v1/operations/{op}/events/stream"), token, None).await {
        Ok(s) => s,
        Err(a) => panic!("stream refused: {} {}", a.status, a.text),
    }
}

/// Opens a stream and reads its first event (the operation as it is), so it is known to be live.
async fn open_live(app: &TestApp, op: &str, token: &str) -> LiveStream {
    let mut s = open(app, op, token).await;
    let first = s.next(SOON).await.expect("a first event");
    assert_eq!(first.event, "operation", "{first:?}");
    s
}

fn end_reason(events: &[SseEvent]) -> Option<&str> {
    let last = events.last()?;
    (last.event == "end").then(|| last.data["reason"].as_str()).flatten()
}

/// A new Executive of its own (a user the test may deactivate); answers (id, revision, token).
async fn new_executive(app: &TestApp, exec: &str) -> (String, u64, String) {
    let email = format!("{}@demo.nexus", common::unique("x").replace('-', ""));
    let password = "Fake-Temp-Password-2026!";
    let u = app
        .call(
            Method::POST,
            "/api/v1/users",
            Some(exec),
            Some(
                json!({"email": email, "name": "Tess Temporary", "role": "executive", "password": password}),
            ),
        )
        .await;
    assert_eq!(u.status, StatusCode::CREATED, "{}", u.text);
    let a = app
        .call(Method::POST, "/api/v1/auth/login", None, Some(json!({"email": email, "password": password})))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let id = u.body["id"].as_str().unwrap().to_string();
    (id, u.body["rev"].as_u64().unwrap(), a.body["token"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn a_stream_ends_within_seconds_of_sign_out_deactivation_or_role_change() {
    let app = TestApp::embedded(&[]).await;
    let op = waiting_operation(&app).await;
    let exec = app.login(EXEC).await;

    // Untouched, a stream on a waiting request stays open.
    let mut calm = open_live(&app, &op, &exec).await;
    assert_eq!(calm.next(Duration::from_secs(3)).await, None, "nothing to say, and still open");

    // Sign-out.
    let rep = app.login(REP).await;
    let mut s = open_live(&app, &op, &rep).await;
    let out = app.call(Method::POST, "/api/v1/auth/logout", Some(&rep), None).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT, "{}", out.text);
    let t = Instant::now();
    let rest = s.read_to_end(SOON).await;
    assert_eq!(end_reason(&rest), Some("session"), "{rest:?}");
    eprintln!("sign-out ended the stream in {:?}", t.elapsed());

    // Deactivation.
    let (temp_id, rev, temp) = new_executive(&app, &exec).await;
    let mut s = open_live(&app, &op, &temp).await;
    let path = format!("/api/v1/users/{temp_id}");
    let a = app.call(Method::PATCH, &path, Some(&exec), Some(json!({"rev": rev, "active": false}))).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let rest = s.read_to_end(SOON).await;
    assert_eq!(end_reason(&rest), Some("session"), "{rest:?}");

    // A role change, even to a role that sees more: the stream was opened under the old one.
    let manager = app.login(MANAGER).await;
    let me = app.get("/api/v1/me", &manager).await.body["user"].clone();
    let (manager_id, rev) = (me["id"].as_str().unwrap().to_string(), me["rev"].as_u64().unwrap());
    let mut s = open_live(&app, &op, &manager).await;
    let a = app
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{manager_id}"),
            Some(&exec),
            Some(json!({"rev": rev, "role": "executive"})),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let rest = s.read_to_end(SOON).await;
    assert_eq!(end_reason(&rest), Some("session"), "{rest:?}");

    // None of that touched the Executive's stream.
    assert_eq!(calm.next(Duration::from_secs(1)).await, None);
}

#[tokio::test]
async fn an_eleventh_stream_is_refused_and_a_closed_one_frees_its_place() {
    let app = TestApp::embedded(&[]).await;
    let op = waiting_operation(&app).await;
    let rep = app.login(REP).await;
    let mut held = Vec::new();
    for _ in 0..10 {
        held.push(open(&app, &op, &rep).await);
    }
    let path = format!("/api/v1/operations/{op}/events/stream");
    let Err(refused) = app.open_stream(&path, &rep, None).await else { panic!("an 11th stream opened") };
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS, "{}", refused.text);
    assert_eq!(refused.body["error"]["code"], "too_many_streams", "{}", refused.text);
    assert!(refused.headers.contains_key("retry-after"));

    // The same user in another session counts too: the cap is per user.
    let rep_again = app.login(REP).await;
    assert!(app.open_stream(&path, &rep_again, None).await.is_err());
    // Someone else is not affected.
    let exec = app.login(EXEC).await;
    let _exec_stream = open(&app, &op, &exec).await;

    // A closed stream (the tab went away) frees its place at once.
    drop(held.pop());
    let _again = open(&app, &op, &rep).await;
    assert!(app.open_stream(&path, &rep, None).await.is_err(), "ten again");
}

#[tokio::test]
async fn a_stream_ends_at_its_lifetime_cap() {
    let app = TestApp::embedded(&[("NEXUS_EVENT_STREAM_MAX_SECONDS", "1")]).await;
    let op = waiting_operation(&app).await;
    let exec = app.login(EXEC).await;
    let mut s = open_live(&app, &op, &exec).await;
    let rest = s.read_to_end(SOON).await;
    assert_eq!(end_reason(&rest), Some("lifetime"), "{rest:?}");
    // Its place is free again: the next one opens.
    let _next = open_live(&app, &op, &exec).await;
}
