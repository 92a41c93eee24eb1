//! Whole-document tests of `parse`: defaults, merging, and each validation rule with the
//! position it reports.

use std::path::Path;
use std::time::Duration;

use super::*;
use crate::provider::BaseUrl;

fn env(name: &str) -> Option<String> {
    match name {
        "OPENAI_KEY" => Some("sk-openai".into()),
        "TOKEN" => Some("t0k\"en".into()),
        "HOST" => Some("relay.example.com".into()),
        "EMPTY" => Some(String::new()),
        _ => None,
    }
}

fn parse_str(text: &str) -> Result<Loaded, ConfigError> {
    parse(text, Path::new("/etc/chanmon/monitors.toml"), &env)
}

fn ok(text: &str) -> Loaded {
    match parse_str(text) {
        Ok(l) => l,
        Err(e) => panic!("expected a valid config, got:\n{e}"),
    }
}

/// `line:column message` of every error.
fn errors(text: &str) -> Vec<String> {
    match parse_str(text) {
        Ok(_) => panic!("expected errors for:\n{text}"),
        Err(e) => e
            .errors
            .iter()
            .map(|d| format!("{}:{} {}", d.line, d.column, d.message))
            .collect(),
    }
}

/// Asserts an error on `line` whose message contains `needle`.
#[track_caller]
fn assert_error(text: &str, line: usize, needle: &str) {
    let errs = errors(text);
    assert!(
        errs.iter()
            .any(|e| e.starts_with(&format!("{line}:")) && e.contains(needle)),
        "no error at line {line} containing {needle:?}; got {errs:#?}"
    );
}

const MON: &str = r#"
[[monitor]]
id = "m"
provider = "openai"
model = "gpt-4o-mini"
api_key = "sk-test"
"#;

/// `MON` with extra lines appended to the monitor table (the first extra line is line 7).
fn mon(extra: &str) -> String {
    format!("{MON}{extra}")
}

#[test]
fn minimal_monitor_gets_every_default() {
    let l = ok(MON);
    let c = &l.config;
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    assert_eq!(
        c.database,
        Database::Sqlite("/etc/chanmon/chanmon.db".into())
    );
    assert_eq!(c.master_key_file, Path::new("/etc/chanmon/chanmon.key"));
    assert!(c.enabled);
    assert_eq!(c.runner, RunnerConfig::default());
    assert_eq!(c.retention, RetentionConfig::default());
    assert_eq!(c.network, NetworkPolicy::default());
    let m = &c.monitors[0];
    assert_eq!(m.id.as_str(), "m");
    assert_eq!(m.name, "m");
    assert_eq!(m.provider.as_str(), "openai");
    assert_eq!(m.api.as_str(), "chat");
    assert_eq!(m.endpoint.as_str(), "https://api.openai.com/");
    assert_eq!(m.api_key.as_ref().map(Secret::expose), Some("sk-test"));
    assert_eq!(m.api_key_env, None);
    assert_eq!(m.interval, Duration::from_secs(300));
    assert_eq!(m.timeout, Duration::from_secs(30));
    assert_eq!(m.degraded_after, Duration::from_secs(10));
    assert!(m.enabled && m.challenge && m.stream);
    assert!(m.headers.is_empty() && m.body.is_empty());
    assert_eq!(m.group, None);
    assert_eq!(m.line, 2);
    assert_eq!(m.models().collect::<Vec<_>>(), vec!["gpt-4o-mini"]);
}

#[test]
fn paths_resolve_against_the_config_directory() {
    let c = ok(&format!("database = \"data/x.db\"\n{MON}")).config;
    assert_eq!(
        c.database,
        Database::Sqlite("/etc/chanmon/data/x.db".into())
    );
    assert_eq!(
        c.master_key_file,
        Path::new("/etc/chanmon/data/chanmon.key")
    );
    let c = ok(&format!(
        "database = \"/var/lib/x.db\"\nmaster_key_file = \"k\"\n{MON}"
    ))
    .config;
    assert_eq!(c.database, Database::Sqlite("/var/lib/x.db".into()));
    assert_eq!(c.master_key_file, Path::new("/etc/chanmon/k"));
    let bare = parse(MON, Path::new("monitors.toml"), &env).unwrap().config;
    assert_eq!(bare.database, Database::Sqlite("chanmon.db".into()));
    assert_eq!(bare.master_key_file, Path::new("chanmon.key"));
    assert_error(&format!("database = \"\"\n{MON}"), 1, "empty");
}

