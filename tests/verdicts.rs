//! Verdicts beyond the challenge, through the real binary against the mock upstream, for every
//! provider and mode: the model that answered (another model, a dated snapshot, none), tokens
//! and cost (usage present, absent, only in the final stream event), throughput after the first
//! token, and `chanmon cost` against a hand computation over the recorded rows, before and
//! after `prune`.

mod harness;
mod support;

use harness::{Env, monitor, preamble, s, text};
use support::mock::{MockUpstream, SUBSTITUTE_MODEL};

const PROVIDERS: &[&str] = &["openai", "openai-responses", "anthropic", "gemini"];
/// $1.50 per million input tokens, $6 per million output tokens.
const PRICE: &str = "price = { input_per_mtok = 1.5, output_per_mtok = 6.0 }";

fn check_all(provider: &str, stream: bool, models: &[&str], extra: &str) -> Vec<serde_json::Value> {
    let mock = MockUpstream::start();
    let extra = format!(
        "stream = {stream}\ninterval = \"60s\"\ntimeout = \"5s\"\ndegraded_after = \"4s\"\n{PRICE}\n{extra}"
    );
    let c = preamble("model_concurrency = 8")
        + &monitor("m", provider, &mock.origin(), mock.key(), models, &extra);
    let env = Env::new(&c);
    let out = env.run(&["check", "--all", "--format", "json"]);
    assert!(out.status.code().is_some(), "{}", text(&out.stderr));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", text(&out.stdout)));
    // What was printed is what was recorded.
    let recorded = env.history(&[]);
    for r in &rows {
        let stored = recorded
            .iter()
            .find(|h| s(h, "model") == s(r, "model"))
            .expect("recorded");
        for f in [
            "answered_model",
            "tokens_in",
            "tokens_out",
            "cost_nano",
            "kind",
        ] {
            assert_eq!(stored[f], r[f], "{provider} {}: {f}", s(r, "model"));
        }
    }
    rows
}

fn row<'a>(rows: &'a [serde_json::Value], model: &str) -> &'a serde_json::Value {
    rows.iter()
        .find(|r| s(r, "model") == model)
        .unwrap_or_else(|| panic!("no row for {model}: {rows:#?}"))
}

#[test]
fn the_model_that_answered_every_provider_and_mode() {
    for provider in PROVIDERS {
        for stream in [true, false] {
            let rows = check_all(
                provider,
                stream,
                &["substitute", "snapshot", "nameless"],
                "",
            );
            let ctx = format!("{provider} stream={stream}");
            let sub = row(&rows, "substitute");
            assert_eq!(sub["answered_model"], SUBSTITUTE_MODEL, "{ctx}");
            assert_eq!(
                (s(sub, "status"), s(sub, "kind")),
                ("degraded", "model_mismatch"),
                "{ctx}"
            );
            let msg = s(sub, "message");
            assert!(
                msg.contains("substitute") && msg.contains(SUBSTITUTE_MODEL),
                "{ctx}: {msg}"
            );
            let snap = row(&rows, "snapshot");
            assert_eq!(snap["answered_model"], "snapshot-2024-07-18", "{ctx}");
            assert_eq!(s(snap, "kind"), "ok", "{ctx}");
            let nameless = row(&rows, "nameless");
            assert!(nameless["answered_model"].is_null(), "{ctx}");
            assert_eq!(s(nameless, "kind"), "ok", "{ctx}");
        }
    }
}

#[test]
fn on_model_mismatch_fail_and_ignore() {
    let rows = check_all(
        "openai",
        true,
        &["substitute"],
        "on_model_mismatch = \"fail\"",
    );
    assert_eq!(s(&rows[0], "status"), "failed");
    assert_eq!(s(&rows[0], "kind"), "model_mismatch");
    let rows = check_all(
        "anthropic",
        false,
        &["substitute"],
        "on_model_mismatch = \"ignore\"",
    );
    assert_eq!(s(&rows[0], "kind"), "ok");
    assert_eq!(rows[0]["answered_model"], SUBSTITUTE_MODEL);
    let rows = check_all(
        "gemini",
        true,
        &["substitute"],
        &format!("model_aliases = {{ substitute = [\"{SUBSTITUTE_MODEL}\"] }}"),
    );
    assert_eq!(s(&rows[0], "kind"), "ok");
}

#[test]
fn tokens_and_cost_with_and_without_usage() {
    for provider in PROVIDERS {
        for stream in [true, false] {
            let ctx = format!("{provider} stream={stream}");
            let rows = check_all(provider, stream, &["good", "no-usage"], "");
            let good = row(&rows, "good");
            let (tin, tout) = (good["tokens_in"].as_u64(), good["tokens_out"].as_u64());
            let (Some(tin), Some(tout)) = (tin, tout) else {
                panic!("{ctx}: no usage recorded: {good:#}")
            };
            assert!(tin > 0 && tout > 0, "{ctx}: {good:#}");
            // Hand computation: tokens × price per million, in billionths.
            let want = tin * 1500 + tout * 6000;
            assert_eq!(good["cost_nano"].as_u64(), Some(want), "{ctx}");
            let none = row(&rows, "no-usage");
            for f in ["tokens_in", "tokens_out", "cost_nano", "tps"] {
                assert!(
                    none[f].is_null(),
                    "{ctx}: {f} should be not recorded: {none:#}"
                );
            }
            assert_eq!(s(none, "kind"), "ok", "{ctx}");
        }
    }
}

