//! The application and its routes (the HTML document around it is server-only: `ssr::http::shell`).

use leptos::prelude::*;
use leptos_meta::{Title, provide_meta_context};
use leptos_router::{
    Lazy, LazyRoute, ParamSegment, SsrMode, StaticSegment,
    components::{Route, Router, Routes},
};

use crate::components::{
    connectivity::provide_online,
    layout::Layout,
    outbox::{OutboxPanel, provide_outbox},
    session::provide_session,
};
use crate::pages::{
    account::AccountPage, approvals::ApprovalsPage, audit::AuditPage, catalog::CatalogPage,
    customer::CustomerPage, dashboard::DashboardPage, deploy::DeployPage, deployment::DeploymentPage,
    not_found::NotFoundPage, notifications::NotificationsPage, sign_in::SignInPage, status::StatusPage,
    users::UsersPage,
};

/// The application: routes and the chrome around every page. Pages render whole on the server
/// (`SsrMode::Async`): readable without JavaScript, and a page's status (404 for a customer
/// that is not the user's) is known before the first byte goes out.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    provide_session();
    provide_online();
    provide_outbox();
    view! {
        <Title text="NexusAI Toolkit" />
        <Router>
            <Layout>
                <OutboxPanel />
                <Routes fallback=NotFoundPage>
                    <Route path=StaticSegment("") view=DashboardPage ssr=SsrMode::Async />
                    <Route path=StaticSegment("login") view=SignInPage ssr=SsrMode::Async />
                    <Route path=StaticSegment("status") view=StatusPage ssr=SsrMode::Async />
                    <Route path=StaticSegment("approvals") view=ApprovalsPage ssr=SsrMode::Async />
                    <Route path=StaticSegment("catalog") view={Lazy::<Catalog>::new()} ssr=SsrMode::Async />
                    <Route path=StaticSegment("audit") view={Lazy::<Audit>::new()} ssr=SsrMode::Async />
                    <Route path=StaticSegment("users") view={Lazy::<Users>::new()} ssr=SsrMode::Async />
                    <Route path=StaticSegment("notifications") view=NotificationsPage ssr=SsrMode::Async />
                    <Route path=StaticSegment("account") view={Lazy::<Account>::new()} ssr=SsrMode::Async />
                    <Route
                        path=(StaticSegment("customers"), ParamSegment("id"))
                        view=CustomerPage
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=(StaticSegment("customers"), ParamSegment("id"), StaticSegment("deploy"))
                        view={Lazy::<Deploy>::new()}
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=(StaticSegment("deployments"), ParamSegment("id"))
                        view={Lazy::<Deployment>::new()}
                        ssr=SsrMode::Async
                    />
                </Routes>
            </Layout>
        </Router>
    }
}

/// The pages most visits never open — the deploy wizard, a deployment's detail, users, the catalog
/// and the audit log — are one wasm chunk of their own (`cargo leptos build --split`), fetched
/// when one of them is first opened, so the bundle every page loads carries only the everyday
/// pages (sign-in, dashboard, customer, approvals, notifications, status). One split point, not
/// one per page: each split point multiplies the chunks (code shared by any subset of them gets
/// its own file); one per page made 145 files, 50-100 wasm requests per page load.
///
/// The server renders these pages like any other; hydration fetches the chunk (each route's
/// `preload`) and waits for it; the service worker caches it at install, so they open offline
/// too.
#[derive(Clone, Copy)]
enum Occasional {
    Deploy,
    Deployment,
    Users,
    Catalog,
    Audit,
    Account,
}

#[lazy]
fn occasional_page(page: Occasional) -> AnyView {
    match page {
        Occasional::Deploy => view! { <DeployPage /> }.into_any(),
        Occasional::Deployment => view! { <DeploymentPage /> }.into_any(),
        Occasional::Users => view! { <UsersPage /> }.into_any(),
        Occasional::Catalog => view! { <CatalogPage /> }.into_any(),
        Occasional::Audit => view! { <AuditPage /> }.into_any(),
        Occasional::Account => view! { <AccountPage /> }.into_any(),
    }
}

/// A route to one of the [`Occasional`] pages.
macro_rules! occasional_routes {
    ($($page:ident),* $(,)?) => {$(
        struct $page;

        impl LazyRoute for $page {
            fn data() -> Self {
                // The page loads its own data (server-rendered, then hydrated from the HTML).
                $page
            }

            async fn view(_this: Self) -> AnyView {
                occasional_page(Occasional::$page).await
            }

            async fn preload() {
                // The router waits for this before hydrating the page: with the chunk loaded,
                // `view` is ready at once and hydrates the server's HTML (not a placeholder).
                #[cfg(feature = "hydrate")]
                __preload_occasional_page().await;
            }
        }
    )*};
}

occasional_routes!(Deploy, Deployment, Users, Catalog, Audit, Account);
