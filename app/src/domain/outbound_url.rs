//! Where the toolkit may send a request on a user's behalf: a capability's health check URL is
//! chosen by whoever deploys it, and the workers GET it from inside the toolkit's network. Without
//! a rule a Sales Manager could aim it at the instance metadata service, the toolkit itself or a
//! private address and read "healthy"/"degraded" as an oracle (SSRF).
//!
//! Two checks share the address rule [`internal_ip`]: [`check_public_url`] when the URL is
//! entered (no DNS: names need not resolve here), and the health client's resolver after DNS,
//! so a public name that resolves to an inside address is refused too.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Whether requests may go to this machine (127.0.0.0/8, ::1, `localhost`): only the test suite
/// turns it on (its own health server listens on loopback). Every other inside range stays shut.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OutboundPolicy {
    pub allow_loopback: bool,
}

/// Host names that always mean "inside": this machine and the clouds' metadata services.
const INTERNAL_NAMES: [&str; 9] = [
    "localhost",
    "localhost.localdomain",
    "ip6-localhost",
    "ip6-loopback",
    "metadata",
    "metadata.google.internal",
    "metadata.goog",
    "instance-data",
    "instance-data.ec2.internal",
];

/// An address the toolkit must never be made to call: loopback (unless allowed), unspecified,
/// private, shared (CGNAT), link-local (the metadata services), multicast, reserved; IPv6
/// unique-local, site-local, link-local, multicast; and IPv6 forms that embed an IPv4 address
/// (mapped, compatible, NAT64, 6to4) are judged by the address inside.
pub fn internal_ip(ip: IpAddr, policy: OutboundPolicy) -> bool {
    match ip {
        IpAddr::V4(v4) => internal_v4(v4, policy),
        IpAddr::V6(v6) => internal_v6(v6, policy),
    }
}

fn internal_v4(ip: Ipv4Addr, policy: OutboundPolicy) -> bool {
    let [a, b, c, _] = ip.octets();
    if a == 127 {
        return !policy.allow_loopback;
    }
    a == 0 // "this network", 0.0.0.0 included
        || a == 10
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 169 && b == 254) // link-local: EC2/ECS metadata, VPC DNS
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 168)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 224 // multicast, reserved, broadcast
}

fn internal_v6(ip: Ipv6Addr, policy: OutboundPolicy) -> bool {
    if ip == Ipv6Addr::LOCALHOST {
        return !policy.allow_loopback;
    }
    let s = ip.segments();
    if let Some(v4) = embedded_v4(&ip) {
        return internal_v4(v4, policy);
    }
    ip.is_unspecified()
        || (s[0] & 0xfe00) == 0xfc00 // unique-local (fd00:ec2::254 is EC2's metadata)
        || (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated, still routed somewhere)
        || (s[0] & 0xff00) == 0xff00 // multicast
}

