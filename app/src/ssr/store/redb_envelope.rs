//! How the embedded store lays out one item's value: a small binary envelope (revision,
//! counter, index keys) followed by the record's JSON as it is. The JSON envelope used before
//! layout 4 escaped the record inside a JSON string, so every read unescaped and copied it
//! twice; those values still read, and are rewritten in this form when they next change.
//!
//! ```text
//! 0xB1 | rev: u64 LE | n: i64 LE | index count: u8 | per index: 0 | 1 pk sk | data (rest)
//! ```
//! where `pk` and `sk` are a u32 LE byte length then UTF-8 bytes.

use serde::Deserialize;

use super::{INDEX_COUNT, Item, StoreError};

/// The first byte of a binary envelope; a JSON envelope starts with `{`.
const BINARY: u8 = 0xB1;

/// What is stored under (pk, sk).
#[derive(Debug, Default, PartialEq, Eq, Deserialize)]
pub(super) struct Stored {
    pub rev: u64,
    #[serde(default)]
    pub n: i64,
    #[serde(default)]
    pub data: String,
    /// A list, not an array: a store written with fewer indexes still reads.
    #[serde(default)]
    pub index: Vec<Option<(String, String)>>,
}

impl Stored {
    pub fn into_item(self, pk: &str, sk: &str) -> Item {
        Item {
            pk: pk.to_string(),
            sk: sk.to_string(),
            rev: self.rev,
            index: std::array::from_fn(|i| self.index.get(i).cloned().flatten()),
            data: self.data,
            n: self.n,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let keys: usize = self.index.iter().flatten().map(|(p, s)| 8 + p.len() + s.len()).sum();
        let mut out = Vec::with_capacity(18 + self.index.len() + keys + self.data.len());
        out.push(BINARY);
        out.extend_from_slice(&self.rev.to_le_bytes());
        out.extend_from_slice(&self.n.to_le_bytes());
        debug_assert!(self.index.len() <= INDEX_COUNT);
        out.push(self.index.len() as u8);
        for key in &self.index {
            match key {
                None => out.push(0),
                Some((pk, sk)) => {
                    out.push(1);
                    for s in [pk, sk] {
                        out.extend_from_slice(&(s.len() as u32).to_le_bytes());
                        out.extend_from_slice(s.as_bytes());
                    }
                }
            }
        }
        out.extend_from_slice(self.data.as_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        match bytes.first() {
            Some(&BINARY) => {
                Reader(&bytes[1..]).stored().ok_or_else(|| StoreError::Corrupt("a truncated item".into()))
            }
            _ => serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(e.to_string())),
        }
    }
}

/// Reads an envelope's fields from the front; `None` when the bytes end early or are not UTF-8.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    fn string(&mut self) -> Option<String> {
        let len = u32::from_le_bytes(self.array()?) as usize;
        String::from_utf8(self.take(len)?.to_vec()).ok()
    }

    fn stored(mut self) -> Option<Stored> {
        let rev = u64::from_le_bytes(self.array()?);
        let n = i64::from_le_bytes(self.array()?);
        let [count] = self.array()?;
        let mut index = Vec::with_capacity(count as usize);
        for _ in 0..count {
            index.push(match self.array()? {
                [0] => None,
                [1] => Some((self.string()?, self.string()?)),
                _ => return None,
            });
        }
        let data = String::from_utf8(self.0.to_vec()).ok()?;
        Some(Stored { rev, n, data, index })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Stored {
        Stored {
            rev: 7,
            n: -3,
            data: r#"{"name":"Acme \"quoted\" — ünïcode","list":[1,2]}"#.into(),
            index: vec![Some(("CUST#1".into(), "DEP#2".into())), None, Some(("".into(), "x".into()))],
        }
    }

    #[test]
    fn round_trips_every_field() {
        let s = sample();
        assert_eq!(Stored::decode(&s.encode()).unwrap(), s);
        let empty = Stored::default();
        assert_eq!(Stored::decode(&empty.encode()).unwrap(), empty);
    }

    #[test]
    fn the_json_envelope_of_older_stores_still_reads() {
        let old = br#"{"rev":7,"n":-3,"data":"{\"a\":1}","index":[["CUST#1","DEP#2"],null]}"#;
        let s = Stored::decode(old).unwrap();
        assert_eq!((s.rev, s.n, s.data.as_str()), (7, -3, r#"{"a":1}"#));
        assert_eq!(s.index, vec![Some(("CUST#1".into(), "DEP#2".into())), None]);
        // Before counters existed, `n` was absent.
        assert_eq!(Stored::decode(br#"{"rev":1,"data":"x"}"#).unwrap().n, 0);
    }

    #[test]
    fn a_damaged_envelope_is_an_error_not_a_panic() {
        let bytes = sample().encode();
        // Cut inside the fixed header, inside an index key, and a bad key tag.
        for cut in [1, 9, 18, 25] {
            assert!(matches!(Stored::decode(&bytes[..cut]), Err(StoreError::Corrupt(_))), "cut at {cut}");
        }
        let mut bad = bytes.clone();
        bad[18] = 9;
        assert!(matches!(Stored::decode(&bad), Err(StoreError::Corrupt(_))));
        let mut not_utf8 = bytes;
        let last = not_utf8.len() - 1;
        not_utf8[last] = 0xFF;
        assert!(matches!(Stored::decode(&not_utf8), Err(StoreError::Corrupt(_))));
    }
}
