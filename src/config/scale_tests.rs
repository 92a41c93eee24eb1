//! Loading stays linear in the size of the config: a 100,000-monitor file is read with one
//! line index and without rescanning the text per monitor or per problem. Asserted on work
//! counters (`diag::counters`), never on time; the timings are in `benches/load.sh` and
//! BENCHMARKS.md.

use std::fmt::Write as _;
use std::path::Path;

use super::diag::counters;
use super::parse;

const N: usize = 100_000;

/// `n` monitors; `dup_every`: every that-many-th monitor reuses the previous monitor's id.
fn fleet(n: usize, dup_every: Option<usize>) -> String {
    let mut s = String::with_capacity(n * 130);
    s.push_str("[defaults]\ninterval = \"60s\"\ntimeout = \"5s\"\n");
    for i in 0..n {
        let id = match dup_every {
            Some(k) if i % k == k - 1 => i - 1,
            _ => i,
        };
        let _ = write!(
            s,
            "\n[[monitor]]\nid = \"m{id:06}\"\nprovider = \"openai\"\nendpoint = \"https://api{}.example.com\"\napi_key = \"sk-bench-key\"\nmodel = \"gpt-4o-mini\"\n",
            i % 7
        );
    }
    s
}

#[test]
fn a_100k_monitor_config_builds_one_line_index_and_scans_no_line_twice() {
    let text = fleet(N, None);
    counters::take();
    let loaded = match parse(&text, Path::new("big.toml"), &|_| None) {
        Ok(l) => l,
        Err(e) => panic!("the generated config should be valid:\n{e}"),
    };
    let (builds, scanned) = counters::take();
    assert_eq!(loaded.config.monitors.len(), N);
    assert_eq!(builds, 1, "one line index per load, not one per monitor");
    assert_eq!(scanned, 0, "a valid config computes no column");
    // Lines still come out right: monitor i's header is on line 4 + 7 * i + 1.
    let last = &loaded.config.monitors[N - 1];
    assert_eq!(last.line, 3 + 7 * (N - 1) + 2);
}

#[test]
fn many_errors_keep_their_positions_and_the_work_linear() {
    // Every tenth monitor repeats an id: 10,000 errors, each with its line and column.
    let text = fleet(N, Some(10));
    counters::take();
    let err = match parse(&text, Path::new("big.toml"), &|_| None) {
        Ok(_) => panic!("duplicate ids must be refused"),
        Err(e) => e,
    };
    let (builds, scanned) = counters::take();
    assert_eq!(err.errors.len(), N / 10);
    assert_eq!(builds, 1);
    // A column costs a scan of its own line only: far less than the file per error.
    assert!(
        scanned <= text.len(),
        "{scanned} bytes scanned for {} errors in a {}-byte file",
        err.errors.len(),
        text.len()
    );
    let first = &err.errors[0];
    // Monitor 9 (0-based) repeats monitor 8's id; its `id` line is one after its header.
    assert_eq!((first.line, first.column), (3 + 7 * 9 + 3, 6));
    assert!(
        first.message.contains("duplicate monitor id `m000008`")
            && first.message.contains(&format!("line {}", 3 + 7 * 8 + 2)),
        "{}",
        first.message
    );
}

/// TLS files named by every monitor's own `[monitor.network]` are read once per load, not once
/// per monitor, and every monitor ends up with the same settings (so one shared client).
#[test]
fn a_100k_monitor_config_naming_one_ca_file_reads_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    std::fs::write(
        dir.path().join("ca.pem"),
        params.self_signed(&key).unwrap().pem(),
    )
    .unwrap();
    let mut text = fleet(N, None);
    text = text.replace(
        "model = \"gpt-4o-mini\"\n",
        "model = \"gpt-4o-mini\"\n[monitor.network]\nca_file = \"ca.pem\"\n",
    );
    crate::net::tls_counters::take();
    let loaded = match parse(&text, &dir.path().join("big.toml"), &|_| None) {
        Ok(l) => l,
        Err(e) => panic!("the generated config should be valid:\n{e}"),
    };
    assert_eq!(
        crate::net::tls_counters::take(),
        1,
        "one read for 100,000 mentions"
    );
    let monitors = &loaded.config.monitors;
    assert_eq!(monitors.len(), N);
    assert!(monitors.iter().all(|m| m.network == monitors[0].network));
    assert!(monitors[0].network.tls.ca_file.is_some());
}
