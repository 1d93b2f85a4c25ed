//! Version ranges, as a rollout selects the deployments it moves: comparators separated by
//! spaces, all of which must hold (`>=1.1.0 <1.2.0`), or `*` for any version. Pre-release
//! versions match only a comparator that names a pre-release of the same MAJOR.MINOR.PATCH
//! (npm's rule: a range never pulls in someone's release candidate by accident).

use std::{fmt, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::semver::Version;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Eq,
    Gt,
    Ge,
    Lt,
    Le,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Comparator {
    op: Op,
    version: Version,
}

impl Comparator {
    fn holds(&self, v: &Version) -> bool {
        let order = v.cmp(&self.version);
        match self.op {
            Op::Eq => order.is_eq(),
            Op::Gt => order.is_gt(),
            Op::Ge => order.is_ge(),
            Op::Lt => order.is_lt(),
            Op::Le => order.is_le(),
        }
    }
}

/// Every comparator must hold; none: any version.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VersionRange {
    comparators: Vec<Comparator>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not a version range (e.g. `>=1.1.0 <1.2.0`, or `*`): {reason}")]
pub struct RangeError {
    pub input: String,
    pub reason: String,
}

impl VersionRange {
    /// Any version.
    pub fn any() -> Self {
        VersionRange::default()
    }

    pub fn contains(&self, v: &Version) -> bool {
        if v.is_prerelease()
            && !self.comparators.iter().any(|c| {
                c.version.is_prerelease()
                    && (c.version.major, c.version.minor, c.version.patch) == (v.major, v.minor, v.patch)
            })
        {
            return false;
        }
        self.comparators.iter().all(|c| c.holds(v))
    }
}

impl FromStr for VersionRange {
    type Err = RangeError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |reason: String| RangeError { input: input.to_string(), reason };
        let text = input.trim();
        if text.is_empty() {
            return Err(err("it is empty".into()));
        }
        if text == "*" {
            return Ok(VersionRange::any());
        }
        let mut comparators = Vec::new();
        for part in text.split_whitespace() {
            let (op, rest) = [(">=", Op::Ge), ("<=", Op::Le), (">", Op::Gt), ("<", Op::Lt), ("=", Op::Eq)]
                .into_iter()
                .find_map(|(prefix, op)| part.strip_prefix(prefix).map(|rest| (op, rest)))
                .unwrap_or((Op::Eq, part));
            let version = rest.parse::<Version>().map_err(|e| err(format!("`{part}`: {}", e.reason)))?;
            comparators.push(Comparator { op, version });
        }
        Ok(VersionRange { comparators })
    }
}

impl fmt::Display for VersionRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.comparators.is_empty() {
            return f.write_str("*");
        }
        let parts: Vec<String> =
            self.comparators.iter().map(|c| format!("{}{}", c.op.as_str(), c.version)).collect();
        f.write_str(&parts.join(" "))
    }
}

impl Serialize for VersionRange {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for VersionRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        s.parse().unwrap()
    }

    fn r(s: &str) -> VersionRange {
        s.parse().unwrap()
    }

    #[test]
    fn every_comparator_must_hold() {
        let range = r(">=1.1.0 <1.2.0");
        assert!(range.contains(&v("1.1.0")));
        assert!(range.contains(&v("1.1.9")));
        assert!(!range.contains(&v("1.2.0")));
        assert!(!range.contains(&v("1.0.9")));
        assert!(r("1.1.0").contains(&v("1.1.0")) && !r("1.1.0").contains(&v("1.1.1")));
        assert!(r("=1.1.0").contains(&v("1.1.0")));
        assert!(r(">1.0.0").contains(&v("1.0.1")) && !r(">1.0.0").contains(&v("1.0.0")));
        assert!(r("<=2.0.0").contains(&v("2.0.0")) && !r("<=2.0.0").contains(&v("2.0.1")));
        assert!(r("*").contains(&v("9.9.9")) && VersionRange::any().contains(&v("0.0.1")));
    }

    #[test]
    fn pre_releases_only_when_named() {
        assert!(!r(">=1.0.0").contains(&v("1.2.0-rc.1")), "no stray release candidates");
        assert!(r(">=1.2.0-rc.1 <1.3.0").contains(&v("1.2.0-rc.2")));
        assert!(!r(">=1.2.0-rc.1 <1.3.0").contains(&v("1.2.1-rc.1")));
    }

    #[test]
    fn ranges_read_back_as_written_and_bad_ones_say_which_part() {
        assert_eq!(r(">=1.1.0   <1.2.0").to_string(), ">=1.1.0 <1.2.0");
        assert_eq!(r("*").to_string(), "*");
        let json = serde_json::to_string(&r(">=1.1.0 <1.2.0")).unwrap();
        assert_eq!(serde_json::from_str::<VersionRange>(&json).unwrap(), r(">=1.1.0 <1.2.0"));
        let e = ">=1.1 <1.2.0".parse::<VersionRange>().unwrap_err();
        assert!(e.to_string().contains("`>=1.1`"), "{e}");
        assert!("".parse::<VersionRange>().is_err());
        assert!("~>1.0.0".parse::<VersionRange>().is_err());
    }
}
