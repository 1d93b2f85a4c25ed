//! `GET /health`: 200 when every dependency answers, 503 naming the failing check otherwise.

use std::collections::BTreeMap;

use axum::{Json, extract::State, http::StatusCode, response::IntoResponse};
use serde_json::{Value, json};

use crate::ssr::state::AppState;

pub async fn health(State(state): State<AppState>) -> impl IntoResponse {
    let reports = state.health.run().await;
    let healthy = reports.iter().all(|r| r.ok);
    let checks: BTreeMap<String, Value> = reports
        .into_iter()
        .map(|r| {
            let value = match r.error {
                None => json!({ "status": "ok" }),
                Some(error) => json!({ "status": "fail", "error": error }),
            };
            (r.name, value)
        })
        .collect();
    let status = if healthy { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = json!({
        "status": if healthy { "ok" } else { "unavailable" },
        "version": crate::VERSION,
        "store": state.config.store.as_str(),
        "checks": checks,
    });
    (status, [("cache-control", "no-store")], Json(body))
}
