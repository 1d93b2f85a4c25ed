//! Marks the document once the browser has hydrated it.
//!
//! End-to-end tests wait for `html[data-hydrated]` before clicking: a click that lands before
//! hydration would otherwise do nothing and make tests flaky. Effects run only in the browser.

use leptos::prelude::*;

#[component]
pub fn HydrationMarker() -> impl IntoView {
    Effect::new(move |_| {
        #[cfg(feature = "hydrate")]
        if let Some(root) = web_sys::window().and_then(|w| w.document()).and_then(|d| d.document_element()) {
            let _ = root.set_attribute("data-hydrated", "true");
        }
    });
}
