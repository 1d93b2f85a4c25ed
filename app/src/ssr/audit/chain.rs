//! The audit chain's arithmetic: how a record is hashed, how the start of the keyed chain is
//! marked, and how a checkpoint of the head is signed.
//!
//! Records written before the toolkit keyed its chain carry a plain SHA-256 over the previous
//! hash and the record; anyone who can write the store could recompute those. Every record from
//! the *mark* on carries an HMAC-SHA-256 under a key that is not in the store, so a store writer
//! cannot rewrite a record (or the chain after it) without the verification noticing. The mark
//! and the checkpoints are themselves signed with the same key, so they cannot be moved or forged.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::{model::AuditEvent, time::Timestamp};

/// The key the chain is signed with. Never printed.
#[derive(Clone)]
pub struct ChainKey(Vec<u8>);

impl std::fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChainKey(****)")
    }
}

/// The shortest key accepted: HMAC-SHA-256 wants at least its 256-bit output size.
pub const MIN_KEY_LEN: usize = 32;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl ChainKey {
    pub fn new(key: &[u8]) -> Self {
        ChainKey(key.to_vec())
    }

    /// HMAC-SHA-256 over the parts, each followed by a newline so parts cannot slide into
    /// each other.
    fn mac(&self, parts: &[&[u8]]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        for part in parts {
            mac.update(part);
            mac.update(b"\n");
        }
        hex(&mac.finalize().into_bytes())
    }

    /// Compares in constant time: a signature check must not leak how much of a guess was right.
    fn check(&self, parts: &[&[u8]], claimed: &str) -> bool {
        let expected = self.mac(parts);
        expected.len() == claimed.len()
            && expected.bytes().zip(claimed.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }
}

/// The record as hashed: its JSON with an empty `hash`.
fn body(event: &AuditEvent) -> Vec<u8> {
    let mut unhashed = event.clone();
    unhashed.hash = String::new();
    serde_json::to_vec(&unhashed).expect("audit events serialize")
}

/// The hash of a record written before the chain was keyed: SHA-256 over the previous hash and
/// the record. Only ever checked, never written again.
pub fn unkeyed_hash(event: &AuditEvent) -> String {
    let mut h = Sha256::new();
    h.update(event.prev_hash.as_bytes());
    h.update(b"\n");
    h.update(body(event));
    hex(&h.finalize())
}

/// The hash of a keyed record: HMAC-SHA-256 over the previous hash and the record.
pub fn keyed_hash(key: &ChainKey, event: &AuditEvent) -> String {
    key.mac(&[b"record", event.prev_hash.as_bytes(), &body(event)])
}

/// Where the keyed chain starts: records from `from` on are keyed. Written once, signed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyedMark {
    pub from: u64,
    pub mac: String,
}

impl KeyedMark {
    pub fn new(key: &ChainKey, from: u64) -> Self {
        KeyedMark { from, mac: key.mac(&[b"keyed-from", from.to_string().as_bytes()]) }
    }

    pub fn is_genuine(&self, key: &ChainKey) -> bool {
        key.check(&[b"keyed-from", self.from.to_string().as_bytes()], &self.mac)
    }
}

/// The chain's head as seen at one moment, signed and kept outside the store: a store writer
/// who cuts the newest records (and moves the head back) cannot make the chain shorter than
/// the last checkpoint without the verification saying so.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub seq: u64,
    pub hash: String,
    pub keyed_from: Option<u64>,
    pub at: Timestamp,
    pub mac: String,
}

impl Checkpoint {
    fn parts(seq: u64, hash: &str, keyed_from: Option<u64>, at: Timestamp) -> [String; 4] {
        [
            seq.to_string(),
            hash.to_string(),
            keyed_from.map(|k| k.to_string()).unwrap_or_default(),
            at.millis().to_string(),
        ]
    }

