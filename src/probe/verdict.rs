//! The verdict: one status and kind per check from everything the reply showed, plus what the
//! reply reported about itself (model, tokens, cost, throughput).
//!
//! Precedence. No answer (`error` kinds) decides alone; then a refusal (`failed`/`refused`);
//! then the challenge (`failed`/`empty`, `failed`/`challenge_mismatch`). A correct answer can
//! still carry findings:
//!
//! 1. `model_mismatch` — the reply names another model than the one asked for (after
//!    normalising snapshots and prefixes, and the monitor's `model_aliases`); `degraded` by
//!    default, `failed` with `on_model_mismatch = "fail"`, never judged with `"ignore"`;
//! 2. `slow` — slower than `degraded_after` (`degraded`);
//! 3. `low_throughput` — a streamed answer wrote fewer tokens per second after its first token
//!    than `degraded_below_tps` (`degraded`).
//!
//! The worst status wins; within one status the order above decides the kind. Every other
//! finding stays in the message, and a model mismatch is mentioned even when the challenge
//! failed (a wrong answer from a substituted model is worth both facts). A reply that names no
//! model is never a mismatch.

use std::time::Duration;

use super::challenge::{Challenge, Check};
use crate::config::{MonitorConfig, OnModelMismatch, model_matches};
use crate::model::{Kind, ReplyFacts, Status};
use crate::provider::Usage;

/// What one request produced, before the verdict.
#[derive(Default)]
pub(super) struct Reply {
    pub http_status: Option<u16>,
    pub text: String,
    pub ttft: Option<Duration>,
    pub refused: Option<String>,
    /// An error kind and message; ends the check as `error` (or `failed` for malformed).
    pub error: Option<(Kind, String)>,
    /// The first model name the reply gave.
    pub answered_model: Option<String>,
    /// Token counts, merged over the stream.
    pub usage: Usage,
}

/// One thing worth saying about a correct answer.
struct Finding {
    status: Status,
    kind: Kind,
    message: String,
}

/// The facts to record: the model and tokens as reported, the cost at the configured price,
/// and the throughput of a streamed answer. Reasoning tokens are written before the first
/// answer token, so they are left out of the throughput when the provider counts them apart.
pub(super) fn facts(
    reply: &Reply,
    cfg: &MonitorConfig,
    model: &str,
    elapsed: Duration,
) -> ReplyFacts {
    let u = reply.usage;
    let tps = match (reply.ttft, u.output) {
        (Some(ttft), Some(out)) if reply.error.is_none() => {
            let writing = elapsed.saturating_sub(ttft).as_secs_f64();
            let answer_tokens = out.saturating_sub(u.reasoning.unwrap_or(0));
            (writing >= 0.001).then(|| f64::from(answer_tokens) / writing)
        }
        _ => None,
    };
    ReplyFacts {
        answered_model: reply.answered_model.clone(),
        tokens_in: u.input,
        tokens_out: u.output,
        tokens_reasoning: u.reasoning,
        cost_nano: cfg
            .price_of(model)
            .and_then(|p| p.cost_nano(u.input, u.output)),
        tps,
    }
}

/// The verdict on `reply` for `model` (see the module header for the precedence).
pub(super) fn judge(
    reply: &Reply,
    challenge: &Challenge,
    cfg: &MonitorConfig,
    model: &str,
    elapsed: Duration,
    tps: Option<f64>,
) -> (Status, Kind, String) {
    if let Some((kind, msg)) = &reply.error {
        return (kind.status(), *kind, msg.clone());
    }
    let mismatch = model_finding(reply, cfg, model);
    let base = if let Some(why) = &reply.refused {
        Some((Status::Failed, Kind::Refused, format!("refused: {why}")))
    } else {
        match challenge.check(&reply.text) {
            Check::Empty => Some((
                Status::Failed,
                Kind::Empty,
                "the reply has no answer text".to_owned(),
            )),
            Check::Mismatch(why) => Some((Status::Failed, Kind::ChallengeMismatch, why)),
            Check::Pass => None,
        }
    };
    if let Some((status, kind, msg)) = base {
        return match mismatch {
            Some(f) => (status, kind, format!("{msg}; {}", f.message)),
            None => (status, kind, msg),
        };
    }
    let mut findings: Vec<Finding> = mismatch.into_iter().collect();
    if elapsed > cfg.degraded_after {
        findings.push(Finding {
            status: Status::Degraded,
            kind: Kind::Slow,
            message: format!(
                "answered correctly in {} ms, slower than degraded_after {}",
                elapsed.as_millis(),
                humantime::format_duration(cfg.degraded_after)
            ),
        });
    }
    if let (Some(min), Some(tps)) = (cfg.degraded_below_tps, tps)
        && tps < min
    {
        findings.push(Finding {
            status: Status::Degraded,
            kind: Kind::LowThroughput,
            message: format!(
                "wrote {tps:.1} tokens/s after the first token, below degraded_below_tps {min}"
            ),
        });
    }
    combine(findings)
}

