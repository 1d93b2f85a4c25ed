//! Password hashing with Argon2id (the review's requirement), PHC strings in the store. Behind a
//! small trait so a test can count verifications (an unknown user must cost one too).

use argon2::{
    Argon2,
    password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
};

pub trait Hasher: Send + Sync {
    fn hash(&self, password: &str) -> String;
    fn verify(&self, password: &str, phc: &str) -> bool;
}

/// Argon2id with the crate's default (OWASP-recommended) parameters.
#[derive(Clone, Copy, Debug, Default)]
pub struct Argon2Hasher;

impl Hasher for Argon2Hasher {
    fn hash(&self, password: &str) -> String {
        hash_password(password)
    }

    fn verify(&self, password: &str, phc: &str) -> bool {
        verify_password(password, phc)
    }
}

pub fn hash_password(password: &str) -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the operating system's random source is unavailable");
    let salt = SaltString::encode_b64(&bytes).expect("16 bytes make a valid salt");
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 with default parameters")
        .to_string()
}

pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .is_ok_and(|hash| Argon2::default().verify_password(password.as_bytes(), &hash).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_salted_and_verify() {
        let a = hash_password("Fake-Test-Password-1");
        let b = hash_password("Fake-Test-Password-1");
        assert!(a.starts_with("$argon2id$"), "{a}");
        assert_ne!(a, b, "each hash has its own salt");
        assert!(verify_password("Fake-Test-Password-1", &a));
        assert!(!verify_password("fake-test-password-1", &a));
        assert!(!verify_password("Fake-Test-Password-1", "not a hash"));
    }
}
