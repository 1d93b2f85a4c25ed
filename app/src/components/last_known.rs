//! The last-known state kept in the browser (localStorage through gloo-storage), so a page the
//! service worker never cached still shows what the user last saw, with the time it was fetched.
//! On the server these do nothing.

use serde::{Serialize, de::DeserializeOwned};

use crate::server_fns::AppError;

#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
const PREFIX: &str = "nexus.last-known.";

/// Keeps `value` under `key` (best effort: a full or disabled storage only loses the copy).
pub fn remember<T: Serialize>(key: &str, value: &T) {
    #[cfg(feature = "hydrate")]
    {
        use gloo_storage::Storage;
        let _ = gloo_storage::LocalStorage::set(format!("{PREFIX}{key}"), value);
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (key, value);
}

pub fn recall<T: DeserializeOwned>(key: &str) -> Option<T> {
    #[cfg(feature = "hydrate")]
    {
        use gloo_storage::Storage;
        let raw = gloo_storage::LocalStorage::raw().get_item(&format!("{PREFIX}{key}")).ok()??;
        super::json_codec::decode(&raw).ok()
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = key;
        None
    }
}

/// A read that falls back to the last-known copy when the server cannot be reached, and keeps
/// a fresh answer for next time.
pub async fn fetch_or_recall<T, F>(key: String, fetch: F) -> Result<T, AppError>
where
    T: Serialize + DeserializeOwned,
    F: Future<Output = Result<T, AppError>>,
{
    match fetch.await {
        Ok(value) => {
            remember(&key, &value);
            Ok(value)
        }
        Err(AppError::Offline) => recall(&key).ok_or(AppError::Offline),
        Err(e) => Err(e),
    }
}
