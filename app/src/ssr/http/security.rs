//! The layers every request passes: the client's IP (X-Forwarded-For believed only from trusted
//! proxies), the rate limits, the Origin check on state-changing requests, the session, and the
//! security headers.

use std::{
    net::{IpAddr, SocketAddr},
    time::Instant,
};

use axum::{
    extract::{ConnectInfo, Request, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use ipnet::IpNet;

use super::error::{AccessDenied, ApiError};
use crate::domain::second_factor::allowed_before_enrolment;
use crate::ssr::{auth::ClientInfo, clock, state::AppState};

pub const SESSION_COOKIE: &str = "nexus_session";

/// The client's address: the peer, or, when the peer is a trusted proxy, the right-most
/// X-Forwarded-For entry that is not itself a trusted proxy (entries further left are whatever
/// the client claimed).
pub fn client_ip(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[IpNet]) -> Option<IpAddr> {
    let peer = peer?;
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    Some(forwarded.into_iter().rev().find(|ip| !is_trusted(ip)).unwrap_or(peer))
}

pub async fn client_info(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    // In-process tests supply the peer through axum's MockConnectInfo.
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip()).or_else(|| {
        req.extensions().get::<axum::extract::connect_info::MockConnectInfo<SocketAddr>>().map(|m| m.0.ip())
    });
    let ip = client_ip(peer, req.headers(), &state.config.trusted_proxies);
    req.extensions_mut().insert(ClientInfo { ip });
    next.run(req).await
}

fn client(req: &Request) -> ClientInfo {
    req.extensions().get::<ClientInfo>().cloned().unwrap_or_default()
}

pub async fn rate_limit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if let Some(ip) = client(&req).ip {
        let now = Instant::now();
        if let Some(limiter) = &state.limits.all
            && let Err(secs) = limiter.check(ip, now)
        {
            tracing::warn!(%ip, "rate limit reached");
            state.metrics.rate_limited("all");
            return ApiError::from(crate::ssr::error::ServiceError::RateLimited { retry_after_secs: secs })
                .into_response();
        }
        if matches!(
            req.uri().path(),
            "/api/v1/auth/login"
                | "/api/v1/auth/cognito"
                | "/api/v1/auth/passkey"
                | "/api/v1/auth/passkey/options"
                | "/sfn/sign-in"
                | "/sfn/passkey-sign-in"
                | "/sfn/passkey-challenge"
                | "/auth/callback"
        ) && let Some(limiter) = &state.limits.login
            && let Err(secs) = limiter.check(ip, now)
        {
            tracing::warn!(%ip, "sign-in rate limit reached");
            state.metrics.rate_limited("login");
            return ApiError::from(crate::ssr::error::ServiceError::RateLimited { retry_after_secs: secs })
                .into_response();
        }
    }
    next.run(req).await
}

pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// The one origin our pages are served from: the configured public URL's (scheme, host and
/// port; a default port left out as browsers do), or, without one, this request's Host over
/// plain HTTP (what the toolkit serves then). Compared exactly: another scheme, port or a
/// trailing slash is another origin.
fn allowed_origin(state: &AppState, headers: &HeaderMap) -> Option<String> {
    match &state.config.public_url {
        Some(url) => Some(origin_of(url)),
        None => headers.get(header::HOST).and_then(|h| h.to_str().ok()).map(|host| format!("http://{host}")),
    }
}

/// `scheme://host[:port]` of a URL, without a default port or a path.
fn origin_of(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
    let scheme = scheme.to_ascii_lowercase();
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default().to_ascii_lowercase();
    let default_port = if scheme == "https" { ":443" } else { ":80" };
    let authority = authority.strip_suffix(default_port).unwrap_or(&authority);
    format!("{scheme}://{authority}")
}

