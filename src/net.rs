//! The caller's address: the peer, or, behind a trusted proxy, the nearest untrusted hop of
//! `X-Forwarded-For`.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::HeaderMap;

use crate::config::TrustedProxies;
use crate::error::AppError;
use crate::state::AppState;

/// The caller's address (`client_ip` of the peer and its forwarding headers), as an extractor:
/// handlers receive an address, and nothing below them sees headers.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let ConnectInfo(peer) = parts.extensions.get::<ConnectInfo<SocketAddr>>().copied().ok_or_else(|| AppError::Internal("the server was started without peer addresses".into()))?;
        Ok(Self(client_ip(peer, &parts.headers, &state.config.trusted_proxies)))
    }
}


/// The caller's `User-Agent` header, when it is readable text: shown beside a session so its
/// user can tell their browsers apart. Never trusted for anything.
#[derive(Debug, Clone, Default)]
pub struct UserAgent(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for UserAgent {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(parts.headers.get(axum::http::header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_string)))
    }
}

pub fn client_ip(peer: SocketAddr, headers: &HeaderMap, trusted_proxies: &TrustedProxies) -> IpAddr {
    let mut ip = peer.ip();
    if !trusted_proxies.contains(ip) {
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
        if !trusted_proxies.contains(hop) {
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
        let proxies = TrustedProxies::parse(&["10.0.0.0/8"]).unwrap();
        assert_eq!(client_ip("10.0.0.1:5".parse().unwrap(), &h, &proxies), "203.0.113.9".parse::<IpAddr>().unwrap());
        assert_eq!(client_ip("198.51.100.1:5".parse().unwrap(), &h, &proxies), "198.51.100.1".parse::<IpAddr>().unwrap());
        assert_eq!(client_ip("10.0.0.1:5".parse().unwrap(), &HeaderMap::new(), &proxies), "10.0.0.1".parse::<IpAddr>().unwrap());
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        fn v4() -> impl Strategy<Value = IpAddr> {
            any::<[u8; 4]>().prop_map(IpAddr::from)
        }

        proptest! {
            /// The answer is the peer or one of the hops sent, and an untrusted peer is always
            /// the answer, whatever it forwards.
            #[test]
            fn the_answer_is_the_peer_or_a_sent_hop(peer in v4(), hops in prop::collection::vec(v4(), 0..6), junk in "[ -~]{0,12}") {
                let mut h = HeaderMap::new();
                let list: Vec<String> = hops.iter().map(|ip| ip.to_string()).chain([junk]).collect();
                if let Ok(v) = list.join(", ").parse() {
                    h.insert("x-forwarded-for", v);
                }
                let proxies = TrustedProxies::parse(&["10.0.0.0/8"]).unwrap();
                let ip = client_ip(SocketAddr::new(peer, 443), &h, &proxies);
                prop_assert!(ip == peer || hops.contains(&ip));
                if !proxies.contains(peer) {
                    prop_assert_eq!(ip, peer);
                }
            }
        }
    }
}
