//! Maintenance windows (`[[maintenance]]`): while one is active for a monitor, incidents that
//! open are recorded but never announced. Pure: whether a window covers a moment is plain
//! arithmetic on the moment in the window's time zone (through `jiff`, so a weekly slot stays
//! at its wall-clock time across daylight-saving changes).

use jiff::civil::{DateTime, Time};
use jiff::tz::TimeZone;

use crate::model::{MonitorId, Timestamp};

/// One window and what it covers.
#[derive(Debug, Clone)]
pub struct Maintenance {
    /// Monitors covered by id; with `groups` also empty, every monitor.
    pub monitors: Vec<MonitorId>,
    /// Monitors covered by their `group`.
    pub groups: Vec<String>,
    pub when: When,
}

#[derive(Debug, Clone)]
pub enum When {
    /// From `start` (inclusive) to `end` (exclusive).
    Once { start: Timestamp, end: Timestamp },
    /// On `days` (0 = Monday) from `from` to `to` local time in `zone`; a slot whose `to` is
    /// not after `from` runs past midnight into the next day.
    Weekly {
        days: Vec<u8>,
        from: Time,
        to: Time,
        zone: TimeZone,
    },
}

impl Maintenance {
    pub fn covers(&self, id: &MonitorId, group: Option<&str>) -> bool {
        (self.monitors.is_empty() && self.groups.is_empty())
            || self.monitors.contains(id)
            || group.is_some_and(|g| self.groups.iter().any(|x| x == g))
    }

    pub fn active_at(&self, at: Timestamp) -> bool {
        match &self.when {
            When::Once { start, end } => *start <= at && at < *end,
            When::Weekly {
                days,
                from,
                to,
                zone,
            } => {
                let Some(local) = local_time(at, zone) else {
                    return false;
                };
                let day = local.date().weekday().to_monday_zero_offset() as u8;
                let t = local.time();
                let yesterday = (day + 6) % 7;
                if from < to {
                    days.contains(&day) && *from <= t && t < *to
                } else {
                    (days.contains(&day) && t >= *from) || (days.contains(&yesterday) && t < *to)
                }
            }
        }
    }
}

fn local_time(at: Timestamp, zone: &TimeZone) -> Option<DateTime> {
    let ts = jiff::Timestamp::from_millisecond(at.millis()).ok()?;
    Some(zone.to_datetime(ts))
}

/// Parses a moment: RFC 3339 with an offset (`2026-12-24T22:00:00Z`,
/// `2026-12-24T22:00:00+01:00`), or a local date and time (`2026-12-24 22:00`) in `zone`.
pub(crate) fn parse_moment(s: &str, zone: &TimeZone) -> Result<Timestamp, String> {
    let s = s.trim();
    if let Ok(ts) = s.parse::<jiff::Timestamp>() {
        return Ok(Timestamp(ts.as_millisecond()));
    }
    let dt: DateTime = s.parse().map_err(|e| {
        format!("\"{s}\" is not a time ({e}); write 2026-12-24T22:00:00Z, or 2026-12-24 22:00 in time_zone")
    })?;
    let ts = zone.to_timestamp(dt).map_err(|e| format!("\"{s}\": {e}"))?;
    Ok(Timestamp(ts.as_millisecond()))
}

/// Parses `HH:MM` (24-hour).
pub(crate) fn parse_clock(s: &str) -> Result<Time, String> {
    let bad = || format!("\"{s}\" is not a time of day; write it like \"02:30\" (24-hour)");
    let (h, m) = s.trim().split_once(':').ok_or_else(bad)?;
    let h: i8 = h.parse().map_err(|_| bad())?;
    let m: i8 = m.parse().map_err(|_| bad())?;
    Time::new(h, m, 0, 0).map_err(|_| bad())
}

/// `mon`..`sun` (or full names) → 0..=6.
pub(crate) fn parse_day(s: &str) -> Option<u8> {
    const DAYS: [&str; 7] = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    let s = s.trim().to_ascii_lowercase();
    DAYS.iter()
        .position(|d| s == *d || s == d[..3])
        .map(|i| i as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weekly(days: &[u8], from: &str, to: &str, zone: &str) -> Maintenance {
        Maintenance {
            monitors: vec![],
            groups: vec![],
            when: When::Weekly {
                days: days.to_vec(),
                from: parse_clock(from).unwrap(),
                to: parse_clock(to).unwrap(),
                zone: TimeZone::get(zone).unwrap(),
            },
        }
    }

    fn at(s: &str) -> Timestamp {
        parse_moment(s, &TimeZone::UTC).unwrap()
    }

    #[test]
    fn weekly_slots_follow_local_time_across_dst() {
        // Sundays 02:00–04:00 in Berlin: UTC+1 in winter, UTC+2 in summer.
        let m = weekly(&[6], "02:00", "04:00", "Europe/Berlin");
        assert!(
            m.active_at(at("2026-01-04T01:30:00Z")),
            "winter: 02:30 local"
        );
        assert!(
            !m.active_at(at("2026-01-04T03:30:00Z")),
            "winter: 04:30 local"
        );
        assert!(
            m.active_at(at("2026-07-05T00:30:00Z")),
            "summer: 02:30 local"
        );
        assert!(
            !m.active_at(at("2026-07-05T02:30:00Z")),
            "summer: 04:30 local"
        );
        assert!(!m.active_at(at("2026-07-06T00:30:00Z")), "a Monday");
    }

    #[test]
    fn overnight_slots_run_into_the_next_day() {
        let m = weekly(&[4], "22:00", "02:00", "UTC"); // Friday night
        assert!(m.active_at(at("2026-12-04T23:00:00Z")), "Friday 23:00");
        assert!(m.active_at(at("2026-12-05T01:00:00Z")), "Saturday 01:00");
        assert!(!m.active_at(at("2026-12-05T23:00:00Z")), "Saturday 23:00");
    }

    #[test]
    fn one_off_windows_and_what_they_cover() {
        let berlin = TimeZone::get("Europe/Berlin").unwrap();
        let m = Maintenance {
            monitors: vec![MonitorId::parse("a").unwrap()],
            groups: vec!["prod".into()],
            when: When::Once {
                start: parse_moment("2026-12-24 22:00", &berlin).unwrap(),
                end: at("2026-12-25T02:00:00+01:00"),
            },
        };
        assert!(m.active_at(at("2026-12-24T21:00:00Z")));
        assert!(!m.active_at(at("2026-12-25T01:00:00Z")), "end is exclusive");
        let b = MonitorId::parse("b").unwrap();
        assert!(m.covers(&MonitorId::parse("a").unwrap(), None));
        assert!(m.covers(&b, Some("prod")) && !m.covers(&b, Some("dev")));
        assert_eq!(parse_day("Sunday"), Some(6));
        assert_eq!(parse_day("sat"), Some(5));
        assert_eq!(parse_day("funday"), None);
        assert!(parse_clock("25:00").is_err());
    }
}
