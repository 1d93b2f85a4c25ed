//! Helpers the integration tests share.

use std::time::{SystemTime, UNIX_EPOCH};

/// A name no other test (or earlier run) uses: tables, directories.
pub fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// Integration tests need the AWS emulator the test command starts; say so instead of skipping.
pub fn require_emulator() {
    assert!(
        std::env::var("AWS_ENDPOINT_URL").is_ok(),
        "AWS_ENDPOINT_URL is not set: run these tests through `make test`, which starts the AWS emulator"
    );
}
