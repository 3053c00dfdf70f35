//! Client authentication by certificate (RFC 8705 §2): the certificate the client presented on
//! its TLS connection, or one a trusted TLS-terminating proxy passed on in
//! `tls.client_cert_header`.
//!
//! - `tls_client_auth`: the certificate chains to a CA of `tls.client_ca_file`, is valid now and
//!   for client authentication, and names the registered subject DN or DNS name;
//! - `self_signed_tls_client_auth`: the certificate is, byte for byte, the first `x5c` entry of a
//!   key in the client's registered JWK Set.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rustls::pki_types::{CertificateDer, UnixTime as PkiTime};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use crate::clock::UnixTime;
use crate::state::AppState;
use crate::store::{AuthMethod, Client};

/// Why a certificate does not authenticate a client (logged, never sent: the answer is the
/// generic `invalid_client`).
pub type Refusal = String;

/// Checks `certificate` for `client`, whose method is one of the certificate methods.
pub async fn authenticate(state: &AppState, client: &Client, certificate: &CertificateDer<'_>) -> Result<(), Refusal> {
    match client.auth_method {
        AuthMethod::TlsClientAuth => {
            chains_to(certificate, &state.client_ca, state.now())?;
            names(client, certificate)
        }
        AuthMethod::SelfSignedTlsClientAuth => {
            let keys = state.client_jwks.keys(client, None).await.map_err(|e| format!("the client's keys: {e}"))?;
            let registered = keys.keys.iter().filter_map(|k| k.common.x509_chain.as_ref()?.first()).filter_map(|c| STANDARD.decode(c).ok());
            let mut found = false;
            for der in registered {
                found |= der.as_slice() == certificate.as_ref();
            }
            if found { Ok(()) } else { Err("the certificate is not the first x5c of a registered key".into()) }
        }
        other => Err(format!("{} does not authenticate by certificate", other.as_str())),
    }
}

fn chains_to(certificate: &CertificateDer<'_>, roots: &[CertificateDer<'static>], now: UnixTime) -> Result<(), Refusal> {
    if roots.is_empty() {
        return Err("no tls.client_ca_file is configured".into());
    }
    let anchors: Vec<_> = roots.iter().filter_map(|r| webpki::anchor_from_trusted_cert(r).ok()).collect();
    let end_entity = webpki::EndEntityCert::try_from(certificate).map_err(|e| format!("unreadable certificate: {e}"))?;
    let algorithms = rustls::crypto::aws_lc_rs::default_provider().signature_verification_algorithms.all;
    let at = PkiTime::since_unix_epoch(Duration::from_secs(now.max(0) as u64));
    end_entity
        .verify_for_usage(algorithms, &anchors, &[], at, webpki::KeyUsage::client_auth(), None, None)
        .map(|_| ())
        .map_err(|e| format!("the certificate does not chain to a client CA: {e}"))
}

/// Whether the certificate names what `tls_client_auth` registered: its subject DN, or a DNS
/// subject alternative name.
fn names(client: &Client, certificate: &CertificateDer<'_>) -> Result<(), Refusal> {
    let (_, parsed) = X509Certificate::from_der(certificate.as_ref()).map_err(|e| format!("unreadable certificate: {e}"))?;
    if let Some(registered) = &client.tls_client_auth_subject_dn {
        let registered = normalise_dn(registered)?;
        let mut rdns: Vec<String> = Vec::new();
        for rdn in parsed.subject().iter() {
            for attr in rdn.iter() {
                let kind = x509_parser::objects::oid2abbrev(attr.attr_type(), x509_parser::objects::oid_registry()).map(str::to_string).unwrap_or_else(|_| attr.attr_type().to_id_string());
                let value = attr.as_str().map_err(|_| "a subject attribute is not text".to_string())?;
                rdns.push(rdn_key(&kind, value));
            }
        }
        // RFC 4514 writes the last RDN first; accept the certificate's order too.
        let forward = rdns.join(",");
        rdns.reverse();
        return if registered == rdns.join(",") || registered == forward { Ok(()) } else { Err("the certificate's subject is not the registered DN".into()) };
    }
    if let Some(registered) = &client.tls_client_auth_san_dns {
        let sans = parsed.subject_alternative_name().ok().flatten().map(|ext| ext.value.general_names.clone()).unwrap_or_default();
        let matches = sans.iter().any(|n| matches!(n, GeneralName::DNSName(d) if d.eq_ignore_ascii_case(registered)));
        return if matches { Ok(()) } else { Err("the certificate has no DNS name equal to the registered one".into()) };
    }
    Err("no subject is registered for tls_client_auth".into())
}

fn rdn_key(kind: &str, value: &str) -> String {
    format!("{}={}", kind.trim().to_ascii_uppercase(), value.trim().to_lowercase())
}

/// An RFC 4514 DN string in the form compared above: `TYPE=value` pairs (types upper-cased,
/// values lower-cased and trimmed) joined by commas, in the order written.
pub fn normalise_dn(dn: &str) -> Result<String, String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut chars = dn.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => current.push(chars.next().ok_or_else(|| format!("the DN `{dn}` ends with a lone backslash"))?),
            ',' | ';' => parts.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    parts.push(current);
    let pairs: Result<Vec<String>, String> = parts
        .iter()
        .map(|p| match p.split_once('=') {
            Some((kind, value)) if !kind.trim().is_empty() && !value.trim().is_empty() => Ok(rdn_key(kind, value)),
            _ => Err(format!("the DN `{dn}` is not a list of TYPE=value pairs")),
        })
        .collect();
    pairs.map(|p| p.join(","))
}

#[cfg(test)]
mod tests {
    use super::normalise_dn;

    #[test]
    fn distinguished_names_compare_without_case_or_spaces() {
        assert_eq!(normalise_dn("CN=Billing Service, O=Example Corp,C=US").unwrap(), "CN=billing service,O=example corp,C=US".replace("C=US", "C=us"));
        assert_eq!(normalise_dn("cn=a\\,b,o=x").unwrap(), "CN=a,b,O=x");
        assert!(normalise_dn("CN=").is_err());
        assert!(normalise_dn("just text").is_err());
        assert!(normalise_dn("CN=a\\").is_err());
    }
}