    pub fn new(key: &ChainKey, seq: u64, hash: &str, keyed_from: Option<u64>, at: Timestamp) -> Self {
        let parts = Self::parts(seq, hash, keyed_from, at);
        let mac = key.mac(&[
            b"checkpoint",
            parts[0].as_bytes(),
            parts[1].as_bytes(),
            parts[2].as_bytes(),
            parts[3].as_bytes(),
        ]);
        Checkpoint { seq, hash: hash.to_string(), keyed_from, at, mac }
    }

    pub fn is_genuine(&self, key: &ChainKey) -> bool {
        let parts = Self::parts(self.seq, &self.hash, self.keyed_from, self.at);
        key.check(
            &[
                b"checkpoint",
                parts[0].as_bytes(),
                parts[1].as_bytes(),
                parts[2].as_bytes(),
                parts[3].as_bytes(),
            ],
            &self.mac,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::Role;

    fn event() -> AuditEvent {
        AuditEvent {
            seq: 1,
            at: Timestamp::from_millis(1),
            actor_id: None,
            actor_email: Some("exec@demo.nexus".into()),
            actor_role: Some(Role::Executive),
            source_ip: Some("127.0.0.1".into()),
            action: "auth.login".into(),
            target: "user/exec@demo.nexus".into(),
            outcome: "success".into(),
            owner_id: None,
            details: serde_json::json!({}),
            prev_hash: super::super::GENESIS.into(),
            hash: String::new(),
        }
    }

    #[test]
    fn both_hashes_cover_content_and_the_previous_hash() {
        let key = ChainKey::new(b"fake-audit-key-for-tests-0123456789");
        let mut e = event();
        let (plain, keyed) = (unkeyed_hash(&e), keyed_hash(&key, &e));
        assert_eq!(plain.len(), 64);
        assert_eq!(keyed.len(), 64);
        assert_ne!(plain, keyed);
        e.outcome = "failure".into();
        assert_ne!(unkeyed_hash(&e), plain);
        assert_ne!(keyed_hash(&key, &e), keyed);
        e.outcome = "success".into();
        e.prev_hash = "1".repeat(64);
        assert_ne!(unkeyed_hash(&e), plain);
        assert_ne!(keyed_hash(&key, &e), keyed);
        e.prev_hash = super::super::GENESIS.into();
        e.hash = "anything".into();
        assert_eq!(keyed_hash(&key, &e), keyed, "the stored hash is not part of what is hashed");
    }

    #[test]
    fn a_keyed_hash_cannot_be_made_without_the_key() {
        let e = event();
        let key = ChainKey::new(b"fake-audit-key-for-tests-0123456789");
        let other = ChainKey::new(b"fake-audit-key-for-tests-9876543210");
        assert_ne!(keyed_hash(&key, &e), keyed_hash(&other, &e));
    }

    #[test]
    fn marks_and_checkpoints_are_signed() {
        let key = ChainKey::new(b"fake-audit-key-for-tests-0123456789");
        let mark = KeyedMark::new(&key, 7);
        assert!(mark.is_genuine(&key));
        assert!(!KeyedMark { from: 8, ..mark.clone() }.is_genuine(&key), "a moved mark");
        assert!(!mark.is_genuine(&ChainKey::new(b"another-fake-key-0123456789abcdef")));

        let cp = Checkpoint::new(&key, 10, &"a".repeat(64), Some(7), Timestamp::from_millis(5));
        assert!(cp.is_genuine(&key));
        for forged in [
            Checkpoint { seq: 9, ..cp.clone() },
            Checkpoint { hash: "b".repeat(64), ..cp.clone() },
            Checkpoint { keyed_from: Some(1), ..cp.clone() },
            Checkpoint { keyed_from: None, ..cp.clone() },
            Checkpoint { at: Timestamp::from_millis(6), ..cp.clone() },
            Checkpoint { mac: "0".repeat(64), ..cp.clone() },
            Checkpoint { mac: String::new(), ..cp.clone() },
        ] {
            assert!(!forged.is_genuine(&key), "{forged:?}");
        }
    }
}
