//! The value rules of the config, as plain functions over strings: what an endpoint, a model
//! name, a header or a CIDR must look like. Each returns a message that says what is wrong
//! and what is allowed; the lists of providers and `api` names in messages come from the
//! registry (`crate::provider`), which also owns auth headers and reserved body keys.

use std::net::IpAddr;

use url::Url;

use crate::provider::{self, Auth, Provider};

/// Longest model name accepted (real ones are far shorter; this stops pasted garbage).
pub(super) const MAX_MODEL_CHARS: usize = 256;
/// Most extra models per monitor: each is a paid request per run.
pub(super) const MAX_EXTRA_MODELS: usize = 16;

/// Headers the HTTP client owns (hop-by-hop or framing); setting them would break requests.
const MANAGED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
    "proxy-connection",
];

/// Parses an endpoint: a base URL as the provider's SDK takes it (`https://host[:port]` and
/// an optional path such as `/api/v1`), returned with trailing slashes removed (`/` alone
/// for an origin) so that `https://h` and `https://h/` compare equal. What the `url` crate
/// would quietly rewrite (backslashes, dot segments, whitespace) is refused here on the raw
/// text, so the URL chanmon calls is the one the user wrote.
pub(super) fn parse_endpoint(s: &str) -> Result<Url, String> {
    const ALLOWED: &str = "use the base URL your SDK uses, e.g. https://api.openai.com or https://openrouter.ai/api/v1";
    if let Some(c) = s.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "the endpoint contains whitespace or a control character ({c:?}); {ALLOWED}"
        ));
    }
    if s.contains('\\') {
        return Err(format!(
            "the endpoint contains a backslash, which URLs treat as `/`; {ALLOWED}"
        ));
    }
    let mut url = Url::parse(s).map_err(|e| format!("\"{s}\" is not a URL ({e}); {ALLOWED}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "scheme `{}` is not supported; {ALLOWED}",
            url.scheme()
        ));
    }
    let after_scheme = s.split_once("://").map_or("", |(_, rest)| rest);
    let authority = after_scheme
        .split(['/', '?', '#'])
        .next()
        .unwrap_or_default();
    if authority.contains('@') || !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "the endpoint must not contain user:password@; put credentials in api_key or headers; {ALLOWED}"
        ));
    }
    if url.host().is_none() {
        return Err(format!("\"{s}\" has no host; {ALLOWED}"));
    }
    if url.query().is_some() || s.contains('?') {
        return Err(format!(
            "the endpoint must not have a query (`?…`); put parameters such as api-version in a `query` table; {ALLOWED}"
        ));
    }
    if url.fragment().is_some() || s.contains('#') {
        return Err(format!(
            "the endpoint must not have a fragment (`#…`); {ALLOWED}"
        ));
    }
    let raw_path = &after_scheme[authority.len()..];
    check_endpoint_path(raw_path)?;
    let trimmed = raw_path.trim_end_matches('/');
    url.set_path(if trimmed.is_empty() { "/" } else { trimmed });
    Ok(url)
}

/// The path of an endpoint as written: plain segments only, no dot segments, no empty ones,
/// no escapes that a server could decode into `/`, `\`, `.` or a control character.
fn check_endpoint_path(raw: &str) -> Result<(), String> {
    let is_pchar = |c: char| c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=:@%".contains(c);
    if let Some(c) = raw.chars().find(|&c| c != '/' && !is_pchar(c)) {
        let hint = if matches!(c, '{' | '}' | '<' | '>') {
            " (replace the placeholder with your own value)"
        } else {
            ""
        };
        return Err(format!(
            "the endpoint path `{raw}` contains `{c}`{hint}; write it as your SDK's base URL, with letters, digits and -._~ in each segment"
        ));
    }
    let segments: Vec<&str> = raw.trim_end_matches('/').split('/').skip(1).collect();
    for seg in segments {
        if seg.is_empty() {
            return Err(format!(
                "the endpoint path `{raw}` has an empty segment (`//`)"
            ));
        }
        if seg == "." || seg == ".." {
            return Err(format!(
                "the endpoint path `{raw}` has a `{seg}` segment; write the path it means"
            ));
        }
        let bytes = seg.as_bytes();
        for (i, _) in seg.match_indices('%') {
            let decoded = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("the endpoint path `{raw}` has a bad %-escape"))?;
            if matches!(decoded, b'/' | b'\\' | b'.') || decoded.is_ascii_control() {
                return Err(format!(
                    "the endpoint path `{raw}` hides `{}` in a %-escape; write the path plainly",
                    char::from(decoded).escape_default()
                ));
            }
        }
    }
    Ok(())
}

