//! The browser's single sign-on through Cognito's hosted UI: the OAuth 2.0 authorization-code
//! flow with PKCE (RFC 7636), `state` against cross-site request forgery and an OpenID `nonce`
//! against replayed ID tokens.
//!
//! `/auth/sso` makes a fresh state, verifier and nonce, keeps them in a short-lived cookie and
//! sends the browser to the hosted UI with the verifier's S256 challenge; `/auth/callback` takes
//! the code only when the `state` it comes back with equals the cookie's, trades it for an ID
//! token with the verifier, and accepts the token only when its nonce equals the cookie's. The
//! cookie is `SameSite=Lax` (the redirect back from the pool is a cross-site navigation that must
//! carry it) and lives 10 minutes; the session cookie stays `Strict`.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};

pub const FLOW_COOKIE: &str = "nexus_sso";
/// How long a sign-in at the pool may take.
pub const FLOW_MAX_AGE_SECS: i64 = 600;
/// Where the pool sends the browser back (registered with the app client).
pub const CALLBACK_PATH: &str = "/auth/callback";

/// One sign-in's secrets, kept in the browser's flow cookie until the callback.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flow {
    pub state: String,
    pub verifier: String,
    pub nonce: String,
    /// Where to go once signed in (a path on this site, checked again when used).
    pub next: String,
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random source is unavailable");
    URL_SAFE_NO_PAD.encode(bytes)
}

impl Flow {
    pub fn start(next: &str) -> Flow {
        Flow {
            state: random_token(),
            verifier: random_token(),
            nonce: random_token(),
            next: next.to_string(),
        }
    }

    /// The S256 code challenge: base64url(SHA-256(verifier)).
    pub fn challenge(&self) -> String {
        challenge(&self.verifier)
    }

    /// The cookie's value: `v1.<state>.<verifier>.<nonce>.<base64url(next)>` (all cookie-safe).
    pub fn to_cookie_value(&self) -> String {
        format!("v1.{}.{}.{}.{}", self.state, self.verifier, self.nonce, URL_SAFE_NO_PAD.encode(&self.next))
    }

    pub fn from_cookie_value(value: &str) -> Option<Flow> {
        let mut parts = value.split('.');
        if parts.next()? != "v1" {
            return None;
        }
        let (state, verifier, nonce, next) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || [state, verifier, nonce].iter().any(|p| p.len() < 43) {
            return None;
        }
        let next = String::from_utf8(URL_SAFE_NO_PAD.decode(next).ok()?).ok()?;
        Some(Flow { state: state.into(), verifier: verifier.into(), nonce: nonce.into(), next })
    }

    /// `<hosted UI>/oauth2/authorize?…` for this flow.
    pub fn authorize_url(&self, hosted_ui: &str, client_id: &str, redirect_uri: &str) -> String {
        let query = crate::url::query(&[
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", redirect_uri),
            ("scope", "openid email profile"),
            ("state", &self.state),
            ("nonce", &self.nonce),
            ("code_challenge", &self.challenge()),
            ("code_challenge_method", "S256"),
        ]);
        format!("{hosted_ui}/oauth2/authorize?{query}")
    }
}

pub fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Equal without an early exit, so the comparison's time says nothing about the expected state.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_challenge_is_rfc_7636s_s256() {
        // RFC 7636, appendix B.
        assert_eq!(
            challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn every_flow_is_fresh_and_survives_its_cookie() {
        let a = Flow::start("/customers/01J?tab=prod");
        let b = Flow::start("/");
        assert_ne!(a.state, b.state);
        assert_ne!(a.verifier, b.verifier);
        assert_ne!(a.state, a.verifier);
        // 256 bits each; the verifier is within RFC 7636's 43..128 characters.
        assert_eq!(a.verifier.len(), 43);
        assert_eq!(Flow::from_cookie_value(&a.to_cookie_value()), Some(a.clone()));
        // Tampered or foreign values are not flows.
        assert_eq!(Flow::from_cookie_value("v2.x.y.z.w"), None);
        assert_eq!(Flow::from_cookie_value(&format!("{}.extra", a.to_cookie_value())), None);
        assert_eq!(Flow::from_cookie_value("v1.short.short.short.Lw"), None);
    }

    #[test]
    fn the_authorize_url_carries_state_nonce_and_challenge_not_the_verifier() {
        let flow = Flow::start("/");
        let url = flow.authorize_url(
            "https://nexus.auth.eu-west-1.amazoncognito.com",
            "client1",
            "https://t.example/auth/callback",
        );
        assert!(url.starts_with("https://nexus.auth.eu-west-1.amazoncognito.com/oauth2/authorize?response_type=code&client_id=client1&redirect_uri=https%3A%2F%2Ft.example%2Fauth%2Fcallback&scope=openid%20email%20profile&"));
        assert!(url.contains(&format!("state={}", flow.state)));
        assert!(url.contains(&format!("nonce={}", flow.nonce)));
        assert!(url.contains(&format!("code_challenge={}&code_challenge_method=S256", flow.challenge())));
        assert!(!url.contains(&flow.verifier));
    }

    #[test]
    fn states_compare_exactly() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "abcd"));
        assert!(!same("", "a"));
    }
}
