//! The client's address: the TCP peer, or what a trusted proxy says in `X-Forwarded-For`.
//!
//! The header is written by whoever sends the request, so it is believed only when the peer is
//! one of `FV_TRUSTED_PROXIES`; then the client is the right-most address not in that list
//! (every proxy appends the address it received from, so the entries left of the first
//! untrusted one may be forged by the client). Rate limits key on this address.

use std::net::IpAddr;

use axum::http::{HeaderMap, HeaderName};
use ipnet::IpNet;

/// The de-facto standard proxy header.
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The client's address given the TCP `peer`, the request headers and the trusted proxies.
/// IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`, from dual-stack sockets) become IPv4, so one
/// client has one address whichever socket it reached.
pub(crate) fn client_ip(
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    trusted: &[IpNet],
) -> Option<IpAddr> {
    let peer = peer.map(|ip| ip.to_canonical());
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let Some(peer_ip) = peer.filter(is_trusted) else {
        return peer;
    };
    // Every header line counts, in order: proxies may append a line instead of extending one.
    let hops: Vec<Option<IpAddr>> = headers
        .get_all(X_FORWARDED_FOR)
        .iter()
        .map(|v| v.to_str().ok())
        .flat_map(|v| v.unwrap_or("").split(','))
        .map(|hop| {
            hop.trim()
                .parse::<IpAddr>()
                .ok()
                .map(|ip| ip.to_canonical())
        })
        .collect();
    // Walk from the right: the first untrusted hop is the client. An unparsable entry ends the
    // walk: what lies left of it cannot be vouched for, so the last trusted hop (or the peer)
    // is answered rather than a guess. When every hop is trusted, the left-most is as close to
    // the client as anyone can tell.
    let mut closest = peer_ip;
    for hop in hops.iter().rev() {
        match hop {
            Some(ip) if !is_trusted(ip) => return Some(*ip),
            Some(ip) => closest = *ip,
            None => return Some(closest),
        }
    }
    Some(closest)
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(X_FORWARDED_FOR, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn the_header_is_ignored_from_an_untrusted_peer() {
        let trusted = nets(&["10.0.0.0/8"]);
        let h = headers(&["198.51.100.1"]);
        assert_eq!(
            client_ip(ip("203.0.113.5"), &h, &trusted),
            ip("203.0.113.5")
        );
        assert_eq!(client_ip(ip("203.0.113.5"), &h, &[]), ip("203.0.113.5"));
        assert_eq!(client_ip(None, &h, &trusted), None);
    }

    #[test]
    fn a_trusted_peer_gives_the_right_most_untrusted_hop() {
        let trusted = nets(&["10.0.0.0/8", "2001:db8:ffff::/48"]);
        let h = headers(&["1.1.1.1, 198.51.100.1, 10.0.0.3"]);
        assert_eq!(client_ip(ip("10.0.0.2"), &h, &trusted), ip("198.51.100.1"));
        // Several header lines are one list.
        let h = headers(&["1.1.1.1", "198.51.100.1", "10.0.0.3"]);
        assert_eq!(client_ip(ip("10.0.0.2"), &h, &trusted), ip("198.51.100.1"));
        let h = headers(&["2001:db8::7"]);
        assert_eq!(
            client_ip(ip("2001:db8:ffff::1"), &h, &trusted),
            ip("2001:db8::7")
        );
    }

    #[test]
    fn garbage_and_missing_headers_fall_back_safely() {
        let trusted = nets(&["10.0.0.0/8"]);
        assert_eq!(
            client_ip(ip("10.0.0.2"), &HeaderMap::new(), &trusted),
            ip("10.0.0.2")
        );
        let h = headers(&["not-an-ip"]);
        assert_eq!(client_ip(ip("10.0.0.2"), &h, &trusted), ip("10.0.0.2"));
        // Only trusted hops: the left-most.
        let h = headers(&["10.1.1.1, 10.2.2.2"]);
        assert_eq!(client_ip(ip("10.0.0.2"), &h, &trusted), ip("10.1.1.1"));
    }

    #[test]
    fn ipv4_mapped_addresses_become_ipv4() {
        let trusted = nets(&["10.0.0.0/8"]);
        assert_eq!(
            client_ip(ip("::ffff:192.0.2.1"), &HeaderMap::new(), &[]),
            ip("192.0.2.1")
        );
        // A mapped peer is matched against IPv4 trusted networks too.
        let h = headers(&["::ffff:198.51.100.9"]);
        assert_eq!(
            client_ip(ip("::ffff:10.0.0.2"), &h, &trusted),
            ip("198.51.100.9")
        );
    }
}
