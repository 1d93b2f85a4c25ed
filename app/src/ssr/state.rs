//! The state every handler and server function shares.

use std::sync::Arc;

use axum::extract::FromRef;
use leptos::config::LeptosOptions;

use super::{
    config::{Config, StoreKind},
    health::{DataDirCheck, DynamoTableCheck, HealthCheck, HealthService},
};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot create the data directory {path}: {source}")]
    DataDir { path: String, source: std::io::Error },
}

#[derive(Clone, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub config: Arc<Config>,
    pub health: Arc<HealthService>,
}

impl AppState {
    /// Wires the adapters the configuration asks for.
    pub async fn build(config: Config, leptos_options: LeptosOptions) -> Result<Self, StartupError> {
        let store_check: Arc<dyn HealthCheck> = match config.store {
            StoreKind::Embedded => {
                std::fs::create_dir_all(&config.data_dir).map_err(|source| StartupError::DataDir {
                    path: config.data_dir.display().to_string(),
                    source,
                })?;
                Arc::new(DataDirCheck { dir: config.data_dir.clone() })
            }
            StoreKind::DynamoDb => {
                let sdk = super::aws::load_sdk_config().await;
                Arc::new(DynamoTableCheck::new((&sdk).into(), config.table_name.clone()))
            }
        };
        let health = HealthService::new(config.store.as_str(), vec![store_check], config.health_timeout);
        Ok(Self { leptos_options, config: Arc::new(config), health: Arc::new(health) })
    }
}
