//! Egress policy: which hosts a plugin may reach, and which addresses are
//! refused whatever the grant says.
//!
//! Two independent checks guard every outbound connection:
//! 1. the **grant**: the URL's host must match a pattern granted to the
//!    destination (the plugin manifest's `allowed-hosts`, plus the hosts of
//!    the destination's endpoint fields, which the admin configured);
//! 2. the **address policy**: every resolved address (and every IP literal)
//!    that is loopback, private, link-local, shared, multicast, a tunnel
//!    to an IPv4 address (6to4, Teredo) or otherwise not globally routable
//!    is refused unless the gateway's config allows its
//!    network explicitly (e.g. `127.0.0.1/32` for a local receiver).
//!
//! The address check runs inside the HTTP client's resolver (`http`), so it
//! applies to the addresses actually connected to, not to an earlier lookup.
//! The SMTP client (`smtp`) resolves once, checks every address and connects
//! to a checked address, so the same holds for mail.

pub mod http;
pub mod smtp;
pub mod wire;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use ipnet::IpNet;

/// A host pattern: `host`, `*.domain`, or `*`, each optionally with `:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    host: HostMatch,
    port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostMatch {
    Any,
    Exact(String),
    /// Matches subdomains of the stored suffix (stored with a leading dot).
    Suffix(String),
}

/// Why a host pattern did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid host pattern {pattern:?}: {reason} (expected `host`, `*.domain` or `*`, optionally with `:port`)"
)]
pub struct HostPatternError {
    pattern: String,
    reason: &'static str,
}

impl FromStr for HostPattern {
    type Err = HostPatternError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| HostPatternError {
            pattern: s.to_owned(),
            reason,
        };
        let s_trim = s.trim();
        if s_trim.contains("://") || s_trim.contains('/') {
            return Err(err("a pattern names a host, not a URL"));
        }
        let (host, port) = split_host_port(s_trim).ok_or_else(|| err("bad port"))?;
        let host = normal_host(host);
        let matcher = if host == "*" {
            HostMatch::Any
        } else if let Some(domain) = host.strip_prefix("*.") {
            if domain.is_empty() || domain.contains('*') {
                return Err(err("a wildcard must be a whole leading label"));
            }
            HostMatch::Suffix(format!(".{domain}"))
        } else if host.is_empty() {
            return Err(err("empty host"));
        } else if host.contains('*') {
            return Err(err("a wildcard must be a whole leading label"));
        } else {
            HostMatch::Exact(host)
        };
        Ok(HostPattern {
            host: matcher,
            port,
        })
    }
}

/// Splits `host:port`, leaving IPv6 literals (`[::1]:80`, bare `::1`) intact.
fn split_host_port(s: &str) -> Option<(&str, Option<u16>)> {
    if let Some(rest) = s.strip_prefix('[') {
        let end = rest.find(']')?;
        let after = &rest[end + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse().ok()?),
            None if after.is_empty() => None,
            None => return None,
        };
        return Some((&s[..end + 2], port));
    }
    if s.matches(':').count() == 1 {
        let (host, port) = s.split_once(':')?;
        return Some((host, Some(port.parse().ok()?)));
    }
    Some((s, None))
}

/// A host as patterns and URLs are compared: without IPv6 brackets, in
/// lower case, and without the trailing dot of a fully qualified name
/// (`example.com.` is `example.com`), in patterns and requests alike.
fn normal_host(host: &str) -> String {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match host.strip_suffix('.') {
        // `*.` and `a..` stay as written, to be refused or never match.
        Some(name) if !name.is_empty() && !name.ends_with(['.', '*']) => name,
        _ => host,
    }
    .to_ascii_lowercase()
}

impl HostPattern {
    /// The pattern for exactly this host and port.
    pub fn exact(host: &str, port: Option<u16>) -> Self {
        HostPattern {
            host: HostMatch::Exact(normal_host(host)),
            port,
        }
    }

    /// Does `host:port` match?
    pub fn matches(&self, host: &str, port: u16) -> bool {
        if self.port.is_some_and(|p| p != port) {
            return false;
        }
        let host = normal_host(host);
        match &self.host {
            HostMatch::Any => true,
            HostMatch::Exact(h) => *h == host,
            HostMatch::Suffix(suffix) => host.ends_with(suffix.as_str()),
        }
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            HostMatch::Any => f.write_str("*")?,
            HostMatch::Exact(h) if h.contains(':') => write!(f, "[{h}]")?,
            HostMatch::Exact(h) => f.write_str(h)?,
            HostMatch::Suffix(s) => write!(f, "*{s}")?,
        }
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}

/// The hosts one destination of one plugin may reach.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grant {
    patterns: Vec<HostPattern>,
}

impl Grant {
    /// A grant of exactly these patterns.
    pub fn new(patterns: Vec<HostPattern>) -> Self {
        Grant { patterns }
    }

    /// Does the grant cover `host:port`?
    pub fn allows(&self, host: &str, port: u16) -> bool {
        self.patterns.iter().any(|p| p.matches(host, port))
    }

    /// The granted patterns.
    pub fn patterns(&self) -> &[HostPattern] {
        &self.patterns
    }
}

/// The gateway-wide address policy.
#[derive(Debug, Clone, Default)]
pub struct EgressPolicy {
    /// Networks allowed although they are not public (e.g. `127.0.0.1/32`).
    pub allow_private: Vec<IpNet>,
}

