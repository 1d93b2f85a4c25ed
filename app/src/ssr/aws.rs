//! The AWS SDK configuration every adapter shares.
//!
//! Credentials, region and endpoint come from the standard chain (`AWS_*` variables, profiles,
//! container and instance roles); `AWS_ENDPOINT_URL` points every client at another endpoint.
//! Nothing here knows whether that endpoint is AWS or an emulator.

use std::time::Duration;

use aws_config::{BehaviorVersion, SdkConfig, retry::RetryConfig, timeout::TimeoutConfig};
use aws_smithy_http_client::{Builder, tls};

/// Loads the shared SDK configuration: one rustls (ring) HTTP client, retries with backoff and
/// jitter for throttling and 5xx, and bounded timeouts so a dead endpoint fails fast.
pub async fn load_sdk_config() -> SdkConfig {
    let http_client = Builder::new()
        .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::Ring))
        .build_https();
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client)
        .retry_config(RetryConfig::standard().with_max_attempts(4))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_attempt_timeout(Duration::from_secs(10))
                .operation_timeout(Duration::from_secs(30))
                .build(),
        )
        .load()
        .await
}
