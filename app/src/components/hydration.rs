//! Hydrates the server-rendered page and marks the document when that is done.
//!
//! End-to-end tests and the page-timing benchmark wait for `html[data-hydrated]` before
//! clicking: a click that lands before hydration would otherwise do nothing. The mark is set
//! once the whole page is hydrated — on a page of the lazily loaded chunk, after the chunk has
//! arrived — not by an effect, which runs as soon as the layout exists, while the page inside
//! it may still wait for its chunk.

/// Hydrates `<body>` with the app, then sets `data-hydrated` on `<html>`.
#[cfg(feature = "hydrate")]
pub async fn hydrate_page() {
    use leptos::prelude::document;

    let Some(body) = document().body() else { return };
    // What `leptos::mount::hydrate_lazy` does, with the mark after it.
    let mounted = leptos::mount::hydrate_from_async(body, crate::App).await;
    if let Some(root) = document().document_element() {
        let _ = root.set_attribute("data-hydrated", "true");
    }
    // The moment, for tests and the timing benchmark to compare with resource timings.
    if let Some(performance) = web_sys::window().and_then(|w| w.performance()) {
        let _ = performance.mark("hydrated");
    }
    // The page lives as long as the tab: never unmount it.
    mounted.forget();
}
