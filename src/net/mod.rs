//! Network policy: the only place that builds an HTTP client or opens a socket.
//!
//! Every probe request goes through [`HttpClient`]: its URL check refuses bad schemes,
//! userinfo, internal names and denied IP literals before anything is sent, and its DNS
//! resolver refuses names that resolve to a denied address, at connect time. Redirects are
//! never followed; environment proxies are ignored unless the config names a proxy (which is
//! then trusted to resolve names itself). TLS settings beyond the system's trust store (extra
//! roots, a client certificate, `tls_insecure`) live in `tls`.

mod deny;
mod resolver;
mod tls;
pub(crate) mod url_check;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use url::Url;

use crate::model::Kind;

pub(crate) use resolver::vetted_ips;
#[cfg(test)]
pub(crate) use tls::counters as tls_counters;
pub use tls::{ClientIdentity, PemFile, TlsSettings};
pub(crate) use tls::{key_mode_warning, load_ca, load_identity};
pub(crate) use url_check::{check_host, check_url, host_is_local};

/// `[network]` settings (and per-monitor overrides of the same keys).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct NetworkPolicy {
    /// Allow `http://` endpoints (default false: https only).
    pub allow_http: bool,
    /// Allow every denied range (default false).
    pub allow_private: bool,
    /// Allow only these denied ranges, e.g. `127.0.0.0/8` for a local mock.
    pub allow_cidrs: Vec<ipnet::IpNet>,
    /// Send requests through this proxy. Environment proxy variables are always ignored.
    pub proxy: Option<Url>,
    /// Response bodies are read up to this many bytes (default 1 MiB).
    pub max_body: usize,
    /// DNS + TCP + TLS (default 10s).
    pub connect_timeout: Duration,
    /// Extra roots, a client certificate, `tls_insecure`. Part of the client map's key, so
    /// monitors with the same settings share one client.
    pub tls: TlsSettings,
}

impl fmt::Debug for NetworkPolicy {
    /// A proxy URL may carry `user:password@`: never print it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let proxy = self.proxy.as_ref().map(|p| {
            let mut p = p.clone();
            let _ = p.set_username("");
            let _ = p.set_password(None);
            p.to_string()
        });
        f.debug_struct("NetworkPolicy")
            .field("allow_http", &self.allow_http)
            .field("allow_private", &self.allow_private)
            .field("allow_cidrs", &self.allow_cidrs)
            .field("proxy", &proxy)
            .field("max_body", &self.max_body)
            .field("connect_timeout", &self.connect_timeout)
            .field("tls", &self.tls)
            .finish()
    }
}

impl Default for NetworkPolicy {
    fn default() -> Self {
        NetworkPolicy {
            allow_http: false,
            allow_private: false,
            allow_cidrs: Vec::new(),
            proxy: None,
            max_body: 1 << 20,
            connect_timeout: Duration::from_secs(10),
            tls: TlsSettings::default(),
        }
    }
}

/// A request refused by the policy: which rule, and the setting that would allow it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("blocked by the network policy: {0}")]
pub struct Blocked(pub String);

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("cannot build the HTTP client: {0}")]
    Build(String),
}

/// An HTTP client bound to one network policy.
#[derive(Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    policy: Arc<NetworkPolicy>,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("policy", &self.policy)
            .finish()
    }
}

impl HttpClient {
    /// Builds the client: guarded resolver on the system's DNS, no redirects, no environment
    /// proxies.
    pub fn new(policy: &NetworkPolicy) -> Result<Self, NetError> {
        Self::build(policy, resolver::Upstream::System)
    }

    /// Same, resolving every name through one nameserver (tests, special set-ups).
    pub fn with_nameserver(
        policy: &NetworkPolicy,
        nameserver: SocketAddr,
    ) -> Result<Self, NetError> {
        Self::build(policy, resolver::Upstream::Nameserver(nameserver))
    }