/// The worst finding's status and the first kind with it (findings come in precedence order);
/// every message, the decisive one first.
fn combine(findings: Vec<Finding>) -> (Status, Kind, String) {
    let Some(worst) = findings.iter().map(|f| f.status).max() else {
        // Nothing to say about a correct, timely answer (and nothing to store per row).
        return (Status::Operational, Kind::Ok, String::new());
    };
    let lead = findings
        .iter()
        .position(|f| f.status == worst)
        .expect("the worst status is some finding's");
    let mut messages = vec![findings[lead].message.clone()];
    messages.extend(
        findings
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != lead)
            .map(|(_, f)| f.message.clone()),
    );
    (worst, findings[lead].kind, messages.join("; "))
}

/// A model mismatch, unless the monitor ignores them or the reply names no model.
fn model_finding(reply: &Reply, cfg: &MonitorConfig, model: &str) -> Option<Finding> {
    let answered = reply.answered_model.as_deref()?;
    let status = match cfg.on_model_mismatch {
        OnModelMismatch::Ignore => return None,
        OnModelMismatch::Degrade => Status::Degraded,
        OnModelMismatch::Fail => Status::Failed,
    };
    (!model_matches(model, answered, cfg.aliases_of(model))).then(|| Finding {
        status,
        kind: Kind::ModelMismatch,
        message: format!("asked for model {model}, the reply names {answered}"),
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn cfg(extra: &str) -> MonitorConfig {
        let text = format!(
            "[[monitor]]\nid = \"m\"\nprovider = \"openai\"\napi_key = \"sk-x\"\n\
             model = \"gpt-4o\"\ndegraded_after = \"1s\"\n{extra}"
        );
        crate::config::parse(&text, Path::new("t.toml"), &|_| None)
            .unwrap()
            .config
            .monitors
            .remove(0)
    }

    fn reply(text: &str, model: Option<&str>) -> Reply {
        Reply {
            http_status: Some(200),
            text: text.into(),
            answered_model: model.map(str::to_owned),
            ..Reply::default()
        }
    }

    const CH: Challenge = Challenge {
        prompt: String::new(),
        answer: Some(42),
    };
    const FAST: Duration = Duration::from_millis(100);
    const SLOW: Duration = Duration::from_secs(2);

    #[test]
    fn the_challenge_refusals_and_errors_decide_first() {
        let c = cfg("");
        let j = |r: &Reply, t| judge(r, &CH, &c, "gpt-4o", t, None);
        assert_eq!(j(&reply("42", None), FAST).1, Kind::Ok);
        assert_eq!(j(&reply("42", None), SLOW).1, Kind::Slow);
        assert_eq!(j(&reply("41", None), FAST).1, Kind::ChallengeMismatch);
        assert_eq!(j(&reply("", None), FAST).1, Kind::Empty);
        let mut refused = reply("", None);
        refused.refused = Some("SAFETY".into());
        assert_eq!(
            j(&refused, FAST),
            (Status::Failed, Kind::Refused, "refused: SAFETY".into())
        );
        let mut err = reply("", Some("other"));
        err.error = Some((Kind::Malformed, "bad".into()));
        assert_eq!(
            j(&err, FAST),
            (Status::Failed, Kind::Malformed, "bad".into())
        );
        // A wrong answer from another model: the challenge decides, the model is mentioned.
        let (s, k, m) = j(&reply("41", Some("gpt-3.5-turbo")), FAST);
        assert_eq!((s, k), (Status::Failed, Kind::ChallengeMismatch));
        assert!(m.contains("gpt-3.5-turbo"), "{m}");
    }

    #[test]
    fn a_model_mismatch_is_its_own_verdict_ahead_of_slow() {
        let c = cfg("");
        let (s, k, m) = judge(
            &reply("42", Some("gpt-4o-mini")),
            &CH,
            &c,
            "gpt-4o",
            SLOW,
            None,
        );
        assert_eq!((s, k), (Status::Degraded, Kind::ModelMismatch));
        assert!(
            m.starts_with("asked for model gpt-4o, the reply names gpt-4o-mini"),
            "{m}"
        );
        assert!(m.contains("slower than degraded_after"), "{m}");
        // Snapshots and absent names are no mismatch.
        for named in [Some("gpt-4o-2024-11-20"), None] {
            assert_eq!(
                judge(&reply("42", named), &CH, &c, "gpt-4o", FAST, None).1,
                Kind::Ok
            );
        }
        let fail = cfg("on_model_mismatch = \"fail\"\n");
        assert_eq!(
            judge(
                &reply("42", Some("gpt-4o-mini")),
                &CH,
                &fail,
                "gpt-4o",
                FAST,
                None
            )
            .0,
            Status::Failed
        );
        let ignore = cfg("on_model_mismatch = \"ignore\"\n");
        assert_eq!(
            judge(
                &reply("42", Some("gpt-4o-mini")),
                &CH,
                &ignore,
                "gpt-4o",
                FAST,
                None
            )
            .1,
            Kind::Ok
        );
        let aliased = cfg("model_aliases = { \"gpt-4o\" = [\"azure-4o\"] }\n");
        assert_eq!(
            judge(
                &reply("42", Some("azure-4o")),
                &CH,
                &aliased,
                "gpt-4o",
                FAST,
                None
            )
            .1,
            Kind::Ok
        );
    }

    #[test]
    fn low_throughput_degrades_after_slow() {
        let c = cfg("degraded_below_tps = 20\n");
        let j = |t, tps| judge(&reply("42", None), &CH, &c, "gpt-4o", t, Some(tps));
        assert_eq!(j(FAST, 25.0).1, Kind::Ok);
        let (s, k, m) = j(FAST, 5.0);
        assert_eq!((s, k), (Status::Degraded, Kind::LowThroughput));
        assert!(m.contains("5.0 tokens/s"), "{m}");
        let (_, k, m) = j(SLOW, 5.0);
        assert_eq!(k, Kind::Slow);
        assert!(m.contains("tokens/s"), "{m}");
    }

    #[test]
    fn facts_carry_usage_cost_and_throughput() {
        let c = cfg("price = { input_per_mtok = 0.15, output_per_mtok = 0.6 }\n");
        let mut r = reply("42", Some("gpt-4o"));
        r.usage = Usage {
            input: Some(20),
            output: Some(50),
            reasoning: Some(10),
        };
        r.ttft = Some(Duration::from_millis(500));
        let f = facts(&r, &c, "gpt-4o", Duration::from_millis(2500));
        assert_eq!(f.cost_nano, Some(20 * 150 + 50 * 600));
        // (50 − 10 reasoning) tokens over the 2 s after the first token.
        assert_eq!(f.tps, Some(20.0));
        let f = facts(&reply("42", None), &cfg(""), "gpt-4o", FAST);
        assert_eq!((f.tokens_in, f.cost_nano, f.tps), (None, None, None));
    }

    #[test]
    fn a_model_price_overrides_the_monitor_price_for_that_model_only() {
        let c = cfg("extra_models = [\"gpt-4o-mini\"]\n\
             price = { input_per_mtok = 2.5, output_per_mtok = 10 }\n\
             model_prices = { \"gpt-4o-mini\" = { input_per_mtok = 0.15, output_per_mtok = 0.6 } }\n");
        let mut r = reply("42", None);
        r.usage = Usage {
            input: Some(20),
            output: Some(50),
            reasoning: None,
        };
        let cost = |m| facts(&r, &c, m, FAST).cost_nano;
        assert_eq!(cost("gpt-4o-mini"), Some(20 * 150 + 50 * 600));
        assert_eq!(cost("gpt-4o"), Some(20 * 2500 + 50 * 10_000));
    }
}
