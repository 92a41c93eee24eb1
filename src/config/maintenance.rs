//! `[[maintenance]]`: windows in which incidents are recorded but not announced, one-off
//! (`start`, `end`) or weekly (`days`, `from`, `to`), in a `time_zone` (default UTC).

use std::collections::HashSet;
use std::sync::Arc;

use jiff::tz::TimeZone;
use toml::de::{DeTable, DeValue};

use super::diag::Diags;
use super::fields::{Section, a_type};
use crate::alert::maintenance::{parse_clock, parse_day, parse_moment};
use crate::alert::{Maintenance, When};
use crate::model::MonitorId;

const KEYS: &[&str] = &[
    "monitors",
    "groups",
    "start",
    "end",
    "days",
    "from",
    "to",
    "time_zone",
];

/// Every `[[maintenance]]`; `monitors` must name configured monitors.
pub(super) fn read(
    root: &DeTable<'_>,
    known: &HashSet<&str>,
    d: &mut Diags<'_>,
) -> Vec<Arc<Maintenance>> {
    let Some((key, value)) = root.get_key_value("maintenance") else {
        return Vec::new();
    };
    let DeValue::Array(items) = value.get_ref() else {
        d.error(
            &key.span(),
            "`maintenance` must be an array of tables: write [[maintenance]] for each window",
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for item in items.iter() {
        let DeValue::Table(t) = item.get_ref() else {
            d.error(
                &item.span(),
                format!(
                    "each [[maintenance]] must be a table, not {}",
                    a_type(item.get_ref())
                ),
            );
            continue;
        };
        let s = Section::new(t, item.span(), "[[maintenance]]");
        s.check_keys(d, KEYS, &|_| None);
        if let Some(m) = read_one(&s, known, d) {
            out.push(Arc::new(m));
        }
    }
    out
}

fn read_one(s: &Section<'_, '_>, known: &HashSet<&str>, d: &mut Diags<'_>) -> Option<Maintenance> {
    let mut monitors = Vec::new();
    for id in s
        .string_list(d, "monitors")
        .map(|l| l.v)
        .unwrap_or_default()
    {
        match MonitorId::parse(&id.v) {
            Ok(m) if known.contains(m.as_str()) => monitors.push(m),
            _ => d.error(
                &id.span,
                format!("{}: no monitor has id \"{}\"", s.name("monitors"), id.v),
            ),
        }
    }
    let groups: Vec<String> = s
        .string_list(d, "groups")
        .map(|l| l.v.into_iter().map(|g| g.v).collect())
        .unwrap_or_default();
    let zone = match s.string(d, "time_zone") {
        None => TimeZone::UTC,
        Some(z) => match TimeZone::get(z.v.trim()) {
            Ok(tz) => tz,
            Err(_) => {
                d.error(
                    &z.span,
                    format!("{}: unknown time zone \"{}\"; use an IANA name such as \"Europe/Berlin\" or \"UTC\"", s.name("time_zone"), z.v),
                );
                return None;
            }
        },
    };
    let once = s.raw("start").is_some() || s.raw("end").is_some();
    let weekly = ["days", "from", "to"].iter().any(|k| s.raw(k).is_some());
    let when = match (once, weekly) {
        (true, true) => {
            d.error(&s.span, "[[maintenance]] is either one-off (start, end) or weekly (days, from, to), not both");
            return None;
        }
        (false, false) => {
            d.error(
                &s.span,
                "[[maintenance]] needs start and end (one-off) or days, from and to (weekly)",
            );
            return None;
        }
        (true, false) => read_once(s, &zone, d)?,
        (false, true) => read_weekly(s, zone, d)?,
    };
    Some(Maintenance {
        monitors,
        groups,
        when,
    })
}

fn read_once(s: &Section<'_, '_>, zone: &TimeZone, d: &mut Diags<'_>) -> Option<When> {
    let mut moment = |key: &str| {
        let v = s.string(d, key);
        if v.is_none() && s.raw(key).is_none() {
            d.error(
                &s.span,
                format!("[[maintenance]] with start or end needs both; `{key}` is missing"),
            );
        }
        let v = v?;
        match parse_moment(&v.v, zone) {
            Ok(t) => Some((t, v.span)),
            Err(e) => {
                d.error(&v.span, format!("{}: {e}", s.name(key)));
                None
            }
        }
    };
    let start = moment("start");
    let end = moment("end");
    let ((start, _), (end, end_span)) = (start?, end?);
    if end <= start {
        d.error(&end_span, format!("{} must be after start", s.name("end")));
        return None;
    }
    Some(When::Once { start, end })
}

fn read_weekly(s: &Section<'_, '_>, zone: TimeZone, d: &mut Diags<'_>) -> Option<When> {
    let mut ok = true;
    let mut days = Vec::new();
    match s.string_list(d, "days") {
        None => {
            if s.raw("days").is_none() {
                d.error(
                    &s.span,
                    "a weekly [[maintenance]] needs `days`, e.g. [\"sat\", \"sun\"]",
                );
            }
            ok = false;
        }
        Some(list) => {
            for x in list.v {
                match parse_day(&x.v) {
                    Some(n) => days.push(n),
                    None => {
                        d.error(
                            &x.span,
                            format!(
                                "{}: \"{}\" is not a day; use mon, tue, wed, thu, fri, sat, sun",
                                s.name("days"),
                                x.v
                            ),
                        );
                        ok = false;
                    }
                }
            }
        }
    }
    let mut clock = |key: &str| {
        let Some(v) = s.string(d, key) else {
            if s.raw(key).is_none() {
                d.error(
                    &s.span,
                    format!("a weekly [[maintenance]] needs `{key}` (\"HH:MM\")"),
                );
            }
            return None;
        };
        parse_clock(&v.v)
            .map_err(|e| d.error(&v.span, format!("{}: {e}", s.name(key))))
            .ok()
    };
    let from = clock("from");
    let to = clock("to");
    let (from, to) = (from?, to?);
    ok.then_some(When::Weekly {
        days,
        from,
        to,
        zone,
    })
}
