//! URL checks on the parsed host (`Url::host()`), never on the raw string: the url crate has
//! already normalised `2130706433`, `0x7f.1`, `%31…`, full-width digits and friends.

use std::net::IpAddr;

use url::{Host, Url};

use super::deny::check_ip;
use super::{Blocked, NetworkPolicy};

/// Names that resolve to the machine itself or to internal infrastructure.
pub(super) fn blocked_name(host: &str) -> Option<&'static str> {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    if h == "localhost" || h.ends_with(".localhost") {
        Some("a loopback name")
    } else if h == "metadata" || h == "metadata.google.internal" || h.ends_with(".internal") {
        Some("an internal or cloud metadata name")
    } else if h.ends_with(".local") || h.ends_with(".localdomain") || h.ends_with(".home.arpa") {
        Some("a local-network name")
    } else {
        None
    }
}

/// A blocked name is allowed with `allow_private`, or (loopback names) when `allow_cidrs`
/// includes 127.0.0.1.
pub(super) fn check_name(host: &str, policy: &NetworkPolicy) -> Result<(), Blocked> {
    let Some(what) = blocked_name(host) else {
        return Ok(());
    };
    if policy.allow_private {
        return Ok(());
    }
    let loopback: IpAddr = [127, 0, 0, 1].into();
    if what == "a loopback name" && policy.allow_cidrs.iter().any(|c| c.contains(&loopback)) {
        return Ok(());
    }
    Err(Blocked(format!(
        "{host} is {what}; allow it with [network] allow_private = true{}",
        if what == "a loopback name" {
            " or allow_cidrs = [\"127.0.0.0/8\"]"
        } else {
            ""
        }
    )))
}

/// Scheme, userinfo, blocked names and IP literals.
pub(crate) fn check_url(url: &Url, policy: &NetworkPolicy) -> Result<(), Blocked> {
    match url.scheme() {
        "https" => {}
        "http" if policy.allow_http => {}
        "http" => {
            return Err(Blocked(
                "plain http is not allowed; use https, or allow it with [network] allow_http = true".to_owned(),
            ));
        }
        other => {
            return Err(Blocked(format!(
                "scheme {other}: is not allowed; only https (and http when allowed)"
            )));
        }
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Blocked(
            "URLs with user:password@ are not allowed".to_owned(),
        ));
    }
    match url.host() {
        None => Err(Blocked("the URL has no host".to_owned())),
        Some(Host::Ipv4(v4)) => check_ip(IpAddr::V4(v4), policy),
        Some(Host::Ipv6(v6)) => check_ip(IpAddr::V6(v6), policy),
        Some(Host::Domain(d)) => check_name(d, policy),
    }
}

/// A bare host (an SMTP server): a blocked name or a denied IP literal, as [`check_url`]
/// judges a URL's host. `[::1]` and `::1` are both IPv6.
pub(crate) fn check_host(host: &str, policy: &NetworkPolicy) -> Result<(), Blocked> {
    match parse_host(host)? {
        Host::Ipv4(v4) => check_ip(IpAddr::V4(v4), policy),
        Host::Ipv6(v6) => check_ip(IpAddr::V6(v6), policy),
        Host::Domain(d) => check_name(&d, policy),
    }
}

/// Whether `host` is on this machine or a private network by its form alone (a loopback or
/// local name, a denied IP literal): what a cleartext protocol may be pointed at.
pub(crate) fn host_is_local(host: &str) -> bool {
    match parse_host(host) {
        Ok(Host::Ipv4(v4)) => super::deny::deny_rule(IpAddr::V4(v4)).is_some(),
        Ok(Host::Ipv6(v6)) => super::deny::deny_rule(IpAddr::V6(v6)).is_some(),
        Ok(Host::Domain(d)) => blocked_name(&d).is_some(),
        Err(_) => false,
    }
}

/// The url crate's host parser (which normalises `0x7f.1` and friends), brackets optional
/// around IPv6.
pub(super) fn parse_host(host: &str) -> Result<Host<String>, Blocked> {
    let h = host.trim();
    let bracketed = if h.contains(':') && !h.starts_with('[') {
        format!("[{h}]")
    } else {
        h.to_owned()
    };
    Host::parse(&bracketed).map_err(|e| Blocked(format!("{host:?} is not a host name ({e})")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> NetworkPolicy {
        NetworkPolicy {
            allow_http: true,
            ..NetworkPolicy::default()
        }
    }

    fn blocked(u: &str) -> bool {
        match Url::parse(u) {
            Ok(url) => check_url(&url, &p()).is_err(),
            Err(_) => true,
        }
    }

    #[test]
    fn odd_spellings_of_private_addresses_are_caught() {
        for u in [
            "http://2130706433/",
            "http://0x7f.1/",
            "http://0177.0.0.1/",
            "http://127.1/",
            "http://%31%32%37.0.0.1/",
            "http://１２７.０.０.１/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::127.0.0.1]/",
            "http://localhost./",
            "http://LOCALHOST/",
            "http://api.localhost/",
            "http://user@169.254.169.254@evil.com/",
            "http://user:pw@example.com/",
            "http://[::1]/",
            "http://169.254.169.254/latest/meta-data/",
            "http://metadata.google.internal/",
            "http://printer.local/",
            "ftp://example.com/",
            "file:///etc/passwd",
            "gopher://example.com/",
        ] {
            assert!(blocked(u), "{u} must be blocked");
        }
        for u in [
            "https://api.openai.com/",
            "http://example.com:8080/",
            "https://[2606:4700::1111]/",
        ] {
            assert!(!blocked(u), "{u} must pass");
        }
    }

    #[test]
    fn http_needs_allow_http_and_messages_say_how() {
        let url = Url::parse("http://example.com/").unwrap();
        let e = check_url(&url, &NetworkPolicy::default()).unwrap_err().0;
        assert!(e.contains("allow_http = true"), "{e}");
        let lo = Url::parse("http://localhost:8080/").unwrap();
        let mut pol = p();
        pol.allow_cidrs = vec!["127.0.0.0/8".parse().unwrap()];
        assert!(check_url(&lo, &pol).is_ok());
        let q = Url::parse("https://10.0.0.1/?key=SECRET").unwrap();
        assert!(!check_url(&q, &p()).unwrap_err().0.contains("SECRET"));
    }
}
