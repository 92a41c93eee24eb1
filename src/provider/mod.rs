//! The provider registry: every provider chanmon knows, the protocols it speaks and its
//! defaults. Config validation and the probe both read it; nothing else lists providers.
//!
//! Two words, kept apart. A *protocol* is a wire format with its own strategy (openai chat,
//! openai responses, anthropic, gemini): one file here implements [`Protocol`] and owns
//! everything about it: auth headers, reserved body keys, the request, reply and SSE parsing,
//! its own error classification. A *provider* is what the config names (`provider =
//! "openai"`): a default base URL and the protocols it offers under the `api` names the config
//! uses, the first being the default.
//!
//! Beside the three native providers the registry holds *presets*: services that speak one of
//! these protocols at their own base URL, sometimes with their own auth header (Azure's
//! `api-key`). A preset is a [`preset`] line: name, default base URL (or none when the URL
//! names the user's own resource), protocols, auth.
//!
//! - Adding a protocol: one new file implementing [`Protocol`] (with its `sample_reply`), one
//!   `mod` line and one line in `PROVIDERS`.
//! - Adding a provider over existing protocols: one line in `PROVIDERS`.
//!
//! The tests in `tests.rs` iterate over the registry (as do those of `config` and `probe`),
//! so a new line is covered by the generic validation and verdict tests without writing them
//! again.
//! Dependencies point one way: `protocol.rs` and `wire.rs` know nothing of the rest, each
//! protocol file uses only those two, and this file lists the protocols.

mod anthropic;
#[cfg(test)]
mod fake;
mod gemini;
mod openai_chat;
mod openai_responses;
mod protocol;
pub(crate) mod wire;

use std::fmt;
use std::hash::{Hash, Hasher};

use crate::official::StatusFormat;

pub use protocol::{Auth, Piece, Protocol, Usage};

