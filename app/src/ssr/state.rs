//! The state every handler and server function shares.

use std::sync::Arc;

use axum::extract::FromRef;
use leptos::config::LeptosOptions;

use super::{
    catalog::{Catalog, CatalogError},
    config::{Config, DemoSeed, StoreKind},
    health::{DataDirCheck, HealthCheck, HealthService, StoreCheck},
    repo::{Repo, RepoError},
    store::{DynamoStore, RedbStore, Store, StoreError, check_schema},
};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("the store cannot be opened: {0}")]
    Store(#[from] StoreError),
    #[error("loading demo data failed: {0}")]
    Seed(#[from] RepoError),
    #[error("the capability catalog is invalid:\n{}", .0.iter().map(|e| format!("  {e}")).collect::<Vec<_>>().join("\n"))]
    Catalog(Vec<CatalogError>),
}

#[derive(Clone, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub config: Arc<Config>,
    pub health: Arc<HealthService>,
    pub repo: Repo,
    pub catalog: Arc<Catalog>,
}

impl AppState {
    /// Opens the store the configuration names, loads demo data when asked and the store is
    /// empty, and wires the services.
    pub async fn build(config: Config, leptos_options: LeptosOptions) -> Result<Self, StartupError> {
        let catalog =
            Catalog::load(&config.catalog_dir, super::clock::now()).map_err(StartupError::Catalog)?;
        tracing::info!(capabilities = catalog.capabilities().count(), dir = %config.catalog_dir.display(), "catalog loaded");
        let (store, checks): (Arc<dyn Store>, Vec<Arc<dyn HealthCheck>>) = match config.store {
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
        };
        let repo = Repo::new(store.clone());
        // A missing DynamoDB table must not stop start-up: /health reports it until it exists.
        match check_schema(&*store).await {
            Ok(version) => {
                tracing::info!(store = store.kind(), schema = version, "store ready");
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
        let health = HealthService::new(config.store.as_str(), checks, config.health_timeout);
        Ok(Self {
            leptos_options,
            config: Arc::new(config),
            health: Arc::new(health),
            repo,
            catalog: Arc::new(catalog),
        })
    }
}
