//! Key material: the master key, sealed (encrypted) API keys and header values, and the
//! `Secret` type that never prints.
//!
//! This is the only module that touches key material. Sealed format, version 1:
//! `[0x01][12-byte random nonce][AES-256-GCM ciphertext + 16-byte tag]`, with the associated
//! data binding the blob to one monitor and one purpose (`"<monitor id>\0<purpose>"`), so a
//! blob copied onto another monitor's row does not decrypt.

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, Generate, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use zeroize::{Zeroize, Zeroizing};

/// Environment variable holding the master key (32 bytes, base64 or hex).
pub const MASTER_KEY_ENV: &str = "CHANMON_MASTER_KEY";

/// Environment variable holding the new master key for `chanmon rekey` (same forms).
pub const MASTER_KEY_NEW_ENV: &str = "CHANMON_MASTER_KEY_NEW";

const SEAL_VERSION: u8 = 1;
const NONCE_LEN: usize = 12;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(
        "{origin}: the master key must be 32 bytes, written as 64 hex digits or base64 (44 characters); got {got}"
    )]
    BadMasterKey { origin: String, got: String },
    #[error("cannot read the master key file {path}: {source}")]
    ReadKeyFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot create the master key file {path}: {source}")]
    CreateKeyFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("sealed value has unknown format version {0}")]
    UnknownVersion(u8),
    #[error("sealed value is truncated")]
    Truncated,
    #[error(
        "sealed value does not decrypt with this master key (wrong key, or the data was altered)"
    )]
    Decrypt,
}

/// A string that must never be shown: API keys, credential-bearing header values.
/// Debug and Display print `[redacted]`; the memory is wiped on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(Zeroizing::new(s.into()))
    }

    /// The plain value, for the one place that needs it (a request header, the redactor).
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Where the master key came from, so the user can be told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOrigin {
    Env,
    File(PathBuf),
    /// A new key file was written (mode 0600).
    Created(PathBuf),
}

impl fmt::Display for KeyOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyOrigin::Env => write!(f, "${MASTER_KEY_ENV}"),
            KeyOrigin::File(p) => write!(f, "key file {}", p.display()),
            KeyOrigin::Created(p) => write!(f, "new key file {}", p.display()),
        }
    }
}

