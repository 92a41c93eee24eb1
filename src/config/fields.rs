//! Typed, position-aware reads from a parsed TOML table.
//!
//! Each getter reports a wrong type or an out-of-range value at the value's position and
//! returns `None`, so the caller falls back to the default and validation goes on.

use std::ops::RangeBounds;
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeString, DeTable, DeValue};

use super::diag::{Diags, Sp, Span};

/// One TOML table being read, with what to call it in messages.
pub(crate) struct Section<'t, 'i> {
    pub table: &'t DeTable<'i>,
    /// The table header (`[runner]`, `[[monitor]]`) or inline table; missing keys point here.
    pub span: Span,
    /// How messages name this table, e.g. `[runner]` or `monitor \`openai\``.
    pub ctx: String,
}

impl<'t, 'i> Section<'t, 'i> {
    pub(super) fn new(table: &'t DeTable<'i>, span: Span, ctx: impl Into<String>) -> Self {
        Section {
            table,
            span,
            ctx: ctx.into(),
        }
    }

    /// Reports every key not in `allowed`, listing the allowed ones. `hint` may add a
    /// sentence for a known mistake.
    pub(super) fn check_keys(
        &self,
        d: &mut Diags<'_>,
        allowed: &[&str],
        hint: &dyn Fn(&str) -> Option<String>,
    ) {
        for (key, _) in self.table.iter() {
            let name: &str = key.get_ref();
            if allowed.contains(&name) {
                continue;
            }
            let mut msg = format!("unknown key `{name}` in {}", self.ctx);
            if let Some(h) = hint(name) {
                msg.push_str(&format!(" ({h})"));
            } else if let Some(close) = closest(name, allowed) {
                msg.push_str(&format!(" (did you mean `{close}`?)"));
            }
            msg.push_str(&format!("; allowed keys: {}", allowed.join(", ")));
            d.error(&key.span(), msg);
        }
    }

    pub(super) fn raw(
        &self,
        key: &str,
    ) -> Option<(&'t Spanned<DeString<'i>>, &'t Spanned<DeValue<'i>>)> {
        self.table.get_key_value(key)
    }

    /// `key` as this section names it in messages.
    pub(super) fn name(&self, key: &str) -> String {
        format!("`{key}` in {}", self.ctx)
    }

    fn wrong_type(&self, d: &mut Diags<'_>, key: &str, v: &Spanned<DeValue<'_>>, want: &str) {
        d.error(
            &v.span(),
            format!(
                "{} must be {want}, not {}",
                self.name(key),
                a_type(v.get_ref())
            ),
        );
    }

    pub(super) fn string(&self, d: &mut Diags<'_>, key: &str) -> Option<Sp<String>> {
        let (_, v) = self.raw(key)?;
        match v.get_ref() {
            DeValue::String(s) => Some(Sp::new(s.to_string(), v.span())),
            _ => {
                self.wrong_type(d, key, v, "a string");
                None
            }
        }
    }

    pub(super) fn boolean(&self, d: &mut Diags<'_>, key: &str) -> Option<Sp<bool>> {
        let (_, v) = self.raw(key)?;
        match v.get_ref() {
            DeValue::Boolean(b) => Some(Sp::new(*b, v.span())),
            _ => {
                self.wrong_type(d, key, v, "true or false");
                None
            }
        }
    }

    /// An integer within `range` (inclusive bounds, shown in the message).
    pub(super) fn integer(
        &self,
        d: &mut Diags<'_>,
        key: &str,
        range: std::ops::RangeInclusive<i64>,
    ) -> Option<Sp<i64>> {
        let (_, v) = self.raw(key)?;
        let want = format!("an integer from {} to {}", range.start(), range.end());
        let DeValue::Integer(i) = v.get_ref() else {
            self.wrong_type(d, key, v, &want);
            return None;
        };
        match integer_value(i) {
            Some(n) if range.contains(&n) => Some(Sp::new(n, v.span())),
            _ => {
                d.error(
                    &v.span(),
                    format!("{} must be {want}; got {i}", self.name(key)),
                );
                None
            }
        }
    }

