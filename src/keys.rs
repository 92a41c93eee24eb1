//! Key policy, above the store: which API key a monitor uses, what is sealed at rest, and what
//! to tell the user about the master key.
//!
//! The config's key wins; else the key sealed in the database from an earlier sync; else the
//! monitor is `key_unavailable` with the reason. Header values are sealed too. A stored blob
//! that still opens to the configured value is kept as it is, so a restart or reload rewrites
//! only the rows whose content changed. The store only ever sees sealed bytes.

use anyhow::Context;

use crate::config::{Config, KeyState, Monitor, MonitorConfig};
use crate::secret::{KeyOrigin, MASTER_KEY_ENV, MASTER_KEY_NEW_ENV, MasterKey, Secret};
use crate::store::{
    MonitorRow, Reseal, SealedSecret, SecretSlot, Storage, StoreError, StoredSecrets,
};

const API_KEY: &str = "api_key";
const HEADERS: &str = "headers";

/// The purpose a slot's seal is bound to (with its owner), as `secret` puts it in the AAD.
fn purpose(slot: SecretSlot) -> &'static str {
    match slot {
        SecretSlot::ApiKey => API_KEY,
        SecretSlot::Headers => HEADERS,
    }
}

/// How a stored secret is named to people: `monitor `m` (API key)`.
pub fn describe(s: &SealedSecret) -> String {
    let what = match s.slot {
        SecretSlot::ApiKey => "API key",
        SecretSlot::Headers => "header values",
    };
    format!("monitor `{}` ({what})", s.owner)
}

/// Which stored secrets a master key opens.
#[derive(Debug, Default)]
pub struct SecretAudit {
    /// Sealed secrets stored.
    pub total: usize,
    /// Those the key does not open, with why.
    pub unopenable: Vec<(SealedSecret, String)>,
}

/// Tries to open every sealed secret with `key`. Nothing is written.
pub fn audit(store: &dyn Storage, key: &MasterKey) -> Result<SecretAudit, StoreError> {
    let secrets = store.sealed_secrets()?;
    let mut out = SecretAudit {
        total: secrets.len(),
        ..SecretAudit::default()
    };
    for s in secrets {
        if let Err(e) = key.open(&s.owner, purpose(s.slot), &s.blob) {
            out.unopenable.push((s, e.to_string()));
        }
    }
    Ok(out)
}