/// Query parameter names that carry credentials: refused in `query`, because a query string
/// ends up in logs and proxies (and chanmon prints the endpoint). Keys go in `api_key`,
/// other secrets in `headers` (sealed at rest).
const SECRET_QUERY_WORDS: &[&str] = &[
    "key",
    "token",
    "secret",
    "signature",
    "password",
    "passwd",
    "credential",
    "auth",
    "session",
];
const SECRET_QUERY_NAMES: &[&str] = &["sig", "pwd", "pass", "code", "jwt", "sas", "se", "sp", "sv"];

/// A `query` parameter name: URL-safe, and not one that looks like a credential.
pub(super) fn check_query_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c))
    {
        return Err(format!(
            "query parameter name \"{name}\" must be letters, digits and -._~ (e.g. \"api-version\")"
        ));
    }
    let lower = name.to_ascii_lowercase();
    let squashed: String = lower
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    if SECRET_QUERY_WORDS.iter().any(|w| squashed.contains(w))
        || SECRET_QUERY_NAMES.contains(&squashed.as_str())
    {
        return Err(format!(
            "query parameter \"{name}\" looks like a credential, and a query string is not secret (it shows in logs and proxies); send the key with api_key (and `auth` to choose its header) or a secret header in `headers`"
        ));
    }
    Ok(())
}

/// A `query` value: one line, at most 1024 characters (it is URL-encoded when sent).
pub(super) fn check_query_value(v: &str) -> Result<(), String> {
    if v.chars().any(char::is_control) {
        return Err("the value contains control characters".into());
    }
    if v.chars().count() > 1024 {
        return Err("the value is longer than 1024 characters".into());
    }
    Ok(())
}

/// The auth styles by name; anything else must be a header name.
const AUTH_STYLES: &[(&str, Auth)] = &[
    ("bearer", Auth::Bearer),
    ("api-key", Auth::API_KEY),
    ("x-api-key", Auth::X_API_KEY),
    ("x-goog-api-key", Auth::X_GOOG_API_KEY),
];
/// Words that name a way of authenticating chanmon does not have, rather than a header.
const NOT_AUTH_HEADERS: &[&str] = &[
    "basic",
    "digest",
    "oauth",
    "oauth2",
    "query",
    "none",
    "header",
    "key",
    "token",
    "bearer-token",
    "apikey",
    "api_key",
    "url",
    "ntlm",
    "negotiate",
    "aws",
    "sigv4",
];
/// Headers the probe sets itself: they cannot carry the key.
const PROBE_HEADERS: &[&str] = &["accept", "content-type", "user-agent"];

/// `auth = "…"`: a style by name, or the name of the header that carries the key as it is.
pub(super) fn parse_auth(s: &str) -> Result<Auth, String> {
    let allowed = format!(
        "allowed: {}, or the name of a header that carries the key as it is (e.g. \"x-relay-key\")",
        AUTH_STYLES
            .iter()
            .map(|(n, _)| *n)
            .collect::<Vec<_>>()
            .join(", ")
    );
    let lower = s.trim().to_ascii_lowercase();
    if let Some((_, a)) = AUTH_STYLES.iter().find(|(n, _)| *n == lower) {
        return Ok(a.clone());
    }
    if NOT_AUTH_HEADERS.contains(&lower.as_str()) {
        return Err(format!("unknown auth style \"{s}\"; {allowed}"));
    }
    let name =
        check_header_name(s.trim()).map_err(|e| format!("unknown auth style: {e}; {allowed}"))?;
    if PROBE_HEADERS.contains(&name.as_str()) {
        return Err(format!(
            "header `{name}` is set by the probe and cannot carry the key; {allowed}"
        ));
    }
    if name == "authorization" {
        // The raw key in `Authorization` (no `Bearer `) is a real relay style; keep it.
        return Ok(Auth::Header("authorization".into()));
    }
    Ok(Auth::Header(name.into()))
}

