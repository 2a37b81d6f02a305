//! What one OIDC client (one cluster's sign-in) is configured with.
//!
//! The server maps its `-oidc-*` flags into an [`OidcProviderSettings`];
//! clusters whose kubeconfig user has an `auth-provider` of name `oidc` use
//! [`OidcProviderSettings::from_auth_provider_config`] instead. This crate
//! does not depend on headlamp-config: the dependency points from the server
//! to both.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine;
use headlamp_core::Secret;

use crate::OidcError;
use crate::http_client::{HttpLimits, IdpTls};

/// The `openid` scope, always sent first
/// ([OIDC Core section 3.1.2.1](https://openid.net/specs/openid-connect-core-1_0.html#AuthRequest):
/// "OpenID Connect requests MUST contain the openid scope value").
pub const OPENID_SCOPE: &str = "openid";

/// Settings of one OIDC client.
#[derive(Debug, Clone)]
pub struct OidcProviderSettings {
    /// `oidc-idp-issuer-url`: where discovery starts
    /// (`{issuer}/.well-known/openid-configuration`).
    pub issuer_url: String,
    /// `oidc-client-id`.
    pub client_id: String,
    /// `oidc-client-secret`; `None` for a public client (then PKCE is what
    /// protects the code).
    pub client_secret: Option<Secret>,
    /// `oidc-validator-idp-issuer-url`: the `iss` tokens carry when it
    /// differs from the discovery URL (an IdP reached through an internal
    /// address). Discovery then accepts a document reporting this issuer.
    pub validator_issuer_url: Option<String>,
    /// `oidc-validator-client-id`: the audience ID tokens carry when it is
    /// not the client id.
    pub validator_client_id: Option<String>,
    /// `oidc-scopes` (without `openid`; it is always added first).
    pub scopes: Vec<String>,
    /// `oidc-ca-file` / `idp-certificate-authority[-data]` and
    /// `oidc-skip-tls-verify`.
    pub tls: IdpTls,
    /// `oidc-use-pkce` (default true: S256 PKCE,
    /// [RFC 7636](https://www.rfc-editor.org/rfc/rfc7636)).
    pub use_pkce: bool,
    /// `oidc-use-access-token`: send the access token, not the ID token,
    /// to the API server.
    pub use_access_token: bool,
    /// Timeouts and response size limit for IdP requests.
    pub http: HttpLimits,
}

impl OidcProviderSettings {
    /// Settings with Headlamp's defaults: scopes `profile,email`, PKCE on,
    /// ID token to the API server, public web roots.
    pub fn new(issuer_url: impl Into<String>, client_id: impl Into<String>) -> Self {
        Self {
            issuer_url: issuer_url.into(),
            client_id: client_id.into(),
            client_secret: None,
            validator_issuer_url: None,
            validator_client_id: None,
            scopes: vec!["profile".to_owned(), "email".to_owned()],
            tls: IdpTls::default(),
            use_pkce: true,
            use_access_token: false,
            http: HttpLimits::default(),
        }
    }

    /// Sets the client secret (an empty secret means a public client).
    pub fn with_client_secret(mut self, secret: Secret) -> Self {
        self.client_secret = (!secret.is_empty()).then_some(secret);
        self
    }

