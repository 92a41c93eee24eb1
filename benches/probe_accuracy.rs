//! Timing accuracy and CPU cost of a probe, against the mock upstream on loopback.
//!
//! The mock sends the first content token 200 ms after the request arrives and ends the reply
//! at 300 ms; chanmon's `ttft_ms` and `latency_ms` should read 200 and 300. Reports the median
//! (and p90, max) absolute error over 20 probes per provider and streaming mode, and the CPU
//! time per probe over a larger run. Run: `cargo bench --bench probe_accuracy`.

#[path = "../tests/support/mock.rs"]
mod mock;

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use chanmon::config::{KeyState, Monitor};
use chanmon::net::HttpClient;
use chanmon::secret::Secret;

fn monitor(origin: &str, key: &str, provider: &str, model: &str, stream: bool) -> Monitor {
    let (provider, api) = match provider {
        "openai-responses" => ("openai", "api = \"responses\"\n"),
        p => (p, ""),
    };
    let text = format!(
        "[network]\nallow_http = true\nallow_cidrs = [\"127.0.0.0/8\"]\n\n[[monitor]]\nid = \"bench\"\nprovider = \"{provider}\"\n{api}endpoint = \"{origin}\"\napi_key = \"{key}\"\nmodel = \"{model}\"\nstream = {stream}\ninterval = \"60s\"\ntimeout = \"10s\"\n"
    );
    let loaded = chanmon::config::parse(&text, Path::new("bench.toml"), &|_| None)
        .unwrap_or_else(|e| panic!("{e}"));
    let config = loaded
        .config
        .monitors
        .into_iter()
        .next()
        .expect("one monitor");
    Monitor {
        config,
        key: KeyState::Ready(Secret::new(key)),
    }
}

fn cpu_seconds() -> f64 {
    // utime + stime of this process, in clock ticks (USER_HZ = 100 on Linux).
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn stats(mut errs: Vec<f64>) -> (f64, f64, f64) {
    errs.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| errs[((errs.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.9), *errs.last().unwrap_or(&0.0))
}

fn main() {
    let upstream = mock::MockUpstream::start();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let redactor = Arc::new(chanmon::redact::Redactor::new([upstream.key()]));
    println!(
        "| provider | stream | ttft median err | ttft p90 err | latency median err | latency p90 err |"
    );
    println!("|---|---|---|---|---|---|");
    for provider in ["openai", "openai-responses", "anthropic", "gemini"] {
        for stream in [true, false] {
            let m = monitor(
                &upstream.origin(),
                upstream.key(),
                provider,
                "delay-200-300",
                stream,
            );
            let client = HttpClient::new(&m.config.network).expect("client");
            let mut ttft_err = Vec::new();
            let mut lat_err = Vec::new();
            for _ in 0..20 {
                let r = rt.block_on(chanmon::probe::probe_monitor(
                    &m,
                    &client,
                    redactor.clone(),
                    1,
                ));
                let r = &r[0];
                assert_eq!(r.status.as_str(), "operational", "{r:?}");
                if let Some(t) = r.ttft_ms {
                    ttft_err.push((t as f64 - if stream { 200.0 } else { 300.0 }).abs());
                }
                lat_err.push((r.latency_ms.unwrap_or(0) as f64 - 300.0).abs());
            }
            let (lm, l90, _) = stats(lat_err);
            let t = if ttft_err.is_empty() {
                ("n/a".to_owned(), "n/a".to_owned())
            } else {
                let (tm, t90, _) = stats(ttft_err);
                (format!("{tm:.0} ms"), format!("{t90:.0} ms"))
            };
            println!(
                "| {provider} | {stream} | {} | {} | {lm:.0} ms | {l90:.0} ms |",
                t.0, t.1
            );
        }
    }
    // CPU per probe: many fast probes (streaming openai chat, answer immediately).
    let m = monitor(&upstream.origin(), upstream.key(), "openai", "good", true);
    let client = HttpClient::new(&m.config.network).expect("client");
    let n = 500;
    let cpu0 = cpu_seconds();
    let wall0 = Instant::now();
    rt.block_on(async {
        for _ in 0..n {
            let r = chanmon::probe::probe_monitor(&m, &client, redactor.clone(), 1).await;
            assert_eq!(r[0].status.as_str(), "operational");
        }
    });
    let cpu = cpu_seconds() - cpu0;
    println!(
        "\nCPU per probe (client + in-process mock, streaming openai chat incl. ping): {:.2} ms over {n} probes ({:.1} s wall)",
        cpu * 1000.0 / n as f64,
        wall0.elapsed().as_secs_f64()
    );
}
