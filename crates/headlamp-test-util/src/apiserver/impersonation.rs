//! User impersonation as kube-apiserver's `WithImpersonation` filter does it
//! (`k8s.io/apiserver/pkg/endpoints/filters/impersonation.go`; see
//! <https://kubernetes.io/docs/reference/access-authn-authz/authentication/#user-impersonation>):
//! every requested attribute is authorized as verb `impersonate` on
//! `users` / `serviceaccounts` / `groups` (core group) or `uids` /
//! `userextras/<key>` (`authentication.k8s.io`), in the order user, groups,
//! extras, uid; the first refusal is a 403 for that attribute.

use std::collections::BTreeMap;

use http::HeaderMap;

use super::authz::{Attributes, Policy};
use super::status::KubeStatus;
use super::user::{ALL_AUTHENTICATED, ALL_UNAUTHENTICATED, ANONYMOUS, UserInfo};

const EXTRA_PREFIX: &str = "impersonate-extra-";

#[derive(Debug)]
pub(crate) enum Impersonation {
    /// No `Impersonate-*` header.
    NotRequested,
    /// The caller may act as this user.
    Granted(UserInfo),
    /// 403 for the first attribute the caller may not impersonate.
    Forbidden(KubeStatus),
    /// Groups, uid or extras without `Impersonate-User`: a 400
    /// `BadRequest` Status (current kube-apiserver; releases before it
    /// answered with a plain-text 500).
    WithoutUser(KubeStatus),
}

fn header_values<'a>(headers: &'a HeaderMap, name: &str) -> Vec<&'a str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect()
}

/// `url.PathUnescape`, falling back to the raw key on a bad escape as
/// kube's `unescapeExtraKey` does.
fn unescape_extra_key(key: &str) -> String {
    let bytes = key.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let decoded = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match decoded {
                Some(b) => {
                    out.push(b);
                    i += 3;
                    continue;
                }
                None => return key.to_owned(),
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| key.to_owned())
}

/// `system:serviceaccount:<namespace>:<name>` split into its parts.
fn split_service_account(username: &str) -> Option<(&str, &str)> {
    let rest = username.strip_prefix("system:serviceaccount:")?;
    let (ns, name) = rest.split_once(':')?;
    (!ns.is_empty() && !name.is_empty() && !name.contains(':')).then_some((ns, name))
}

