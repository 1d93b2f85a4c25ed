//! Whose data the browser holds. Signing out wipes it (register-sw.js); a session that only
//! expired does not, so the same user signing in again still finds the requests they queued
//! offline. When someone else signs in on the device, what the previous user left (last-known
//! state, queued requests, cached pages) is wiped before anything else happens.

#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
const OWNER_KEY: &str = "nexus.owner";

/// Records `user` as the device's user. `false` when the device held another user's data,
/// which is then gone.
pub fn claim(user: &str) -> bool {
    #[cfg(feature = "hydrate")]
    {
        use gloo_storage::Storage;
        let owner: Option<String> = gloo_storage::LocalStorage::get(OWNER_KEY).ok();
        let kept = owner.as_deref().is_none_or(|o| o == user);
        if !kept {
            forget();
        }
        if owner.as_deref() != Some(user) {
            let _ = gloo_storage::LocalStorage::set(OWNER_KEY, user);
        }
        kept
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = user;
        true
    }
}

/// register-sw.js's `nexusForgetDevice`: every `nexus.*` key and every service-worker cache
/// (the shell is cached again), the same as on sign-out.
#[cfg(feature = "hydrate")]
fn forget() {
    use wasm_bindgen::{JsCast, JsValue};
    let Some(window) = web_sys::window() else { return };
    let f = js_sys::Reflect::get(&window, &JsValue::from_str("nexusForgetDevice")).ok();
    match f.as_ref().and_then(|f| f.dyn_ref::<js_sys::Function>()) {
        Some(f) => {
            let _ = f.call0(&window);
        }
        // Without the script (it failed to load) the stored state still goes.
        None => {
            use gloo_storage::Storage;
            let storage = gloo_storage::LocalStorage::raw();
            let keys: Vec<String> = (0..storage.length().unwrap_or(0))
                .filter_map(|i| storage.key(i).ok().flatten())
                .filter(|k| k.starts_with("nexus."))
                .collect();
            for key in keys {
                let _ = storage.remove_item(&key);
            }
        }
    }
}
