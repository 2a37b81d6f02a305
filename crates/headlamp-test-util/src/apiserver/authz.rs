//! A small RBAC-shaped authorizer: rules bind users or groups to verbs on
//! resources (optionally in one namespace) or on non-resource URLs, with
//! RBAC's matching rules
//! (<https://kubernetes.io/docs/reference/access-authn-authz/rbac/>).
//! There are no deny rules, as in RBAC.

use serde_json::{Value, json};

use super::request_info::RequestInfo;
use super::status::KubeStatus;
use super::user::{ALL_AUTHENTICATED, ALL_UNAUTHENTICATED, UserInfo};

/// The username of the test API server's service account, the identity a
/// Headlamp deployment calls the API server with in impersonation mode.
pub const SERVICE_ACCOUNT_USER: &str = "system:serviceaccount:headlamp:headlamp";

/// Who a rule applies to (an RBAC binding subject).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// A user by name.
    User(String),
    /// Every member of a group.
    Group(String),
}

impl Subject {
    /// `Subject::User(name)`.
    pub fn user(name: &str) -> Self {
        Self::User(name.to_owned())
    }

    /// `Subject::Group(name)`.
    pub fn group(name: &str) -> Self {
        Self::Group(name.to_owned())
    }

    fn matches(&self, user: &UserInfo) -> bool {
        match self {
            Self::User(name) => &user.username == name,
            Self::Group(group) => user.in_group(group),
        }
    }
}

/// One grant: a role's rule bound to one subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRule {
    /// Who the rule applies to.
    pub subject: Subject,
    /// Verbs (`get`, `list`, `watch`, `create`, `impersonate`, ... or `*`).
    pub verbs: Vec<String>,
    /// API groups (`""` for core, or `*`).
    pub api_groups: Vec<String>,
    /// Resources (`pods`, `pods/exec`, `*`, `*/exec`).
    pub resources: Vec<String>,
    /// Resource names; empty means any.
    pub resource_names: Vec<String>,
    /// `None`: cluster-wide (a ClusterRoleBinding); `Some(ns)`: only in `ns`
    /// (a RoleBinding).
    pub namespace: Option<String>,
    /// Non-resource URLs (`/healthz`, `/apis/*`, `*`).
    pub non_resource_urls: Vec<String>,
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

impl PolicyRule {
    /// A cluster-wide rule on resources of one API group.
    pub fn resources(
        subject: Subject,
        verbs: &[&str],
        api_group: &str,
        resources: &[&str],
    ) -> Self {
        Self {
            subject,
            verbs: strings(verbs),
            api_groups: vec![api_group.to_owned()],
            resources: strings(resources),
            resource_names: Vec::new(),
            namespace: None,
            non_resource_urls: Vec::new(),
        }
    }

    /// A rule on non-resource URLs.
    pub fn non_resource(subject: Subject, verbs: &[&str], urls: &[&str]) -> Self {
        Self {
            subject,
            verbs: strings(verbs),
            api_groups: Vec::new(),
            resources: Vec::new(),
            resource_names: Vec::new(),
            namespace: None,
            non_resource_urls: strings(urls),
        }
    }

    /// Restricts the rule to one namespace.
    pub fn in_namespace(mut self, namespace: &str) -> Self {
        self.namespace = Some(namespace.to_owned());
        self
    }

    /// Restricts the rule to the named objects.
    pub fn named(mut self, names: &[&str]) -> Self {
        self.resource_names = strings(names);
        self
    }

    fn allows(&self, a: &Attributes<'_>) -> bool {
        if !self.subject.matches(a.user) || !any_or_star(&self.verbs, a.verb) {
            return false;
        }
        if !a.resource_request {
            return self.non_resource_urls.iter().any(|u| {
                u == "*"
                    || u == a.path
                    || u.strip_suffix('*').is_some_and(|p| a.path.starts_with(p))
            });
        }
        if let Some(ns) = &self.namespace
            && ns != a.namespace
        {
            return false;
        }
        let combined = if a.subresource.is_empty() {
            a.resource.to_owned()
        } else {
            format!("{}/{}", a.resource, a.subresource)
        };
        any_or_star(&self.api_groups, a.api_group)
            && self.resources.iter().any(|r| {
                r == "*"
                    || *r == combined
                    || (!a.subresource.is_empty() && r.strip_prefix("*/") == Some(a.subresource))
            })
            && (self.resource_names.is_empty() || self.resource_names.iter().any(|n| n == a.name))
    }

    fn applies_in(&self, user: &UserInfo, namespace: &str) -> bool {
        self.subject.matches(user) && self.namespace.as_deref().is_none_or(|ns| ns == namespace)
    }
}

fn any_or_star(items: &[String], wanted: &str) -> bool {
    items.iter().any(|i| i == "*" || i == wanted)
}

