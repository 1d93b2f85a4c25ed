//! `NoEcho` parameter values at rest: encrypted with ChaCha20-Poly1305 under the parameter key
//! (`NEXUS_PARAMETER_KEY`), stored as `enc:v1:<base64 nonce+ciphertext>`, decrypted only to
//! hand them to CloudFormation. Everything else keeps reading them as `****`.

use std::collections::BTreeMap;

use base64::{Engine, engine::general_purpose::STANDARD};
use chacha20poly1305::{
    ChaCha20Poly1305, Key, Nonce,
    aead::{Aead, KeyInit},
};
use sha2::{Digest, Sha256};

use crate::domain::parameters::ParameterSchema;

const PREFIX: &str = "enc:v1:";

#[derive(Debug, thiserror::Error)]
#[error("a stored secret parameter cannot be decrypted (was NEXUS_PARAMETER_KEY changed?)")]
pub struct DecryptError;

/// Encrypts and decrypts the `NoEcho` values of a parameter set.
#[derive(Clone)]
pub struct ParameterCipher {
    cipher: ChaCha20Poly1305,
}

impl ParameterCipher {
    /// Any secret of at least 32 characters; it is hashed to the 256-bit key.
    pub fn new(secret: &[u8]) -> Self {
        let key = Sha256::digest([b"nexus-parameter-key\0".as_slice(), secret].concat());
        ParameterCipher { cipher: ChaCha20Poly1305::new(Key::from_slice(&key)) }
    }

    fn seal(&self, value: &str) -> String {
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).expect("the operating system's random source is unavailable");
        let ct =
            self.cipher.encrypt(Nonce::from_slice(&nonce), value.as_bytes()).expect("encryption cannot fail");
        format!("{PREFIX}{}", STANDARD.encode([nonce.as_slice(), &ct].concat()))
    }

    fn open(&self, stored: &str) -> Result<String, DecryptError> {
        let Some(b64) = stored.strip_prefix(PREFIX) else { return Ok(stored.to_string()) };
        let bytes = STANDARD.decode(b64).map_err(|_| DecryptError)?;
        if bytes.len() < 12 {
            return Err(DecryptError);
        }
        let (nonce, ct) = bytes.split_at(12);
        let plain = self.cipher.decrypt(Nonce::from_slice(nonce), ct).map_err(|_| DecryptError)?;
        String::from_utf8(plain).map_err(|_| DecryptError)
    }

    /// The values as stored: `NoEcho` ones encrypted (already encrypted ones kept).
    pub fn seal_all(
        &self,
        schema: &ParameterSchema,
        values: &BTreeMap<String, String>,
    ) -> BTreeMap<String, String> {
        values
            .iter()
            .map(|(k, v)| {
                let secret = schema.get(k).is_some_and(|s| s.no_echo) && !v.starts_with(PREFIX);
                (k.clone(), if secret { self.seal(v) } else { v.clone() })
            })
            .collect()
    }

    /// The values as CloudFormation needs them.
    pub fn open_all(
        &self,
        values: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, DecryptError> {
        values.iter().map(|(k, v)| Ok((k.clone(), self.open(v)?))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> ParameterSchema {
        let params = serde_json::json!({
            "ApiKey": {"Type": "String", "NoEcho": true},
            "Environment": {"Type": "String"}
        });
        ParameterSchema::from_template(&serde_json::json!({"Parameters": params})).unwrap()
    }

    #[test]
    fn only_no_echo_values_are_sealed_and_they_open_again() {
        let c = ParameterCipher::new(b"fake-parameter-key-0123456789abcdef");
        let values = BTreeMap::from([
            ("ApiKey".to_string(), "fake-api-key-value".to_string()),
            ("Environment".to_string(), "dev".to_string()),
        ]);
        let sealed = c.seal_all(&schema(), &values);
        assert!(sealed["ApiKey"].starts_with(PREFIX));
        assert!(!sealed["ApiKey"].contains("fake-api-key-value"));
        assert_eq!(sealed["Environment"], "dev");
        assert_eq!(c.seal_all(&schema(), &sealed), sealed, "sealing twice changes nothing");
        assert_eq!(c.open_all(&sealed).unwrap(), values);
        let other = ParameterCipher::new(b"another-fake-key-0123456789abcdef");
        assert!(other.open_all(&sealed).is_err(), "a wrong key is an error, not garbage");
    }
}