/// What a rekey did.
#[derive(Debug, Default)]
pub struct RekeyReport {
    /// Secrets re-sealed under the new key.
    pub resealed: usize,
    /// Secrets that the new key opens already (an earlier rekey, or a sync under the new key).
    pub already_new: usize,
    /// Secrets neither key opens, emptied (only with `forget_unreadable`).
    pub forgotten: Vec<String>,
    /// Monitors whose secrets were re-sealed.
    pub monitors: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum RekeyError {
    #[error("the new master key is the current one; nothing to do")]
    SameKey,
    #[error(
        "the current master key opens none of the {0} sealed secrets in the database: it is the wrong key (check {MASTER_KEY_ENV} and the key file); nothing was written"
    )]
    WrongOldKey(usize),
    #[error(
        "neither the current nor the new master key opens {} stored secret(s): {}; nothing was written. Put those monitors' keys in the config and run `chanmon check` (it re-seals them), or pass --forget-unreadable to empty them",
        .0.len(),
        listed(.0)
    )]
    Unreadable(Vec<String>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The first few of `items`, then how many more.
fn listed(items: &[String]) -> String {
    const MAX: usize = 20;
    let mut s = items
        .iter()
        .take(MAX)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > MAX {
        s.push_str(&format!(" … and {} more", items.len() - MAX));
    }
    s
}

/// Re-seals every stored secret under `new`: opened with `old`, sealed with `new`, all
/// swapped in one transaction (so an interrupted rekey leaves the old key valid). A secret
/// that only `new` opens is left as it is. Refused before anything is written when `old` opens
/// nothing, or when a secret opens with neither key (unless `forget_unreadable`: then it is
/// emptied, in the same transaction).
pub fn rekey(
    store: &mut dyn Storage,
    old: &MasterKey,
    new: &MasterKey,
    forget_unreadable: bool,
) -> Result<RekeyReport, RekeyError> {
    if old.same_as(new) {
        return Err(RekeyError::SameKey);
    }
    let secrets = store.sealed_secrets()?;
    let mut report = RekeyReport::default();
    let mut changes = Vec::with_capacity(secrets.len());
    let mut unreadable = Vec::new();
    let mut owners = std::collections::BTreeSet::new();
    for s in secrets {
        let p = purpose(s.slot);
        match old.open(&s.owner, p, &s.blob) {
            Ok(plain) => {
                let blob = new.seal(&s.owner, p, &plain);
                owners.insert(s.owner.clone());
                report.resealed += 1;
                changes.push(Reseal {
                    old: s,
                    new: Some(blob),
                });
            }
            Err(_) if new.open(&s.owner, p, &s.blob).is_ok() => report.already_new += 1,
            Err(_) => unreadable.push(s),
        }
    }
    let total = report.resealed + report.already_new + unreadable.len();
    if total > 0 && report.resealed == 0 && report.already_new == 0 {
        return Err(RekeyError::WrongOldKey(total));
    }
    if !unreadable.is_empty() {
        if !forget_unreadable {
            return Err(RekeyError::Unreadable(
                unreadable.iter().map(describe).collect(),
            ));
        }
        for s in unreadable {
            report.forgotten.push(describe(&s));
            changes.push(Reseal { old: s, new: None });
        }
    }
    store.reseal(&changes)?;
    report.monitors = owners.len();
    Ok(report)
}

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

/// Loads the master key without ever creating one, and says where it came from.
pub fn current_master_key(config: &Config) -> anyhow::Result<Option<(MasterKey, KeyOrigin)>> {
    load_master_key(config, false)
}

/// `CHANMON_MASTER_KEY`, else the key file (created once when `create`).
fn load_master_key(
    config: &Config,
    create: bool,
) -> anyhow::Result<Option<(MasterKey, KeyOrigin)>> {
    let env = std::env::var(MASTER_KEY_ENV).ok();
    MasterKey::load(env.as_deref(), &config.master_key_file, create)
        .context("loading the master key")
}

/// The new master key for `rekey`: from `file` (created once, mode 0600, when it does not
/// exist) or from `CHANMON_MASTER_KEY_NEW`; exactly one of them.
pub fn new_master_key(file: Option<&std::path::Path>) -> anyhow::Result<(MasterKey, KeyOrigin)> {
    let env = std::env::var(MASTER_KEY_NEW_ENV)
        .ok()
        .filter(|v| !v.trim().is_empty());
    match (file, env) {
        (Some(_), Some(_)) => anyhow::bail!(
            "both --new-key-file and {MASTER_KEY_NEW_ENV} are given; give the new key one way"
        ),
        (None, None) => anyhow::bail!(
            "no new master key: pass --new-key-file PATH (created when it does not exist) or set {MASTER_KEY_NEW_ENV}"
        ),
        (None, Some(v)) => Ok((MasterKey::parse(&v, MASTER_KEY_NEW_ENV)?, KeyOrigin::Env)),
        (Some(path), None) => {
            MasterKey::load(None, path, true)?.context("the new key file could not be created")
        }
    }
}

/// Loads (or, with `create`, creates once) the master key, and says where a new one went.
pub fn master_key(config: &Config, create: bool) -> anyhow::Result<Option<MasterKey>> {
    Ok(load_master_key(config, create)?.map(|(key, origin)| {
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

    /// The one monitor of a config text.
    fn parse_one(text: &str) -> MonitorConfig {
        let loaded = crate::config::parse(text, std::path::Path::new("t.toml"), &|_| None)
            .expect("valid config");
        loaded
            .config
            .monitors
            .into_iter()
            .next()
            .expect("one monitor")
    }

    fn monitor(key: Option<&str>) -> MonitorConfig {
        let key_line = match key {
            Some(k) => format!("api_key = \"{k}\""),
            None => "api_key_env = \"CHANMON_TEST_UNSET_VAR\"".to_owned(),
        };
        parse_one(&format!(
            "[[monitor]]\nid = \"m\"\nprovider = \"openai\"\n{key_line}\nmodel = \"a\"\nheaders = {{ x-token = \"tok\" }}\n"
        ))
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

    /// A monitor `id` with a key and a header, parsed as the config would give it.
    fn keyed(id: &str) -> MonitorConfig {
        parse_one(&format!(
            "[[monitor]]\nid = \"{id}\"\nprovider = \"openai\"\napi_key = \"sk-{id}\"\nmodel = \"a\"\nheaders = {{ x-token = \"tok-{id}\" }}\n"
        ))
    }

    fn temp_store(dir: &tempfile::TempDir) -> Box<dyn Storage> {
        let db = crate::store::Database::Sqlite(dir.path().join("k.db"));
        crate::store::open(&db, crate::store::OpenMode::Create).unwrap()
    }

    fn unopenable(store: &dyn Storage, key: &MasterKey) -> Vec<String> {
        audit(store, key)
            .unwrap()
            .unopenable
            .iter()
            .map(|(s, _)| describe(s))
            .collect()
    }

    #[test]
    fn rekey_moves_every_secret_and_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = temp_store(&dir);
        let (k1, k2) = (
            MasterKey::from_bytes([1; 32]),
            MasterKey::from_bytes([2; 32]),
        );
        sync(store.as_mut(), &[keyed("a"), keyed("b")], &k1).unwrap();
        assert!(unopenable(store.as_ref(), &k1).is_empty());

        let r = rekey(store.as_mut(), &k1, &k2, false).unwrap();
        assert_eq!((r.resealed, r.already_new, r.monitors), (4, 0, 2));
        assert!(unopenable(store.as_ref(), &k2).is_empty());
        assert_eq!(unopenable(store.as_ref(), &k1).len(), 4);
        let stored = store.stored_secrets().unwrap();
        let blob = stored["a"].sealed_key.as_deref().unwrap();
        assert_eq!(k2.open_str("a", API_KEY, blob).unwrap().expose(), "sk-a");

        // Run again (say after an interruption): nothing left to move, nothing refused.
        let again = rekey(store.as_mut(), &k1, &k2, false).unwrap();
        assert_eq!((again.resealed, again.already_new), (0, 4));
        assert!(matches!(
            rekey(store.as_mut(), &k2, &MasterKey::from_bytes([2; 32]), false),
            Err(RekeyError::SameKey)
        ));
    }

    #[test]
    fn a_wrong_old_key_or_an_unreadable_secret_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = temp_store(&dir);
        let (k1, k2, k9) = (
            MasterKey::from_bytes([1; 32]),
            MasterKey::from_bytes([2; 32]),
            MasterKey::from_bytes([9; 32]),
        );
        // `old` was sealed under k9 and then left the config (disabled, blobs kept).
        sync(store.as_mut(), &[keyed("old")], &k9).unwrap();
        sync(store.as_mut(), &[keyed("a")], &k1).unwrap();
        let before = store.sealed_secrets().unwrap();

        let wrong = rekey(store.as_mut(), &k2, &MasterKey::from_bytes([3; 32]), false);
        assert!(
            matches!(wrong, Err(RekeyError::WrongOldKey(4))),
            "{wrong:?}"
        );
        let err = rekey(store.as_mut(), &k1, &k2, false).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("monitor `old` (API key)")
                && text.contains("monitor `old` (header values)"),
            "{text}"
        );
        assert_eq!(
            store.sealed_secrets().unwrap(),
            before,
            "nothing was written"
        );

        let r = rekey(store.as_mut(), &k1, &k2, true).unwrap();
        assert_eq!(r.resealed, 2);
        assert_eq!(r.forgotten.len(), 2);
        let left = store.sealed_secrets().unwrap();
        assert!(left.iter().all(|s| s.owner == "a"), "{left:?}");
        assert!(unopenable(store.as_ref(), &k2).is_empty());
    }

    #[test]
    fn a_secret_changed_meanwhile_aborts_the_whole_swap() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = temp_store(&dir);
        let (k1, k2) = (
            MasterKey::from_bytes([1; 32]),
            MasterKey::from_bytes([2; 32]),
        );
        sync(store.as_mut(), &[keyed("a"), keyed("b")], &k1).unwrap();
        let secrets = store.sealed_secrets().unwrap();
        let mut changes: Vec<Reseal> = secrets
            .iter()
            .map(|s| Reseal {
                old: s.clone(),
                new: Some(k2.seal(&s.owner, purpose(s.slot), b"x")),
            })
            .collect();
        // The last one was read before someone else re-sealed it.
        changes.last_mut().unwrap().old.blob[5] ^= 1;
        let err = store.reseal(&changes).unwrap_err();
        assert!(matches!(err, StoreError::Changed(_)), "{err}");
        assert_eq!(store.sealed_secrets().unwrap(), secrets, "all or nothing");
    }
}
