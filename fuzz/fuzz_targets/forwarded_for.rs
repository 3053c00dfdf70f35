//! The caller's address behind proxies: `X-Forwarded-For` is believed only from a trusted peer,
//! and the answer is always the peer or one of the hops it sent.
#![no_main]

use std::net::{IpAddr, SocketAddr};

use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use sesame::net::client_ip;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let peer: SocketAddr = match selector % 4 {
        0 => "10.0.0.1:443",
        1 => "203.0.113.5:443",
        2 => "[::1]:443",
        _ => "[fd00::7]:443",
    }
    .parse()
    .unwrap();
    let proxies = sesame::config::TrustedProxies::parse(&["10.0.0.0/8", "::1", "fd00::/8"]).unwrap();
    let mut headers = HeaderMap::new();
    for line in rest.split(|b| *b == b'\n').take(8) {
        if let Ok(v) = HeaderValue::from_bytes(line) {
            headers.append("x-forwarded-for", v);
        }
    }
    let ip = client_ip(peer, &headers, &proxies);
    if selector % 4 == 1 {
        assert_eq!(ip, peer.ip(), "an untrusted peer chose its own address");
    }
    let sent: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|h| h.trim().parse().ok())
        .collect();
    assert!(ip == peer.ip() || sent.contains(&ip));
});
