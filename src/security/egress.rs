//! Where services registered at run time may point: not into the gateway's own network
//! (loopback, private, link-local and similar ranges) unless the operator allows it, so the
//! API cannot be used to reach internal services through the gateway. Every address a name
//! resolves to is checked. (Redirects are never followed by the upstream HTTP client.)

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Checks the host of `url`; `Err` says why it is refused.
pub async fn check_url(url: &str) -> Result<(), String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|error| format!("{url:?} is not a URL: {error}"))?;
    let host = uri
        .host()
        .ok_or_else(|| format!("{url:?} has no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
        Some("https" | "wss") => 443,
        _ => 80,
    });
    let addresses: Vec<IpAddr> = match host.parse::<IpAddr>() {
        Ok(address) => vec![address],
        Err(_) => tokio::net::lookup_host((host, port))
            .await
            .map_err(|error| format!("cannot resolve {host:?} to check it: {error}"))?
            .map(|address| address.ip())
            .collect(),
    };
    match addresses.iter().find(|address| is_internal(**address)) {
        Some(address) => Err(format!(
            "{host:?} is {address}, an internal address; set security.allow_private_urls to allow it"
        )),
        None => Ok(()),
    }
}

/// Loopback, private, link-local, shared, unspecified, multicast and broadcast addresses.
fn is_internal(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_internal_v4(v4),
            None => is_internal_v6(v6),
        },
    }
}

fn is_internal_v4(address: Ipv4Addr) -> bool {
    let [a, b, ..] = address.octets();
    address.is_loopback()
        || address.is_private()
        || address.is_link_local()
        || address.is_unspecified()
        || address.is_broadcast()
        || address.is_multicast()
        // Carrier-grade NAT (100.64.0.0/10) and "this network" (0.0.0.0/8).
        || (a == 100 && (64..128).contains(&b))
        || a == 0
}

fn is_internal_v6(address: Ipv6Addr) -> bool {
    let first = address.segments()[0];
    address.is_loopback()
        || address.is_unspecified()
        || address.is_multicast()
        // Unique local (fc00::/7) and link-local (fe80::/10).
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_ranges_are_recognised() {
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_internal(internal.parse().unwrap()), "{internal}");
        }
        for public in ["93.184.216.34", "2606:4700::1111", "8.8.8.8"] {
            assert!(!is_internal(public.parse().unwrap()), "{public}");
        }
    }

    #[tokio::test]
    async fn literal_internal_hosts_are_refused() {
        assert!(check_url("http://127.0.0.1:9/mcp").await.is_err());
        assert!(check_url("http://[::1]:9/mcp").await.is_err());
        assert!(check_url("ws://169.254.169.254/").await.is_err());
        assert!(check_url("http://93.184.216.34/mcp").await.is_ok());
    }
}
