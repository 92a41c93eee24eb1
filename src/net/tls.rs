//! TLS beyond the system's trust store: extra roots (`ca_file`), a client certificate for
//! mTLS (`client_cert` + `client_key`) and the explicit, loudly warned `tls_insecure`.
//!
//! PEM files are read and checked when the config is read (so a bad file is a `validate`
//! error naming it), kept in memory and applied when a client is built; a reload reads them
//! again. Certificate failures are named from rustls' own error values found in the error's
//! source chain, not from reqwest's top-level text.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{AlertDescription, CertificateError};
use zeroize::Zeroizing;

use super::NetError;

/// A PEM file as read at config time: its path (for messages and for telling settings
/// apart) and its bytes (zeroized on drop: a client key is a secret).
#[derive(Clone)]
pub struct PemFile {
    path: PathBuf,
    pem: Arc<Zeroizing<Vec<u8>>>,
}

impl PemFile {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl PartialEq for PemFile {
    fn eq(&self, other: &Self) -> bool {
        self.path == other.path && (Arc::ptr_eq(&self.pem, &other.pem) || self.pem == other.pem)
    }
}

impl Eq for PemFile {}

/// By path only: cheap for the client map, and equal files have equal paths.
impl Hash for PemFile {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.path.hash(state);
    }
}

/// The path only: the contents may be a private key.
impl fmt::Debug for PemFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.path)
    }
}

/// A client certificate (chain) and its private key, checked to belong together.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct ClientIdentity {
    pub cert: PemFile,
    pub key: PemFile,
}

/// The TLS part of a network policy.
#[derive(Clone, Default, PartialEq, Eq, Hash, Debug)]
pub struct TlsSettings {
    /// Roots trusted besides the system's.
    pub ca_file: Option<PemFile>,
    /// Presented when the server asks for a client certificate.
    pub client: Option<ClientIdentity>,
    /// Accept any certificate (no chain, expiry or name check). Shown by `validate` and
    /// `status`, warned about at start-up.
    pub insecure: bool,
}

/// Larger than any real PEM bundle (the system's is a few hundred KiB): refusing more keeps
/// `ca_file = "/dev/zero"` from eating the machine.
const MAX_PEM_BYTES: u64 = 4 << 20;

fn read(path: &Path) -> Result<Zeroizing<Vec<u8>>, String> {
    use std::io::Read as _;
    #[cfg(test)]
    counters::READS.with(|c| c.set(c.get() + 1));
    let cannot = |e: std::io::Error| format!("cannot read {}: {e}", path.display());
    let file = std::fs::File::open(path).map_err(cannot)?;
    if !file.metadata().map_err(cannot)?.is_file() {
        return Err(format!("{} is not a regular file", path.display()));
    }
    let mut bytes = Zeroizing::new(Vec::new());
    file.take(MAX_PEM_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() as u64 > MAX_PEM_BYTES {
        return Err(format!(
            "{} is larger than {} MiB; a PEM file is far smaller",
            path.display(),
            MAX_PEM_BYTES >> 20
        ));
    }
    Ok(bytes)
}

fn certificates(path: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{} is not valid PEM ({e})", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(certs)
}

/// Reads `ca_file`: one or more PEM certificates, each usable as a trust anchor.
pub(crate) fn load_ca(path: &Path) -> Result<PemFile, String> {
    let pem = read(path)?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in certificates(path, &pem)? {
        roots
            .add(cert)
            .map_err(|e| format!("{}: a certificate in it is malformed ({e})", path.display()))?;
    }
    Ok(PemFile {
        path: path.to_owned(),
        pem: Arc::new(pem),
    })
}

/// Reads `client_cert` and `client_key` and checks that the key is the certificate's.
/// `Err((is_key, message))` says which of the two the message is about.
pub(crate) fn load_identity(cert: &Path, key: &Path) -> Result<ClientIdentity, (bool, String)> {
    let cert_pem = read(cert).map_err(|e| (false, e))?;
    let key_pem = read(key).map_err(|e| (true, e))?;
    let chain = certificates(cert, &cert_pem).map_err(|e| (false, e))?;
    let private = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        (
            true,
            format!(
                "{} holds no usable PEM private key (PKCS#8, PKCS#1 or SEC1): {e}",
                key.display()
            ),
        )
    })?;
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    rustls::sign::CertifiedKey::from_der(chain, private, &provider).map_err(|e| {
        (
            true,
            format!(
                "{} does not go with the certificate in {} ({e})",
                key.display(),
                cert.display()
            ),
        )
    })?;
    Ok(ClientIdentity {
        cert: PemFile {
            path: cert.to_owned(),
            pem: Arc::new(cert_pem),
        },
        key: PemFile {
            path: key.to_owned(),
            pem: Arc::new(key_pem),
        },
    })
}

