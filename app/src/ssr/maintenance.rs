//! The time-zone half of maintenance windows (`domain::maintenance` decides): an instant in a
//! customer's IANA zone as a wall-clock time of the week, and the next window's start back as
//! an instant, daylight saving included. The zone database is compiled into the server (jiff's
//! bundled tzdb), so it needs no system tzdata and never reaches the browser.

use jiff::{SignedDuration, tz::TimeZone};

use crate::domain::{
    maintenance::{Gate, WeekTime},
    time::Timestamp,
};

/// The zone named `name` (`Europe/Berlin`), or why not.
pub fn zone(name: &str) -> Result<TimeZone, String> {
    TimeZone::get(name).map_err(|_| format!("`{name}` is not an IANA time zone (e.g. Europe/Berlin)"))
}

fn instant(t: Timestamp) -> jiff::Timestamp {
    jiff::Timestamp::from_millisecond(t.millis()).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

/// `now` as a wall-clock time of the week in `tz`.
pub fn week_time(now: Timestamp, tz: &TimeZone) -> WeekTime {
    let local = instant(now).to_zoned_datetime(tz.clone());
    WeekTime {
        day: local.weekday().to_monday_zero_offset() as u8,
        minute: local.hour() as u32 * 60 + local.minute() as u32,
    }
}

/// When a prod change gated by `gate` at `now` may start (`None`: now). A window's start that
/// falls into a daylight-saving gap moves forward by the gap, as the clocks do (02:30 on the
/// night Berlin skips 02:00-03:00 is 03:30).
pub fn opens_at(gate: &Gate, now: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
    match gate {
        Gate::Open => None,
        Gate::Frozen { until, .. } => Some(*until),
        Gate::OutsideWindow { in_minutes, .. } => {
            // The window starts on the minute: the seconds of `now` do not count (zone offsets
            // are whole minutes).
            let minute = Timestamp::from_millis(now.millis() - now.millis().rem_euclid(60_000));
            let local = instant(minute).to_zoned_datetime(tz.clone()).datetime();
            let start = local
                .checked_add(SignedDuration::from_mins(i64::from(*in_minutes)))
                .and_then(|t| t.to_zoned_datetime(tz.clone()))
                .ok()?;
            Some(Timestamp::from_millis(start.timestamp().as_millisecond()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::maintenance::{WeeklyWindow, gate};

    fn ts(rfc3339: &str) -> Timestamp {
        let t: jiff::Timestamp = rfc3339.parse().unwrap();
        Timestamp::from_millis(t.as_millisecond())
    }

    #[test]
    fn an_instant_is_read_on_the_customers_wall_clock() {
        let berlin = zone("Europe/Berlin").unwrap();
        // Tuesday 2026-12-08 01:30 UTC is 02:30 in Berlin (CET, +1).
        assert_eq!(week_time(ts("2026-12-08T01:30:00Z"), &berlin), WeekTime { day: 1, minute: 150 });
        // In July Berlin is +2.
        assert_eq!(week_time(ts("2026-07-07T01:30:00Z"), &berlin), WeekTime { day: 1, minute: 210 });
        let tokyo = zone("Asia/Tokyo").unwrap();
        assert_eq!(week_time(ts("2026-12-08T16:00:00Z"), &tokyo), WeekTime { day: 2, minute: 60 });
        assert!(zone("Mars/Olympus_Mons").unwrap_err().contains("Mars/Olympus_Mons"));
    }

    #[test]
    fn the_next_window_opens_at_its_local_start_across_a_clock_change() {
        let berlin = zone("Europe/Berlin").unwrap();
        let windows: [WeeklyWindow; 1] = ["Sun 02:30-04:00".parse().unwrap()];
        // Saturday 2026-03-28 12:00 UTC; the clocks go forward at 02:00 on Sunday the 29th, so
        // 02:30 that night does not exist: the window opens at 03:30 CEST (01:30 UTC).
        let now = ts("2026-03-28T12:00:00Z");
        let g = gate(&windows, &[], now, week_time(now, &berlin));
        assert!(matches!(g, Gate::OutsideWindow { .. }), "{g:?}");
        assert_eq!(opens_at(&g, now, &berlin), Some(ts("2026-03-29T01:30:00Z")));
        // An ordinary week: Sunday 2026-12-13 02:30 CET is 01:30 UTC.
        let now = ts("2026-12-08T10:00:17Z");
        let g = gate(&windows, &[], now, week_time(now, &berlin));
        assert_eq!(opens_at(&g, now, &berlin), Some(ts("2026-12-13T01:30:00Z")));
        assert_eq!(opens_at(&Gate::Open, now, &berlin), None);
    }
}