/// One provider as the config names it.
struct ProviderDef {
    /// `provider = "…"` in the config; stored in the database.
    name: &'static str,
    /// What a monitor without `endpoint` talks to.
    base_url: BaseUrl,
    /// The protocols offered, by `api` name; the first is the default. Never empty.
    apis: &'static [ApiDef],
    /// How the key is sent when the monitor sets no `auth`; `None`: the protocol's own way.
    auth: Option<Auth>,
    /// The provider's public status page (`official_status = "auto"`); `None` when it has none.
    status_page: Option<(&'static str, StatusFormat)>,
}

/// A provider's base URL, as its SDKs and docs give it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BaseUrl {
    /// Used when a monitor leaves `endpoint` out.
    Known(&'static str),
    /// None exists: the URL names the user's own resource, so `endpoint` is required. The
    /// text is the URL's shape, for the message.
    Required(&'static str),
}

/// One protocol as a provider offers it.
struct ApiDef {
    /// `api = "…"` in the config; stored in the database (also when it is the default).
    name: &'static str,
    protocol: &'static dyn Protocol,
}

const fn api(name: &'static str, protocol: &'static dyn Protocol) -> ApiDef {
    ApiDef { name, protocol }
}

/// OpenAI's two protocols, chat first.
const OPENAI_APIS: &[ApiDef] = &[
    api("chat", &openai_chat::OpenAiChat),
    api("responses", &openai_responses::OpenAiResponses),
];
/// OpenAI chat only: most compatible services have no Responses API.
const CHAT: &[ApiDef] = &[api("chat", &openai_chat::OpenAiChat)];

/// A preset: a service over existing protocols, without a status page of ours to poll.
const fn preset(
    name: &'static str,
    base_url: BaseUrl,
    apis: &'static [ApiDef],
    auth: Option<Auth>,
) -> ProviderDef {
    ProviderDef {
        name,
        base_url,
        apis,
        auth,
        status_page: None,
    }
}

use BaseUrl::{Known, Required};

/// The registry. Order matters for messages: it is the order in which providers are listed.
/// The presets' base URLs are the ones their documentation gives the OpenAI SDK (sources in
/// docs/config.md); `tests.rs` pins each one's request URL and auth header.
static PROVIDERS: &[ProviderDef] = &[
    ProviderDef {
        name: "openai",
        base_url: Known("https://api.openai.com"),
        apis: OPENAI_APIS,
        auth: None,
        status_page: Some((
            "https://status.openai.com/api/v2/summary.json",
            StatusFormat::Statuspage,
        )),
    },
    ProviderDef {
        name: "anthropic",
        base_url: Known("https://api.anthropic.com"),
        apis: &[api("chat", &anthropic::Anthropic)],
        auth: None,
        status_page: Some((
            "https://status.anthropic.com/api/v2/summary.json",
            StatusFormat::Statuspage,
        )),
    },
    ProviderDef {
        name: "gemini",
        base_url: Known("https://generativelanguage.googleapis.com"),
        apis: &[api("chat", &gemini::Gemini)],
        auth: None,
        status_page: Some((
            "https://status.cloud.google.com/incidents.json",
            StatusFormat::GoogleIncidents,
        )),
    },
    preset(
        "openrouter",
        Known("https://openrouter.ai/api/v1"),
        CHAT,
        None,
    ),
    preset(
        "groq",
        Known("https://api.groq.com/openai/v1"),
        OPENAI_APIS,
        None,
    ),
    preset("deepseek", Known("https://api.deepseek.com"), CHAT, None),
    preset("xai", Known("https://api.x.ai/v1"), OPENAI_APIS, None),
    preset("mistral", Known("https://api.mistral.ai/v1"), CHAT, None),
    preset("together", Known("https://api.together.xyz/v1"), CHAT, None),
    preset(
        "fireworks",
        Known("https://api.fireworks.ai/inference/v1"),
        CHAT,
        None,
    ),
    preset(
        "moonshot",
        Known("https://api.moonshot.ai/v1"),
        OPENAI_APIS,
        None,
    ),
    preset(
        "zhipu",
        Known("https://open.bigmodel.cn/api/paas/v4"),
        CHAT,
        None,
    ),
    preset(
        "azure",
        Required("https://{resource}.openai.azure.com/openai/v1"),
        OPENAI_APIS,
        Some(Auth::API_KEY),
    ),
    preset("ollama", Known("http://127.0.0.1:11434/v1"), CHAT, None),
    preset("vllm", Known("http://127.0.0.1:8000/v1"), CHAT, None),
    #[cfg(test)]
    ProviderDef {
        name: "fake",
        base_url: Known("https://api.fake.example"),
        apis: &[api("chat", &fake::Fake)],
        auth: None,
        status_page: None,
    },
];

/// A provider from the registry: a small handle, compared by name.
#[derive(Clone, Copy)]
pub struct Provider(&'static ProviderDef);

impl Provider {
    /// Every provider, in registry order.
    pub fn all() -> impl Iterator<Item = Provider> {
        PROVIDERS.iter().map(Provider)
    }

    /// The provider the config calls `name`.
    pub fn from_name(name: &str) -> Option<Provider> {
        Provider::all().find(|p| p.as_str() == name)
    }

    /// The name in the config and the database, e.g. `openai`.
    pub fn as_str(self) -> &'static str {
        self.0.name
    }

    /// What a monitor without `endpoint` talks to, or that it must name one.
    pub fn base_url(self) -> BaseUrl {
        self.0.base_url
    }

    /// How the key is sent for `api` when the monitor sets no `auth`.
    pub fn default_auth(self, api: Api) -> Auth {
        self.0
            .auth
            .clone()
            .unwrap_or_else(|| api.protocol().default_auth())
    }

    /// The public status page and its format, for `official_status = "auto"`.
    pub fn status_page(self) -> Option<(&'static str, StatusFormat)> {
        self.0.status_page
    }

    /// The protocols offered, the default first.
    pub fn apis(self) -> impl Iterator<Item = Api> {
        self.0.apis.iter().map(Api)
    }

    /// The protocol used when the config does not choose one.
    pub fn default_api(self) -> Api {
        self.apis()
            .next()
            .expect("every provider offers an api (checked by the registry tests)")
    }

    /// The protocol this provider offers as `api = "name"`.
    pub fn api(self, name: &str) -> Option<Api> {
        self.apis().find(|a| a.as_str() == name)
    }
}

impl PartialEq for Provider {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Provider {}

impl Hash for Provider {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Provider").field(&self.as_str()).finish()
    }
}

/// One of a provider's protocols, under the `api` name the config uses: a small handle,
/// compared by that name and the protocol's.
#[derive(Clone, Copy)]
pub struct Api(&'static ApiDef);

impl Api {
    /// The name in the config and the database, e.g. `chat`.
    pub fn as_str(self) -> &'static str {
        self.0.name
    }

    pub fn protocol(self) -> &'static dyn Protocol {
        self.0.protocol
    }
}

impl PartialEq for Api {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str() && self.protocol().name() == other.protocol().name()
    }
}

impl Eq for Api {}

impl Hash for Api {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
        self.protocol().name().hash(state);
    }
}

impl fmt::Debug for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Api")
            .field(&self.as_str())
            .field(&self.protocol().name())
            .finish()
    }
}

/// The URL of one request: the monitor's endpoint (`base`, its path without a trailing `/`)
/// joined with the protocol's path the way the SDKs do it (see
/// [`Protocol::base_url_path`]), then the protocol's own query and the monitor's `query`
/// pairs, URL-encoded.
pub fn request_url(
    base: &url::Url,
    protocol: &dyn Protocol,
    query: &[(String, String)],
    model: &str,
    stream: bool,
) -> url::Url {
    let full = protocol.path(model, stream);
    let (path, own_query) = match full.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (full.as_str(), None),
    };
    let prefix = base.path().trim_end_matches('/');
    let rest = if prefix.is_empty() {
        path
    } else {
        path.strip_prefix(protocol.base_url_path()).unwrap_or(path)
    };
    let mut url = base.clone();
    url.set_path(&format!("{prefix}{rest}"));
    url.set_query(own_query);
    url.set_fragment(None);
    if !query.is_empty() {
        let mut pairs = url.query_pairs_mut();
        for (k, v) in query {
            pairs.append_pair(k, v);
        }
    }
    url
}

/// Every `api` name some provider offers, once each, in registry order.
pub fn api_names() -> Vec<&'static str> {
    let mut names = Vec::new();
    for a in Provider::all().flat_map(Provider::apis) {
        if !names.contains(&a.as_str()) {
            names.push(a.as_str());
        }
    }
    names
}

#[cfg(test)]
mod tests;
