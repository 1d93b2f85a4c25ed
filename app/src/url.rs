//! Percent-encoding of URL query values and form fields, shared by the pages (links with
//! queries) and the server (OAuth requests).

/// Everything but RFC 3986's unreserved characters as `%XX` (UTF-8 bytes; spaces too).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `k1=v1&k2=v2`, each part encoded.
pub fn query(pairs: &[(&str, &str)]) -> String {
    pairs.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&")
}

#[cfg(test)]
mod tests {
    #[test]
    fn values_are_percent_encoded() {
        assert_eq!(super::encode("auth.login"), "auth.login");
        assert_eq!(super::encode("a+b/c=&"), "a%2Bb%2Fc%3D%26");
        assert_eq!(
            super::query(&[("redirect_uri", "https://a.example/auth/callback?x=1&y=2"), ("code", "ab c+/é")]),
            "redirect_uri=https%3A%2F%2Fa.example%2Fauth%2Fcallback%3Fx%3D1%26y%3D2&code=ab%20c%2B%2F%C3%A9"
        );
    }
}