#[test]
fn throughput_after_the_first_token_and_degraded_below_tps() {
    for provider in PROVIDERS {
        // First token at 100 ms, the rest at 1600 ms: output tokens over ~1.5 s.
        let rows = check_all(
            provider,
            true,
            &["delay-100-1600", "good"],
            "degraded_below_tps = 1000",
        );
        let slow = row(&rows, "delay-100-1600");
        let tps = slow["tps"]
            .as_f64()
            .unwrap_or_else(|| panic!("{provider}: no tps: {slow:#}"));
        let out = slow["tokens_out"].as_f64().expect("tokens");
        // Generous bounds: the writing took between 1 s and 5 s.
        assert!(
            tps <= out / 1.0 && tps >= out / 5.0,
            "{provider}: {tps} for {out} tokens"
        );
        assert_eq!(s(slow, "kind"), "low_throughput", "{provider}");
        assert_eq!(s(slow, "status"), "degraded", "{provider}");
        let plain = check_all(provider, false, &["good"], "degraded_below_tps = 1000");
        assert!(
            plain[0]["tps"].is_null(),
            "{provider}: no throughput without a stream"
        );
        assert_eq!(s(&plain[0], "kind"), "ok");
    }
}

#[test]
fn cost_totals_equal_a_hand_computation_before_and_after_prune() {
    let mock = MockUpstream::start();
    let extra = format!("interval = \"60s\"\ntimeout = \"5s\"\n{PRICE}");
    let c = preamble("")
        + &monitor(
            "a",
            "openai",
            &mock.origin(),
            mock.key(),
            &["good", "no-usage"],
            &extra,
        )
        + &monitor(
            "b",
            "anthropic",
            &mock.origin(),
            mock.key(),
            &["good"],
            &extra,
        );
    let env = Env::new(&c);
    for _ in 0..3 {
        let out = env.run(&["check", "--all"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    }
    let rows = env.history(&[]);
    assert_eq!(rows.len(), 9);
    let sum = |pred: &dyn Fn(&serde_json::Value) -> bool, f: &str| -> u64 {
        rows.iter()
            .filter(|r| pred(r))
            .filter_map(|r| r[f].as_u64())
            .sum()
    };
    let cost_json = |args: &[&str]| -> serde_json::Value {
        let mut all = vec!["cost", "--format", "json"];
        all.extend_from_slice(args);
        let out = env.run(&all);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("json")
    };
    let check = |v: &serde_json::Value| {
        let line = |k: &str| {
            v["lines"]
                .as_array()
                .unwrap()
                .iter()
                .find(|l| l["key"] == k)
                .unwrap_or_else(|| panic!("no line {k}: {v:#}"))
                .clone()
        };
        let a = line("a");
        assert_eq!(
            a["cost_nano"].as_u64(),
            Some(sum(&|r| s(r, "monitor") == "a", "cost_nano"))
        );
        assert_eq!(
            a["tokens_in"].as_u64(),
            Some(sum(&|r| s(r, "monitor") == "a", "tokens_in"))
        );
        assert_eq!(a["checks"], 6);
        assert_eq!(
            a["with_usage"], 3,
            "the no-usage model's checks are not counted as zero"
        );
        let b = line("b");
        assert_eq!(
            b["cost_nano"].as_u64(),
            Some(sum(&|r| s(r, "monitor") == "b", "cost_nano"))
        );
        assert_eq!(
            v["total"]["cost_nano"].as_u64(),
            Some(sum(&|_| true, "cost_nano"))
        );
        assert!(v["total"]["cost_nano"].as_u64().unwrap() > 0);
    };
    let before = cost_json(&[]);
    check(&before);
    let by_model = cost_json(&["--by", "model"]);
    let good = by_model["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["key"] == "good")
        .expect("good line")
        .clone();
    assert_eq!(
        good["cost_nano"].as_u64(),
        Some(sum(&|r| s(r, "model") == "good", "cost_nano"))
    );
    // Prune every raw row: the rollups carry the sums.
    let out = env.run(&["prune", "--older-than", "1ms"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(env.history(&[]).is_empty());
    let after = cost_json(&[]);
    assert_eq!(after["total"], before["total"]);
    check(&after);
    // status shows the day's tokens and cost.
    let out = env.run(&["status", "--format", "json"]);
    let status: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("json");
    let day = &status.iter().find(|r| s(r, "monitor") == "b").expect("b")["windows"][0];
    assert_eq!(
        day["cost"].as_f64(),
        Some(sum(&|r| s(r, "monitor") == "b", "cost_nano") as f64 / 1e9)
    );
}
