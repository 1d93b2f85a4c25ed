//! The chrome around every page: header with the role's navigation and sign-out, skip link,
//! main landmark, footer.

use leptos::prelude::*;

use super::session::use_session;
use crate::domain::{
    model::Role,
    permissions::{self, Action, Grant},
};

/// The navigation a role sees (the server enforces the same table on every call).
pub fn nav_items(role: Role) -> Vec<(&'static str, &'static str)> {
    let may = |a: Action| permissions::grant(role, a) != Grant::No;
    let mut items =
        vec![("/", "Dashboard"), ("/approvals", "Approvals"), ("/notifications", "Notifications")];
    if may(Action::ViewCatalog) {
        items.push(("/catalog", "Catalog"));
    }
    if may(Action::ReadAudit) {
        items.push(("/audit", "Audit log"));
    }
    if may(Action::ManageUsers) {
        items.push(("/users", "Users"));
    }
    items
}

#[component]
pub fn Layout(children: Children) -> impl IntoView {
    let session = use_session();
    view! {
        <a class="skip-link" href="#main">"Skip to content"</a>
        <header class="site-header">
            <a class="brand" href="/">
                <img src="/icons/icon-192.png" alt="" width="32" height="32" />
                <span>"NexusAI Toolkit"</span>
            </a>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    match session.await {
                        Ok(Some(info)) => {
                            let items = nav_items(info.user.role);
                            view! {
                                <nav class="site-nav" aria-label="Main">
                                    <ul>
                                        {items
                                            .into_iter()
                                            .map(|(href, label)| view! { <li><a href=href>{label}</a></li> })
                                            .collect_view()}
                                    </ul>
                                </nav>
                                <div class="who">
                                    <a href="/account" class="account-link" title="Your account and second factor">
                                        <span data-testid="signed-in-as">
                                            {info.user.name.clone()} " · " {info.user.role.label()}
                                        </span>
                                    </a>
                                    // A plain form post: the sign-in page it lands on clears what the
                                    // browser kept (see register-sw.js), with or without the wasm.
                                    <form method="post" action="/sfn/sign-out" class="inline">
                                        <button type="submit" class="button button-quiet" data-testid="sign-out">
                                            "Sign out"
                                        </button>
                                    </form>
                                </div>
                            }
                                .into_any()
                        }
                        _ => ().into_any(),
                    }
                })}
            </Suspense>
        </header>
        <main id="main" class="site-main">
            {children()}
        </main>
        <footer class="site-footer">
            <span>"NexusAI Toolkit " {crate::VERSION}</span>
            " · "
            <a href="/status">"Platform status"</a>
        </footer>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_role_sees_only_the_pages_it_may_use() {
        let paths = |r| nav_items(r).into_iter().map(|(p, _)| p).collect::<Vec<_>>();
        assert_eq!(
            paths(Role::Executive),
            ["/", "/approvals", "/notifications", "/catalog", "/audit", "/users"]
        );
        assert_eq!(paths(Role::SalesManager), ["/", "/approvals", "/notifications", "/catalog", "/audit"]);
        assert_eq!(paths(Role::Rep), ["/", "/approvals", "/notifications", "/catalog"]);
    }
}
