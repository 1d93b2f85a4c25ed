//! The deploy wizard: environment -> capability -> version (changelog shown) -> parameters as a
//! form generated from the template's schema, checked in the browser by the same validator the
//! server runs -> request. A request made offline is queued and sent when the connection returns.

use std::collections::BTreeMap;

use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_params_map};

use crate::components::json_codec::json_resource;
use crate::components::{
    connectivity::use_online,
    last_known::{fetch_or_recall, remember},
    outbox::{Queued, enqueue, new_key},
    session::{Loading, show, use_session},
};
use crate::domain::{
    model::{CapabilityVersion, EnvironmentName, Role},
    parameters::{FieldError, ParamType},
    permissions::{self, Action, Grant},
    views::DeployRequest,
};
use crate::server_fns::{
    AppError,
    deploy::{DeployOptions, get_deploy_options, request_deployment},
};

#[component]
pub fn DeployPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.with(|p| p.get("id").unwrap_or_default());
    let data =
        json_resource(id, |id| fetch_or_recall(format!("deploy.{id}"), get_deploy_options(id.clone())));
    Effect::new(move |_| {
        if let Some(Ok(o)) = data.get() {
            remember(&format!("deploy.{}", o.customer.id), &o);
        }
    });
    view! {
        <Suspense fallback=Loading>
            {move || Suspend::new(async move { show(data.await, |options| view! { <Wizard options /> }) })}
        </Suspense>
    }
}

/// What happens to a request in this environment for this role, in words.
fn outcome(role: Option<Role>, env: Option<EnvironmentName>) -> &'static str {
    match (role, env) {
        (Some(r), Some(e)) => match permissions::grant(r, Action::Operate(e)) {
            Grant::Yes => "You may run this: the change set is previewed first.",
            Grant::WithApproval => "An Executive must approve this before it runs.",
            Grant::No if e == EnvironmentName::Prod => "An Executive must approve this before it runs.",
            Grant::No => "Your Sales Manager must approve this before it runs.",
        },
        _ => "",
    }
}

