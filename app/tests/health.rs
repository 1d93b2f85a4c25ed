//! `GET /health` against real dependencies: the embedded store's directory and a DynamoDB table
//! on the AWS emulator the test command starts (`AWS_ENDPOINT_URL`).

mod common;

use common::{leptos_options as options, require_emulator, test_config as config, unique};
use std::{path::PathBuf, sync::Arc, time::Duration};

use app::ssr::{
    aws::load_sdk_config,
    config::Config,
    health::{HealthService, StoreCheck},
    http::router,
    state::AppState,
    store::DynamoStore,
};
use axum::{
    body::{Body, to_bytes},
    http::{Request, StatusCode},
};
use serde_json::Value;
use tower::ServiceExt;

async fn get_health(state: AppState) -> (StatusCode, Value) {
    let response = router(state).oneshot(Request::get("/health").body(Body::empty()).unwrap()).await.unwrap();
    let status = response.status();
    let body = to_bytes(response.into_body(), 1 << 20).await.unwrap();
    (status, serde_json::from_slice(&body).unwrap())
}

#[tokio::test]
async fn embedded_store_healthy_then_unavailable_when_its_directory_breaks() {
    let dir: PathBuf = std::env::temp_dir().join(unique("nexus-health"));
    let vars = [("NEXUS_DATA_DIR", dir.to_str().unwrap())];
    let state = AppState::build(config(&vars), options()).await.unwrap();

    let (status, body) = get_health(state.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "ok");
    assert_eq!(body["store"], "embedded");
    assert_eq!(body["version"], app::VERSION);
    assert_eq!(body["checks"]["store"]["status"], "ok");
    assert_eq!(body["checks"]["data_dir"]["status"], "ok");

    // Make the directory unwritable for this process (a read-only remount, a full disk):
    // /health says which check failed. Root ignores permissions, so swap in a file instead.
    let moved = dir.with_extension("moved");
    std::fs::rename(&dir, &moved).unwrap();
    std::fs::write(&dir, b"not a directory").unwrap();
    let (status, body) = get_health(state).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["checks"]["data_dir"]["status"], "fail");
    assert!(body["checks"]["data_dir"]["error"].as_str().unwrap().contains("not writable"), "{body}");
    std::fs::remove_file(&dir).unwrap();
    std::fs::remove_dir_all(&moved).unwrap();
}

#[tokio::test]
async fn dynamodb_store_unavailable_until_its_table_exists() {
    require_emulator();
    let table = unique("nexus-health");
    let vars = [("NEXUS_STORE", "dynamodb"), ("NEXUS_TABLE", table.as_str())];
    // Start-up does not fail on a missing table: /health names it until it exists.
    let state = AppState::build(config(&vars), options()).await.unwrap();

    let (status, body) = get_health(state.clone()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["store"], "dynamodb");
    assert_eq!(body["checks"]["store"]["error"], format!("table `{table}` does not exist"));

    let store = DynamoStore::new(&load_sdk_config().await, table.clone());
    store.ensure_table().await.expect("create the table on the emulator");

    let (status, body) = get_health(state).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["checks"]["store"]["status"], "ok");

    store.delete_table().await.unwrap();
}

#[tokio::test]
async fn an_unreachable_dynamodb_fails_the_check_within_its_timeout() {
    require_emulator();
    let sdk = load_sdk_config().await;
    // Port 9 (discard) on loopback: nothing listens there, so connecting fails at once.
    let dead = aws_sdk_dynamodb::config::Builder::from(&sdk).endpoint_url("http://127.0.0.1:9");
    let check = StoreCheck::dynamodb(dead, "nexus");
    let service = HealthService::new("dynamodb", vec![Arc::new(check)], Duration::from_secs(5));

    let started = std::time::Instant::now();
    let reports = service.run().await;
    assert_eq!(reports.len(), 1);
    assert!(!reports[0].ok);
    assert_eq!(reports[0].error.as_deref(), Some("DynamoDB is unreachable"));
    assert!(started.elapsed() < Duration::from_secs(6), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn a_malformed_catalog_template_stops_start_up_naming_the_file_and_reason() {
    let root = std::env::temp_dir().join(unique("nexus-bad-catalog"));
    std::fs::create_dir_all(root.join("catalog/broken")).unwrap();
    std::fs::write(root.join("catalog/broken/1.0.0.yaml"), "Resources: {}\n").unwrap();
    let vars = [
        ("NEXUS_DATA_DIR", root.join("data").to_str().unwrap().to_string()),
        ("NEXUS_CATALOG_DIR", root.join("catalog").to_str().unwrap().to_string()),
    ];
    let config = Config::from_vars(vars.iter().map(|(k, v)| (k.to_string(), v.clone()))).unwrap();
    let error = match AppState::build(config, options()).await {
        Ok(_) => panic!("start-up must fail on a malformed template"),
        Err(e) => e.to_string(),
    };
    assert!(error.contains("broken/1.0.0.yaml"), "{error}");
    assert!(error.contains("Resources is empty"), "{error}");
    assert!(error.contains("Metadata.Nexus is missing"), "{error}");
    std::fs::remove_dir_all(root).unwrap();
}
