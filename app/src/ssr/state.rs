//! The state every handler and server function shares.

use std::sync::Arc;

use axum::extract::FromRef;
use leptos::config::LeptosOptions;

use super::{
    artifacts::{ArtifactStore, LocalArtifacts, S3Artifacts},
    audit::AuditLog,
    auth::{AuthService, LockoutPolicy, tokens::TokenSigner},
    catalog::{Catalog, CatalogError, SharedCatalog},
    config::{Config, DemoSeed, StoreKind},
    health::{DataDirCheck, HealthCheck, HealthService, StoreCheck},
    lifecycle::{
        cloudformation::CloudFormationDeployer,
        engine::Engine,
        notifier::{EventBridgeNotifier, FanoutNotifier, LogNotifier, Notifier, StoreNotifier},
        secrets::ParameterCipher,
    },
    metrics::Metrics,
    password::{Argon2Hasher, Hasher},
    rate_limit::RateLimiter,
    repo::{Repo, RepoError},
    services::{
        audit_trail::AuditService, capabilities::CapabilityService, customers::CustomerService,
        deployments::DeploymentService, fleet::FleetService, operations::OperationService,
        users::UserService,
    },
    store::{DynamoStore, RedbStore, SCHEMA_VERSION, Store, StoreError, check_schema, set_schema_version},
};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("the store cannot be opened: {0}")]
    Store(#[from] StoreError),
    #[error("loading demo data failed: {0}")]
    Seed(#[from] RepoError),
    #[error("the session signing key: {0}")]
    SigningKey(String),
    #[error("single sign-on: {0}")]
    Sso(String),
    #[error("the parameter key: {0}")]
    ParameterKey(String),
    #[error("the capability catalog is invalid:\n{}", .0.iter().map(|e| format!("  {e}")).collect::<Vec<_>>().join("\n"))]
    Catalog(Vec<CatalogError>),
}

/// What every request shares, behind one `Arc`: each middleware layer and handler takes its own
/// copy of the state, so a clone must be one reference count, not twenty.
#[derive(Clone)]
pub struct AppState(Arc<Services>);

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

pub struct Services {
    pub leptos_options: LeptosOptions,
    pub config: Arc<Config>,
    pub health: Arc<HealthService>,
    pub repo: Repo,
    pub catalog: SharedCatalog,
    /// The hottest API reads' answers (embedded store only; see `http::read_cache`).
    pub read_cache: super::http::read_cache::ReadCache,
    pub artifacts: Arc<dyn ArtifactStore>,
    pub audit: Arc<AuditLog>,
    pub auth: Arc<AuthService>,
    pub audit_trail: AuditService,
    pub capabilities: CapabilityService,
    pub customers: CustomerService,
    pub deployments: DeploymentService,
    pub fleet: FleetService,
    pub users: UserService,
    pub operations: OperationService,
    pub engine: Arc<Engine>,
    pub reconciler: Arc<super::lifecycle::reconciler::Reconciler>,
    pub metrics: Arc<Metrics>,
    pub limits: Arc<Limits>,
}

/// Per-client-IP request limits; `None` when switched off.
pub struct Limits {
    /// `NEXUS_RATE_LIMIT`: every request.
    pub all: Option<RateLimiter>,
    /// `NEXUS_LOGIN_RATE_LIMIT`: sign-in attempts.
    pub login: Option<RateLimiter>,
}

/// Opens the store the configuration names, with its health checks.
pub async fn open_store(
    config: &Config,
) -> Result<(Arc<dyn Store>, Vec<Arc<dyn HealthCheck>>), StartupError> {
    Ok(match config.store {
        StoreKind::Embedded => {
            let store: Arc<dyn Store> = Arc::new(RedbStore::open(&config.data_dir)?);
            let checks: Vec<Arc<dyn HealthCheck>> = vec![
                Arc::new(StoreCheck(store.clone())),
                Arc::new(DataDirCheck { dir: config.data_dir.clone() }),
            ];
            (store, checks)
        }
        StoreKind::DynamoDb => {
            let sdk = super::aws::load_sdk_config().await;
            let dynamo = DynamoStore::new(&sdk, config.table_name.clone());
            if config.create_table {
                dynamo.ensure_table().await?;
            }
            let checks: Vec<Arc<dyn HealthCheck>> =
                vec![Arc::new(StoreCheck::dynamodb((&sdk).into(), config.table_name.clone()))];
            (Arc::new(dynamo), checks)
        }
    })
}

/// The shortest signing key accepted (HS256 wants at least its 256-bit output size).
const MIN_KEY_LEN: usize = 32;

/// The session signing key: from Secrets Manager (`NEXUS_JWT_SECRET_ARN`, production), from
/// `NEXUS_JWT_SECRET`, or a random one for this process only (development, loudly).
async fn signing_key(config: &Config) -> Result<Vec<u8>, StartupError> {
    if let Some(arn) = &config.jwt_secret_arn {
        if config.jwt_secret.is_some() {
            tracing::warn!(
                "both NEXUS_JWT_SECRET_ARN and NEXUS_JWT_SECRET are set: using the Secrets Manager secret"
            );
        }
        let sdk = super::aws::load_sdk_config().await;
        let client = aws_sdk_secretsmanager::Client::new(&sdk);
        let secret = client.get_secret_value().secret_id(arn).send().await.map_err(|e| {
            tracing::error!(error = %aws_sdk_secretsmanager::error::DisplayErrorContext(&e), "GetSecretValue failed");
            StartupError::SigningKey(format!(
                "NEXUS_JWT_SECRET_ARN: cannot read the secret `{arn}` from Secrets Manager (see the log for the AWS error)"
            ))
        })?;
        let value = secret.secret_string().unwrap_or_default();
        if value.len() < MIN_KEY_LEN {
            return Err(StartupError::SigningKey(format!(
                "NEXUS_JWT_SECRET_ARN: the secret must be a string of at least {MIN_KEY_LEN} characters"
            )));
        }
        return Ok(value.as_bytes().to_vec());
    }
    match &config.jwt_secret {
        Some(secret) if secret.expose().len() < MIN_KEY_LEN => Err(StartupError::SigningKey(format!(
            "NEXUS_JWT_SECRET must be at least {MIN_KEY_LEN} characters"
        ))),
        Some(secret) => Ok(secret.expose().as_bytes().to_vec()),
        None => {
            tracing::warn!(
                "NEXUS_JWT_SECRET is not set: using a random development signing key. Sessions end when \
                 the server restarts and replicas cannot share them. Never run production like this."
            );
            let mut key = vec![0u8; 32];
            getrandom::fill(&mut key).expect("the operating system's random source is unavailable");
            Ok(key)
        }
    }
}

/// The key `NoEcho` values are sealed with: `NEXUS_PARAMETER_KEY`, or one generated once into
/// the data directory (fine on one machine; replicas sharing DynamoDB must share the variable).
fn parameter_key(config: &Config) -> Result<Vec<u8>, StartupError> {
    if let Some(k) = &config.parameter_key {
        return Ok(k.expose().as_bytes().to_vec());
    }
    if config.store == StoreKind::DynamoDb {
        tracing::warn!(
            "NEXUS_PARAMETER_KEY is not set: using a key file in NEXUS_DATA_DIR; replicas must share one key"
        );
    }
    let path = config.data_dir.join("parameter.key");
    if let Ok(existing) = std::fs::read(&path) {
        return Ok(existing);
    }
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| StartupError::ParameterKey(format!("{}: {e}", config.data_dir.display())))?;
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).expect("the operating system's random source is unavailable");
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(&path) {
        Ok(mut f) => {
            std::io::Write::write_all(&mut f, hex.as_bytes())
                .map_err(|e| StartupError::ParameterKey(format!("{}: {e}", path.display())))?;
            tracing::info!(path = %path.display(), "generated the parameter encryption key");
            Ok(hex.into_bytes())
        }
        // Another process made it first.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            std::fs::read(&path).map_err(|e| StartupError::ParameterKey(format!("{}: {e}", path.display())))
        }
        Err(e) => Err(StartupError::ParameterKey(format!("{}: {e}", path.display()))),
    }
}

