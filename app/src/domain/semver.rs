//! Semantic versions of capability releases (semver 2.0.0): parsing and precedence.

use std::{cmp::Ordering, fmt, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// `MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]`. Build metadata is kept but ignored by ordering,
/// as the specification says; two versions differing only in build metadata are equal.
#[derive(Clone, Debug, Eq)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
    pub pre: Vec<PreIdent>,
    pub build: Option<String>,
}

/// One dot-separated pre-release identifier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PreIdent {
    Numeric(u64),
    Alpha(String),
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not a semantic version (MAJOR.MINOR.PATCH, e.g. 1.4.0): {reason}")]
pub struct VersionError {
    pub input: String,
    pub reason: &'static str,
}

impl Version {
    pub const fn new(major: u64, minor: u64, patch: u64) -> Self {
        Version { major, minor, patch, pre: Vec::new(), build: None }
    }

    pub fn is_prerelease(&self) -> bool {
        !self.pre.is_empty()
    }
}

fn numeric(part: &str, input: &str, what: &'static str) -> Result<u64, VersionError> {
    let err = |reason| VersionError { input: input.to_string(), reason };
    if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err(what));
    }
    if part.len() > 1 && part.starts_with('0') {
        return Err(err("numbers must not have leading zeros"));
    }
    part.parse().map_err(|_| err("number too large"))
}

fn valid_ident(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

impl FromStr for Version {
    type Err = VersionError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |reason| VersionError { input: input.to_string(), reason };
        let (rest, build) = match input.split_once('+') {
            Some((rest, build)) => {
                if !build.split('.').all(valid_ident) {
                    return Err(err("invalid build metadata"));
                }
                (rest, Some(build.to_string()))
            }
            None => (input, None),
        };
        let (core, pre) = match rest.split_once('-') {
            Some((core, pre)) => (core, Some(pre)),
            None => (rest, None),
        };
        let mut parts = core.split('.');
        let major = numeric(parts.next().unwrap_or(""), input, "missing major version")?;
        let minor = numeric(parts.next().unwrap_or(""), input, "missing minor version")?;
        let patch = numeric(parts.next().unwrap_or(""), input, "missing patch version")?;
        if parts.next().is_some() {
            return Err(err("too many components"));
        }
        let pre = match pre {
            None => Vec::new(),
            Some(pre) => pre
                .split('.')
                .map(|id| {
                    if !valid_ident(id) {
                        Err(err("invalid pre-release identifier"))
                    } else if id.bytes().all(|b| b.is_ascii_digit()) {
                        numeric(id, input, "invalid pre-release identifier").map(PreIdent::Numeric)
                    } else {
                        Ok(PreIdent::Alpha(id.to_string()))
                    }
                })
                .collect::<Result<_, _>>()?,
        };
        Ok(Version { major, minor, patch, pre, build })
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        for (i, id) in self.pre.iter().enumerate() {
            f.write_str(if i == 0 { "-" } else { "." })?;
            match id {
                PreIdent::Numeric(n) => write!(f, "{n}")?,
                PreIdent::Alpha(s) => f.write_str(s)?,
            }
        }
        if let Some(build) = &self.build {
            write!(f, "+{build}")?;
        }
        Ok(())
    }
}

impl Ord for PreIdent {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (PreIdent::Numeric(a), PreIdent::Numeric(b)) => a.cmp(b),
            (PreIdent::Numeric(_), PreIdent::Alpha(_)) => Ordering::Less,
            (PreIdent::Alpha(_), PreIdent::Numeric(_)) => Ordering::Greater,
            (PreIdent::Alpha(a), PreIdent::Alpha(b)) => a.cmp(b),
        }
    }
}

impl PartialOrd for PreIdent {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch).cmp(&(other.major, other.minor, other.patch)).then_with(|| {
            // A release ranks above its pre-releases; otherwise identifiers compare left to right.
            match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => self.pre.cmp(&other.pre),
            }
        })
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Serialize for Version {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        s.parse().unwrap()
    }

    #[test]
    fn parses_and_prints() {
        for s in [
            "0.0.0",
            "1.2.3",
            "10.20.30",
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-0.3.7",
            "1.0.0+20130313144700",
            "1.0.0-beta+exp.sha.5114f85",
        ] {
            assert_eq!(v(s).to_string(), s);
        }
        assert_eq!(v("2.1.7"), Version::new(2, 1, 7));
    }

    #[test]
    fn rejects_malformed() {
        for s in [
            "",
            "1",
            "1.2",
            "1.2.3.4",
            "01.2.3",
            "1.02.3",
            "1.2.03",
            "a.b.c",
            "1.2.3-",
            "1.2.3-01",
            "1.2.3+",
            "1.2.3-a..b",
            " 1.2.3",
            "v1.2.3",
            "1.2.3-é",
        ] {
            assert!(s.parse::<Version>().is_err(), "{s:?} should be rejected");
        }
        let e = "1.2".parse::<Version>().unwrap_err();
        assert!(e.to_string().contains("`1.2`"), "{e}");
    }

    #[test]
    fn orders_by_precedence() {
        // The example chain from the semver 2.0.0 specification, ascending.
        let chain = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "1.0.1",
            "1.1.0",
            "2.0.0",
            "10.0.0",
        ];
        for pair in chain.windows(2) {
            assert!(v(pair[0]) < v(pair[1]), "{} < {}", pair[0], pair[1]);
        }
        let mut shuffled: Vec<Version> = chain.iter().rev().map(|s| v(s)).collect();
        shuffled.sort();
        assert_eq!(shuffled.iter().map(ToString::to_string).collect::<Vec<_>>(), chain);
    }

    #[test]
    fn build_metadata_does_not_affect_precedence() {
        assert_eq!(v("1.0.0+a"), v("1.0.0+b"));
        assert!(v("1.0.0-rc.1+z") < v("1.0.0+a"));
    }

    #[test]
    fn serde_round_trip_as_string() {
        let json = serde_json::to_string(&v("1.4.0-rc.2")).unwrap();
        assert_eq!(json, "\"1.4.0-rc.2\"");
        assert_eq!(serde_json::from_str::<Version>(&json).unwrap(), v("1.4.0-rc.2"));
        assert!(serde_json::from_str::<Version>("\"1.4\"").is_err());
    }
}