/// The IPv4 address an IPv6 address carries: mapped `::ffff:a.b.c.d`, compatible `::a.b.c.d`,
/// NAT64 `64:ff9b::a.b.c.d` (a VPC with DNS64 reaches 169.254.169.254 through it), 6to4
/// `2002:AABB:CCDD::`.
fn embedded_v4(ip: &Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let low = |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    if s[..5] == [0; 5] && (s[5] == 0xffff || (s[5] == 0 && (s[6] != 0 || s[7] > 1))) {
        return Some(low(s[6], s[7]));
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(low(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        return Some(low(s[1], s[2]));
    }
    None
}

/// Checks a URL the toolkit will GET, without DNS: `http` or `https`, no credentials, a host
/// that is neither an inside address (in any of the forms browsers and resolvers accept:
/// `2130706433`, `127.1`, `0x7f.0.0.1`, `[::ffff:127.0.0.1]`) nor a name that always means
/// inside. The error is a sentence for the user.
pub fn check_public_url(url: &str, policy: OutboundPolicy) -> Result<(), String> {
    // Parsers drop tabs and newlines, so `exa\tmple` could reach another host than it reads;
    // spaces in the path only make the URL unusable (the check then reads "degraded").
    if url.chars().any(char::is_control) {
        return Err("a URL must not contain control characters".into());
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err("must be an http:// or https:// URL".into());
    };
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Err("must be an http:// or https:// URL".into());
    }
    let authority = rest.split(['/', '?', '#', '\\']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err("a URL must not carry a user name or password".into());
    }
    let host = host_of(authority)?;
    let inside =
        || Err(format!("`{host}` is an address inside a network; the toolkit only calls public addresses"));
    match host_address(&host)? {
        Some(ip) if internal_ip(ip, policy) => inside(),
        Some(_) => Ok(()),
        None => {
            let name = host.trim_end_matches('.');
            let loopback_name = name == "localhost" || name.ends_with(".localhost");
            if (loopback_name && !policy.allow_loopback)
                || (!loopback_name && INTERNAL_NAMES.contains(&name))
                || name.ends_with(".internal")
            {
                inside()
            } else {
                Ok(())
            }
        }
    }
}

/// The host of `host[:port]` or `[v6][:port]`, lower-cased; refuses what no resolver should see.
fn host_of(authority: &str) -> Result<String, String> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (v6, after) = rest.split_once(']').ok_or("an IPv6 address must end with `]`")?;
        (format!("[{v6}]"), after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (authority.to_string(), None),
        }
    };
    if let Some(p) = port
        && !p.is_empty()
        && p.parse::<u16>().is_err()
    {
        return Err(format!("`{p}` is not a port"));
    }
    if host.is_empty() || host == "[]" {
        return Err("the URL has no host".into());
    }
    if host.contains('%') {
        return Err("a host must not be percent-encoded".into());
    }
    if !host.is_ascii() {
        return Err("write an international host name in its xn-- form".into());
    }
    Ok(host.to_ascii_lowercase())
}

/// `Some(ip)` when the host is an address literal (IPv6 in brackets, or IPv4 in any form the
/// WHATWG URL standard and `inet_aton` accept), `None` for a name.
fn host_address(host: &str) -> Result<Option<IpAddr>, String> {
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return v6
            .parse::<Ipv6Addr>()
            .map(|ip| Some(IpAddr::V6(ip)))
            .map_err(|_| format!("`{v6}` is not an IPv6 address"));
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    if name.is_empty()
        || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
    {
        return Err(format!("`{host}` is not a host name"));
    }
    // A host whose last label is a number is an IPv4 address (WHATWG "ends in a number").
    let last = name.rsplit('.').next().unwrap_or_default();
    if parse_ipv4_part(last).is_none() {
        return Ok(None);
    }
    parse_ipv4(name).map(|ip| Some(IpAddr::V4(ip))).ok_or_else(|| format!("`{host}` is not an IPv4 address"))
}

