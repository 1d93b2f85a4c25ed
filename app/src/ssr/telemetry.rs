//! Logging through `tracing` (text for people, JSON for log pipelines: `NEXUS_LOG_FORMAT`) and,
//! when the standard `OTEL_*` variables ask for it, the same spans exported over OTLP/HTTP.

use std::{
    fmt,
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use axum::{
    body::Bytes,
    extract::MatchedPath,
    http::{Request, Response},
};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{SpanExporter, WithHttpConfig};
use opentelemetry_sdk::{Resource, propagation::TraceContextPropagator, trace::SdkTracerProvider};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::{EnvFilter, fmt as log_fmt, prelude::*};

use super::{config::LogFormat, http_client::HttpClient};

/// Whether spans leave the process: incoming `traceparent` headers are only read then.
static EXPORTING: AtomicBool = AtomicBool::new(false);

/// One export may take this long (the OTLP default).
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// What `init` set up; `shutdown` flushes the spans still queued.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Exports what is queued and stops the exporter (call before the process exits).
    pub async fn shutdown(self) {
        if let Some(provider) = self.provider {
            // The SDK blocks while it flushes; its export runs on this runtime (see OtlpTransport).
            let outcome = tokio::task::spawn_blocking(move || provider.shutdown()).await;
            if let Ok(Err(e)) = outcome {
                eprintln!("nexus-toolkit: trace export did not flush: {e}");
            }
        }
    }
}

/// Installs the global subscriber; `RUST_LOG` overrides the default filter. With `otlp_traces`,
/// spans are also exported (the endpoint, headers, service name, sampler and batching come from
/// the `OTEL_*` variables, read by the OpenTelemetry SDK). Must run inside the Tokio runtime.
pub fn init(format: LogFormat, otlp_traces: bool) -> Result<Telemetry, String> {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,aws_config=warn,aws_smithy_runtime=warn,hyper=warn"));
    let provider = if otlp_traces { Some(tracer_provider()?) } else { None };
    let otel =
        provider.as_ref().map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer("nexus-toolkit")));
    let registry = tracing_subscriber::registry().with(filter).with(otel);
    let result = match format {
        LogFormat::Text => registry.with(log_fmt::layer().with_target(true)).try_init(),
        LogFormat::Json => registry.with(log_fmt::layer().json().flatten_event(true)).try_init(),
    };
    // Tests may initialise more than once; the first subscriber stays.
    if result.is_ok() && provider.is_some() {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        EXPORTING.store(true, Ordering::Relaxed);
    }
    Ok(Telemetry { provider })
}

fn tracer_provider() -> Result<SdkTracerProvider, String> {
    let transport = OtlpTransport {
        client: HttpClient::new()?,
        runtime: tokio::runtime::Handle::try_current()
            .map_err(|_| "trace export must start inside the Tokio runtime".to_string())?,
    };
    let exporter = SpanExporter::builder()
        .with_http()
        .with_http_client(transport)
        .build()
        .map_err(|e| format!("OTLP trace exporter: {e}"))?;
    let mut resource = Resource::builder()
        .with_attribute(opentelemetry::KeyValue::new("service.version", env!("CARGO_PKG_VERSION")));
    // The SDK names the service from OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES, else
    // `unknown_service`: name it ourselves only when the operator did not.
    let named = std::env::var("OTEL_SERVICE_NAME").is_ok_and(|v| !v.trim().is_empty())
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|v| v.contains("service.name="));
    if !named {
        resource = resource.with_service_name("nexus-toolkit");
    }
    Ok(SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource.build()).build())
}

/// The exporter's HTTP transport: the SDK exports from its own thread with a blocking executor,
/// while our hyper client needs the Tokio runtime, so each export runs as a task there.
struct OtlpTransport {
    client: HttpClient,
    runtime: tokio::runtime::Handle,
}

impl fmt::Debug for OtlpTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OtlpTransport")
    }
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for OtlpTransport {
    async fn send_bytes(
        &self,
        request: Request<Bytes>,
    ) -> Result<Response<Bytes>, opentelemetry_http::HttpError> {
        let client = self.client.clone();
        let response =
            self.runtime.spawn(async move { client.send(request, EXPORT_TIMEOUT).await }).await??;
        Ok(response)
    }
}

/// The span of one HTTP request, named `METHOD /route/{pattern}` (never the query string: the
/// sign-in callback's carries an authorization code), a child of the caller's trace when the
/// request has a W3C `traceparent` and spans are exported.
pub fn request_span<B>(req: &Request<B>) -> Span {
    let method = req.method();
    let route = req.extensions().get::<MatchedPath>().map_or("(fallback)", MatchedPath::as_str);
    let span = tracing::info_span!(
        "request",
        otel.name = %format_args!("{method} {route}"),
        otel.kind = "server",
        http.request.method = %method,
        http.route = route,
        url.path = req.uri().path(),
        http.response.status_code = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );
    if EXPORTING.load(Ordering::Relaxed) {
        let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
            propagator.extract(&opentelemetry_http::HeaderExtractor(req.headers()))
        });
        let _ = span.set_parent(parent);
    }
    span
}

/// Records the answer's status on the request span (server errors mark the span as failed).
pub fn record_response<B>(response: &Response<B>, _latency: Duration, span: &Span) {
    let status = response.status();
    span.record("http.response.status_code", status.as_u16());
    if status.is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
}