#[test]
fn a_postgres_url_selects_postgresql_and_is_never_echoed() {
    let c = ok(&format!(
        "database = \"postgresql://mon:hunter2@db.example:6543/chanmon?sslmode=verify-full\"\n{MON}"
    ))
    .config;
    let Database::Postgres(url) = &c.database else {
        panic!("not PostgreSQL: {:?}", c.database)
    };
    assert_eq!(url.to_string(), "postgres://mon@db.example:6543/chanmon");
    assert!(!format!("{:?}", c.database).contains("hunter2"));
    assert_eq!(c.master_key_file, Path::new("/etc/chanmon/chanmon.key"));
    let bad = format!("database = \"postgres://mon:hunter2@db/x?sslmode=maybe\"\n{MON}");
    assert_error(&bad, 1, "sslmode `maybe`");
    assert!(errors(&bad).iter().all(|e| !e.contains("hunter2")));
    assert_error(
        &format!("database = \"mysql://a@b/c\"\n{MON}"),
        1,
        "does not know",
    );
}

#[test]
fn chanmon_database_url_overrides_database() {
    let env = |name: &str| match name {
        "CHANMON_DATABASE_URL" => Some("postgres://u:pw@localhost/chanmon".to_owned()),
        _ => None,
    };
    let text = format!("database = \"x.db\"\n{MON}");
    let c = parse(&text, Path::new("/etc/chanmon/monitors.toml"), &env)
        .unwrap()
        .config;
    assert_eq!(
        c.database.to_string(),
        "postgres://u@localhost:5432/chanmon"
    );
    let broken =
        |name: &str| (name == "CHANMON_DATABASE_URL").then(|| "postgres://u@h:x/d".to_owned());
    let e = parse(&text, Path::new("/etc/chanmon/monitors.toml"), &broken).unwrap_err();
    assert!(e.to_string().contains("CHANMON_DATABASE_URL"), "{e}");
}

#[test]
fn runner_retention_and_network_are_read() {
    let text = format!(
        r#"enabled = false
[runner]
workers = 8
queue = 128
tick = "500ms"
shutdown_grace = "1m"
jitter = "15s"
model_concurrency = 2
[retention]
history = "7d"
rollups = "90d"
[network]
allow_http = true
allow_private = true
allow_cidrs = ["127.0.0.0/8", "::1"]
proxy = "http://proxy.internal:3128"
max_body = 65536
connect_timeout = "3s"
{MON}"#
    );
    let c = ok(&text).config;
    assert!(!c.enabled);
    assert_eq!(
        c.runner,
        RunnerConfig {
            workers: 8,
            queue: 128,
            tick: Duration::from_millis(500),
            shutdown_grace: Duration::from_secs(60),
            jitter: Duration::from_secs(15),
            model_concurrency: 2,
            location: String::new(),
        }
    );
    assert_eq!(c.retention.history, Duration::from_secs(7 * 86_400));
    assert_eq!(c.retention.rollups, Duration::from_secs(90 * 86_400));
    let n = &c.network;
    assert!(n.allow_http && n.allow_private);
    let cidrs: Vec<String> = n.allow_cidrs.iter().map(ToString::to_string).collect();
    assert_eq!(cidrs, vec!["127.0.0.0/8", "::1/128"]);
    assert_eq!(
        n.proxy.as_ref().map(Url::as_str),
        Some("http://proxy.internal:3128/")
    );
    assert_eq!(n.max_body, 65536);
    assert_eq!(n.connect_timeout, Duration::from_secs(3));
    // The monitor inherits the global policy.
    assert_eq!(&c.monitors[0].network, n);
}

#[test]
fn out_of_range_numbers_are_reported() {
    for (table, key, value, needle) in [
        ("runner", "workers", "0", "from 1 to 1024"),
        ("runner", "workers", "1025", "from 1 to 1024"),
        ("runner", "queue", "100001", "from 1 to 100000"),
        ("runner", "model_concurrency", "17", "from 1 to 16"),
        ("runner", "tick", "\"50ms\"", "from 100ms to 60s"),
        ("runner", "tick", "\"2m\"", "from 100ms to 60s"),
        ("runner", "shutdown_grace", "\"11m\"", "at most 10m"),
        ("runner", "jitter", "\"1h\"", "less than 1h"),
        ("retention", "history", "\"30m\"", "at least 1h"),
        ("network", "max_body", "1023", "from 1024 to 67108864"),
        ("network", "max_body", "67108865", "from 1024 to 67108864"),
        ("network", "connect_timeout", "\"10m\"", "from 100ms to 5m"),
        ("runner", "workers", "\"5\"", "not a string"),
        ("network", "allow_http", "\"yes\"", "true or false"),
    ] {
        let text = format!("[{table}]\n{key} = {value}\n{MON}");
        assert_error(&text, 2, needle);
        assert_error(&text, 2, &format!("`{key}` in [{table}]"));
    }
}

#[test]
fn rollups_must_cover_history() {
    assert_error(
        "[retention]\nhistory = \"30d\"\nrollups = \"7d\"\n",
        3,
        "at least as long as history",
    );
    assert_error("[retention]\nhistory = \"500d\"\n", 2, "raise `rollups`");
}

