//! The state every handler and server function shares.

use std::sync::Arc;

use axum::extract::FromRef;
use leptos::config::LeptosOptions;

use super::{
    artifacts::{ArtifactStore, LocalArtifacts, S3Artifacts},
    audit::{Anchor, AuditLog, ChainKey, FileAnchor, S3Anchor},
    auth::{AuthService, LockoutPolicy, tokens::TokenSigner},
    catalog::{Catalog, CatalogError, SharedCatalog},
    config::{Config, DemoSeed, StoreKind},
    health::{DataDirCheck, HealthCheck, HealthService, StoreCheck},
    http_client::{HttpClient, StatusProbe},
    lifecycle::{
        breaker::BreakerDeployer,
        cloudformation::CloudFormationDeployer,
        deployer::Deployer,
        engine::Engine,
        notifier::{EventBridgeNotifier, FanoutNotifier, LogNotifier, Notifier, StoreNotifier},
        outbox::OutboxNotifier,
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
    #[error("the audit key: {0}")]
    AuditKey(String),
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
    /// The hottest API reads' answers (embedded store only; see `read_cache`).
    pub read_cache: super::read_cache::ReadCache,
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
    pub rollouts: super::services::rollouts::RolloutService,
    /// Runs the rollouts (in processes with a worker).
    pub rollout_scheduler: Arc<super::services::rollouts::RolloutScheduler>,
    pub engine: Arc<Engine>,
    pub reconciler: Arc<super::lifecycle::reconciler::Reconciler>,
    /// Operation events the bus refused, sent again by the workers.
    pub outbox: Arc<OutboxNotifier>,
    pub metrics: Arc<Metrics>,
    pub limits: Arc<Limits>,
    /// Each user's open live event streams (`stream_gate`).
    pub streams: Arc<super::stream_gate::StreamGate>,
    /// The AWS configuration the adapters were made with (the stack-event listener's too).
    pub sdk: aws_config::SdkConfig,
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

/// The audit log, keyed, with its checkpoints in the bucket the configuration names or in a
/// file beside the data.
async fn audit_log(config: &Config, store: Arc<dyn Store>) -> Result<AuditLog, StartupError> {
    let key = ChainKey::new(&super::secret_keys::audit_key(config).await.map_err(StartupError::AuditKey)?);
    let anchor: Arc<dyn Anchor> = match &config.audit.anchor_bucket {
        Some(bucket) => Arc::new(S3Anchor::new(&super::aws::load_sdk_config().await, bucket.clone())),
        None => {
            if config.store == StoreKind::DynamoDb {
                tracing::warn!(
                    "NEXUS_AUDIT_ANCHOR_BUCKET is not set: audit checkpoints go to a file in NEXUS_DATA_DIR"
                );
            }
            Arc::new(FileAnchor::new(config.data_dir.join("audit-checkpoint.json")))
        }
    };
    Ok(AuditLog::new(store, key).anchored(anchor))
}

/// The adapters to the world outside the process that the configuration names: built from it
/// for the server ([`Adapters::from_config`]); a test may wrap any of them (count calls, delay,
/// fail) around the real one before [`AppState::build_with`].
pub struct Adapters {
    pub store: Arc<dyn Store>,
    /// The store's health checks (and the data directory's, for the embedded store).
    pub store_checks: Vec<Arc<dyn HealthCheck>>,
    /// Customers' accounts: CloudFormation, STS, SSM.
    pub deployer: Arc<dyn Deployer>,
    /// Where operation events go besides the in-app feed: EventBridge (and SNS), or the log.
    pub events: Arc<dyn Notifier>,
    pub artifacts: Arc<dyn ArtifactStore>,
    /// Fetches capabilities' health URLs (public addresses only, unless allowed otherwise).
    pub health_http: Arc<dyn StatusProbe>,
    pub metrics: Arc<Metrics>,
    pub sdk: aws_config::SdkConfig,
}

impl Adapters {
    /// The real adapters: the store and AWS clients the configuration names.
    pub async fn from_config(config: &Config) -> Result<Self, StartupError> {
        let metrics = Arc::new(Metrics::default());
        let (store, store_checks) = open_store(config).await?;
        let sdk = super::aws::load_sdk_config().await;
        let events: Arc<dyn Notifier> = match &config.event_bus {
            Some(bus) => Arc::new(EventBridgeNotifier::new(
                &sdk,
                bus.clone(),
                config.sns_topic_arn.clone(),
                metrics.clone(),
            )),
            None => Arc::new(LogNotifier),
        };
        let artifacts: Arc<dyn ArtifactStore> = match &config.artifacts_bucket {
            Some(bucket) => Arc::new(S3Artifacts::new(&sdk, bucket.clone())),
            None => Arc::new(LocalArtifacts::new(config.data_dir.join("artifacts"))),
        };
        Ok(Adapters {
            store,
            store_checks,
            deployer: Arc::new(CloudFormationDeployer::new(&sdk, metrics.clone())),
            events,
            artifacts,
            health_http: Arc::new(HttpClient::public_only(config.outbound).map_err(StartupError::Sso)?),
            metrics,
            sdk,
        })
    }
}

impl AppState {
    /// What is left to do when the server stops: anchor the audit chain's head once more.
    pub async fn shutdown(&self) {
        if let Err(e) = self.audit.checkpoint(super::clock::now()).await {
            tracing::warn!(error = %e, "the last audit checkpoint was not written");
        }
    }

    /// The server's state over the real adapters: see [`AppState::build_with`].
    pub async fn build(config: Config, leptos_options: LeptosOptions) -> Result<Self, StartupError> {
        let adapters = Adapters::from_config(&config).await?;
        Self::build_with(config, leptos_options, adapters).await
    }

    /// Brings the store up to date (migrations, demo data when asked and the store is empty),
    /// wires the services over `adapters`, and starts the workers when this process runs them.
    pub async fn build_with(
        config: Config,
        leptos_options: LeptosOptions,
        adapters: Adapters,
    ) -> Result<Self, StartupError> {
        let catalog =
            Catalog::load(&config.catalog_dir, super::clock::now()).map_err(StartupError::Catalog)?;
        tracing::info!(capabilities = catalog.capabilities().count(), dir = %config.catalog_dir.display(), "catalog loaded");
        let cipher = ParameterCipher::new(
            &super::secret_keys::parameter_key(&config).map_err(StartupError::ParameterKey)?,
        );
        let repo = Repo::new(adapters.store.clone());
        let store_ready = prepare_store(&config, &repo, &cipher).await?;
        let state = assemble(config, leptos_options, adapters, catalog, cipher, store_ready).await?;
        if state.config.worker {
            start_workers(&state);
        }
        Ok(state)
    }
}

/// Brings the store's layout up to date and loads the demo data when asked and the store is
/// empty. `false`: the store is not reachable yet (a DynamoDB table that does not exist must
/// not stop start-up: /health reports it until it does).
async fn prepare_store(config: &Config, repo: &Repo, cipher: &ParameterCipher) -> Result<bool, StartupError> {
    let store = repo.store();
    match check_schema(&**store).await {
        Ok(version) => {
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
                set_schema_version(&**store, SCHEMA_VERSION).await?;
                tracing::info!(
                    from = version,
                    to = SCHEMA_VERSION,
                    records = touched,
                    "store layout migrated"
                );
            }
            tracing::info!(store = store.kind(), schema = SCHEMA_VERSION, "store ready");
            if config.demo_seed == DemoSeed::IfEmpty && repo.is_empty().await? {
                let summary = super::seed::seed_demo(repo, &config.demo_password).await?;
                tracing::info!(?summary, "demo data loaded into the empty store");
            }
            Ok(true)
        }
        Err(StoreError::Unavailable(e)) if config.store == StoreKind::DynamoDb => {
            tracing::warn!(error = %e, "the store is not reachable yet; /health reports it");
            Ok(false)
        }
        Err(e) => Err(e.into()),
    }
}

/// The sign-in service: sessions, lockout, second factors, single sign-on.
async fn auth_service(
    config: &Config,
    repo: &Repo,
    audit: &Arc<AuditLog>,
    cipher: &ParameterCipher,
    metrics: &Arc<Metrics>,
    hasher: Arc<dyn Hasher>,
    store_ready: bool,
) -> Result<AuthService, StartupError> {
    let policy = LockoutPolicy {
        threshold: config.lockout_threshold,
        lock_ms: i64::from(config.lockout_minutes) * 60_000,
    };
    let auth = AuthService::new(
        repo.clone(),
        audit.clone(),
        TokenSigner::new(&super::secret_keys::signing_key(config).await.map_err(StartupError::SigningKey)?),
        hasher,
        policy,
    )
    .with_metrics(metrics.clone())
    .with_cipher(cipher.clone())
    .with_factor_policy(config.mfa_required_roles.clone(), config.mfa_step_up_ms())
    .with_passkeys(super::auth::relying_party(config.public_url.as_deref()));
    let auth = match &config.cognito {
        Some(c) => {
            let http = HttpClient::new().map_err(StartupError::Sso)?;
            tracing::info!(issuer = %c.issuer(), "single sign-on with Cognito is on");
            auth.with_cognito(super::auth::cognito::CognitoVerifier::new(c.clone(), http))
        }
        None => auth,
    };
    // The demo's authenticator app (a documented demo key), for the demo Executive.
    if store_ready
        && config.demo_seed == DemoSeed::IfEmpty
        && let Some(key) = &config.demo_totp_secret
    {
        match auth.enrol_demo_totp("exec@demo.nexus", key.expose(), super::clock::now()).await {
            Ok(true) => {
                tracing::info!("exec@demo.nexus has the demo authenticator app (NEXUS_DEMO_TOTP_SECRET)")
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "could not give the demo Executive its authenticator app"),
        }
    }
    Ok(auth)
}

/// Wires the services over the adapters.
async fn assemble(
    config: Config,
    leptos_options: LeptosOptions,
    adapters: Adapters,
    catalog: Catalog,
    cipher: ParameterCipher,
    store_ready: bool,
) -> Result<AppState, StartupError> {
    let Adapters { store, store_checks, deployer, events, artifacts, health_http, metrics, sdk } = adapters;
    // One circuit per customer account around every call into it.
    let deployer: Arc<dyn Deployer> = Arc::new(BreakerDeployer::new(deployer, config.breaker));
    let repo = Repo::new(store.clone());
    let health = HealthService::new(config.store.as_str(), store_checks, config.health_timeout)
        .reusing_for(config.health_reuse);
    let catalog: SharedCatalog = Arc::new(std::sync::RwLock::new(catalog));
    let audit = Arc::new(audit_log(&config, store.clone()).await?);
    if store_ready && let Err(e) = audit.ensure_keyed().await {
        // The first append tries again.
        tracing::warn!(error = %e, "the start of the keyed audit chain is not marked yet");
    }
    audit.spawn_checkpoints(config.audit.checkpoint_every);
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
    let hasher: Arc<dyn Hasher> = Arc::new(Argon2Hasher);
    let auth = auth_service(&config, &repo, &audit, &cipher, &metrics, hasher.clone(), store_ready).await?;
    let deployments = DeploymentService::new(repo.clone(), catalog.clone());
    // The in-app feed first, then the bus (or the log); what the bus refuses waits in the outbox.
    let outbox = Arc::new(OutboxNotifier::new(events, repo.clone(), metrics.clone()));
    let notifier: Arc<dyn Notifier> =
        Arc::new(FanoutNotifier(vec![Arc::new(StoreNotifier { repo: repo.clone() }), outbox.clone()]));
    let engine = Arc::new(Engine::new(
        repo.clone(),
        catalog.clone(),
        deployer.clone(),
        notifier.clone(),
        cipher.clone(),
        artifacts.clone(),
        metrics.clone(),
        config.engine.clone(),
        health_http.clone(),
    ));
    let reconciler = Arc::new(super::lifecycle::reconciler::Reconciler::new(
        repo.clone(),
        deployer.clone(),
        health_http,
        metrics.clone(),
        config.reconciler.clone(),
    ));
    let operations = OperationService::new(
        repo.clone(),
        catalog.clone(),
        engine.clone(),
        cipher,
        config.engine.timeout,
        audit.clone(),
        deployments.clone(),
        config.outbound,
        config.prod_four_eyes,
    );
    let rollouts = super::services::rollouts::RolloutService::new(
        repo.clone(),
        catalog.clone(),
        operations.clone(),
        audit.clone(),
        notifier.clone(),
    );
    let rollout_scheduler = Arc::new(super::services::rollouts::RolloutScheduler::new(
        &rollouts,
        engine.worker_id().to_string(),
        engine.config().lease,
        engine.config().poll,
    ));
    let read_cache =
        super::read_cache::ReadCache::new(store.clone(), catalog.clone(), config.read_cache_mb * 1024 * 1024);
    Ok(AppState(Arc::new(Services {
        read_cache,
        operations,
        rollouts,
        rollout_scheduler,
        engine,
        reconciler,
        outbox,
        metrics,
        leptos_options,
        limits: Arc::new(Limits {
            all: config.rate_limit.map(RateLimiter::new),
            login: config.login_rate_limit.map(RateLimiter::new),
        }),
        streams: Arc::default(),
        config: Arc::new(config),
        health: Arc::new(health),
        auth: Arc::new(auth),
        audit_trail: AuditService::new(audit.clone()),
        capabilities,
        customers: CustomerService::new(repo.clone(), audit.clone(), deployments.clone(), deployer),
        fleet: FleetService::new(repo.clone()),
        users: UserService::new(repo.clone(), audit.clone(), hasher),
        deployments,
        audit,
        repo,
        catalog,
        artifacts,
        sdk,
    })))
}

/// The lifecycle worker, the reconciler, the outbox and (when a queue is configured) the
/// stack-event listener, until the process ends.
fn start_workers(state: &AppState) {
    tokio::spawn(state.engine.clone().run());
    tokio::spawn(state.reconciler.clone().run());
    tokio::spawn(state.outbox.clone().run(state.config.outbox_retry));
    tokio::spawn(state.rollout_scheduler.clone().run());
    if let Some(queue) = &state.config.stack_events_queue {
        let events = super::lifecycle::stack_events::StackEvents::new(
            &state.sdk,
            queue.clone(),
            state.reconciler.clone(),
            state.metrics.clone(),
        );
        tokio::spawn(Arc::new(events).run());
    }
}