/// State-changing requests must come from our own pages: a foreign Origin is refused, and a
/// cookie-authenticated request without one (or marked cross-site) too. Bearer-token clients
/// (scripts, the CLI) send no cookie and pass.
pub async fn origin_check(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe {
        let headers = req.headers();
        let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
        let refused = match origin {
            Some(o) => allowed_origin(&state, headers).as_deref() != Some(o),
            None => {
                let cross_site = headers
                    .get("sec-fetch-site")
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|s| s != "same-origin" && s != "none");
                cross_site || cookie(headers, SESSION_COOKIE).is_some()
            }
        };
        if refused {
            tracing::warn!(origin = origin.unwrap_or("(none)"), path = %req.uri().path(), "refused a cross-origin request");
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "bad_origin",
                "this request must come from the toolkit's own pages",
            )
            .into_response();
        }
    }
    next.run(req).await
}

pub fn session_cookie(token: &str, max_age_secs: i64, secure: bool) -> HeaderValue {
    let max_age = max_age_secs.max(0);
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    .expect("tokens are header-safe")
}

pub fn clear_session_cookie(secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}"))
        .expect("static")
}

/// Static files (`/pkg/…`, `/sw.js`, icons) need no session; pages, server functions and the
/// API do.
fn needs_session(path: &str) -> bool {
    if path.starts_with("/api/") || path.starts_with("/sfn/") {
        return true;
    }
    let last = path.rsplit('/').next().unwrap_or_default();
    !(path.starts_with("/pkg/") || path == "/health" || path == "/metrics" || last.contains('.'))
}

/// Resolves the session (Bearer token first, then the cookie) for pages, API and server-function
/// calls; handlers that need a user extract it (`Authed`) and answer 401 without one. A cookie
/// session past half its life gets a fresh cookie on the way out (silent renewal).
pub async fn session(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if !needs_session(path) {
        return next.run(req).await;
    }
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").map(|t| t.trim().to_string()));
    let from_cookie = bearer.is_none();
    let Some(token) = bearer.or_else(|| cookie(req.headers(), SESSION_COOKIE)) else {
        return next.run(req).await;
    };
    let mut renewed = None;
    let mut actor = None;
    let (method, path) = (req.method().clone(), path.to_string());
    match state.auth.authenticate(&token, &client(&req), clock::now()).await {
        Ok(auth) => {
            // The policy: a role that must have a second factor, without one, reaches nothing
            // but enrolment (the account page and its calls), and sign-out.
            if auth.actor.factor.must_enrol && !allowed_before_enrolment(&path) {
                return enrolment_first(&path);
            }
            actor = Some(auth.actor.clone());
            req.extensions_mut().insert(auth.actor);
            if from_cookie {
                renewed = auth.renewed;
            }
        }
        Err(crate::ssr::error::ServiceError::Unauthenticated) => {}
        Err(e) => return ApiError::from(e).into_response(),
    }
    let mut response = next.run(req).await;
    // Pages and server functions say "denied" with a header (they cannot set extensions).
    let denied_by_page = response.headers_mut().remove(super::sfn::DENIED_HEADER).is_some();
    if let Some(actor) = &actor
        && (denied_by_page || response.extensions().get::<AccessDenied>().is_some())
    {
        let mut event = actor.audit("access.denied", path.clone(), "denied");
        event.details = serde_json::json!({ "method": method.as_str(), "path": path, "status": response.status().as_u16() });
        if let Err(e) = state.audit.append(event, clock::now()).await {
            tracing::error!(error = %e, "could not audit a permission denial");
        }
    }
    if let Some((token, claims)) = renewed
        && !response.headers().contains_key(header::SET_COOKIE)
    {
        response.headers_mut().append(
            header::SET_COOKIE,
            session_cookie(&token, claims.exp - claims.iat, state.config.https()),
        );
    }
    response
}

