//! HTTPS serving (`-tls-cert-path`, `-tls-key-path`) with rustls on the
//! workspace's single crypto provider (aws-lc-rs, docs/adr).

use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::server::ServerError;
use headlamp_config::TlsSettings;

/// Builds the acceptor. ALPN offers HTTP/2 and HTTP/1.1 so browsers get h2
/// and WebSocket/SPDY upgrades still work over HTTP/1.1 (RFC 7301).
pub(crate) fn acceptor(settings: &TlsSettings) -> Result<TlsAcceptor, ServerError> {
    let certs = load_certs(&settings.cert_path)?;
    let key = PrivateKeyDer::from_pem_file(&settings.key_path).map_err(|err| ServerError::Tls {
        path: settings.key_path.display().to_string(),
        reason: format!("cannot read a private key: {err}"),
    })?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|builder| builder.with_no_client_auth().with_single_cert(certs, key))
        .map_err(|err| ServerError::Tls {
            path: settings.cert_path.display().to_string(),
            reason: format!("certificate and key do not form a usable pair: {err}"),
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, ServerError> {
    let tls_error = |reason: String| ServerError::Tls {
        path: path.display().to_string(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|err| tls_error(format!("cannot read certificates: {err}")))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| tls_error(format!("cannot parse a certificate: {err}")))?;
    if certs.is_empty() {
        return Err(tls_error("holds no certificate".to_owned()));
    }
    Ok(certs)
}
