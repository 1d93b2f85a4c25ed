//! Maintenance windows and freezes (issue 22): when a prod change may start. Weekly windows are
//! wall-clock times in the customer's own time zone ("Tue 02:00-04:00"); a window may run past
//! midnight ("Sat 23:00-01:00"). Freezes are absolute periods for the whole organisation.
//!
//! Pure: the server turns an instant into the customer's local wall-clock time (the time-zone
//! database stays on the server, `ssr::maintenance`), and turns the answer back into an instant.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::time::Timestamp;

const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const MINUTES_A_DAY: u32 = 24 * 60;
const MINUTES_A_WEEK: u32 = 7 * MINUTES_A_DAY;

/// A weekly window: `day` 0 = Monday; minutes from local midnight. `end` before or at `start`
/// runs past midnight into the next day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WeeklyWindow {
    pub day: u8,
    pub start: u32,
    pub end: u32,
}

/// A local wall-clock moment within the week: day 0 = Monday, minutes from midnight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WeekTime {
    pub day: u8,
    pub minute: u32,
}

impl WeekTime {
    fn of_week(self) -> u32 {
        u32::from(self.day) * MINUTES_A_DAY + self.minute
    }
}

impl WeeklyWindow {
    fn span(&self) -> (u32, u32) {
        let start = u32::from(self.day) * MINUTES_A_DAY + self.start;
        let length =
            if self.end > self.start { self.end - self.start } else { MINUTES_A_DAY - self.start + self.end };
        (start, length)
    }

    /// Whether `t` is inside the window.
    pub fn contains(&self, t: WeekTime) -> bool {
        let (start, length) = self.span();
        (t.of_week() + MINUTES_A_WEEK - start) % MINUTES_A_WEEK < length
    }

    /// Minutes from `t` to the window's next start (0: it starts now).
    pub fn minutes_until_start(&self, t: WeekTime) -> u32 {
        let (start, _) = self.span();
        (start + MINUTES_A_WEEK - t.of_week()) % MINUTES_A_WEEK
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not a weekly window (e.g. `Tue 02:00-04:00`): {reason}")]
pub struct WindowError {
    pub input: String,
    pub reason: &'static str,
}

fn minutes(hhmm: &str) -> Option<u32> {
    let (h, m) = hhmm.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    // 24:00 ends a window at midnight.
    ((h < 24 && m < 60) || (h, m) == (24, 0)).then_some(h * 60 + m)
}

impl FromStr for WeeklyWindow {
    type Err = WindowError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |reason| WindowError { input: input.to_string(), reason };
        let (day, times) = input.trim().split_once(' ').ok_or(err("a day, a space, then start-end"))?;
        let day =
            DAYS.iter().position(|d| d.eq_ignore_ascii_case(day)).ok_or(err("the day is Mon … Sun"))? as u8;
        let (start, end) = times.trim().split_once('-').ok_or(err("start-end, as HH:MM-HH:MM"))?;
        let start = minutes(start.trim()).filter(|m| *m < MINUTES_A_DAY).ok_or(err("the start is HH:MM"))?;
        let end = minutes(end.trim()).ok_or(err("the end is HH:MM"))?;
        if end == start {
            return Err(err("a window has a length"));
        }
        Ok(WeeklyWindow { day, start, end: end % MINUTES_A_DAY })
    }
}

impl fmt::Display for WeeklyWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hm = |m: u32| format!("{:02}:{:02}", m / 60, m % 60);
        let end = if self.end == 0 { "24:00".to_string() } else { hm(self.end) };
        write!(f, "{} {}-{}", DAYS[usize::from(self.day)], hm(self.start), end)
    }
}

impl Serialize for WeeklyWindow {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for WeeklyWindow {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// An organisation-wide period without prod changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Freeze {
    pub from: Timestamp,
    pub to: Timestamp,
    pub reason: String,
}

/// Whether a prod change may start now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Gate {
    Open,
    /// Not before the freeze ends.
    Frozen {
        until: Timestamp,
        reason: String,
    },
    /// Outside every window: the next one starts in this many minutes of local wall-clock time
    /// (the server turns it into an instant in the customer's zone).
    OutsideWindow {
        next: WeeklyWindow,
        in_minutes: u32,
    },
}

