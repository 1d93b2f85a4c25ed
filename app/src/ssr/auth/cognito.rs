//! Single sign-on through an Amazon Cognito user pool (which federates SAML/ADFS): verification
//! of the pool's ID and access tokens against its JWKS, and the hosted UI's token endpoint for
//! the browser's authorization-code flow (see `hosted_ui` for PKCE and state).
//!
//! Checked: RS256 only; the key by `kid` from the pool's JWKS (cached for an hour, fetched again
//! — at most once a minute — when a token names a key the cache does not know, so key rotation
//! needs no restart); issuer = the pool; `token_use` = `id` (then `aud` = our app client) or
//! `access` (then `client_id` = our app client); expiry. `cognito:groups` name the role.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::Deserialize;

use crate::domain::{model::Role, time::Timestamp};

use super::super::http_client::HttpClient;

const JWKS_TTL: Duration = Duration::from_secs(3600);
const REFETCH_AT_MOST_EVERY: Duration = Duration::from_secs(60);

/// `NEXUS_COGNITO_*`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CognitoConfig {
    pub region: String,
    pub user_pool_id: String,
    pub client_id: String,
    /// Where the JWKS is; default `<issuer>/.well-known/jwks.json`.
    pub jwks_url: Option<String>,
    /// The tokens' issuer; default the pool's (`https://cognito-idp.<region>.amazonaws.com/<pool>`).
    /// Set only to sign in through another OpenID provider on Cognito's paths (the tests do).
    pub issuer: Option<String>,
    /// The hosted UI's base URL (`https://<domain>.auth.<region>.amazoncognito.com`): when set,
    /// the sign-in page offers "Sign in with SSO" (authorization code + PKCE).
    pub hosted_ui: Option<String>,
}

impl CognitoConfig {
    pub fn issuer(&self) -> String {
        self.issuer.clone().unwrap_or_else(|| {
            format!("https://cognito-idp.{}.amazonaws.com/{}", self.region, self.user_pool_id)
        })
    }
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum CognitoError {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token is not signed with RS256")]
    WrongAlgorithm,
    #[error("the token's key is not in the user pool's JWKS")]
    UnknownKey,
    #[error("the token's signature does not verify")]
    BadSignature,
    #[error("the token is from another issuer")]
    WrongIssuer,
    #[error("the token is for another app client")]
    WrongAudience,
    #[error("the token is neither an ID nor an access token")]
    WrongTokenUse,
    #[error("the token has expired")]
    Expired,
    #[error("the token was issued for another sign-in (nonce)")]
    WrongNonce,
    #[error("the user pool's JWKS cannot be fetched: {0}")]
    Jwks(String),
    #[error("the hosted UI refused the authorization code: {0}")]
    CodeRefused(String),
    #[error("the hosted UI cannot be reached: {0}")]
    HostedUi(String),
}

/// Who a verified token names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CognitoIdentity {
    pub subject: String,
    pub username: Option<String>,
    pub email: Option<String>,
    /// Cognito says the email was verified (a user may change their own email attribute; an
    /// unverified one must never match an account).
    pub email_verified: bool,
    pub groups: Vec<String>,
    pub token_use: String,
    /// The `nonce` the browser's sign-in sent (ID tokens from the hosted UI only).
    pub nonce: Option<String>,
}

impl CognitoIdentity {
    /// The most privileged role among the user's groups (`executive`, `sales_manager`, `rep`).
    pub fn role(&self) -> Option<Role> {
        let has = |r: Role| self.groups.iter().any(|g| g == r.as_str());
        [Role::Executive, Role::SalesManager, Role::Rep].into_iter().find(|r| has(*r))
    }
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    iss: String,
    exp: i64,
    token_use: String,
    aud: Option<String>,
    client_id: Option<String>,
    email: Option<String>,
    /// `true` in Cognito's tokens (some emulators write `"true"`).
    email_verified: Option<serde_json::Value>,
    #[serde(rename = "cognito:username")]
    cognito_username: Option<String>,
    username: Option<String>,
    #[serde(rename = "cognito:groups", default)]
    groups: Vec<String>,
    nonce: Option<String>,
}

struct Keys {
    fetched: Option<Instant>,
    by_kid: HashMap<String, DecodingKey>,
}

pub struct CognitoVerifier {
    config: CognitoConfig,
    http: HttpClient,
    keys: tokio::sync::RwLock<Keys>,
}

impl CognitoVerifier {
    pub fn new(config: CognitoConfig, http: HttpClient) -> Self {
        CognitoVerifier {
            config,
            http,
            keys: tokio::sync::RwLock::new(Keys { fetched: None, by_kid: HashMap::new() }),
        }
    }

    fn jwks_url(&self) -> String {
        self.config
            .jwks_url
            .clone()
            .unwrap_or_else(|| format!("{}/.well-known/jwks.json", self.config.issuer()))
    }

