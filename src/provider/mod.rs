//! The provider registry: every provider chanmon knows, the protocols it speaks and its
//! defaults. Config validation and the probe both read it; nothing else lists providers.
//!
//! Two words, kept apart. A *protocol* is a wire format with its own strategy (openai chat,
//! openai responses, anthropic, gemini): one file here implements [`Protocol`] and owns
//! everything about it: auth headers, reserved body keys, the request, reply and SSE parsing,
//! its own error classification. A *provider* is what the config names (`provider =
//! "openai"`): a default origin and the protocols it offers under the `api` names the config
//! uses, the first being the default.
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

pub use protocol::{Piece, Protocol, Usage};

/// One provider as the config names it.
struct ProviderDef {
    /// `provider = "…"` in the config; stored in the database.
    name: &'static str,
    /// The origin used when a monitor has no `endpoint`.
    origin: &'static str,
    /// The protocols offered, by `api` name; the first is the default. Never empty.
    apis: &'static [ApiDef],
    /// The provider's public status page (`official_status = "auto"`); `None` when it has none.
    status_page: Option<(&'static str, StatusFormat)>,
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

/// The registry. Order matters for messages: it is the order in which providers are listed.
static PROVIDERS: &[ProviderDef] = &[
    ProviderDef {
        name: "openai",
        origin: "https://api.openai.com",
        apis: &[
            api("chat", &openai_chat::OpenAiChat),
            api("responses", &openai_responses::OpenAiResponses),
        ],
        status_page: Some((
            "https://status.openai.com/api/v2/summary.json",
            StatusFormat::Statuspage,
        )),
    },
    ProviderDef {
        name: "anthropic",
        origin: "https://api.anthropic.com",
        apis: &[api("chat", &anthropic::Anthropic)],
        status_page: Some((
            "https://status.anthropic.com/api/v2/summary.json",
            StatusFormat::Statuspage,
        )),
    },
    ProviderDef {
        name: "gemini",
        origin: "https://generativelanguage.googleapis.com",
        apis: &[api("chat", &gemini::Gemini)],
        status_page: Some((
            "https://status.cloud.google.com/incidents.json",
            StatusFormat::GoogleIncidents,
        )),
    },
    #[cfg(test)]
    ProviderDef {
        name: "fake",
        origin: "https://api.fake.example",
        apis: &[api("chat", &fake::Fake)],
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

    /// The public origin, used when a monitor leaves `endpoint` out.
    pub fn origin(self) -> &'static str {
        self.0.origin
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
