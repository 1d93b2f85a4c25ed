//! The HTML document around the app, and the script that hydrates it.
//!
//! Server-only: the browser hydrates `App` inside the body this writes.

use std::sync::OnceLock;

use leptos::{nonce::use_nonce, prelude::*};
use leptos_meta::{HashedStylesheet, MetaTags};

use crate::App;

/// The document around the app.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    // The page's Content-Security-Policy names this response's nonce (the hydration script's).
    super::security::set_page_csp();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name="theme-color" content="#1b3a6b" />
                <meta name="description" content="Deploy and run business capabilities in your customers' AWS accounts." />
                <link rel="manifest" href="/manifest.webmanifest" />
                <link rel="icon" type="image/png" href="/icons/icon-192.png" />
                <link rel="apple-touch-icon" href="/icons/icon-192.png" />
                <HashedStylesheet options=options.clone() id="leptos" />
                // An external file (not inline) so a strict CSP needs no exception for it.
                <script src="/register-sw.js" defer></script>
                <HydrationBootstrap options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// Loads the wasm bundle and hydrates the page once the server's HTML has been painted.
///
/// In place of Leptos's `HydrationScripts`, which preloads the bundle (and a page's split chunk)
/// from the `<head>`. Measured (docs/performance.md, "Paint first, then hydrate"): a returning
/// visit, whose bundle comes from the service worker, paints ~120 ms and hydrates ~200 ms
/// sooner; Lighthouse's simulated LCP stops counting the bundle (2.9-3.8 s -> ~1 s). The price:
/// a first visit over a slow link hydrates 0.3-0.5 s later, while its page is already readable.
#[component]
fn HydrationBootstrap(options: LeptosOptions) -> impl IntoView {
    let (js, wasm) = bundle_urls(&options);
    // JSON string literals are JavaScript string literals.
    let (js, wasm) = (serde_json::Value::from(js.as_str()), serde_json::Value::from(wasm.as_str()));
    // An inline module runs once the document is parsed (and the stylesheet is in); the first
    // animation frame comes before the first paint, the second after it. A hidden tab runs no
    // animation frames, so it starts at once, or as soon as it is hidden. The wasm is fetched
    // alongside its JavaScript, not after it: one round trip, not two.
    let script = format!(
        "let started = false;\n\
         const hydrate = () => {{\n\
           if (started) return;\n\
           started = true;\n\
           const wasm = fetch({wasm});\n\
           import({js}).then((m) => m.default({{ module_or_path: wasm }}).then(() => m.hydrate())).catch((e) => console.error(\"hydration failed\", e));\n\
         }};\n\
         if (document.visibilityState === \"hidden\") hydrate();\n\
         else {{ requestAnimationFrame(() => requestAnimationFrame(hydrate)); document.addEventListener(\"visibilitychange\", hydrate, {{ once: true }}); }}"
    );
    view! { <script type="module" nonce=use_nonce()>{script}</script> }
}

/// The bundle's JavaScript and wasm URLs, hashed as the build named them (`hash-files`).
fn bundle_urls(options: &LeptosOptions) -> &'static (String, String) {
    static URLS: OnceLock<(String, String)> = OnceLock::new();
    URLS.get_or_init(|| {
        let (mut js, mut wasm) = (options.output_name.to_string(), options.output_name.to_string());
        if options.hash_files {
            // cargo-leptos writes the hashes next to the server binary, where Leptos reads them.
            let hashes = std::env::current_exe()
                .ok()
                .and_then(|exe| exe.parent().map(|dir| dir.join(options.hash_file.as_ref())))
                .and_then(|path| std::fs::read_to_string(path).ok());
            let hash = |key: &str| {
                hashes.as_deref()?.lines().find_map(|line| {
                    let (file, hash) = line.split_once(':')?;
                    (file.trim() == key).then(|| hash.trim().to_owned())
                })
            };
            match (hash("js"), hash("wasm")) {
                (Some(js_hash), Some(wasm_hash)) => {
                    js = format!("{js}.{js_hash}");
                    wasm = format!("{wasm}.{wasm_hash}");
                }
                _ => tracing::error!(file = %options.hash_file, "hash-files is on but the hash file is missing or names no js/wasm: pages will not hydrate"),
            }
        } else if option_env!("LEPTOS_OUTPUT_NAME").is_none() {
            // wasm-bindgen's own name for the module, used when cargo-leptos did not set one.
            wasm.push_str("_bg");
        }
        let pkg = &options.site_pkg_dir;
        (format!("/{pkg}/{js}.js"), format!("/{pkg}/{wasm}.wasm"))
    })
}
