//! Reaching the channels people run (issue 15): base URLs with a path, auth styles, the
//! provider presets, private CAs, mTLS and `tls_insecure` — the real binary against the mock
//! upstream served under a path prefix, with another auth header, or over TLS signed by a CA
//! generated in the test.

mod harness;
mod support;

use std::time::Duration;

use harness::{Env, monitor, preamble, s, text, wait_until};
use support::mock::MockUpstream;
use support::{Flaw, MockOptions, MockTls, TestCa};

/// `chanmon check --all --format json`: the rows, and stderr.
fn check_all(env: &Env) -> (Vec<serde_json::Value>, String) {
    let out = env.run(&["check", "--all", "--format", "json"]);
    let rows = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("json ({e}): {}\n{}", text(&out.stdout), text(&out.stderr)));
    (rows, text(&out.stderr))
}

fn verdict(row: &serde_json::Value) -> (String, String, String) {
    (
        s(row, "status").to_owned(),
        s(row, "kind").to_owned(),
        s(row, "message").to_owned(),
    )
}

fn mock_with(base_path: &str, auth_header: Option<&str>) -> MockUpstream {
    MockUpstream::start_with(MockOptions {
        base_path: base_path.to_owned(),
        auth_header: auth_header.map(str::to_owned),
        ..MockOptions::default()
    })
}

/// Every preset, each against a mock serving its documented base path and expecting its
/// auth header: the request path and header are pinned here, on the wire. (The presets'
/// hosts are pinned in the registry's unit tests; here the endpoint names the mock's origin
/// with the preset's path, which is also how a user points a preset at a relay.)
#[test]
fn every_preset_sends_its_path_and_auth_header() {
    // (provider, base path, the header the key must arrive in, expected request path)
    let presets: &[(&str, &str, &str, &str)] = &[
        (
            "openrouter",
            "/api/v1",
            "authorization",
            "/api/v1/chat/completions",
        ),
        (
            "groq",
            "/openai/v1",
            "authorization",
            "/openai/v1/chat/completions",
        ),
        ("deepseek", "", "authorization", "/v1/chat/completions"),
        ("xai", "/v1", "authorization", "/v1/chat/completions"),
        ("mistral", "/v1", "authorization", "/v1/chat/completions"),
        ("together", "/v1", "authorization", "/v1/chat/completions"),
        (
            "fireworks",
            "/inference/v1",
            "authorization",
            "/inference/v1/chat/completions",
        ),
        ("moonshot", "/v1", "authorization", "/v1/chat/completions"),
        (
            "zhipu",
            "/api/paas/v4",
            "authorization",
            "/api/paas/v4/chat/completions",
        ),
        (
            "azure",
            "/openai/v1",
            "api-key",
            "/openai/v1/chat/completions",
        ),
        ("ollama", "/v1", "authorization", "/v1/chat/completions"),
        ("vllm", "/v1", "authorization", "/v1/chat/completions"),
    ];
    let mocks: Vec<MockUpstream> = presets
        .iter()
        .map(|(_, base, header, _)| {
            // The mock's base path "" and "/v1" both serve /v1/chat/completions.
            let base = if *base == "/v1" { "" } else { base };
            mock_with(base, Some(header))
        })
        .collect();
    let mut c = preamble("model_concurrency = 4");
    for ((name, base, _, _), mock) in presets.iter().zip(&mocks) {
        c.push_str(&monitor(
            name,
            name,
            &format!("{}{base}", mock.origin()),
            mock.key(),
            &["m"],
            "stream = false",
        ));
    }
    let env = Env::new(&c);
    let (rows, stderr) = check_all(&env);
    assert_eq!(rows.len(), presets.len(), "{stderr}");
    for ((name, _, header, path), mock) in presets.iter().zip(&mocks) {
        let row = rows
            .iter()
            .find(|r| s(r, "monitor") == *name)
            .unwrap_or_else(|| panic!("{name}: no row in {rows:#?}"));
        assert_eq!(
            (s(row, "status"), s(row, "kind")),
            ("operational", "ok"),
            "{name}: {row}"
        );
        let posts: Vec<_> = mock
            .requests()
            .into_iter()
            .filter(|r| r.method == "POST")
            .collect();
        assert_eq!(posts.len(), 1, "{name}");
        assert_eq!(posts[0].path, *path, "{name}");
        let want = if *header == "authorization" {
            format!("Bearer {}", mock.key())
        } else {
            mock.key().to_owned()
        };
        assert_eq!(posts[0].header(header), Some(want.as_str()), "{name}");
        // The ping goes to the origin, not the base path.
        assert!(
            mock.requests()
                .iter()
                .any(|r| r.method == "HEAD" && r.path == "/"),
            "{name}: no ping to the origin"
        );
    }
}