    /// A humantime duration string within `range`; `allowed` describes the range in words
    /// ("from 10s to 24h") and `example` is a valid value to show.
    pub(super) fn duration(
        &self,
        d: &mut Diags<'_>,
        key: &str,
        range: impl RangeBounds<Duration>,
        allowed: &str,
        example: &str,
    ) -> Option<Sp<Duration>> {
        let (_, v) = self.raw(key)?;
        let DeValue::String(s) = v.get_ref() else {
            self.wrong_type(
                d,
                key,
                v,
                &format!("a duration string such as \"{example}\""),
            );
            return None;
        };
        let parsed = match humantime::parse_duration(s.trim()) {
            Ok(p) => p,
            Err(e) => {
                d.error(
                    &v.span(),
                    format!(
                        "{}: \"{s}\" is not a duration ({e}); write it like \"{example}\" (units: ms, s, m, h, d)",
                        self.name(key)
                    ),
                );
                return None;
            }
        };
        if !range.contains(&parsed) {
            d.error(
                &v.span(),
                format!("{} must be {allowed}; got \"{s}\"", self.name(key)),
            );
            return None;
        }
        Some(Sp::new(parsed, v.span()))
    }

    /// An array of strings; the whole array's span and each element's.
    pub(super) fn string_list(&self, d: &mut Diags<'_>, key: &str) -> Option<Sp<Vec<Sp<String>>>> {
        let (_, v) = self.raw(key)?;
        let DeValue::Array(items) = v.get_ref() else {
            self.wrong_type(d, key, v, "an array of strings");
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items.iter() {
            match item.get_ref() {
                DeValue::String(s) => out.push(Sp::new(s.to_string(), item.span())),
                other => d.error(
                    &item.span(),
                    format!(
                        "{} must hold only strings, not {}",
                        self.name(key),
                        a_type(other)
                    ),
                ),
            }
        }
        Some(Sp::new(out, v.span()))
    }

    /// A sub-table (`[x.key]`, `key = { … }` or dotted keys).
    pub(super) fn table(
        &self,
        d: &mut Diags<'_>,
        key: &str,
        ctx: String,
    ) -> Option<Section<'t, 'i>> {
        let (_, v) = self.raw(key)?;
        match v.get_ref() {
            DeValue::Table(t) => Some(Section::new(t, v.span(), ctx)),
            _ => {
                self.wrong_type(d, key, v, "a table");
                None
            }
        }
    }
}

/// TOML integers are i64; the parser keeps the digits and the radix.
pub(crate) fn integer_value(i: &toml::de::DeInteger<'_>) -> Option<i64> {
    let digits: String = i.as_str().chars().filter(|&c| c != '_').collect();
    i64::from_str_radix(&digits, i.radix()).ok()
}

/// "a string", "an integer", … for messages.
pub(crate) fn a_type(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// The allowed key nearest to a misspelt one, when it is close enough to be a typo.
fn closest<'a>(name: &str, allowed: &[&'a str]) -> Option<&'a str> {
    let lower = name.to_ascii_lowercase();
    allowed
        .iter()
        .map(|a| (edit_distance(&lower, a), *a))
        .filter(|(dist, a)| *dist <= 2 && *dist < a.len())
        .min_by_key(|(dist, _)| *dist)
        .map(|(_, a)| a)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// A duration as a config value would write it ("30s", "7500ms", "1h").
