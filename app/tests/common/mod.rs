//! Helpers the integration tests share.

// Each test binary uses its own part of this module.
#![allow(dead_code)]

use std::time::{SystemTime, UNIX_EPOCH};

/// A name no other test (or earlier run) uses: tables, directories. The counter keeps two
/// tests of one process apart even when they read the clock at the same nanosecond.
pub fn unique(prefix: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    format!("{prefix}-{}-{n}-{nanos}", std::process::id())
}

/// Integration tests need the AWS emulator the test command starts; say so instead of skipping.
pub fn require_emulator() {
    assert!(
        std::env::var("AWS_ENDPOINT_URL").is_ok(),
        "AWS_ENDPOINT_URL is not set: run these tests through `make test`, which starts the AWS emulator"
    );
}

use std::net::SocketAddr;

use app::ssr::{
    config::Config,
    http::router,
    state::{Adapters, AppState},
};
use axum::{
    Router,
    body::{Body, to_bytes},
    extract::connect_info::MockConnectInfo,
    http::{HeaderMap, Method, Request, StatusCode, header},
};
use leptos::config::LeptosOptions;
use serde_json::Value;
use tower::ServiceExt;

pub const DEMO_PASSWORD: &str = "Fake-Demo-Password-2026!";

/// Configuration for a test server: the repository's catalog, a fixed fake signing key, and
/// whatever the test adds.
pub fn test_config(vars: &[(&str, &str)]) -> Config {
    let catalog = concat!(env!("CARGO_MANIFEST_DIR"), "/../catalog");
    let base = [
        ("NEXUS_CATALOG_DIR", catalog),
        ("NEXUS_JWT_SECRET", "fake-test-signing-key-0123456789abcdef"),
        ("NEXUS_DEMO_PASSWORD", DEMO_PASSWORD),
        // Tests that drive operations turn the lifecycle worker on; the others restart apps on
        // the same store, which a running worker would still hold.
        ("NEXUS_WORKER", "off"),
        // Tests break a dependency and expect the very next /health to say so.
        ("NEXUS_HEALTH_REUSE_MS", "0"),
        // Most tests sign the demo Executive in many times; the tests of the policy (mfa.rs)
        // turn the requirement back on.
        ("NEXUS_MFA_REQUIRED_ROLES", "none"),
    ];
    let mut all: Vec<(String, String)> = base.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    all.extend(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Config::from_vars(all).unwrap()
}

pub fn leptos_options() -> LeptosOptions {
    LeptosOptions::builder().output_name("nexus-toolkit").build()
}

/// The whole router over a real store, requests sent in-process from 127.0.0.1.
pub struct TestApp {
    pub state: AppState,
    pub router: Router,
    pub dir: std::path::PathBuf,
}

/// One answer.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl TestApp {
    /// An embedded store in a fresh directory with the demo data, rate limits off unless the
    /// test sets them.
    pub async fn embedded(vars: &[(&str, &str)]) -> TestApp {
        Self::embedded_wrapped(vars, |a| a).await
    }

    /// `embedded`, over the real adapters as `wrap` changes them (faults injected around them).
    pub async fn embedded_wrapped(vars: &[(&str, &str)], wrap: impl FnOnce(Adapters) -> Adapters) -> TestApp {
        let dir = std::env::temp_dir().join(unique("nexus-api"));
        let dir_s = dir.to_str().unwrap().to_string();
        let mut all = vec![
            ("NEXUS_DATA_DIR", dir_s.as_str()),
            ("NEXUS_SEED_DEMO", "if-empty"),
            ("NEXUS_RATE_LIMIT", "off"),
            ("NEXUS_LOGIN_RATE_LIMIT", "off"),
        ];
        all.extend_from_slice(vars);
        Self::build_wrapped(test_config(&all), dir, wrap).await
    }

    /// A DynamoDB table of its own on the emulator, with the demo data (and `vars`, as
    /// `embedded`).
    pub async fn dynamodb(table: &str, vars: &[(&str, &str)]) -> TestApp {
        Self::dynamodb_wrapped(table, vars, |a| a).await
    }

    /// `dynamodb`, over the real adapters as `wrap` changes them.
    pub async fn dynamodb_wrapped(
        table: &str,
        vars: &[(&str, &str)],
        wrap: impl FnOnce(Adapters) -> Adapters,
    ) -> TestApp {
        require_emulator();
        let mut all = vec![
            ("NEXUS_STORE", "dynamodb"),
            ("NEXUS_TABLE", table),
            ("NEXUS_CREATE_TABLE", "true"),
            ("NEXUS_SEED_DEMO", "if-empty"),
            ("NEXUS_RATE_LIMIT", "off"),
            ("NEXUS_LOGIN_RATE_LIMIT", "off"),
        ];
        all.extend_from_slice(vars);
        Self::build_wrapped(test_config(&all), std::env::temp_dir().join(unique("nexus-api-ddb")), wrap).await
    }

    pub async fn build(config: Config, dir: std::path::PathBuf) -> TestApp {
        Self::build_wrapped(config, dir, |a| a).await
    }

    /// The app over the real adapters the configuration names, as `wrap` changes them.
    pub async fn build_wrapped(
        config: Config,
        dir: std::path::PathBuf,
        wrap: impl FnOnce(Adapters) -> Adapters,
    ) -> TestApp {
        let adapters = wrap(Adapters::from_config(&config).await.unwrap());
        let state = AppState::build_with(config, leptos_options(), adapters).await.unwrap();
        let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let router = router(state.clone()).layer(MockConnectInfo(peer));
        TestApp { state, router, dir }
    }

    pub async fn send(&self, req: Request<Body>) -> Answer {
        let response = self.router.clone().oneshot(req).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = to_bytes(response.into_body(), 64 << 20).await.unwrap();
        let text = String::from_utf8_lossy(&bytes).to_string();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer { status, headers, body, text }
    }

    /// A GET as the browser sends it (pages, server functions): the session in its cookie.
    pub async fn get_as_browser(&self, path: &str, token: &str) -> Answer {
        let req = Request::get(path).header(header::COOKIE, format!("nexus_session={token}"));
        self.send(req.body(Body::empty()).unwrap()).await
    }

    /// A request with an optional bearer token and JSON body (Origin set like a browser's).
    pub async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Answer {
        let mut req = Request::builder().method(method).uri(path).header(header::HOST, "localhost");
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let req = match body {
            Some(b) => req
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::ORIGIN, self.origin())
                .body(Body::from(b.to_string()))
                .unwrap(),
            None => req.body(Body::empty()).unwrap(),
        };
        self.send(req).await
    }

    /// The Origin a browser on the toolkit's pages sends: the public URL when one is set.
    pub fn origin(&self) -> String {
        self.state.config.public_url.clone().unwrap_or_else(|| "http://localhost".to_string())
    }

    pub async fn get(&self, path: &str, token: &str) -> Answer {
        self.call(Method::GET, path, Some(token), None).await
    }

    /// A demo user's id (signs them in and asks `/api/v1/me`).
    pub async fn user_id(&self, email: &str) -> String {
        let me = self.get("/api/v1/me", &self.login(email).await).await;
        assert_eq!(me.status, StatusCode::OK, "{email}: {}", me.text);
        me.body["user"]["id"].as_str().unwrap().to_string()
    }

    /// Signs in a demo user; returns the bearer token.
    pub async fn login(&self, email: &str) -> String {
        let a = self
            .call(
                Method::POST,
                "/api/v1/auth/login",
                None,
                Some(serde_json::json!({"email": email, "password": DEMO_PASSWORD})),
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "login {email}: {}", a.text);
        a.body["token"].as_str().unwrap().to_string()
    }
}

