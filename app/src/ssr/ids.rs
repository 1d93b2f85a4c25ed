//! New ids: the current time and 80 random bits (a ULID).

use crate::domain::ids::Id;

pub fn new_id() -> Id {
    let mut bytes = [0u8; 16];
    // The OS random source failing is not something to carry on from.
    getrandom::fill(&mut bytes).expect("the operating system's random source is unavailable");
    Id::from_parts(super::clock::now().millis() as u64, u128::from_le_bytes(bytes))
}
