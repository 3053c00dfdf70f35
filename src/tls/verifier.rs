//! A client-certificate verifier that asks for a certificate and accepts any, checking only the
//! handshake signature (the client holds the certificate's private key). Which certificates
//! authenticate which client is client authentication's business (`oauth::client_auth`), where a
//! self-signed certificate registered by one client and a CA-issued one for another can both
//! be judged.

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, Error, RootCertStore, SignatureScheme};

#[derive(Debug)]
pub struct AnyClientCertificate {
    /// The client CAs' names, sent as hints so that a client picks a certificate they issued.
    hints: Vec<DistinguishedName>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl AnyClientCertificate {
    pub fn new(client_roots: &[CertificateDer<'static>], provider: &Arc<CryptoProvider>) -> anyhow::Result<Self> {
        let mut roots = RootCertStore::empty();
        for root in client_roots {
            roots.add(root.clone()).map_err(|e| anyhow::anyhow!("tls.client_ca_file: {e}"))?;
        }
        Ok(Self { hints: roots.subjects(), algorithms: provider.signature_verification_algorithms })
    }
}

impl ClientCertVerifier for AnyClientCertificate {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(&self, _end_entity: &CertificateDer<'_>, _intermediates: &[CertificateDer<'_>], _now: UnixTime) -> Result<ClientCertVerified, Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(&self, message: &[u8], cert: &CertificateDer<'_>, dss: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(&self, message: &[u8], cert: &CertificateDer<'_>, dss: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