impl TestApp {
    /// Stops the app but keeps its data directory (to start another app on it).
    pub fn keep(mut self) -> std::path::PathBuf {
        std::mem::take(&mut self.dir)
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if !self.dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// One server-sent event as a test reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct SseEvent {
    pub event: String,
    pub id: Option<String>,
    pub data: Value,
}

/// An open live event stream, read frame by frame.
pub struct LiveStream {
    body: Body,
    pending: String,
}

impl TestApp {
    /// Opens `GET path` as a browser's EventSource would (optionally resuming after
    /// `last_event_id`): the stream when it answers 200, else the error answer.
    pub async fn open_stream(
        &self,
        path: &str,
        token: &str,
        last_event_id: Option<&str>,
    ) -> Result<LiveStream, Answer> {
        let mut req = Request::get(path)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::ACCEPT, "text/event-stream");
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id);
        }
        let response = self.router.clone().oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
        let status = response.status();
        if status != StatusCode::OK {
            let headers = response.headers().clone();
            let bytes = to_bytes(response.into_body(), 1 << 20).await.unwrap();
            let text = String::from_utf8_lossy(&bytes).to_string();
            let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            return Err(Answer { status, headers, body, text });
        }
        Ok(LiveStream { body: response.into_body(), pending: String::new() })
    }
}

impl LiveStream {
    /// The next event (comments such as keep-alives skipped); `None` when the stream has ended
    /// or `within` passed first.
    pub async fn next(&mut self, within: std::time::Duration) -> Option<SseEvent> {
        use http_body_util::BodyExt;
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(end) = self.pending.find("\n\n") {
                let block: String = self.pending.drain(..end + 2).collect();
                let (mut event, mut id, mut data) = ("message".to_string(), None, String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("id:") {
                        id = Some(v.trim().to_string());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if data.is_empty() && id.is_none() && event == "message" {
                    continue; // a comment (keep-alive)
                }
                let data = serde_json::from_str(&data).unwrap_or(Value::String(data));
                return Some(SseEvent { event, id, data });
            }
            let frame = tokio::time::timeout_at(deadline, self.body.frame()).await.ok()??.ok()?;
            if let Ok(bytes) = frame.into_data() {
                self.pending.push_str(&String::from_utf8_lossy(&bytes));
            }
        }
    }

    /// Every event until the stream ends; panics when it is still open after `within`.
    pub async fn read_to_end(&mut self, within: std::time::Duration) -> Vec<SseEvent> {
        let deadline = tokio::time::Instant::now() + within;
        let mut all = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Some(e) => all.push(e),
                None => {
                    assert!(tokio::time::Instant::now() < deadline, "still open after {within:?}: {all:?}");
                    return all;
                }
            }
        }
    }
}
