//! The keys that refine a verdict beyond the challenge: `on_model_mismatch`, `model_aliases`,
//! `price`, `model_prices` and `degraded_below_tps`. Read the same way from `[defaults]` and
//! `[[monitor]]` (the monitor's value wins; aliases and model prices merge model by model).

use toml::de::DeValue;

use super::diag::{Diags, Sp};
use super::fields::{Section, a_type, integer_value};

/// What a reply naming another model than the one asked for does to the verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnModelMismatch {
    /// `degraded` / `model_mismatch` (the default: the channel answers, but not as promised).
    #[default]
    Degrade,
    /// `failed` / `model_mismatch`.
    Fail,
    /// Recorded, never judged.
    Ignore,
}

/// A price per million tokens, in whatever unit the user prices in (USD by convention).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Price {
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
}

impl Price {
    /// The cost of `input` + `output` tokens in billionths of the price's unit: an integer, so
    /// sums over any grouping are exact. `None` when the reply reported no tokens.
    pub fn cost_nano(&self, input: Option<u32>, output: Option<u32>) -> Option<u64> {
        if input.is_none() && output.is_none() {
            return None;
        }
        // per_mtok / 1e6 per token, × 1e9 nano = per_mtok × 1000 nano per token.
        let nano = f64::from(input.unwrap_or(0)) * self.input_per_mtok * 1000.0
            + f64::from(output.unwrap_or(0)) * self.output_per_mtok * 1000.0;
        Some(nano.round().clamp(0.0, u64::MAX as f64) as u64)
    }
}

/// The verdict keys as one table wrote them.
#[derive(Debug, Clone, Default)]
pub(crate) struct VerdictKeys {
    pub on_model_mismatch: Option<OnModelMismatch>,
    /// Requested model → further names a reply may give for it.
    pub model_aliases: Vec<(Sp<String>, Vec<String>)>,
    pub price: Option<Price>,
    /// Requested model → its own price, over `price` (a fleet rarely pays one rate for all).
    pub model_prices: Vec<(Sp<String>, Price)>,
    pub degraded_below_tps: Option<f64>,
}

impl VerdictKeys {
    pub(super) fn read(s: &Section<'_, '_>, d: &mut Diags<'_>) -> Self {
        let on_model_mismatch = s
            .string(d, "on_model_mismatch")
            .and_then(|v| match v.v.as_str() {
                "degrade" => Some(OnModelMismatch::Degrade),
                "fail" => Some(OnModelMismatch::Fail),
                "ignore" => Some(OnModelMismatch::Ignore),
                other => {
                    d.error(
                        &v.span,
                        format!(
                            "{} must be \"degrade\", \"fail\" or \"ignore\"; got \"{other}\"",
                            s.name("on_model_mismatch")
                        ),
                    );
                    None
                }
            });
        VerdictKeys {
            on_model_mismatch,
            model_aliases: read_aliases(s, d),
            price: s
                .table(d, "price", format!("the price of {}", s.ctx))
                .and_then(|t| read_price(&t, d, &s.name("price"))),
            model_prices: read_model_prices(s, d),
            degraded_below_tps: number(s, d, "degraded_below_tps", false),
        }
    }

    /// `self` (a monitor) over `defaults`.
    pub(super) fn over(self, defaults: &VerdictKeys) -> VerdictKeys {
        VerdictKeys {
            on_model_mismatch: self.on_model_mismatch.or(defaults.on_model_mismatch),
            model_aliases: merge_by_model(&defaults.model_aliases, self.model_aliases),
            price: self.price.or(defaults.price),
            model_prices: merge_by_model(&defaults.model_prices, self.model_prices),
            degraded_below_tps: self.degraded_below_tps.or(defaults.degraded_below_tps),
        }
    }
}

/// `defaults`' entries, each replaced by the monitor's entry for the same model, then the
/// monitor's other entries.
fn merge_by_model<T: Clone>(
    defaults: &[(Sp<String>, T)],
    own: Vec<(Sp<String>, T)>,
) -> Vec<(Sp<String>, T)> {
    let mut out = defaults.to_vec();
    for (model, v) in own {
        match out.iter_mut().find(|(m, _)| m.v == model.v) {
            Some(slot) => *slot = (model, v),
            None => out.push((model, v)),
        }
    }
    out
}