#[test]
fn unknown_keys_everywhere_list_the_allowed_ones() {
    assert_error(
        &format!("databse = \"x\"\n{MON}"),
        1,
        "(did you mean `database`?)",
    );
    assert_error(
        &format!("[runner]\nworker = 1\n{MON}"),
        2,
        "allowed keys: workers, queue",
    );
    assert_error(
        &format!("[network]\nallow_https = true\n{MON}"),
        2,
        "allowed keys: allow_http",
    );
    assert_error(
        &format!("[retention]\nraw = \"1d\"\n{MON}"),
        2,
        "unknown key `raw`",
    );
    assert_error(
        &mon("colour = \"red\""),
        7,
        "unknown key `colour` in monitor `m`",
    );
    assert_error(&mon("url = \"https://x\""), 7, "use `endpoint`");
    assert_error(
        &mon("[monitor.network]\nallow_htp = true"),
        8,
        "did you mean `allow_http`?",
    );
    assert_error(
        &format!("[defaults]\nmodel = \"x\"\n{MON}"),
        2,
        "cannot be a default",
    );
    assert_error(
        &format!("model = \"x\"\n{MON}"),
        1,
        "belongs inside a [[monitor]]",
    );
    assert_error("[[monitors]]\nid = \"x\"\n", 1, "[[monitor]] table");
}

#[test]
fn monitor_must_be_an_array_of_tables() {
    assert_error("[monitor]\nid = \"x\"\n", 1, "double brackets");
    assert_error("monitor = 3\n", 1, "array of tables");
    assert_error("monitor = [1]\n", 1, "must be a table");
}

#[test]
fn no_monitors_is_a_warning() {
    let l = ok("[runner]\nworkers = 2\n");
    assert!(l.config.monitors.is_empty());
    assert_eq!(l.warnings.len(), 1);
    assert_eq!(l.warnings[0].line, 0);
    assert!(l.warnings[0].message.contains("no [[monitor]]"));
    assert!(!l.warnings[0].to_string().contains(":0:0"));
    let empty = ok("");
    assert_eq!(empty.warnings.len(), 1);
}

#[test]
fn required_keys_are_reported_at_the_monitor_header() {
    let errs = errors("\n[[monitor]]\nname = \"x\"\n");
    for needle in ["no `id`", "no `provider`", "no `model`", "no key"] {
        assert!(
            errs.iter()
                .any(|e| e.starts_with("2:1 ") && e.contains(needle)),
            "{needle}: {errs:#?}"
        );
    }
}

#[test]
fn ids_must_be_slugs_and_unique() {
    let bad = MON.replace("id = \"m\"", "id = \"Open AI\"");
    assert_error(&bad, 3, "not a valid id");
    let dup = format!("{MON}{MON}");
    assert_error(
        &dup,
        9,
        "duplicate monitor id `m`: already used by the monitor at line 2",
    );
}

#[test]
fn provider_and_api_modes() {
    let anthropic = MON.replace("openai", "anthropic");
    let m = &ok(&anthropic).config.monitors[0];
    assert_eq!(m.provider.as_str(), "anthropic");
    assert_eq!(m.endpoint.as_str(), "https://api.anthropic.com/");
    let gemini = MON.replace("openai", "gemini");
    assert_eq!(
        ok(&gemini).config.monitors[0].endpoint.as_str(),
        "https://generativelanguage.googleapis.com/"
    );
    assert_eq!(
        ok(&mon("api = \"responses\"")).config.monitors[0]
            .api
            .as_str(),
        "responses"
    );

    assert_error(
        &MON.replace("openai", "mistrall"),
        4,
        "unknown provider \"mistrall\" in monitor `m`; allowed: openai, anthropic, gemini, openrouter, groq",
    );
    assert_error(&mon("api = \"completions\""), 7, "unknown api mode");
    // A bad provider in [defaults] is reported once, not again as missing in each monitor.
    let no_provider = MON.replace("provider = \"openai\"\n", "");
    let errs = errors(&format!(
        "[defaults]\nprovider = \"azura\"\n{no_provider}{no_provider}"
    ));
    assert_eq!(errs.len(), 2, "{errs:#?}"); // the provider, and the duplicate id
    assert!(errs[0].starts_with("2:12 unknown provider"), "{errs:#?}");
    assert_error(
        &format!("{anthropic}api = \"responses\"\n"),
        7,
        "works only with provider = \"openai\"",
    );

    // From [defaults], `api` only applies to openai monitors.
    let text = format!(
        "[defaults]\napi = \"responses\"\n{anthropic}{}",
        MON.replace("\"m\"", "\"o\"")
    );
    let c = ok(&text).config;
    assert_eq!(c.monitors[0].api.as_str(), "chat");
    assert_eq!(c.monitors[1].api.as_str(), "responses");
}

