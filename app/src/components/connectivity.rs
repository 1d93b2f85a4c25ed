//! Whether the browser is online, and the banner that says how old the shown status is when it
//! is not. On the server (and before hydration) the page counts as online.

use leptos::prelude::*;

use crate::domain::time::Timestamp;

/// `true` while the browser reports a connection.
#[derive(Clone, Copy)]
pub struct Online(pub RwSignal<bool>);

pub fn provide_online() {
    let online = RwSignal::new(true);
    provide_context(Online(online));
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::{JsCast, closure::Closure};
        Effect::new(move |_| {
            let Some(window) = web_sys::window() else { return };
            online.set(window.navigator().on_line());
            for (event, value) in [("online", true), ("offline", false)] {
                let handler = Closure::<dyn Fn()>::new(move || online.set(value));
                let _ = window.add_event_listener_with_callback(event, handler.as_ref().unchecked_ref());
                // Lives as long as the page.
                handler.forget();
            }
        });
    }
}

pub fn use_online() -> RwSignal<bool> {
    expect_context::<Online>().0
}

/// "Offline — status as of HH:MM" while there is no connection; `as_of` is when the server
/// answered for the data on screen.
#[component]
pub fn OfflineBanner(#[prop(into)] as_of: Signal<Option<Timestamp>>) -> impl IntoView {
    let online = use_online();
    view! {
        <Show when=move || !online.get()>
            <p class="offline-banner" role="status" data-testid="offline-banner">
                "Offline — status as of "
                {move || as_of.get().map(|t| format!("{} UTC", t.hh_mm())).unwrap_or_else(|| "an earlier visit".into())}
            </p>
        </Show>
    }
}

/// Why an action is unavailable right now, if it is (offline).
pub fn offline_reason(online: bool) -> Option<&'static str> {
    (!online).then_some("Needs a connection: you are offline.")
}
