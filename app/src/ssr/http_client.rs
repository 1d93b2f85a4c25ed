//! Outbound HTTPS for the few calls that are not AWS SDK calls (Cognito's JWKS and token endpoint,
//! health checks): hyper with
//! rustls (ring) and the system's root certificates, a timeout and a response size limit.

use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};

type Https = hyper_rustls::HttpsConnector<HttpConnector>;

/// Answers above this are refused (a JWKS is a few KB).
const MAX_BODY: usize = 1024 * 1024;
const TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct HttpClient {
    client: Client<Https, Full<axum::body::Bytes>>,
}

impl HttpClient {
    pub fn new() -> Result<Self, String> {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| format!("no root certificates: {e}"))?
            .https_or_http()
            .enable_http1()
            .build();
        Ok(HttpClient { client: Client::builder(TokioExecutor::new()).build(connector) })
    }

    /// GETs `url` and answers its status code (the body is dropped), within `timeout`.
    pub async fn status(&self, url: &str, timeout: Duration) -> Result<u16, String> {
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