#[test]
fn defaults_apply_and_monitor_values_win() {
    let text = r#"
[defaults]
provider = "anthropic"
interval = "1m"
timeout = "20s"
degraded_after = "5s"
group = "prod"
enabled = false
challenge = false
stream = false
headers = { "X-Team" = "core", "User-Agent" = "chanmon" }
body = { max_tokens = 16, metadata = { a = 1 } }

[[monitor]]
id = "a"
model = "claude-haiku-4-5"
api_key = "k"

[[monitor]]
id = "b"
provider = "openai"
model = "gpt-4o-mini"
api_key = "k"
interval = "2m"
group = "staging"
enabled = true
stream = true
headers = { "x-team" = "edge", "X-Extra" = "1" }
body = { max_tokens = 32, temperature = 0.5 }
"#;
    let c = ok(text).config;
    let a = &c.monitors[0];
    assert_eq!(a.provider.as_str(), "anthropic");
    assert_eq!(a.interval, Duration::from_secs(60));
    assert_eq!(a.timeout, Duration::from_secs(20));
    assert_eq!(a.degraded_after, Duration::from_secs(5));
    assert_eq!(a.group.as_deref(), Some("prod"));
    assert!(!a.enabled && !a.challenge && !a.stream);
    assert_eq!(a.body["max_tokens"], serde_json::json!(16));
    assert_eq!(a.body["metadata"], serde_json::json!({"a": 1}));

    let b = &c.monitors[1];
    assert_eq!(b.provider.as_str(), "openai");
    assert_eq!(b.interval, Duration::from_secs(120));
    assert_eq!(b.timeout, Duration::from_secs(20));
    assert_eq!(b.group.as_deref(), Some("staging"));
    assert!(b.enabled && !b.challenge && b.stream);
    let headers: Vec<(&str, &str)> = b
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.expose()))
        .collect();
    assert_eq!(
        headers,
        vec![
            ("user-agent", "chanmon"),
            ("x-team", "edge"),
            ("x-extra", "1")
        ]
    );
    // Body merged key by key: the monitor's max_tokens wins, metadata is inherited.
    assert_eq!(b.body["max_tokens"], serde_json::json!(32));
    assert_eq!(b.body["temperature"], serde_json::json!(0.5));
    assert_eq!(b.body["metadata"], serde_json::json!({"a": 1}));
}

#[test]
fn interval_timeout_and_degraded_after() {
    assert_error(&mon("interval = \"5s\""), 7, "from 10s to 24h");
    assert_error(&mon("interval = \"25h\""), 7, "from 10s to 24h");
    assert_error(
        &mon("interval = \"five minutes\""),
        7,
        "write it like \"5m\"",
    );
    assert_error(&mon("interval = 300"), 7, "duration string");
    assert_error(
        &mon("interval = \"1m\"\ntimeout = \"1m\""),
        8,
        "must be shorter than its interval 1m",
    );
    assert_error(&mon("timeout = \"500ms\""), 7, "at least 1s");
    assert_error(
        &mon("timeout = \"5s\"\ndegraded_after = \"6s\""),
        8,
        "must not exceed its timeout 5s",
    );
    assert_error(&mon("degraded_after = \"0s\""), 7, "more than 0s");
    assert_error(
        &mon("degraded_after = \"40s\""),
        7,
        "(the default; set `timeout`)",
    );

    // A short interval without a timeout: the default is clamped silently.
    let l = ok(&mon("interval = \"20s\""));
    let m = &l.config.monitors[0];
    assert!(l.warnings.is_empty());
    assert!(m.timeout < m.interval && m.timeout >= Duration::from_secs(1));
    assert!(m.degraded_after <= m.timeout);
    let m = &ok(&mon("interval = \"10s\"")).config.monitors[0];
    assert!(m.timeout < m.interval && m.degraded_after <= m.timeout);
    let m = &ok(&mon("interval = \"24h\"")).config.monitors[0];
    assert_eq!(m.interval, Duration::from_secs(86_400));
}

