//! The service layer's one error type. Messages are safe to show a user; details (store
//! errors, SDK errors) go to the logs where they happen. Each variant's HTTP status and
//! machine-readable code are here, once: the REST API (`http::error`) and the server functions
//! (`http::sfn`) both answer with them.

use axum::http::StatusCode;

use crate::domain::{parameters::FieldError, time::Timestamp};

use super::repo::RepoError;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Unknown, or outside the caller's scope (the same answer, so ids cannot be probed).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// Exists but outside the caller's scope: answered exactly like `NotFound` (so ids cannot be
    /// probed), and audited as a permission denial.
    #[error("{0} not found")]
    Hidden(&'static str),
    /// Bad input: the first offending field, and every field's error in `details`.
    #[error("{message}")]
    Invalid { code: &'static str, field: Option<String>, message: String, details: Vec<FieldError> },
    #[error("sign in first")]
    Unauthenticated,
    /// The account has a second factor and this needs one (sign-in), or a recent one (step-up).
    #[error("enter a code from your authenticator app (or a recovery code)")]
    MfaRequired,
    /// The role requires a second factor (or this action needs one) and the user has none yet.
    #[error("set up a second factor on your account page first")]
    MfaEnrolmentRequired,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Conflict(String),
    #[error("too many failed sign-ins: the account is locked until {}", until.to_string())]
    Locked { until: Timestamp },
    #[error("too many requests: retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// One user holds as many live event streams as one may: an open one must close first.
    #[error("at most {max} live event streams may be open at once: close one (another tab) first")]
    TooManyStreams { max: usize },
    #[error("the store is unavailable: try again shortly")]
    Unavailable,
    #[error("internal error")]
    Internal,
}

impl ServiceError {
    /// The HTTP status both transports answer with.
    pub fn status(&self) -> StatusCode {
        match self {
            ServiceError::NotFound(_) | ServiceError::Hidden(_) => StatusCode::NOT_FOUND,
            ServiceError::Invalid { .. } => StatusCode::BAD_REQUEST,
            ServiceError::Unauthenticated | ServiceError::MfaRequired => StatusCode::UNAUTHORIZED,
            ServiceError::MfaEnrolmentRequired | ServiceError::Forbidden(_) => StatusCode::FORBIDDEN,
            ServiceError::Conflict(_) => StatusCode::CONFLICT,
            ServiceError::Locked { .. } => StatusCode::LOCKED,
            ServiceError::RateLimited { .. } | ServiceError::TooManyStreams { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ServiceError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ServiceError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The machine-readable code (`error.code` in the API's answers). A hidden record answers
    /// exactly like an unknown one.
    pub fn code(&self) -> &'static str {
        match self {
            ServiceError::NotFound(_) | ServiceError::Hidden(_) => "not_found",
            ServiceError::Invalid { code, .. } => code,
            ServiceError::Unauthenticated => "unauthenticated",
            ServiceError::MfaRequired => "mfa_required",
            ServiceError::MfaEnrolmentRequired => "mfa_enrolment_required",
            ServiceError::Forbidden(_) => "forbidden",
            ServiceError::Conflict(_) => "conflict",
            ServiceError::Locked { .. } => "locked",
            ServiceError::RateLimited { .. } => "rate_limited",
            ServiceError::TooManyStreams { .. } => "too_many_streams",
            ServiceError::Unavailable => "unavailable",
            ServiceError::Internal => "internal",
        }
    }

    /// Seconds after which trying again may succeed (`Retry-After`).
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            ServiceError::RateLimited { retry_after_secs } => Some(*retry_after_secs),
            // A stream closes when its tab does: a few seconds.
            ServiceError::TooManyStreams { .. } => Some(5),
            _ => None,
        }
    }

    /// A permission denial (403, or 404 for a record outside the caller's scope): whichever
    /// transport answers it, it is audited as `access.denied`.
    pub fn is_denial(&self) -> bool {
        matches!(self, ServiceError::Hidden(_) | ServiceError::Forbidden(_))
    }

    /// One bad field.
    pub fn invalid(field: impl Into<String>, code: &'static str, message: impl Into<String>) -> Self {
        let field = field.into();
        let message = message.into();
        ServiceError::Invalid {
            code,
            details: vec![FieldError {
                field: field.clone(),
                code: code.to_string(),
                message: message.clone(),
            }],
            field: Some(field),
            message,
        }
    }

    /// A write that names a revision older than the stored one.
    pub fn stale(what: &str, current: u64, read: u64) -> Self {
        ServiceError::Conflict(format!(
            "the {what} changed since you read it (revision {current} now, {read} read): reload and try again"
        ))
    }

    /// Several bad fields: the first names the error, all are listed.
    pub fn fields(errors: Vec<FieldError>) -> Self {
        let first = errors.first().cloned().unwrap_or(FieldError {
            field: String::new(),
            code: "invalid".into(),
            message: "invalid input".into(),
        });
        let message = if errors.len() > 1 {
            format!("{} (and {} more)", first.message, errors.len() - 1)
        } else {
            first.message.clone()
        };
        ServiceError::Invalid { code: "invalid_field", field: Some(first.field), message, details: errors }
    }
}

impl From<RepoError> for ServiceError {
    fn from(e: RepoError) -> Self {
        match e {
            RepoError::NotFound => ServiceError::NotFound("record"),
            RepoError::Conflict(m) => ServiceError::Conflict(m),
            RepoError::BadCursor => {
                ServiceError::invalid("cursor", "invalid_cursor", "the cursor is not valid")
            }
            RepoError::Store(e) => {
                tracing::error!(error = %e, "store call failed");
                match e {
                    super::store::StoreError::Unavailable(_) => ServiceError::Unavailable,
                    _ => ServiceError::Internal,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hidden_record_answers_like_an_unknown_one_and_is_a_denial() {
        let (hidden, unknown) = (ServiceError::Hidden("customer"), ServiceError::NotFound("customer"));
        assert_eq!(
            (hidden.status(), hidden.code(), hidden.to_string()),
            (unknown.status(), unknown.code(), unknown.to_string())
        );
        assert!(hidden.is_denial() && ServiceError::Forbidden("no".into()).is_denial());
        assert!(!unknown.is_denial());
    }

    #[test]
    fn bad_input_keeps_its_own_code_and_busy_answers_say_when_to_retry() {
        let bad = ServiceError::invalid("version", "unknown_version", "no such version");
        assert_eq!((bad.status(), bad.code()), (StatusCode::BAD_REQUEST, "unknown_version"));
        assert_eq!(ServiceError::RateLimited { retry_after_secs: 7 }.retry_after(), Some(7));
        assert_eq!(ServiceError::TooManyStreams { max: 10 }.retry_after(), Some(5));
        assert_eq!(ServiceError::Unavailable.retry_after(), None);
        assert_eq!(ServiceError::MfaRequired.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(ServiceError::MfaEnrolmentRequired.code(), "mfa_enrolment_required");
    }
}
