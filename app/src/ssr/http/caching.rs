//! HTTP caching: hashed `/pkg` files are immutable for a year (a new build has new names), and
//! reads (`GET /api/v1/…`, `GET /sfn/…`) are `private, no-cache` with an ETag, so a browser (and
//! the service worker's network-first fetch through it) revalidates and gets `304 Not Modified`
//! instead of the same body again. Answers that set their own Cache-Control (`no-store` on
//! sign-in, exports, health) and event streams are left alone.

use axum::{
    body::Body,
    extract::Request,
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use sha2::{Digest, Sha256};

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const REVALIDATE: &str = "private, no-cache";
/// Reads are buffered to hash them; none is near this (lists are paged).
const MAX_READ_BODY: usize = 16 * 1024 * 1024;

pub async fn caching(req: Request, next: Next) -> Response {
    let get = req.method() == Method::GET;
    let path = req.uri().path();
    let pkg = path.starts_with("/pkg/");
    let read = path.starts_with("/api/v1/") || path.starts_with("/sfn/");
    let if_none_match = req.headers().get(header::IF_NONE_MATCH).cloned();
    let response = next.run(req).await;
    if !get || response.status() != StatusCode::OK || response.headers().contains_key(header::CACHE_CONTROL) {
        return response;
    }
    if pkg {
        let mut response = response;
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE));
        return response;
    }
    if !read || is_event_stream(response.headers()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_READ_BODY).await {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "a read's body could not be buffered for its ETag");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let etag = etag_of(&bytes);
    parts.headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(REVALIDATE));
    parts.headers.insert(header::ETAG, HeaderValue::from_str(&etag).expect("hex is header-safe"));
    if if_none_match.as_ref().and_then(|v| v.to_str().ok()).is_some_and(|v| matches(v, &etag)) {
        parts.status = StatusCode::NOT_MODIFIED;
        parts.headers.remove(header::CONTENT_LENGTH);
        parts.headers.remove(header::CONTENT_TYPE);
        return Response::from_parts(parts, Body::empty());
    }
    Response::from_parts(parts, Body::from(bytes))
}

fn is_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"))
}

/// Weak: the compression layer outside may change the bytes on the wire, not the content.
fn etag_of(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("W/\"{hex}\"")
}

/// `If-None-Match` uses the weak comparison: `W/` prefixes are ignored; `*` matches anything.
fn matches(if_none_match: &str, etag: &str) -> bool {
    let bare = |t: &str| t.trim().trim_start_matches("W/").to_string();
    if_none_match.split(',').any(|t| t.trim() == "*" || bare(t) == bare(etag))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::{Router, middleware::from_fn, routing::get};
    use tower::ServiceExt;

    fn app() -> Router {
        Router::new()
            .route("/pkg/app.Hf8dpq.wasm", get(|| async { "wasm" }))
            .route("/api/v1/things", get(|| async { axum::Json(serde_json::json!({"n": 1})) }))
            .route("/api/v1/export", get(|| async { ([(header::CACHE_CONTROL, "no-store")], "secret") }))
            .route(
                "/api/v1/events",
                get(|| async { ([(header::CONTENT_TYPE, "text/event-stream")], "data: x\n\n") }),
            )
            .route("/api/v1/missing", get(|| async { StatusCode::NOT_FOUND }))
            .route("/page", get(|| async { "<html>" }))
            .layer(from_fn(caching))
    }

    async fn send(path: &str, if_none_match: Option<&str>) -> Response {
        let mut req = Request::get(path);
        if let Some(v) = if_none_match {
            req = req.header(header::IF_NONE_MATCH, v);
        }
        app().oneshot(req.body(Body::empty()).unwrap()).await.unwrap()
    }

    fn cache_control(r: &Response) -> Option<&str> {
        r.headers().get(header::CACHE_CONTROL).and_then(|v| v.to_str().ok())
    }

    #[tokio::test]
    async fn hashed_bundle_files_are_immutable() {
        let r = send("/pkg/app.Hf8dpq.wasm", None).await;
        assert_eq!(cache_control(&r), Some("public, max-age=31536000, immutable"));
    }

    #[tokio::test]
    async fn reads_revalidate_with_an_etag_and_answer_304_when_unchanged() {
        let first = send("/api/v1/things", None).await;
        assert_eq!(first.status(), StatusCode::OK);
        assert_eq!(cache_control(&first), Some("private, no-cache"));
        let etag = first.headers()[header::ETAG].to_str().unwrap().to_string();
        assert!(etag.starts_with("W/\"") && etag.len() == 32 + 4, "{etag}");

        let again = send("/api/v1/things", Some(&etag)).await;
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(again.headers()[header::ETAG].to_str().unwrap(), etag);
        assert!(axum::body::to_bytes(again.into_body(), 1024).await.unwrap().is_empty());

        // A strong form of the same tag, a list containing it and `*` match; another tag does not.
        let strong = etag.trim_start_matches("W/").to_string();
        assert_eq!(send("/api/v1/things", Some(&strong)).await.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(
            send("/api/v1/things", Some(&format!("\"x\", {etag}"))).await.status(),
            StatusCode::NOT_MODIFIED
        );
        assert_eq!(send("/api/v1/things", Some("*")).await.status(), StatusCode::NOT_MODIFIED);
        let changed = send("/api/v1/things", Some("W/\"0000\"")).await;
        assert_eq!(changed.status(), StatusCode::OK);
        assert_eq!(axum::body::to_bytes(changed.into_body(), 1024).await.unwrap(), "{\"n\":1}");
    }

    #[tokio::test]
    async fn own_cache_control_event_streams_errors_and_pages_are_left_alone() {
        let export = send("/api/v1/export", None).await;
        assert_eq!(cache_control(&export), Some("no-store"));
        assert!(export.headers().get(header::ETAG).is_none());
        let events = send("/api/v1/events", None).await;
        assert!(events.headers().get(header::ETAG).is_none());
        let missing = send("/api/v1/missing", None).await;
        assert!(missing.headers().get(header::ETAG).is_none() && cache_control(&missing).is_none());
        let page = send("/page", None).await;
        assert!(page.headers().get(header::ETAG).is_none() && cache_control(&page).is_none());
    }
}