impl AppState {
    /// Opens the store the configuration names, loads demo data when asked and the store is
    /// empty, and wires the services.
    pub async fn build(config: Config, leptos_options: LeptosOptions) -> Result<Self, StartupError> {
        let catalog =
            Catalog::load(&config.catalog_dir, super::clock::now()).map_err(StartupError::Catalog)?;
        tracing::info!(capabilities = catalog.capabilities().count(), dir = %config.catalog_dir.display(), "catalog loaded");
        let (store, checks) = open_store(&config).await?;
        let repo = Repo::new(store.clone());
        // A missing DynamoDB table must not stop start-up: /health reports it until it exists.
        let mut store_ready = false;
        let cipher = ParameterCipher::new(&parameter_key(&config)?);
        match check_schema(&*store).await {
            Ok(version) => {
                store_ready = true;
                if version < SCHEMA_VERSION {
                    let mut touched = repo.migrate(version).await?;
                    if version < 5 {
                        // Layout 5: sealed parameters are bound to their deployment (v1 -> v2).
                        touched += repo
                            .rewrite_parameters(|values, deployment| match cipher.reseal(values, deployment) {
                                Ok(changed) => changed,
                                Err(e) => {
                                    tracing::error!(error = %e, %deployment, "a sealed parameter cannot be migrated");
                                    None
                                }
                            })
                            .await?;
                    }
                    set_schema_version(&*store, SCHEMA_VERSION).await?;
                    tracing::info!(
                        from = version,
                        to = SCHEMA_VERSION,
                        records = touched,
                        "store layout migrated"
                    );
                }
                tracing::info!(store = store.kind(), schema = SCHEMA_VERSION, "store ready");
                if config.demo_seed == DemoSeed::IfEmpty && repo.is_empty().await? {
                    let summary = super::seed::seed_demo(&repo, &config.demo_password).await?;
                    tracing::info!(?summary, "demo data loaded into the empty store");
                }
            }
            Err(StoreError::Unavailable(e)) if config.store == StoreKind::DynamoDb => {
                tracing::warn!(error = %e, "the store is not reachable yet; /health reports it");
            }
            Err(e) => return Err(e.into()),
        }
        let health = HealthService::new(config.store.as_str(), checks, config.health_timeout)
            .reusing_for(config.health_reuse);
        let catalog: SharedCatalog = Arc::new(std::sync::RwLock::new(catalog));
        let audit = Arc::new(AuditLog::new(store.clone()));
        let artifacts: Arc<dyn ArtifactStore> = match &config.artifacts_bucket {
            Some(bucket) => Arc::new(S3Artifacts::new(&super::aws::load_sdk_config().await, bucket.clone())),
            None => Arc::new(LocalArtifacts::new(config.data_dir.join("artifacts"))),
        };
        let capabilities =
            CapabilityService::new(catalog.clone(), repo.clone(), artifacts.clone(), audit.clone());
        if store_ready {
            let applied = capabilities.load_published().await.map_err(StartupError::Catalog)?;
            tracing::info!(
                records = applied,
                artifacts = artifacts.kind(),
                "published versions and deprecations applied"
            );
        }
        let policy = LockoutPolicy {
            threshold: config.lockout_threshold,
            lock_ms: i64::from(config.lockout_minutes) * 60_000,
        };
        let hasher: Arc<dyn Hasher> = Arc::new(Argon2Hasher);
        let metrics = Arc::new(Metrics::default());
        let auth = AuthService::new(
            repo.clone(),
            audit.clone(),
            TokenSigner::new(&signing_key(&config).await?),
            hasher.clone(),
            policy,
        )
        .with_metrics(metrics.clone());
        let auth = match &config.cognito {
            Some(c) => {
                let http = super::http_client::HttpClient::new().map_err(StartupError::Sso)?;
                tracing::info!(issuer = %c.issuer(), "single sign-on with Cognito is on");
                auth.with_cognito(super::auth::cognito::CognitoVerifier::new(c.clone(), http))
            }
            None => auth,
        };
        let deployments = DeploymentService::new(repo.clone(), catalog.clone());
        let sdk = super::aws::load_sdk_config().await;
        let external: Arc<dyn Notifier> = match &config.event_bus {
            Some(bus) => Arc::new(EventBridgeNotifier::new(
                &sdk,
                bus.clone(),
                config.sns_topic_arn.clone(),
                metrics.clone(),
            )),
            None => Arc::new(LogNotifier),
        };
        // The in-app feed first, then the bus (or the log).
        let notifier: Arc<dyn Notifier> =
            Arc::new(FanoutNotifier(vec![Arc::new(StoreNotifier { repo: repo.clone() }), external]));
        let deployer: Arc<dyn super::lifecycle::deployer::Deployer> =
            Arc::new(CloudFormationDeployer::new(&sdk, metrics.clone()));
        // Health checks GET URLs users chose: public addresses only.
        let http = super::http_client::HttpClient::public_only(config.outbound).map_err(StartupError::Sso)?;
        let engine = Arc::new(Engine::new(
            repo.clone(),
            catalog.clone(),
            deployer.clone(),
            notifier,
            cipher,
            artifacts.clone(),
            metrics.clone(),
            config.engine.clone(),
            http.clone(),
        ));
        let reconciler = Arc::new(super::lifecycle::reconciler::Reconciler::new(
            repo.clone(),
            deployer,
            http,
            metrics.clone(),
            config.reconciler.clone(),
        ));
        if config.worker {
            tokio::spawn(engine.clone().run());
            tokio::spawn(reconciler.clone().run());
            if let Some(queue) = &config.stack_events_queue {
                let events = super::lifecycle::stack_events::StackEvents::new(
                    &sdk,
                    queue.clone(),
                    reconciler.clone(),
                    metrics.clone(),
                );
                tokio::spawn(Arc::new(events).run());
            }
        }
        let operations = OperationService::new(
            repo.clone(),
            catalog.clone(),
            engine.clone(),
            audit.clone(),
            deployments.clone(),
            config.outbound,
        );
        let read_cache = super::http::read_cache::ReadCache::new(
            store.clone(),
            catalog.clone(),
            config.read_cache_mb * 1024 * 1024,
        );
        Ok(Self(Arc::new(Services {
            read_cache,
            operations,
            engine,
            reconciler,
            metrics,
            leptos_options,
            limits: Arc::new(Limits {
                all: config.rate_limit.map(RateLimiter::new),
                login: config.login_rate_limit.map(RateLimiter::new),
            }),
            config: Arc::new(config),
            health: Arc::new(health),
            auth: Arc::new(auth),
            audit_trail: AuditService::new(audit.clone()),
            capabilities,
            customers: CustomerService::new(repo.clone(), audit.clone(), deployments.clone()),
            fleet: FleetService::new(repo.clone()),
            users: UserService::new(repo.clone(), audit.clone(), hasher),
            deployments,
            audit,
            repo,
            catalog,
            artifacts,
        })))
    }
}