#[test]
fn endpoints() {
    let with = |e: &str| mon(&format!("endpoint = \"{e}\""));
    let a = ok(&with("https://relay.example.com")).config.monitors[0]
        .endpoint
        .clone();
    let b = ok(&with("https://relay.example.com/")).config.monitors[0]
        .endpoint
        .clone();
    assert_eq!(a, b);
    let path = ok(&with("https://openrouter.ai/api/v1/")).config.monitors[0]
        .endpoint
        .clone();
    assert_eq!(path.as_str(), "https://openrouter.ai/api/v1");
    assert_error(&with("https://h/a/../v1"), 7, "`..` segment");
    assert_error(&with("https://h/a/%2E%2E/v1"), 7, "%-escape");
    assert_error(&with("https://h/?x=1"), 7, "query");
    assert_error(&with("https://h/#f"), 7, "fragment");
    assert_error(&with("https://u:p@h/"), 7, "user:password@");
    assert_error(&with("ftp://h"), 7, "scheme `ftp`");
    assert_error(&with("not-a-url"), 7, "is not a URL");
    assert_error(&with("https://h/ v1"), 7, "whitespace");
    assert_error(
        &with("http://10.0.0.5:8000"),
        7,
        "allow_http = true in [network]",
    );

    let allowed_here = mon(
        "endpoint = \"http://10.0.0.5:8000\"\n[monitor.network]\nallow_http = true\nallow_cidrs = [\"10.0.0.0/8\"]",
    );
    let c = ok(&allowed_here).config;
    assert!(c.monitors[0].network.allow_http);
    assert_eq!(c.monitors[0].network.allow_cidrs.len(), 1);
    assert!(
        !c.network.allow_http,
        "a monitor override must not leak into [network]"
    );
    let allowed_global = format!(
        "[network]\nallow_http = true\n{}",
        with("http://10.0.0.5:8000")
    );
    assert!(parse_str(&allowed_global).is_ok());
}

#[test]
fn monitor_network_overrides_single_keys() {
    let text = format!(
        "[network]\nproxy = \"http://p:3128\"\nmax_body = 2048\n{}",
        mon("[monitor.network]\nproxy = \"\"\nconnect_timeout = \"2s\"")
    );
    let c = ok(&text).config;
    let n = &c.monitors[0].network;
    assert_eq!(n.proxy, None);
    assert_eq!(n.max_body, 2048);
    assert_eq!(n.connect_timeout, Duration::from_secs(2));
    assert!(c.network.proxy.is_some());
}

#[test]
fn network_values_are_checked() {
    assert_error(
        "[network]\nallow_cidrs = [\"10.0.0.0/33\"]\n",
        2,
        "not a CIDR",
    );
    assert_error("[network]\nallow_cidrs = [\"ok\", 5]\n", 2, "only strings");
    assert_error("[network]\nproxy = \"ftp://p\"\n", 2, "proxy scheme `ftp`");
    assert_error("[network]\nproxy = \"p:3128\"\n", 2, "`proxy` in [network]");
}

#[test]
fn api_key_rules() {
    let base = MON.replace("api_key = \"sk-test\"\n", "");
    assert_error(&base, 2, "no key");
    assert_error(
        &format!("{base}api_key = \"a\"\napi_key_env = \"B\"\n"),
        7,
        "both `api_key` and `api_key_env`",
    );
    assert_error(
        &format!("{base}api_key = \"\"\n"),
        6,
        "`api_key` in monitor `m` is empty",
    );
    assert_error(&format!("{base}api_key = \"${{EMPTY}}\"\n"), 6, "is empty");
    assert_error(&format!("{base}api_key = \"  \"\n"), 6, "is empty");
    assert_error(
        &format!("{base}api_key = \"a\\u0000b\"\n"),
        6,
        "control characters",
    );
    let trimmed = ok(&format!("{base}api_key = \"${{OPENAI_KEY}}\\n\"\n"));
    let key = trimmed.config.monitors[0]
        .api_key
        .as_ref()
        .map(Secret::expose);
    assert_eq!(key, Some("sk-openai"));
    assert_error(
        &format!("{base}api_key_env = \"not-a-name\"\n"),
        6,
        "not an environment variable name",
    );

    let from_env = ok(&format!("{base}api_key_env = \"OPENAI_KEY\"\n"));
    let m = &from_env.config.monitors[0];
    assert_eq!(m.api_key.as_ref().map(Secret::expose), Some("sk-openai"));
    assert_eq!(m.api_key_env.as_deref(), Some("OPENAI_KEY"));
    assert!(from_env.warnings.is_empty());

    let unset = ok(&format!("{base}api_key_env = \"NOT_SET_ANYWHERE\"\n"));
    let m = &unset.config.monitors[0];
    assert!(m.api_key.is_none());
    assert_eq!(m.api_key_env.as_deref(), Some("NOT_SET_ANYWHERE"));
    assert_eq!(unset.warnings.len(), 1);
    assert_eq!(unset.warnings[0].line, 6);
    assert!(unset.warnings[0].message.contains(
        "api_key_env NOT_SET_ANYWHERE is unset; the key stored in the database will be used"
    ));
}

#[test]
fn interpolation_everywhere_after_parsing() {
    let text = r#"
[[monitor]]
id = "m"
provider = "openai"
model = "gpt-4o-mini"
endpoint = "https://${HOST}"
api_key = "${OPENAI_KEY}"
name = "cost $$5"
headers = { "X-Token" = "${TOKEN}" }
body = { metadata = { tags = ["${HOST}", "$$"] } }
"#;
    let m = ok(text).config.monitors.remove(0);
    assert_eq!(m.endpoint.as_str(), "https://relay.example.com/");
    assert_eq!(m.api_key.as_ref().map(Secret::expose), Some("sk-openai"));
    assert_eq!(m.name, "cost $5");
    // The quote inside $TOKEN stayed data: it did not end the TOML string.
    assert_eq!(m.headers[0].1.expose(), "t0k\"en");
    assert_eq!(
        m.body["metadata"],
        serde_json::json!({"tags": ["relay.example.com", "$"]})
    );
}