/// A relay that wants a bearer token on the Anthropic protocol, a gateway that wants its
/// own header on Gemini's, and Azure's `api-version` in a `query` table (URL-encoded).
#[test]
fn auth_styles_and_query_parameters_reach_the_wire() {
    let anthropic = mock_with("/gw/anthropic", Some("authorization"));
    let gemini = mock_with("/gw/google", Some("x-relay-key"));
    let azure = mock_with("/openai/v1", Some("api-key"));
    let mut c = preamble("");
    c.push_str(&monitor(
        "a",
        "anthropic",
        &anthropic.base_url(),
        anthropic.key(),
        &["m"],
        "auth = \"bearer\"",
    ));
    c.push_str(&monitor(
        "g",
        "gemini",
        &format!("{}/", gemini.base_url()),
        gemini.key(),
        &["m"],
        "auth = \"X-Relay-Key\"",
    ));
    c.push_str(&monitor(
        "z",
        "azure",
        &azure.base_url(),
        azure.key(),
        &["m"],
        "api = \"responses\"\nquery = { api-version = \"2025-04-01 preview\" }",
    ));
    let env = Env::new(&c);
    let (rows, stderr) = check_all(&env);
    for r in &rows {
        assert_eq!(
            (s(r, "status"), s(r, "kind")),
            ("operational", "ok"),
            "{r}\n{stderr}"
        );
    }
    assert_eq!(rows.len(), 3);
    let a = &anthropic.requests_for("m")[0];
    assert_eq!(a.path, "/gw/anthropic/v1/messages");
    assert_eq!(a.header("x-api-key"), None, "only the chosen header");
    assert_eq!(a.header("anthropic-version"), Some("2023-06-01"));
    let g = &gemini.requests_for("m")[0];
    assert_eq!(g.path, "/gw/google/v1beta/models/m:streamGenerateContent");
    assert_eq!(g.query.as_deref(), Some("alt=sse"));
    assert_eq!(g.header("x-relay-key"), Some(gemini.key()));
    let z = &azure.requests_for("m")[0];
    assert_eq!(z.path, "/openai/v1/responses");
    assert_eq!(z.query.as_deref(), Some("api-version=2025-04-01+preview"));
    assert_eq!(z.header("authorization"), None);

    // The key never shows, whichever header carried it.
    for out in [
        env.run(&["history", "--format", "json"]),
        env.run(&["validate"]),
    ] {
        for m in [&anthropic, &gemini, &azure] {
            assert!(!text(&out.stdout).contains(m.key()));
            assert!(!text(&out.stderr).contains(m.key()));
        }
    }
    let v = env.run(&["validate"]);
    assert!(
        text(&v.stdout).contains("/openai/v1?api-version=2025-04-01 preview"),
        "{}",
        text(&v.stdout)
    );
}