/// The authorization policy of a test API server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    rules: Vec<PolicyRule>,
}

impl Default for Policy {
    fn default() -> Self {
        Self::testbed_default()
    }
}

impl Policy {
    /// No rules: every request is forbidden.
    pub fn empty() -> Self {
        Self { rules: Vec::new() }
    }

    /// The test bed's default policy:
    /// - every authenticated user: discovery, `/version`, health, and
    ///   creating SelfSubjectReviews / SelfSubjectAccessReviews /
    ///   SelfSubjectRulesReviews (Kubernetes' `system:discovery`,
    ///   `system:public-info-viewer` and `system:basic-user` roles), plus
    ///   get/list/watch on namespaces;
    /// - anonymous requests: health endpoints and `/version`
    ///   (`system:public-info-viewer`);
    /// - group `dev`: get/list/watch pods, read `pods/log`, `pods/exec` and
    ///   `pods/attach`;
    /// - the service account `system:serviceaccount:headlamp:headlamp`:
    ///   impersonate users, groups, service accounts, uids and extras, and
    ///   get/list/watch/create everything (Headlamp's Helm chart binds its
    ///   service account to a broad role);
    /// - group `system:masters`: everything.
    pub fn testbed_default() -> Self {
        let authenticated = || Subject::group(ALL_AUTHENTICATED);
        let sa = || Subject::user(SERVICE_ACCOUNT_USER);
        Self::empty()
            .allow(PolicyRule::non_resource(
                authenticated(),
                &["get"],
                &[
                    "/api",
                    "/api/*",
                    "/apis",
                    "/apis/*",
                    "/version",
                    "/version/",
                    "/healthz",
                    "/livez",
                    "/readyz",
                    "/openapi",
                    "/openapi/*",
                ],
            ))
            .allow(PolicyRule::non_resource(
                Subject::group(ALL_UNAUTHENTICATED),
                &["get"],
                &["/healthz", "/livez", "/readyz", "/version", "/version/"],
            ))
            .allow(PolicyRule::resources(
                authenticated(),
                &["create"],
                "authentication.k8s.io",
                &["selfsubjectreviews"],
            ))
            .allow(PolicyRule::resources(
                authenticated(),
                &["create"],
                "authorization.k8s.io",
                &["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
            ))
            .allow(PolicyRule::resources(
                authenticated(),
                &["get", "list", "watch"],
                "",
                &["namespaces"],
            ))
            .allow(PolicyRule::resources(
                Subject::group("dev"),
                &["get", "list", "watch"],
                "",
                &["pods", "pods/log"],
            ))
            .allow(PolicyRule::resources(
                Subject::group("dev"),
                &["get", "create"],
                "",
                &["pods/exec", "pods/attach"],
            ))
            .allow(PolicyRule::resources(
                sa(),
                &["impersonate"],
                "",
                &["users", "groups", "serviceaccounts"],
            ))
            .allow(PolicyRule::resources(
                sa(),
                &["impersonate"],
                "authentication.k8s.io",
                &["*"],
            ))
            .allow(PolicyRule::resources(
                sa(),
                &["get", "list", "watch", "create"],
                "*",
                &["*"],
            ))
            .allow(PolicyRule::non_resource(sa(), &["get"], &["*"]))
            .allow(PolicyRule::resources(
                Subject::group("system:masters"),
                &["*"],
                "*",
                &["*"],
            ))
            .allow(PolicyRule::non_resource(
                Subject::group("system:masters"),
                &["*"],
                &["*"],
            ))
    }

    /// Adds a rule.
    pub fn allow(mut self, rule: PolicyRule) -> Self {
        self.rules.push(rule);
        self
    }

    /// The rules, in order.
    pub fn rules(&self) -> &[PolicyRule] {
        &self.rules
    }

    /// The index of the first rule allowing the request, if any.
    pub(crate) fn authorize(&self, a: &Attributes<'_>) -> Option<usize> {
        self.rules.iter().position(|r| r.allows(a))
    }

    /// The `status` of a `SelfSubjectRulesReview` for `user` in `namespace`.
    pub(crate) fn rules_review(&self, user: &UserInfo, namespace: &str) -> Value {
        let mut resource_rules = Vec::new();
        let mut non_resource_rules = Vec::new();
        for rule in self.rules.iter().filter(|r| r.applies_in(user, namespace)) {
            if !rule.non_resource_urls.is_empty() {
                non_resource_rules.push(
                    json!({ "verbs": rule.verbs, "nonResourceURLs": rule.non_resource_urls }),
                );
            }
            if !rule.resources.is_empty() {
                let mut r = json!({
                    "verbs": rule.verbs, "apiGroups": rule.api_groups, "resources": rule.resources,
                });
                if !rule.resource_names.is_empty() {
                    r["resourceNames"] = json!(rule.resource_names);
                }
                resource_rules.push(r);
            }
        }
        json!({
            "resourceRules": resource_rules,
            "nonResourceRules": non_resource_rules,
            "incomplete": false,
        })
    }
}

/// The attributes one authorization decision is made on
/// (`authorizer.Attributes`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Attributes<'a> {
    pub(crate) user: &'a UserInfo,
    pub(crate) verb: &'a str,
    pub(crate) resource_request: bool,
    pub(crate) path: &'a str,
    pub(crate) api_group: &'a str,
    pub(crate) resource: &'a str,
    pub(crate) subresource: &'a str,
    pub(crate) namespace: &'a str,
    pub(crate) name: &'a str,
}

