//! Configuration from environment variables, parsed once into one typed struct.
//!
//! Every variable is documented in the README with its default. A bad value stops start-up with
//! the variable's name and what is wrong with it, never a silent fallback.

use std::{collections::HashMap, net::IpAddr, path::PathBuf, time::Duration};

use ipnet::IpNet;

mod values;

use values::otlp_traces;
pub use values::{ConfigError, DemoSeed, LogFormat, RateLimit, Secret, StoreKind};

/// The server's whole configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// `NEXUS_STORE`: `embedded` (default) or `dynamodb`.
    pub store: StoreKind,
    /// `NEXUS_DATA_DIR`: the embedded store's directory and local artifacts. Default `.data`.
    pub data_dir: PathBuf,
    /// `NEXUS_CATALOG_DIR`: the capability templates loaded at start-up. Default `catalog`.
    pub catalog_dir: PathBuf,
    /// `NEXUS_TABLE`: the DynamoDB table. Default `nexus-toolkit`.
    pub table_name: String,
    /// `NEXUS_ARTIFACTS_BUCKET`: the S3 bucket published templates are stored in. Default none:
    /// the `artifacts` folder of `NEXUS_DATA_DIR`.
    pub artifacts_bucket: Option<String>,
    /// `NEXUS_COGNITO_USER_POOL_ID`, `NEXUS_COGNITO_CLIENT_ID`, `NEXUS_COGNITO_REGION` (default
    /// `AWS_REGION`), `NEXUS_COGNITO_JWKS_URL` (default: the pool's), `NEXUS_COGNITO_ISSUER`
    /// (default: the pool's), `NEXUS_COGNITO_DOMAIN` (the hosted UI; enables "Sign in with SSO"):
    /// single sign-on. Default off.
    pub cognito: Option<crate::ssr::auth::cognito::CognitoConfig>,
    /// `NEXUS_CREATE_TABLE`: `true` creates the DynamoDB table when missing (local use; in
    /// production the table comes from `infra/`). Default `false`.
    pub create_table: bool,
    /// `NEXUS_JWT_SECRET`: the session signing key, for local use.
    pub jwt_secret: Option<Secret>,
    /// `NEXUS_JWT_SECRET_ARN`: the signing key's Secrets Manager secret, in production.
    pub jwt_secret_arn: Option<String>,
    /// `NEXUS_TRUSTED_PROXIES`: comma-separated IPs or CIDRs whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// `NEXUS_RATE_LIMIT`: `REQUESTS/SECONDS` per client IP, or `off`. Default `2000/300`.
    pub rate_limit: Option<RateLimit>,
    /// `NEXUS_LOGIN_RATE_LIMIT`: sign-in attempts per client IP, `REQUESTS/SECONDS` or `off`.
    /// Default `30/300`.
    pub login_rate_limit: Option<RateLimit>,
    /// `NEXUS_LOCKOUT_THRESHOLD`: failed sign-ins that lock an account. Default 5.
    pub lockout_threshold: u32,
    /// `NEXUS_LOCKOUT_MINUTES`: how long a lock lasts. Default 15.
    pub lockout_minutes: u32,
    /// `NEXUS_PUBLIC_URL`: the URL users reach the toolkit at (`https://…` behind a load
    /// balancer). Its origin is the one state-changing requests must come from; `https` turns on
    /// Secure cookies and HSTS. Default: none (the request's own Host is the origin; plain HTTP).
    pub public_url: Option<String>,
    /// `NEXUS_SEED_DEMO`: `if-empty` loads demo data into an empty store; `off` (default) never.
    pub demo_seed: DemoSeed,
    /// `NEXUS_DEMO_PASSWORD`: the demo users' password. Default `Demo-Password-2026!`.
    pub demo_password: Secret,
    /// `NEXUS_DEMO_TOTP_SECRET`: with demo data, `exec@demo.nexus` gets an authenticator app with
    /// this key (base32, at least 16 bytes; a documented demo credential that `make run` sets).
    /// Default none: no demo user has a second factor.
    pub demo_totp_secret: Option<Secret>,
    /// `NEXUS_LOG_FORMAT`: `text` (default) or `json`.
    pub log_format: LogFormat,
    /// OpenTelemetry trace export over OTLP/HTTP (protobuf), from the standard variables: on when
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT` is set, unless
    /// `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`. The SDK reads the rest itself
    /// (`OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`,
    /// `OTEL_TRACES_SAMPLER`, `OTEL_BSP_*`, ...). Default off.
    pub otlp_traces: bool,
    /// `NEXUS_HEALTH_TIMEOUT_MS`: how long one health check may take. Default 2000.
    pub health_timeout: Duration,
    /// `NEXUS_HEALTH_ALLOW_LOOPBACK`: `true` lets capability health URLs point at this machine
    /// (127.0.0.0/8, ::1, `localhost`). **Test-only**: the test suite's health server listens on
    /// loopback. Every other inside address stays refused. Default `false`.
    pub outbound: crate::domain::outbound_url::OutboundPolicy,
    /// `NEXUS_HEALTH_REUSE_MS`: how long a `/health` result is reused before the checks run
    /// again (a load balancer polling every second costs one store probe). Default 1000; 0 runs
    /// them on every call.
    pub health_reuse: Duration,
    /// `NEXUS_READ_CACHE_MB`: memory for kept answers of the hottest reads (deployment lists,
    /// the fleet summary, customers), dropped at the next write; embedded store only. Default 32;
    /// 0 turns it off.
    pub read_cache_mb: usize,
    /// `NEXUS_WORKER`: `on` (default) runs the lifecycle worker in this process; `off` serves only.
    pub worker: bool,
    /// `NEXUS_WORKER_CONCURRENCY` (8), `NEXUS_WORKER_POLL_MS` (1000), `NEXUS_LEASE_SECONDS` (30),
    /// `NEXUS_STACK_POLL_MS` (2000), `NEXUS_OPERATION_TIMEOUT_MINUTES` (60),
    /// `NEXUS_CONNECT_CHECK_HOURS` (24: an operation checks the environment's connection first
    /// when the last successful check is older).
    pub engine: crate::ssr::lifecycle::engine::EngineConfig,
    /// `NEXUS_BREAKER_FAILURES` (5): transient AWS failures in a row in one customer account
    /// that pause calls into it for `NEXUS_BREAKER_COOL_DOWN_SECONDS` (30).
    pub breaker: crate::ssr::lifecycle::breaker::BreakerConfig,
    /// `NEXUS_RECONCILE_SECONDS` (300; `0`: off), `NEXUS_RECONCILE_RATE` (AWS calls per second
    /// per account, 2), `NEXUS_RECONCILE_ACCOUNTS` (accounts reconciled side by side, 8).
    pub reconciler: crate::ssr::lifecycle::reconciler::ReconcilerConfig,
    /// `NEXUS_STACK_EVENTS_QUEUE_URL`: an SQS queue receiving CloudFormation's stack status
    /// events from customers' accounts (EventBridge); each makes the reconciler look at that
    /// deployment at once. Default none (passes only).
    pub stack_events_queue: Option<String>,
    /// `NEXUS_EVENT_BUS`: the EventBridge bus operation events go to. Default none (logged only).
    pub event_bus: Option<String>,
    /// `NEXUS_SNS_TOPIC_ARN`: an SNS topic that also receives them. Default none.
    pub sns_topic_arn: Option<String>,
    /// `NEXUS_OUTBOX_RETRY_SECONDS` (30): how often events the bus refused are sent again.
    pub outbox_retry: Duration,
    /// `NEXUS_PARAMETER_KEY`: encrypts `NoEcho` parameter values at rest (32+ characters).
    /// Default: a key generated once into `NEXUS_DATA_DIR/parameter.key`.
    pub parameter_key: Option<Secret>,
    /// How the audit chain is keyed and anchored (`NEXUS_AUDIT_*`).
    pub audit: AuditConfig,
    /// `NEXUS_PROD_FOUR_EYES` (`on`|`off`, default on): an Executive's own prod change waits for
    /// a second Executive. Off (a one-person organisation) it runs at once, and its audit event
    /// says `four_eyes: off`.
    pub prod_four_eyes: bool,
    /// `NEXUS_MFA_STEP_UP_MINUTES`: how recent a second factor must be for actions that need
    /// one (removing the app, new recovery codes). Default 5.
    pub mfa_step_up: Duration,
    /// `NEXUS_MFA_REQUIRED_ROLES`: roles whose local accounts must have a second factor
    /// (comma-separated `executive`, `sales_manager`, `rep`, or `none`). Default `executive`.
    /// Such a user without one signs in to enrolment only. `none` is for local experiments.
    pub mfa_required_roles: Vec<crate::domain::model::Role>,
    /// `NEXUS_EVENT_STREAM_MAX_SECONDS`: the longest a live event stream stays open before the
    /// server ends it (the browser reconnects, signing in again on the way). Default 900.
    pub event_stream_lifetime: Duration,
}

/// The audit chain's key and where checkpoints of its head go.
#[derive(Clone, Debug)]
pub struct AuditConfig {
    /// `NEXUS_AUDIT_KEY`: the key the chain is signed with (HMAC-SHA-256, 32+ characters).
    /// Default: a key generated once into `NEXUS_DATA_DIR/audit.key`.
    pub key: Option<Secret>,
    /// `NEXUS_AUDIT_KEY_SECRET_ARN`: the key's Secrets Manager secret, in production.
    pub key_secret_arn: Option<String>,
    /// `NEXUS_AUDIT_ANCHOR_BUCKET`: an S3 bucket with Object Lock (governance mode) receiving
    /// signed checkpoints of the chain's head. Default none: the file
    /// `NEXUS_DATA_DIR/audit-checkpoint.json`.
    pub anchor_bucket: Option<String>,
    /// `NEXUS_AUDIT_CHECKPOINT_SECONDS`: how often the head is checkpointed (when it moved), and
    /// once more on shutdown. Default 300.
    pub checkpoint_every: Duration,
}

impl Config {
    /// Whether users reach the toolkit over HTTPS (Secure cookies, HSTS).
    pub fn https(&self) -> bool {
        self.public_url.as_deref().is_some_and(|u| u.starts_with("https://"))
    }

    /// The step-up window in milliseconds (`NEXUS_MFA_STEP_UP_MINUTES`).
    pub fn mfa_step_up_ms(&self) -> i64 {
        self.mfa_step_up.as_millis() as i64
    }

    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(std::env::vars())
    }

    /// Reads the given variables (tests pass their own).
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Result<Self, ConfigError> {
        let vars: HashMap<String, String> = vars
            .into_iter()
            .filter(|(k, v)| (k.starts_with("NEXUS_") || k.starts_with("OTEL_")) && !v.trim().is_empty())
            .collect();
        let get = |var: &str| vars.get(var).map(|v| v.trim().to_string());
        let get_or = |var: &str, default: &str| get(var).unwrap_or_else(|| default.to_string());
        let err = |var: &'static str, message: String| ConfigError { var, message };

        let store = get_or("NEXUS_STORE", "embedded").parse().map_err(|m| err("NEXUS_STORE", m))?;
        let rate_limit = match get_or("NEXUS_RATE_LIMIT", "2000/300").as_str() {
            "off" => None,
            s => Some(s.parse().map_err(|m| err("NEXUS_RATE_LIMIT", m))?),
        };
        let trusted_proxies = get_or("NEXUS_TRUSTED_PROXIES", "")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<IpNet>()
                    .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| err("NEXUS_TRUSTED_PROXIES", format!("`{s}` is not an IP address or CIDR")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let login_rate_limit = match get_or("NEXUS_LOGIN_RATE_LIMIT", "30/300").as_str() {
            "off" => None,
            s => Some(s.parse().map_err(|m| err("NEXUS_LOGIN_RATE_LIMIT", m))?),
        };
        let positive = |var: &'static str, default: &str| -> Result<u32, ConfigError> {
            get_or(var, default)
                .parse::<u32>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| err(var, "expected a whole number above 0".into()))
        };
        let lockout_threshold = positive("NEXUS_LOCKOUT_THRESHOLD", "5")?;
        let lockout_minutes = positive("NEXUS_LOCKOUT_MINUTES", "15")?;
        let public_url = get("NEXUS_PUBLIC_URL").map(|u| u.trim_end_matches('/').to_string());
        if let Some(u) = &public_url
            && !(u.starts_with("http://") || u.starts_with("https://"))
        {
            return Err(err("NEXUS_PUBLIC_URL", format!("expected an http:// or https:// URL, got `{u}`")));
        }
        let demo_seed = match get_or("NEXUS_SEED_DEMO", "off").as_str() {
            "off" => DemoSeed::Off,
            "if-empty" => DemoSeed::IfEmpty,
            other => {
                return Err(err("NEXUS_SEED_DEMO", format!("expected `off` or `if-empty`, got `{other}`")));
            }
        };
        let log_format = match get_or("NEXUS_LOG_FORMAT", "text").as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(err("NEXUS_LOG_FORMAT", format!("expected `text` or `json`, got `{other}`")));
            }
        };
        let read_cache_mb: usize =
            get_or("NEXUS_READ_CACHE_MB", "32").parse().ok().filter(|mb| *mb <= 4096).ok_or_else(|| {
                err("NEXUS_READ_CACHE_MB", "expected a number of MiB from 0 to 4096".into())
            })?;
        let otlp_traces = otlp_traces(&get).map_err(|(var, m)| err(var, m))?;
        let health_timeout_ms: u64 =
            get_or("NEXUS_HEALTH_TIMEOUT_MS", "2000").parse().ok().filter(|ms| *ms > 0).ok_or_else(|| {
                err("NEXUS_HEALTH_TIMEOUT_MS", "expected a positive number of milliseconds".into())
            })?;
        let health_reuse_ms: u64 = get_or("NEXUS_HEALTH_REUSE_MS", "1000")
            .parse()
            .map_err(|_| err("NEXUS_HEALTH_REUSE_MS", "expected a number of milliseconds".into()))?;
        let allow_loopback = match get_or("NEXUS_HEALTH_ALLOW_LOOPBACK", "false").as_str() {
            "true" => true,
            "false" => false,
            other => {
                return Err(err(
                    "NEXUS_HEALTH_ALLOW_LOOPBACK",
                    format!("expected `true` or `false`, got `{other}`"),
                ));
            }
        };
        let table_name = get_or("NEXUS_TABLE", "nexus-toolkit");
        if !(3..=255).contains(&table_name.len())
            || !table_name.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
        {
            return Err(err(
                "NEXUS_TABLE",
                "a DynamoDB table name is 3-255 characters of letters, digits, `_`, `-` and `.`".into(),
            ));
        }

        let create_table = match get_or("NEXUS_CREATE_TABLE", "false").as_str() {
            "true" => true,
            "false" => false,
            other => {
                return Err(err("NEXUS_CREATE_TABLE", format!("expected `true` or `false`, got `{other}`")));
            }
        };

        let artifacts_bucket = get("NEXUS_ARTIFACTS_BUCKET");
        if let Some(b) = &artifacts_bucket
            && !((3..=63).contains(&b.len())
                && b.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.'))
        {
            return Err(err("NEXUS_ARTIFACTS_BUCKET", format!("`{b}` is not an S3 bucket name")));
        }
        let cognito = match (get("NEXUS_COGNITO_USER_POOL_ID"), get("NEXUS_COGNITO_CLIENT_ID")) {
            (None, None) => None,
            (Some(pool), Some(client)) => {
                let region = get("NEXUS_COGNITO_REGION")
                    .or_else(|| pool.split_once('_').map(|(r, _)| r.to_string()))
                    .ok_or_else(|| err("NEXUS_COGNITO_REGION", "set the user pool's region".into()))?;
                let url = |var: &'static str| -> Result<Option<String>, ConfigError> {
                    match get(var).map(|u| u.trim_end_matches('/').to_string()) {
                        Some(u) if !(u.starts_with("https://") || u.starts_with("http://")) => {
                            Err(err(var, format!("expected an http:// or https:// URL, got `{u}`")))
                        }
                        other => Ok(other),
                    }
                };
                let hosted_ui = url("NEXUS_COGNITO_DOMAIN")?;
                // The hosted UI sends the browser back to `<public URL>/auth/callback`, which must
                // be registered with the app client: so the public URL has to be stated.
                if hosted_ui.is_some() && public_url.is_none() {
                    return Err(err(
                        "NEXUS_PUBLIC_URL",
                        "set it with NEXUS_COGNITO_DOMAIN: the sign-in callback is <NEXUS_PUBLIC_URL>/auth/callback"
                            .into(),
                    ));
                }
                Some(crate::ssr::auth::cognito::CognitoConfig {
                    region,
                    user_pool_id: pool,
                    client_id: client,
                    jwks_url: url("NEXUS_COGNITO_JWKS_URL")?,
                    issuer: url("NEXUS_COGNITO_ISSUER")?,
                    hosted_ui,
                })
            }
            (None, Some(_)) => {
                return Err(err("NEXUS_COGNITO_USER_POOL_ID", "set it with NEXUS_COGNITO_CLIENT_ID".into()));
            }
            (Some(_), None) => {
                return Err(err("NEXUS_COGNITO_CLIENT_ID", "set it with NEXUS_COGNITO_USER_POOL_ID".into()));
            }
        };
        let number = |var: &'static str, default: &str| -> Result<u64, ConfigError> {
            get_or(var, default)
                .parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| err(var, "expected a whole number above 0".into()))
        };
        let worker = match get_or("NEXUS_WORKER", "on").as_str() {
            "on" => true,
            "off" => false,
            other => return Err(err("NEXUS_WORKER", format!("expected `on` or `off`, got `{other}`"))),
        };
        let engine = crate::ssr::lifecycle::engine::EngineConfig {
            concurrency: number("NEXUS_WORKER_CONCURRENCY", "8")? as usize,
            poll: Duration::from_millis(number("NEXUS_WORKER_POLL_MS", "1000")?),
            lease: Duration::from_secs(number("NEXUS_LEASE_SECONDS", "30")?),
            follow: Duration::from_millis(number("NEXUS_STACK_POLL_MS", "2000")?),
            timeout: Duration::from_secs(60 * number("NEXUS_OPERATION_TIMEOUT_MINUTES", "60")?),
            health_wait: Duration::from_secs(number("NEXUS_HEALTH_WAIT_SECONDS", "300")?),
            connect_max_age: Duration::from_secs(3600 * number("NEXUS_CONNECT_CHECK_HOURS", "24")?),
            bake: Duration::from_secs(
                get_or("NEXUS_BAKE_SECONDS", "300")
                    .parse()
                    .map_err(|_| err("NEXUS_BAKE_SECONDS", "expected a whole number of seconds".into()))?,
            ),
        };
        let breaker = crate::ssr::lifecycle::breaker::BreakerConfig {
            failures: number("NEXUS_BREAKER_FAILURES", "5")? as u32,
            cool_down: Duration::from_secs(number("NEXUS_BREAKER_COOL_DOWN_SECONDS", "30")?),
        };
        let outbox_retry = Duration::from_secs(number("NEXUS_OUTBOX_RETRY_SECONDS", "30")?);
        let reconcile_secs: u64 = get_or("NEXUS_RECONCILE_SECONDS", "300").parse().map_err(|_| {
            err("NEXUS_RECONCILE_SECONDS", "expected a whole number of seconds (0: off)".into())
        })?;
        let reconcile_rate: f64 = get_or("NEXUS_RECONCILE_RATE", "2")
            .parse()
            .ok()
            .filter(|r: &f64| *r > 0.0 && r.is_finite())
            .ok_or_else(|| err("NEXUS_RECONCILE_RATE", "expected calls per second above 0".into()))?;
        let reconciler = crate::ssr::lifecycle::reconciler::ReconcilerConfig {
            interval: (reconcile_secs > 0).then(|| Duration::from_secs(reconcile_secs)),
            per_account_rate: reconcile_rate,
            accounts_in_parallel: positive("NEXUS_RECONCILE_ACCOUNTS", "8")? as usize,
        };
        let prod_four_eyes = match get_or("NEXUS_PROD_FOUR_EYES", "on").as_str() {
            "on" => true,
            "off" => false,
            _ => return Err(err("NEXUS_PROD_FOUR_EYES", "expected `on` or `off`".into())),
        };
        let demo_totp_secret = match get("NEXUS_DEMO_TOTP_SECRET") {
            None => None,
            Some(key) if crate::ssr::auth::mfa::from_base32(&key).is_some_and(|b| b.len() >= 16) => {
                Some(Secret(key))
            }
            Some(_) => {
                return Err(err(
                    "NEXUS_DEMO_TOTP_SECRET",
                    "expected a base32 key of at least 16 bytes (26+ characters)".into(),
                ));
            }
        };
        let mfa_required_roles = crate::domain::second_factor::parse_required_roles(&get_or(
            "NEXUS_MFA_REQUIRED_ROLES",
            "executive",
        ))
        .map_err(|e| err("NEXUS_MFA_REQUIRED_ROLES", e))?;
        let mfa_step_up = Duration::from_secs(60 * u64::from(positive("NEXUS_MFA_STEP_UP_MINUTES", "5")?));
        let event_stream_lifetime =
            Duration::from_secs(u64::from(positive("NEXUS_EVENT_STREAM_MAX_SECONDS", "900")?));
        let audit = AuditConfig {
            key: get("NEXUS_AUDIT_KEY").map(Secret),
            key_secret_arn: get("NEXUS_AUDIT_KEY_SECRET_ARN"),
            anchor_bucket: get("NEXUS_AUDIT_ANCHOR_BUCKET"),
            checkpoint_every: Duration::from_secs(u64::from(positive(
                "NEXUS_AUDIT_CHECKPOINT_SECONDS",
                "300",
            )?)),
        };
        if audit.key.as_ref().is_some_and(|k| k.expose().len() < 32) {
            return Err(err("NEXUS_AUDIT_KEY", "must be at least 32 characters".into()));
        }
        let parameter_key = get("NEXUS_PARAMETER_KEY").map(Secret);
        if parameter_key.as_ref().is_some_and(|k| k.expose().len() < 32) {
            return Err(err("NEXUS_PARAMETER_KEY", "must be at least 32 characters".into()));
        }
        Ok(Config {
            outbound: crate::domain::outbound_url::OutboundPolicy { allow_loopback },
            reconciler,
            worker,
            engine,
            breaker,
            outbox_retry,
            event_bus: get("NEXUS_EVENT_BUS"),
            stack_events_queue: get("NEXUS_STACK_EVENTS_QUEUE_URL"),
            sns_topic_arn: get("NEXUS_SNS_TOPIC_ARN"),
            parameter_key,
            audit,
            cognito,
            artifacts_bucket,
            store,
            create_table,
            data_dir: PathBuf::from(get_or("NEXUS_DATA_DIR", ".data")),
            catalog_dir: PathBuf::from(get_or("NEXUS_CATALOG_DIR", "catalog")),
            table_name,
            jwt_secret: get("NEXUS_JWT_SECRET").map(Secret),
            jwt_secret_arn: get("NEXUS_JWT_SECRET_ARN"),
            trusted_proxies,
            rate_limit,
            login_rate_limit,
            lockout_threshold,
            lockout_minutes,
            public_url,
            demo_seed,
            demo_password: Secret(get_or("NEXUS_DEMO_PASSWORD", "Demo-Password-2026!")),
            demo_totp_secret,
            log_format,
            otlp_traces,
            read_cache_mb,
            health_timeout: Duration::from_millis(health_timeout_ms),
            health_reuse: Duration::from_millis(health_reuse_ms),
            event_stream_lifetime,
            prod_four_eyes,
            mfa_step_up,
            mfa_required_roles,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_vars(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn defaults_when_nothing_is_set() {
        let c = config(&[]).unwrap();
        assert_eq!(c.store, StoreKind::Embedded);
        assert_eq!(c.data_dir, PathBuf::from(".data"));
        assert_eq!(c.table_name, "nexus-toolkit");
        assert_eq!(c.rate_limit, Some(RateLimit { requests: 2000, window: Duration::from_secs(300) }));
        assert_eq!(c.demo_seed, DemoSeed::Off);
        assert_eq!(c.log_format, LogFormat::Text);
        assert!(c.trusted_proxies.is_empty());
        assert_eq!(c.health_timeout, Duration::from_secs(2));
        assert_eq!(c.health_reuse, Duration::from_secs(1));
        assert_eq!(c.event_stream_lifetime, Duration::from_secs(900));
        assert!(c.prod_four_eyes);
        assert_eq!(c.mfa_step_up, Duration::from_secs(300));
        assert_eq!(c.mfa_required_roles, vec![crate::domain::model::Role::Executive]);
        assert!(c.demo_totp_secret.is_none());
        let demo = config(&[("NEXUS_DEMO_TOTP_SECRET", "NEXUSDEMOFAKETOTPSECRETKEY234567")]).unwrap();
        assert!(demo.demo_totp_secret.is_some());
        assert_eq!(config(&[("NEXUS_DEMO_TOTP_SECRET", "short")]).unwrap_err().var, "NEXUS_DEMO_TOTP_SECRET");
        assert!(config(&[("NEXUS_MFA_REQUIRED_ROLES", "none")]).unwrap().mfa_required_roles.is_empty());
        assert_eq!(
            config(&[("NEXUS_MFA_REQUIRED_ROLES", "executive,ceo")]).unwrap_err().var,
            "NEXUS_MFA_REQUIRED_ROLES"
        );
        assert!(!config(&[("NEXUS_PROD_FOUR_EYES", "off")]).unwrap().prod_four_eyes);
        assert_eq!(config(&[("NEXUS_PROD_FOUR_EYES", "maybe")]).unwrap_err().var, "NEXUS_PROD_FOUR_EYES");
        assert_eq!(c.read_cache_mb, 32);
        assert_eq!(c.breaker, crate::ssr::lifecycle::breaker::BreakerConfig::default());
        let b = config(&[("NEXUS_BREAKER_FAILURES", "3"), ("NEXUS_BREAKER_COOL_DOWN_SECONDS", "2")]).unwrap();
        assert_eq!((b.breaker.failures, b.breaker.cool_down), (3, Duration::from_secs(2)));
        assert_eq!(config(&[("NEXUS_BREAKER_FAILURES", "0")]).unwrap_err().var, "NEXUS_BREAKER_FAILURES");
    }

    #[test]
    fn parses_every_variable() {
        let c = config(&[
            ("NEXUS_STORE", "dynamodb"),
            ("NEXUS_DATA_DIR", "/var/lib/nexus"),
            ("NEXUS_TABLE", "nexus-prod"),
            ("NEXUS_RATE_LIMIT", "off"),
            ("NEXUS_TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1"),
            ("NEXUS_SEED_DEMO", "if-empty"),
            ("NEXUS_LOG_FORMAT", "json"),
            ("NEXUS_JWT_SECRET", "fake-test-signing-key"),
            ("NEXUS_RECONCILE_ACCOUNTS", "3"),
        ])
        .unwrap();
        assert_eq!(c.reconciler.accounts_in_parallel, 3);
        assert_eq!(c.store, StoreKind::DynamoDb);
        assert_eq!(c.table_name, "nexus-prod");
        assert_eq!(c.rate_limit, None);
        assert_eq!(c.trusted_proxies.len(), 2);
        assert_eq!(c.demo_seed, DemoSeed::IfEmpty);
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.jwt_secret.as_ref().map(Secret::expose), Some("fake-test-signing-key"));
    }

    #[test]
    fn trace_export_follows_the_standard_otel_variables() {
        assert!(!config(&[]).unwrap().otlp_traces);
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318");
        assert!(config(&[endpoint]).unwrap().otlp_traces);
        assert!(
            config(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c:4318/v1/traces")]).unwrap().otlp_traces
        );
        assert!(config(&[endpoint, ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")]).unwrap().otlp_traces);
        assert!(!config(&[endpoint, ("OTEL_SDK_DISABLED", "true")]).unwrap().otlp_traces);
        assert!(!config(&[endpoint, ("OTEL_TRACES_EXPORTER", "none")]).unwrap().otlp_traces);
        // The signal's own protocol wins over the general one, and unsupported ones are named.
        let traces_grpc = config(&[
            endpoint,
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc"),
        ])
        .unwrap_err();
        assert_eq!(traces_grpc.var, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL");
        assert!(traces_grpc.message.contains("grpc"), "{}", traces_grpc.message);
        let json = config(&[endpoint, ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")]).unwrap_err();
        assert_eq!(json.var, "OTEL_EXPORTER_OTLP_PROTOCOL");
        let zipkin = config(&[endpoint, ("OTEL_TRACES_EXPORTER", "zipkin")]).unwrap_err();
        assert_eq!(zipkin.var, "OTEL_TRACES_EXPORTER");
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (var, value) in [
            ("NEXUS_STORE", "postgres"),
            ("NEXUS_RATE_LIMIT", "many"),
            ("NEXUS_RATE_LIMIT", "0/300"),
            ("NEXUS_TRUSTED_PROXIES", "not-an-ip"),
            ("NEXUS_SEED_DEMO", "yes"),
            ("NEXUS_READ_CACHE_MB", "lots"),
            ("NEXUS_RECONCILE_ACCOUNTS", "0"),
            ("NEXUS_LOG_FORMAT", "xml"),
            ("NEXUS_TABLE", "a"),
            ("NEXUS_HEALTH_TIMEOUT_MS", "0"),
            ("NEXUS_CREATE_TABLE", "yes"),
            ("NEXUS_WORKER", "maybe"),
            ("NEXUS_LEASE_SECONDS", "0"),
            ("NEXUS_PARAMETER_KEY", "short"),
        ] {
            let e = config(&[(var, value)]).unwrap_err();
            assert_eq!(e.var, var, "{value}");
            assert!(e.to_string().starts_with(var), "{e}");
        }
    }

    #[test]
    fn secrets_are_not_printed() {
        let c = config(&[("NEXUS_JWT_SECRET", "fake-test-signing-key")]).unwrap();
        let printed = format!("{c:?}");
        assert!(!printed.contains("fake-test-signing-key"), "{printed}");
        assert!(!printed.contains("Demo-Password-2026!"), "{printed}");
    }
}