#[test]
fn interpolation_errors_name_the_variable_and_line() {
    let errs = errors(&mon("endpoint = \"https://${NO_SUCH_HOST}\""));
    // One error for the variable, none for the endpoint built from it.
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(
        errs[0].starts_with("7:12 ") && errs[0].contains("`NO_SUCH_HOST` is not set"),
        "{errs:#?}"
    );
    assert_error(&mon("name = \"${UNCLOSED\""), 7, "without a closing `}`");
    assert_error(
        &mon("name = \"${bad-name}\""),
        7,
        "not a variable reference",
    );
    assert_error(&mon("headers = { a = \"${NOPE}\" }"), 7, "`NOPE`");
}

#[test]
fn models() {
    let m = &ok(&mon("extra_models = [\"gpt-4.1-mini\", \"o4-mini\"]"))
        .config
        .monitors[0];
    assert_eq!(
        m.models().collect::<Vec<_>>(),
        vec!["gpt-4o-mini", "gpt-4.1-mini", "o4-mini"]
    );
    assert_error(&MON.replace("\"gpt-4o-mini\"", "\"\""), 5, "empty");
    assert_error(
        &MON.replace("\"gpt-4o-mini\"", "\"a\\u0007\""),
        5,
        "control characters",
    );
    assert_error(
        &MON.replace("\"gpt-4o-mini\"", &format!("\"{}\"", "x".repeat(300))),
        5,
        "at most 256",
    );
    assert_error(
        &mon("extra_models = [\"o4-mini\", \"gpt-4o-mini\"]"),
        7,
        "appears twice in monitor `m` (first at line 5)",
    );
    assert_error(&mon("extra_models = [\"a\", \"a\"]"), 7, "appears twice");
    assert_error(&mon("extra_models = \"o4-mini\""), 7, "array of strings");
    let seventeen: Vec<String> = (0..17).map(|i| format!("\"m{i}\"")).collect();
    assert_error(
        &mon(&format!("extra_models = [{}]", seventeen.join(", "))),
        7,
        "at most 16",
    );
    let sixteen: Vec<String> = (0..16).map(|i| format!("\"m{i}\"")).collect();
    assert!(parse_str(&mon(&format!("extra_models = [{}]", sixteen.join(", ")))).is_ok());
}

#[test]
fn headers() {
    assert_error(&mon("headers = { \"Bad Name\" = \"x\" }"), 7, "RFC 7230");
    for managed in [
        "Host",
        "Content-Length",
        "Transfer-Encoding",
        "Connection",
        "Keep-Alive",
        "TE",
        "Trailer",
        "Upgrade",
        "Proxy-Connection",
    ] {
        assert_error(
            &mon(&format!("headers = {{ \"{managed}\" = \"x\" }}")),
            7,
            "managed by the HTTP client",
        );
    }
    assert_error(
        &mon("headers = { Authorization = \"Bearer x\" }"),
        7,
        "use api_key",
    );
    // Only the provider's own auth header is refused.
    assert!(parse_str(&mon("headers = { x-api-key = \"x\" }")).is_ok());
    let anthropic = MON.replace("openai", "anthropic");
    assert_error(
        &format!("{anthropic}headers = {{ X-Api-Key = \"x\" }}\n"),
        7,
        "use api_key",
    );
    let gemini = MON.replace("openai", "gemini");
    assert_error(
        &format!("{gemini}headers = {{ x-goog-api-key = \"x\" }}\n"),
        7,
        "use api_key",
    );
    assert_error(
        &mon("headers = { a = \"x\\r\\nInjected: 1\" }"),
        7,
        "control characters",
    );
    assert_error(
        &mon("headers = { a = \"x\\u0000\" }"),
        7,
        "control characters",
    );
    assert_error(&mon("headers = { a = 5 }"), 7, "must be a string");
    assert_error(
        &mon("[monitor.headers]\nX-A = \"1\"\nx-a = \"2\""),
        9,
        "set twice",
    );
    assert_error(&mon("headers = \"x\""), 7, "must be a table");
    // An auth header from [defaults] is caught for the monitors it applies to.
    assert_error(
        &format!("[defaults]\nheaders = {{ authorization = \"x\" }}\n{MON}"),
        2,
        "use api_key",
    );
}

