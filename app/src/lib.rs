//! NexusAI Toolkit: the shared application.
//!
//! Everything here compiles for both the browser (`hydrate`) and the server (`ssr`): pure domain
//! rules, the Leptos components and pages, and the server functions' signatures. Server-only code
//! (configuration, AWS adapters, services, the HTTP API) lives in [`ssr`].

#![recursion_limit = "256"]

mod app;
pub mod components;
pub mod domain;
pub mod pages;
pub mod server_fns;
#[cfg(feature = "ssr")]
pub mod ssr;
pub mod url;

pub use app::App;

/// The toolkit's version, shown in `/health` and the UI footer.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
