//! New ids: the current time and 80 random bits (a ULID).

use crate::domain::ids::Id;

pub fn new_id() -> Id {
    let mut bytes = [0u8; 16];
    // The OS random source failing is not something to carry on from.
    getrandom::fill(&mut bytes).expect("the operating system's random source is unavailable");
    Id::from_parts(super::clock::now().millis() as u64, u128::from_le_bytes(bytes))
}

/// A new environment's external id: 40 characters of [A-Za-z0-9] (about 238 random bits), which
/// the customer role's `ExternalId` parameter accepts.
pub fn new_external_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(40);
    while out.len() < 40 {
        let mut bytes = [0u8; 64];
        getrandom::fill(&mut bytes).expect("the operating system's random source is unavailable");
        // Rejection sampling keeps every character equally likely (248 = 4 x 62).
        out.extend(
            bytes
                .iter()
                .filter(|b| **b < 248)
                .map(|b| ALPHABET[(*b % 62) as usize] as char)
                .take(40 - out.len()),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn external_ids_are_long_random_and_fit_the_role_template() {
        let a = super::new_external_id();
        let b = super::new_external_id();
        assert_eq!(a.len(), 40);
        assert_ne!(a, b);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()), "{a}");
    }
}
