//! Every request the test API server received, as it arrived, so tests can
//! assert on exactly what reached "the cluster" (e.g. that no client
//! `Impersonate-*` header or `headlamp-auth-*` cookie got through).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::user::UserInfo;

/// One received request. Its `Debug` output redacts credentials
/// (`Authorization`, `Cookie`, bearer-token WebSocket subprotocols), so an
/// assertion message never prints a token; the fields hold them as received.
#[derive(Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// Arrival order, starting at 0 (kept across [`RequestLog::clear`]).
    pub seq: u64,
    /// HTTP method.
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// Path and query as received.
    pub path_and_query: String,
    /// Every header as received, in order, repeated headers repeated; names
    /// lower-case.
    pub headers: Vec<(String, String)>,
    /// Whether the request came over TLS.
    pub tls: bool,
    /// Who the credentials authenticated as (before impersonation), with
    /// `system:authenticated` added; `None` if authentication failed.
    pub authenticated_user: Option<UserInfo>,
    /// Who the request acted as after impersonation (equal to
    /// `authenticated_user` without impersonation headers).
    pub effective_user: Option<UserInfo>,
    /// Why credentials were refused, if they were (never the token).
    pub authentication_error: Option<String>,
    /// The response status (101 for a WebSocket upgrade), once known.
    pub status: Option<u16>,
}

/// Whether a header value carries a credential that must not be printed.
fn is_secret(name: &str, value: &str) -> bool {
    matches!(name, "authorization" | "cookie" | "proxy-authorization")
        || (name == "sec-websocket-protocol" && value.contains("bearer.authorization.k8s.io"))
}

impl std::fmt::Debug for RecordedRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(k, v)| {
                let shown = if is_secret(k, v) {
                    "[redacted]"
                } else {
                    v.as_str()
                };
                (k.as_str(), shown)
            })
            .collect();
        f.debug_struct("RecordedRequest")
            .field("seq", &self.seq)
            .field("method", &self.method)
            .field("path_and_query", &self.path_and_query)
            .field("headers", &headers)
            .field("tls", &self.tls)
            .field("authenticated_user", &self.authenticated_user)
            .field("effective_user", &self.effective_user)
            .field("authentication_error", &self.authentication_error)
            .field("status", &self.status)
            .finish()
    }
}

impl RecordedRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.header_values(name).into_iter().next()
    }

    /// Every value of header `name` (case-insensitive), in order.
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Names of headers starting with `prefix` (case-insensitive), e.g.
    /// `"impersonate-"`.
    pub fn headers_with_prefix(&self, prefix: &str) -> Vec<&str> {
        let prefix = prefix.to_ascii_lowercase();
        self.headers
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| k.as_str())
            .collect()
    }

    /// Cookie names from every `Cookie` header.
    pub fn cookie_names(&self) -> Vec<&str> {
        self.header_values("cookie")
            .into_iter()
            .flat_map(|v| v.split(';'))
            .filter_map(|c| c.split_once('=').map(|(n, _)| n.trim()))
            .filter(|n| !n.is_empty())
            .collect()
    }
}

#[derive(Debug, Default)]
struct Inner {
    next_seq: u64,
    requests: Vec<RecordedRequest>,
}

/// A shared, cloneable handle on the request log.
#[derive(Debug, Clone, Default)]
pub struct RequestLog(Arc<Mutex<Inner>>);

impl RequestLog {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding this lock cannot leave the log inconsistent
        // (pushes and field updates are atomic), so poison is ignored.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A copy of every request recorded so far.
    pub fn snapshot(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    /// Forgets the requests recorded so far.
    pub fn clear(&self) {
        self.lock().requests.clear();
    }

    /// Waits (polling, bounded by `timeout`) for a request matching
    /// `predicate` and returns it.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        predicate: impl Fn(&RecordedRequest) -> bool,
    ) -> Option<RecordedRequest> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(found) = self.lock().requests.iter().find(|r| predicate(r)) {
                return Some(found.clone());
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub(crate) fn push(&self, mut request: RecordedRequest) -> u64 {
        let mut inner = self.lock();
        let seq = inner.next_seq;
        inner.next_seq += 1;
        request.seq = seq;
        inner.requests.push(request);
        seq
    }

    pub(crate) fn update(&self, seq: u64, f: impl FnOnce(&mut RecordedRequest)) {
        if let Some(r) = self.lock().requests.iter_mut().rev().find(|r| r.seq == seq) {
            f(r);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_credentials() {
        let r = RecordedRequest {
            seq: 0,
            method: "GET".into(),
            path: "/".into(),
            path_and_query: "/".into(),
            headers: vec![
                ("authorization".into(), "Bearer s3cret".into()),
                ("cookie".into(), "headlamp-auth-x.0=s3cret".into()),
                (
                    "sec-websocket-protocol".into(),
                    "base64url.bearer.authorization.k8s.io.czNjcmV0".into(),
                ),
                ("impersonate-user".into(), "alice".into()),
            ],
            tls: true,
            authenticated_user: None,
            effective_user: None,
            authentication_error: None,
            status: None,
        };
        let shown = format!("{r:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("czNjcmV0"),
            "{shown}"
        );
        assert!(shown.contains("alice"));
        assert_eq!(r.header("authorization"), Some("Bearer s3cret"));
        assert_eq!(r.cookie_names(), ["headlamp-auth-x.0"]);
        assert_eq!(r.headers_with_prefix("Impersonate-"), ["impersonate-user"]);
    }
}