#[test]
fn body_protocol_keys_are_reserved() {
    for key in ["model", "messages", "stream", "stream_options", "n"] {
        assert_error(
            &mon(&format!("body = {{ {key} = 1 }}")),
            7,
            "cannot be overridden",
        );
    }
    let responses = mon("api = \"responses\"\nbody = { input = \"x\" }");
    assert_error(&responses, 8, "openai responses");
    assert!(
        parse_str(&mon(
            "api = \"responses\"\nbody = { messages = 1, reasoning = { effort = \"low\" } }"
        ))
        .is_ok()
    );
    let anthropic = MON.replace("openai", "anthropic");
    assert_error(
        &format!("{anthropic}body = {{ messages = [] }}\n"),
        7,
        "anthropic",
    );
    assert!(
        parse_str(&format!(
            "{anthropic}body = {{ max_tokens = 5, temperature = 0 }}\n"
        ))
        .is_ok()
    );
    let gemini = MON.replace("openai", "gemini");
    assert_error(
        &format!("{gemini}body = {{ contents = [] }}\n"),
        7,
        "gemini",
    );
    assert!(
        parse_str(&format!(
            "{gemini}body = {{ generationConfig = {{ maxOutputTokens = 8 }} }}\n"
        ))
        .is_ok()
    );
    assert!(
        parse_str(&mon(
            "body = { max_tokens = 8, temperature = 0.2, reasoning_effort = \"low\" }"
        ))
        .is_ok()
    );
    // From [defaults] too.
    assert_error(
        &format!("[defaults]\nbody = {{ model = \"x\" }}\n{MON}"),
        2,
        "cannot be overridden",
    );
    assert_error(
        &mon("body = { temperature = nan }"),
        7,
        "no NaN or infinity",
    );
    let m = &ok(&mon("body = { when = 1979-05-27T07:32:00Z, big = 0xff }"))
        .config
        .monitors[0];
    assert_eq!(m.body["when"], serde_json::json!("1979-05-27T07:32:00Z"));
    assert_eq!(m.body["big"], serde_json::json!(255));
}

#[test]
fn labels() {
    let m = &ok(&mon("name = \"OpenAI main\"\ngroup = \"prod\""))
        .config
        .monitors[0];
    assert_eq!(m.name, "OpenAI main");
    assert_eq!(m.group.as_deref(), Some("prod"));
    assert_error(&mon("name = \"\""), 7, "name is empty");
    assert_error(&mon("group = \"a\\nb\""), 7, "control characters");
}

#[test]
fn syntax_errors_have_positions() {
    let errs = errors("a = 1\nb = \"unterminated\nc = 3\n");
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(
        errs[0].starts_with("2:") && errs[0].contains("TOML syntax error"),
        "{errs:#?}"
    );
    assert_error("[runner]\nworkers = 1\nworkers = 2\n", 3, "defined twice");
    assert_error("[[monitor]]\nid = \"a\"\n[monitor]\n", 3, "defined twice");
}

#[test]
fn all_errors_are_collected_in_file_order() {
    let text = "[runner]\nworkers = 0\nqueue = 0\n[[monitor]]\nid = \"BAD\"\nprovider = \"x\"\n";
    let errs = errors(text);
    assert!(errs.len() >= 4, "{errs:#?}");
    let lines: Vec<usize> = errs
        .iter()
        .map(|e| e.split(':').next().unwrap().parse().unwrap())
        .collect();
    let mut sorted = lines.clone();
    sorted.sort();
    assert_eq!(lines, sorted);
    let shown = parse_str(text).unwrap_err().to_string();
    assert!(
        shown.starts_with("error: /etc/chanmon/monitors.toml:2:11: "),
        "{shown}"
    );
}

#[test]
fn load_reports_unreadable_files_without_position() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.toml");
    let err = load(&missing).unwrap_err();
    assert_eq!(err.errors[0].line, 0);
    let shown = err.to_string();
    assert!(
        shown.contains("cannot read the config file") && shown.contains(CONFIG_ENV),
        "{shown}"
    );
    assert!(!shown.contains(":0:0"), "{shown}");

    let bad_utf8 = dir.path().join("bin.toml");
    std::fs::write(&bad_utf8, b"a = 1\nb = \"\xff\"\n").unwrap();
    let err = load(&bad_utf8).unwrap_err();
    assert_eq!((err.errors[0].line, err.errors[0].column), (2, 6));
    assert!(err.errors[0].message.contains("UTF-8"));

    let good = dir.path().join("monitors.toml");
    std::fs::write(&good, MON).unwrap();
    let l = load(&good).unwrap();
    assert_eq!(
        l.config.database,
        Database::Sqlite(dir.path().join("chanmon.db"))
    );
}

#[test]
fn headers_and_keys_never_print() {
    let l = ok(&mon("headers = { x-secret = \"hunter2\" }"));
    let shown = format!("{:?}", l.config);
    assert!(
        !shown.contains("hunter2") && !shown.contains("sk-test"),
        "{shown}"
    );
}