pub(crate) fn impersonate(
    headers: &HeaderMap,
    requestor: &UserInfo,
    policy: &Policy,
) -> Impersonation {
    // Header.Get: the first value.
    let wanted_user = header_values(headers, "impersonate-user")
        .first()
        .copied()
        .unwrap_or("");
    let wanted_uid = header_values(headers, "impersonate-uid")
        .first()
        .copied()
        .unwrap_or("");
    let wanted_groups = header_values(headers, "impersonate-group");
    let mut extra: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for name in headers.keys() {
        if let Some(raw_key) = name.as_str().strip_prefix(EXTRA_PREFIX) {
            let key = unescape_extra_key(&raw_key.to_ascii_lowercase());
            let values = header_values(headers, name.as_str());
            extra
                .entry(key)
                .or_default()
                .extend(values.into_iter().map(str::to_owned));
        }
    }
    if wanted_user.is_empty() {
        if !wanted_groups.is_empty() || !extra.is_empty() || !wanted_uid.is_empty() {
            // `requested %v without impersonating a user`, %v being Go's
            // rendering of the []ObjectReference it built: {Kind Namespace
            // Name UID APIVersion ResourceVersion FieldPath}.
            let mut refs: Vec<String> = wanted_groups
                .iter()
                .map(|g| format!("{{Group  {g}    }}"))
                .collect();
            for (key, values) in &extra {
                for v in values {
                    refs.push(format!(
                        "{{UserExtra  {v}  authentication.k8s.io/v1  {key}}}"
                    ));
                }
            }
            if !wanted_uid.is_empty() {
                refs.push(format!("{{UID  {wanted_uid}  authentication.k8s.io/v1  }}"));
            }
            return Impersonation::WithoutUser(KubeStatus::bad_request(format!(
                "requested [{}] without impersonating a user",
                refs.join(" ")
            )));
        }
        return Impersonation::NotRequested;
    }

    let check =
        |api_group: &str, resource: &str, subresource: &str, namespace: &str, name: &str| {
            let a = Attributes {
                user: requestor,
                verb: "impersonate",
                resource_request: true,
                path: "",
                api_group,
                resource,
                subresource,
                namespace,
                name,
            };
            match policy.authorize(&a) {
                Some(_) => Ok(()),
                None => Err(a.forbidden()),
            }
        };

    let groups_specified = !wanted_groups.is_empty();
    let mut groups: Vec<String> = Vec::new();
    let user_check = match split_service_account(wanted_user) {
        Some((ns, name)) => {
            if !groups_specified {
                groups = vec![
                    "system:serviceaccounts".to_owned(),
                    format!("system:serviceaccounts:{ns}"),
                ];
            }
            check("", "serviceaccounts", "", ns, name)
        }
        None => check("", "users", "", "", wanted_user),
    };
    if let Err(status) = user_check {
        return Impersonation::Forbidden(status);
    }
    for group in &wanted_groups {
        if let Err(status) = check("", "groups", "", "", group) {
            return Impersonation::Forbidden(status);
        }
        groups.push((*group).to_owned());
    }
    for (key, values) in &extra {
        for value in values {
            if let Err(status) = check("authentication.k8s.io", "userextras", key, "", value) {
                return Impersonation::Forbidden(status);
            }
        }
    }
    if !wanted_uid.is_empty()
        && let Err(status) = check("authentication.k8s.io", "uids", "", "", wanted_uid)
    {
        return Impersonation::Forbidden(status);
    }

    // Non-anonymous impersonated users get system:authenticated unless
    // system:authenticated or system:unauthenticated was asked for; the
    // anonymous user gets system:unauthenticated.
    if wanted_user != ANONYMOUS {
        if !groups
            .iter()
            .any(|g| g == ALL_AUTHENTICATED || g == ALL_UNAUTHENTICATED)
        {
            groups.push(ALL_AUTHENTICATED.to_owned());
        }
    } else if !groups.iter().any(|g| g == ALL_UNAUTHENTICATED) {
        groups.push(ALL_UNAUTHENTICATED.to_owned());
    }
    Impersonation::Granted(UserInfo {
        username: wanted_user.to_owned(),
        uid: wanted_uid.to_owned(),
        groups,
        extra,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::authz::SERVICE_ACCOUNT_USER;
    use http::HeaderValue;

    fn sa() -> UserInfo {
        UserInfo::new(
            SERVICE_ACCOUNT_USER,
            &["system:serviceaccounts", ALL_AUTHENTICATED],
        )
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn service_account_may_impersonate() {
        let h = headers(&[
            ("impersonate-user", "alice"),
            ("impersonate-group", "dev"),
            ("impersonate-group", "ops"),
            ("impersonate-uid", "1234"),
            ("impersonate-extra-scopes.example.com%2fteam", "a"),
        ]);
        let Impersonation::Granted(u) = impersonate(&h, &sa(), &Policy::default()) else {
            panic!("expected impersonation to be granted");
        };
        assert_eq!(u.username, "alice");
        assert_eq!(u.uid, "1234");
        assert_eq!(u.groups, ["dev", "ops", ALL_AUTHENTICATED]);
        assert_eq!(u.extra["scopes.example.com/team"], ["a"]);
    }

    #[test]
    fn end_user_is_refused_with_kube_message() {
        let bob = UserInfo::new("bob", &[ALL_AUTHENTICATED]);
        let h = headers(&[("impersonate-user", "alice")]);
        let Impersonation::Forbidden(s) = impersonate(&h, &bob, &Policy::default()) else {
            panic!("expected 403");
        };
        assert_eq!(
            s.message,
            "users \"alice\" is forbidden: User \"bob\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope"
        );
        let h = headers(&[("impersonate-group", "system:masters")]);
        assert!(matches!(
            impersonate(&h, &bob, &Policy::default()),
            Impersonation::WithoutUser(s) if s.message == "requested [{Group  system:masters    }] without impersonating a user"
        ));
        assert!(matches!(
            impersonate(&HeaderMap::new(), &bob, &Policy::default()),
            Impersonation::NotRequested
        ));
    }

    #[test]
    fn service_account_targets_get_their_groups() {
        let h = headers(&[("impersonate-user", "system:serviceaccount:ns1:builder")]);
        let Impersonation::Granted(u) = impersonate(&h, &sa(), &Policy::default()) else {
            panic!("expected impersonation to be granted");
        };
        assert_eq!(
            u.groups,
            [
                "system:serviceaccounts",
                "system:serviceaccounts:ns1",
                ALL_AUTHENTICATED
            ]
        );
        assert_eq!(unescape_extra_key("a%zz"), "a%zz");
    }
}
