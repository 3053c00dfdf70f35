//! Name resolution that keeps only public addresses. The check sits here, on the addresses the
//! connection will actually use, so a name that resolves differently on a second lookup (DNS
//! rebinding) is judged on what it resolves to this time.

use std::net::SocketAddr;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::address::is_public;

pub struct PublicOnlyResolver;

#[derive(Debug, thiserror::Error)]
#[error("`{0}` resolves to no public address (outbound.allow_private_networks is off)")]
pub struct NoPublicAddress(String);

impl Resolve for PublicOnlyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            // Port 0: reqwest puts in the URL's port.
            let resolved = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let public: Vec<SocketAddr> = resolved.filter(|addr| is_public(addr.ip())).collect();
            if public.is_empty() {
                return Err(Box::new(NoPublicAddress(host)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}