#[component]
fn Wizard(options: DeployOptions) -> impl IntoView {
    let session = use_session();
    let online = use_online();
    let navigate = use_navigate();
    let customer = options.customer.clone();
    let environments = options.environments.clone();
    let capabilities = options.capabilities.clone();

    let env_id = RwSignal::new(environments.first().map(|e| e.id.to_string()).unwrap_or_default());
    let capability = RwSignal::new(String::new());
    let version = RwSignal::new(String::new());
    let values = RwSignal::new(BTreeMap::<String, String>::new());
    let errors = RwSignal::new(Vec::<FieldError>::new());
    let message = RwSignal::new(None::<String>);
    let submitting = RwSignal::new(false);

    let caps = StoredValue::new(capabilities);
    let envs = StoredValue::new(environments);
    let release = move || -> Option<CapabilityVersion> {
        let (c, v) = (capability.get(), version.get());
        caps.with_value(|caps| {
            caps.iter()
                .find(|d| d.capability.slug == c)
                .and_then(|d| d.releases.iter().find(|r| r.version.to_string() == v).cloned())
        })
    };
    let env_name =
        move || envs.with_value(|e| e.iter().find(|e| e.id.to_string() == env_id.get()).map(|e| e.name));
    let role = move || session.get().and_then(|s| s.ok()).flatten().map(|s| s.user.role);

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(rel) = release() else {
            message.set(Some("Choose a capability and a version.".into()));
            return;
        };
        // The template's `Environment` parameter is the environment deployed to, unless chosen.
        if rel.parameters.get("Environment").is_some()
            && let Some(env) = env_name()
        {
            values.update(|v| {
                v.entry("Environment".into()).or_insert_with(|| env.as_str().to_string());
            });
        }
        // The server's validator, run here first: every field's problem at once.
        if let Err(errs) = rel.parameters.validate(&values.get_untracked()) {
            errors.set(errs);
            message.set(Some("Some parameters need fixing.".into()));
            return;
        }
        errors.set(Vec::new());
        let request = DeployRequest {
            environment_id: env_id.get_untracked(),
            capability: rel.capability.clone(),
            version: rel.version.to_string(),
            parameters: values.get_untracked(),
            auto_execute: false,
        };
        let summary = format!(
            "{} v{} to {} {}",
            rel.capability,
            rel.version,
            customer.name,
            env_name().map(|e| e.as_str()).unwrap_or_default()
        );
        let key = new_key();
        let user = match session.get_untracked() {
            Some(Ok(Some(me))) => me.user.id.to_string(),
            _ => String::new(),
        };
        if !online.get_untracked() {
            enqueue(Queued { key, user, request, summary, refused: None });
            message.set(Some(
                "You are offline: the request is queued and will be sent when the connection returns.".into(),
            ));
            return;
        }
        submitting.set(true);
        let navigate = navigate.clone();
        leptos::task::spawn_local(async move {
            match request_deployment(request.clone(), key.clone()).await {
                Ok(op) => navigate(&format!("/deployments/{}", op.deployment_id), Default::default()),
                Err(AppError::Offline) => {
                    enqueue(Queued { key, user, request, summary, refused: None });
                    message.set(Some(
                        "No connection: the request is queued and will be sent when the connection returns."
                            .into(),
                    ));
                }
                Err(e) => {
                    if let AppError::Invalid { details, .. } = &e {
                        errors.set(details.clone());
                    }
                    message.set(Some(e.to_string()));
                }
            }
            submitting.set(false);
        });
    };

    let field_error = move |name: &str| {
        let field = format!("parameters.{name}");
        errors.with(|e| e.iter().find(|e| e.field == field).map(|e| e.message.clone()))
    };

    view! {
        <section class="panel" aria-labelledby="wizard-heading">
            <p class="crumbs"><a href=format!("/customers/{}", options.customer.id)>{options.customer.name.clone()}</a></p>
            <h1 id="wizard-heading">"Deploy a capability"</h1>
            <form class="form" on:submit=submit data-testid="deploy-form" novalidate>
                <label for="env">"Environment"</label>
                <select id="env" on:change=move |ev| env_id.set(event_target_value(&ev))>
                    {envs.with_value(|envs| envs.iter().map(|e| view! {
                        <option value=e.id.to_string()>{format!("{} · {} · {}", e.name.as_str(), e.account_id, e.region)}</option>
                    }).collect_view())}
                </select>
                <label for="capability">"Capability"</label>
                <select
                    id="capability"
                    on:change=move |ev| {
                        let slug = event_target_value(&ev);
                        let latest = caps.with_value(|c| c.iter().find(|d| d.capability.slug == slug)
                            .and_then(|d| d.releases.iter().find(|r| !r.deprecated)).map(|r| r.version.to_string()));
                        capability.set(slug);
                        version.set(latest.unwrap_or_default());
                        values.set(BTreeMap::new());
                        errors.set(Vec::new());
                    }
                >
                    <option value="">"Choose…"</option>
                    {caps.with_value(|caps| caps.iter().map(|c| view! {
                        <option value=c.capability.slug.clone()>{c.capability.name.clone()}</option>
                    }).collect_view())}
                </select>
                <Show when=move || !capability.get().is_empty()>
                    <label for="version">"Version"</label>
                    <select id="version" prop:value=move || version.get() on:change=move |ev| version.set(event_target_value(&ev))>
                        {move || caps.with_value(|caps| caps.iter()
                            .filter(|d| d.capability.slug == capability.get())
                            .flat_map(|d| d.releases.iter().filter(|r| !r.deprecated))
                            .map(|r| view! { <option value=r.version.to_string()>{format!("v{}", r.version)}</option> })
                            .collect_view())}
                    </select>
                </Show>
                {move || release().map(|rel| view! {
                    <div class="changelog" data-testid="changelog">
                        <h2>"What's in v" {rel.version.to_string()}</h2>
                        <p>{rel.changelog.clone()}</p>
                    </div>
                    <fieldset>
                        <legend>"Parameters"</legend>
                        {rel.parameters.parameters.iter().map(|p| {
                            let name = p.name.clone();
                            let id = format!("param-{name}");
                            let hint = p.description.clone().unwrap_or_default();
                            let placeholder = p.default.clone().map(|d| format!("default: {d}")).unwrap_or_default();
                            let input_type = match (p.no_echo, &p.param_type) {
                                (true, _) => "password",
                                (_, ParamType::Number) => "number",
                                _ => "text",
                            };
                            let (n1, n2, n3) = (name.clone(), name.clone(), name.clone());
                            view! {
                                <label for=id.clone()>{name.clone()}</label>
                                {if p.allowed_values.is_empty() {
                                    view! {
                                        <input id=id.clone() name=name.clone() type=input_type placeholder=placeholder
                                            aria-describedby=format!("{id}-hint")
                                            on:input=move |ev| { let v = event_target_value(&ev); values.update(|m| { if v.is_empty() { m.remove(&n1); } else { m.insert(n1.clone(), v); } }); } />
                                    }.into_any()
                                } else {
                                    view! {
                                        <select id=id.clone() name=name.clone() on:change=move |ev| { let v = event_target_value(&ev); values.update(|m| { if v.is_empty() { m.remove(&n1); } else { m.insert(n1.clone(), v); } }); }>
                                            <option value="">{placeholder.clone()}</option>
                                            {p.allowed_values.iter().map(|a| view! { <option value=a.clone()>{a.clone()}</option> }).collect_view()}
                                        </select>
                                    }.into_any()
                                }}
                                <p class="muted small" id=format!("{id}-hint")>{hint}</p>
                                <p class="error small" role="alert" data-field=n2>{move || field_error(&n3)}</p>
                            }
                        }).collect_view()}
                    </fieldset>
                })}
                <p class="muted" data-testid="deploy-outcome">{move || outcome(role(), env_name())}</p>
                <p class="error" role="alert" data-testid="deploy-message">{move || message.get()}</p>
                <button type="submit" class="button" data-testid="deploy-submit" disabled=move || submitting.get()>
                    {move || if online.get() { "Request preview" } else { "Queue request (offline)" }}
                </button>
            </form>
        </section>
    }
}
