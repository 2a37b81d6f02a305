use std::collections::BTreeMap;
use std::fmt;

/// The prefix Kubernetes reserves for its own users and groups
/// (`system:masters`, `system:serviceaccount:...`, `system:nodes`).
///
/// An end user's token must never be able to claim one through
/// impersonation: see
/// <https://kubernetes.io/docs/reference/access-authn-authz/authentication/#users-in-kubernetes>
/// and the `system:` rule in the kube-apiserver OIDC docs ("claim values
/// must not begin with `system:`" for username and group prefixes).
pub const RESERVED_PREFIX: &str = "system:";

/// Who a verified bearer token says the caller is, in the terms Kubernetes
/// impersonation uses (`Impersonate-User`, `Impersonate-Group`,
/// `Impersonate-Uid`, `Impersonate-Extra-*`; see
/// <https://kubernetes.io/docs/reference/access-authn-authz/authentication/#user-impersonation>).
///
/// The only way to build one is [`Identity::new`], which rejects every value
/// that is unsafe to put in a header or that names a Kubernetes system
/// identity. Code that turns an `Identity` into headers therefore needs no
/// checks of its own.
#[derive(Clone, PartialEq, Eq)]
pub struct Identity {
    // Shared: an identity is cloned out of the verified-token cache on every
    // request, and a token with hundreds of groups would otherwise cost
    // hundreds of string allocations per clone.
    inner: std::sync::Arc<IdentityFields>,
}

#[derive(PartialEq, Eq)]
struct IdentityFields {
    username: String,
    uid: Option<String>,
    groups: Vec<String>,
    extra: BTreeMap<String, Vec<String>>,
}

/// Why a set of claim values cannot become an [`Identity`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The username (after any configured prefix) is empty.
    #[error("the username is empty; the token's username claim must hold a non-empty string")]
    EmptyUsername,
    /// A group name is empty.
    #[error("group #{index} is empty; every group must be a non-empty string")]
    EmptyGroup {
        /// Position of the group in the token's groups claim.
        index: usize,
    },
    /// A value holds a character that cannot be sent in an HTTP header
    /// (control characters such as CR or LF, DEL) or has surrounding
    /// white space that a proxy would silently trim.
    #[error("the {field} {value:?} contains a character that cannot be sent in an HTTP header")]
    UnsafeCharacter {
        /// Which value: "username", "group", "uid", "extra key", "extra value".
        field: &'static str,
        /// The offending value, escaped by `Debug` so a CR/LF cannot forge a log line.
        value: String,
    },
    /// A username or group begins with `system:`, which Kubernetes reserves.
    #[error(
        "the {field} {value:?} begins with the reserved prefix \"system:\"; Kubernetes system \
         identities cannot be claimed by a token (set a username or groups prefix to namespace \
         IdP values)"
    )]
    ReservedPrefix {
        /// "username" or "group".
        field: &'static str,
        /// The offending value.
        value: String,
    },
    /// An extra key is not usable as part of an `Impersonate-Extra-<key>` header name.
    #[error(
        "the extra key {key:?} is not valid: keys must be non-empty and made of lower-case \
         letters, digits and the characters -._~/%"
    )]
    InvalidExtraKey {
        /// The offending key.
        key: String,
    },
}

fn check_header_safe(field: &'static str, value: &str) -> Result<(), IdentityError> {
    // RFC 9110 section 5.5: field values are visible characters, spaces and
    // tabs between them, and obs-text (bytes >= 0x80, which is how UTF-8
    // names such as "josé" travel). CR, LF, NUL and the other controls would
    // let a claim value split or forge headers.
    let unsafe_char = value.chars().any(|c| c.is_control());
    let padded = value.starts_with([' ', '\t']) || value.ends_with([' ', '\t']);
    if unsafe_char || padded {
        return Err(IdentityError::UnsafeCharacter {
            field,
            value: value.to_owned(),
        });
    }
    Ok(())
}

fn check_not_reserved(field: &'static str, value: &str) -> Result<(), IdentityError> {
    if value.starts_with(RESERVED_PREFIX) {
        return Err(IdentityError::ReservedPrefix {
            field,
            value: value.to_owned(),
        });
    }
    Ok(())
}

fn check_extra_key(key: &str) -> Result<(), IdentityError> {
    // kube-apiserver lower-cases `Impersonate-Extra-<key>` names and
    // percent-decodes them; we only accept keys that survive that round trip
    // unchanged as an HTTP token (RFC 9110 section 5.6.2).
    let ok = !key.is_empty()
        && key.bytes().all(|b| {
            b.is_ascii_lowercase()
                || b.is_ascii_digit()
                || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/' | b'%')
        });
    if ok {
        Ok(())
    } else {
        Err(IdentityError::InvalidExtraKey {
            key: key.to_owned(),
        })
    }
}