    /// Settings from a kubeconfig user's `auth-provider.config` map, as
    /// kubectl's (removed) oidc auth provider and Headlamp read it:
    /// `client-id`, `client-secret`, `idp-issuer-url`, `scope` (comma list),
    /// `idp-certificate-authority` (file) and
    /// `idp-certificate-authority-data` (base64 PEM, wins over the file, as
    /// in Headlamp). Other settings come from `defaults` (the global flags'
    /// PKCE, access-token, TLS-skip and limit choices).
    pub fn from_auth_provider_config(
        config: &BTreeMap<String, String>,
        defaults: &OidcProviderSettings,
    ) -> Result<Self, OidcError> {
        let required = |key: &'static str| {
            config
                .get(key)
                .map(|v| v.trim())
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
                .ok_or(OidcError::MissingAuthProviderKey { key })
        };
        let issuer_url = required("idp-issuer-url")?;
        let client_id = required("client-id")?;
        let mut settings = Self {
            issuer_url,
            client_id,
            client_secret: None,
            // The validator overrides are global-flag concepts for the
            // in-cluster IdP; a kubeconfig user names its own issuer.
            validator_issuer_url: None,
            validator_client_id: None,
            scopes: defaults.scopes.clone(),
            tls: IdpTls {
                ca_pem: None,
                insecure_skip_verify: defaults.tls.insecure_skip_verify,
            },
            use_pkce: defaults.use_pkce,
            use_access_token: defaults.use_access_token,
            http: defaults.http,
        };
        if let Some(secret) = config.get("client-secret") {
            settings = settings.with_client_secret(Secret::new(secret.clone()));
        }
        if let Some(scope) = config.get("scope") {
            settings.scopes = split_scopes(scope);
        }
        if let Some(path) = config.get("idp-certificate-authority") {
            let pem =
                std::fs::read(Path::new(path)).map_err(|e| OidcError::InvalidCaCertificate {
                    source_name: format!("idp-certificate-authority file {path}"),
                    reason: format!("cannot read it: {e}"),
                })?;
            settings.tls.ca_pem = Some((format!("idp-certificate-authority file {path}"), pem));
        }
        if let Some(data) = config.get("idp-certificate-authority-data") {
            let pem = base64::engine::general_purpose::STANDARD
                .decode(data.trim())
                .map_err(|e| OidcError::InvalidCaCertificate {
                    source_name: "idp-certificate-authority-data".to_owned(),
                    reason: format!("not valid base64: {e}"),
                })?;
            settings.tls.ca_pem = Some(("idp-certificate-authority-data".to_owned(), pem));
        }
        settings.validate()?;
        Ok(settings)
    }

    /// Checks what can be checked without the network.
    pub fn validate(&self) -> Result<(), OidcError> {
        check_issuer_url("oidc-idp-issuer-url", &self.issuer_url)?;
        if let Some(v) = &self.validator_issuer_url {
            // The validator issuer is compared with `iss`, never fetched, but
            // an issuer is always an https (or, for tests, http) URL
            // (OIDC Core section 2, `iss`).
            check_issuer_url("oidc-validator-idp-issuer-url", v)?;
        }
        if self.client_id.trim().is_empty() {
            return Err(OidcError::setting(
                "oidc-client-id",
                "it is empty; set the client id registered at the IdP",
            ));
        }
        Ok(())
    }

    /// The `scope` parameter: `openid` first, then the configured scopes
    /// in order, without duplicates or empty entries.
    pub fn scope_parameter(&self) -> String {
        let mut scope = String::from(OPENID_SCOPE);
        let mut seen: Vec<&str> = vec![OPENID_SCOPE];
        for s in self.scopes.iter().map(|s| s.trim()) {
            if s.is_empty() || seen.contains(&s) {
                continue;
            }
            seen.push(s);
            scope.push(' ');
            scope.push_str(s);
        }
        scope
    }

    /// The audience ID tokens must carry: the validator client id when set,
    /// else the client id.
    pub fn expected_audience(&self) -> &str {
        self.validator_client_id
            .as_deref()
            .filter(|v| !v.is_empty())
            .unwrap_or(&self.client_id)
    }

    /// The `iss` ID tokens must carry: the validator issuer when set, else
    /// the issuer URL.
    pub fn expected_issuer(&self) -> &str {
        self.validator_issuer_url
            .as_deref()
            .filter(|v| !v.is_empty())
            .unwrap_or(&self.issuer_url)
    }
}