/// Every provider × api of the registry goes through the same rules, so a new registry line
/// is validated without a test of its own: the default base URL, the key header refused in
/// `headers`, each reserved key refused in `body`, an `api` the provider
/// does not offer refused, and the names stored as written.
#[test]
fn every_registry_entry_is_validated_the_same_way() {
    for p in Provider::all() {
        for api in p.apis() {
            let protocol = api.protocol();
            // A preset without a default URL needs one; a local one needs plain http.
            let endpoint = match p.base_url() {
                BaseUrl::Known(_) => "",
                BaseUrl::Required(_) => "endpoint = \"https://r.example.com/openai/v1\"\n",
            };
            let base = format!(
                "[network]\nallow_http = true\n[[monitor]]\nid = \"m\"\nprovider = \"{p}\"\napi = \"{}\"\nmodel = \"x\"\napi_key = \"k\"\n{endpoint}",
                api.as_str()
            );
            let line = 9 + usize::from(!endpoint.is_empty());
            let m = &ok(&base).config.monitors[0];
            assert_eq!((m.provider, m.api), (p, api));
            assert_eq!(
                (m.provider.as_str(), m.api.as_str()),
                (p.as_str(), api.as_str())
            );
            assert_eq!(m.protocol().name(), protocol.name());
            if let BaseUrl::Known(url) = p.base_url() {
                assert_eq!(m.endpoint, Url::parse(url).unwrap(), "{p}");
            }
            let default = ok(&base.replace(&format!("api = \"{}\"\n", api.as_str()), ""));
            assert_eq!(default.config.monitors[0].api, p.default_api(), "{p}");

            let h = p.default_auth(api).header_name().to_owned();
            assert_error(
                &format!("{base}headers = {{ {} = \"x\" }}\n", h.to_ascii_uppercase()),
                line,
                &format!("header `{h}` carries the {p} API key"),
            );
            for k in protocol.reserved_body_keys() {
                assert_error(
                    &format!("{base}body = {{ {k} = 1 }}\n"),
                    line,
                    &format!(
                        "body key `{k}` of monitor `m` is set by the probe for the {} protocol",
                        protocol.name()
                    ),
                );
            }
            assert!(parse_str(&format!("{base}body = {{ temperature = 0 }}\n")).is_ok());
        }
        for other in crate::provider::api_names() {
            if p.api(other).is_none() {
                let text = format!(
                    "[[monitor]]\nid = \"m\"\nprovider = \"{p}\"\nmodel = \"x\"\napi_key = \"k\"\napi = \"{other}\"\n"
                );
                assert_error(
                    &text,
                    6,
                    &format!("api = \"{other}\" in monitor `m` works only with provider = "),
                );
                assert_error(&text, 6, &format!("not \"{p}\"; remove `api`"));
            }
        }
    }
}

#[test]
fn locations_are_read_defaulted_and_checked() {
    let l = ok(&format!(
        "[runner]\nlocation = \"eu-west\"\n[defaults]\nlocations = [\"eu-west\", \"us.east_1\"]\n{}",
        mon("")
    ));
    assert_eq!(l.config.runner.location, "eu-west");
    let m = &l.config.monitors[0];
    assert_eq!(m.locations, ["eu-west", "us.east_1"]);
    assert!(m.probed_from("eu-west") && !m.probed_from("ap-south"));
    assert!(
        !m.probed_from(""),
        "no location: only monitors without `locations`"
    );
    let own = ok(&format!(
        "[defaults]\nlocations = [\"a\"]\n{}",
        mon("locations = [\"b\"]")
    ));
    assert_eq!(
        own.config.monitors[0].locations,
        ["b"],
        "the monitor's own list wins"
    );
    let none = ok(MON);
    assert!(none.config.monitors[0].locations.is_empty());
    assert!(none.config.monitors[0].probed_from("") && none.config.monitors[0].probed_from("x"));
    assert_eq!(none.config.runner.location, "");

    assert_error("[runner]\nlocation = \"EU\"\n", 2, "not a valid location");
    assert_error("[runner]\nlocation = \"\"\n", 2, "not a valid location");
    assert_error(&mon("locations = []"), 7, "at least one location");
    assert_error(&mon("locations = [\"a\", \"a\"]"), 7, "listed twice");
    assert_error(&mon("locations = [\"a b\"]"), 7, "not a valid location");
    assert_error(&mon("locations = \"a\""), 7, "array of strings");
    let errs = errors(&mon("locations = [1]"));
    assert_eq!(errs.len(), 1, "one error for one bad item: {errs:?}");
    assert!(
        errs[0].starts_with("7:") && errs[0].contains("only strings"),
        "{errs:?}"
    );
    assert_error(
        &format!("[alerts]\nmin_failing_locations = 0\n{MON}"),
        2,
        "min_failing_locations",
    );
    let rule = ok(&format!("[alerts]\nmin_failing_locations = 2\n{MON}"));
    assert_eq!(rule.config.alerts.defaults.min_failing_locations, 2);
}