/// A warning when a private key file can be read by other users (as ssh says it): the key
/// is a secret like the API keys chanmon seals.
pub(crate) fn key_mode_warning(path: &Path) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path).ok()?.permissions().mode();
        (mode & 0o077 != 0).then(|| {
            format!(
                "{} is readable by other users (mode {:o}); a private key should be mode 600",
                path.display(),
                mode & 0o777
            )
        })
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// Applies the settings to a client builder.
pub(super) fn configure(
    mut b: reqwest::ClientBuilder,
    tls: &TlsSettings,
) -> Result<reqwest::ClientBuilder, NetError> {
    if let Some(ca) = &tls.ca_file {
        let certs = reqwest::Certificate::from_pem_bundle(&ca.pem)
            .map_err(|e| NetError::Build(format!("{}: {e}", ca.path.display())))?;
        b = b.tls_certs_merge(certs);
    }
    if let Some(id) = &tls.client {
        b = b.identity(identity(id)?);
    }
    if tls.insecure {
        b = b.tls_danger_accept_invalid_certs(true);
    }
    Ok(b)
}

/// reqwest's PEM identity reader refuses blocks it does not know (`EC PARAMETERS`, which
/// OpenSSL writes before EC keys): hand it only the certificates and the key, re-encoded.
fn identity(id: &ClientIdentity) -> Result<reqwest::Identity, NetError> {
    let err = |e: String| NetError::Build(format!("client certificate: {e}"));
    let chain = certificates(&id.cert.path, &id.cert.pem).map_err(err)?;
    let key = PrivateKeyDer::from_pem_slice(&id.key.pem)
        .map_err(|e| err(format!("{}: {e}", id.key.path.display())))?;
    let mut pem = Zeroizing::new(String::new());
    for c in &chain {
        pem_block(&mut pem, "CERTIFICATE", c.as_ref());
    }
    let label = match &key {
        PrivateKeyDer::Pkcs1(_) => "RSA PRIVATE KEY",
        PrivateKeyDer::Sec1(_) => "EC PRIVATE KEY",
        _ => "PRIVATE KEY",
    };
    pem_block(&mut pem, label, key.secret_der());
    reqwest::Identity::from_pem(pem.as_bytes()).map_err(|e| err(e.to_string()))
}

fn pem_block(out: &mut String, label: &str, der: &[u8]) {
    let b64 = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(der));
    out.push_str(&format!("-----BEGIN {label}-----\n"));
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
}

/// What a TLS failure was, in words, when `e` is one of rustls' errors or wraps one. Two
/// wrappers hide the inner error from `source()`: an `io::Error` (its `source()` is the
/// inner error's source) and a boxed error stored as an error (`Box<dyn Error>`'s `source()`
/// likewise), so both are looked into.
pub(super) fn explain(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut current = e;
    // A few levels of wrapping at most; the bound only guards against a pathological chain.
    for _ in 0..8 {
        if let Some(r) = current.downcast_ref::<rustls::Error>() {
            return Some(describe(r));
        }
        let inner: Option<&(dyn std::error::Error + 'static)> =
            if let Some(io) = current.downcast_ref::<std::io::Error>() {
                io.get_ref().map(|i| i as _)
            } else {
                None
            };
        current = inner?;
    }
    None
}

fn describe(e: &rustls::Error) -> String {
    use rustls::Error as E;
    match e {
        E::InvalidCertificate(c) => format!("certificate check failed: {}", certificate(c)),
        E::AlertReceived(AlertDescription::CertificateRequired) => {
            "the server requires a client certificate (set client_cert and client_key)".to_owned()
        }
        E::AlertReceived(
            a @ (AlertDescription::BadCertificate
            | AlertDescription::UnknownCA
            | AlertDescription::CertificateUnknown
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateRevoked
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::AccessDenied),
        ) => format!("the server refused the client certificate (alert: {a:?})"),
        E::AlertReceived(AlertDescription::HandshakeFailure) => {
            "the server refused the TLS handshake (handshake_failure: no common cipher or version, or a client certificate it wants)".to_owned()
        }
        other => format!("TLS error: {other}"),
    }
}

fn certificate(c: &CertificateError) -> String {
    match c {
        CertificateError::UnknownIssuer => {
            "unknown issuer (not signed by a trusted CA; add the CA with ca_file)".to_owned()
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "the certificate has expired".to_owned()
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "the certificate is not valid yet (check the clock)".to_owned()
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            "name mismatch (the certificate is not valid for this host name)".to_owned()
        }
        CertificateError::Revoked => "the certificate has been revoked".to_owned(),
        CertificateError::BadSignature => "bad signature".to_owned(),
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            "the certificate is not for server authentication".to_owned()
        }
        other => format!("{other}"),
    }
}