impl Identity {
    /// Builds an identity from claim values that already carry any configured
    /// username or groups prefix.
    ///
    /// ```
    /// use headlamp_core::{Identity, IdentityError};
    /// let alice = Identity::new("oidc:alice", None, vec!["dev".into(), "ops".into()], Default::default())?;
    /// assert_eq!(alice.username(), "oidc:alice");
    ///
    /// let masters = Identity::new("mallory", None, vec!["system:masters".into()], Default::default());
    /// assert!(matches!(masters, Err(IdentityError::ReservedPrefix { .. })));
    ///
    /// let crlf = Identity::new("alice\r\nImpersonate-Group: system:masters", None, vec![], Default::default());
    /// assert!(matches!(crlf, Err(IdentityError::UnsafeCharacter { .. })));
    /// # Ok::<(), IdentityError>(())
    /// ```
    pub fn new(
        username: impl Into<String>,
        uid: Option<String>,
        groups: Vec<String>,
        extra: BTreeMap<String, Vec<String>>,
    ) -> Result<Self, IdentityError> {
        let username = username.into();
        if username.is_empty() {
            return Err(IdentityError::EmptyUsername);
        }
        check_header_safe("username", &username)?;
        check_not_reserved("username", &username)?;
        if let Some(uid) = &uid {
            check_header_safe("uid", uid)?;
        }
        for (index, group) in groups.iter().enumerate() {
            if group.is_empty() {
                return Err(IdentityError::EmptyGroup { index });
            }
            check_header_safe("group", group)?;
            check_not_reserved("group", group)?;
        }
        for (key, values) in &extra {
            check_extra_key(key)?;
            for value in values {
                check_header_safe("extra value", value)?;
            }
        }
        Ok(Self {
            inner: std::sync::Arc::new(IdentityFields {
                username,
                uid,
                groups,
                extra,
            }),
        })
    }

    /// The Kubernetes username (`Impersonate-User`).
    pub fn username(&self) -> &str {
        &self.inner.username
    }

    /// The stable user id (`Impersonate-Uid`), when configured.
    pub fn uid(&self) -> Option<&str> {
        self.inner.uid.as_deref()
    }

    /// The groups (one `Impersonate-Group` header each).
    pub fn groups(&self) -> &[String] {
        &self.inner.groups
    }

    /// Extra attributes (`Impersonate-Extra-<key>` headers).
    pub fn extra(&self) -> &BTreeMap<String, Vec<String>> {
        &self.inner.extra
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("username", &self.inner.username)
            .field("uid", &self.inner.uid)
            .field("groups", &self.inner.groups)
            .field("extra", &self.inner.extra)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(user: &str, groups: &[&str]) -> Result<Identity, IdentityError> {
        Identity::new(
            user,
            None,
            groups.iter().map(|g| g.to_string()).collect(),
            BTreeMap::new(),
        )
    }

    #[test]
    fn accepts_ordinary_and_utf8_names() {
        assert!(id("alice", &["dev", "ops"]).is_ok());
        assert!(id("josé@example.com", &["équipe"]).is_ok());
        assert!(
            id("oidc:system:alice", &[]).is_ok(),
            "prefixed names are fine"
        );
    }

    #[test]
    fn rejects_unsafe_values() {
        assert_eq!(id("", &[]), Err(IdentityError::EmptyUsername));
        assert_eq!(
            id("a", &["ok", ""]),
            Err(IdentityError::EmptyGroup { index: 1 })
        );
        for bad in ["a\rb", "a\nb", "a\0b", "a\u{7f}", " alice", "alice\t"] {
            assert!(
                matches!(
                    id(bad, &[]),
                    Err(IdentityError::UnsafeCharacter {
                        field: "username",
                        ..
                    })
                ),
                "{bad:?}"
            );
            assert!(matches!(
                id("alice", &[bad]),
                Err(IdentityError::UnsafeCharacter { field: "group", .. })
            ));
        }
        assert!(matches!(
            id("system:admin", &[]),
            Err(IdentityError::ReservedPrefix {
                field: "username",
                ..
            })
        ));
        assert!(matches!(
            id("alice", &["system:masters"]),
            Err(IdentityError::ReservedPrefix { field: "group", .. })
        ));
    }

    #[test]
    fn checks_extra_keys_and_uid() {
        let mut extra = BTreeMap::new();
        extra.insert("scopes.example.com/team".to_string(), vec!["a".to_string()]);
        assert!(Identity::new("alice", Some("1234".into()), vec![], extra).is_ok());
        let mut bad = BTreeMap::new();
        bad.insert("Bad Key".to_string(), vec![]);
        assert!(matches!(
            Identity::new("alice", None, vec![], bad),
            Err(IdentityError::InvalidExtraKey { .. })
        ));
        assert!(Identity::new("alice", Some("x\ny".into()), vec![], BTreeMap::new()).is_err());
    }
}
