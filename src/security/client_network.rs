//! Which clients count as one, for the limits kept per client address (connections,
//! sessions without auth, password attempts).

use std::net::IpAddr;

/// The key a client address is counted under: an IPv4 address (also one written as IPv4-mapped
/// IPv6) as itself, an IPv6 address by its /64, which one host commonly has whole and can
/// pick any address from.
pub fn client_network(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(prefix.into())
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_client_is_counted_by_its_slash_64() {
        let one: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let same_host: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_network(one), client_network(same_host));
        assert_ne!(client_network(one), client_network(other));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(
            client_network(mapped),
            "10.0.0.1".parse::<IpAddr>().unwrap()
        );
    }
}
