//! Real server processes on one DynamoDB table of the emulator, and plain HTTP to them: what
//! the multi-process tests (replicas, kill -9 and restart) share.

#![allow(dead_code)]

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::{Value, json};

pub const JWT: &str = "fake-test-signing-key-0123456789abcdef";
pub const PARAMETER_KEY: &str = "fake-parameter-key-0123456789abcdef";
pub const PASSWORD: &str = "Fake-Demo-Password-2026!";

pub fn unique(prefix: &str) -> String {
    let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{prefix}-{}-{n}", std::process::id())
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub struct Server {
    pub child: Child,
    pub port: u16,
    log: PathBuf,
}

impl Server {
    pub fn start(table: &str, extra: &[(&str, &str)]) -> Server {
        assert!(
            std::env::var("AWS_ENDPOINT_URL").is_ok(),
            "run through `make test`: it starts the AWS emulator"
        );
        let port = free_port();
        let data = std::env::temp_dir().join(unique("nexus-proc"));
        let log = std::env::temp_dir().join(unique("nexus-proc-log"));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_nexus-toolkit"));
        cmd.env("NEXUS_STORE", "dynamodb")
            .env("NEXUS_TABLE", table)
            .env("NEXUS_CREATE_TABLE", "true")
            .env("NEXUS_SEED_DEMO", "if-empty")
            .env("NEXUS_DEMO_PASSWORD", PASSWORD)
            .env("NEXUS_JWT_SECRET", JWT)
            .env("NEXUS_PARAMETER_KEY", PARAMETER_KEY)
            .env("NEXUS_RATE_LIMIT", "off")
            .env("NEXUS_LOGIN_RATE_LIMIT", "off")
            // The Executive's prod deploys here run without a second Executive.
            .env("NEXUS_PROD_FOUR_EYES", "off")
            .env("NEXUS_MFA_REQUIRED_ROLES", "none")
            .env("NEXUS_WORKER_POLL_MS", "100")
            .env("NEXUS_STACK_POLL_MS", "100")
            .env("NEXUS_LEASE_SECONDS", "2")
            .env("NEXUS_DATA_DIR", &data)
            .env("NEXUS_CATALOG_DIR", concat!(env!("CARGO_MANIFEST_DIR"), "/../catalog"))
            .env("LEPTOS_SITE_ADDR", format!("127.0.0.1:{port}"))
            .env("LEPTOS_SITE_ROOT", &data)
            .env("LEPTOS_OUTPUT_NAME", "nexus-toolkit")
            .env("NEXUS_LOG_FORMAT", "text")
            .env_remove("NEXUS_TEST_CRASH_AT")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let server = Server { child: cmd.spawn().expect("the server binary starts"), port, log };
        let started = Instant::now();
        while call(port, "GET", "/health", None, None).map(|(s, _)| s) != Some(200) {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the server did not start: {}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
        call(self.port, method, path, token, body)
            .unwrap_or_else(|| panic!("{method} {path} got no answer: {}", self.log()))
    }

    pub fn login(&self) -> String {
        let (s, b) = self.call(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(json!({"email": "exec@demo.nexus", "password": PASSWORD})),
        );
        assert_eq!(s, 200, "{b}");
        b["token"].as_str().unwrap().to_string()
    }

    /// A counter from `/metrics`.
    pub fn changes(&self, operation: &str) -> u64 {
        let text = raw(self.port, "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .unwrap_or_default();
        let needle = format!("nexus_aws_changes_total{{operation=\"{operation}\"}} ");
        text.lines().find_map(|l| l.strip_prefix(&needle)).map(|n| n.trim().parse().unwrap()).unwrap_or(0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn raw(port: u16, request: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    s.write_all(request.as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// One HTTP/1.1 request (Connection: close); the status and the JSON body.
pub fn call(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Option<(u16, Value)> {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nOrigin: http://localhost\r\n"
    );
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    if !body.is_empty() {
        req.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    req.push_str(&body);
    let out = raw(port, &req)?;
    let status: u16 = out.split_whitespace().nth(1)?.parse().ok()?;
    let (head, rest) = out.split_once("\r\n\r\n")?;
    let text = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    Some((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

pub fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
    out
}

/// Customers owned by the demo Rep, with dev/staging/prod in one fresh account each.
pub fn environments(server: &Server, token: &str, customers: usize) -> Vec<(String, &'static str)> {
    let (_, users) = server.call("GET", "/api/v1/users?limit=200", Some(token), None);
    let rep =
        users["items"].as_array().unwrap().iter().find(|u| u["email"] == "rep@demo.nexus").unwrap()["id"]
            .clone();
    let mut envs = Vec::new();
    for i in 0..customers {
        let slug = format!(
            "p{}{i}",
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
                % 1_000_000_000
        );
        let (s, c) = server.call(
            "POST",
            "/api/v1/customers",
            Some(token),
            Some(
                json!({"name": format!("Proc {slug}"), "slug": slug, "owner_id": rep, "cost_center": "CC-7"}),
            ),
        );
        assert_eq!(s, 201, "{c}");
        let account = format!(
            "{:012}",
            500_000_000_000u64
                + (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
                    % 99_999_999_999) as u64
        );
        for name in ["dev", "staging", "prod"] {
            let (s, e) = server.call(
                "POST",
                &format!("/api/v1/customers/{}/environments", c["id"].as_str().unwrap()),
                Some(token),
                Some(json!({"name": name, "account_id": account, "region": "us-east-1",
                    "role_arn": format!("arn:aws:iam::{account}:role/NexusDeploymentRole")})),
            );
            assert_eq!(s, 201, "{e}");
            envs.push((e["id"].as_str().unwrap().to_string(), name));
        }
    }
    envs
}

pub fn deploy(server: &Server, token: &str, env: &(String, &str), capability: &str) -> String {
    let version = match capability {
        "sales-forecasting" => "2.0.0",
        "customer-360" => "1.2.0",
        _ => "1.1.0",
    };
    deploy_version(server, token, env, capability, version)
}

/// Deploys `version` of `capability` into `env` (auto-executed); the operation's id.
pub fn deploy_version(
    server: &Server,
    token: &str,
    (env, env_name): &(String, &str),
    capability: &str,
    version: &str,
) -> String {
    let mut parameters = json!({"Environment": env_name});
    if capability == "customer-360" {
        // NoEcho: stored encrypted, handed to CloudFormation only.
        parameters["CrmApiToken"] = json!("fake-crm-token-0123456789");
    }
    if capability == "document-intelligence" {
        // ministack checks a CommaDelimitedList's AllowedValues against the whole string (AWS
        // checks each item): one item passes both.
        parameters["DocumentTypes"] = json!("invoice");
    }
    let (s, op) = server.call(
        "POST",
        "/api/v1/deployments",
        Some(token),
        Some(
            json!({"environment_id": env, "capability": capability, "version": version, "auto_execute": true,
                    "parameters": parameters}),
        ),
    );
    assert_eq!(s, 202, "{op}");
    op["id"].as_str().unwrap().to_string()
}

pub fn wait_terminal(server: &Server, token: &str, op: &str) -> Value {
    let started = Instant::now();
    loop {
        let (_, o) = server.call("GET", &format!("/api/v1/operations/{op}"), Some(token), None);
        if ["succeeded", "no_changes", "rolled_back", "failed", "cancelled", "rejected"]
            .contains(&o["state"].as_str().unwrap_or(""))
        {
            return o;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "operation stuck: {o}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Waits until the server aborted at the crash point.
pub fn crashed_at(server: &mut Server, point: &str) {
    let started = Instant::now();
    let status = loop {
        if let Some(s) = server.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the crash point was not reached: {}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success(), "the process aborted");
    assert!(server.log().contains(&format!("crash point `{point}` reached")), "{}", server.log());
}
