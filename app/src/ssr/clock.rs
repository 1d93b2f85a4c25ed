//! The server's clock, in the domain's [`Timestamp`].

use std::time::{SystemTime, UNIX_EPOCH};

use crate::domain::time::Timestamp;

/// Now, in milliseconds since the Unix epoch.
pub fn now() -> Timestamp {
    let millis = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
    Timestamp::from_millis(millis)
}
