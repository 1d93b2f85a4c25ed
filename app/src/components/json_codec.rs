//! One JSON decoder for everything the browser reads: server functions answer bytes and decode
//! them with `serde_json::from_slice`; resources hydrated from the page and the last-known copies
//! in localStorage are decoded the same way. serde instantiates a deserializer per reader type, so
//! decoding strings with `from_str` beside it would put a second copy of every type's
//! deserializer in the wasm bundle.

use leptos::server::codee::{Decoder, Encoder};
use serde::{Serialize, de::DeserializeOwned};

/// The resources' codec: JSON text out, decoded from its bytes.
pub struct JsonBytes;

impl<T: Serialize> Encoder<T> for JsonBytes {
    type Error = serde_json::Error;
    type Encoded = String;

    fn encode(val: &T) -> Result<String, serde_json::Error> {
        serde_json::to_string(val)
    }
}

impl<T: DeserializeOwned> Decoder<T> for JsonBytes {
    type Error = serde_json::Error;
    type Encoded = str;

    fn decode(val: &str) -> Result<T, serde_json::Error> {
        decode(val)
    }
}

/// `Resource::new` with [`JsonBytes`]: what every page uses.
#[track_caller]
pub fn json_resource<T, S, Fut>(
    source: impl Fn() -> S + Send + Sync + 'static,
    fetcher: impl Fn(S) -> Fut + Send + Sync + 'static,
) -> leptos::prelude::Resource<T, JsonBytes>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
    S: PartialEq + Clone + Send + Sync + 'static,
    Fut: Future<Output = T> + Send + 'static,
{
    leptos::prelude::Resource::new_with_options(source, fetcher, false)
}

pub fn decode<T: DeserializeOwned>(json: &str) -> Result<T, serde_json::Error> {
    serde_json::from_slice(json.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let v = vec![("a".to_string(), 1u32)];
        let s = <JsonBytes as Encoder<_>>::encode(&v).unwrap();
        assert_eq!(<JsonBytes as Decoder<Vec<(String, u32)>>>::decode(&s).unwrap(), v);
        assert!(decode::<u32>("\"x\"").is_err());
    }
}