impl EgressPolicy {
    /// A policy that refuses every non-public address.
    pub fn strict() -> Self {
        EgressPolicy::default()
    }

    /// A policy allowing these networks despite being private.
    pub fn allowing(networks: impl IntoIterator<Item = IpNet>) -> Self {
        EgressPolicy {
            allow_private: networks.into_iter().collect(),
        }
    }

    /// May the gateway connect to `ip`?
    pub fn permits(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        is_public(ip) || self.allow_private.iter().any(|net| net.contains(&ip))
    }
}

/// IPv4-mapped and IPv4-compatible IPv6 addresses are checked as IPv4, so
/// `::ffff:127.0.0.1` cannot slip past a loopback check.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// Globally routable unicast, by the IANA special-purpose registries.
pub fn is_public(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0                                   // 0.0.0.0/8 "this network"
        || (a == 100 && (64..128).contains(&b))     // 100.64.0.0/10 shared (CGNAT)
        || (a == 192 && b == 0 && c == 0)           // 192.0.0.0/24 protocol assignments
        || (a == 198 && (b == 18 || b == 19))       // 198.18.0.0/15 benchmarking
        || a >= 240) // 240.0.0.0/4 reserved
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00      // fc00::/7 unique local
        || (s[0] & 0xffc0) == 0xfe80      // fe80::/10 link-local
        || (s[0] & 0xffc0) == 0xfec0      // fec0::/10 site-local (deprecated)
        || (s[0] == 0x2001 && s[1] == 0x0db8) // 2001:db8::/32 documentation
        || (s[0] == 0x0064 && s[1] == 0xff9b) // 64:ff9b::/96 NAT64 can reach v4 private space
        || s[0] == 0x2002                      // 2002::/16 6to4 embeds any IPv4 address
        || (s[0] == 0x2001 && s[1] == 0)       // 2001::/32 Teredo embeds one too
        || (s[0] == 0 && s[1] == 0 && s[2] == 0 && s[3] == 0 && s[4] == 0 && s[5] == 0)) // ::/96 IPv4-compatible
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> HostPattern {
        s.parse().unwrap()
    }

    #[test]
    fn patterns_match_hosts_and_ports() {
        assert!(p("oapi.dingtalk.com").matches("OAPI.dingtalk.com", 443));
        assert!(!p("oapi.dingtalk.com").matches("evil-oapi.dingtalk.com", 443));
        assert!(p("*.feishu.cn").matches("open.feishu.cn", 443));
        assert!(!p("*.feishu.cn").matches("feishu.cn.evil.com", 443));
        assert!(!p("*.feishu.cn").matches("feishu.cn", 443));
        assert!(p("127.0.0.1:8080").matches("127.0.0.1", 8080));
        assert!(!p("127.0.0.1:8080").matches("127.0.0.1", 8081));
        assert!(p("[::1]:80").matches("::1", 80));
        assert!(p("*").matches("anything.example", 1));
        assert_eq!(p("*.Example.com:8443").to_string(), "*.example.com:8443");
    }

    #[test]
    fn bad_patterns_say_why() {
        for bad in ["https://x.com", "a.*.com", "*.", "host:notaport", "", "x/y"] {
            let err = bad.parse::<HostPattern>().unwrap_err();
            assert!(err.to_string().contains("expected `host`"), "{bad}: {err}");
        }
    }

    #[test]
    fn private_addresses_are_refused_unless_allowed() {
        let strict = EgressPolicy::strict();
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(!strict.permits(ip), "{ip} must be refused");
        }
        for ip in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"] {
            assert!(strict.permits(ip.parse().unwrap()), "{ip} is public");
        }
        let local = EgressPolicy::allowing(["127.0.0.1/32".parse().unwrap()]);
        assert!(local.permits("127.0.0.1".parse().unwrap()));
        assert!(local.permits("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!local.permits("127.0.0.2".parse().unwrap()));
        assert!(!local.permits("10.0.0.1".parse().unwrap()));
    }

    /// 6to4 and Teredo addresses carry an IPv4 address a relay will reach,
    /// which may be private (`2002:7f00:1::` is 127.0.0.1 over 6to4).
    #[test]
    fn tunnelled_ipv4_prefixes_are_not_public() {
        let strict = EgressPolicy::strict();
        for ip in [
            "2002:7f00:1::1",
            "2002:a00:1::",
            "2001:0:4136:e378::1",
            "2001::1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(!strict.permits(ip), "{ip} must be refused");
        }
        // Neighbours of the Teredo prefix stay public.
        assert!(strict.permits("2001:4860:4860::8888".parse().unwrap()));
        let allowed = EgressPolicy::allowing(["2002::/16".parse().unwrap()]);
        assert!(allowed.permits("2002:7f00:1::1".parse().unwrap()));
    }

    /// `example.com.` is the same host as `example.com`, in a grant and in
    /// the URL asked for.
    #[test]
    fn a_trailing_dot_names_the_same_host() {
        assert!(p("example.com.").matches("example.com.", 443));
        assert!(p("example.com.").matches("example.com", 443));
        assert!(p("example.com").matches("example.com.", 443));
        assert!(p("*.example.com.").matches("hooks.example.com", 443));
        assert!(p("*.example.com").matches("hooks.example.com.", 443));
        assert!(HostPattern::exact("Example.com.", Some(443)).matches("example.com.", 443));
        assert!(HostPattern::exact("example.com.", None).matches("example.com", 80));
        assert_eq!(p("example.com.:8443").to_string(), "example.com:8443");
    }
}
