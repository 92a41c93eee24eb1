//! The shipped example config must validate on a machine with no API keys in the environment,
//! and show one monitor per provider protocol.

use std::path::Path;
use std::time::Duration;

use chanmon::config::{load, parse};

fn example_path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("monitors.example.toml")
}

fn example_text() -> String {
    std::fs::read_to_string(example_path()).unwrap()
}

#[test]
fn example_validates_without_any_environment() {
    let path = example_path();
    let loaded = match parse(&example_text(), &path, &|_| None) {
        Ok(l) => l,
        Err(e) => panic!("monitors.example.toml does not validate:\n{e}"),
    };
    let c = &loaded.config;
    assert_eq!(
        c.database,
        chanmon::store::Database::Sqlite(path.parent().unwrap().join("chanmon.db"))
    );
    assert_eq!(
        c.master_key_file,
        path.parent().unwrap().join("chanmon.key")
    );

    let kinds: Vec<(&str, &str, &str)> = c
        .monitors
        .iter()
        .map(|m| (m.id.as_str(), m.provider.as_str(), m.api.as_str()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("openai-chat", "openai", "chat"),
            ("openai-responses", "openai", "responses"),
            ("anthropic", "anthropic", "chat"),
            ("gemini", "gemini", "chat"),
            ("openrouter", "openrouter", "chat"),
            ("groq", "groq", "chat"),
            ("azure", "azure", "chat"),
            ("gateway-anthropic", "anthropic", "chat"),
        ]
    );
    let path_of = |id: &str| {
        let m = c.monitors.iter().find(|m| m.id.as_str() == id).unwrap();
        (
            m.endpoint.as_str().to_owned(),
            m.auth.header_name().to_owned(),
        )
    };
    assert_eq!(
        path_of("openrouter"),
        (
            "https://openrouter.ai/api/v1".into(),
            "authorization".into()
        )
    );
    assert_eq!(
        path_of("groq"),
        (
            "https://api.groq.com/openai/v1".into(),
            "authorization".into()
        )
    );
    assert_eq!(
        path_of("azure"),
        (
            "https://my-resource.openai.azure.com/openai/v1".into(),
            "api-key".into()
        )
    );
    assert!(
        path_of("gateway-anthropic")
            .0
            .ends_with("/my-gateway/anthropic")
    );
    assert!(!c.network.tls.insecure);
    let chat = &c.monitors[0];
    assert!(chat.extra_models.len() >= 2);
    assert!(chat.headers.iter().any(|(k, _)| k == "x-title"));
    assert!(
        chat.headers.iter().any(|(k, _)| k == "x-client"),
        "defaults headers merged"
    );
    assert_eq!(
        c.monitors[3].network.connect_timeout,
        Duration::from_secs(5)
    );
    assert_eq!(c.network.connect_timeout, Duration::from_secs(10));
    for m in &c.monitors {
        assert_eq!(m.endpoint.scheme(), "https");
        assert!(!m.endpoint.path().ends_with('/') || m.endpoint.path() == "/");
        assert!(
            m.api_key.is_none(),
            "{}: no key in an empty environment",
            m.id
        );
        assert!(m.api_key_env.is_some());
    }

    // One "unset" warning per monitor, nothing else.
    assert_eq!(
        loaded.warnings.len(),
        c.monitors.len(),
        "{:?}",
        loaded.warnings
    );
    assert!(
        loaded
            .warnings
            .iter()
            .all(|w| w.message.contains("is unset"))
    );
}

#[test]
fn example_takes_keys_from_the_environment() {
    let env = |name: &str| {
        name.ends_with("_API_KEY")
            .then(|| format!("key-for-{name}"))
    };
    let loaded = parse(&example_text(), &example_path(), &env).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let anthropic = &loaded.config.monitors[2];
    assert_eq!(
        anthropic.api_key.as_ref().map(|k| k.expose().to_owned()),
        Some("key-for-ANTHROPIC_API_KEY".to_owned())
    );
}

#[test]
fn example_loads_from_disk() {
    // Whatever this machine's environment holds, the example is valid.
    assert!(load(&example_path()).is_ok());
}

/// The deployment example's config (two replicas in two locations) validates too: a
/// location-bound monitor and one any replica takes, the database from the environment.
#[test]
fn the_compose_example_validates() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/deploy/compose/monitors.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let loaded = match parse(&text, &path, &|_| None) {
        Ok(l) => l,
        Err(e) => panic!("examples/deploy/compose/monitors.toml does not validate:\n{e}"),
    };
    let m = &loaded.config.monitors;
    assert_eq!(m.len(), 2);
    assert_eq!(m[0].locations, ["eu-west", "us-east"]);
    assert!(m[1].locations.is_empty());
    assert!(
        loaded
            .warnings
            .iter()
            .all(|w| w.to_string().contains("is unset")),
        "{:?}",
        loaded.warnings
    );
}