/// A model name as the provider would accept it.
pub(super) fn check_model(s: &str) -> Result<(), String> {
    if s.trim().is_empty() {
        return Err(
            "the model name is empty; write the provider's model id, e.g. \"gpt-4o-mini\"".into(),
        );
    }
    if s.trim() != s {
        return Err(format!("model \"{s}\" has leading or trailing spaces"));
    }
    if s.chars().any(char::is_control) {
        return Err("the model name contains control characters".into());
    }
    let n = s.chars().count();
    if n > MAX_MODEL_CHARS {
        return Err(format!(
            "the model name is {n} characters long; at most {MAX_MODEL_CHARS} are allowed"
        ));
    }
    Ok(())
}

/// A free-text label (name, group): non-empty, one line.
pub(super) fn check_label(s: &str, what: &str) -> Result<(), String> {
    if s.trim().is_empty() {
        return Err(format!("{what} is empty; leave it out or write some text"));
    }
    if s.chars().any(char::is_control) {
        return Err(format!(
            "{what} contains control characters (write it on one line)"
        ));
    }
    Ok(())
}

/// Checks a header name and returns it in lower case.
pub(super) fn check_header_name(name: &str) -> Result<String, String> {
    // RFC 7230 token: 1*tchar.
    let is_tchar = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || !name.chars().all(is_tchar) {
        return Err(format!(
            "\"{name}\" is not a valid header name (RFC 7230 token: letters, digits and !#$%&'*+-.^_`|~)"
        ));
    }
    let lower = name.to_ascii_lowercase();
    if MANAGED_HEADERS.contains(&lower.as_str()) {
        return Err(format!(
            "header `{lower}` is managed by the HTTP client and cannot be set; not allowed: {}",
            MANAGED_HEADERS.join(", ")
        ));
    }
    Ok(lower)
}

/// A header value must stay one header: no CR, LF, NUL or other control characters.
pub(super) fn check_header_value(v: &str) -> Result<(), String> {
    if v.chars().any(|c| c.is_control() && c != '\t') {
        return Err(
            "the header value contains control characters (CR, LF, NUL…), which would split or corrupt the request"
                .into(),
        );
    }
    Ok(())
}

