//! Opaque identifiers: ULIDs (26 characters of Crockford base32), so they sort by creation time
//! and a string that cannot be one is refused before it reaches the store.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Id(String);

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a valid id")]
pub struct IdError(pub String);

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

impl Id {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        if Self::valid(s) { Ok(Id(s.to_string())) } else { Err(IdError(s.to_string())) }
    }

    fn valid(s: &str) -> bool {
        s.len() == 26
            // The first character carries only 3 bits of the 48-bit timestamp.
            && matches!(s.as_bytes()[0], b'0'..=b'7')
            // CROCKFORD's characters (no I, L, O, U), as ranges: ids are parsed on every read.
            && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'A'..=b'H' | b'J' | b'K' | b'M' | b'N' | b'P'..=b'T' | b'V'..=b'Z'))
    }

    /// Builds an id from a millisecond timestamp and 80 random bits.
    pub fn from_parts(millis: u64, random: u128) -> Self {
        let value: u128 = ((millis as u128 & 0xFFFF_FFFF_FFFF) << 80) | (random & ((1u128 << 80) - 1));
        let mut out = [0u8; 26];
        for (i, slot) in out.iter_mut().enumerate() {
            let shift = 5 * (25 - i);
            *slot = CROCKFORD[((value >> shift) & 0x1F) as usize];
        }
        Id(String::from_utf8(out.to_vec()).expect("ascii"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if Id::valid(&s) { Ok(Id(s)) } else { Err(serde::de::Error::custom(IdError(s))) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_sorts_by_time() {
        let a = Id::from_parts(1_795_842_569_123, 42);
        let b = Id::from_parts(1_795_842_569_124, 0);
        assert_eq!(a.as_str().len(), 26);
        assert_eq!(Id::parse(a.as_str()).unwrap(), a);
        assert!(a < b);
        assert_eq!(Id::from_parts(0, 0).as_str(), "00000000000000000000000000");
        assert_eq!(Id::from_parts(u64::MAX, u128::MAX).as_str(), "7ZZZZZZZZZZZZZZZZZZZZZZZZZ");
    }

    #[test]
    fn rejects_what_cannot_be_an_id() {
        for s in [
            "",
            "123",
            "01ARZ3NDEKTSV4RRFFQ69G5FAVX",
            "01ARZ3NDEKTSV4RRFFQ69G5FAI",
            "01arz3ndektsv4rrffq69g5fav",
            "81ARZ3NDEKTSV4RRFFQ69G5FAV",
            "../../etc/passwd",
        ] {
            assert!(Id::parse(s).is_err(), "{s}");
        }
        assert!(Id::parse("01ARZ3NDEKTSV4RRFFQ69G5FAV").is_ok());
        assert!(serde_json::from_str::<Id>("\"nope\"").is_err());
    }

    #[test]
    fn accepts_exactly_the_crockford_alphabet() {
        for b in 0..=u8::MAX {
            let s = format!("0{}", (b as char).to_string().repeat(25));
            assert_eq!(Id::valid(&s), CROCKFORD.contains(&b), "byte {b}");
        }
    }
}
