//! The browser entry point: hydrates the server-rendered page, nothing else.

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    // Async: a page of the lazily loaded chunk hydrates once the chunk has arrived.
    wasm_bindgen_futures::spawn_local(app::components::hydration::hydrate_page());
}