/// PEM files read on this thread (per thread, so tests side by side do not see each
/// other's): a 100,000-monitor config naming one file reads it once.
#[cfg(test)]
pub(crate) mod counters {
    use std::cell::Cell;

    thread_local! {
        pub(crate) static READS: Cell<usize> = const { Cell::new(0) };
    }

    /// Files read on this thread since the last call; resets the count.
    pub(crate) fn take() -> usize {
        READS.with(|c| c.replace(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_failures_are_named() {
        let cases = [
            (
                rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
                "unknown issuer",
            ),
            (
                rustls::Error::InvalidCertificate(CertificateError::Expired),
                "expired",
            ),
            (
                rustls::Error::InvalidCertificate(CertificateError::NotValidForName),
                "name mismatch",
            ),
            (
                rustls::Error::AlertReceived(AlertDescription::CertificateRequired),
                "requires a client certificate",
            ),
        ];
        for (e, want) in cases {
            let io = std::io::Error::new(std::io::ErrorKind::InvalidData, e);
            let text = explain(&io).expect("found inside the io::Error");
            assert!(text.contains(want), "{text}");
        }
        let plain = std::io::Error::other("boom");
        assert!(explain(&plain).is_none());
        // An io::Error inside an io::Error, as connectors pass it on.
        let inner = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
        );
        let outer = std::io::Error::other(inner);
        assert!(explain(&outer).expect("found").contains("unknown issuer"));
    }

    #[test]
    fn bad_pem_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pem");
        assert!(load_ca(&missing).unwrap_err().contains("nope.pem"));
        let e = load_ca(dir.path()).unwrap_err();
        assert!(e.contains("not a regular file"), "{e}");
        let e = load_ca(Path::new("/dev/zero")).unwrap_err();
        assert!(e.contains("/dev/zero"), "{e}");
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "not a certificate\n").unwrap();
        let e = load_ca(&garbage).unwrap_err();
        assert!(
            e.contains("garbage.pem") && e.contains("no PEM certificate"),
            "{e}"
        );
        let broken = dir.path().join("broken.pem");
        std::fs::write(
            &broken,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let e = load_ca(&broken).unwrap_err();
        assert!(e.contains("broken.pem") && e.contains("malformed"), "{e}");
        let (is_key, e) = load_identity(&broken, &garbage).unwrap_err();
        assert!(is_key && e.contains("garbage.pem"), "{e}");

        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&garbage, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(key_mode_warning(&garbage).unwrap().contains("mode 644"));
        std::fs::set_permissions(&garbage, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(key_mode_warning(&garbage), None);
    }

    #[test]
    fn settings_print_paths_only() {
        let f = PemFile {
            path: PathBuf::from("/etc/k.pem"),
            pem: Arc::new(Zeroizing::new(b"SECRET-KEY-BYTES".to_vec())),
        };
        let id = ClientIdentity {
            cert: f.clone(),
            key: f,
        };
        let shown = format!("{id:?}");
        assert!(
            shown.contains("/etc/k.pem") && !shown.contains("SECRET"),
            "{shown}"
        );
    }
}
