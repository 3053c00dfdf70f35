//! TLS terminated by sesame itself (`tls.cert_file`, `tls.key_file`), and the client certificate
//! of each connection for mutual TLS (RFC 8705).
//!
//! Client certificates are asked for, never required, on the one port: a browser is not asked to
//! pick one it does not have, and a machine client that has one sends it. The handshake checks
//! only that the client holds the certificate's key; whether the certificate means anything (it
//! chains to `tls.client_ca_file` and names a registered subject, or it is a client's registered
//! self-signed key) is decided by client authentication, per client.

mod listener;
mod verifier;

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;

pub use self::listener::TlsListener;
use crate::config::Config;

/// The certificate a client presented on its connection (DER), as a request extension.
#[derive(Debug, Clone)]
pub struct ClientCertificate(pub Arc<CertificateDer<'static>>);

impl ClientCertificate {
    /// RFC 8705 §3.1 `x5t#S256`: the base64url SHA-256 of the certificate's DER.
    pub fn thumbprint(&self) -> String {
        use base64::Engine;
        use sha2::Digest;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(self.0.as_ref()))
    }
}

/// What a connection knows of its peer's certificate.
pub trait PeerCertificate {
    fn peer_certificate(&self) -> Option<ClientCertificate>;
}

impl PeerCertificate for tokio::net::TcpStream {
    fn peer_certificate(&self) -> Option<ClientCertificate> {
        None
    }
}

impl PeerCertificate for tokio_rustls::server::TlsStream<tokio::net::TcpStream> {
    fn peer_certificate(&self) -> Option<ClientCertificate> {
        let chain = self.get_ref().1.peer_certificates()?;
        chain.first().map(|c| ClientCertificate(Arc::new(c.clone().into_owned())))
    }
}

fn read_certificates(path: &Path, what: &str) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs: Result<Vec<_>, _> = CertificateDer::pem_file_iter(path).map_err(|e| anyhow::anyhow!("{what} {}: {e}", path.display()))?.collect();
    let certs = certs.map_err(|e| anyhow::anyhow!("{what} {}: {e}", path.display()))?;
    anyhow::ensure!(!certs.is_empty(), "{what} {} holds no certificate", path.display());
    Ok(certs)
}

/// The CA certificates client certificates may chain to (`tls.client_ca_file`), if any.
pub fn client_roots(config: &Config) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    match &config.tls.client_ca_file {
        Some(path) => read_certificates(path, "tls.client_ca_file"),
        None => Ok(Vec::new()),
    }
}

/// The server's TLS configuration when `tls.cert_file` and `tls.key_file` are set.
pub fn server_config(config: &Config) -> anyhow::Result<Option<Arc<ServerConfig>>> {
    let (Some(cert_file), Some(key_file)) = (&config.tls.cert_file, &config.tls.key_file) else { return Ok(None) };
    let chain = read_certificates(cert_file, "tls.cert_file")?;
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| anyhow::anyhow!("tls.key_file {}: {e}", key_file.display()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = verifier::AnyClientCertificate::new(&client_roots(config)?, &provider)?;
    let mut server = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_single_cert(chain, key)
        .map_err(|e| anyhow::anyhow!("tls.cert_file and tls.key_file do not make a certificate: {e}"))?;
    // HTTP/1.1 only: the server speaks no HTTP/2 (axum without its http2 feature).
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(Arc::new(server)))
}

/// The client certificate a request's connection presented; or, when the connection comes from a
/// trusted proxy (`trusted_proxies`) and `tls.client_cert_header` is set, the certificate the
/// proxy passed on in that header (URL-encoded PEM, as nginx's `$ssl_client_escaped_cert`). The
/// header from anyone else is ignored: a client cannot claim a certificate it does not hold.
pub fn presented_certificate(parts: &axum::http::request::Parts, config: &Config) -> Option<ClientCertificate> {
    if let Some(Some(on_connection)) = parts.extensions.get::<Option<ClientCertificate>>() {
        return Some(on_connection.clone());
    }
    let header = config.tls.client_cert_header.as_deref()?;
    let axum::extract::ConnectInfo(peer) = parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()?;
    if !config.trusted_proxies.contains(peer.ip()) {
        return None;
    }
    let escaped = parts.headers.get(header)?.to_str().ok()?;
    let pem = percent_decode(escaped)?;
    let der = CertificateDer::from_pem_slice(pem.as_bytes()).ok()?;
    Some(ClientCertificate(Arc::new(der.into_owned())))
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes: Vec<u8> = url::form_urlencoded::parse(format!("v={}", text.replace('+', "%2B")).as_bytes()).next()?.1.into_owned().into_bytes();
    String::from_utf8(bytes).ok()
}
