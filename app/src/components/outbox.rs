//! Requests made while offline: kept in the browser with a key generated here, shown as
//! pending, and sent when the connection returns (after signing in again if the session
//! expired). The server keys requests by user and key, so sending one again never makes a
//! second operation. Only the user who queued a request sends it: someone else signing in on
//! the device finds it gone (`device::claim`).

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::{connectivity::use_online, device, session::use_session};
use crate::domain::views::DeployRequest;
use crate::server_fns::{AppError, deploy::request_deployment};

#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
const STORAGE_KEY: &str = "nexus.outbox";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Queued {
    /// The idempotency key, generated in the browser once per request.
    pub key: String,
    /// Who queued it (user id).
    #[serde(default)]
    pub user: String,
    pub request: DeployRequest,
    /// What the user sees: "lead-scoring v1.2.0 to Acme dev".
    pub summary: String,
    /// Why the last attempt did not go through, if it was refused (it is then dropped).
    pub refused: Option<String>,
}

#[derive(Clone, Copy)]
pub struct Outbox(pub RwSignal<Vec<Queued>>);

fn load() -> Vec<Queued> {
    #[cfg(feature = "hydrate")]
    {
        use gloo_storage::Storage;
        gloo_storage::LocalStorage::get(STORAGE_KEY).unwrap_or_default()
    }
    #[cfg(not(feature = "hydrate"))]
    Vec::new()
}

fn save(items: &[Queued]) {
    #[cfg(feature = "hydrate")]
    {
        use gloo_storage::Storage;
        let _ = gloo_storage::LocalStorage::set(STORAGE_KEY, items);
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = items;
}

/// A fresh idempotency key (a UUID from the browser's CSPRNG).
pub fn new_key() -> String {
    #[cfg(feature = "hydrate")]
    if let Some(c) = web_sys::window().and_then(|w| w.crypto().ok()) {
        return c.random_uuid();
    }
    String::new()
}

pub fn use_outbox() -> RwSignal<Vec<Queued>> {
    expect_context::<Outbox>().0
}

pub fn enqueue(item: Queued) {
    let outbox = use_outbox();
    outbox.update(|items| items.push(item));
    save(&outbox.get_untracked());
}

/// Provides the outbox and sends what it holds whenever the browser is online and signed in.
pub fn provide_outbox() {
    let outbox = RwSignal::new(Vec::<Queued>::new());
    provide_context(Outbox(outbox));
    let online = use_online();
    let session = use_session();
    let sending = StoredValue::new(false);
    Effect::new(move |_| {
        // Loaded after hydration so server and browser render the same first HTML.
        if outbox.with_untracked(|o| o.is_empty()) {
            let stored = load();
            if !stored.is_empty() {
                outbox.set(stored);
            }
        }
    });
    Effect::new(move |_| {
        let Some(Ok(Some(me))) = session.get() else { return };
        let me = me.user.id.to_string();
        // Another user's data is wiped from the device before anything is sent; their
        // requests are never sent under this session.
        device::claim(&me);
        if outbox.with(|o| o.iter().any(|q| q.user != me)) {
            outbox.update(|o| o.retain(|q| q.user == me));
            save(&outbox.get_untracked());
        }
        let pending = outbox.with(|o| o.iter().any(|q| q.refused.is_none()));
        if !(online.get() && pending) || sending.get_value() {
            return;
        }
        sending.set_value(true);
        leptos::task::spawn_local(async move {
            let items = outbox.get_untracked();
            for item in items.into_iter().filter(|q| q.refused.is_none() && q.user == me) {
                let result = request_deployment(item.request.clone(), item.key.clone()).await;
                let retry = result.as_ref().is_err_and(AppError::worth_retrying);
                outbox.update(|o| match &result {
                    Ok(_) => o.retain(|q| q.key != item.key),
                    // No connection, an expired session, a busy server, an answer cut off (the
                    // page navigated away mid-send): keep it for later; its key makes the
                    // resend safe.
                    Err(_) if retry => {}
                    Err(e) => {
                        if let Some(q) = o.iter_mut().find(|q| q.key == item.key) {
                            q.refused = Some(e.to_string());
                        }
                    }
                });
                save(&outbox.get_untracked());
                if retry {
                    break;
                }
            }
            sending.set_value(false);
        });
    });
}

/// The queued requests, shown on every page while there are any.
#[component]
pub fn OutboxPanel() -> impl IntoView {
    let outbox = use_outbox();
    let dismiss = move |key: String| {
        outbox.update(|o| o.retain(|q| q.key != key));
        save(&outbox.get_untracked());
    };
    view! {
        <Show when=move || outbox.with(|o| !o.is_empty())>
            <section class="panel outbox" aria-labelledby="outbox-heading" data-testid="outbox">
                <h2 id="outbox-heading">"Waiting to be sent"</h2>
                <ul>
                    <For each=move || outbox.get() key=|q| (q.key.clone(), q.refused.clone()) let:q>
                        <li data-testid="outbox-item">
                            {q.summary.clone()}
                            {match q.refused.clone() {
                                None => view! { <span class="chip">" pending"</span> }.into_any(),
                                Some(reason) => {
                                    let key = q.key.clone();
                                    view! {
                                        <span class="error">" refused: " {reason}</span>
                                        <button type="button" class="button button-quiet" on:click=move |_| dismiss(key.clone())>
                                            "Dismiss"
                                        </button>
                                    }
                                        .into_any()
                                }
                            }}
                        </li>
                    </For>
                </ul>
            </section>
        </Show>
    }
}