/// What a user who must enrol first gets elsewhere: the API's 403 `mfa_enrolment_required`,
/// the same as a server function's error (which the pages show as a link to enrolment), and a
/// page's navigation goes to the account page.
fn enrolment_first(path: &str) -> Response {
    use leptos::server_fn::error::FromServerFnError;
    if path.starts_with("/api/") {
        return ApiError::from(crate::ssr::error::ServiceError::MfaEnrolmentRequired).into_response();
    }
    if path.starts_with("/sfn/") {
        let body = crate::server_fns::AppError::MfaEnrolmentRequired.ser();
        return (StatusCode::FORBIDDEN, [(header::CONTENT_TYPE, "application/json")], body).into_response();
    }
    (StatusCode::SEE_OTHER, [(header::LOCATION, "/account"), (header::CACHE_CONTROL, "no-store")])
        .into_response()
}

/// The policy for pages: scripts only from our origin or with this response's nonce (the
/// hydration bootstrap in `shell.rs`, Leptos's serialized resources), WebAssembly compilation
/// allowed (`wasm-unsafe-eval`, which the wasm bundle needs and nothing else gets), no plugins,
/// no framing, no foreign form targets.
pub fn page_csp(nonce: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; style-src 'self'; \
         img-src 'self' data:; connect-src 'self'; manifest-src 'self'; worker-src 'self'; \
         object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

/// Sets the page CSP on the response being rendered (called from the shell during SSR).
pub fn set_page_csp() {
    let Some(nonce) = leptos::nonce::use_nonce() else { return };
    if let Some(response) = leptos::prelude::use_context::<leptos_axum::ResponseOptions>()
        && let Ok(value) = HeaderValue::from_str(&page_csp(&nonce))
    {
        response.insert_header(header::CONTENT_SECURITY_POLICY, value);
    }
}

/// Headers on every response. The page CSP (with its per-response nonce) is set where pages
/// render; API answers get a CSP that allows nothing.
pub async fn headers(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let api = req.uri().path().starts_with("/api/");
    let mut response = next.run(req).await;
    let h = response.headers_mut();
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("strict-origin-when-cross-origin"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if api || !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        let csp = if api { "default-src 'none'; frame-ancestors 'none'" } else { "frame-ancestors 'none'" };
        h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(csp));
    }
    if state.config.https() {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_url_gives_one_exact_origin() {
        assert_eq!(origin_of("https://nexus.example.com"), "https://nexus.example.com");
        assert_eq!(origin_of("https://Nexus.Example.com:443/app"), "https://nexus.example.com");
        assert_eq!(origin_of("http://127.0.0.1:3000"), "http://127.0.0.1:3000");
        assert_eq!(origin_of("http://host:80"), "http://host");
        assert_eq!(origin_of("https://host:8443"), "https://host:8443");
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.9, 198.51.100.7, 10.1.1.1"));
        let proxy: IpAddr = "10.0.0.2".parse().unwrap();
        let stranger: IpAddr = "192.0.2.5".parse().unwrap();
        assert_eq!(client_ip(Some(proxy), &headers, &trusted), Some("198.51.100.7".parse().unwrap()));
        assert_eq!(client_ip(Some(stranger), &headers, &trusted), Some(stranger));
        assert_eq!(client_ip(Some(proxy), &HeaderMap::new(), &trusted), Some(proxy));
    }

    #[test]
    fn static_files_need_no_session() {
        for path in ["/", "/customers/01J", "/login", "/api/v1/me", "/sfn/fleet"] {
            assert!(needs_session(path), "{path}");
        }
        for path in ["/pkg/nexus-toolkit.abc.wasm", "/sw.js", "/icons/icon-192.png", "/health", "/metrics"] {
            assert!(!needs_session(path), "{path}");
        }
    }

    #[test]
    fn cookies_are_found_by_name() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_static("a=1; nexus_session=tok; b=2"));
        assert_eq!(cookie(&headers, SESSION_COOKIE).as_deref(), Some("tok"));
        assert_eq!(cookie(&headers, "c"), None);
    }
}
