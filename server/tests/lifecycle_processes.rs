//! Exactly-once operations across real server processes sharing one DynamoDB table on the
//! emulator: two replicas racing for 50 operations, and a server killed at the engine's crash
//! points (after the change set is created, after it is executed; in a blue-green cut-over, after
//! the colour switch and after the old colour's deletion) and started again.

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::{Value, json};

const JWT: &str = "fake-test-signing-key-0123456789abcdef";
const PARAMETER_KEY: &str = "fake-parameter-key-0123456789abcdef";
const PASSWORD: &str = "Fake-Demo-Password-2026!";

fn unique(prefix: &str) -> String {
    let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{prefix}-{}-{n}", std::process::id())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Server {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Server {
    fn start(table: &str, extra: &[(&str, &str)]) -> Server {
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

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
        call(self.port, method, path, token, body)
            .unwrap_or_else(|| panic!("{method} {path} got no answer: {}", self.log()))
    }

    fn login(&self) -> String {
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
    fn changes(&self, operation: &str) -> u64 {
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

fn raw(port: u16, request: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    s.write_all(request.as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// One HTTP/1.1 request (Connection: close); the status and the JSON body.
fn call(
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

fn dechunk(mut s: &str) -> String {
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
fn environments(server: &Server, token: &str, customers: usize) -> Vec<(String, &'static str)> {
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

fn deploy(server: &Server, token: &str, (env, env_name): &(String, &str), capability: &str) -> String {
    let version = match capability {
        "sales-forecasting" => "2.0.0",
        "customer-360" => "1.2.0",
        _ => "1.1.0",
    };
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

fn wait_terminal(server: &Server, token: &str, op: &str) -> Value {
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

/// Waits until the server aborted at the crash point.
fn crashed_at(server: &mut Server, point: &str) {
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
