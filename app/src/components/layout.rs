//! The chrome around every page: header, skip link, main landmark, footer.

use leptos::prelude::*;

use super::hydration::HydrationMarker;

#[component]
pub fn Layout(children: Children) -> impl IntoView {
    view! {
        <a class="skip-link" href="#main">"Skip to content"</a>
        <header class="site-header">
            <a class="brand" href="/">
                <img src="/icons/icon-192.png" alt="" width="32" height="32" />
                <span>"NexusAI Toolkit"</span>
            </a>
        </header>
        <main id="main" class="site-main">
            {children()}
        </main>
        <footer class="site-footer">
            <span>"NexusAI Toolkit " {crate::VERSION}</span>
        </footer>
        <HydrationMarker />
    }
}
