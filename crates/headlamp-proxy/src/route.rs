//! `[base]/clusters/{name}/{path...}` -> which cluster, which upstream path.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::future::{Either, Ready, ready};
use http::Request;

use crate::cluster::ClusterInfo;
use crate::error::ProxyError;
use crate::upstream::Upstream;

/// A loaded cluster.
pub(crate) struct Cluster<B> {
    pub(crate) info: ClusterInfo,
    /// `headlamp-auth-<sanitized>.`, the prefix of its token cookie chunks.
    pub(crate) cookie_prefix: String,
    pub(crate) upstream: Result<Upstream<B>, String>,
}

/// The clusters by name.
pub(crate) struct ClusterTable<B> {
    pub(crate) clusters: Vec<Arc<Cluster<B>>>,
    pub(crate) by_name: HashMap<String, Arc<Cluster<B>>>,
    /// Prefix before `/clusters/` (empty or `/something`, no trailing `/`).
    pub(crate) base_path: String,
}

/// Where a request goes; set as a request extension by [`Route`].
pub(crate) struct Target<B> {
    pub(crate) cluster: Arc<Cluster<B>>,
    /// The path after `/clusters/{name}` (starts with `/`, or is empty).
    pub(crate) rest: String,
}

impl<B> Clone for Target<B> {
    fn clone(&self) -> Self {
        Self {
            cluster: self.cluster.clone(),
            rest: self.rest.clone(),
        }
    }
}

/// The route layer.
pub(crate) struct RouteLayer<B> {
    table: Arc<ClusterTable<B>>,
}

impl<B> RouteLayer<B> {
    pub(crate) fn new(table: Arc<ClusterTable<B>>) -> Self {
        Self { table }
    }
}

impl<S, B> tower::Layer<S> for RouteLayer<B> {
    type Service = Route<S, B>;
    fn layer(&self, inner: S) -> Self::Service {
        Route {
            inner,
            table: self.table.clone(),
        }
    }
}

/// See the module documentation.
pub(crate) struct Route<S, B> {
    inner: S,
    table: Arc<ClusterTable<B>>,
}

impl<S: Clone, B> Clone for Route<S, B> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            table: self.table.clone(),
        }
    }
}

impl<S, B, R> tower::Service<Request<B>> for Route<S, B>
where
    S: tower::Service<Request<B>, Response = R, Error = ProxyError>,
    B: Send + Sync + 'static,
{
    type Response = R;
    type Error = ProxyError;
    type Future = Either<Ready<Result<R, ProxyError>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        match self.target(req.uri().path()) {
            Ok(target) => {
                req.extensions_mut().insert(target);
                Either::Right(self.inner.call(req))
            }
            Err(e) => Either::Left(ready(Err(e))),
        }
    }
}

impl<S, B> Route<S, B> {
    fn target(&self, path: &str) -> Result<Target<B>, ProxyError> {
        let (name, rest) = split_cluster_path(path, &self.table.base_path).ok_or_else(|| {
            ProxyError::NotAClusterPath {
                path: path.to_owned(),
                base: self.table.base_path.clone(),
            }
        })?;
        if has_dot_segment(rest) {
            return Err(ProxyError::DotSegment {
                path: path.to_owned(),
            });
        }
        let cluster =
            self.table
                .by_name
                .get(name.as_ref())
                .ok_or_else(|| ProxyError::UnknownCluster {
                    name: name.clone().into_owned(),
                })?;
        if let Err(reason) = &cluster.upstream {
            return Err(ProxyError::ClusterUnavailable {
                name: cluster.info.name.clone(),
                reason: reason.clone(),
            });
        }
        Ok(Target {
            cluster: cluster.clone(),
            rest: rest.to_owned(),
        })
    }
}

/// Splits `[base]/clusters/{name}{rest}` into the percent-decoded cluster
/// name and the rest of the path (kept encoded: it goes upstream as sent).
pub(crate) fn split_cluster_path<'a>(path: &'a str, base: &str) -> Option<(Cow<'a, str>, &'a str)> {
    let after_base = path.strip_prefix(base)?;
    let after = after_base.strip_prefix("/clusters/")?;
    let (name, rest) = match after.find('/') {
        Some(i) => after.split_at(i),
        None => (after, ""),
    };
    if name.is_empty() {
        return None;
    }
    let name = percent_encoding::percent_decode_str(name)
        .decode_utf8()
        .ok()?;
    Some((name, rest))
}

/// `.` or `..` segments, also percent-encoded (`%2e`): a server URL with a
/// path prefix (Rancher, a gateway) must not be escaped by `/../`.
///
/// Segments are also split at `%2F`, `\` and `%5C`: Go's `net/http` hands
/// handlers the decoded path (`%2F` becomes `/`) and some gateways treat `\`
/// as `/` (as browsers do, WHATWG URL "path state"), so `..%2F` is `../` to
/// any upstream that normalises after decoding.
pub(crate) fn has_dot_segment(rest: &str) -> bool {
    rest.split('/').any(|segment| {
        let mut remaining = segment;
        loop {
            match next_encoded_separator(remaining) {
                Some((start, len)) => {
                    if is_dot_segment(&remaining[..start]) {
                        return true;
                    }
                    remaining = &remaining[start + len..];
                }
                None => return is_dot_segment(remaining),
            }
        }
    })
}

