//! Key policy, above the store: which API key a monitor uses, what is sealed at rest, and what
//! to tell the user about the master key.
//!
//! The config's key wins; else the key sealed in the database from an earlier sync; else the
//! monitor is `key_unavailable` with the reason. Header values are sealed too. A stored blob
//! that still opens to the configured value is kept as it is, so a restart or reload rewrites
//! only the rows whose content changed. The store only ever sees sealed bytes.

use anyhow::Context;

use crate::config::{Config, KeyState, Monitor, MonitorConfig};
use crate::secret::{KeyOrigin, MASTER_KEY_ENV, MasterKey, Secret};
use crate::store::{MonitorRow, Storage, StoreError, StoredSecrets};

const API_KEY: &str = "api_key";
const HEADERS: &str = "headers";

/// Seals what the config provides, opens what it does not, and writes the monitors: the
/// config's monitors come back with the key each will use.
pub fn sync(
    store: &mut dyn Storage,
    monitors: &[MonitorConfig],
    key: &MasterKey,
) -> Result<Vec<Monitor>, StoreError> {
    let stored = store.stored_secrets()?;
    let mut rows = Vec::with_capacity(monitors.len());
    let mut out = Vec::with_capacity(monitors.len());
    for m in monitors {
        let (row, monitor) = resolve(m, stored.get(m.id.as_str()), key);
        rows.push(row);
        out.push(monitor);
    }
    let report = store.sync_monitors(&rows)?;
    tracing::debug!(
        monitors = rows.len(),
        written = report.written,
        disabled = report.disabled,
        "monitors synced"
    );
    Ok(out)
}

/// One monitor: the row to store and the monitor with its usable key (or why there is none).
fn resolve(
    m: &MonitorConfig,
    stored: Option<&StoredSecrets>,
    key: &MasterKey,
) -> (MonitorRow, Monitor) {
    let id = m.id.as_str();
    let stored_key = stored.and_then(|s| s.sealed_key.as_deref());
    let (sealed_key, state) = match &m.api_key {
        Some(k) => (
            Some(reseal_if_changed(key, id, API_KEY, stored_key, k.expose())),
            KeyState::Ready(k.clone()),
        ),
        None => match stored_key {
            Some(blob) => match key.open_str(id, API_KEY, blob) {
                Ok(s) => (Some(blob.to_vec()), KeyState::Ready(s)),
                Err(e) => (
                    Some(blob.to_vec()),
                    KeyState::Unavailable(format!(
                        "{}the stored key cannot be used: {e} (did {MASTER_KEY_ENV} or the key file change?)",
                        env_note(m)
                    )),
                ),
            },
            None => (
                None,
                KeyState::Unavailable(format!("{}no key is stored in the database", env_note(m))),
            ),
        },
    };
    let sealed_headers = (!m.headers.is_empty()).then(|| {
        let plain = zeroize::Zeroizing::new(headers_json(&m.headers));
        let stored = stored.and_then(|s| s.sealed_headers.as_deref());
        reseal_if_changed(key, id, HEADERS, stored, &plain)
    });
    let key_error = match &state {
        KeyState::Ready(_) => None,
        KeyState::Unavailable(why) => Some(why.clone()),
    };
    let row = MonitorRow {
        id: m.id.clone(),
        name: m.name.clone(),
        provider: m.provider.as_str().to_owned(),
        api: m.api.as_str().to_owned(),
        endpoint: m.endpoint.as_str().to_owned(),
        group: m.group.clone(),
        enabled: m.enabled,
        interval_ms: m.interval.as_millis() as i64,
        models: m.models().map(str::to_owned).collect(),
        sealed_key,
        sealed_headers,
        key_error,
    };
    let monitor = Monitor {
        config: m.clone(),
        key: state,
    };
    (row, monitor)
}

/// The stored blob when it still opens to `plain` (nothing to rewrite), else a new seal.
fn reseal_if_changed(
    key: &MasterKey,
    id: &str,
    purpose: &str,
    stored: Option<&[u8]>,
    plain: &str,
) -> Vec<u8> {
    if let Some(blob) = stored
        && key
            .open(id, purpose, blob)
            .is_ok_and(|p| p.as_slice() == plain.as_bytes())
    {
        return blob.to_vec();
    }
    key.seal(id, purpose, plain.as_bytes())
}

