//! Verified claims -> Kubernetes identity, the way kube-apiserver's OIDC
//! authenticator does it (`--oidc-username-claim`, `--oidc-groups-claim`,
//! `--oidc-required-claim`, ...; see
//! <https://kubernetes.io/docs/reference/access-authn-authz/authentication/#openid-connect-tokens>).

use std::collections::BTreeMap;

use headlamp_core::Identity;
use serde_json::Value;

use crate::validator::json_type;
use crate::{JwtError, VerifiedToken};

/// Default username claim (seed: `-oidc-impersonate-claim`).
pub const DEFAULT_USERNAME_CLAIM: &str = "preferred_username";

/// Default groups claim (`-oidc-groups-claim`).
pub const DEFAULT_GROUPS_CLAIM: &str = "groups";

/// How claims become a username, groups and uid.
///
/// Claim names may be dotted paths into nested objects
/// (`realm_access.roles`, Keycloak's realm roles); a top-level claim whose
/// name itself contains dots is preferred when present.
///
/// ```
/// use headlamp_jwt::ClaimMapping;
///
/// let mapping = ClaimMapping::new()
///     .with_username_claim("email")
///     .with_username_prefix("oidc:")
///     .with_groups_claim("realm_access.roles")
///     .with_groups_prefix("oidc:")
///     .with_required_claim("hd", "example.com");
/// assert_eq!(mapping.username_claim(), "email");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimMapping {
    username_claim: String,
    username_prefix: String,
    groups_claim: Option<String>,
    groups_prefix: String,
    uid_claim: Option<String>,
    required_claims: Vec<(String, String)>,
}

impl Default for ClaimMapping {
    fn default() -> Self {
        Self::new()
    }
}

impl ClaimMapping {
    /// Username from `preferred_username`, groups from `groups`, no
    /// prefixes, no uid, no required claims.
    pub fn new() -> Self {
        Self {
            username_claim: DEFAULT_USERNAME_CLAIM.to_owned(),
            username_prefix: String::new(),
            groups_claim: Some(DEFAULT_GROUPS_CLAIM.to_owned()),
            groups_prefix: String::new(),
            uid_claim: None,
            required_claims: Vec::new(),
        }
    }

    /// The claim holding the username. With `email`, a token whose
    /// `email_verified` is present and not `true` is rejected, as
    /// kube-apiserver does.
    pub fn with_username_claim(mut self, claim: impl Into<String>) -> Self {
        self.username_claim = claim.into();
        self
    }

    /// Prepended to every username (`-oidc-username-prefix`).
    pub fn with_username_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.username_prefix = prefix.into();
        self
    }

    /// The claim holding the groups, a string or an array of strings.
    pub fn with_groups_claim(mut self, claim: impl Into<String>) -> Self {
        self.groups_claim = Some(claim.into());
        self
    }

    /// Ignore groups entirely.
    pub fn without_groups(mut self) -> Self {
        self.groups_claim = None;
        self
    }

    /// Prepended to every group (`-oidc-groups-prefix`).
    pub fn with_groups_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.groups_prefix = prefix.into();
        self
    }

    /// The claim holding a stable user id (`Impersonate-Uid`), e.g. `sub`.
    pub fn with_uid_claim(mut self, claim: impl Into<String>) -> Self {
        self.uid_claim = Some(claim.into());
        self
    }

    /// Requires the claim `name` to be the string `value`
    /// (`-oidc-required-claim name=value`, repeatable).
    pub fn with_required_claim(
        mut self,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Self {
        self.required_claims.push((name.into(), value.into()));
        self
    }

    /// The username claim.
    pub fn username_claim(&self) -> &str {
        &self.username_claim
    }

    /// Maps verified claims to an identity.
    ///
    /// Every value goes through [`Identity::new`], so an empty name, a
    /// control character (CR/LF header injection) or a `system:` name
    /// (after prefixing) is an error, never a header.
    pub fn identity(&self, token: &VerifiedToken) -> Result<Identity, JwtError> {
        for (name, expected) in &self.required_claims {
            // kube-apiserver: the claim must be a string equal to the value.
            match token.claim(name) {
                Some(Value::String(actual)) if actual == expected => {}
                Some(other) => {
                    return Err(JwtError::RequiredClaimMismatch {
                        claim: name.clone(),
                        expected: expected.clone(),
                        actual: truncate_json(other),
                    });
                }
                None => return Err(JwtError::missing_claim(name)),
            }
        }

        let username = string_claim(token, &self.username_claim)?
            .ok_or_else(|| JwtError::missing_claim(&self.username_claim))?;
        if self.username_claim == "email" {
            // kube-apiserver (plugin/pkg/authenticator/token/oidc): when
            // email_verified is present it must be the boolean true; when
            // absent the email is accepted. OIDC Core section 5.1.
            match token.claim("email_verified") {
                None | Some(Value::Bool(true)) => {}
                Some(Value::Bool(false)) => return Err(JwtError::EmailNotVerified),
                Some(other) => {
                    return Err(JwtError::invalid_claim(
                        "email_verified",
                        format!("must be a boolean, not {}", json_type(other)),
                    ));
                }
            }
        }
        let username = format!("{}{username}", self.username_prefix);

        let groups = match &self.groups_claim {
            None => Vec::new(),
            Some(claim) => self.groups(token, claim)?,
        };

        let uid = match &self.uid_claim {
            None => None,
            Some(claim) => Some(
                string_claim(token, claim)?
                    .ok_or_else(|| JwtError::missing_claim(claim))?
                    .to_owned(),
            ),
        };

        Ok(Identity::new(username, uid, groups, BTreeMap::new())?)
    }

    fn groups(&self, token: &VerifiedToken, claim: &str) -> Result<Vec<String>, JwtError> {
        // kube-apiserver accepts a single string as one group
        // (kubernetes/kubernetes#33290) and an absent or null claim as none.
        match token.claim(claim) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::String(group)) => Ok(vec![format!("{}{group}", self.groups_prefix)]),
            Some(Value::Array(list)) => list
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::String(group) => Ok(format!("{}{group}", self.groups_prefix)),
                    other => Err(JwtError::invalid_claim(
                        claim,
                        format!("group #{i} must be a string, not {}", json_type(other)),
                    )),
                })
                .collect(),
            Some(other) => Err(JwtError::invalid_claim(
                claim,
                format!(
                    "must be a string or an array of strings, not {}",
                    json_type(other)
                ),
            )),
        }
    }
}

fn string_claim<'t>(token: &'t VerifiedToken, claim: &str) -> Result<Option<&'t str>, JwtError> {
    match token.claim(claim) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(JwtError::invalid_claim(
            claim,
            format!("must be a string, not {}", json_type(other)),
        )),
    }
}

fn truncate_json(value: &Value) -> String {
    crate::error::untrusted(&value.to_string())
}
