//! Test key material: a throw-away certificate authority and the server and
//! client certificates it issues, written as PEM files to a temporary
//! directory that is removed when the [`TestPki`] is dropped.
//!
//! Everything is generated at run time with rcgen (aws-lc-rs keys), so no
//! opaque certificate blob is checked in and nothing expires between runs.
//!
//! Client certificates follow the Kubernetes X.509 client-certificate
//! convention: the subject common name is the username and each
//! organisation is a group
//! (<https://kubernetes.io/docs/reference/access-authn-authz/authentication/#x509-client-certificates>).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::RootCertStore;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::TestBedError;

/// A test certificate authority with its files in a temporary directory.
pub struct TestPki {
    dir: tempfile::TempDir,
    issuer: Issuer<'static, KeyPair>,
    ca_pem: String,
    ca_der: CertificateDer<'static>,
    ca_path: PathBuf,
}

impl std::fmt::Debug for TestPki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestPki")
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

/// A certificate issued by a [`TestPki`], with its private key, as PEM
/// strings and as files (`<name>.crt`, `<name>.key`) in the PKI directory.
#[derive(Clone)]
pub struct IssuedCert {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The PKCS#8 private key, PEM.
    pub key_pem: String,
    /// Path of the certificate file.
    pub cert_path: PathBuf,
    /// Path of the private key file.
    pub key_path: PathBuf,
    cert_der: CertificateDer<'static>,
    key_der: Vec<u8>,
}

impl std::fmt::Debug for IssuedCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key is test material, but the habit of never printing keys is
        // cheaper to keep than to remember when it matters.
        f.debug_struct("IssuedCert")
            .field("cert_path", &self.cert_path)
            .field("key_path", &self.key_path)
            .field("key_pem", &"[redacted]")
            .finish_non_exhaustive()
    }
}

impl IssuedCert {
    /// The certificate, DER.
    pub fn cert_der(&self) -> CertificateDer<'static> {
        self.cert_der.clone()
    }

    /// The private key, DER (PKCS#8).
    pub fn key_der(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()))
    }
}

fn cert_error(what: &str) -> impl FnOnce(rcgen::Error) -> TestBedError + '_ {
    move |source| TestBedError::Certificate {
        what: what.to_owned(),
        source,
    }
}

impl TestPki {
    /// Generates a fresh CA (ECDSA P-256) and writes `ca.crt` to a new
    /// temporary directory.
    pub fn generate() -> Result<Self, TestBedError> {
        let dir = tempfile::Builder::new()
            .prefix("headlamp-test-pki-")
            .tempdir()
            .map_err(|e| TestBedError::io("creating the test PKI directory", e))?;
        let key = KeyPair::generate().map_err(cert_error("the test CA key"))?;
        let mut params = CertificateParams::new(Vec::<String>::new())
            .map_err(cert_error("the test CA parameters"))?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "headlamp-auth test CA");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params
            .self_signed(&key)
            .map_err(cert_error("the test CA certificate"))?;
        let ca_pem = cert.pem();
        let ca_der = cert.der().clone();
        let ca_path = dir.path().join("ca.crt");
        write_file(&ca_path, ca_pem.as_bytes())?;
        Ok(Self {
            dir,
            issuer: Issuer::new(params, key),
            ca_pem,
            ca_der,
            ca_path,
        })
    }

    /// The directory holding every file this PKI wrote (removed on drop).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The CA certificate, PEM (what kubeconfig's `certificate-authority-data`
    /// carries, base64-encoded).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The CA certificate file (`ca.crt`).
    pub fn ca_path(&self) -> &Path {
        &self.ca_path
    }

    /// The CA certificate, DER.
    pub fn ca_der(&self) -> CertificateDer<'static> {
        self.ca_der.clone()
    }

    /// A rustls root store trusting only this CA.
    pub fn root_store(&self) -> Result<RootCertStore, TestBedError> {
        let mut roots = RootCertStore::empty();
        roots
            .add(self.ca_der())
            .map_err(|source| TestBedError::Tls {
                what: "the test CA root store".to_owned(),
                source,
            })?;
        Ok(roots)
    }

    /// A rustls client configuration trusting this CA (HTTP/1.1 only, as
    /// WebSocket clients need), optionally presenting a client certificate.
    pub fn client_config(
        &self,
        client_cert: Option<&IssuedCert>,
    ) -> Result<Arc<rustls::ClientConfig>, TestBedError> {
        let tls_err = |source| TestBedError::Tls {
            what: "a test client".to_owned(),
            source,
        };
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(tls_err)?
        .with_root_certificates(self.root_store()?);
        let mut config = match client_cert {
            Some(cert) => builder
                .with_client_auth_cert(vec![cert.cert_der()], cert.key_der())
                .map_err(tls_err)?,
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    /// Issues a TLS server certificate valid for `hosts` (DNS names or IP
    /// addresses) and writes `<name>.crt` / `<name>.key`.
    pub fn issue_server_cert(
        &self,
        name: &str,
        hosts: &[&str],
    ) -> Result<IssuedCert, TestBedError> {
        let what = format!("the server certificate {name:?}");
        let mut params =
            CertificateParams::new(hosts.iter().map(|h| (*h).to_owned()).collect::<Vec<_>>())
                .map_err(cert_error(&what))?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        params.distinguished_name = dn;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        self.issue(name, &what, params)
    }

    /// Issues a client certificate for the Kubernetes user `username` in
    /// `group` (subject `CN=<username>, O=<group>`), and writes
    /// `<name>.crt` / `<name>.key`.
    ///
    /// rcgen keeps one value per subject attribute type, so a test client
    /// certificate carries at most one group; Kubernetes itself accepts any
    /// number of `O` attributes, and the test API server reads them all.
    pub fn issue_client_cert(
        &self,
        name: &str,
        username: &str,
        group: Option<&str>,
    ) -> Result<IssuedCert, TestBedError> {
        let what = format!("the client certificate {name:?}");
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(cert_error(&what))?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, username);
        if let Some(group) = group {
            dn.push(DnType::OrganizationName, group);
        }
        params.distinguished_name = dn;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        self.issue(name, &what, params)
    }

    fn issue(
        &self,
        name: &str,
        what: &str,
        params: CertificateParams,
    ) -> Result<IssuedCert, TestBedError> {
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(TestBedError::InvalidOption(format!(
                "certificate file name {name:?} must be non-empty and made of letters, digits, - and _"
            )));
        }
        let key = KeyPair::generate().map_err(cert_error(what))?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(cert_error(what))?;
        let cert_path = self.dir.path().join(format!("{name}.crt"));
        let key_path = self.dir.path().join(format!("{name}.key"));
        let cert_pem = cert.pem();
        let key_pem = key.serialize_pem();
        write_file(&cert_path, cert_pem.as_bytes())?;
        write_file(&key_path, key_pem.as_bytes())?;
        Ok(IssuedCert {
            cert_pem,
            key_pem,
            cert_path,
            key_path,
            cert_der: cert.der().clone(),
            key_der: key.serialize_der(),
        })
    }
}

