//! The REST API under `/api/v1`, and its OpenAPI document (generated from these handlers and
//! the domain types, served at `/api/v1/openapi.json`).

mod audit;
mod auth;
mod catalog;
mod customers;
mod deployments;
mod operations;
mod passkeys;
mod rollouts;
mod users;

use axum::{
    Json, Router,
    body::Bytes,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{delete, get, post},
};
use utoipa::{
    Modify, OpenApi, PartialSchema, ToSchema,
    openapi::{
        ObjectBuilder, RefOr, Schema, Type,
        security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
    },
};

use super::error::ApiError;
use crate::{
    domain::{ids::Id, semver::Version, time::Timestamp},
    ssr::state::AppState,
};

/// A JSON answer already serialized (by the read cache).
fn json_body(body: Bytes) -> Response {
    ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response()
}

// The domain's string-like types, described for the document.
fn string_schema(
    format: Option<utoipa::openapi::SchemaFormat>,
    description: &str,
    example: &str,
) -> RefOr<Schema> {
    let mut b =
        ObjectBuilder::new().schema_type(Type::String).description(Some(description)).examples([example]);
    if let Some(f) = format {
        b = b.format(Some(f));
    }
    RefOr::T(Schema::Object(b.build()))
}

impl PartialSchema for Id {
    fn schema() -> RefOr<Schema> {
        string_schema(None, "An opaque id (a ULID: 26 characters)", "01JDQ8ZK3M6V2C0N7R5T9W4XYA")
    }
}
impl ToSchema for Id {}

impl PartialSchema for Timestamp {
    fn schema() -> RefOr<Schema> {
        use utoipa::openapi::{KnownFormat, SchemaFormat};
        string_schema(
            Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)),
            "RFC 3339, UTC",
            "2026-11-28T09:30:00.000Z",
        )
    }
}
impl ToSchema for Timestamp {}

impl PartialSchema for Version {
    fn schema() -> RefOr<Schema> {
        string_schema(None, "A semantic version", "1.2.0")
    }
}
impl ToSchema for Version {}

struct SessionAuth;

