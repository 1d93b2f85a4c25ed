//! Outbound HTTPS for the few calls that are not AWS SDK calls (Cognito's JWKS and token endpoint,
//! health checks): hyper with
//! rustls (ring) and the system's root certificates, a timeout and a response size limit.
//!
//! Health checks go to URLs users chose, so their client ([`HttpClient::public_only`]) refuses
//! inside addresses twice: the URL's own host before the request (address literals never reach
//! a resolver), and every address a name resolves to (so a public name pointing inside, or
//! rebound between check and connect, still cannot be reached: the connector only ever sees the
//! addresses that passed). Redirects are never followed (hyper's client does not).

use std::{
    future::Future,
    net::SocketAddr,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use http_body_util::{BodyExt, Full, Limited};
use hyper_util::{
    client::legacy::{
        Client,
        connect::{HttpConnector, dns::Name},
    },
    rt::TokioExecutor,
};

use crate::domain::outbound_url::{OutboundPolicy, check_public_url, internal_ip};

type Https = hyper_rustls::HttpsConnector<HttpConnector<Resolver>>;

/// Answers above this are refused (a JWKS is a few KB).
const MAX_BODY: usize = 1024 * 1024;
const TIMEOUT: Duration = Duration::from_secs(5);

/// Name resolution through the system's resolver, keeping only the addresses the policy allows
/// (all of them for the general client).
#[derive(Clone, Copy)]
pub struct Resolver {
    policy: Option<OutboundPolicy>,
}

impl Resolver {
    /// Keeps only the addresses `policy` allows; a name with none left is refused.
    pub fn public_only(policy: OutboundPolicy) -> Self {
        Resolver { policy: Some(policy) }
    }
}

type Resolving = Pin<Box<dyn Future<Output = Result<std::vec::IntoIter<SocketAddr>, std::io::Error>> + Send>>;

impl tower::Service<Name> for Resolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = Resolving;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let policy = self.policy;
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let Some(policy) = policy else { return Ok(found.into_iter()) };
            let allowed: Vec<SocketAddr> =
                found.into_iter().filter(|a| !internal_ip(a.ip(), policy)).collect();
            if allowed.is_empty() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    format!("{host} resolves only to addresses inside a network"),
                ));
            }
            Ok(allowed.into_iter())
        })
    }
}

/// What the health checks need of HTTP: a URL's status code within a timeout. A trait so the
/// tests can wrap the real client (latency, failures) rather than replace it.
#[async_trait::async_trait]
pub trait StatusProbe: Send + Sync {
    async fn status(&self, url: &str, timeout: Duration) -> Result<u16, String>;
}

#[async_trait::async_trait]
impl StatusProbe for HttpClient {
    async fn status(&self, url: &str, timeout: Duration) -> Result<u16, String> {
        HttpClient::status(self, url, timeout).await
    }
}

#[derive(Clone)]
pub struct HttpClient {
    client: Client<Https, Full<axum::body::Bytes>>,
    /// `Some` for the client of user-chosen URLs: every request is checked against it.
    policy: Option<OutboundPolicy>,
}

impl HttpClient {
    /// The client for the toolkit's own configured endpoints (Cognito, OTLP).
    pub fn new() -> Result<Self, String> {
        Self::with_policy(None)
    }

    /// The client for URLs users chose (health checks): public addresses only.
    pub fn public_only(policy: OutboundPolicy) -> Result<Self, String> {
        Self::with_policy(Some(policy))
    }

    fn with_policy(policy: Option<OutboundPolicy>) -> Result<Self, String> {
        let mut http = HttpConnector::new_with_resolver(Resolver { policy });
        http.enforce_http(false);
        http.set_connect_timeout(Some(TIMEOUT));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| format!("no root certificates: {e}"))?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Ok(HttpClient { client: Client::builder(TokioExecutor::new()).build(connector), policy })
    }

    /// GETs `url` and answers its status code (the body is never read), within `timeout`.
    pub async fn status(&self, url: &str, timeout: Duration) -> Result<u16, String> {
        if let Some(policy) = self.policy {
            check_public_url(url, policy).map_err(|e| format!("{url}: refused: {e}"))?;
        }
        let uri: axum::http::Uri = url.parse().map_err(|e| format!("{url}: {e}"))?;
        let request = axum::http::Request::get(uri).body(Full::default()).map_err(|e| e.to_string())?;
        let response = tokio::time::timeout(timeout, self.client.request(request))
            .await
            .map_err(|_| format!("{url}: no answer within {} ms", timeout.as_millis()))?
            .map_err(|e| format!("{url}: {e}"))?;
        Ok(response.status().as_u16())
    }

    /// GETs a JSON document.
    pub async fn get_json(&self, url: &str) -> Result<serde_json::Value, String> {
        let uri: axum::http::Uri = url.parse().map_err(|e| format!("{url}: {e}"))?;
        let request = axum::http::Request::get(uri).body(Full::default()).map_err(|e| e.to_string())?;
        let response = tokio::time::timeout(TIMEOUT, self.client.request(request))
            .await
            .map_err(|_| format!("{url}: no answer within {} s", TIMEOUT.as_secs()))?
            .map_err(|e| format!("{url}: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("{url}: HTTP {}", response.status()));
        }
        let body = Limited::new(response.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| format!("{url}: {e}"))?
            .to_bytes();
        serde_json::from_slice(&body).map_err(|e| format!("{url}: not JSON: {e}"))
    }

    /// Sends a prepared request and answers the whole response (the OTLP exporter's transport).
    pub async fn send(
        &self,
        request: axum::http::Request<axum::body::Bytes>,
        timeout: Duration,
    ) -> Result<axum::http::Response<axum::body::Bytes>, String> {
        let url = request.uri().to_string();
        let response = tokio::time::timeout(timeout, async {
            let response =
                self.client.request(request.map(Full::new)).await.map_err(|e| format!("{url}: {e}"))?;
            let (head, body) = response.into_parts();
            let body = Limited::new(body, MAX_BODY).collect().await.map_err(|e| format!("{url}: {e}"))?;
            Ok::<_, String>(axum::http::Response::from_parts(head, body.to_bytes()))
        })
        .await
        .map_err(|_| format!("{url}: no answer within {} ms", timeout.as_millis()))??;
        Ok(response)
    }

    /// POSTs an `application/x-www-form-urlencoded` form and answers the status and the JSON body
    /// (`null` when the body is not JSON): OAuth token endpoints answer errors as JSON too.
    pub async fn post_form(
        &self,
        url: &str,
        form: &[(&str, &str)],
    ) -> Result<(u16, serde_json::Value), String> {
        let uri: axum::http::Uri = url.parse().map_err(|e| format!("{url}: {e}"))?;
        let body = crate::url::query(form);
        let request = axum::http::Request::post(uri)
            .header(axum::http::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(axum::http::header::ACCEPT, "application/json")
            .body(Full::from(body))
            .map_err(|e| e.to_string())?;
        let response = tokio::time::timeout(TIMEOUT, self.client.request(request))
            .await
            .map_err(|_| format!("{url}: no answer within {} s", TIMEOUT.as_secs()))?
            .map_err(|e| format!("{url}: {e}"))?;
        let status = response.status().as_u16();
        let body = Limited::new(response.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| format!("{url}: {e}"))?
            .to_bytes();
        Ok((status, serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null)))
    }
}
