//! The browser's side of passkeys: WebAuthn's `navigator.credentials`, through its JSON forms
//! (`PublicKeyCredential.parseCreationOptionsFromJSON` / `parseRequestOptionsFromJSON`, and the
//! credential's `toJSON()`), so the server's options and the browser's answer pass as text.

/// Makes a passkey with the server's creation options; answers the credential as JSON.
pub async fn create(options_json: &str) -> Result<String, String> {
    ceremony("create", "parseCreationOptionsFromJSON", options_json).await
}

/// Asks for a passkey with the server's request options; answers the credential as JSON.
pub async fn get(options_json: &str) -> Result<String, String> {
    ceremony("get", "parseRequestOptionsFromJSON", options_json).await
}

#[cfg(feature = "hydrate")]
async fn ceremony(method: &str, parser: &str, options_json: &str) -> Result<String, String> {
    use js_sys::{Function, JSON, Object, Promise, Reflect};
    use wasm_bindgen::{JsCast, JsValue};

    let missing = || "this browser cannot use passkeys".to_string();
    let fail = |e: JsValue| {
        // A DOMException: its name says what happened (NotAllowedError: cancelled or timed out).
        let name = Reflect::get(&e, &"name".into()).ok().and_then(|n| n.as_string());
        match name.as_deref() {
            Some("NotAllowedError") => "the passkey request was cancelled or timed out".to_string(),
            Some("InvalidStateError") => "this passkey is added already".to_string(),
            _ => e.as_string().or(name).unwrap_or_else(|| "the passkey request failed".into()),
        }
    };
    let window = web_sys::window().ok_or_else(missing)?;
    let pkc = Reflect::get(&window, &"PublicKeyCredential".into()).map_err(fail)?;
    let parse: Function =
        Reflect::get(&pkc, &parser.into()).map_err(fail)?.dyn_into().map_err(|_| missing())?;
    let public_key = parse.call1(&pkc, &JSON::parse(options_json).map_err(fail)?).map_err(fail)?;
    let options = Object::new();
    Reflect::set(&options, &"publicKey".into(), &public_key).map_err(fail)?;
    let credentials = Reflect::get(&window.navigator(), &"credentials".into()).map_err(fail)?;
    let call: Function =
        Reflect::get(&credentials, &method.into()).map_err(fail)?.dyn_into().map_err(|_| missing())?;
    let promise: Promise =
        call.call1(&credentials, &options).map_err(fail)?.dyn_into().map_err(|_| missing())?;
    let credential = wasm_bindgen_futures::JsFuture::from(promise).await.map_err(fail)?;
    let to_json: Function =
        Reflect::get(&credential, &"toJSON".into()).map_err(fail)?.dyn_into().map_err(|_| missing())?;
    let plain = to_json.call0(&credential).map_err(fail)?;
    JSON::stringify(&plain).map(String::from).map_err(fail)
}

/// On the server, pages never run a ceremony (they only render the buttons).
#[cfg(not(feature = "hydrate"))]
async fn ceremony(_method: &str, _parser: &str, _options_json: &str) -> Result<String, String> {
    Err("passkeys run in the browser".into())
}