/// The AES-256 key that seals stored secrets.
pub struct MasterKey {
    key: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

impl MasterKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        MasterKey {
            key: Zeroizing::new(bytes),
        }
    }

    /// Parses 32 bytes written as hex (64 digits) or base64 (standard or URL-safe, padded or
    /// not). `origin` names where the text came from, for the error.
    pub fn parse(text: &str, origin: &str) -> Result<Self, SecretError> {
        let t = text.trim();
        let bad = || SecretError::BadMasterKey {
            origin: origin.to_owned(),
            got: format!("{} characters", t.chars().count()),
        };
        let mut bytes: Zeroizing<Vec<u8>> = Zeroizing::new(Vec::new());
        if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
            for pair in t.as_bytes().chunks(2) {
                let s = std::str::from_utf8(pair).map_err(|_| bad())?;
                bytes.push(u8::from_str_radix(s, 16).map_err(|_| bad())?);
            }
        } else {
            let engines = [
                &base64::engine::general_purpose::STANDARD,
                &base64::engine::general_purpose::STANDARD_NO_PAD,
                &base64::engine::general_purpose::URL_SAFE,
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            ];
            let decoded = engines
                .iter()
                .find_map(|e| e.decode(t).ok())
                .ok_or_else(bad)?;
            *bytes = decoded;
        }
        let arr: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| SecretError::BadMasterKey {
                origin: origin.to_owned(),
                got: format!("{} bytes", bytes.len()),
            })?;
        Ok(MasterKey::from_bytes(arr))
    }

    /// Loads the master key: `env_value` (from `CHANMON_MASTER_KEY`) wins; else `key_file` is
    /// read; else, when `create` is set, a new random key is written to `key_file` with mode
    /// 0600 (never overwriting an existing file). With `create` unset and no key anywhere, the
    /// result is `Ok(None)`: read-only commands do not need a key.
    pub fn load(
        env_value: Option<&str>,
        key_file: &Path,
        create: bool,
    ) -> Result<Option<(MasterKey, KeyOrigin)>, SecretError> {
        if let Some(v) = env_value.filter(|v| !v.trim().is_empty()) {
            return Ok(Some((MasterKey::parse(v, MASTER_KEY_ENV)?, KeyOrigin::Env)));
        }
        match fs::read_to_string(key_file) {
            Ok(text) => {
                let text = Zeroizing::new(text);
                let origin = key_file.display().to_string();
                return Ok(Some((
                    MasterKey::parse(&text, &origin)?,
                    KeyOrigin::File(key_file.to_owned()),
                )));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(SecretError::ReadKeyFile {
                    path: key_file.to_owned(),
                    source,
                });
            }
        }
        if !create {
            return Ok(None);
        }
        let key = MasterKey::from_bytes(Key::<Aes256Gcm>::generate().into());
        write_new_key_file(key_file, &key).map_err(|source| SecretError::CreateKeyFile {
            path: key_file.to_owned(),
            source,
        })?;
        Ok(Some((key, KeyOrigin::Created(key_file.to_owned()))))
    }

    /// Whether two keys are the same key.
    pub fn same_as(&self, other: &MasterKey) -> bool {
        // Not secret-dependent timing that matters here (both keys are the caller's), but
        // cheap to do without an early exit anyway.
        self.key
            .iter()
            .zip(other.key.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(&Key::<Aes256Gcm>::from(*self.key))
    }

    /// Encrypts `plaintext` for `monitor` and `purpose` (e.g. `"api_key"`, `"headers"`).
    pub fn seal(&self, monitor: &str, purpose: &str, plaintext: &[u8]) -> Vec<u8> {
        let nonce = Nonce::generate();
        let aad = aad(monitor, purpose);
        let ct = self
            .cipher()
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
        out.push(SEAL_VERSION);
        out.extend_from_slice(nonce.as_slice());
        out.extend_from_slice(&ct);
        out
    }

    /// Decrypts a blob made by [`MasterKey::seal`] for the same monitor and purpose.
    pub fn open(
        &self,
        monitor: &str,
        purpose: &str,
        blob: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, SecretError> {
        let (&version, rest) = blob.split_first().ok_or(SecretError::Truncated)?;
        if version != SEAL_VERSION {
            return Err(SecretError::UnknownVersion(version));
        }
        if rest.len() < NONCE_LEN + 16 {
            return Err(SecretError::Truncated);
        }
        let (nonce, ct) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_from(nonce).map_err(|_| SecretError::Truncated)?;
        let aad = aad(monitor, purpose);
        self.cipher()
            .decrypt(&nonce, Payload { msg: ct, aad: &aad })
            .map(Zeroizing::new)
            .map_err(|_| SecretError::Decrypt)
    }

    pub fn open_str(
        &self,
        monitor: &str,
        purpose: &str,
        blob: &[u8],
    ) -> Result<Secret, SecretError> {
        let bytes = self.open(monitor, purpose, blob)?;
        let s = std::str::from_utf8(&bytes).map_err(|_| SecretError::Decrypt)?;
        Ok(Secret::new(s))
    }
}

fn aad(monitor: &str, purpose: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(monitor.len() + purpose.len() + 1);
    v.extend_from_slice(monitor.as_bytes());
    v.push(0);
    v.extend_from_slice(purpose.as_bytes());
    v
}

fn write_new_key_file(path: &Path, key: &MasterKey) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir)?;
    }
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    let mut text = base64::engine::general_purpose::STANDARD.encode(*key.key);
    let res = writeln!(f, "{text}").and_then(|_| f.sync_all());
    text.zeroize();
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> MasterKey {
        MasterKey::from_bytes([b; 32])
    }

    #[test]
    fn seal_round_trips_and_binds_to_monitor() {
        let k = key(7);
        let blob = k.seal("m1", "api_key", b"sk-secret");
        assert_eq!(blob[0], SEAL_VERSION);
        assert_eq!(&*k.open("m1", "api_key", &blob).unwrap(), b"sk-secret");
        assert!(matches!(
            k.open("m2", "api_key", &blob),
            Err(SecretError::Decrypt)
        ));
        assert!(matches!(
            k.open("m1", "headers", &blob),
            Err(SecretError::Decrypt)
        ));
        assert!(matches!(
            key(8).open("m1", "api_key", &blob),
            Err(SecretError::Decrypt)
        ));
        assert!(matches!(
            k.open("m1", "api_key", &blob[..10]),
            Err(SecretError::Truncated)
        ));
        let mut v2 = blob.clone();
        v2[0] = 2;
        assert!(matches!(
            k.open("m1", "api_key", &v2),
            Err(SecretError::UnknownVersion(2))
        ));
    }

    #[test]
    fn same_as_compares_the_bytes() {
        assert!(key(3).same_as(&key(3)));
        assert!(!key(3).same_as(&key(4)));
    }

    #[test]
    fn nonces_differ() {
        let k = key(1);
        assert_ne!(k.seal("m", "p", b"x"), k.seal("m", "p", b"x"));
    }

    #[test]
    fn parses_hex_and_base64() {
        let hex = "00".repeat(31) + "ff";
        assert!(MasterKey::parse(&hex, "t").is_ok());
        let b64 = base64::engine::general_purpose::STANDARD.encode([3u8; 32]);
        assert!(MasterKey::parse(&b64, "t").is_ok());
        let err = MasterKey::parse("short", "t").unwrap_err().to_string();
        assert!(err.contains("32 bytes"), "{err}");
        let b64_16 = base64::engine::general_purpose::STANDARD.encode([3u8; 16]);
        assert!(
            MasterKey::parse(&b64_16, "t")
                .unwrap_err()
                .to_string()
                .contains("16 bytes")
        );
    }

    #[test]
    fn creates_key_file_once_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/master.key");
        assert!(MasterKey::load(None, &path, false).unwrap().is_none());
        let (k1, o1) = MasterKey::load(None, &path, true).unwrap().unwrap();
        assert!(matches!(o1, KeyOrigin::Created(_)));
        let (k2, o2) = MasterKey::load(None, &path, true).unwrap().unwrap();
        assert!(matches!(o2, KeyOrigin::File(_)));
        let blob = k1.seal("m", "p", b"v");
        assert_eq!(&*k2.open("m", "p", &blob).unwrap(), b"v");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let env_hex = "11".repeat(32);
        let (_, o3) = MasterKey::load(Some(&env_hex), &path, true)
            .unwrap()
            .unwrap();
        assert_eq!(o3, KeyOrigin::Env);
    }

    #[test]
    fn debug_never_shows_secrets() {
        let s = Secret::new("sk-live-123");
        assert_eq!(format!("{s:?} {s}"), "[redacted] [redacted]");
        assert!(!format!("{:?}", key(9)).contains('9'));
    }
}