impl Modify for SessionAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "NexusAI Toolkit API", description = "Capabilities, customers, deployments and the audit log. \
        Every route but sign-in needs a session: `Authorization: Bearer <token>` or the session cookie. \
        Errors answer `{\"error\":{\"code\",\"message\",\"field\"}}`."),
    paths(
        auth::login, auth::cognito, auth::logout, auth::me, auth::notices,
        auth::step_up, auth::mfa_status, auth::start_totp, auth::confirm_totp, auth::remove_totp, auth::renew_recovery_codes,
        passkeys::register_options, passkeys::register, passkeys::remove, passkeys::challenge, passkeys::login,
        passkeys::step_up,
        catalog::list, catalog::get, catalog::usage, catalog::publish, catalog::deprecate,
        customers::list, customers::get, customers::create, customers::update,
        customers::environments, customers::create_environment, customers::update_environment,
        customers::rotate_external_id,
        deployments::list, deployments::get, deployments::operations, deployments::operation, deployments::fleet_summary,
        audit::list, audit::verify, audit::export,
        users::list, users::create, users::update, users::reset_password, users::unlock, users::locked, users::reset_mfa,
        operations::deploy, operations::upgrade, operations::rollback, operations::switch, operations::delete, operations::drift,
        operations::execute, operations::approve, operations::reject, operations::cancel,
        operations::events, operations::stream, operations::connect,
        rollouts::create, rollouts::list, rollouts::get, rollouts::pause, rollouts::resume, rollouts::cancel,
        rollouts::retry, rollouts::approve, rollouts::skip,
    ),
    modifiers(&SessionAuth)
)]
pub struct ApiDoc;

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such API route")
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/auth/login", post(auth::login))
        .route("/api/v1/auth/cognito", post(auth::cognito))
        .route("/api/v1/auth/logout", post(auth::logout))
        .route("/api/v1/me", get(auth::me))
        .route("/api/v1/me/notices", get(auth::notices))
        .route("/api/v1/auth/step-up", post(auth::step_up))
        .route("/api/v1/me/mfa", get(auth::mfa_status))
        .route("/api/v1/me/mfa/totp", post(auth::start_totp).delete(auth::remove_totp))
        .route("/api/v1/me/mfa/totp/confirm", post(auth::confirm_totp))
        .route("/api/v1/me/mfa/recovery-codes", post(auth::renew_recovery_codes))
        .route("/api/v1/me/mfa/passkeys/options", post(passkeys::register_options))
        .route("/api/v1/me/mfa/passkeys", post(passkeys::register))
        .route("/api/v1/me/mfa/passkeys/{id}", delete(passkeys::remove))
        .route("/api/v1/auth/passkey/options", post(passkeys::challenge))
        .route("/api/v1/auth/passkey", post(passkeys::login))
        .route("/api/v1/auth/step-up/passkey", post(passkeys::step_up))
        .route("/api/v1/capabilities", get(catalog::list))
        .route("/api/v1/capabilities/{slug}", get(catalog::get))
        .route("/api/v1/capabilities/{slug}/usage", get(catalog::usage))
        .route("/api/v1/capabilities/{slug}/versions", post(catalog::publish))
        .route("/api/v1/capabilities/{slug}/versions/{version}/deprecate", post(catalog::deprecate))
        .route("/api/v1/customers", get(customers::list).post(customers::create))
        .route("/api/v1/customers/{id}", get(customers::get).patch(customers::update))
        .route(
            "/api/v1/customers/{id}/environments",
            get(customers::environments).post(customers::create_environment),
        )
        .route(
            "/api/v1/customers/{id}/environments/{name}",
            axum::routing::patch(customers::update_environment),
        )
        .route("/api/v1/deployments", get(deployments::list).post(operations::deploy))
        .route("/api/v1/deployments/{id}", get(deployments::get).delete(operations::delete))
        .route("/api/v1/deployments/{id}/upgrade", post(operations::upgrade))
        .route("/api/v1/deployments/{id}/rollback", post(operations::rollback))
        .route("/api/v1/deployments/{id}/drift", post(operations::drift))
        .route("/api/v1/deployments/{id}/switch", post(operations::switch))
        .route("/api/v1/rollouts", get(rollouts::list).post(rollouts::create))
        .route("/api/v1/rollouts/{id}", get(rollouts::get))
        .route("/api/v1/rollouts/{id}/pause", post(rollouts::pause))
        .route("/api/v1/rollouts/{id}/resume", post(rollouts::resume))
        .route("/api/v1/rollouts/{id}/cancel", post(rollouts::cancel))
        .route("/api/v1/rollouts/{id}/retry", post(rollouts::retry))
        .route("/api/v1/rollouts/{id}/approve", post(rollouts::approve))
        .route("/api/v1/rollouts/{id}/deployments/{deployment}/skip", post(rollouts::skip))
        .route("/api/v1/operations/{id}/execute", post(operations::execute))
        .route("/api/v1/operations/{id}/approve", post(operations::approve))
        .route("/api/v1/operations/{id}/reject", post(operations::reject))
        .route("/api/v1/operations/{id}/cancel", post(operations::cancel))
        .route("/api/v1/operations/{id}/events", get(operations::events))
        .route("/api/v1/operations/{id}/events/stream", get(operations::stream))
        .route("/api/v1/environments/{id}/connect", post(operations::connect))
        .route("/api/v1/environments/{id}/external-id", post(customers::rotate_external_id))
        .route("/api/v1/deployments/{id}/operations", get(deployments::operations))
        .route("/api/v1/operations/{id}", get(deployments::operation))
        .route("/api/v1/fleet/summary", get(deployments::fleet_summary))
        .route("/api/v1/audit", get(audit::list))
        .route("/api/v1/audit/verify", get(audit::verify))
        .route("/api/v1/audit/export", get(audit::export))
        .route("/api/v1/users", get(users::list).post(users::create))
        .route("/api/v1/users/locked", get(users::locked))
        .route("/api/v1/users/{id}", axum::routing::patch(users::update))
        .route("/api/v1/users/{id}/password", post(users::reset_password))
        .route("/api/v1/users/{id}/unlock", post(users::unlock))
        .route("/api/v1/users/{id}/mfa/reset", post(users::reset_mfa))
        .route("/api/{*rest}", axum::routing::any(not_found))
}
