//! Session tokens: JWTs signed with HS256 only (the algorithm is pinned, so `alg: none` or an
//! RS/HS confusion is refused), a key id in the header, a 30-minute expiry, and the session id
//! they belong to (sign-out revokes the session, and with it every token renewed from it).

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, decode_header, encode};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::time::Timestamp;

/// How long one token lives; active users get a fresh one before it runs out.
pub const TOKEN_LIFETIME_MS: i64 = 30 * 60 * 1000;
/// A token with less than this left is renewed on the next request.
pub const RENEW_BELOW_MS: i64 = 15 * 60 * 1000;
const ISSUER: &str = "nexus-toolkit";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// The session id.
    pub sid: String,
    pub iss: String,
    /// Seconds since the epoch (JWT convention).
    pub iat: i64,
    pub exp: i64,
}

impl Claims {
    pub fn expires_at(&self) -> Timestamp {
        Timestamp::from_millis(self.exp * 1000)
    }
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token was signed with another key")]
    UnknownKey,
    #[error("the token's signature or algorithm is wrong")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
}

/// Signs and verifies session tokens with one HMAC key.
pub struct TokenSigner {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSigner").field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl TokenSigner {
    /// The key id is derived from the key, so replicas sharing a key agree on it and a rotated
    /// key is told apart without revealing anything about the key.
    pub fn new(key: &[u8]) -> Self {
        let digest = Sha256::digest([b"nexus-kid:".as_slice(), key].concat());
        let kid = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
        TokenSigner { kid, encoding: EncodingKey::from_secret(key), decoding: DecodingKey::from_secret(key) }
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// A token for `user` in session `sid`, valid for [`TOKEN_LIFETIME_MS`] from `now`.
    pub fn issue(&self, user: &str, sid: &str, now: Timestamp) -> (String, Claims) {
        let iat = now.millis() / 1000;
        let claims = Claims {
            sub: user.to_string(),
            sid: sid.to_string(),
            iss: ISSUER.to_string(),
            iat,
            exp: iat + TOKEN_LIFETIME_MS / 1000,
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.kid.clone());
        let token = encode(&header, &claims, &self.encoding).expect("HS256 signing cannot fail");
        (token, claims)
    }

    /// Checks key id, algorithm, signature, issuer and expiry (at `now`, no leeway).
    pub fn verify(&self, token: &str, now: Timestamp) -> Result<Claims, TokenError> {
        let header = decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != Algorithm::HS256 {
            return Err(TokenError::BadSignature);
        }
        if header.kid.as_deref() != Some(self.kid.as_str()) {
            return Err(TokenError::UnknownKey);
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        // Expiry is checked below against the caller's clock, so tests can move time.
        validation.validate_exp = false;
        let data = decode::<Claims>(token, &self.decoding, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            match e.kind() {
                ErrorKind::InvalidSignature
                | ErrorKind::InvalidAlgorithm
                | ErrorKind::InvalidAlgorithmName => TokenError::BadSignature,
                _ => TokenError::Malformed,
            }
        })?;
        if data.claims.exp * 1000 <= now.millis() {
            return Err(TokenError::Expired);
        }
        Ok(data.claims)
    }
}

#[cfg(test)]
mod tests {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

    use super::*;

    const NOW: Timestamp = Timestamp::from_millis(1_800_000_000_000);

    fn signer() -> TokenSigner {
        TokenSigner::new(b"fake-test-signing-key-0123456789")
    }

    fn parts(token: &str) -> Vec<String> {
        token.split('.').map(str::to_string).collect()
    }

    #[test]
    fn a_fresh_token_verifies_and_carries_kid_and_expiry() {
        let s = signer();
        let (token, claims) = s.issue("U1", "S1", NOW);
        assert_eq!(s.verify(&token, NOW).unwrap(), claims);
        assert_eq!(claims.exp - claims.iat, 30 * 60);
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts(&token)[0]).unwrap()).unwrap();
        assert_eq!(header["alg"], "HS256");
        assert_eq!(header["kid"], s.kid());
    }

    #[test]
    fn an_expired_token_is_refused() {
        let s = signer();
        let (token, _) = s.issue("U1", "S1", NOW);
        let later = Timestamp::from_millis(NOW.millis() + TOKEN_LIFETIME_MS);
        assert_eq!(s.verify(&token, later), Err(TokenError::Expired));
        let almost = Timestamp::from_millis(NOW.millis() + TOKEN_LIFETIME_MS - 1000);
        assert!(s.verify(&token, almost).is_ok());
    }

    #[test]
    fn a_tampered_payload_is_refused() {
        let s = signer();
        let (token, _) = s.issue("U1", "S1", NOW);
        let p = parts(&token);
        let mut claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&p[1]).unwrap()).unwrap();
        claims["sub"] = "U2".into();
        let forged = format!("{}.{}.{}", p[0], URL_SAFE_NO_PAD.encode(claims.to_string()), p[2]);
        assert_eq!(s.verify(&forged, NOW), Err(TokenError::BadSignature));
    }

    #[test]
    fn alg_none_is_refused() {
        let s = signer();
        let (token, _) = s.issue("U1", "S1", NOW);
        let p = parts(&token);
        let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"none","typ":"JWT","kid":"{}"}}"#, s.kid()));
        for unsigned in [format!("{header}.{}.", p[1]), format!("{header}.{}.{}", p[1], p[2])] {
            assert!(s.verify(&unsigned, NOW).is_err(), "{unsigned}");
        }
    }

    #[test]
    fn another_algorithm_with_our_key_is_refused() {
        let s = signer();
        let (token, _) = s.issue("U1", "S1", NOW);
        let p = parts(&token);
        let mut header = Header::new(Algorithm::HS512);
        header.kid = Some(s.kid().to_string());
        let claims: Claims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&p[1]).unwrap()).unwrap();
        let hs512 =
            encode(&header, &claims, &EncodingKey::from_secret(b"fake-test-signing-key-0123456789")).unwrap();
        assert_eq!(s.verify(&hs512, NOW), Err(TokenError::BadSignature));
    }

    #[test]
    fn a_token_from_another_key_is_refused() {
        let other = TokenSigner::new(b"another-fake-key-0123456789abcdef");
        let (token, _) = other.issue("U1", "S1", NOW);
        assert_eq!(signer().verify(&token, NOW), Err(TokenError::UnknownKey));
        // Even with our key id copied in, the signature does not match.
        let p = parts(&token);
        let header =
            URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"HS256","typ":"JWT","kid":"{}"}}"#, signer().kid()));
        assert_eq!(
            signer().verify(&format!("{header}.{}.{}", p[1], p[2]), NOW),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn garbage_is_malformed() {
        assert_eq!(signer().verify("not-a-token", NOW), Err(TokenError::Malformed));
        assert_eq!(signer().verify("", NOW), Err(TokenError::Malformed));
    }
}
