//! Timestamps: milliseconds since the Unix epoch, shown and exchanged as RFC 3339 in UTC
//! (`2026-11-28T05:09:29.123Z`, fixed width, so text order is time order). Pure arithmetic, so
//! the browser needs no date library and renders exactly what the server rendered.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

// Howard Hinnant's civil-from-days and days-from-civil algorithms (public domain).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

impl Timestamp {
    pub const fn from_millis(ms: i64) -> Self {
        Timestamp(ms)
    }

    pub const fn millis(self) -> i64 {
        self.0
    }

    /// The start (00:00 UTC) of a calendar day written `YYYY-MM-DD` (what a date input sends).
    pub fn parse_day(s: &str) -> Option<Self> {
        let t = Self::parse(&format!("{}T00:00:00Z", s.trim()))?;
        // `parse` takes day 31 of any month: a day that does not exist does not round-trip.
        (t.to_string().get(..10) == Some(s.trim())).then_some(t)
    }

    /// Parses `YYYY-MM-DDTHH:MM:SS[.fff]Z` (also with a `+00:00` offset).
    pub fn parse(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        if b.len() < 20
            || b[4] != b'-'
            || b[7] != b'-'
            || !(b[10] == b'T' || b[10] == b't')
            || b[13] != b':'
            || b[16] != b':'
        {
            return None;
        }
        let num = |r: std::ops::Range<usize>| -> Option<i64> {
            let part = s.get(r)?;
            part.bytes().all(|c| c.is_ascii_digit()).then(|| part.parse().ok())?
        };
        let (y, mo, d, h, mi, sec) =
            (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
        if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 59 {
            return None;
        }
        let mut rest = &s[19..];
        let mut millis = 0i64;
        if let Some(frac) = rest.strip_prefix('.') {
            let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return None;
            }
            let padded: String = frac[..digits].chars().chain("000".chars()).take(3).collect();
            millis = padded.parse().ok()?;
            rest = &frac[digits..];
        }
        if !(rest == "Z" || rest == "z" || rest == "+00:00") {
            return None;
        }
        let days = days_from_civil(y, mo as u32, d as u32);
        // Reject dates like 2026-02-31 that the arithmetic would silently roll over.
        if civil_from_days(days) != (y, mo as u32, d as u32) {
            return None;
        }
        Some(Timestamp(((days * 24 + h) * 60 + mi) * 60_000 + sec * 1000 + millis))
    }

    /// `HH:MM` in UTC, for "as of" labels.
    pub fn hh_mm(self) -> String {
        let s = self.to_string();
        s[11..16].to_string()
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.rem_euclid(1000);
        let secs = self.0.div_euclid(1000);
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        write!(f, "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z", sod / 3600, sod % 3600 / 60, sod % 60)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Timestamp::parse(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("`{s}` is not an RFC 3339 UTC time")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_calendar_day_parses_to_its_start() {
        let t = Timestamp::parse_day("2026-11-28").unwrap();
        assert_eq!(t, Timestamp::parse("2026-11-28T00:00:00Z").unwrap());
        assert_eq!(Timestamp::parse_day(" 2024-02-29 "), Timestamp::parse("2024-02-29T00:00:00Z"));
        for bad in ["", "2026-11", "2026-02-30", "2026-13-01", "28/11/2026", "2026-11-28T10:00:00Z"] {
            assert_eq!(Timestamp::parse_day(bad), None, "{bad}");
        }
    }

    #[test]
    fn formats_known_instants() {
        assert_eq!(Timestamp(0).to_string(), "1970-01-01T00:00:00.000Z");
        assert_eq!(Timestamp(1_795_842_569_123).to_string(), "2026-11-28T05:09:29.123Z");
        assert_eq!(Timestamp(951_782_400_000).to_string(), "2000-02-29T00:00:00.000Z");
        assert_eq!(Timestamp(-1).to_string(), "1969-12-31T23:59:59.999Z");
        assert_eq!(Timestamp(1_795_842_569_123).hh_mm(), "05:09");
    }

    #[test]
    fn parse_round_trips() {
        for ms in [0, 1, 999, 86_399_999, 951_782_400_000, 1_795_842_569_123, 4_102_444_800_000, -86_400_000]
        {
            let t = Timestamp(ms);
            assert_eq!(Timestamp::parse(&t.to_string()), Some(t), "{t}");
        }
        assert_eq!(Timestamp::parse("2026-11-28T05:09:29Z"), Some(Timestamp(1_795_842_569_000)));
        assert_eq!(Timestamp::parse("2026-11-28T05:09:29.1+00:00"), Some(Timestamp(1_795_842_569_100)));
    }

    #[test]
    fn rejects_malformed() {
        for s in [
            "",
            "2026-11-28",
            "2026-13-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-11-28T24:00:00Z",
            "2026-11-28T05:09:29",
            "2026-11-28T05:09:29+01:00",
            "2026-11-28T05:09:29.Z",
            "x026-11-28T05:09:29Z",
        ] {
            assert_eq!(Timestamp::parse(s), None, "{s}");
        }
    }

    #[test]
    fn text_order_is_time_order() {
        let a = Timestamp(1_000_000_000_000).to_string();
        let b = Timestamp(1_795_842_569_123).to_string();
        assert!(a < b);
    }
}