    fn build(policy: &NetworkPolicy, upstream: resolver::Upstream) -> Result<Self, NetError> {
        let mut b = reqwest::Client::builder()
            .dns_resolver(Arc::new(resolver::GuardedResolver::new(
                policy.clone(),
                upstream,
            )))
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(policy.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .user_agent(concat!("chanmon/", env!("CARGO_PKG_VERSION")));
        b = match &policy.proxy {
            Some(p) => b.proxy(
                reqwest::Proxy::all(p.as_str())
                    .map_err(|e| NetError::Build(e.without_url().to_string()))?,
            ),
            None => b.no_proxy(),
        };
        b = tls::configure(b, &policy.tls)?;
        if policy.tls.insecure {
            tracing::warn!(
                "tls_insecure = true: certificates of the servers reached with these settings are NOT checked (anyone on the path can read the keys sent)"
            );
        }
        let client = b.build().map_err(|e| NetError::Build(e.to_string()))?;
        Ok(HttpClient {
            client,
            policy: Arc::new(policy.clone()),
        })
    }

    /// Refuses URLs the policy does not allow (scheme, userinfo, blocked names, IP literals).
    pub fn check_url(&self, url: &Url) -> Result<(), Blocked> {
        check_url(url, &self.policy)
    }

    /// A request builder for `url`, after [`HttpClient::check_url`]: a refused URL is never
    /// sent.
    pub fn request(
        &self,
        method: reqwest::Method,
        url: Url,
    ) -> Result<reqwest::RequestBuilder, Blocked> {
        self.check_url(&url)?;
        Ok(self.client.request(method, url))
    }

    pub fn max_body(&self) -> usize {
        self.policy.max_body
    }
}

/// A body read up to a cap.
#[derive(Debug)]
pub struct CappedBody {
    pub bytes: Vec<u8>,
    /// The body was longer than the cap; the rest was not read (the connection is dropped).
    pub truncated: bool,
}

/// Reads `resp` up to `max` bytes and drops the connection past that.
pub async fn read_body_capped(
    resp: reqwest::Response,
    max: usize,
) -> Result<CappedBody, reqwest::Error> {
    let mut bytes = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        if bytes.len() + chunk.len() > max {
            let room = max - bytes.len();
            bytes.extend_from_slice(&chunk[..room]);
            return Ok(CappedBody {
                bytes,
                truncated: true,
            });
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(CappedBody {
        bytes,
        truncated: false,
    })
}

/// Maps a transport error to a kind (`blocked`, `dns`, `tls`, `timeout`, `connect`) and a
/// message built from the error's causes, without the URL (a query string could hold a key).
pub fn classify_error(err: &reqwest::Error) -> (Kind, String) {
    let mut causes: Vec<String> = Vec::new();
    let mut source = std::error::Error::source(err);
    let mut kind = None;
    while let Some(e) = source {
        if let Some(b) = e.downcast_ref::<Blocked>() {
            return (Kind::Blocked, b.to_string());
        }
        // rustls says which check failed; its error hides inside an io::Error, whose
        // `source()` skips it.
        if let Some(why) = tls::explain(e) {
            return (Kind::Tls, why);
        }
        if e.downcast_ref::<resolver::DnsError>().is_some() {
            kind.get_or_insert(Kind::Dns);
        }
        let text = e.to_string();
        let lower = text.to_ascii_lowercase();
        if kind.is_none()
            && (lower.contains("certificate")
                || lower.contains("tls")
                || lower.contains("handshake")
                || lower.contains("invalidcontenttype")
                || lower.contains("corrupt message")
                || lower.contains("received corrupt"))
        {
            kind = Some(Kind::Tls);
        }
        if !causes.iter().any(|c| c.contains(&text)) {
            causes.push(text);
        }
        source = e.source();
    }
    let kind = kind.unwrap_or(if err.is_timeout() {
        Kind::Timeout
    } else {
        Kind::Connect
    });
    let what = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "cannot connect"
    } else if err.is_body() || err.is_decode() {
        "the reply broke off"
    } else {
        "request failed"
    };
    let message = if causes.is_empty() {
        what.to_owned()
    } else {
        format!("{what}: {}", causes.join(": "))
    };
    (kind, message)
}

/// For `chanmon validate`: a warning when the endpoint is an address or name the policy
/// denies, naming the setting that would allow it.
pub fn endpoint_warning(url: &Url, policy: &NetworkPolicy) -> Option<String> {
    let host_only = {
        let mut u = url.clone();
        u.set_query(None);
        u
    };
    match url.host() {
        Some(url::Host::Domain(_)) | Some(url::Host::Ipv4(_)) | Some(url::Host::Ipv6(_)) => {
            check_url(&host_only, policy)
                .err()
                .map(|b| format!("endpoint {}: {}", url.host_str().unwrap_or(""), b.0))
        }
        None => None,
    }
}