/// A finite number (integer or float) at `key`, above 0 (or from 0 with `zero_ok`), at most 1e9.
fn number(s: &Section<'_, '_>, d: &mut Diags<'_>, key: &str, zero_ok: bool) -> Option<f64> {
    let (_, v) = s.raw(key)?;
    let n = match v.get_ref() {
        DeValue::Integer(i) => integer_value(i).map(|n| n as f64),
        DeValue::Float(f) => {
            let text: String = f.as_str().chars().filter(|&c| c != '_').collect();
            text.parse::<f64>().ok()
        }
        other => {
            d.error(
                &v.span(),
                format!("{} must be a number, not {}", s.name(key), a_type(other)),
            );
            return None;
        }
    };
    match n {
        Some(n) if n.is_finite() && (n > 0.0 || (zero_ok && n == 0.0)) && n <= 1e9 => Some(n),
        _ => {
            let low = if zero_ok { "from 0" } else { "above 0" };
            d.error(
                &v.span(),
                format!("{} must be a number {low} (and at most 1e9)", s.name(key)),
            );
            None
        }
    }
}

/// `{ input_per_mtok = 0.15, output_per_mtok = 0.60 }` (the table `t`, called `name` in
/// messages): both keys required.
fn read_price(t: &Section<'_, '_>, d: &mut Diags<'_>, name: &str) -> Option<Price> {
    let keys = ["input_per_mtok", "output_per_mtok"];
    t.check_keys(d, &keys, &|_| None);
    let mut got = [None, None];
    for (slot, key) in got.iter_mut().zip(keys) {
        if t.raw(key).is_none() {
            d.error(
                &t.span,
                format!("{name} needs `{key}` (a price per million tokens, e.g. 0.60)"),
            );
        } else {
            *slot = number(t, d, key, true);
        }
    }
    Some(Price {
        input_per_mtok: got[0]?,
        output_per_mtok: got[1]?,
    })
}

/// `model_prices = { "gpt-4o-mini" = { input_per_mtok = 0.15, output_per_mtok = 0.6 } }`.
fn read_model_prices(s: &Section<'_, '_>, d: &mut Diags<'_>) -> Vec<(Sp<String>, Price)> {
    let Some(t) = s.table(d, "model_prices", format!("the model_prices of {}", s.ctx)) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (key, value) in t.table.iter() {
        let model = Sp::new(key.get_ref().to_string(), key.span());
        let name = format!("the price of `{}` in {}", model.v, s.ctx);
        let DeValue::Table(inner) = value.get_ref() else {
            d.error(
                &value.span(),
                format!("{name} must be a table, not {}", a_type(value.get_ref())),
            );
            continue;
        };
        let inner = Section::new(inner, value.span(), name.clone());
        if let Some(p) = read_price(&inner, d, &name) {
            out.push((model, p));
        }
    }
    out
}

/// `model_aliases = { "gpt-4o" = ["gpt-4o-2024-11-20", "azure-gpt4o"] }` (a single string is
/// accepted for one alias).
fn read_aliases(s: &Section<'_, '_>, d: &mut Diags<'_>) -> Vec<(Sp<String>, Vec<String>)> {
    let Some(t) = s.table(
        d,
        "model_aliases",
        format!("the model_aliases of {}", s.ctx),
    ) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (key, value) in t.table.iter() {
        let model = Sp::new(key.get_ref().to_string(), key.span());
        let names: Vec<String> = match value.get_ref() {
            DeValue::String(n) => vec![n.to_string()],
            DeValue::Array(items) => items
                .iter()
                .filter_map(|i| match i.get_ref() {
                    DeValue::String(n) => Some(n.to_string()),
                    other => {
                        d.error(
                            &i.span(),
                            format!(
                                "the aliases of `{}` in {} must be strings, not {}",
                                model.v,
                                s.ctx,
                                a_type(other)
                            ),
                        );
                        None
                    }
                })
                .collect(),
            other => {
                d.error(
                    &value.span(),
                    format!(
                        "the aliases of `{}` in {} must be a string or an array of strings, not {}",
                        model.v,
                        s.ctx,
                        a_type(other)
                    ),
                );
                continue;
            }
        };
        if let Some(bad) = names.iter().find(|n| n.trim().is_empty()) {
            d.error(
                &value.span(),
                format!("an alias of `{}` in {} is empty ({bad:?})", model.v, s.ctx),
            );
            continue;
        }
        out.push((model, names));
    }
    out
}

