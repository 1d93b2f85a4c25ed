//! The HTTP layer's error: a status, a machine-readable code, a message a user can act on and,
//! for bad input, the field: `{"error":{"code","message","field","details"}}`.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;

use crate::{domain::parameters::FieldError, ssr::error::ServiceError};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    /// Boxed: handlers return `Result<_, ApiError>` everywhere, and the Ok path stays small.
    pub detail: Box<ErrorDetail>,
    pub retry_after: Option<u64>,
    /// A permission denial (403, or 404 for an out-of-scope record): audited on the way out.
    pub denied: bool,
}

/// Marks a response that denied access, for the audit layer.
#[derive(Clone, Copy, Debug)]
pub struct AccessDenied;

/// The body every error answers with.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
    pub field: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<FieldError>,
    /// For 423: when the account unlocks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unlocks_at: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            detail: Box::new(ErrorDetail {
                code: code.to_string(),
                message: message.into(),
                field: None,
                details: Vec::new(),
                unlocks_at: None,
            }),
            retry_after: None,
            denied: false,
        }
    }

    pub fn bad_field(field: impl Into<String>, code: &'static str, message: impl Into<String>) -> Self {
        let mut e = ApiError::new(StatusCode::BAD_REQUEST, code, message);
        e.detail.field = Some(field.into());
        e
    }

    pub fn unauthenticated() -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", "sign in first")
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        let mut err = ApiError::new(e.status(), e.code(), e.to_string());
        err.denied = e.is_denial();
        err.retry_after = e.retry_after();
        match e {
            ServiceError::Invalid { field, details, .. } => {
                err.detail.field = field;
                err.detail.details = details;
            }
            ServiceError::Locked { until } => err.detail.unlocks_at = Some(until.to_string()),
            _ => {}
        }
        err
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody { error: *self.detail };
        let mut response = (self.status, Json(body)).into_response();
        if self.denied {
            response.extensions_mut().insert(AccessDenied);
        }
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// Handler results.
pub type ApiResult<T> = Result<T, ApiError>;
