//! The caller's address: the peer, or, behind a trusted proxy, the nearest untrusted hop of
//! `X-Forwarded-For`.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;
use ipnet::IpNet;

fn trusted(ip: IpAddr, proxies: &[String]) -> bool {
    proxies.iter().any(|p| match p.parse::<IpNet>() {
        Ok(net) => net.contains(&ip),
        Err(_) => p.parse::<IpAddr>().is_ok_and(|a| a == ip),
    })
}

pub fn client_ip(peer: SocketAddr, headers: &HeaderMap, trusted_proxies: &[String]) -> IpAddr {
    let mut ip = peer.ip();
    if !trusted(ip, trusted_proxies) {
        return ip;
    }
    let hops: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|h| h.trim().parse().ok())
        .collect();
    for hop in hops.into_iter().rev() {
        ip = hop;
        if !trusted(hop, trusted_proxies) {
            break;
        }
    }
    ip
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "203.0.113.9, 10.0.0.7".parse().unwrap());
        let proxies = vec!["10.0.0.0/8".to_string()];
        assert_eq!(client_ip("10.0.0.1:5".parse().unwrap(), &h, &proxies), "203.0.113.9".parse::<IpAddr>().unwrap());
        assert_eq!(client_ip("198.51.100.1:5".parse().unwrap(), &h, &proxies), "198.51.100.1".parse::<IpAddr>().unwrap());
        assert_eq!(client_ip("10.0.0.1:5".parse().unwrap(), &HeaderMap::new(), &proxies), "10.0.0.1".parse::<IpAddr>().unwrap());
    }
}