pub(crate) fn fmt_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".to_owned();
    }
    for (unit, name) in [
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "m"),
        (1000, "s"),
    ] {
        if ms.is_multiple_of(unit) {
            return format!("{}{name}", ms / unit);
        }
    }
    format!("{ms}ms")
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn suggests_close_keys_only() {
        assert_eq!(
            closest("intervall", &["interval", "timeout"]),
            Some("interval")
        );
        assert_eq!(closest("Model", &["model", "group"]), Some("model"));
        assert_eq!(closest("zzz", &["interval", "timeout"]), None);
    }

    #[test]
    fn formats_durations_as_config_values() {
        assert_eq!(fmt_duration(Duration::from_secs(30)), "30s");
        assert_eq!(fmt_duration(Duration::from_secs(3600)), "1h");
        assert_eq!(fmt_duration(Duration::from_millis(7500)), "7500ms");
        assert_eq!(fmt_duration(Duration::ZERO), "0s");
        assert_eq!(fmt_duration(Duration::from_secs(30 * 86_400)), "30d");
    }

    fn read<T>(
        text: &str,
        f: impl FnOnce(&Section<'_, '_>, &mut Diags<'_>) -> T,
    ) -> (T, Vec<String>) {
        let doc = DeTable::parse(text).unwrap().into_inner();
        let mut d = Diags::new(Path::new("c.toml"), text);
        let s = Section::new(&doc, 0..0, "[t]");
        let out = f(&s, &mut d);
        let (errors, _) = d.finish();
        (
            out,
            errors
                .into_iter()
                .map(|e| format!("{}:{} {}", e.line, e.column, e.message))
                .collect(),
        )
    }

    #[test]
    fn durations_parse_and_check_range() {
        let (v, errs) = read("a = \"90s\"", |s, d| {
            s.duration(d, "a", Duration::from_secs(10).., "at least 10s", "5m")
        });
        assert_eq!(v.unwrap().v, Duration::from_secs(90));
        assert!(errs.is_empty());

        let (v, errs) = read("a = \"1h30m\"", |s, d| {
            s.duration(d, "a", .., "anything", "5m")
        });
        assert_eq!(v.unwrap().v, Duration::from_secs(5400));
        assert!(errs.is_empty());

        let (v, errs) = read("a = \"5 minutes please\"", |s, d| {
            s.duration(d, "a", .., "anything", "5m")
        });
        assert!(v.is_none());
        assert!(errs[0].starts_with("1:5 `a` in [t]"), "{errs:?}");
        assert!(errs[0].contains("\"5m\""), "{errs:?}");

        let (v, errs) = read("a = 300", |s, d| s.duration(d, "a", .., "anything", "5m"));
        assert!(v.is_none());
        assert!(errs[0].contains("must be a duration string"), "{errs:?}");

        let (v, errs) = read("a = \"5s\"", |s, d| {
            s.duration(d, "a", Duration::from_secs(10).., "at least 10s", "5m")
        });
        assert!(v.is_none());
        assert!(
            errs[0].contains("must be at least 10s; got \"5s\""),
            "{errs:?}"
        );
    }

    #[test]
    fn integers_check_type_and_range() {
        let (v, errs) = read("a = 0x10", |s, d| s.integer(d, "a", 1..=100));
        assert_eq!(v.unwrap().v, 16);
        assert!(errs.is_empty());
        let (v, errs) = read("a = 1_000", |s, d| s.integer(d, "a", 1..=100));
        assert!(v.is_none());
        assert!(errs[0].contains("from 1 to 100; got 1000"), "{errs:?}");
        let (v, errs) = read("a = \"5\"", |s, d| s.integer(d, "a", 1..=100));
        assert!(v.is_none());
        assert!(errs[0].contains("not a string"), "{errs:?}");
    }

    #[test]
    fn unknown_keys_are_listed_with_a_suggestion() {
        let (_, errs) = read("workerz = 1\nqueue = 2", |s, d| {
            s.check_keys(d, &["workers", "queue"], &|_| None)
        });
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0]
                .starts_with("1:1 unknown key `workerz` in [t] (did you mean `workers`?); allowed"),
            "{errs:?}"
        );
        assert!(errs[0].contains("allowed keys: workers, queue"), "{errs:?}");
    }
}