/// The gate for a prod change at `now` (local time `local` in the customer's zone): a freeze
/// first, then the windows (the customer's own, else the organisation's default; none at all:
/// no restriction).
pub fn gate(windows: &[WeeklyWindow], freezes: &[Freeze], now: Timestamp, local: WeekTime) -> Gate {
    if let Some(f) = freezes.iter().filter(|f| f.from <= now && now < f.to).max_by_key(|f| f.to) {
        return Gate::Frozen { until: f.to, reason: f.reason.clone() };
    }
    if windows.is_empty() || windows.iter().any(|w| w.contains(local)) {
        return Gate::Open;
    }
    let next = windows.iter().min_by_key(|w| w.minutes_until_start(local)).copied().expect("not empty");
    Gate::OutsideWindow { next, in_minutes: next.minutes_until_start(local) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str) -> WeeklyWindow {
        s.parse().unwrap()
    }

    fn at(day: u8, h: u32, m: u32) -> WeekTime {
        WeekTime { day, minute: h * 60 + m }
    }

    #[test]
    fn windows_read_and_print_as_people_write_them() {
        assert_eq!(w("Tue 02:00-04:00"), WeeklyWindow { day: 1, start: 120, end: 240 });
        assert_eq!(w("tue 02:00-04:00").to_string(), "Tue 02:00-04:00");
        assert_eq!(w("Sat 23:00-01:00").to_string(), "Sat 23:00-01:00");
        assert_eq!(w("Sun 22:00-24:00").to_string(), "Sun 22:00-24:00");
        for bad in
            ["Tue", "Tue 2:00-04:00", "Xyz 02:00-04:00", "Tue 02:00-02:00", "Tue 25:00-26:00", "Tue 02:00"]
        {
            let e = bad.parse::<WeeklyWindow>().unwrap_err();
            assert!(e.to_string().contains(bad), "{e}");
        }
        let json = serde_json::to_string(&vec![w("Tue 02:00-04:00")]).unwrap();
        assert_eq!(json, r#"["Tue 02:00-04:00"]"#);
        assert_eq!(serde_json::from_str::<Vec<WeeklyWindow>>(&json).unwrap(), vec![w("Tue 02:00-04:00")]);
    }

    #[test]
    fn inside_a_window_including_across_midnight_and_the_week_end() {
        let tue = w("Tue 02:00-04:00");
        assert!(tue.contains(at(1, 2, 0)) && tue.contains(at(1, 3, 59)));
        assert!(!tue.contains(at(1, 4, 0)) && !tue.contains(at(1, 1, 59)) && !tue.contains(at(2, 3, 0)));
        let late = w("Sun 23:00-01:00");
        assert!(late.contains(at(6, 23, 30)) && late.contains(at(0, 0, 30)), "runs into Monday");
        assert!(!late.contains(at(0, 1, 0)));
        assert_eq!(late.minutes_until_start(at(0, 1, 0)), 6 * 24 * 60 + 22 * 60);
        assert_eq!(tue.minutes_until_start(at(1, 2, 0)), 0);
        assert_eq!(tue.minutes_until_start(at(1, 1, 0)), 60);
    }

    #[test]
    fn freezes_first_then_the_nearest_window() {
        let now = Timestamp::from_millis(1_000_000);
        let freeze = Freeze {
            from: Timestamp::from_millis(0),
            to: Timestamp::from_millis(2_000_000),
            reason: "year-end close".into(),
        };
        let windows = [w("Tue 02:00-04:00"), w("Thu 02:00-04:00")];
        assert_eq!(
            gate(&windows, std::slice::from_ref(&freeze), now, at(1, 3, 0)),
            Gate::Frozen { until: freeze.to, reason: "year-end close".into() },
            "a freeze wins over an open window"
        );
        assert_eq!(gate(&windows, &[], now, at(1, 3, 0)), Gate::Open);
        assert_eq!(
            gate(&windows, &[], now, at(1, 5, 0)),
            Gate::OutsideWindow { next: windows[1], in_minutes: 2 * 24 * 60 - 3 * 60 }
        );
        assert_eq!(gate(&[], &[], now, at(4, 12, 0)), Gate::Open, "no window: no restriction");
        let past = Freeze { to: Timestamp::from_millis(500_000), ..freeze };
        assert_eq!(gate(&[], &[past], now, at(4, 12, 0)), Gate::Open, "a freeze that ended");
    }
}
