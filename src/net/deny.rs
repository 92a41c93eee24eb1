//! The deny table: address ranges a probe must not reach unless the policy allows them.
//!
//! IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`) and NAT64 (`64:ff9b::/96`)
//! addresses are judged by the IPv4 address they embed, so no spelling of 127.0.0.1 slips by.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;

use ipnet::IpNet;

use super::{Blocked, NetworkPolicy};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DenyRule {
    pub net: IpNet,
    pub label: &'static str,
}

const V4: &[(&str, &str)] = &[
    ("0.0.0.0/8", "this-network"),
    ("10.0.0.0/8", "private (RFC 1918)"),
    ("100.64.0.0/10", "carrier-grade NAT"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local / cloud metadata"),
    ("172.16.0.0/12", "private (RFC 1918)"),
    ("192.0.0.0/24", "IETF protocol assignments"),
    ("192.0.2.0/24", "documentation"),
    ("192.88.99.0/24", "6to4 relay anycast"),
    ("192.168.0.0/16", "private (RFC 1918)"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved (incl. broadcast)"),
];

const V6: &[(&str, &str)] = &[
    ("64:ff9b:1::/48", "local-use NAT64"),
    ("2001::/23", "IETF protocol assignments"),
    ("2001:db8::/32", "documentation"),
    ("2002::/16", "6to4"),
    ("3fff::/20", "documentation"),
];

static TABLE: LazyLock<Vec<DenyRule>> = LazyLock::new(|| {
    V4.iter()
        .chain(V6)
        .map(|(net, label)| DenyRule {
            net: net.parse().expect("the deny table's CIDRs are valid"),
            label,
        })
        .collect()
});

/// The rules, for the tests.
#[cfg(test)]
fn table() -> &'static [DenyRule] {
    &TABLE
}

/// The IPv4 address an IPv6 address stands for, if any (mapped, compatible, NAT64).
pub(super) fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = ip.segments();
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(Ipv4Addr::new(
            (s[6] >> 8) as u8,
            s[6] as u8,
            (s[7] >> 8) as u8,
            s[7] as u8,
        ));
    }
    // IPv4-compatible ::a.b.c.d (deprecated, still routable by some stacks); not :: or ::1.
    if s[..6] == [0; 6] && (s[6] != 0 || s[7] > 1) {
        return Some(Ipv4Addr::new(
            (s[6] >> 8) as u8,
            s[6] as u8,
            (s[7] >> 8) as u8,
            s[7] as u8,
        ));
    }
    None
}

/// The rule that denies `ip`, if one does.
pub(crate) fn deny_rule(ip: IpAddr) -> Option<DenyRule> {
    let ip = match ip {
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    };
    if let IpAddr::V6(v6) = ip {
        // Only 2000::/3 is global unicast: everything else (::, ::1, fc00::/7, fe80::/10,
        // ff00::/8, …) is denied.
        if v6.segments()[0] & 0xe000 != 0x2000 && !TABLE.iter().any(|r| r.net.contains(&ip)) {
            return Some(DenyRule {
                net: "::/0".parse().expect("valid"),
                label: "not global unicast (outside 2000::/3)",
            });
        }
    }
    TABLE.iter().copied().find(|r| r.net.contains(&ip))
}

/// Whether the policy lets a request reach `ip`.
pub(crate) fn check_ip(ip: IpAddr, policy: &NetworkPolicy) -> Result<(), Blocked> {
    let Some(rule) = deny_rule(ip) else {
        return Ok(());
    };
    if policy.allow_private {
        return Ok(());
    }
    let embedded = match ip {
        IpAddr::V6(v6) => embedded_v4(v6).map(IpAddr::V4),
        _ => None,
    };
    if policy
        .allow_cidrs
        .iter()
        .any(|c| c.contains(&ip) || embedded.is_some_and(|e| c.contains(&e)))
    {
        return Ok(());
    }
    let hint = if rule.net.prefix_len() == 0 {
        format!("allow_cidrs = [\"{ip}/128\"]")
    } else {
        format!("allow_cidrs = [\"{}\"]", rule.net)
    };
    Err(Blocked(format!(
        "{ip} is {} ({}); allow it with [network] {hint} or allow_private = true",
        rule.label, rule.net
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn denied(s: &str) -> bool {
        deny_rule(s.parse().unwrap()).is_some()
    }

    #[test]
    fn every_row_denies_its_first_and_last_address() {
        for r in table() {
            let first = r.net.network();
            let last = r.net.broadcast();
            assert!(deny_rule(first).is_some(), "{} first", r.net);
            assert!(deny_rule(last).is_some(), "{} last", r.net);
        }
    }

    #[test]
    fn rows_by_example() {
        for ip in [
            "0.1.2.3",
            "10.1.2.3",
            "100.64.0.1",
            "100.127.255.254",
            "127.0.0.1",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "2001::1",
            "2001:db8::1",
            "2002:7f00:1::",
            "3fff::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::1",
            "::127.0.0.1",
            "100::1",
            "4000::1",
        ] {
            assert!(denied(ip), "{ip} should be denied");
        }
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "100.63.255.255",
            "172.32.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2400:cb00::1",
        ] {
            assert!(!denied(ip), "{ip} should be allowed");
        }
    }

    #[test]
    fn policy_allowances() {
        let mut p = NetworkPolicy::default();
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let msg = check_ip(lo, &p).unwrap_err().0;
        assert!(
            msg.contains("loopback")
                && msg.contains("127.0.0.0/8")
                && msg.contains("allow_private"),
            "{msg}"
        );
        p.allow_cidrs = vec!["127.0.0.0/8".parse().unwrap()];
        assert!(check_ip(lo, &p).is_ok());
        assert!(check_ip("::ffff:127.0.0.1".parse().unwrap(), &p).is_ok());
        assert!(check_ip("10.0.0.1".parse().unwrap(), &p).is_err());
        p.allow_private = true;
        assert!(check_ip("10.0.0.1".parse().unwrap(), &p).is_ok());
    }

    proptest! {
        #[test]
        fn v4_mapped_and_nat64_agree(a in any::<u32>(), allow_lo in any::<bool>()) {
            let v4 = Ipv4Addr::from(a);
            let mapped = IpAddr::V6(v4.to_ipv6_mapped());
            let o = v4.octets();
            let nat64 = IpAddr::V6(Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, u16::from_be_bytes([o[0], o[1]]), u16::from_be_bytes([o[2], o[3]])));
            let mut p = NetworkPolicy::default();
            if allow_lo { p.allow_cidrs = vec!["127.0.0.0/8".parse().unwrap()]; }
            let d = check_ip(IpAddr::V4(v4), &p).is_ok();
            prop_assert_eq!(d, check_ip(mapped, &p).is_ok());
            prop_assert_eq!(d, check_ip(nat64, &p).is_ok());
            prop_assert_eq!(deny_rule(IpAddr::V4(v4)).is_some(), deny_rule(mapped).is_some());
        }
    }
}
