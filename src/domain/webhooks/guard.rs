//! The SSRF guard: a webhook URL is the one place where a tenant makes the server send requests
//! to an address of its choosing, so destinations inside the server's own network are refused:
//! loopback, private (RFC 1918, unique-local IPv6), link-local (the cloud metadata service
//! 169.254.169.254 among them), carrier-grade NAT, unspecified, multicast, broadcast and other
//! reserved ranges, also when an IPv6 address embeds one of them. A URL is checked when it is
//! saved and again at every delivery, where the check is the client's DNS resolver itself
//! ([`GuardedResolver`]): the addresses checked are the addresses connected to, so a name that
//! resolves to a public address at the check and a private one at the connection (DNS
//! rebinding) is refused as well. `FV_WEBHOOK_ALLOW_PRIVATE=1` lifts the guard (tests, and
//! receivers on the operator's own network).

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    time::Duration,
};

use url::{Host, Url};

use crate::error::{AppError, AppResult};

/// How long resolving a URL's host may take when it is saved.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether an IPv4 address is not a public unicast destination.
fn forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0
        // Carrier-grade NAT (100.64.0.0/10).
        || (a == 100 && (64..128).contains(&b))
        // IETF protocol assignments (192.0.0.0/24), benchmarking (198.18.0.0/15).
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (b == 18 || b == 19))
        // Reserved (240.0.0.0/4).
        || a >= 240
}

/// Whether an address is not a public unicast destination (see the module's documentation).
pub fn forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return forbidden_v4(v4);
    }
    let segments = ip.segments();
    // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) reach an IPv4 address: judge that one.
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [a, b] = segments[6].to_be_bytes();
        let [c, d] = segments[7].to_be_bytes();
        return forbidden_v4(Ipv4Addr::new(a, b, c, d));
    }
    if segments[0] == 0x2002 {
        let [a, b] = segments[1].to_be_bytes();
        let [c, d] = segments[2].to_be_bytes();
        return forbidden_v4(Ipv4Addr::new(a, b, c, d));
    }
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || ip.is_unique_local()
        || ip.is_unicast_link_local()
        // IPv4-compatible (::a.b.c.d, deprecated), site-local (fec0::/10), documentation.
        || segments[..6] == [0, 0, 0, 0, 0, 0]
        || (segments[0] & 0xffc0) == 0xfec0
        || (segments[0] == 0x2001 && segments[1] == 0x0db8)
}

/// Why a destination is refused, for the client (`BAD_USER_INPUT`) and the delivery log.
pub fn refusal(host: &str, ip: IpAddr) -> String {
    format!(
        "{host} resolves to {ip}, a loopback, private, link-local or reserved address: webhooks \
         are delivered to public addresses only"
    )
}

/// Check that `url` may receive webhooks: HTTPS (HTTP too when private destinations are
/// allowed), no credentials, and a host whose every address is public. `field` names the input.
pub async fn check_url(url: &Url, allow_private: bool, field: &str) -> AppResult<()> {
    match url.scheme() {
        "https" => {}
        "http" if allow_private => {}
        _ => return Err(AppError::bad_input(field, "the URL must be https://")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(AppError::bad_input(
            field,
            "the URL must not carry credentials: receivers verify the signature instead",
        ));
    }
    if url.fragment().is_some() {
        return Err(AppError::bad_input(
            field,
            "the URL must not have a fragment",
        ));
    }
    let host = url
        .host()
        .ok_or_else(|| AppError::bad_input(field, "the URL must name a host"))?;
    if allow_private {
        return Ok(());
    }
    let port = url.port_or_known_default().unwrap_or(443);
    let addresses: Vec<SocketAddr> = match host {
        Host::Ipv4(ip) => vec![SocketAddr::new(IpAddr::V4(ip), port)],
        Host::Ipv6(ip) => vec![SocketAddr::new(IpAddr::V6(ip), port)],
        Host::Domain(name) => {
            match tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((name, port))).await
            {
                Ok(Ok(found)) => found.collect(),
                _ => {
                    return Err(AppError::bad_input(
                        field,
                        format!("the host {name} could not be resolved"),
                    ));
                }
            }
        }
    };
    let host = url.host_str().unwrap_or_default();
    match addresses.iter().find(|a| forbidden(a.ip())) {
        Some(bad) => Err(AppError::bad_input(field, refusal(host, bad.ip()))),
        None if addresses.is_empty() => Err(AppError::bad_input(
            field,
            format!("the host {host} has no address"),
        )),
        None => Ok(()),
    }
}

/// The delivery client's resolver: it resolves like the system, then refuses a name with any
/// forbidden address, so the client connects only to addresses this guard checked.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    /// `FV_WEBHOOK_ALLOW_PRIVATE`: resolve without checking.
    pub allow_private: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if !allow_private && let Some(bad) = found.iter().find(|a| forbidden(a.ip())) {
                return Err(refusal(&host, bad.ip()).into());
            }
            let addresses: reqwest::dns::Addrs = Box::new(found.into_iter());
            Ok(addresses)
        })
    }
}

/// At delivery, the check the resolver cannot make: a URL whose host is an address literal is
/// connected to without resolving.
pub fn literal_refusal(url: &Url, allow_private: bool) -> Option<String> {
    if allow_private {
        return None;
    }
    let ip = match url.host()? {
        Host::Ipv4(ip) => IpAddr::V4(ip),
        Host::Ipv6(ip) => IpAddr::V6(ip),
        Host::Domain(_) => return None,
    };
    forbidden(ip).then(|| refusal(url.host_str().unwrap_or_default(), ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_addresses_are_forbidden() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fc00::1",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "2002:a00:1::",
            "ff02::1",
        ] {
            assert!(forbidden(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(!forbidden(ip.parse().unwrap()), "{ip}");
        }
    }
}