/// Whether `answered` names `requested`, after what providers legitimately add: a `models/`
/// prefix (Gemini), a provider prefix from a router (`openai/gpt-4o`), letter case, and a dated
/// snapshot suffix (`-2024-07-18`, `-20250929`, `-0125`, `@20240620`, `-001`); or one of the
/// declared aliases. Both sides are normalised, so asking for a snapshot and getting the same
/// snapshot matches too.
pub fn model_matches(requested: &str, answered: &str, aliases: &[String]) -> bool {
    let a = normalise(answered);
    normalise(requested) == a || aliases.iter().any(|x| normalise(x) == a)
}

fn normalise(model: &str) -> String {
    let m = model.trim().to_ascii_lowercase();
    let m = m.strip_prefix("models/").unwrap_or(&m);
    let m = m.rsplit('/').next().unwrap_or(m);
    let mut m = m.split('@').next().unwrap_or(m).to_owned();
    // Only suffixes that are dates or snapshot numbers go; `-70b` or `-4-5` are part of the
    // name (a relay serving llama-3-8 for llama-3-70 must not slip through).
    loop {
        let stripped = strip_date(&m);
        if stripped.len() == m.len() {
            return m;
        }
        m = stripped.to_owned();
    }
}

/// `m` without one trailing `-YYYY-MM-DD`, `-YYYYMMDD`, `-MMDD`, `-0NN` or `-latest`.
fn strip_date(m: &str) -> &str {
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    let b = m.as_bytes();
    if b.len() > 11 && b[b.len() - 11] == b'-' {
        let tail = &m[m.len() - 10..];
        if digits(&tail[..4], 4)
            && &tail[4..5] == "-"
            && digits(&tail[5..7], 2)
            && &tail[7..8] == "-"
            && digits(&tail[8..], 2)
        {
            return &m[..m.len() - 11];
        }
    }
    match m.rsplit_once('-') {
        Some((head, tail))
            if !head.is_empty()
                && (digits(tail, 8)
                    || digits(tail, 4)
                    || (digits(tail, 3) && tail.starts_with('0'))
                    || tail == "latest") =>
        {
            head
        }
        _ => m,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_prefixes_and_case_match_but_other_models_do_not() {
        for (req, got) in [
            ("gpt-4o-mini", "gpt-4o-mini-2024-07-18"),
            ("gpt-4o", "GPT-4o"),
            ("gemini-2.5-flash", "models/gemini-2.5-flash"),
            ("gemini-1.5-flash", "gemini-1.5-flash-001"),
            ("claude-sonnet-4-5", "claude-sonnet-4-5-20250929"),
            ("claude-3-5-sonnet-20241022", "claude-3-5-sonnet-20241022"),
            ("gpt-4o", "openai/gpt-4o"),
            ("gpt-3.5-turbo", "gpt-3.5-turbo-0125"),
        ] {
            assert!(model_matches(req, got, &[]), "{req} vs {got}");
        }
        for (req, got) in [
            ("gpt-4o", "gpt-4o-mini"),
            ("gpt-4o", "gpt-3.5-turbo"),
            ("claude-opus-4-1", "claude-haiku-4-5-20251001"),
            ("gemini-2.5-pro", "gemini-2.5-flash"),
            ("llama-3-70", "llama-3-80"),
            ("claude-sonnet-4-5", "claude-sonnet-4"),
        ] {
            assert!(!model_matches(req, got, &[]), "{req} vs {got}");
        }
        assert!(model_matches(
            "gpt-4o",
            "my-deploy",
            &["My-Deploy".to_owned()]
        ));
    }

    #[test]
    fn cost_is_exact_in_nano_units() {
        let p = Price {
            input_per_mtok: 0.15,
            output_per_mtok: 0.60,
        };
        assert_eq!(p.cost_nano(Some(20), Some(5)), Some(3000 + 3000));
        assert_eq!(p.cost_nano(None, Some(1)), Some(600));
        assert_eq!(p.cost_nano(None, None), None);
    }
}
