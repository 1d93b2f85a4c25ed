//! Request parsing that answers bad input the API's way: JSON bodies (1 MiB at most, unknown
//! fields refused, the failing field named), query strings (unknown parameters refused, every
//! value checked), ids, and the signed-in actor.

use std::collections::HashMap;

use axum::{
    body::Body,
    extract::{FromRequest, FromRequestParts, Request},
    http::{StatusCode, header, request::Parts},
};
use serde::de::DeserializeOwned;

use crate::{
    domain::{ids::Id, lifecycle::DeploymentStatus, model::EnvironmentName},
    ssr::{
        auth::Actor,
        services::{DEFAULT_LIMIT, MAX_LIMIT},
    },
};

use super::error::ApiError;

/// Request bodies larger than this answer 413.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The signed-in user; 401 when the request carries no valid session.
pub struct Authed(pub Actor);

impl<S: Send + Sync> FromRequestParts<S> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Actor>().cloned().map(Authed).ok_or_else(ApiError::unauthenticated)
    }
}

/// A JSON body of `T`.
pub struct ApiJson<T>(pub T);

/// The field a serde error names: `unknown field `x``, `missing field `x``.
fn field_in_message(message: &str) -> Option<String> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(message[start..start + len].to_string())
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = inner.to_string();
        let named = field_in_message(&message);
        let field = match (path.as_str(), named) {
            ("." | "", Some(f)) => f,
            ("." | "", None) => String::new(),
            (p, Some(f)) if message.starts_with("missing field") && !p.ends_with(&f) => format!("{p}.{f}"),
            (p, _) => p.to_string(),
        };
        let code = if message.starts_with("unknown field") {
            "unknown_field"
        } else if message.starts_with("missing field") {
            "missing_field"
        } else if inner.is_syntax() || inner.is_eof() {
            "invalid_json"
        } else {
            "invalid_value"
        };
        // serde's messages end with a position ("at line 1 column 9"), which helps nobody here.
        let message = message.split(" at line ").next().unwrap_or(&message).to_string();
        let mut err = ApiError::new(StatusCode::BAD_REQUEST, code, message);
        err.detail.field = (!field.is_empty()).then_some(field);
        err
    })
}

/// A JSON body read (content type and size checked) but not yet judged: for handlers whose
/// authorisation must come before anything is said about the body (a Rep learns "403", never
/// which field was wrong).
pub struct JsonBody(axum::body::Bytes);

impl JsonBody {
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        parse_json(&self.0)
    }
}

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request<Body>, _state: &S) -> Result<Self, Self::Rejection> {
        let json = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|ct| {
            ct.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
        });
        if !json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as application/json",
            ));
        }
        let too_large = || {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the request body is over 1 MiB",
            )
        };
        let declared =
            req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
            return Err(too_large());
        }
        let bytes = axum::body::to_bytes(req.into_body(), MAX_BODY_BYTES).await.map_err(|_| too_large())?;
        Ok(JsonBody(bytes))
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request<Body>, state: &S) -> Result<Self, Self::Rejection> {
        Ok(ApiJson(JsonBody::from_request(req, state).await?.parse()?))
    }
}

/// A JSON body that may be left out (no body, no content type): then `T::default()`.
pub struct OptionalJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request<Body>, state: &S) -> Result<Self, Self::Rejection> {
        let empty = !req.headers().contains_key(header::CONTENT_TYPE)
            && req
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .is_none_or(|v| v == "0");
        if empty {
            return Ok(OptionalJson(T::default()));
        }
        let ApiJson(v) = ApiJson::<T>::from_request(req, state).await?;
        Ok(OptionalJson(v))
    }
}

/// The idempotency key rule, for the API's header and the server functions' argument alike.
pub fn valid_idempotency_key(k: &str) -> bool {
    (1..=128).contains(&k.len()) && k.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
}

/// The `Idempotency-Key` header: a repeated key returns the first request's result.
pub struct IdempotencyKey(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Some(v) = parts.headers.get("idempotency-key") else { return Ok(IdempotencyKey(None)) };
        let key = v.to_str().ok().filter(|k| valid_idempotency_key(k));
        match key {
            Some(k) => Ok(IdempotencyKey(Some(k.to_string()))),
            None => {
                let mut err = ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_idempotency_key",
                    "Idempotency-Key is 1-128 letters, digits, `-`, `_`, `.` or `:`",
                );
                err.detail.field = Some("Idempotency-Key".into());
                Err(err)
            }
        }
    }
}

