//! The one error the pages see from a server function: what went wrong in words a user can act
//! on, and for bad input which field. It crosses the wire as JSON, so the browser can tell
//! "the server said no" from "there is no network" (shown as offline, not as a failure).

use leptos::server_fn::{
    codec::JsonEncoding,
    error::{FromServerFnError, ServerFnErrorErr},
};
use serde::{Deserialize, Serialize};

use crate::domain::parameters::FieldError;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    #[error("sign in first")]
    Unauthenticated,
    /// A second factor is needed: a code from the authenticator app, or a recovery code.
    #[error("enter a code from your authenticator app (or a recovery code)")]
    MfaRequired,
    /// The role requires a second factor the user has not set up: the account page first.
    #[error("set up a second factor on your account page first")]
    MfaEnrolmentRequired,
    #[error("{0}")]
    Forbidden(String),
    /// Unknown, or not the user's to see (the same answer).
    #[error("{0} not found")]
    NotFound(String),
    #[error("{message}")]
    Invalid { field: Option<String>, message: String, details: Vec<FieldError> },
    #[error("{0}")]
    Conflict(String),
    /// Locked sign-in, rate limits, a store that is down: try again later.
    #[error("{0}")]
    Unavailable(String),
    /// The server could not be reached: the browser is offline or the server is down.
    #[error("no connection to the server")]
    Offline,
    #[error("something went wrong: {0}")]
    Internal(String),
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            ServerFnErrorErr::Request(_) => AppError::Offline,
            ServerFnErrorErr::Args(m) | ServerFnErrorErr::MissingArg(m) => {
                AppError::Invalid { field: None, message: m, details: Vec::new() }
            }
            other => AppError::Internal(other.to_string()),
        }
    }
}

impl AppError {
    /// Whether the same request, sent again unchanged, may still succeed: no connection, an
    /// expired session, a server that is busy or down, or an answer the browser could not read
    /// (a navigation that cut the response off shows up as a failed decode). Only a definite
    /// answer — forbidden, not found, invalid, conflict — is final. Resending is safe where it
    /// matters: queued requests carry an idempotency key.
    pub fn worth_retrying(&self) -> bool {
        matches!(self, Self::Offline | Self::Unauthenticated | Self::Unavailable(_) | Self::Internal(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_definite_answer_is_final() {
        let retry = [
            AppError::Offline,
            AppError::Unauthenticated,
            AppError::Unavailable("rate limited".into()),
            AppError::from_server_fn_error(ServerFnErrorErr::Deserialization(
                "TypeError: Failed to fetch".into(),
            )),
        ];
        for e in retry {
            assert!(e.worth_retrying(), "{e:?}");
        }
        let fin = [
            AppError::Forbidden("not yours".into()),
            AppError::NotFound("customer".into()),
            AppError::Invalid {
                field: Some("version".into()),
                message: "unknown".into(),
                details: Vec::new(),
            },
            AppError::Conflict("already queued".into()),
        ];
        for e in fin {
            assert!(!e.worth_retrying(), "{e:?}");
        }
    }
}
