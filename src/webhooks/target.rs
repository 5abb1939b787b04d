//! The SSRF guard: which URLs an endpoint may have, and which addresses a delivery may connect
//! to. A URL is checked when it is written and again before each send; the addresses are checked
//! by the HTTP client's resolver on every connection, so a name that later resolves somewhere
//! private (DNS rebinding) is refused at that moment. IP literals never reach the resolver, so
//! they are checked in [`TargetPolicy::check`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use url::{Host, Url};

use crate::config::{Environment, Settings};

/// What targets are allowed, from the settings.
#[derive(Debug, Clone, Copy)]
pub struct TargetPolicy {
    /// Private, loopback, link-local and metadata addresses are allowed.
    pub allow_private: bool,
    /// Plain `http` is refused.
    pub require_https: bool,
}

impl TargetPolicy {
    pub fn new(settings: &Settings) -> Self {
        let allow_private = settings.webhooks.allow_private_targets;
        Self {
            allow_private,
            require_https: settings.environment == Environment::Production && !allow_private,
        }
    }

    /// The URL, if an endpoint may have it; otherwise why not, for a 422 naming `url`.
    pub fn check(&self, raw: &str) -> Result<Url, String> {
        if raw.len() > 2000 {
            return Err("must be at most 2000 characters".into());
        }
        let url = Url::parse(raw).map_err(|e| format!("is not an absolute URL: {e}"))?;
        match url.scheme() {
            "https" => {}
            "http" if !self.require_https => {}
            "http" => return Err("must use https".into()),
            _ => return Err("must be an http or https URL".into()),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("must not carry credentials".into());
        }
        if url.fragment().is_some() {
            return Err("must not have a #fragment".into());
        }
        let forbidden = match url.host() {
            None => return Err("must name a host".into()),
            Some(Host::Ipv4(ip)) => is_forbidden(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => is_forbidden(IpAddr::V6(ip)),
            Some(Host::Domain(name)) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                name == "localhost" || name.ends_with(".localhost")
            }
        };
        if forbidden && !self.allow_private {
            return Err("must not point at a private, loopback, link-local or metadata address".into());
        }
        Ok(url)
    }

    /// Whether a delivery may connect to `ip`.
    pub fn allows(&self, ip: IpAddr) -> bool {
        self.allow_private || !is_forbidden(ip)
    }
}

/// Addresses no webhook may reach by default: loopback, private, link-local (which holds the
/// cloud metadata address 169.254.169.254), CGNAT, unique-local v6 (fd00:ec2::254 included),
/// unspecified, multicast, broadcast and reserved ranges, and v6 forms that embed one of those.
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => forbidden_v4(ip),
        IpAddr::V6(ip) => forbidden_v6(ip),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // CGNAT, 100.64.0.0/10
        || (a == 192 && b == 0 && ip.octets()[2] == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240 // reserved
}

fn forbidden_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return forbidden_v4(v4);
    }
    let segments = ip.segments();
    let embedded_v4 = |high: u16, low: u16| Ipv4Addr::from((u32::from(high) << 16) | u32::from(low));
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (segments[0] & 0xfe00) == 0xfc00 // unique local, fc00::/7
        || (segments[0] & 0xffc0) == 0xfe80 // link local, fe80::/10
        || (segments[0] & 0xffc0) == 0xfec0 // site local (deprecated), fec0::/10
        // IPv4-compatible (deprecated), ::a.b.c.d
        || (segments[..6].iter().all(|s| *s == 0) && forbidden_v4(embedded_v4(segments[6], segments[7])))
        // NAT64, 64:ff9b::/96
        || (segments[0] == 0x64 && segments[1] == 0xff9b && segments[2..6].iter().all(|s| *s == 0)
            && forbidden_v4(embedded_v4(segments[6], segments[7])))
        // 6to4, 2002::/16, embeds an IPv4 address
        || (segments[0] == 0x2002 && forbidden_v4(embedded_v4(segments[1], segments[2])))
}

/// The delivery client's resolver: the system's, with every forbidden address removed. A name
/// left with none fails to connect, so no request leaves for it.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    pub policy: TargetPolicy,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> =
                found.into_iter().filter(|addr| policy.allows(addr.ip())).collect();
            if allowed.is_empty() {
                return Err(Box::new(Refused(host)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// A name that resolved only to forbidden addresses.
#[derive(Debug, thiserror::Error)]
#[error("{0} resolves only to private, loopback, link-local or metadata addresses")]
pub struct Refused(String);

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: TargetPolicy = TargetPolicy { allow_private: false, require_https: true };

    #[test]
    fn private_and_special_addresses_are_forbidden() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.254",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00:ec2::254",
            "fc00::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "2002:c0a8:101::1",
            "::127.0.0.1",
        ] {
            assert!(is_forbidden(ip.parse().unwrap()), "{ip} must be forbidden");
        }
        for ip in ["93.184.216.34", "8.8.8.8", "100.128.0.1", "2606:4700::1111", "::ffff:8.8.8.8"] {
            assert!(!is_forbidden(ip.parse().unwrap()), "{ip} is public");
        }
    }

    #[test]
    fn urls_are_checked_for_scheme_credentials_and_literal_addresses() {
        assert!(STRICT.check("https://hooks.example.com/in?x=1").is_ok());
        for bad in [
            "http://hooks.example.com/",
            "ftp://hooks.example.com/",
            "https://user:pw@hooks.example.com/",
            "https://127.0.0.1/",
            "https://[::1]/",
            "https://[::ffff:10.0.0.1]/",
            "https://169.254.169.254/latest/meta-data",
            "https://localhost/",
            "https://a.localhost./",
            "https://hooks.example.com/#x",
            "not a url",
            "/relative",
        ] {
            assert!(STRICT.check(bad).is_err(), "{bad} must be refused");
        }
        let open = TargetPolicy { allow_private: true, require_https: false };
        assert!(open.check("http://127.0.0.1:9000/hook").is_ok());
        let development = TargetPolicy { allow_private: false, require_https: false };
        assert!(development.check("http://hooks.example.com/").is_ok());
    }
}

#[cfg(test)]
mod resolver_tests {
    use reqwest::dns::Resolve;

    use super::*;

    /// A name is checked on every resolution, so one that points somewhere private (as a
    /// rebinding attack's second answer would) is refused at connection time.
    #[tokio::test]
    async fn names_resolving_to_loopback_are_refused_unless_allowed() {
        let strict = GuardedResolver { policy: TargetPolicy { allow_private: false, require_https: false } };
        let name: reqwest::dns::Name = "localhost".parse().unwrap();
        let refused = strict.resolve(name).await.err().expect("refused");
        assert!(refused.to_string().contains("private"), "{refused}");
        let open = GuardedResolver { policy: TargetPolicy { allow_private: true, require_https: false } };
        let addrs: Vec<SocketAddr> = open.resolve("localhost".parse().unwrap()).await.unwrap().collect();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()) && !addrs.is_empty());
    }
}
