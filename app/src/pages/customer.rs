//! A customer: its environments (account, region, connection) and its capabilities per
//! environment with status and health; "request" or "deploy" by role.

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use crate::components::json_codec::json_resource;
use crate::components::{
    chips::{HealthChip, StatusChip},
    connectivity::OfflineBanner,
    last_known::{fetch_or_recall, remember},
    session::{Loading, show, use_session},
};
use crate::domain::{
    model::{CUSTOMER_ROLE_VERSION, ConnectionStatus, EnvironmentName, Role},
    permissions::{self, Action, Grant},
};
use crate::server_fns::customers::{CustomerPage, get_customer};

#[component]
pub fn CustomerPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.with(|p| p.get("id").unwrap_or_default());
    let data = json_resource(id, |id| fetch_or_recall(format!("customer.{id}"), get_customer(id.clone())));
    Effect::new(move |_| {
        if let Some(Ok(page)) = data.get() {
            remember(&format!("customer.{}", page.detail.customer.id), &page);
        }
    });
    let as_of = Signal::derive(move || data.get().and_then(|r| r.ok()).map(|d| d.as_of));
    view! {
        <OfflineBanner as_of />
        <Suspense fallback=Loading>
            {move || Suspend::new(async move { show(data.await, |page| view! { <CustomerView page /> }) })}
        </Suspense>
    }
}

/// "Deploy" for those who may run changes in some environment, "Request" for the rest.
fn deploy_label(role: Option<Role>) -> &'static str {
    match role {
        Some(r)
            if EnvironmentName::ALL
                .iter()
                .any(|e| permissions::grant(r, Action::Operate(*e)) == Grant::Yes) =>
        {
            "Deploy a capability"
        }
        _ => "Request a deployment",
    }
}

#[component]
fn CustomerView(page: CustomerPage) -> impl IntoView {
    let session = use_session();
    let c = page.detail.customer.clone();
    let deploy_href = format!("/customers/{}/deploy", c.id);
    let role = move || session.get().and_then(|s| s.ok()).flatten().map(|s| s.user.role);
    let environments = page.detail.environments.clone();
    let mut deployments = page.detail.deployments.clone();
    deployments.sort_by(|a, b| {
        (a.deployment.capability.as_str(), a.deployment.environment)
            .cmp(&(b.deployment.capability.as_str(), b.deployment.environment))
    });
    view! {
        <section class="panel" aria-labelledby="customer-heading">
            <div class="panel-head">
                <h1 id="customer-heading" data-testid="customer-name">{c.name.clone()}</h1>
                <a class="button" href=deploy_href data-testid="deploy-link">{move || deploy_label(role())}</a>
            </div>
            <p class="muted">"Cost centre " {c.cost_center.clone()}</p>
        </section>
        <section class="panel" aria-labelledby="env-heading">
            <h2 id="env-heading">"Environments"</h2>
            <div class="table-wrap">
                <table class="grid">
                    <thead>
                        <tr>
                            <th scope="col">"Environment"</th>
                            <th scope="col">"Account"</th>
                            <th scope="col">"Region"</th>
                            <th scope="col">"Connection"</th>
                            <th scope="col">"Customer role"</th>
                        </tr>
                    </thead>
                    <tbody>
                        {environments
                            .into_iter()
                            .map(|e| {
                                let connection = match e.connection {
                                    ConnectionStatus::Connected => "connected",
                                    ConnectionStatus::Failed => "failed",
                                    ConnectionStatus::Unchecked => "not checked",
                                };
                                // Older roles lack the permissions boundary: the customer
                                // must update their role stack (infra/customer-role.yaml).
                                let role = match e.role_version {
                                    None => "not checked".to_string(),
                                    Some(v) if v >= CUSTOMER_ROLE_VERSION => format!("v{v}"),
                                    Some(v) => format!("v{v}: update to v{CUSTOMER_ROLE_VERSION}"),
                                };
                                view! {
                                    <tr>
                                        <td>{e.name.as_str()}</td>
                                        <td class="mono">{e.account_id.clone()}</td>
                                        <td>{e.region.clone()}</td>
                                        <td>{connection}</td>
                                        <td data-testid="role-version">{role}</td>
                                    </tr>
                                }
                            })
                            .collect_view()}
                    </tbody>
                </table>
            </div>
        </section>
        <section class="panel" aria-labelledby="deployments-heading">
            <h2 id="deployments-heading">"Capabilities"</h2>
            {if deployments.is_empty() {
                view! { <p class="muted">"Nothing deployed yet."</p> }.into_any()
            } else {
                view! {
                    <ul class="cards" data-testid="deployment-list">
                        {deployments
                            .into_iter()
                            .map(|v| {
                                let d = v.deployment;
                                view! {
                                    <li class="card">
                                        <a href=format!("/deployments/{}", d.id)>
                                            <strong>{d.capability.clone()}</strong>
                                            " "
                                            <span class="muted">{d.environment.as_str()} " · v" {d.version.to_string()}</span>
                                        </a>
                                        <div class="chips">
                                            <StatusChip status=d.status />
                                            <HealthChip health=d.health />
                                            {v.version_deprecated.then(|| view! { <span class="chip">"deprecated version"</span> })}
                                        </div>
                                    </li>
                                }
                            })
                            .collect_view()}
                    </ul>
                }
                    .into_any()
            }}
        </section>
    }
}
