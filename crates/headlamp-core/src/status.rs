use http::{HeaderValue, StatusCode, header};
use serde::{Deserialize, Serialize};

/// A Kubernetes `Status` object (`kind: Status`, `apiVersion: v1`), the body
/// kube-apiserver sends with every error and the body kubectl and client-go
/// know how to show. See
/// <https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/status/>
/// and `k8s.io/apimachinery/pkg/apis/meta/v1` `StatusReason`.
///
/// ```
/// use headlamp_core::Status;
/// let s = Status::unauthorized("token expired at 2026-01-01T00:00:00Z");
/// assert_eq!(s.code, 401);
/// let json = serde_json::to_value(&s).unwrap();
/// assert_eq!(json["kind"], "Status");
/// assert_eq!(json["reason"], "Unauthorized");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// Always `Status`.
    pub kind: String,
    /// Always `v1`.
    pub api_version: String,
    /// Always empty for errors produced here.
    #[serde(default)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// `Failure` (or `Success`).
    pub status: String,
    /// Human-readable description; never contains a token or secret.
    #[serde(default)]
    pub message: String,
    /// Machine-readable `StatusReason` (`Unauthorized`, `Forbidden`, `NotFound`, ...).
    #[serde(default)]
    pub reason: String,
    /// The HTTP status code.
    pub code: u16,
}

impl Status {
    /// A failure with the given HTTP code, Kubernetes reason and message.
    pub fn failure(code: StatusCode, reason: &str, message: impl Into<String>) -> Self {
        Self {
            kind: "Status".to_owned(),
            api_version: "v1".to_owned(),
            metadata: serde_json::Map::new(),
            status: "Failure".to_owned(),
            message: message.into(),
            reason: reason.to_owned(),
            code: code.as_u16(),
        }
    }

    /// 400 `BadRequest`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::failure(StatusCode::BAD_REQUEST, "BadRequest", message)
    }

    /// 401 `Unauthorized`: no credentials, or credentials that were refused.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::failure(StatusCode::UNAUTHORIZED, "Unauthorized", message)
    }

    /// 403 `Forbidden`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::failure(StatusCode::FORBIDDEN, "Forbidden", message)
    }

    /// 404 `NotFound`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::failure(StatusCode::NOT_FOUND, "NotFound", message)
    }

    /// 500 `InternalError`.
    pub fn internal_error(message: impl Into<String>) -> Self {
        Self::failure(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", message)
    }

    /// 502: the API server could not be reached or its TLS failed.
    /// Kubernetes has no dedicated reason for a proxy's upstream failure;
    /// client-go treats `ServiceUnavailable` as retryable, which fits.
    pub fn bad_gateway(message: impl Into<String>) -> Self {
        Self::failure(StatusCode::BAD_GATEWAY, "ServiceUnavailable", message)
    }

    /// 503 `ServiceUnavailable`.
    pub fn service_unavailable(message: impl Into<String>) -> Self {
        Self::failure(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            message,
        )
    }

    /// 504 `Timeout`.
    pub fn gateway_timeout(message: impl Into<String>) -> Self {
        Self::failure(StatusCode::GATEWAY_TIMEOUT, "Timeout", message)
    }

    /// The JSON body.
    pub fn to_json(&self) -> Vec<u8> {
        // Serialising a struct of strings and integers cannot fail; fall back
        // to a fixed body rather than panicking if it ever did.
        serde_json::to_vec(self).unwrap_or_else(|_| {
            br#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","code":500}"#
                .to_vec()
        })
    }

    /// An HTTP response carrying this status as `application/json`.
    pub fn to_response<B: From<Vec<u8>>>(&self) -> http::Response<B> {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = http::Response::new(B::from(self.to_json()));
        *response.status_mut() = code;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_kube_apiserver_shape() {
        let json: serde_json::Value =
            serde_json::from_slice(&Status::not_found("cluster \"x\" not found").to_json())
                .unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "cluster \"x\" not found", "reason": "NotFound", "code": 404
            })
        );
        let r: http::Response<Vec<u8>> = Status::gateway_timeout("slow").to_response();
        assert_eq!(r.status(), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json");
    }
}