/// A query string, checked parameter by parameter.
pub struct Params(HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let mut map = HashMap::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| {
                percent_decode(&s.replace('+', " ")).ok_or_else(|| {
                    ApiError::bad_field(
                        k.to_string(),
                        "invalid_encoding",
                        "the query string is not valid UTF-8",
                    )
                })
            };
            let (k, v) = (decode(k)?, decode(v)?);
            if map.insert(k.clone(), v).is_some() {
                return Err(ApiError::bad_field(k, "repeated_parameter", "give this parameter once"));
            }
        }
        Ok(Params(map))
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

impl Params {
    /// Refuses parameters the endpoint does not know.
    pub fn allow(&self, known: &[&str]) -> Result<(), ApiError> {
        let mut unknown: Vec<&String> = self.0.keys().filter(|k| !known.contains(&k.as_str())).collect();
        unknown.sort();
        match unknown.first() {
            None => Ok(()),
            Some(k) => Err(ApiError::bad_field(
                k.to_string(),
                "unknown_parameter",
                format!("unknown query parameter `{k}`; this endpoint takes {}", known.join(", ")),
            )),
        }
    }

    pub fn string(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    pub fn id(&self, name: &str) -> Result<Option<Id>, ApiError> {
        self.string(name).map(|s| parse_id(name, s)).transpose()
    }

    /// `limit`: 1 to 200, default 50.
    pub fn limit(&self) -> Result<usize, ApiError> {
        match self.string("limit") {
            None => Ok(DEFAULT_LIMIT),
            Some(s) => s.parse::<usize>().ok().filter(|n| (1..=MAX_LIMIT).contains(n)).ok_or_else(|| {
                ApiError::bad_field(
                    "limit",
                    "invalid_limit",
                    format!("limit is a whole number from 1 to {MAX_LIMIT}"),
                )
            }),
        }
    }

    pub fn cursor(&self) -> Option<&str> {
        self.string("cursor")
    }

    pub fn environment(&self) -> Result<Option<EnvironmentName>, ApiError> {
        self.string("environment")
            .map(|s| {
                EnvironmentName::parse(s).ok_or_else(|| {
                    ApiError::bad_field(
                        "environment",
                        "invalid_environment",
                        "environment is one of dev, staging, prod",
                    )
                })
            })
            .transpose()
    }

    pub fn status(&self) -> Result<Option<DeploymentStatus>, ApiError> {
        self.string("status")
            .map(|s| {
                DeploymentStatus::parse(s).ok_or_else(|| {
                    let all: Vec<&str> = DeploymentStatus::ALL.iter().map(|s| s.as_str()).collect();
                    ApiError::bad_field(
                        "status",
                        "invalid_status",
                        format!("status is one of {}", all.join(", ")),
                    )
                })
            })
            .transpose()
    }

    pub fn timestamp(&self, name: &str) -> Result<Option<crate::domain::time::Timestamp>, ApiError> {
        self.string(name)
            .map(|s| {
                crate::domain::time::Timestamp::parse(s).ok_or_else(|| {
                    ApiError::bad_field(
                        name.to_string(),
                        "invalid_time",
                        "an RFC 3339 time such as 2026-11-28T09:00:00Z",
                    )
                })
            })
            .transpose()
    }
}

/// An id from a path or query: a string that cannot be one is 400, naming where it was.
pub fn parse_id(field: &str, s: &str) -> Result<Id, ApiError> {
    Id::parse(s)
        .map_err(|_| ApiError::bad_field(field.to_string(), "invalid_id", format!("`{s}` is not a valid id")))
}

/// A request's path and query as one string (what a kept answer is filed under).
pub fn path_and_query(uri: &axum::http::Uri) -> &str {
    uri.path_and_query().map_or_else(|| uri.path(), |pq| pq.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        count: u32,
    }

    #[test]
    fn json_errors_name_the_field() {
        let e = parse_json::<Body>(br#"{"name":"a","count":1,"extra":2}"#).unwrap_err();
        assert_eq!((e.detail.code.as_str(), e.detail.field.as_deref()), ("unknown_field", Some("extra")));
        let e = parse_json::<Body>(br#"{"name":"a"}"#).unwrap_err();
        assert_eq!((e.detail.code.as_str(), e.detail.field.as_deref()), ("missing_field", Some("count")));
        let e = parse_json::<Body>(br#"{"name":"a","count":"x"}"#).unwrap_err();
        assert_eq!((e.detail.code.as_str(), e.detail.field.as_deref()), ("invalid_value", Some("count")));
        let e = parse_json::<Body>(br#"{"name":"a","#).unwrap_err();
        assert_eq!(e.detail.code, "invalid_json");
        assert!(!e.detail.message.contains("line"), "{}", e.detail.message);
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b").as_deref(), Some("a b"));
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%ff"), None);
    }
}
