//! A software passkey for tests: the authenticator's side of WebAuthn (ES256 key, "none"
//! attestation, user verified), so the API's passkey ceremonies run end to end in-process. Its
//! key really signs and the server really verifies; Chromium's virtual authenticator does the
//! same in end2end/tests/passkeys.spec.ts.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use p256::ecdsa::{Signature, SigningKey, signature::Signer};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub struct SoftPasskey {
    key: SigningKey,
    pub cred_id: Vec<u8>,
    user_handle: Vec<u8>,
    counter: u32,
    origin: String,
    rp_id: String,
}

fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).unwrap();
    b
}

/// CBOR's head for a major type and a length (the sizes these structures need).
fn head(major: u8, len: usize) -> Vec<u8> {
    match len {
        0..=23 => vec![(major << 5) | len as u8],
        24..=255 => vec![(major << 5) | 24, len as u8],
        _ => vec![(major << 5) | 25, (len >> 8) as u8, len as u8],
    }
}

fn text(s: &str) -> Vec<u8> {
    [head(3, s.len()), s.as_bytes().to_vec()].concat()
}

fn bytes(b: &[u8]) -> Vec<u8> {
    [head(2, b.len()), b.to_vec()].concat()
}

impl SoftPasskey {
    /// A passkey for the toolkit at `origin` (`http://localhost:3000`).
    pub fn new(origin: &str) -> Self {
        let key = SigningKey::from_slice(&random::<32>()).unwrap();
        let rp_id = origin.split("://").nth(1).unwrap().split(':').next().unwrap().to_string();
        SoftPasskey {
            key,
            cred_id: random::<16>().to_vec(),
            user_handle: Vec::new(),
            counter: 0,
            origin: origin.into(),
            rp_id,
        }
    }

    fn client_data(&self, kind: &str, options: &Value) -> Vec<u8> {
        json!({"type": kind, "challenge": options["challenge"], "origin": self.origin, "crossOrigin": false})
            .to_string()
            .into_bytes()
    }

    fn auth_data(&self, flags: u8) -> Vec<u8> {
        let mut d = Sha256::digest(self.rp_id.as_bytes()).to_vec();
        d.push(flags);
        d.extend_from_slice(&self.counter.to_be_bytes());
        d
    }

    /// Answers creation options (`navigator.credentials.create()`) as `toJSON()` would.
    pub fn create(&mut self, options: &Value) -> Value {
        assert_eq!(options["authenticatorSelection"]["residentKey"], "required", "discoverable");
        self.user_handle = B64.decode(options["user"]["id"].as_str().unwrap()).unwrap();
        let point = self.key.verifying_key().to_encoded_point(false);
        // COSE EC2 key: kty 2, alg -7 (ES256), crv 1 (P-256), x, y.
        let cose = [
            vec![0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21],
            bytes(point.x().unwrap()),
            vec![0x22],
            bytes(point.y().unwrap()),
        ]
        .concat();
        // Flags: user present, user verified, attested credential data.
        let mut auth_data = self.auth_data(0x45);
        auth_data.extend_from_slice(&[0u8; 16]);
        auth_data.extend_from_slice(&(self.cred_id.len() as u16).to_be_bytes());
        auth_data.extend_from_slice(&self.cred_id);
        auth_data.extend_from_slice(&cose);
        let attestation = [
            vec![0xa3],
            text("fmt"),
            text("none"),
            text("attStmt"),
            vec![0xa0],
            text("authData"),
            bytes(&auth_data),
        ]
        .concat();
        let id = B64.encode(&self.cred_id);
        json!({"id": id, "rawId": id, "type": "public-key", "clientExtensionResults": {},
               "response": {"clientDataJSON": B64.encode(self.client_data("webauthn.create", options)),
                            "attestationObject": B64.encode(attestation), "transports": ["internal"]}})
    }

    /// Answers request options (`navigator.credentials.get()`) as `toJSON()` would.
    pub fn get(&mut self, options: &Value) -> Value {
        self.counter += 1;
        let client_data = self.client_data("webauthn.get", options);
        let auth_data = self.auth_data(0x05);
        let signed = [auth_data.clone(), Sha256::digest(&client_data).to_vec()].concat();
        let signature: Signature = self.key.sign(&signed);
        let id = B64.encode(&self.cred_id);
        json!({"id": id, "rawId": id, "type": "public-key", "clientExtensionResults": {},
               "response": {"clientDataJSON": B64.encode(&client_data), "authenticatorData": B64.encode(auth_data),
                            "signature": B64.encode(signature.to_der().as_bytes()),
                            "userHandle": B64.encode(&self.user_handle)}})
    }
}