fn write_file(path: &Path, contents: &[u8]) -> Result<(), TestBedError> {
    std::fs::write(path, contents)
        .map_err(|e| TestBedError::io(format!("writing {}", path.display()), e))
}

/// The subject common name and organisations of a DER certificate: the
/// username and groups Kubernetes derives from a client certificate.
///
/// A minimal DER walk over our own test certificates (TBSCertificate ->
/// subject -> RDNs), enough to read `CN` (2.5.4.3) and `O` (2.5.4.10)
/// without an X.509 parser dependency. Returns `None` for anything that is
/// not a well-formed certificate.
pub(crate) fn subject_user_and_groups(der: &[u8]) -> Option<(String, Vec<String>)> {
    const OID_CN: &[u8] = &[0x55, 0x04, 0x03];
    const OID_O: &[u8] = &[0x55, 0x04, 0x0a];
    let (cert, _) = der_element(der, 0x30)?;
    let (tbs, _) = der_element(cert, 0x30)?;
    let mut rest = tbs;
    // Optional [0] EXPLICIT version.
    if rest.first() == Some(&0xa0) {
        rest = der_element(rest, 0xa0)?.1;
    }
    rest = der_element(rest, 0x02)?.1; // serialNumber
    rest = der_element(rest, 0x30)?.1; // signature AlgorithmIdentifier
    rest = der_element(rest, 0x30)?.1; // issuer
    rest = der_element(rest, 0x30)?.1; // validity
    let (mut subject, _) = der_element(rest, 0x30)?;
    let mut cn = None;
    let mut groups = Vec::new();
    while !subject.is_empty() {
        let (mut rdn, next) = der_element(subject, 0x31)?;
        subject = next;
        while !rdn.is_empty() {
            let (atv, next) = der_element(rdn, 0x30)?;
            rdn = next;
            let (oid, value) = der_element(atv, 0x06)?;
            // DirectoryString: UTF8String (0x0c), PrintableString (0x13),
            // IA5String (0x16) all carry the text bytes directly.
            let tag = *value.first()?;
            let (text, _) = der_element(value, tag)?;
            let text = String::from_utf8(text.to_vec()).ok()?;
            if oid == OID_CN {
                cn = Some(text);
            } else if oid == OID_O {
                groups.push(text);
            }
        }
    }
    Some((cn?, groups))
}

/// Splits one DER element with the expected tag off `input`, returning its
/// contents and the remaining input.
fn der_element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    if *input.first()? != tag {
        return None;
    }
    let first_len = *input.get(1)?;
    let (len, header) = if first_len < 0x80 {
        (usize::from(first_len), 2)
    } else {
        let n = usize::from(first_len & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | usize::from(*input.get(2 + i)?);
        }
        (len, 2 + n)
    };
    let end = header.checked_add(len)?;
    Some((input.get(header..end)?, input.get(end..)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_cert_subject_round_trips() {
        let pki = TestPki::generate().unwrap();
        let cert = pki
            .issue_client_cert("alice", "alice@example.com", Some("dev"))
            .unwrap();
        assert_eq!(
            subject_user_and_groups(&cert.cert_der()),
            Some(("alice@example.com".to_owned(), vec!["dev".to_owned()]))
        );
        let no_group = pki.issue_client_cert("bob", "bob", None).unwrap();
        assert_eq!(
            subject_user_and_groups(&no_group.cert_der()),
            Some(("bob".to_owned(), vec![]))
        );
        assert!(cert.cert_path.exists() && cert.key_path.exists());
        assert!(!format!("{cert:?}").contains("PRIVATE KEY"));
    }

    #[test]
    fn rejects_garbage_der_and_bad_names() {
        assert_eq!(subject_user_and_groups(b"\x30\x82\xff"), None);
        assert_eq!(subject_user_and_groups(b""), None);
        let pki = TestPki::generate().unwrap();
        assert!(pki.issue_server_cert("../evil", &["127.0.0.1"]).is_err());
    }

    #[test]
    fn pki_directory_is_removed_on_drop() {
        let pki = TestPki::generate().unwrap();
        let dir = pki.dir().to_path_buf();
        assert!(pki.ca_path().exists());
        drop(pki);
        assert!(!dir.exists());
    }
}
