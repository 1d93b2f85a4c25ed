//! Users (Executives): who can sign in, with which role and team; create, deactivate, unlock, reset a second factor.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use crate::components::json_codec::json_resource;
use crate::components::{
    connectivity::use_online,
    session::{Loading, show},
};
use crate::domain::{model::User, views::LockedAccount};
use crate::server_fns::{
    AppError,
    users::{CreateUser, ResetUserMfa, SetUserActive, UnlockUser, UsersPage, get_users},
};

fn error_text<T>(value: Option<Result<T, AppError>>) -> Option<String> {
    match value {
        Some(Err(AppError::Offline)) => Some("No connection: nothing was sent.".into()),
        Some(Err(e)) => Some(e.to_string()),
        _ => None,
    }
}

#[component]
pub fn UsersPage() -> impl IntoView {
    let create = ServerAction::<CreateUser>::new();
    let set_active = ServerAction::<SetUserActive>::new();
    let unlock = ServerAction::<UnlockUser>::new();
    let reset_mfa = ServerAction::<ResetUserMfa>::new();
    // A page at a time (`?after=<cursor>`, a link: works without JS).
    let query = use_query_map();
    let data = json_resource(
        move || {
            (
                query.with(|q| q.get("after")),
                create.version().get(),
                set_active.version().get(),
                unlock.version().get(),
            )
        },
        |(after, _, _, _)| get_users(after),
    );
    let online = use_online();
    let errors = move || {
        error_text(create.value().get())
            .or_else(|| error_text(set_active.value().get()))
            .or_else(|| error_text(unlock.value().get()))
            .or_else(|| error_text(reset_mfa.value().get()))
    };
    let unlocked = move || {
        matches!(unlock.value().get(), Some(Ok(()))).then_some("Unlocked.").or_else(|| {
            matches!(reset_mfa.value().get(), Some(Ok(()))).then_some(
                "Second factor removed: the user was signed out and sets one up at the next sign-in.",
            )
        })
    };
    view! {
        <section class="panel" aria-labelledby="users-heading">
            <h1 id="users-heading">"Users"</h1>
            <p class="error" role="alert" data-testid="users-error">{errors}</p>
            <p class="muted" role="status">{unlocked}</p>
            <Transition fallback=Loading>
                {move || Suspend::new(async move {
                    show(data.await, move |UsersPage { users, next, managers, locked }| {
                        let more = next.map(|c| view! {
                            <p><a href=format!("/users?after={}", crate::url::encode(&c)) data-testid="more-users">"More users"</a></p>
                        });
                        let name_of = move |id: &Option<crate::domain::ids::Id>| {
                            id.as_ref().and_then(|id| managers.iter().find(|m| &m.id == id)).map(|m| m.name.clone()).unwrap_or_default()
                        };
                        let is_locked = {
                            let locked: Vec<_> = locked.iter().filter_map(|l| l.user_id.clone()).collect();
                            move |id: &crate::domain::ids::Id| locked.contains(id)
                        };
                        view! {
                            <LockedAccounts locked=locked unlock=unlock />
                            <div class="table-wrap">
                                <table class="grid" data-testid="users">
                                    <thead>
                                        <tr><th scope="col">"Name"</th><th scope="col">"Email"</th><th scope="col">"Role"</th><th scope="col">"Manager"</th><th scope="col">"Status"</th><th scope="col">"Actions"</th></tr>
                                    </thead>
                                    <tbody>
                                        {users.into_iter().map(|u| {
                                            let (id1, id2, id3) = (u.id.to_string(), u.id.to_string(), u.id.to_string());
                                            let (rev, active, locked) = (u.rev, u.active, is_locked(&u.id));
                                            view! {
                                                <tr data-testid="user-row">
                                                    <td>{u.name.clone()}</td>
                                                    <td>{u.email.clone()}</td>
                                                    <td>{u.role.label()}</td>
                                                    <td>{name_of(&u.manager_id)}</td>
                                                    <td>{match (active, locked) {
                                                        (false, _) => "deactivated",
                                                        (true, true) => "locked",
                                                        (true, false) => "active",
                                                    }}</td>
                                                    <td class="actions">
                                                        <button type="button" class="button button-quiet" disabled=move || !online.get()
                                                            on:click=move |_| { set_active.dispatch(SetUserActive { id: id1.clone(), rev, active: !active }); }>
                                                            {if active { "Deactivate" } else { "Activate" }}
                                                        </button>
                                                        // On every row: the server says when there is nothing to reset.
                                                        <button type="button" class="button button-quiet" data-testid="reset-mfa"
                                                            disabled=move || !online.get() || reset_mfa.pending().get()
                                                            on:click=move |_| { reset_mfa.dispatch(ResetUserMfa { id: id3.clone() }); }>
                                                            "Reset second factor"
                                                        </button>
                                                        {locked.then(|| view! {
                                                            <button type="button" class="button button-quiet" disabled=move || !online.get()
                                                                on:click=move |_| { unlock.dispatch(UnlockUser { id: id2.clone() }); }>
                                                                "Unlock"
                                                            </button>
                                                        })}
                                                    </td>
                                                </tr>
                                            }
                                        }).collect_view()}
                                    </tbody>
                                </table>
                            </div>
                            {more}
                        }
                    })
                })}
            </Transition>
        </section>
        <section class="panel narrow" aria-labelledby="new-user-heading">
            <h2 id="new-user-heading">"Add a user"</h2>
            <ActionForm action=create attr:class="form" attr:data-testid="new-user">
                <label for="new-email">"Email"</label>
                <input id="new-email" name="email" type="email" required autocomplete="off" />
                <label for="new-name">"Name"</label>
                <input id="new-name" name="name" type="text" required autocomplete="off" />
                <label for="new-role">"Role"</label>
                <select id="new-role" name="role">
                    <option value="rep">"Rep"</option>
                    <option value="sales_manager">"Sales Manager"</option>
                    <option value="executive">"Executive"</option>
                </select>
                <label for="new-manager">"Sales Manager (for a Rep)"</label>
                <Transition fallback=|| ()>
                    {move || Suspend::new(async move {
                        let managers: Vec<User> = data.await.map(|p| p.managers).unwrap_or_default();
                        view! {
                            <select id="new-manager" name="manager_id">
                                <option value="">"None"</option>
                                {managers.into_iter().map(|m| view! { <option value=m.id.to_string()>{m.name}</option> }).collect_view()}
                            </select>
                        }
                    })}
                </Transition>
                <label for="new-password">"First password"</label>
                <input id="new-password" name="password" type="password" required autocomplete="new-password" />
                <button type="submit" class="button" disabled=move || create.pending().get() || !online.get()>"Add user"</button>
            </ActionForm>
        </section>
    }
}

