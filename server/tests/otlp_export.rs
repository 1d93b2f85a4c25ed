//! OpenTelemetry export as an operator turns it on: the server binary started with only the
//! standard `OTEL_*` variables sends its request spans over OTLP/HTTP (protobuf) to a receiver
//! this test runs, continuing the caller's W3C trace.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{TcpListener, TcpStream},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest,
    common::v1::{AnyValue, KeyValue, any_value::Value},
    trace::v1::{Span, span::SpanKind},
};
use prost::Message;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";

fn unique(prefix: &str) -> PathBuf {
    let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    std::env::temp_dir().join(format!("{prefix}-{}-{n}", std::process::id()))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A minimal OTLP/HTTP receiver: each POST's path, content type and body, answered 200 with an
/// empty (valid) ExportTraceServiceResponse.
fn receiver() -> (u16, mpsc::Receiver<(String, String, Vec<u8>)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let tx = tx.clone();
            std::thread::spawn(move || {
                let _ = serve_one(stream, &tx);
            });
        }
    });
    (port, rx)
}

fn serve_one(stream: TcpStream, tx: &mpsc::Sender<(String, String, Vec<u8>)>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let path = line.split_whitespace().nth(1).unwrap_or_default().to_string();
        let (mut length, mut content_type) = (0usize, String::new());
        loop {
            let mut header = String::new();
            reader.read_line(&mut header)?;
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                match name.trim().to_ascii_lowercase().as_str() {
                    "content-length" => length = value.trim().parse().unwrap_or(0),
                    "content-type" => content_type = value.trim().to_string(),
                    _ => {}
                }
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        let _ = tx.send((path, content_type, body));
        (&stream).write_all(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n",
        )?;
    }
}

struct Server {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(collector: u16) -> Server {
    let port = free_port();
    let data = unique("nexus-otlp");
    let log = unique("nexus-otlp-log");
    let child = Command::new(env!("CARGO_BIN_EXE_nexus-toolkit"))
        .env("NEXUS_STORE", "embedded")
        .env("NEXUS_DATA_DIR", &data)
        .env("NEXUS_CATALOG_DIR", concat!(env!("CARGO_MANIFEST_DIR"), "/../catalog"))
        .env("NEXUS_JWT_SECRET", "fake-test-signing-key-0123456789abcdef")
        .env("NEXUS_PARAMETER_KEY", "fake-parameter-key-0123456789abcdef")
        .env("NEXUS_RECONCILE_SECONDS", "0")
        .env("NEXUS_WORKER", "off")
        .env("NEXUS_LOG_FORMAT", "text")
        .env("LEPTOS_SITE_ADDR", format!("127.0.0.1:{port}"))
        .env("LEPTOS_SITE_ROOT", &data)
        .env("LEPTOS_OUTPUT_NAME", "nexus-toolkit")
        // Only standard variables: where to send, and a short batch delay so the test is quick.
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://127.0.0.1:{collector}"))
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .env_remove("OTEL_SERVICE_NAME")
        .env_remove("OTEL_RESOURCE_ATTRIBUTES")
        .env_remove("OTEL_SDK_DISABLED")
        .env_remove("OTEL_TRACES_EXPORTER")
        .env_remove("OTEL_EXPORTER_OTLP_PROTOCOL")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("the server binary starts");
    let server = Server { child, port, log };
    let started = Instant::now();
    while get(port, "/health", None).map(|s| s.starts_with("HTTP/1.1 200")) != Some(true) {
        assert!(started.elapsed() < Duration::from_secs(30), "the server did not start: {}", server.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    server
}

impl Server {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

fn get(port: u16, path: &str, traceparent: Option<&str>) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    if let Some(t) = traceparent {
        request.push_str(&format!("traceparent: {t}\r\n"));
    }
    request.push_str("\r\n");
    s.write_all(request.as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

fn text(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes.iter().find(|kv| kv.key == key).and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
        Value::StringValue(s) => Some(s.clone()),
        Value::IntValue(i) => Some(i.to_string()),
        _ => None,
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn request_spans_go_to_the_otlp_endpoint_and_continue_the_callers_trace() {
    let (collector, exports) = receiver();
    let server = start(collector);

    let traced = get(server.port, "/health", Some(&format!("00-{TRACE_ID}-{PARENT_ID}-01"))).unwrap();
    assert!(traced.starts_with("HTTP/1.1 200"), "{traced}");
    // A request without a session: its span must still be exported, status and all.
    let refused = get(server.port, "/api/v1/customers?secret-looking=query", None).unwrap();
    assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");

    let mut spans: Vec<(Vec<KeyValue>, Span)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let wanted = |spans: &[(Vec<KeyValue>, Span)]| {
        spans.iter().any(|(_, s)| s.name == "GET /health" && hex(&s.trace_id) == TRACE_ID)
            && spans.iter().any(|(_, s)| s.name == "GET /api/v1/customers")
    };
    while !wanted(&spans) {
        let left = deadline.saturating_duration_since(Instant::now());
        let (path, content_type, body) = exports.recv_timeout(left).unwrap_or_else(|_| {
            let seen: Vec<_> = spans.iter().map(|(_, s)| (s.name.clone(), hex(&s.trace_id))).collect();
            panic!("the expected spans did not arrive; got {seen:?}; server log:\n{}", server.log())
        });
        assert_eq!(path, "/v1/traces", "the signal path is appended to OTEL_EXPORTER_OTLP_ENDPOINT");
        assert_eq!(content_type, "application/x-protobuf");
        let request = ExportTraceServiceRequest::decode(body.as_slice()).expect("an OTLP protobuf body");
        for resource_spans in request.resource_spans {
            let resource = resource_spans.resource.map(|r| r.attributes).unwrap_or_default();
            for scope in resource_spans.scope_spans {
                spans.extend(scope.spans.into_iter().map(|s| (resource.clone(), s)));
            }
        }
    }

    let (resource, health) = spans
        .iter()
        .find(|(_, s)| s.name == "GET /health" && hex(&s.trace_id) == TRACE_ID)
        .expect("the /health span");
    assert_eq!(text(resource, "service.name").as_deref(), Some("nexus-toolkit"));
    assert_eq!(text(resource, "service.version").as_deref(), Some(env!("CARGO_PKG_VERSION")));
    assert_eq!(hex(&health.parent_span_id), PARENT_ID, "a child of the caller's span");
    assert_eq!(health.kind, SpanKind::Server as i32);
    assert_eq!(text(&health.attributes, "http.route").as_deref(), Some("/health"));
    assert_eq!(text(&health.attributes, "http.response.status_code").as_deref(), Some("200"));
    assert!(health.end_time_unix_nano >= health.start_time_unix_nano && health.start_time_unix_nano > 0);

    let (_, customers) = spans.iter().find(|(_, s)| s.name == "GET /api/v1/customers").unwrap();
    assert_ne!(hex(&customers.trace_id), TRACE_ID, "no traceparent: a trace of its own");
    assert!(customers.parent_span_id.is_empty(), "a root span");
    assert_eq!(text(&customers.attributes, "http.response.status_code").as_deref(), Some("401"));
    assert_eq!(text(&customers.attributes, "url.path").as_deref(), Some("/api/v1/customers"));
    // Query strings never leave the process (the SSO callback's carries an authorization code).
    for (_, span) in &spans {
        for kv in &span.attributes {
            let value = format!("{:?}", kv.value.as_ref().map(|v: &AnyValue| &v.value));
            assert!(!value.contains("secret-looking"), "{} carries the query: {value}", span.name);
        }
    }
}
