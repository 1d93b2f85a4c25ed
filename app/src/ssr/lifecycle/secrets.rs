//! `NoEcho` parameter values at rest: encrypted with ChaCha20-Poly1305 under the parameter key
//! (`NEXUS_PARAMETER_KEY`), decrypted only to hand them to CloudFormation. Everything else keeps
//! reading them as `****`.
//!
//! `enc:v2:<base64 nonce+ciphertext>` binds each value to the deployment and parameter it was
//! sealed for (the AEAD's associated data), so a sealed value decrypts nowhere else: copied into
//! another deployment's record, or under another parameter name, it is refused. `enc:v1:`
//! values (unbound, before store layout 5) are re-sealed as v2 by the start-up migration
//! ([`ParameterCipher::reseal`]); v1 still opens until then. Clients never send sealed values
//! (the service refuses `enc:` input), and reads mask anything sealed.

use std::collections::BTreeMap;

use base64::{Engine, engine::general_purpose::STANDARD};
use chacha20poly1305::{
    ChaCha20Poly1305, Key, Nonce,
    aead::{Aead, KeyInit, Payload},
};
use sha2::{Digest, Sha256};

use crate::domain::{ids::Id, parameters::ParameterSchema};

const V1: &str = "enc:v1:";
const V2: &str = "enc:v2:";

/// Whether a value is a sealed one (any version): such values never come from or go to clients.
pub fn is_sealed(value: &str) -> bool {
    value.starts_with("enc:")
}

#[derive(Debug, thiserror::Error)]
#[error(
    "a stored secret parameter cannot be decrypted (was NEXUS_PARAMETER_KEY changed, or the value moved?)"
)]
pub struct DecryptError;

/// Encrypts and decrypts the `NoEcho` values of a parameter set.
#[derive(Clone)]
pub struct ParameterCipher {
    cipher: ChaCha20Poly1305,
}

/// What a v2 value is bound to.
fn binding(deployment: &Id, name: &str) -> Vec<u8> {
    format!("nexus-parameter\0{deployment}\0{name}").into_bytes()
}

impl ParameterCipher {
    /// Any secret of at least 32 characters; it is hashed to the 256-bit key.
    pub fn new(secret: &[u8]) -> Self {
        let key = Sha256::digest([b"nexus-parameter-key\0".as_slice(), secret].concat());
        ParameterCipher { cipher: ChaCha20Poly1305::new(Key::from_slice(&key)) }
    }