/// Splits a comma-separated scope list (`oidc-scopes`, kubeconfig `scope`).
pub fn split_scopes(list: &str) -> Vec<String> {
    list.split([',', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn check_issuer_url(setting: &str, value: &str) -> Result<(), OidcError> {
    let url = url::Url::parse(value).map_err(|e| {
        OidcError::setting(
            setting,
            format!("\"{value}\" is not an absolute URL ({e}); use e.g. https://idp.example.com/realms/main"),
        )
    })?;
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    // OIDC Core section 16.17: TLS is required between client and IdP; the
    // code, client secret and tokens cross this connection. Plain http is
    // accepted only to a loopback IdP (local development, tests).
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => {
            return Err(OidcError::setting(
                setting,
                format!(
                    "\"{value}\" must be an https:// URL (http:// is accepted only for \
                     localhost and loopback addresses)"
                ),
            ));
        }
    }
    if url.query().is_some() || url.fragment().is_some() {
        // OIDC Core section 2: the issuer has no query or fragment.
        return Err(OidcError::setting(
            setting,
            format!("\"{value}\" must not have a query or fragment"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn scope_has_openid_first_once() {
        let mut s = OidcProviderSettings::new("https://idp.example", "c");
        assert_eq!(s.scope_parameter(), "openid profile email");
        s.scopes = split_scopes("groups, openid,,email,groups");
        assert_eq!(s.scope_parameter(), "openid groups email");
        s.scopes.clear();
        assert_eq!(s.scope_parameter(), "openid");
    }

    #[test]
    fn auth_provider_config_names_the_missing_key() {
        let defaults = OidcProviderSettings::new("https://global.example", "global");
        let err =
            OidcProviderSettings::from_auth_provider_config(&map(&[("client-id", "k")]), &defaults)
                .unwrap_err();
        assert!(matches!(
            err,
            OidcError::MissingAuthProviderKey {
                key: "idp-issuer-url"
            }
        ));
        assert!(err.to_string().contains("\"idp-issuer-url\""));
        let err = OidcProviderSettings::from_auth_provider_config(
            &map(&[("idp-issuer-url", "https://idp.example")]),
            &defaults,
        )
        .unwrap_err();
        assert!(matches!(
            err,
            OidcError::MissingAuthProviderKey { key: "client-id" }
        ));
    }

    #[test]
    fn auth_provider_config_reads_every_key() {
        let defaults = OidcProviderSettings::new("https://global.example", "global");
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "-----BEGIN CERTIFICATE-----\n").unwrap();
        let s = OidcProviderSettings::from_auth_provider_config(
            &map(&[
                ("client-id", "kube"),
                ("client-secret", "s3cret"),
                ("idp-issuer-url", "https://idp.example/realms/k"),
                ("scope", "groups,offline_access"),
                ("idp-certificate-authority", ca.to_str().unwrap()),
            ]),
            &defaults,
        )
        .unwrap();
        assert_eq!(s.client_id, "kube");
        assert_eq!(s.client_secret.as_ref().unwrap().expose(), "s3cret");
        assert_eq!(s.scope_parameter(), "openid groups offline_access");
        assert!(s.tls.ca_pem.as_ref().unwrap().0.contains("ca.pem"));
        assert!(s.use_pkce);

        let data = base64::engine::general_purpose::STANDARD.encode("PEM DATA");
        let s = OidcProviderSettings::from_auth_provider_config(
            &map(&[
                ("client-id", "kube"),
                ("idp-issuer-url", "https://idp.example"),
                (
                    "idp-certificate-authority",
                    "/nonexistent/ignored-because-data-wins",
                ),
                ("idp-certificate-authority-data", &data),
            ]),
            &defaults,
        );
        // The file is read first (as Headlamp does), so a missing file is an
        // error even when data is present: the kubeconfig is wrong.
        assert!(s.unwrap_err().to_string().contains("/nonexistent"));
        let s = OidcProviderSettings::from_auth_provider_config(
            &map(&[
                ("client-id", "kube"),
                ("idp-issuer-url", "https://idp.example"),
                ("idp-certificate-authority-data", &data),
            ]),
            &defaults,
        )
        .unwrap();
        assert_eq!(s.tls.ca_pem.unwrap().1, b"PEM DATA");
        assert!(s.client_secret.is_none());
        let err = OidcProviderSettings::from_auth_provider_config(
            &map(&[
                ("client-id", "kube"),
                ("idp-issuer-url", "https://idp.example"),
                ("idp-certificate-authority-data", "%%%"),
            ]),
            &defaults,
        )
        .unwrap_err();
        assert!(err.to_string().contains("base64"), "{err}");
    }

    #[test]
    fn validation_explains_bad_urls() {
        let s = OidcProviderSettings::new("idp.example", "c");
        assert!(
            s.validate()
                .unwrap_err()
                .to_string()
                .contains("not an absolute URL")
        );
        let s = OidcProviderSettings::new("ftp://idp.example", "c");
        assert!(s.validate().is_err());
        let s = OidcProviderSettings::new("http://idp.example", "c");
        assert!(s.validate().unwrap_err().to_string().contains("https://"));
        for ok in [
            "http://127.0.0.1:5556",
            "http://localhost:8080/dex",
            "http://[::1]:1",
        ] {
            OidcProviderSettings::new(ok, "c").validate().unwrap();
        }
        let s = OidcProviderSettings::new("https://idp.example", " ");
        assert!(
            s.validate()
                .unwrap_err()
                .to_string()
                .contains("oidc-client-id")
        );
        let mut s = OidcProviderSettings::new("https://idp.example", "c");
        s.validator_client_id = Some("aud".into());
        s.validator_issuer_url = Some("https://public.example".into());
        assert_eq!(s.expected_audience(), "aud");
        assert_eq!(s.expected_issuer(), "https://public.example");
    }
}
