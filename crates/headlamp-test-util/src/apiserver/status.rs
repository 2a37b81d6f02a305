//! Kubernetes `Status` error bodies exactly as kube-apiserver writes them
//! (`k8s.io/apimachinery/pkg/api/errors`), including `details`, which
//! `headlamp_core::Status` does not model.

use http::{HeaderValue, Response, StatusCode, header};
use serde_json::{Value, json};

use super::server::{Body, full};

/// A failure `Status` with optional `details`.
#[derive(Debug, Clone)]
pub(crate) struct KubeStatus {
    pub(crate) code: StatusCode,
    pub(crate) reason: &'static str,
    pub(crate) message: String,
    pub(crate) details: Option<Value>,
}

impl KubeStatus {
    pub(crate) fn new(code: StatusCode, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    pub(crate) fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// `apierrors.NewUnauthorized("Unauthorized")`, what the authentication
    /// filter answers for a missing or refused credential (no `details`).
    pub(crate) fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized")
    }

    /// `apierrors.NewForbidden(qualifiedResource, name, err)`:
    /// `<resource>[.<group>] ["<name>"] is forbidden: <err>`.
    pub(crate) fn forbidden(group: &str, resource: &str, name: &str, err: &str) -> Self {
        let qualified = if group.is_empty() {
            resource.to_owned()
        } else {
            format!("{resource}.{group}")
        };
        let message = match (qualified.is_empty(), name.is_empty()) {
            (true, _) => format!("forbidden: {err}"),
            (false, true) => format!("{qualified} is forbidden: {err}"),
            (false, false) => format!("{qualified} {name:?} is forbidden: {err}"),
        };
        Self::new(StatusCode::FORBIDDEN, "Forbidden", message)
            .with_details(group_kind_name(group, resource, name))
    }

    /// `apierrors.NewNotFound`: `<resource> "<name>" not found`.
    pub(crate) fn not_found(group: &str, resource: &str, name: &str) -> Self {
        let qualified = if group.is_empty() {
            resource.to_owned()
        } else {
            format!("{resource}.{group}")
        };
        Self::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("{qualified} {name:?} not found"),
        )
        .with_details(group_kind_name(group, resource, name))
    }

    /// The 404 for a path no handler serves (`NewGenericServerResponse`).
    pub(crate) fn path_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource",
        )
        .with_details(json!({}))
    }

    /// 405 for a verb a resource does not support.
    pub(crate) fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
        .with_details(json!({}))
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }

    /// The `Status` object as JSON.
    pub(crate) fn to_value(&self) -> Value {
        let mut v = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code.as_u16(),
        });
        if let Some(details) = &self.details {
            v["details"] = details.clone();
        }
        v
    }

    pub(crate) fn into_response(self) -> Response<Body> {
        let mut response = Response::new(full(self.to_value().to_string()));
        *response.status_mut() = self.code;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    }
}

fn group_kind_name(group: &str, resource: &str, name: &str) -> Value {
    let mut details = serde_json::Map::new();
    if !name.is_empty() {
        details.insert("name".into(), json!(name));
    }
    if !group.is_empty() {
        details.insert("group".into(), json!(group));
    }
    details.insert("kind".into(), json!(resource));
    Value::Object(details)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_matches_kube_shape() {
        let s = KubeStatus::forbidden(
            "",
            "users",
            "alice",
            "User \"bob\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope",
        );
        assert_eq!(
            s.to_value(),
            json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "users \"alice\" is forbidden: User \"bob\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope",
                "reason": "Forbidden", "details": {"name": "alice", "kind": "users"}, "code": 403
            })
        );
        let uid = KubeStatus::forbidden("authentication.k8s.io", "uids", "1", "x");
        assert_eq!(
            uid.message,
            "uids.authentication.k8s.io \"1\" is forbidden: x"
        );
        assert_eq!(
            KubeStatus::unauthorized().to_value(),
            json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
                   "message":"Unauthorized","reason":"Unauthorized","code":401})
        );
    }
}
