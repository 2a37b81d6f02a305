//! The users of the test IdP, mirrored from `tests/idp/users.mjs`.
//!
//! The self-test `every_test_user_logs_in_with_the_documented_claims`
//! (tests/tests/testbed_idp.rs) logs each one in and compares the ID token's
//! claims with these accessors, so the two lists cannot drift apart.

/// A user the test IdP knows. Each password is `<login>-password`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TestUser {
    /// `alice`: groups `dev`, `ops`; verified email. The everyday user.
    Alice,
    /// `bob`: no `groups` claim at all; verified email.
    Bob,
    /// `mallory`: `preferred_username` is `system:admin` and groups include
    /// `system:masters`, the reserved-prefix attack on Kubernetes identities.
    Mallory,
    /// `erin`: `email_verified` is false (kube-apiserver refuses an email
    /// username from such a token).
    Erin,
    /// `gwen`: 150 long group names, so her ID token is larger than one
    /// 3800-byte Headlamp cookie chunk.
    Gwen,
}

impl TestUser {
    /// Every test user.
    pub const ALL: [TestUser; 5] = [
        TestUser::Alice,
        TestUser::Bob,
        TestUser::Mallory,
        TestUser::Erin,
        TestUser::Gwen,
    ];

    /// The name typed into the IdP's login form.
    pub fn login(self) -> &'static str {
        match self {
            TestUser::Alice => "alice",
            TestUser::Bob => "bob",
            TestUser::Mallory => "mallory",
            TestUser::Erin => "erin",
            TestUser::Gwen => "gwen",
        }
    }

    /// The password typed into the IdP's login form: `<login>-password`.
    pub fn password(self) -> String {
        format!("{}-password", self.login())
    }

    /// The `sub` claim: `sub-<login>` (deliberately different from the
    /// username, so a test can tell which claim a component used).
    pub fn sub(self) -> String {
        format!("sub-{}", self.login())
    }

    /// The `preferred_username` claim.
    pub fn preferred_username(self) -> &'static str {
        match self {
            TestUser::Mallory => "system:admin",
            other => other.login(),
        }
    }

    /// The `email` claim: `<login>@example.com`.
    pub fn email(self) -> String {
        format!("{}@example.com", self.login())
    }

    /// The `email_verified` claim.
    pub fn email_verified(self) -> bool {
        !matches!(self, TestUser::Erin)
    }

    /// The `name` claim.
    pub fn name(self) -> &'static str {
        match self {
            TestUser::Alice => "Alice Liddell",
            TestUser::Bob => "Bob Builder",
            TestUser::Mallory => "Mallory",
            TestUser::Erin => "Erin Unverified",
            TestUser::Gwen => "Gwen Manygroups",
        }
    }

    /// The `groups` claim, or `None` when the token has no such claim.
    pub fn groups(self) -> Option<Vec<String>> {
        let fixed: &[&str] = match self {
            TestUser::Alice => &["dev", "ops"],
            TestUser::Bob => return None,
            TestUser::Mallory => &["system:masters", "dev"],
            TestUser::Erin => &["dev"],
            TestUser::Gwen => {
                return Some(
                    (0..150)
                        .map(|i| format!("headlamp-test-group-{i:03}"))
                        .collect(),
                );
            }
        };
        Some(fixed.iter().map(|g| (*g).to_owned()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins_are_distinct_and_passwords_follow_the_documented_rule() {
        let logins: std::collections::HashSet<_> =
            TestUser::ALL.iter().map(|u| u.login()).collect();
        assert_eq!(logins.len(), TestUser::ALL.len());
        assert_eq!(TestUser::Alice.password(), "alice-password");
        assert!(
            TestUser::Mallory
                .preferred_username()
                .starts_with("system:")
        );
        assert_eq!(TestUser::Gwen.groups().map(|g| g.len()), Some(150));
    }
}