/// Where the first `\`, `%2F` or `%5C` (any case) in `segment` starts, and
/// its length; all ASCII, so the offsets are character boundaries.
fn next_encoded_separator(segment: &str) -> Option<(usize, usize)> {
    let bytes = segment.as_bytes();
    bytes.iter().enumerate().find_map(|(i, b)| match b {
        b'\\' => Some((i, 1)),
        b'%' => {
            let code = bytes.get(i + 1..i + 3)?;
            (code.eq_ignore_ascii_case(b"2f") || code.eq_ignore_ascii_case(b"5c")).then_some((i, 3))
        }
        _ => None,
    })
}

/// `.`/`..` with each dot possibly written `%2e`/`%2E`; allocation-free.
fn is_dot_segment(mut segment: &str) -> bool {
    let mut dots = 0;
    while !segment.is_empty() {
        if let Some(rest) = segment.strip_prefix('.') {
            segment = rest;
        } else if segment.len() >= 3 && segment.as_bytes()[..3].eq_ignore_ascii_case(b"%2e") {
            segment = &segment[3..];
        } else {
            return false;
        }
        dots += 1;
    }
    dots == 1 || dots == 2
}

/// Joins the server URL's path prefix and the request's rest path: exactly
/// one `/` between them, `/` when both are empty, the query kept.
///
/// ```text
/// ""          + "/api/v1/pods" -> "/api/v1/pods"
/// "/k8s/c-1"  + "/api"         -> "/k8s/c-1/api"
/// "/k8s/c-1"  + ""             -> "/k8s/c-1"
/// ""          + ""             -> "/"
/// ```
pub(crate) fn join_path(prefix: &str, rest: &str, query: Option<&str>) -> String {
    let prefix = prefix.trim_end_matches('/');
    let mut out =
        String::with_capacity(prefix.len() + rest.len() + query.map_or(0, |q| q.len() + 1) + 1);
    out.push_str(prefix);
    match rest.strip_prefix('/') {
        Some(rest) => {
            out.push('/');
            out.push_str(rest);
        }
        None if rest.is_empty() => {
            if out.is_empty() {
                out.push('/');
            }
        }
        None => {
            out.push('/');
            out.push_str(rest);
        }
    }
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_cluster_paths() {
        let (name, rest) = split_cluster_path("/clusters/kind-kind/api/v1/pods", "").unwrap();
        assert_eq!((name.as_ref(), rest), ("kind-kind", "/api/v1/pods"));
        let (name, rest) = split_cluster_path("/headlamp/clusters/main", "/headlamp").unwrap();
        assert_eq!((name.as_ref(), rest), ("main", ""));
        let (name, _) = split_cluster_path("/clusters/arn%3Aaws%2Fprod/version", "").unwrap();
        assert_eq!(name, "arn:aws/prod");
        assert!(split_cluster_path("/clusters//api", "").is_none());
        assert!(split_cluster_path("/api/v1", "").is_none());
        assert!(split_cluster_path("/clusters/x/api", "/headlamp").is_none());
    }

    #[test]
    fn joins_paths_without_double_slashes() {
        assert_eq!(
            join_path("", "/api/v1/pods", Some("watch=1")),
            "/api/v1/pods?watch=1"
        );
        assert_eq!(join_path("/", "/api", None), "/api");
        assert_eq!(
            join_path("/k8s/clusters/c-1/", "/api", None),
            "/k8s/clusters/c-1/api"
        );
        assert_eq!(
            join_path("/k8s/clusters/c-1", "", None),
            "/k8s/clusters/c-1"
        );
        assert_eq!(join_path("", "", Some("a=b")), "/?a=b");
        assert_eq!(join_path("/p", "/api/", None), "/p/api/");
    }

    #[test]
    fn finds_dot_segments() {
        assert!(has_dot_segment("/../secret"));
        assert!(has_dot_segment("/api/./v1"));
        assert!(has_dot_segment("/api/%2E%2e/x"));
        assert!(!has_dot_segment("/api/v1/namespaces/a..b"));
        assert!(!has_dot_segment(""));
    }

    #[test]
    fn finds_dot_segments_behind_encoded_slashes_and_backslashes() {
        // An upstream that decodes %2F (or treats \ as /) before it
        // normalises would see `/../` here and leave the server URL's prefix.
        assert!(has_dot_segment("/..%2f..%2fother-cluster/api"));
        assert!(has_dot_segment("/api/v1%2F..%2Fsecrets"));
        assert!(has_dot_segment("/api/%2e%2e%2Fx"));
        assert!(has_dot_segment("/..%5capi"));
        assert!(has_dot_segment("/..\\api"));
        assert!(has_dot_segment("/api/x%2F."));
        // Encoded slashes without dot segments still pass (service proxy
        // paths can carry them).
        assert!(!has_dot_segment(
            "/api/v1/namespaces/ns/services/s/proxy/a%2Fb..c"
        ));
        assert!(!has_dot_segment("/api/v1/namespaces/ns/pods/p%2F"));
    }
}