    fn seal(&self, value: &str, deployment: &Id, name: &str) -> String {
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).expect("the operating system's random source is unavailable");
        let aad = binding(deployment, name);
        let ct = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: value.as_bytes(), aad: &aad })
            .expect("encryption cannot fail");
        format!("{V2}{}", STANDARD.encode([nonce.as_slice(), &ct].concat()))
    }

    fn open(&self, stored: &str, deployment: &Id, name: &str) -> Result<String, DecryptError> {
        let (b64, aad) = if let Some(b64) = stored.strip_prefix(V2) {
            (b64, binding(deployment, name))
        } else if let Some(b64) = stored.strip_prefix(V1) {
            (b64, Vec::new())
        } else if is_sealed(stored) {
            return Err(DecryptError);
        } else {
            return Ok(stored.to_string());
        };
        let bytes = STANDARD.decode(b64).map_err(|_| DecryptError)?;
        if bytes.len() < 12 {
            return Err(DecryptError);
        }
        let (nonce, ct) = bytes.split_at(12);
        let plain = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: &aad })
            .map_err(|_| DecryptError)?;
        String::from_utf8(plain).map_err(|_| DecryptError)
    }

    /// Any other secret at rest (a user's TOTP secret), sealed like a `NoEcho` value and bound
    /// to `binding` (it opens under that binding only).
    pub fn seal_bound(&self, plain: &[u8], binding: &str) -> String {
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).expect("the operating system's random source is unavailable");
        let aad = format!("nexus-secret\0{binding}");
        let ct = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plain, aad: aad.as_bytes() })
            .expect("encryption cannot fail");
        format!("{V2}{}", STANDARD.encode([nonce.as_slice(), &ct].concat()))
    }

    /// The inverse of [`seal_bound`](Self::seal_bound).
    pub fn open_bound(&self, stored: &str, binding: &str) -> Result<Vec<u8>, DecryptError> {
        let bytes =
            STANDARD.decode(stored.strip_prefix(V2).ok_or(DecryptError)?).map_err(|_| DecryptError)?;
        if bytes.len() < 12 {
            return Err(DecryptError);
        }
        let (nonce, ct) = bytes.split_at(12);
        let aad = format!("nexus-secret\0{binding}");
        self.cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: aad.as_bytes() })
            .map_err(|_| DecryptError)
    }

    /// The values as stored for `deployment`: `NoEcho` ones sealed to it (already sealed ones
    /// kept as they are).
    pub fn seal_all(
        &self,
        schema: &ParameterSchema,
        values: &BTreeMap<String, String>,
        deployment: &Id,
    ) -> BTreeMap<String, String> {
        values
            .iter()
            .map(|(k, v)| {
                let secret = schema.get(k).is_some_and(|s| s.no_echo) && !is_sealed(v);
                (k.clone(), if secret { self.seal(v, deployment, k) } else { v.clone() })
            })
            .collect()
    }

    /// The values of `deployment` as CloudFormation needs them.
    pub fn open_all(
        &self,
        values: &BTreeMap<String, String>,
        deployment: &Id,
    ) -> Result<BTreeMap<String, String>, DecryptError> {
        values.iter().map(|(k, v)| Ok((k.clone(), self.open(v, deployment, k)?))).collect()
    }

    /// v1 values re-sealed as v2, bound to `deployment` (the start-up migration); `None` when
    /// there is nothing to change.
    pub fn reseal(
        &self,
        values: &BTreeMap<String, String>,
        deployment: &Id,
    ) -> Result<Option<BTreeMap<String, String>>, DecryptError> {
        if !values.values().any(|v| v.starts_with(V1)) {
            return Ok(None);
        }
        let mut out = BTreeMap::new();
        for (k, v) in values {
            let value = if v.starts_with(V1) {
                self.seal(&self.open(v, deployment, k)?, deployment, k)
            } else {
                v.clone()
            };
            out.insert(k.clone(), value);
        }
        Ok(Some(out))
    }

    /// A v1 value as the code before layout 5 wrote it (tests of the migration only).
    #[doc(hidden)]
    pub fn seal_v1_for_tests(&self, value: &str) -> String {
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).expect("the operating system's random source is unavailable");
        let ct =
            self.cipher.encrypt(Nonce::from_slice(&nonce), value.as_bytes()).expect("encryption cannot fail");
        format!("{V1}{}", STANDARD.encode([nonce.as_slice(), &ct].concat()))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn bound_secrets_open_only_under_their_binding_and_key() {
        let cipher = ParameterCipher::new(b"fake-test-key-fake-test-key-fake-test");
        let sealed = cipher.seal_bound(b"totp secret bytes", "mfa-totp\0user-1");
        assert!(!sealed.contains("totp"));
        assert_eq!(cipher.open_bound(&sealed, "mfa-totp\0user-1").unwrap(), b"totp secret bytes");
        assert!(cipher.open_bound(&sealed, "mfa-totp\0user-2").is_err());
        let other = ParameterCipher::new(b"another-fake-key-another-fake-key-xx");
        assert!(other.open_bound(&sealed, "mfa-totp\0user-1").is_err());
    }

    use super::*;

    fn schema() -> ParameterSchema {
        let params = serde_json::json!({
            "ApiKey": {"Type": "String", "NoEcho": true},
            "Environment": {"Type": "String"}
        });
        ParameterSchema::from_template(&serde_json::json!({"Parameters": params})).unwrap()
    }

    fn id(n: u64) -> Id {
        Id::parse(&format!("01JDQ8ZK3M6V2C0N7R5T9W4X{:02}", n)).unwrap()
    }

    #[test]
    fn only_no_echo_values_are_sealed_and_they_open_again() {
        let c = ParameterCipher::new(b"fake-parameter-key-0123456789abcdef");
        let values = BTreeMap::from([
            ("ApiKey".to_string(), "fake-api-key-value".to_string()),
            ("Environment".to_string(), "dev".to_string()),
        ]);
        let sealed = c.seal_all(&schema(), &values, &id(1));
        assert!(sealed["ApiKey"].starts_with(V2));
        assert!(!sealed["ApiKey"].contains("fake-api-key-value"));
        assert_eq!(sealed["Environment"], "dev");
        assert_eq!(c.seal_all(&schema(), &sealed, &id(1)), sealed, "sealing twice changes nothing");
        assert_eq!(c.open_all(&sealed, &id(1)).unwrap(), values);
        let other = ParameterCipher::new(b"another-fake-key-0123456789abcdef");
        assert!(other.open_all(&sealed, &id(1)).is_err(), "a wrong key is an error, not garbage");
    }

    #[test]
    fn a_sealed_value_opens_only_where_it_was_sealed() {
        let c = ParameterCipher::new(b"fake-parameter-key-0123456789abcdef");
        let values = BTreeMap::from([("ApiKey".to_string(), "fake-api-key-value".to_string())]);
        let sealed = c.seal_all(&schema(), &values, &id(1));
        assert!(c.open_all(&sealed, &id(2)).is_err(), "another deployment");
        let renamed = BTreeMap::from([("OtherKey".to_string(), sealed["ApiKey"].clone())]);
        assert!(c.open_all(&renamed, &id(1)).is_err(), "another parameter");
        let unknown = BTreeMap::from([("ApiKey".to_string(), "enc:v9:AAAA".to_string())]);
        assert!(c.open_all(&unknown, &id(1)).is_err(), "an unknown sealing is not passed on as text");
    }

    #[test]
    fn v1_values_are_resealed_bound_to_their_deployment() {
        let c = ParameterCipher::new(b"fake-parameter-key-0123456789abcdef");
        let v1 = BTreeMap::from([
            ("ApiKey".to_string(), c.seal_v1_for_tests("fake-api-key-value")),
            ("Environment".to_string(), "dev".to_string()),
        ]);
        assert_eq!(c.open_all(&v1, &id(1)).unwrap()["ApiKey"], "fake-api-key-value", "v1 still opens");
        let v2 = c.reseal(&v1, &id(1)).unwrap().expect("something to reseal");
        assert!(v2["ApiKey"].starts_with(V2));
        assert_eq!(v2["Environment"], "dev");
        assert_eq!(c.open_all(&v2, &id(1)).unwrap()["ApiKey"], "fake-api-key-value");
        assert!(c.open_all(&v2, &id(2)).is_err());
        assert_eq!(c.reseal(&v2, &id(1)).unwrap(), None, "nothing left to migrate");
    }
}