/// Local servers need the explicit allowances, and `validate` names them.
#[test]
fn local_presets_need_the_network_allowances_validate_names() {
    let base = "[[monitor]]\nid = \"local\"\nprovider = \"ollama\"\napi_key = \"ollama\"\nmodel = \"llama3\"\n";
    let env = Env::new(base);
    let out = env.run(&["validate"]);
    assert_ne!(out.status.code(), Some(0));
    let err = text(&out.stderr);
    assert!(
        err.contains("monitors.toml:1:") && err.contains("allow_http = true and allow_cidrs"),
        "{err}"
    );
    env.write_config(&format!("[network]\nallow_http = true\n{base}"));
    let out = env.run(&["validate"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("127.0.0.1") && err.contains("allow_cidrs") && err.contains("allow_private"),
        "{err}"
    );
    env.write_config(&format!(
        "[network]\nallow_http = true\nallow_cidrs = [\"127.0.0.0/8\"]\n{base}"
    ));
    let out = env.run(&["validate"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        !text(&out.stderr).contains("warning"),
        "{}",
        text(&out.stderr)
    );
    assert!(text(&out.stdout).contains("http://127.0.0.1:11434/v1"));
}

fn write(env: &Env, name: &str, content: &str) -> String {
    std::fs::write(env.path(name), content).expect("write a PEM file");
    name.to_owned()
}

/// One TLS monitor at `mock`, with `net` as its `[monitor.network]` table.
fn tls_config(mock: &MockUpstream, net: &str) -> String {
    let mut c = preamble("");
    c.push_str(&monitor(
        "tls",
        "openai",
        &mock.origin(),
        mock.key(),
        &["m"],
        &format!("[monitor.network]\n{net}"),
    ));
    c
}

fn tls_mock(ca: &TestCa, flaw: Flaw, client_ca: Option<&TestCa>) -> MockUpstream {
    MockUpstream::start_with(MockOptions {
        tls: Some(MockTls::new(&ca.server(flaw), client_ca)),
        ..MockOptions::default()
    })
}

#[test]
fn a_private_ca_is_refused_by_default_and_trusted_with_ca_file() {
    let ca = TestCa::new("chanmon private CA");
    let mock = tls_mock(&ca, Flaw::None, None);
    assert!(mock.origin().starts_with("https://127.0.0.1:"));
    let env = Env::new(&tls_config(&mock, ""));
    let (rows, _) = check_all(&env);
    let (status, kind, message) = verdict(&rows[0]);
    assert_eq!(
        (status.as_str(), kind.as_str()),
        ("error", "tls"),
        "{message}"
    );
    assert!(
        message.starts_with("certificate check failed: unknown issuer"),
        "named from rustls' error value, not its text: {message}"
    );
    assert!(
        mock.requests_for("m").is_empty(),
        "nothing sent before trust"
    );

    let ca_file = write(&env, "ca.pem", &ca.cert_pem);
    env.write_config(&tls_config(&mock, &format!("ca_file = \"{ca_file}\"")));
    let (rows, stderr) = check_all(&env);
    assert_eq!(
        (s(&rows[0], "status"), s(&rows[0], "kind")),
        ("operational", "ok"),
        "{}\n{stderr}",
        rows[0]
    );

    // The system's roots are still there beside it: another CA's server is refused as
    // unknown, not trusted.
    let other = TestCa::new("someone else");
    let stranger = tls_mock(&other, Flaw::None, None);
    env.write_config(&tls_config(&stranger, &format!("ca_file = \"{ca_file}\"")));
    let (rows, _) = check_all(&env);
    let (_, kind, message) = verdict(&rows[0]);
    assert_eq!(kind, "tls", "{message}");
    assert!(message.contains("unknown issuer"), "{message}");
}

#[test]
fn expired_and_misnamed_certificates_say_which_check_failed() {
    let ca = TestCa::new("chanmon private CA");
    for (flaw, want) in [
        (Flaw::Expired, "expired"),
        (Flaw::OtherName, "name mismatch"),
    ] {
        let mock = tls_mock(&ca, flaw, None);
        let env = Env::new("");
        let ca_file = write(&env, "ca.pem", &ca.cert_pem);
        env.write_config(&tls_config(&mock, &format!("ca_file = \"{ca_file}\"")));
        let (rows, _) = check_all(&env);
        let (status, kind, message) = verdict(&rows[0]);
        assert_eq!(
            (status.as_str(), kind.as_str()),
            ("error", "tls"),
            "{flaw:?}: {message}"
        );
        assert!(
            message.starts_with("certificate check failed: ") && message.contains(want),
            "{flaw:?}: {message}"
        );
    }
}

#[test]
fn mtls_is_refused_without_a_client_certificate_and_accepted_with_one() {
    let ca = TestCa::new("chanmon private CA");
    let clients = TestCa::new("client CA");
    let mock = tls_mock(&ca, Flaw::None, Some(&clients));
    let env = Env::new("");
    let ca_file = write(&env, "ca.pem", &ca.cert_pem);
    env.write_config(&tls_config(&mock, &format!("ca_file = \"{ca_file}\"")));
    let (rows, _) = check_all(&env);
    let (status, kind, message) = verdict(&rows[0]);
    assert_eq!(
        (status.as_str(), kind.as_str()),
        ("error", "tls"),
        "{message}"
    );
    assert!(message.contains("client certificate"), "{message}");
    assert!(mock.handshake_failures() >= 1);

    // A certificate from a CA the server does not know is refused too.
    let stranger = TestCa::new("not the client CA").client("intruder");
    write(&env, "bad-cert.pem", &stranger.cert_pem);
    write(&env, "bad-key.pem", &stranger.key_pem);
    env.write_config(&tls_config(
        &mock,
        &format!(
            "ca_file = \"{ca_file}\"\nclient_cert = \"bad-cert.pem\"\nclient_key = \"bad-key.pem\""
        ),
    ));
    let (rows, _) = check_all(&env);
    let (_, kind, message) = verdict(&rows[0]);
    assert_eq!(kind, "tls", "{message}");

    let leaf = clients.client("chanmon");
    write(&env, "client.pem", &leaf.cert_pem);
    write(&env, "client.key", &leaf.key_pem);
    env.write_config(&tls_config(
        &mock,
        &format!(
            "ca_file = \"{ca_file}\"\nclient_cert = \"client.pem\"\nclient_key = \"client.key\""
        ),
    ));
    let (rows, stderr) = check_all(&env);
    assert_eq!(
        (s(&rows[0], "status"), s(&rows[0], "kind")),
        ("operational", "ok"),
        "{}\n{stderr}",
        rows[0]
    );
    // A key others can read is worth a warning (written with the default umask here).
    let v = env.run(&["validate"]);
    assert_eq!(v.status.code(), Some(0));
    assert!(
        text(&v.stderr).contains("client.key is readable by other users"),
        "{}",
        text(&v.stderr)
    );
    // The key's contents never show.
    let key_body = leaf.key_pem.lines().nth(1).expect("a PEM body line");
    for out in [env.run(&["validate"]), env.run(&["status"])] {
        assert!(!text(&out.stdout).contains(key_body) && !text(&out.stderr).contains(key_body));
    }

    // A key that is not the certificate's is a config error at its line.
    write(&env, "other.key", &clients.client("x").key_pem);
    env.write_config(&tls_config(
        &mock,
        &format!(
            "ca_file = \"{ca_file}\"\nclient_cert = \"client.pem\"\nclient_key = \"other.key\""
        ),
    ));
    let out = env.run(&["validate"]);
    assert_ne!(out.status.code(), Some(0));
    let err = text(&out.stderr);
    assert!(
        err.contains("other.key")
            && err.contains("does not go with")
            && err.contains("monitors.toml:"),
        "{err}"
    );
}

#[test]
fn tls_insecure_is_accepted_and_flagged_everywhere() {
    let ca = TestCa::new("chanmon private CA");
    let mock = tls_mock(&ca, Flaw::OtherName, None);
    let env = Env::new(&tls_config(&mock, "tls_insecure = true"));
    let out = env.run(&["validate"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("tls_insecure: certificates are NOT checked for tls"));
    assert!(
        text(&out.stderr).contains("monitors.toml:")
            && text(&out.stderr).contains("tls_insecure = true"),
        "{}",
        text(&out.stderr)
    );

    let out = env.run(&["check", "--all", "--format", "json"]);
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        (s(&rows[0], "status"), s(&rows[0], "kind")),
        ("operational", "ok"),
        "{}",
        rows[0]
    );
    assert!(
        text(&out.stderr).contains("tls_insecure"),
        "warned: {}",
        text(&out.stderr)
    );

    let status = env.run(&["status"]);
    assert!(
        text(&status.stdout).contains("tls_insecure = true: certificates are NOT checked for tls"),
        "{}",
        text(&status.stdout)
    );
    let json = env.run(&["status", "--format", "json"]);
    assert!(serde_json::from_slice::<serde_json::Value>(&json.stdout).is_ok());
    assert!(text(&json.stderr).contains("tls_insecure"));

    // The daemon says it at start-up, and probes.
    let mut d = env.spawn_daemon(&[]);
    let t = Duration::from_secs(30);
    wait_until(t, "the start-up warning", || {
        d.log().contains("tls_insecure = true") && d.log().contains("WARN")
    });
    wait_until(t, "a daemon probe", || env.history_for("tls").len() >= 2);
    d.signal("TERM");
    assert!(d.wait_exit(t).success());
}

#[test]
fn bad_pem_files_are_config_errors_naming_the_file_and_line() {
    let env = Env::new("");
    write(&env, "garbage.pem", "hello\n");
    let cases = [
        (
            "ca_file = \"garbage.pem\"",
            "garbage.pem",
            "no PEM certificate",
        ),
        ("ca_file = \"missing.pem\"", "missing.pem", "cannot read"),
        (
            "client_cert = \"garbage.pem\"\nclient_key = \"garbage.pem\"",
            "garbage.pem",
            "no PEM certificate",
        ),
        ("client_key = \"garbage.pem\"", "client_key", "only one of"),
    ];
    for (net, file, want) in cases {
        let c = format!(
            "[network]\n{net}\n\n[[monitor]]\nid = \"m\"\nprovider = \"openai\"\napi_key = \"k\"\nmodel = \"x\"\n"
        );
        env.write_config(&c);
        let out = env.run(&["validate"]);
        assert_ne!(out.status.code(), Some(0), "{net}");
        let err = text(&out.stderr);
        assert!(
            err.contains("monitors.toml:2:") && err.contains(file) && err.contains(want),
            "{net}: {err}"
        );
    }
}

/// A reload reads the PEM files again and rebuilds the clients: adding the CA to a running
/// daemon (or rotating it) takes effect at SIGHUP, no restart.
#[test]
fn a_reload_reads_the_tls_files_again() {
    let ca = TestCa::new("chanmon private CA");
    let mock = tls_mock(&ca, Flaw::None, None);
    let timing = "interval = \"10s\"\ntimeout = \"5s\"";
    let config = |net: &str| {
        let mut c = preamble("tick = \"100ms\"");
        c.push_str(&monitor(
            "tls",
            "openai",
            &mock.origin(),
            mock.key(),
            &["m"],
            &format!("{timing}\n[monitor.network]\n{net}"),
        ));
        c
    };
    let env = Env::new(&config(""));
    let t = Duration::from_secs(30);
    let mut d = env.spawn_daemon(&[]);
    wait_until(t, "a refused probe", || !env.history_for("tls").is_empty());
    assert_eq!(s(&env.history_for("tls")[0], "kind"), "tls");

    write(&env, "ca.pem", &ca.cert_pem);
    env.write_config(&config("ca_file = \"ca.pem\""));
    d.signal("HUP");
    wait_until(t, "the reload", || d.log().contains("config reloaded"));
    wait_until(t, "a trusted probe", || {
        env.history_for("tls")
            .iter()
            .any(|r| s(r, "status") == "operational")
    });
    d.signal("TERM");
    assert!(d.wait_exit(t).success());
}
