use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The Kubernetes group every authenticated request carries
/// (<https://kubernetes.io/docs/reference/access-authn-authz/authentication/#authentication-strategies>:
/// "The system:authenticated group is included in the list of groups for
/// all authenticated users").
pub const ALL_AUTHENTICATED: &str = "system:authenticated";
/// The group of anonymous requests.
pub const ALL_UNAUTHENTICATED: &str = "system:unauthenticated";
/// The anonymous user name.
pub const ANONYMOUS: &str = "system:anonymous";

/// Who the test API server thinks a request comes from: Kubernetes'
/// `user.Info`, serialised as the `userInfo` of a `SelfSubjectReview`
/// (`authentication.k8s.io/v1` `UserInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct UserInfo {
    /// The user name.
    pub username: String,
    /// The stable user id, when the authenticator knows one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    /// Groups, including `system:authenticated`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Extra attributes (`Impersonate-Extra-<key>`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, Vec<String>>,
}

impl UserInfo {
    /// A user with the given name and groups, no uid or extra.
    pub fn new(username: impl Into<String>, groups: &[&str]) -> Self {
        Self {
            username: username.into(),
            uid: String::new(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            extra: BTreeMap::new(),
        }
    }

    /// Whether the user is in `group`.
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }

    /// Adds `system:authenticated` unless the user already has it, as
    /// kube-apiserver's `AuthenticatedGroupAdder` does after every
    /// successful authentication.
    pub(crate) fn with_authenticated_group(mut self) -> Self {
        if self.username != ANONYMOUS
            && !self.in_group(ALL_AUTHENTICATED)
            && !self.in_group(ALL_UNAUTHENTICATED)
        {
            self.groups.push(ALL_AUTHENTICATED.to_owned());
        }
        self
    }
}
