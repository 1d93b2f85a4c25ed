//! The HTTP surface: pages, server functions, `/health` and the REST API, behind the security
//! layers (client IP, rate limits, Origin check, session, headers).

pub mod api;
mod caching;
pub mod error;
pub mod event_stream;
pub mod extract;
mod health;
pub mod security;
pub mod sfn;
mod shell;
mod sso;

use axum::{Router, middleware::from_fn_with_state, routing::get};
use leptos_axum::{LeptosRoutes, generate_route_list};
use tower_http::{
    compression::{
        CompressionLayer, CompressionLevel,
        predicate::{DefaultPredicate, Predicate, SizeAbove},
    },
    trace::TraceLayer,
};

use self::shell::shell;
use super::state::AppState;
use crate::App;

/// Smallest body worth compressing, in bytes.
pub const MIN_COMPRESSED: u16 = 1024;

/// The whole application as one router.
pub fn router(state: AppState) -> Router {
    let routes = generate_route_list(App);
    let options = state.leptos_options.clone();
    Router::new()
        .route("/health", get(health::health))
        .route("/metrics", get(metrics))
        .route("/auth/sso", get(sso::start))
        .route("/auth/callback", get(sso::callback))
        .merge(api::router())
        .leptos_routes(&state, routes, move || shell(options.clone()))
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        // Innermost first: the session needs the client IP; the limits run before anything costly.
        .layer(from_fn_with_state(state.clone(), security::session))
        .layer(from_fn_with_state(state.clone(), security::origin_check))
        .layer(from_fn_with_state(state.clone(), security::rate_limit))
        .layer(from_fn_with_state(state.clone(), security::client_info))
        .layer(from_fn_with_state(state.clone(), security::headers))
        // Inside compression: ETags are of the content, not of one encoding of it.
        .layer(axum::middleware::from_fn(caching::caching))
        // Responses made per request are compressed fast (brotli 1 / gzip 1: most of the gain
        // for a fraction of the default's CPU; the static bundle is precompressed at the best
        // level by the build). Below about a packet, compressing saves nothing on the wire.
        .layer(
            CompressionLayer::new()
                .quality(CompressionLevel::Precise(1))
                .compress_when(DefaultPredicate::new().and(SizeAbove::new(MIN_COMPRESSED))),
        )
        .layer(from_fn_with_state(state.clone(), request_metrics))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(super::telemetry::request_span::<axum::body::Body>)
                .on_response(super::telemetry::record_response::<axum::body::Body>),
        )
        .with_state(state)
}

/// Times every request to its response head, labelled with the route pattern it matched
/// (static files and unknown paths share `(fallback)`).
async fn request_metrics(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let started = std::time::Instant::now();
    let route = req.extensions().get::<axum::extract::MatchedPath>().map(|p| p.as_str().to_string());
    // Only the methods the API uses name a series: any other token a client sends (hyper takes
    // extension methods) would otherwise add a series each.
    let method = match *req.method() {
        axum::http::Method::GET => "GET",
        axum::http::Method::HEAD => "HEAD",
        axum::http::Method::POST => "POST",
        axum::http::Method::PUT => "PUT",
        axum::http::Method::PATCH => "PATCH",
        axum::http::Method::DELETE => "DELETE",
        axum::http::Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    };
    let response = next.run(req).await;
    let route = route.as_deref().unwrap_or("(fallback)");
    state.metrics.request(route, method, response.status().as_u16(), started.elapsed());
    response
}

/// Prometheus text format; counts only, nothing about customers.
async fn metrics(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> impl axum::response::IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render())
}

/// Resolves on Ctrl-C or SIGTERM, so in-flight requests finish before the process exits.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
