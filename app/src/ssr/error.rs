//! The service layer's one error type. Messages are safe to show a user; details (store
//! errors, SDK errors) go to the logs where they happen. The HTTP layer maps each variant to
//! a status code and `{"error":{"code","message","field"}}` (see `http::error`).

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
