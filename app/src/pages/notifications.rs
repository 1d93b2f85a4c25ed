//! Notifications: the newest operation state changes on the user's customers (requests,
//! previews ready, approvals, results), each linking to its deployment.

use leptos::prelude::*;

use crate::components::json_codec::json_resource;
use crate::components::{
    chips::OperationChip,
    last_known::{fetch_or_recall, remember},
    session::{Loading, show},
};
use crate::domain::views::{AccountNotice, AccountNoticeKind, Notification};
use crate::server_fns::notifications::{get_account_notices, get_notifications};

#[component]
pub fn NotificationsPage() -> impl IntoView {
    let data = json_resource(|| (), |_| fetch_or_recall("notifications".into(), get_notifications()));
    Effect::new(move |_| {
        if let Some(Ok(n)) = data.get() {
            remember("notifications", &n);
        }
    });
    view! {
        <section class="panel" aria-labelledby="notifications-heading">
            <h1 id="notifications-heading">"Notifications"</h1>
            <AccountNotices />
            <Suspense fallback=Loading>
                {move || Suspend::new(async move {
                    show(data.await, |items: Vec<Notification>| {
                        if items.is_empty() {
                            return view! { <p class="muted">"Nothing has happened on your customers yet."</p> }.into_any();
                        }
                        view! {
                            <ol class="timeline" data-testid="notifications">
                                {items.into_iter().map(|n| view! {
                                    <li data-testid="notification">
                                        <a href=format!("/deployments/{}", n.deployment_id)>
                                            {n.capability.clone()} " " {n.kind.label()}
                                            {n.target_version.clone().map(|v| format!(" to v{v}"))}
                                        </a>
                                        " for " <strong>{n.customer_name.clone()}</strong> " " {n.environment.as_str()} " "
                                        <OperationChip state=n.state />
                                        <span class="muted small">" " {n.at.to_string()}</span>
                                        {n.error.clone().map(|e| view! { <p class="error small">{e}</p> })}
                                    </li>
                                }).collect_view()}
                            </ol>
                        }
                            .into_any()
                    })
                })}
            </Suspense>
        </section>
    }
}

/// Notices about the user's own account, above the feed (nothing when there are none, or when
/// they cannot be read).
#[component]
fn AccountNotices() -> impl IntoView {
    let notices = json_resource(|| (), |_| get_account_notices());
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                let items: Vec<AccountNotice> = notices.await.unwrap_or_default();
                (!items.is_empty()).then(|| view! {
                    <ul class="notices" data-testid="account-notices">
                        {items.into_iter().map(|n| {
                            let text = match n.kind {
                                AccountNoticeKind::Locked => format!(
                                    "{} failed sign-ins{} locked your password sign-in at {}{}. If that was not you, tell an Executive; single sign-on still works.",
                                    n.failures,
                                    n.source_ip.map(|ip| format!(" from {ip}")).unwrap_or_default(),
                                    n.at,
                                    n.until.map(|u| format!(" until {u}")).unwrap_or_default(),
                                ),
                            };
                            view! { <li class="notice" data-testid="account-notice">{text}</li> }
                        }).collect_view()}
                    </ul>
                })
            })}
        </Suspense>
    }
}