    async fn refresh(&self) -> Result<(), CognitoError> {
        let jwks = self.http.get_json(&self.jwks_url()).await.map_err(CognitoError::Jwks)?;
        let mut by_kid = HashMap::new();
        for key in jwks["keys"].as_array().into_iter().flatten() {
            if let (Some("RSA"), Some(kid), Some(n), Some(e)) =
                (key["kty"].as_str(), key["kid"].as_str(), key["n"].as_str(), key["e"].as_str())
                && let Ok(k) = DecodingKey::from_rsa_components(n, e)
            {
                by_kid.insert(kid.to_string(), k);
            }
        }
        tracing::info!(keys = by_kid.len(), "fetched the Cognito user pool's JWKS");
        *self.keys.write().await = Keys { fetched: Some(Instant::now()), by_kid };
        Ok(())
    }

    async fn key(&self, kid: &str) -> Result<DecodingKey, CognitoError> {
        {
            let keys = self.keys.read().await;
            let fresh = keys.fetched.is_some_and(|t| t.elapsed() < JWKS_TTL);
            if fresh && let Some(k) = keys.by_kid.get(kid) {
                return Ok(k.clone());
            }
            // An unknown kid refetches (rotation), but not more than once a minute.
            if keys.fetched.is_some_and(|t| t.elapsed() < REFETCH_AT_MOST_EVERY) && fresh {
                return Err(CognitoError::UnknownKey);
            }
        }
        self.refresh().await?;
        self.keys.read().await.by_kid.get(kid).cloned().ok_or(CognitoError::UnknownKey)
    }

    /// Verifies an ID or access token of our app client; `now` is checked against its expiry.
    pub async fn verify(&self, token: &str, now: Timestamp) -> Result<CognitoIdentity, CognitoError> {
        let header = decode_header(token).map_err(|_| CognitoError::Malformed)?;
        if header.alg != Algorithm::RS256 {
            return Err(CognitoError::WrongAlgorithm);
        }
        let kid = header.kid.ok_or(CognitoError::UnknownKey)?;
        let key = self.key(&kid).await?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        let claims = decode::<Claims>(token, &key, &validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => CognitoError::BadSignature,
                _ => CognitoError::Malformed,
            })?
            .claims;
        if claims.iss != self.config.issuer() {
            return Err(CognitoError::WrongIssuer);
        }
        let audience = match claims.token_use.as_str() {
            "id" => claims.aud.as_deref(),
            "access" => claims.client_id.as_deref(),
            _ => return Err(CognitoError::WrongTokenUse),
        };
        if audience != Some(self.config.client_id.as_str()) {
            return Err(CognitoError::WrongAudience);
        }
        if claims.exp * 1000 <= now.millis() {
            return Err(CognitoError::Expired);
        }
        Ok(CognitoIdentity {
            subject: claims.sub,
            username: claims.cognito_username.or(claims.username),
            email: claims.email,
            email_verified: matches!(claims.email_verified, Some(serde_json::Value::Bool(true)))
                || matches!(&claims.email_verified, Some(serde_json::Value::String(v)) if v == "true"),
            groups: claims.groups,
            token_use: claims.token_use,
            nonce: claims.nonce,
        })
    }

    /// The hosted UI's half of the authorization-code flow: trades the code (with the PKCE
    /// verifier that only this server and the browser's short-lived cookie knew) for the user's
    /// ID token at `<hosted UI>/oauth2/token`. The token is then verified like any other.
    pub async fn exchange_code(
        &self,
        code: &str,
        verifier: &str,
        redirect_uri: &str,
    ) -> Result<String, CognitoError> {
        let base = self
            .config
            .hosted_ui
            .as_deref()
            .ok_or_else(|| CognitoError::HostedUi("not configured".into()))?;
        let form = [
            ("grant_type", "authorization_code"),
            ("client_id", self.config.client_id.as_str()),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
        ];
        let (status, body) = self
            .http
            .post_form(&format!("{base}/oauth2/token"), &form)
            .await
            .map_err(CognitoError::HostedUi)?;
        if status >= 500 {
            return Err(CognitoError::HostedUi(format!("HTTP {status}")));
        }
        if status != 200 {
            // `invalid_grant` and friends: a replayed, expired or foreign code, or a wrong verifier.
            let reason = body["error"].as_str().unwrap_or("refused").to_string();
            return Err(CognitoError::CodeRefused(reason));
        }
        body["id_token"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| CognitoError::CodeRefused("no id_token in the answer".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_privileged_group_names_the_role() {
        let id = |groups: &[&str]| CognitoIdentity {
            subject: "s".into(),
            username: None,
            email: None,
            email_verified: false,
            groups: groups.iter().map(|g| g.to_string()).collect(),
            token_use: "id".into(),
            nonce: None,
        };
        assert_eq!(id(&["rep", "executive"]).role(), Some(Role::Executive));
        assert_eq!(id(&["sales_manager"]).role(), Some(Role::SalesManager));
        assert_eq!(id(&["Admins"]).role(), None);
    }
}