/// Emails whose password sign-in is locked now: who, until when, and unlock for a user's.
#[component]
fn LockedAccounts(locked: Vec<LockedAccount>, unlock: ServerAction<UnlockUser>) -> impl IntoView {
    let online = use_online();
    if locked.is_empty() {
        return view! { <p class="muted" data-testid="no-locked-accounts">"No account is locked."</p> }
            .into_any();
    }
    view! {
        <h2 id="locked-heading">"Locked accounts"</h2>
        <p class="muted small">"Five failed sign-ins lock an email's password sign-in for a while; single sign-on still works. "
            "An email nobody has was guessed at."</p>
        <ul class="list" aria-labelledby="locked-heading" data-testid="locked-accounts">
            {locked.into_iter().map(|l| {
                let who = l.name.clone().map(|n| format!("{n} ({})", l.email)).unwrap_or_else(|| format!("{} (no such user)", l.email));
                view! {
                    <li data-testid="locked-account">
                        <strong>{who}</strong>
                        <span class="muted small">" locked until " {l.locked_until.to_string()} " "</span>
                        {l.user_id.map(|id| {
                            let id = id.to_string();
                            view! {
                                <button type="button" class="button button-quiet" disabled=move || !online.get()
                                    on:click=move |_| { unlock.dispatch(UnlockUser { id: id.clone() }); }>
                                    "Unlock"
                                </button>
                            }
                        })}
                    </li>
                }
            }).collect_view()}
        </ul>
    }
    .into_any()
}
