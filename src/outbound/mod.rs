//! HTTP requests to URLs that others chose (a client's `jwks_uri`, an identity provider's endpoints): bounded in time and in size
//! while reading, no redirects, no proxies, and by default only to public addresses, judged on
//! every address a name resolves to (so DNS rebinding cannot reach inside) and on address literals.

pub mod address;
mod resolver;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

pub use self::address::is_public;
use self::resolver::{NoPublicAddress, PublicOnlyResolver};

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// From the start of name resolution to the last byte of the body.
pub const TOTAL_TIMEOUT: Duration = Duration::from_secs(5);

/// Which addresses outbound requests may reach (`outbound.allow_private_networks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destinations {
    PublicOnly,
    Anywhere,
}

impl Destinations {
    pub fn from_config(config: &crate::config::OutboundConfig) -> Self {
        if config.allow_private_networks { Self::Anywhere } else { Self::PublicOnly }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum OutboundError {
    #[error("not an http(s) URL")]
    NotHttp,
    #[error("address {0} is not public (outbound.allow_private_networks is off)")]
    AddressNotPublic(IpAddr),
    #[error("{0}")]
    NoPublicAddress(String),
    #[error("no complete answer within {}s", TOTAL_TIMEOUT.as_secs())]
    Timeout,
    #[error("request failed: {0}")]
    Request(String),
    #[error("answered with status {0}")]
    Status(u16),
    #[error("body larger than {0} bytes")]
    TooLarge(usize),
}

pub struct OutboundHttp {
    http: reqwest::Client,
    destinations: Destinations,
}

impl OutboundHttp {
    /// Fails rather than fall back to a client without the address check or the timeouts.
    pub fn new(destinations: Destinations) -> reqwest::Result<Self> {
        // reqwest is built without a TLS provider of its own: aws-lc, as for everything else.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        // A proxy would resolve names itself, out of reach of the address check.
        let mut builder = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(TOTAL_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy();
        if destinations == Destinations::PublicOnly {
            builder = builder.dns_resolver(Arc::new(PublicOnlyResolver));
        }
        Ok(Self { http: builder.build()?, destinations })
    }

    /// GETs `url` and returns its body, failing as soon as more than `max_body` bytes arrived.
    pub async fn get(&self, url: &str, max_body: usize) -> Result<Bytes, OutboundError> {
        let parsed = self.check(url)?;
        // reqwest's own timeout covers the same span; this one also bounds the body loop below.
        tokio::time::timeout(TOTAL_TIMEOUT, self.get_bounded(parsed, max_body)).await.map_err(|_| OutboundError::Timeout)?
    }

    /// Sends `request` (an identity provider's discovery, token or userinfo call) and answers
    /// whatever status came back, with at most `max_body` bytes of body.
    pub async fn send(&self, request: http::Request<Vec<u8>>, max_body: usize) -> Result<http::Response<Vec<u8>>, OutboundError> {
        self.check(&request.uri().to_string())?;
        let request = reqwest::Request::try_from(request).map_err(request_error)?;
        let exchange = async {
            let res = self.http.execute(request).await.map_err(request_error)?;
            let mut answer = http::Response::builder().status(res.status());
            for (name, value) in res.headers() {
                answer = answer.header(name, value);
            }
            let body = read_bounded(res, max_body).await?;
            answer.body(body).map_err(|e| OutboundError::Request(e.to_string()))
        };
        tokio::time::timeout(TOTAL_TIMEOUT, exchange).await.map_err(|_| OutboundError::Timeout)?
    }

    /// An http(s) URL whose address literal, if it is one, may be reached.
    fn check(&self, url: &str) -> Result<url::Url, OutboundError> {
        let parsed = url::Url::parse(url).map_err(|_| OutboundError::NotHttp)?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(OutboundError::NotHttp);
        }
        let literal = match parsed.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            Some(url::Host::Domain(_)) => None,
            None => return Err(OutboundError::NotHttp),
        };
        if let Some(ip) = literal.filter(|ip| self.destinations == Destinations::PublicOnly && !is_public(*ip)) {
            return Err(OutboundError::AddressNotPublic(ip));
        }
        Ok(parsed)
    }

    /// POSTs `fields` as a form to `url`; success is a 2xx answer, whose body is not read.
    pub async fn post_form(&self, url: &str, fields: &[(&str, &str)]) -> Result<u16, OutboundError> {
        let parsed = self.check(url)?;
        let sent = tokio::time::timeout(TOTAL_TIMEOUT, self.http.post(parsed).form(fields).send()).await.map_err(|_| OutboundError::Timeout)?;
        let res = sent.map_err(request_error)?;
        if !res.status().is_success() {
            return Err(OutboundError::Status(res.status().as_u16()));
        }
        Ok(res.status().as_u16())
    }

    async fn get_bounded(&self, url: url::Url, max_body: usize) -> Result<Bytes, OutboundError> {
        let res = self.http.get(url).send().await.map_err(request_error)?;
        if !res.status().is_success() {
            return Err(OutboundError::Status(res.status().as_u16()));
        }
        Ok(read_bounded(res, max_body).await?.into())
    }
}

async fn read_bounded(mut res: reqwest::Response, max_body: usize) -> Result<Vec<u8>, OutboundError> {
    if res.content_length().is_some_and(|n| n > max_body as u64) {
        return Err(OutboundError::TooLarge(max_body));
    }
    let mut body = Vec::new();
    while let Some(chunk) = res.chunk().await.map_err(request_error)? {
        if body.len() + chunk.len() > max_body {
            return Err(OutboundError::TooLarge(max_body));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// reqwest's message alone ("error sending request") hides the cause: name it, and tell a
/// refused address apart from a network failure.
fn request_error(e: reqwest::Error) -> OutboundError {
    if e.is_timeout() {
        return OutboundError::Timeout;
    }
    let e = e.without_url();
    let mut reasons = vec![e.to_string()];
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        if let Some(refused) = cause.downcast_ref::<NoPublicAddress>() {
            return OutboundError::NoPublicAddress(refused.to_string());
        }
        reasons.push(cause.to_string());
        source = cause.source();
    }
    OutboundError::Request(reasons.join(": "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn non_public_destinations_are_refused_before_any_connection() {
        let http = OutboundHttp::new(Destinations::PublicOnly).unwrap();
        for url in ["http://127.0.0.1:9/", "http://[::1]:9/", "http://[::ffff:7f00:1]:9/", "http://0x7f.1:9/", "http://2130706433:9/", "https://169.254.169.254/latest"] {
            assert!(matches!(http.get(url, 1024).await, Err(OutboundError::AddressNotPublic(_))), "{url}");
        }
        // A name is judged by what it resolves to.
        let refused = http.get("http://localhost:9/", 1024).await;
        assert!(matches!(refused, Err(OutboundError::NoPublicAddress(_))), "{refused:?}");
        assert!(matches!(http.get("file:///etc/passwd", 1024).await, Err(OutboundError::NotHttp)));
    }
}