/// Header values as one JSON object, name → value (the sealed plaintext).
fn headers_json(headers: &[(String, Secret)]) -> String {
    let obj: serde_json::Map<String, serde_json::Value> = headers
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.expose().to_owned())))
        .collect();
    serde_json::Value::Object(obj).to_string()
}

fn env_note(m: &MonitorConfig) -> String {
    match &m.api_key_env {
        Some(v) => format!("api_key_env {v} is unset and "),
        None => String::new(),
    }
}

/// Loads (or, with `create`, creates once) the master key, and says where a new one went.
pub fn master_key(config: &Config, create: bool) -> anyhow::Result<Option<MasterKey>> {
    let env = std::env::var(MASTER_KEY_ENV).ok();
    let loaded = MasterKey::load(env.as_deref(), &config.master_key_file, create)
        .context("loading the master key")?;
    Ok(loaded.map(|(key, origin)| {
        if let KeyOrigin::Created(path) = &origin {
            tracing::warn!(
                "created a new master key at {} (mode 0600); back it up: stored API keys cannot be decrypted without it. Set {MASTER_KEY_ENV} to use your own.",
                path.display()
            );
            eprintln!(
                "chanmon: created a new master key file {} (mode 0600); keep it with the database",
                path.display()
            );
        }
        key
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stored secrets by id, as the store hands them over.
    type Stored = std::collections::HashMap<String, StoredSecrets>;

    fn monitor(key: Option<&str>) -> MonitorConfig {
        let key_line = match key {
            Some(k) => format!("api_key = \"{k}\""),
            None => "api_key_env = \"CHANMON_TEST_UNSET_VAR\"".to_owned(),
        };
        let text = format!(
            "[[monitor]]\nid = \"m\"\nprovider = \"openai\"\n{key_line}\nmodel = \"a\"\nheaders = {{ x-token = \"tok\" }}\n"
        );
        let loaded = crate::config::parse(&text, std::path::Path::new("t.toml"), &|_| None)
            .expect("valid config");
        loaded
            .config
            .monitors
            .into_iter()
            .next()
            .expect("one monitor")
    }

    fn stored_of(row: &MonitorRow) -> Stored {
        let mut s = Stored::new();
        s.insert(
            row.id.to_string(),
            StoredSecrets {
                sealed_key: row.sealed_key.clone(),
                sealed_headers: row.sealed_headers.clone(),
            },
        );
        s
    }

    #[test]
    fn the_configs_key_wins_and_unchanged_blobs_are_kept() {
        let mk = MasterKey::from_bytes([7; 32]);
        let (row, m) = resolve(&monitor(Some("sk-one")), None, &mk);
        assert!(matches!(m.key, KeyState::Ready(ref k) if k.expose() == "sk-one"));
        let stored = stored_of(&row);
        let (again, _) = resolve(&monitor(Some("sk-one")), stored.get("m"), &mk);
        assert_eq!(again.sealed_key, row.sealed_key, "same key: same blob");
        assert_eq!(again.sealed_headers, row.sealed_headers);
        let (changed, _) = resolve(&monitor(Some("sk-two")), stored.get("m"), &mk);
        assert_ne!(changed.sealed_key, row.sealed_key);
        let opened = mk
            .open_str("m", API_KEY, changed.sealed_key.as_deref().unwrap())
            .unwrap();
        assert_eq!(opened.expose(), "sk-two");
    }

    #[test]
    fn a_missing_key_falls_back_to_the_stored_one_or_says_why() {
        let mk = MasterKey::from_bytes([7; 32]);
        let (row, _) = resolve(&monitor(Some("sk-one")), None, &mk);
        let stored = stored_of(&row);
        let (_, m) = resolve(&monitor(None), stored.get("m"), &mk);
        assert!(matches!(m.key, KeyState::Ready(ref k) if k.expose() == "sk-one"));

        let other = MasterKey::from_bytes([8; 32]);
        let (row, m) = resolve(&monitor(None), stored.get("m"), &other);
        let KeyState::Unavailable(why) = m.key else {
            panic!("a key that does not open is unavailable")
        };
        assert!(why.contains("CHANMON_TEST_UNSET_VAR is unset"), "{why}");
        assert!(why.contains("did CHANMON_MASTER_KEY"), "{why}");
        assert_eq!(row.key_error.as_deref(), Some(why.as_str()));

        let (_, m) = resolve(&monitor(None), None, &mk);
        assert!(
            matches!(m.key, KeyState::Unavailable(ref w) if w.contains("no key is stored")),
            "{:?}",
            m.key
        );
    }
}
