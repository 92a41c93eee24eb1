//! The guarded resolver plugged into the HTTP client: the address that is checked is the
//! address that is connected, so DNS rebinding cannot slip between a check and the connect.
//! It fails closed: one denied address among the answers refuses the whole name.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use tokio::sync::OnceCell;

use super::deny::check_ip;
use super::url_check::check_name;
use super::{Blocked, NetworkPolicy};

/// Where names are resolved.
#[derive(Debug, Clone)]
pub(super) enum Upstream {
    /// /etc/resolv.conf and the hosts file.
    System,
    /// One nameserver (tests, special set-ups).
    Nameserver(SocketAddr),
}

pub(super) struct GuardedResolver {
    policy: NetworkPolicy,
    upstream: Upstream,
    /// Built on first use (inside the runtime), then shared by every lookup.
    inner: Arc<OnceCell<TokioResolver>>,
}

impl GuardedResolver {
    pub(super) fn new(policy: NetworkPolicy, upstream: Upstream) -> Self {
        GuardedResolver {
            policy,
            upstream,
            inner: Arc::new(OnceCell::new()),
        }
    }
}

fn build(upstream: &Upstream) -> Result<TokioResolver, String> {
    let builder = match upstream {
        Upstream::System => match TokioResolver::builder_tokio() {
            Ok(b) => b,
            // No usable /etc/resolv.conf (minimal containers): fall back to defaults.
            Err(_) => TokioResolver::builder_with_config(
                ResolverConfig::default(),
                TokioRuntimeProvider::default(),
            ),
        },
        Upstream::Nameserver(addr) => {
            let mut ns = NameServerConfig::udp(addr.ip());
            for c in &mut ns.connections {
                c.port = addr.port();
            }
            let mut b = TokioResolver::builder_with_config(
                ResolverConfig::from_name_servers(vec![ns]),
                TokioRuntimeProvider::default(),
            );
            let opts: &mut ResolverOpts = b.options_mut();
            opts.use_hosts_file = hickory_resolver::config::ResolveHosts::Never;
            opts.attempts = 1;
            opts.cache_size = 0;
            b
        }
    };
    builder.build().map_err(|e| e.to_string())
}

/// A lookup failure (not a policy refusal): classified as `dns`.
#[derive(Debug, thiserror::Error)]
#[error("DNS lookup of {name} failed: {message}")]
pub(super) struct DnsError {
    pub name: String,
    pub message: String,
}

/// The addresses a client that is not HTTP (SMTP) may connect to for `host`: an IP literal
/// judged by the policy, a name resolved through the guarded resolver (every answer judged,
/// failing closed). Connect only to what this returns, so the checked address is the one
/// connected.
pub(crate) async fn vetted_ips(host: &str, policy: &NetworkPolicy) -> Result<Vec<IpAddr>, String> {
    use url::Host;
    let name = match super::url_check::parse_host(host).map_err(|b| b.0)? {
        Host::Ipv4(v4) => {
            return check_ip(IpAddr::V4(v4), policy)
                .map(|()| vec![IpAddr::V4(v4)])
                .map_err(|b| b.0);
        }
        Host::Ipv6(v6) => {
            return check_ip(IpAddr::V6(v6), policy)
                .map(|()| vec![IpAddr::V6(v6)])
                .map_err(|b| b.0);
        }
        Host::Domain(d) => d,
    };
    // No proxy for SMTP: every name is judged.
    let policy = NetworkPolicy {
        proxy: None,
        ..policy.clone()
    };
    let resolver = GuardedResolver::new(policy, Upstream::System);
    let parsed: Name = name
        .parse()
        .map_err(|e| format!("{name:?} is not a host name ({e})"))?;
    let addrs = resolver.resolve(parsed).await.map_err(|e| e.to_string())?;
    Ok(addrs.map(|a| a.ip()).collect())
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        let upstream = self.upstream.clone();
        let inner = self.inner.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            // The configured proxy is trusted (often on the LAN); targets behind it are still
            // checked by the URL check, and the proxy resolves them itself.
            let is_proxy = policy
                .proxy
                .as_ref()
                .and_then(|p| p.host_str())
                .is_some_and(|p| {
                    p.trim_end_matches('.')
                        .eq_ignore_ascii_case(host.trim_end_matches('.'))
                });
            if !is_proxy {
                check_name(&host, &policy)
                    .map_err(|b| Box::new(b) as Box<dyn std::error::Error + Send + Sync>)?;
            }
            let resolver = inner
                .get_or_try_init(|| async { build(&upstream) })
                .await
                .map_err(|message| {
                    Box::new(DnsError {
                        name: host.clone(),
                        message,
                    }) as Box<dyn std::error::Error + Send + Sync>
                })?;
            let ips: Vec<IpAddr> = resolver
                .lookup_ip(host.as_str())
                .await
                .map_err(|e| {
                    Box::new(DnsError {
                        name: host.clone(),
                        message: e.to_string(),
                    }) as Box<dyn std::error::Error + Send + Sync>
                })?
                .iter()
                .collect();
            if ips.is_empty() {
                return Err(Box::new(DnsError {
                    name: host,
                    message: "no addresses".into(),
                })
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            for ip in ips.iter().filter(|_| !is_proxy) {
                if let Err(Blocked(why)) = check_ip(*ip, &policy) {
                    return Err(Box::new(Blocked(format!("{host} resolves to {why}")))
                        as Box<dyn std::error::Error + Send + Sync>);
                }
            }
            let addrs: Addrs = Box::new(
                ips.into_iter()
                    .map(|ip| SocketAddr::new(ip, 0))
                    .collect::<Vec<_>>()
                    .into_iter(),
            );
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// IP literals and blocked names are judged before any lookup, so no DNS is needed here.
    #[tokio::test]
    async fn vetted_ips_judges_literals_and_local_names_by_the_policy() {
        let strict = NetworkPolicy::default();
        let e = vetted_ips("10.1.2.3", &strict).await.unwrap_err();
        assert!(e.contains("10.0.0.0/8"), "{e}");
        assert!(vetted_ips("localhost", &strict).await.is_err());
        assert!(vetted_ips("[::1]", &strict).await.is_err());
        let lan = NetworkPolicy {
            allow_cidrs: vec!["10.0.0.0/8".parse().unwrap()],
            ..NetworkPolicy::default()
        };
        assert_eq!(
            vetted_ips("10.1.2.3", &lan).await.unwrap(),
            vec![IpAddr::from([10, 1, 2, 3])]
        );
        assert_eq!(
            vetted_ips("0x0a.1.2.3", &lan).await.unwrap(),
            vec![IpAddr::from([10, 1, 2, 3])],
            "the url crate's normalisation applies"
        );
        assert!(vetted_ips("8.8.8.8", &strict).await.is_ok());
    }
}
