//! The audit log: list, verify, export.

use axum::{
    Json,
    extract::State,
    http::header,
    response::{IntoResponse, Response},
};

use crate::{
    domain::model::{AuditEvent, Page},
    ssr::{
        audit::{AuditFilter, VerifyReport},
        http::{
            error::{ApiError, ApiResult, ErrorBody},
            extract::{Authed, Params},
        },
        services::audit_trail::to_csv,
        state::AppState,
    },
};

const FILTERS: [&str; 6] = ["action", "actor", "target", "q", "from", "to"];

fn filter(params: &Params) -> Result<AuditFilter, ApiError> {
    Ok(AuditFilter {
        action: params.string("action").map(str::to_string),
        actor: params.id("actor")?,
        target: params.string("target").map(str::to_string),
        search: params.string("q").map(str::to_string),
        from: params.timestamp("from")?,
        to: params.timestamp("to")?,
        people: None,
    })
}

/// Events newest first. Filters: `action` (prefix, e.g. `auth.`), `actor` (user id), `target`,
/// `from` / `to` (RFC 3339).
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit",
    params(("action" = Option<String>, Query), ("actor" = Option<String>, Query), ("target" = Option<String>, Query),
           ("q" = Option<String>, Query, description = "words found in who, action, target, outcome or source address"),
           ("from" = Option<String>, Query), ("to" = Option<String>, Query),
           ("limit" = Option<usize>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Page<AuditEvent>), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("session" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Authed(actor): Authed,
    params: Params,
) -> ApiResult<Json<Page<AuditEvent>>> {
    let mut known = FILTERS.to_vec();
    known.extend(["limit", "cursor"]);
    params.allow(&known)?;
    Ok(Json(state.audit_trail.list(&actor, filter(&params)?, params.limit()?, params.cursor()).await?))
}

/// Recomputes the hash chain and names the first record that does not fit.
#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "audit",
    responses((status = 200, body = VerifyReport), (status = 403, body = ErrorBody)), security(("session" = [])))]
pub async fn verify(State(state): State<AppState>, Authed(actor): Authed) -> ApiResult<Json<VerifyReport>> {
    Ok(Json(state.audit_trail.verify(&actor).await?))
}

/// Every matching event as `format=csv` (default) or `format=json`.
#[utoipa::path(get, path = "/api/v1/audit/export", tag = "audit",
    params(("format" = Option<String>, Query, description = "csv or json"), ("action" = Option<String>, Query),
           ("actor" = Option<String>, Query), ("target" = Option<String>, Query),
           ("q" = Option<String>, Query, description = "words found in who, action, target, outcome or source address"), ("from" = Option<String>, Query),
           ("to" = Option<String>, Query)),
    responses((status = 200, description = "text/csv or application/json"), (status = 403, body = ErrorBody)),
    security(("session" = [])))]
pub async fn export(
    State(state): State<AppState>,
    Authed(actor): Authed,
    params: Params,
) -> ApiResult<Response> {
    let mut known = FILTERS.to_vec();
    known.push("format");
    params.allow(&known)?;
    let format = params.string("format").unwrap_or("csv");
    if !matches!(format, "csv" | "json") {
        return Err(ApiError::bad_field("format", "invalid_format", "format is csv or json"));
    }
    let events = state.audit_trail.export(&actor, filter(&params)?).await?;
    let disposition = format!("attachment; filename=\"nexus-audit.{format}\"");
    Ok(if format == "csv" {
        (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                (header::CONTENT_DISPOSITION, disposition),
            ],
            to_csv(&events),
        )
            .into_response()
    } else {
        ([(header::CONTENT_DISPOSITION, disposition)], Json(events)).into_response()
    })
}
