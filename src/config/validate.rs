//! The value rules of the config, as plain functions over strings: what an endpoint, a model
//! name, a header or a CIDR must look like. Each returns a message that says what is wrong
//! and what is allowed; the lists of providers and `api` names in messages come from the
//! registry (`crate::provider`), which also owns auth headers and reserved body keys.

use std::net::IpAddr;

use url::Url;

use crate::provider::{self, Provider};

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

/// Parses an endpoint and insists on a bare origin (`scheme://host[:port]`), returned with
/// the path `/` so that `https://h` and `https://h/` compare equal.
pub(super) fn parse_endpoint(s: &str) -> Result<Url, String> {
    const ALLOWED: &str =
        "use an origin such as https://api.openai.com (chanmon adds the API paths itself)";
    let url = Url::parse(s.trim()).map_err(|e| format!("\"{s}\" is not a URL ({e}); {ALLOWED}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "scheme `{}` is not supported; {ALLOWED}",
            url.scheme()
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "the endpoint must not contain user:password@; put credentials in api_key or headers; {ALLOWED}"
        ));
    }
    if url.host().is_none() {
        return Err(format!("\"{s}\" has no host; {ALLOWED}"));
    }
    if url.path() != "/" {
        return Err(format!(
            "the endpoint has the path `{}`; {ALLOWED}",
            url.path()
        ));
    }
    if url.query().is_some() {
        return Err(format!(
            "the endpoint must not have a query (`?…`); {ALLOWED}"
        ));
    }
    if url.fragment().is_some() {
        return Err(format!(
            "the endpoint must not have a fragment (`#…`); {ALLOWED}"
        ));
    }
    Ok(url)
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
    fn endpoints_are_origins_and_normalised() {
        let a = parse_endpoint("https://api.openai.com").unwrap();
        let b = parse_endpoint("https://api.openai.com/").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.as_str(), "https://api.openai.com/");
        assert!(parse_endpoint("http://127.0.0.1:8080").is_ok());
        assert!(parse_endpoint("https://API.Example.COM:8443/").is_ok());

        let cases = [
            ("https://api.openai.com/v1", "path `/v1`"),
            ("https://h/?a=1", "query"),
            ("https://h/?", "query"),
            ("https://h/#x", "fragment"),
            ("https://user:pw@h/", "user:password@"),
            ("https://user@h/", "user:password@"),
            ("ftp://h/", "scheme `ftp`"),
            ("api.openai.com", "not a URL"),
            ("https://", "not a URL"),
            ("", "not a URL"),
        ];
        for (input, want) in cases {
            let err = parse_endpoint(input).unwrap_err();
            assert!(err.contains(want), "{input}: {err}");
        }
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
        assert_eq!(api_list(), "chat, responses (openai only)");
        assert_eq!(providers_with_api("responses"), "\"openai\"");
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
