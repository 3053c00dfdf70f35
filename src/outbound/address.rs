//! Which addresses are public: globally reachable unicast, the only destinations an outbound
//! fetch may reach unless `outbound.allow_private_networks` is set.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};

/// IPv4 ranges that are not public (IANA special-purpose registry, RFC 6890 and successors).
const NOT_PUBLIC_V4: [Ipv4Net; 15] = [
    Ipv4Net::new_assert(Ipv4Addr::new(0, 0, 0, 0), 8),       // "this network", 0.0.0.0
    Ipv4Net::new_assert(Ipv4Addr::new(10, 0, 0, 0), 8),      // private
    Ipv4Net::new_assert(Ipv4Addr::new(100, 64, 0, 0), 10),   // carrier-grade NAT
    Ipv4Net::new_assert(Ipv4Addr::new(127, 0, 0, 0), 8),     // loopback
    Ipv4Net::new_assert(Ipv4Addr::new(169, 254, 0, 0), 16),  // link-local, cloud metadata services
    Ipv4Net::new_assert(Ipv4Addr::new(172, 16, 0, 0), 12),   // private
    Ipv4Net::new_assert(Ipv4Addr::new(192, 0, 0, 0), 24),    // IETF protocol assignments
    Ipv4Net::new_assert(Ipv4Addr::new(192, 0, 2, 0), 24),    // documentation
    Ipv4Net::new_assert(Ipv4Addr::new(192, 88, 99, 0), 24),  // 6to4 relay anycast (deprecated)
    Ipv4Net::new_assert(Ipv4Addr::new(192, 168, 0, 0), 16),  // private
    Ipv4Net::new_assert(Ipv4Addr::new(198, 18, 0, 0), 15),   // benchmarking
    Ipv4Net::new_assert(Ipv4Addr::new(198, 51, 100, 0), 24), // documentation
    Ipv4Net::new_assert(Ipv4Addr::new(203, 0, 113, 0), 24),  // documentation
    Ipv4Net::new_assert(Ipv4Addr::new(224, 0, 0, 0), 4),     // multicast
    Ipv4Net::new_assert(Ipv4Addr::new(240, 0, 0, 0), 4),     // reserved, and the broadcast address
];

/// IPv6 unicast on the Internet is 2000::/3; everything outside it is refused except the two
/// prefixes that carry an IPv4 address (judged as that address).
const GLOBAL_UNICAST_V6: Ipv6Net = Ipv6Net::new_assert(Ipv6Addr::new(0x2000, 0, 0, 0, 0, 0, 0, 0), 3);
const NAT64_V6: Ipv6Net = Ipv6Net::new_assert(Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96);

/// Ranges inside 2000::/3 that are not public.
const NOT_PUBLIC_V6: [Ipv6Net; 4] = [
    // IETF protocol assignments: Teredo (which tunnels to an embedded IPv4 address), benchmarking, ORCHID.
    Ipv6Net::new_assert(Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 23),
    Ipv6Net::new_assert(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32), // documentation
    Ipv6Net::new_assert(Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16),     // 6to4: reaches an embedded IPv4 address
    Ipv6Net::new_assert(Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20),     // documentation (RFC 9637)
];

pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    !NOT_PUBLIC_V4.iter().any(|net| net.contains(&ip))
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    if NAT64_V6.contains(&ip) {
        let [.., a, b, c, d] = ip.octets();
        return is_public_v4(Ipv4Addr::new(a, b, c, d));
    }
    GLOBAL_UNICAST_V6.contains(&ip) && !NOT_PUBLIC_V6.iter().any(|net| net.contains(&ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(ip: &str) -> bool {
        is_public(ip.parse().unwrap())
    }

    #[test]
    fn private_loopback_link_local_and_special_addresses_are_not_public() {
        for ip in [
            "10.0.0.1", "10.255.255.255", "172.16.0.1", "172.31.255.254", "192.168.1.1", "127.0.0.1", "127.1.2.3",
            "169.254.169.254", "100.64.0.1", "100.127.255.254", "0.0.0.0", "0.1.2.3", "224.0.0.1", "239.255.255.250",
            "255.255.255.255", "240.0.0.1", "192.0.2.1", "198.51.100.7", "203.0.113.9", "198.18.0.1", "192.0.0.8",
            "::", "::1", "fe80::1", "fc00::1", "fd12:3456::1", "fec0::1", "ff02::1", "ff0e::1", "100::1",
            "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "::127.0.0.1", "64:ff9b::10.0.0.1",
            "64:ff9b::127.0.0.1", "64:ff9b:1::8.8.8.8", "2001:db8::1", "2001::1", "2002:7f00:1::1", "3fff::1",
        ] {
            assert!(!public(ip), "{ip} must be refused");
        }
    }

    #[test]
    fn global_unicast_addresses_are_public() {
        for ip in [
            "8.8.8.8", "1.1.1.1", "172.32.0.1", "172.15.255.255", "100.128.0.1", "100.63.255.255", "192.169.0.1",
            "169.255.0.1", "11.0.0.1", "2606:4700::1", "2a00:1450:4001::200e", "::ffff:8.8.8.8", "64:ff9b::8.8.8.8",
        ] {
            assert!(public(ip), "{ip} must be allowed");
        }
    }
}
