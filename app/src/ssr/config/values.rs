//! The configuration's value types and how each is read from its variable's text.

use std::{fmt, str::FromStr, time::Duration};

/// A configuration error: which variable, and why.
#[derive(Debug, thiserror::Error)]
#[error("{var}: {message}")]
pub struct ConfigError {
    pub var: &'static str,
    pub message: String,
}

/// Where state lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreKind {
    /// A file in the data directory: the default on one machine.
    Embedded,
    /// A DynamoDB table: production.
    DynamoDb,
}

impl StoreKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StoreKind::Embedded => "embedded",
            StoreKind::DynamoDb => "dynamodb",
        }
    }
}

impl FromStr for StoreKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "embedded" => Ok(StoreKind::Embedded),
            "dynamodb" => Ok(StoreKind::DynamoDb),
            other => Err(format!("expected `embedded` or `dynamodb`, got `{other}`")),
        }
    }
}

/// Requests allowed per client IP in a window; `None` in [`Config`] means off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    pub requests: u32,
    pub window: Duration,
}

impl FromStr for RateLimit {
    type Err = String;
    /// `2000/300` is 2000 requests per 300 seconds.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (n, secs) = s
            .split_once('/')
            .ok_or_else(|| format!("expected `REQUESTS/SECONDS` (e.g. `2000/300`) or `off`, got `{s}`"))?;
        let requests: u32 = n.trim().parse().map_err(|_| format!("`{n}` is not a request count"))?;
        let secs: u64 = secs.trim().parse().map_err(|_| format!("`{secs}` is not a number of seconds"))?;
        if requests == 0 || secs == 0 {
            return Err("requests and seconds must both be above 0 (use `off` to disable)".into());
        }
        Ok(RateLimit { requests, window: Duration::from_secs(secs) })
    }
}

/// How logs are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Whether to load demo data at start-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DemoSeed {
    Off,
    /// Only when the store holds nothing yet.
    IfEmpty,
}

/// A secret value: never printed by `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub(super) String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(****)")
    }
}

/// Whether the `OTEL_*` variables ask for trace export, refusing what this build cannot do
/// (gRPC and HTTP/JSON: only OTLP over HTTP with protobuf is compiled in).
pub(super) fn otlp_traces(get: &dyn Fn(&str) -> Option<String>) -> Result<bool, (&'static str, String)> {
    if get("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return Ok(false);
    }
    match get("OTEL_TRACES_EXPORTER").as_deref() {
        None | Some("otlp") => {}
        Some("none") => return Ok(false),
        Some(other) => {
            return Err(("OTEL_TRACES_EXPORTER", format!("expected `otlp` or `none`, got `{other}`")));
        }
    }
    for var in ["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"] {
        if let Some(protocol) = get(var) {
            if protocol != "http/protobuf" {
                return Err((var, format!("only `http/protobuf` is supported, got `{protocol}`")));
            }
            break;
        }
    }
    Ok(get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some() || get("OTEL_EXPORTER_OTLP_ENDPOINT").is_some())
}