/// One part of a WHATWG IPv4 host: decimal, `0x` hexadecimal, or octal with a leading zero.
fn parse_ipv4_part(part: &str) -> Option<u64> {
    let (digits, radix) = if let Some(hex) = part.strip_prefix("0x").or_else(|| part.strip_prefix("0X")) {
        (hex, 16)
    } else if part.len() > 1 && part.starts_with('0') {
        (&part[1..], 8)
    } else {
        (part, 10)
    };
    if digits.is_empty() {
        // "0x" alone is zero to WHATWG; "" is not a number.
        return (radix == 16).then_some(0);
    }
    if digits.len() > 20 {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

/// 1 to 4 parts; every part but the last is one byte, the last fills the remaining bytes
/// (`127.1` is 127.0.0.1, `2130706433` is 127.0.0.1).
fn parse_ipv4(name: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = name.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let numbers: Vec<u64> = parts.iter().map(|p| parse_ipv4_part(p)).collect::<Option<_>>()?;
    let (last, init) = numbers.split_last()?;
    if init.iter().any(|n| *n > 255) || *last >= 256u64.pow(5 - numbers.len() as u32) {
        return None;
    }
    let mut value = *last;
    for (i, n) in init.iter().enumerate() {
        value += n << (8 * (3 - i));
    }
    Some(Ipv4Addr::from(value as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: OutboundPolicy = OutboundPolicy { allow_loopback: false };
    const TESTS: OutboundPolicy = OutboundPolicy { allow_loopback: true };

    #[test]
    fn public_http_urls_pass() {
        for ok in [
            "https://status.example.com/health",
            "http://x.example:8080/h?x=1",
            "https://8.8.8.8/",
            "https://[2001:db8::1]:443/",
            "HTTPS://Example.COM",
            "https://example.com.",
        ] {
            assert_eq!(check_public_url(ok, STRICT), Ok(()), "{ok}");
        }
    }

    #[test]
    fn inside_addresses_are_refused_in_every_form() {
        for bad in [
            "http://169.254.169.254/latest/meta-data/",
            "http://169.254.170.2/v2/credentials",
            "http://127.0.0.1/",
            "http://127.1/",
            "http://2130706433/",
            "http://0x7f000001/",
            "http://0177.0.0.1/",
            "http://0x7f.1/",
            "http://0/",
            "http://0.0.0.0:3000/",
            "http://10.1.2.3/",
            "http://172.16.0.1/",
            "http://172.31.255.255/",
            "http://192.168.1.1/",
            "http://100.64.0.1/",
            "http://224.0.0.1/",
            "http://255.255.255.255/",
            "http://[::1]/",
            "http://[::]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:a9fe:a9fe]/",
            "http://[64:ff9b::169.254.169.254]/",
            "http://[2002:a9fe:a9fe::1]/",
            "http://[fd00:ec2::254]/",
            "http://[fe80::1]/",
            "http://[ff02::1]/",
            "http://localhost:3000/health",
            "http://LOCALHOST/",
            "http://api.localhost/",
            "http://metadata.google.internal/computeMetadata/v1/",
            "http://instance-data/latest/",
            "http://anything.internal/",
            "http://169.254.169.254./",
        ] {
            assert!(check_public_url(bad, STRICT).is_err(), "{bad} passed");
        }
    }

    #[test]
    fn odd_urls_are_refused_with_a_reason() {
        for bad in [
            "ftp://example.com/",
            "file:///etc/passwd",
            "gopher://example.com",
            "example.com/health",
            "http://user:pw@example.com/",
            "http://example.com@169.254.169.254/",
            "http://%31%32%37.0.0.1/",
            "http:// example.com/",
            "http://exa\tmple.com/",
            "http://[::1/",
            "http://example.com:99999/",
            "http:///path",
            "http://ex ample.com/",
            "http://bücher.example/",
            "http://1.2.3.4.5/",
            "http://256.1.1.1/",
        ] {
            assert!(check_public_url(bad, STRICT).is_err(), "{bad} passed");
        }
    }

    #[test]
    fn the_test_setting_opens_loopback_and_nothing_else() {
        for ok in ["http://127.0.0.1:4000/health", "http://localhost:4000/", "http://[::1]/", "http://127.1/"]
        {
            assert_eq!(check_public_url(ok, TESTS), Ok(()), "{ok}");
        }
        for bad in ["http://169.254.169.254/", "http://10.0.0.1/", "http://[fd00::1]/", "http://metadata/"] {
            assert!(check_public_url(bad, TESTS).is_err(), "{bad}");
        }
    }

    #[test]
    fn resolved_addresses_are_judged_alike() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(internal_ip(ip("169.254.169.254"), STRICT));
        assert!(internal_ip(ip("::ffff:10.0.0.1"), STRICT));
        assert!(internal_ip(ip("127.0.0.53"), STRICT));
        assert!(!internal_ip(ip("127.0.0.53"), TESTS));
        assert!(!internal_ip(ip("93.184.216.34"), STRICT));
        assert!(!internal_ip(ip("2606:4700::1111"), STRICT));
        assert!(!internal_ip(ip("172.32.0.1"), STRICT));
        assert!(!internal_ip(ip("100.128.0.1"), STRICT));
    }

    #[test]
    fn ipv4_parts_follow_the_url_standard() {
        assert_eq!(parse_ipv4("127.1"), Some(Ipv4Addr::new(127, 0, 0, 1)));
        assert_eq!(parse_ipv4("2130706433"), Some(Ipv4Addr::new(127, 0, 0, 1)));
        assert_eq!(parse_ipv4("0x7f.0.0.1"), Some(Ipv4Addr::new(127, 0, 0, 1)));
        assert_eq!(parse_ipv4("0177.0.0.01"), Some(Ipv4Addr::new(127, 0, 0, 1)));
        assert_eq!(parse_ipv4("10.0.258"), Some(Ipv4Addr::new(10, 0, 1, 2)));
        assert_eq!(parse_ipv4("4294967296"), None);
        assert_eq!(parse_ipv4("08.1.1.1"), None);
    }
}