/// Every provider, for messages: `openai, anthropic, gemini`.
pub(super) fn provider_list() -> String {
    Provider::all()
        .map(Provider::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every provider as a choice: `"openai", "anthropic" or "gemini"`.
pub(super) fn provider_choice() -> String {
    quoted_choice(Provider::all())
}

/// Every `api` name, for messages; a name that not every provider offers says which do:
/// `chat, responses (openai only)`.
pub(super) fn api_list() -> String {
    let everyone = Provider::all().count();
    provider::api_names()
        .into_iter()
        .map(|name| {
            let offering: Vec<&str> = offering(name).map(Provider::as_str).collect();
            if offering.len() == everyone {
                name.to_owned()
            } else {
                format!("{name} ({} only)", offering.join(", "))
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The providers offering `api = "name"` as a choice: `"openai"`.
pub(super) fn providers_with_api(name: &str) -> String {
    quoted_choice(offering(name))
}

fn offering(api: &str) -> impl Iterator<Item = Provider> + '_ {
    Provider::all().filter(move |p| p.api(api).is_some())
}

/// `"a"`, `"a" or "b"`, `"a", "b" or "c"`.
fn quoted_choice(items: impl Iterator<Item = Provider>) -> String {
    let quoted: Vec<String> = items.map(|p| format!("\"{p}\"")).collect();
    match quoted.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// A CIDR (`10.0.0.0/8`, `fd00::/8`) or a bare address (`/32` or `/128`). Host bits are
/// cleared, so `10.1.2.3/8` means `10.0.0.0/8`.
pub(super) fn parse_cidr(s: &str) -> Result<ipnet::IpNet, String> {
    let t = s.trim();
    if let Ok(net) = t.parse::<ipnet::IpNet>() {
        return Ok(net.trunc());
    }
    if let Ok(ip) = t.parse::<IpAddr>() {
        return Ok(ipnet::IpNet::from(ip));
    }
    Err(format!(
        "\"{s}\" is not a CIDR; write a network like \"127.0.0.0/8\" or \"fd00::/8\", or a single address like \"192.168.1.10\""
    ))
}

/// A proxy URL: `http://`, `https://` or `socks5://`, with a host and nothing after it.
pub(super) fn parse_proxy(s: &str) -> Result<Url, String> {
    const ALLOWED: &str =
        "write it like \"http://proxy.internal:3128\" (schemes: http, https, socks5)";
    let url = Url::parse(s.trim()).map_err(|e| format!("\"{s}\" is not a URL ({e}); {ALLOWED}"))?;
    if !matches!(url.scheme(), "http" | "https" | "socks5") {
        return Err(format!(
            "proxy scheme `{}` is not supported; {ALLOWED}",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("the proxy URL has no host; {ALLOWED}"));
    }
    if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "the proxy URL must not have a path, query or fragment; {ALLOWED}"
        ));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_base_urls_and_normalised() {
        let a = parse_endpoint("https://api.openai.com").unwrap();
        let b = parse_endpoint("https://api.openai.com/").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.as_str(), "https://api.openai.com/");
        assert!(parse_endpoint("http://127.0.0.1:8080").is_ok());
        assert!(parse_endpoint("https://API.Example.COM:8443/").is_ok());
        for (input, want) in [
            (
                "https://openrouter.ai/api/v1",
                "https://openrouter.ai/api/v1",
            ),
            (
                "https://openrouter.ai/api/v1/",
                "https://openrouter.ai/api/v1",
            ),
            ("https://h/a//", "https://h/a"),
            (
                "https://gateway.ai.cloudflare.com/v1/acc-1/gw_2/openai",
                "https://gateway.ai.cloudflare.com/v1/acc-1/gw_2/openai",
            ),
            ("https://h/v1beta/openai", "https://h/v1beta/openai"),
            ("https://h/a%20b", "https://h/a%20b"),
        ] {
            assert_eq!(parse_endpoint(input).unwrap().as_str(), want, "{input}");
        }

        let cases = [
            ("https://h/a/../v1", "`..` segment"),
            ("https://h/./v1", "`.` segment"),
            ("https://h/a/%2e%2e/v1", "%-escape"),
            ("https://h/a/.%2E/v1", "%-escape"),
            ("https://h/a%2fb", "%-escape"),
            ("https://h/a%5Cb", "%-escape"),
            ("https://h/a%00b", "%-escape"),
            ("https://h/a%zz", "bad %-escape"),
            ("https://h//v1", "empty segment"),
            ("https://h/v1\\..\\x", "backslash"),
            ("https://evil.com\\@good.com/", "backslash"),
            ("https://h/v 1", "whitespace"),
            (" https://h/", "whitespace"),
            ("https://h/v1\t", "whitespace"),
            ("https://h/v1/{account}/x", "placeholder"),
            ("https://h/v1/\u{e9}", "contains"),
            ("https://@h/", "user:password@"),
            ("https://h/v1?api-version=1", "query"),
            ("https://h/?a=1", "query"),
            ("https://h/?", "query"),
            ("https://h/#x", "fragment"),
            ("https://user:pw@h/", "user:password@"),
            ("https://user@h/", "user:password@"),
            ("ftp://h/", "scheme `ftp`"),
            ("api.openai.com", "not a URL"),
            ("https://", "not a URL"),
            ("", "not a URL"),
            ("javascript:alert(1)", "scheme"),
            ("file:///etc/passwd", "scheme"),
        ];
        for (input, want) in cases {
            let err = parse_endpoint(input).unwrap_err();
            assert!(err.contains(want), "{input}: {err}");
        }
    }

    #[test]
    fn query_names_that_look_like_credentials_are_refused() {
        for good in ["api-version", "api_version", "model-family", "region", "v"] {
            assert!(check_query_name(good).is_ok(), "{good}");
        }
        for bad in [
            "key",
            "KEY",
            "api_key",
            "api-key",
            "apiKey",
            "token",
            "access_token",
            "Secret",
            "client_secret",
            "signature",
            "sig",
            "X-Amz-Signature",
            "password",
            "auth",
            "code",
        ] {
            let e = check_query_name(bad).unwrap_err();
            assert!(e.contains("looks like a credential"), "{bad}: {e}");
        }
        for bad in ["", "a b", "a=b", "a&b", "é"] {
            assert!(
                check_query_name(bad).unwrap_err().contains("letters"),
                "{bad}"
            );
        }
        assert!(check_query_value("2024-10-21").is_ok());
        assert!(check_query_value("a\nb").is_err());
        assert!(check_query_value(&"x".repeat(1025)).is_err());
    }

    #[test]
    fn auth_styles() {
        assert_eq!(parse_auth("bearer").unwrap(), Auth::Bearer);
        assert_eq!(parse_auth("Bearer").unwrap(), Auth::Bearer);
        assert_eq!(parse_auth("api-key").unwrap(), Auth::API_KEY);
        assert_eq!(parse_auth("x-api-key").unwrap(), Auth::X_API_KEY);
        assert_eq!(parse_auth("x-goog-api-key").unwrap(), Auth::X_GOOG_API_KEY);
        assert_eq!(
            parse_auth("X-Relay-Key").unwrap(),
            Auth::Header("x-relay-key".into())
        );
        assert_eq!(parse_auth("authorization").unwrap().header("k").1, "k");
        for bad in ["basic", "OAuth", "query", "none", ""] {
            let e = parse_auth(bad).unwrap_err();
            assert!(
                e.contains("unknown auth style") && e.contains("allowed: bearer"),
                "{bad}: {e}"
            );
        }
        assert!(parse_auth("x relay").unwrap_err().contains("RFC 7230"));
        assert!(
            parse_auth("content-type")
                .unwrap_err()
                .contains("set by the probe")
        );
        assert!(parse_auth("host").unwrap_err().contains("managed"));
    }

    #[test]
    fn model_names() {
        assert!(check_model("gpt-4o-mini").is_ok());
        assert!(check_model("models/gemini-2.5-flash").is_ok());
        assert!(check_model("").unwrap_err().contains("empty"));
        assert!(check_model("   ").unwrap_err().contains("empty"));
        assert!(check_model(" gpt").unwrap_err().contains("spaces"));
        assert!(check_model("a\u{7}b").unwrap_err().contains("control"));
        assert!(check_model(&"m".repeat(256)).is_ok());
        assert!(check_model(&"m".repeat(257)).unwrap_err().contains("257"));
    }

    #[test]
    fn header_names_and_values() {
        assert_eq!(check_header_name("X-Title").unwrap(), "x-title");
        assert_eq!(check_header_name("HTTP-Referer").unwrap(), "http-referer");
        for bad in ["", "a b", "x:y", "é", "a\nb", "(x)"] {
            assert!(
                check_header_name(bad).unwrap_err().contains("RFC 7230"),
                "{bad}"
            );
        }
        for managed in [
            "Host",
            "content-length",
            "Transfer-Encoding",
            "connection",
            "TE",
            "upgrade",
        ] {
            assert!(
                check_header_name(managed).unwrap_err().contains("managed"),
                "{managed}"
            );
        }
        assert!(check_header_value("Bearer x\ty").is_ok());
        for bad in ["a\r\nb", "a\nb", "a\0b"] {
            assert!(check_header_value(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn lists_for_messages_come_from_the_registry() {
        // The built-in providers come first; test builds add the fake one after them.
        assert!(provider_list().starts_with("openai, anthropic, gemini"));
        assert!(provider_choice().starts_with("\"openai\", \"anthropic\""));
        assert!(provider_choice().contains(" or \""));
        assert_eq!(
            api_list(),
            "chat, responses (openai, groq, xai, moonshot, azure only)"
        );
        assert_eq!(
            providers_with_api("responses"),
            "\"openai\", \"groq\", \"xai\", \"moonshot\" or \"azure\""
        );
        assert_eq!(providers_with_api("nothing"), "");
    }

    #[test]
    fn cidrs_and_bare_addresses() {
        assert_eq!(
            parse_cidr("127.0.0.0/8").unwrap().to_string(),
            "127.0.0.0/8"
        );
        assert_eq!(parse_cidr("10.1.2.3/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(
            parse_cidr("192.168.1.10").unwrap().to_string(),
            "192.168.1.10/32"
        );
        assert_eq!(parse_cidr("::1").unwrap().to_string(), "::1/128");
        assert_eq!(parse_cidr("fd00::/8").unwrap().to_string(), "fd00::/8");
        for bad in ["", "10.0.0.0/33", "localhost", "10.0.0/8"] {
            assert!(parse_cidr(bad).unwrap_err().contains("not a CIDR"), "{bad}");
        }
    }

    #[test]
    fn proxies() {
        assert!(parse_proxy("http://proxy:3128").is_ok());
        assert!(parse_proxy("socks5://user:pw@proxy:1080").is_ok());
        assert!(parse_proxy("https://proxy/").is_ok());
        assert!(parse_proxy("ftp://proxy").unwrap_err().contains("scheme"));
        assert!(parse_proxy("http://proxy/x").unwrap_err().contains("path"));
        assert!(parse_proxy("proxy:3128").is_err());
        assert!(parse_proxy("socks5://").is_err());
    }
}
