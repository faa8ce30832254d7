//! Where a webhook may be sent (server-side request forgery): never to loopback, private,
//! link-local, unique-local, shared (CGNAT), multicast, broadcast, documentation or reserved
//! addresses, IPv4 or IPv6 (IPv4-mapped, IPv4-compatible and NAT64 addresses are judged by
//! the IPv4 address inside), unless `webhooks.allow_private_destinations` says otherwise.
//! Checked when an endpoint is created and again at every delivery: [`GuardedResolver`]
//! resolves the host, refuses it when any address is internal, and hands the checked
//! addresses to the HTTP client, which connects to them — the name is not resolved twice,
//! so it cannot be rebound to an internal address in between. Redirects are not followed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::{DomainError, Result};

fn v4_internal(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_unspecified()
        || ip.is_documentation()
        || a == 0
        // 100.64.0.0/10, shared address space (carrier-grade NAT).
        || (a == 100 && (64..128).contains(&b))
        // 192.0.0.0/24, protocol assignments.
        || (a == 192 && b == 0 && ip.octets()[2] == 0)
        // 198.18.0.0/15, benchmarking.
        || (a == 198 && (b == 18 || b == 19))
        // 240.0.0.0/4, reserved.
        || a >= 240
}

fn v6_internal(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_internal(v4);
    }
    let s = ip.segments();
    // ::a.b.c.d (IPv4-compatible, deprecated) and 64:ff9b::/96 (NAT64): the IPv4 inside.
    if (s[..6] == [0, 0, 0, 0, 0, 0] && !ip.is_unspecified() && !ip.is_loopback())
        || s[..6] == [0x64, 0xff9b, 0, 0, 0, 0]
    {
        let [a, b] = s[6].to_be_bytes();
        let [c, d] = s[7].to_be_bytes();
        return v4_internal(Ipv4Addr::new(a, b, c, d));
    }
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        // fc00::/7 unique local, fe80::/10 link-local, fec0::/10 site-local (deprecated).
        || (s[0] & 0xfe00) == 0xfc00
        || (s[0] & 0xffc0) == 0xfe80
        || (s[0] & 0xffc0) == 0xfec0
        // 2001:db8::/32 documentation.
        || (s[0] == 0x2001 && s[1] == 0x0db8)
}

/// Whether `ip` is an address webhooks may not reach by default.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4_internal(v4),
        IpAddr::V6(v6) => v6_internal(v6),
    }
}

fn refused(host: &str) -> DomainError {
    DomainError::bad_request_hint(
        format!("webhook destination {host:?} is a loopback, private or otherwise internal address"),
        "Use a public https:// address (a server may allow internal ones with webhooks.allow_private_destinations).",
    )
}

/// Resolves `host:port` and checks every address; the addresses to connect to.
pub async fn resolve_checked(
    host: &str,
    port: u16,
    allow_private: bool,
) -> Result<Vec<SocketAddr>> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|_| {
            DomainError::bad_request(format!("webhook destination {host:?} does not resolve"))
        })?
        .collect();
    if addrs.is_empty() {
        return Err(DomainError::bad_request(format!(
            "webhook destination {host:?} does not resolve"
        )));
    }
    if !allow_private && addrs.iter().any(|a| is_internal(a.ip())) {
        return Err(refused(host));
    }
    Ok(addrs)
}

/// Checks an endpoint URL as given at creation: `http(s)`, a host, no credentials, at most
/// [`super::MAX_URL_LEN`] characters, and a destination allowed by [`is_internal`].
pub async fn check_url(raw: &str, allow_private: bool) -> Result<url::Url> {
    if raw.len() > super::MAX_URL_LEN {
        return Err(DomainError::bad_request(format!(
            "url is longer than {} characters",
            super::MAX_URL_LEN
        )));
    }
    let url = url::Url::parse(raw.trim()).map_err(|_| {
        DomainError::bad_request_hint(
            "url is not a valid URL",
            "Use a form like https://example.com/hooks.",
        )
    })?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(DomainError::bad_request(
            "url must be an http:// or https:// URL",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(DomainError::bad_request("url must not carry credentials"));
    }
    check_destination(&url, allow_private).await?;
    Ok(url)
}

/// Checks where `url` points now: its IP literal, or every address its name resolves to.
pub async fn check_destination(url: &url::Url, allow_private: bool) -> Result<Vec<SocketAddr>> {
    let port = url.port_or_known_default().unwrap_or(443);
    match url.host() {
        Some(url::Host::Ipv4(ip)) => {
            if !allow_private && v4_internal(ip) {
                return Err(refused(&ip.to_string()));
            }
            Ok(vec![SocketAddr::new(IpAddr::V4(ip), port)])
        }
        Some(url::Host::Ipv6(ip)) => {
            if !allow_private && v6_internal(ip) {
                return Err(refused(&ip.to_string()));
            }
            Ok(vec![SocketAddr::new(IpAddr::V6(ip), port)])
        }
        Some(url::Host::Domain(name)) => resolve_checked(name, port, allow_private).await,
        None => Err(DomainError::bad_request("url has no host")),
    }
}

/// The HTTP client's resolver: every name goes through [`resolve_checked`], and the client
/// connects to the addresses it returns.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    pub allow_private: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow = self.allow_private;
        Box::pin(async move {
            let addrs = resolve_checked(name.as_str(), 0, allow).await.map_err(
                |e| -> Box<dyn std::error::Error + Send + Sync> { e.to_string().into() },
            )?;
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_ranges_are_refused() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "fd12::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "::127.0.0.1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(is_internal(ip), "{ip} should be internal");
        }
        for ip in [
            "93.184.216.34",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "::ffff:1.1.1.1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(!is_internal(ip), "{ip} should be public");
        }
    }

    #[tokio::test]
    async fn urls_are_checked() {
        assert!(check_url("http://127.0.0.1:9/x", false).await.is_err());
        assert!(check_url("http://[::ffff:127.0.0.1]/x", false)
            .await
            .is_err());
        assert!(check_url("http://localhost/x", false).await.is_err());
        assert!(check_url("ftp://example.com/x", true).await.is_err());
        assert!(check_url("https://u:p@127.0.0.1/x", true).await.is_err());
        assert!(check_url("http://127.0.0.1:9/x", true).await.is_ok());
        let long = format!("https://1.1.1.1/{}", "a".repeat(3000));
        assert!(check_url(&long, true).await.is_err());
    }
}