impl<'a> Attributes<'a> {
    pub(crate) fn of_request(user: &'a UserInfo, info: &'a RequestInfo) -> Self {
        Self {
            user,
            verb: &info.verb,
            resource_request: info.is_resource_request,
            path: &info.path,
            api_group: &info.api_group,
            resource: &info.resource,
            subresource: &info.subresource,
            namespace: &info.namespace,
            name: &info.name,
        }
    }

    /// kube-apiserver's `responsewriters.Forbidden` for these attributes
    /// (`forbiddenMessage` wrapped in `apierrors.NewForbidden`).
    pub(crate) fn forbidden(&self) -> KubeStatus {
        let user = &self.user.username;
        if !self.resource_request {
            let msg = format!("User {user:?} cannot {} path {:?}", self.verb, self.path);
            return KubeStatus::forbidden("", "", "", &msg);
        }
        let resource = if self.subresource.is_empty() {
            self.resource.to_owned()
        } else {
            format!("{}/{}", self.resource, self.subresource)
        };
        let msg = if self.namespace.is_empty() {
            format!(
                "User {user:?} cannot {} resource {resource:?} in API group {:?} at the cluster scope",
                self.verb, self.api_group
            )
        } else {
            format!(
                "User {user:?} cannot {} resource {resource:?} in API group {:?} in the namespace {:?}",
                self.verb, self.api_group, self.namespace
            )
        };
        KubeStatus::forbidden(self.api_group, self.resource, self.name, &msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::request_info::{parse, query_pairs};
    use http::Method;

    fn decide(user: &UserInfo, method: Method, path: &str) -> (Option<usize>, String) {
        let info = parse(&method, path, &query_pairs(None));
        let a = Attributes::of_request(user, &info);
        (Policy::default().authorize(&a), a.forbidden().message)
    }

    #[test]
    fn default_policy() {
        let alice = UserInfo::new("alice", &["dev", ALL_AUTHENTICATED]);
        let bob = UserInfo::new("bob", &[ALL_AUTHENTICATED]);
        assert!(
            decide(&alice, Method::GET, "/api/v1/namespaces/default/pods")
                .0
                .is_some()
        );
        let (d, msg) = decide(&bob, Method::GET, "/api/v1/namespaces/default/pods");
        assert!(d.is_none());
        assert_eq!(
            msg,
            "pods is forbidden: User \"bob\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""
        );
        assert!(decide(&bob, Method::GET, "/api/v1/namespaces").0.is_some());
        let (d, msg) = decide(&bob, Method::GET, "/logs");
        assert!(d.is_none());
        assert_eq!(msg, "forbidden: User \"bob\" cannot get path \"/logs\"");
        let (d, msg) = decide(
            &bob,
            Method::GET,
            "/api/v1/namespaces/default/pods/echo/exec",
        );
        assert!(d.is_none());
        assert!(msg.starts_with(
            "pods \"echo\" is forbidden: User \"bob\" cannot get resource \"pods/exec\""
        ));
    }

    #[test]
    fn rbac_matching() {
        let u = UserInfo::new("u", &["g"]);
        let rule = PolicyRule::resources(Subject::group("g"), &["get"], "", &["*/exec"])
            .in_namespace("ns")
            .named(&["p"]);
        let p = Policy::empty().allow(rule);
        let info = parse(&Method::GET, "/api/v1/namespaces/ns/pods/p/exec", &[]);
        assert!(p.authorize(&Attributes::of_request(&u, &info)).is_some());
        let info = parse(&Method::GET, "/api/v1/namespaces/other/pods/p/exec", &[]);
        assert!(p.authorize(&Attributes::of_request(&u, &info)).is_none());
        let info = parse(&Method::GET, "/api/v1/namespaces/ns/pods/q/exec", &[]);
        assert!(p.authorize(&Attributes::of_request(&u, &info)).is_none());
        let review = p.rules_review(&u, "ns");
        assert_eq!(review["resourceRules"][0]["resourceNames"][0], "p");
        assert_eq!(p.rules_review(&u, "other")["resourceRules"], json!([]));
    }
}
