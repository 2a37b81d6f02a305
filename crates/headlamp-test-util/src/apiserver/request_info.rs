//! What a request asks for, derived from its method and path the way
//! kube-apiserver's `RequestInfoFactory` does
//! (`k8s.io/apiserver/pkg/endpoints/request/requestinfo.go`), so that
//! authorization and 403 messages see the same verb, group, resource,
//! namespace and name a real cluster would.

use http::Method;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RequestInfo {
    pub(crate) is_resource_request: bool,
    pub(crate) path: String,
    pub(crate) verb: String,
    pub(crate) api_group: String,
    pub(crate) api_version: String,
    pub(crate) namespace: String,
    pub(crate) resource: String,
    pub(crate) subresource: String,
    pub(crate) name: String,
}

/// Go's `strconv.ParseBool` true values, which the `watch` parameter accepts.
pub(crate) fn parse_bool(value: &str) -> bool {
    matches!(value, "1" | "t" | "T" | "true" | "TRUE" | "True")
}

/// Decoded query parameters, in order (repeated keys kept, as `command=`
/// is for exec).
pub(crate) fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    let Some(query) = query else {
        return Vec::new();
    };
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

pub(crate) fn query_get<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// `application/x-www-form-urlencoded` decoding (`+` is a space).
pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(crate) fn parse(method: &Method, path: &str, query: &[(String, String)]) -> RequestInfo {
    let mut info = RequestInfo {
        path: path.to_owned(),
        // Non-resource requests are authorized with the lower-cased HTTP method.
        verb: method.as_str().to_ascii_lowercase(),
        ..Default::default()
    };
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    if parts.len() < 3 || !matches!(parts[0], "api" | "apis") {
        return info;
    }
    let mut rest = &parts[1..];
    if parts[0] == "apis" {
        // One part (the prefix) is consumed: "do we have four parts?"
        if rest.len() < 3 {
            return info;
        }
        info.api_group = rest[0].to_owned();
        rest = &rest[1..];
    }
    info.is_resource_request = true;
    info.api_version = rest[0].to_owned();
    rest = &rest[1..];
    info.verb = match *method {
        Method::POST => "create",
        Method::GET | Method::HEAD => "get",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE => "delete",
        _ => "",
    }
    .to_owned();
    if rest.first() == Some(&"namespaces")
        && let Some(ns) = rest.get(1)
    {
        info.namespace = (*ns).to_owned();
        if rest.len() > 2 && !matches!(rest[2], "status" | "finalize") {
            rest = &rest[2..];
        }
    }
    match rest.len() {
        0 => {}
        1 => info.resource = rest[0].to_owned(),
        2 => {
            info.resource = rest[0].to_owned();
            info.name = rest[1].to_owned();
        }
        _ => {
            info.resource = rest[0].to_owned();
            info.name = rest[1].to_owned();
            info.subresource = rest[2].to_owned();
        }
    }
    if info.name.is_empty() && info.verb == "get" {
        let watch = query_get(query, "watch").is_some_and(parse_bool);
        info.verb = if watch { "watch" } else { "list" }.to_owned();
        // A fieldSelector of exactly metadata.name=<x> names the object.
        if let Some(name) = query_get(query, "fieldSelector")
            .and_then(|s| s.strip_prefix("metadata.name="))
            .filter(|n| !n.contains(',') && !n.is_empty())
        {
            info.name = name.to_owned();
        }
    }
    if info.name.is_empty() && info.verb == "delete" {
        info.verb = "deletecollection".to_owned();
    }
    info
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(method: Method, path: &str, q: &str) -> RequestInfo {
        parse(&method, path, &query_pairs(Some(q)))
    }

    #[test]
    fn parses_like_kube() {
        let i = p(Method::GET, "/api/v1/namespaces", "");
        assert_eq!(
            (i.verb.as_str(), i.resource.as_str()),
            ("list", "namespaces")
        );
        assert!(i.namespace.is_empty());
        let i = p(Method::GET, "/api/v1/namespaces", "watch=1");
        assert_eq!(i.verb, "watch");
        let i = p(Method::GET, "/api/v1/namespaces/default", "");
        assert_eq!(
            (
                i.verb.as_str(),
                i.resource.as_str(),
                i.name.as_str(),
                i.namespace.as_str()
            ),
            ("get", "namespaces", "default", "default")
        );
        let i = p(
            Method::GET,
            "/api/v1/namespaces/default/pods/echo/exec",
            "command=cat",
        );
        assert_eq!(
            (
                i.resource.as_str(),
                i.name.as_str(),
                i.subresource.as_str(),
                i.namespace.as_str()
            ),
            ("pods", "echo", "exec", "default")
        );
        let i = p(
            Method::POST,
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            "",
        );
        assert_eq!(
            (i.verb.as_str(), i.api_group.as_str(), i.resource.as_str()),
            ("create", "authentication.k8s.io", "selfsubjectreviews")
        );
        let i = p(Method::GET, "/apis/authentication.k8s.io/v1", "");
        assert!(!i.is_resource_request);
        assert_eq!(i.verb, "get");
        let i = p(Method::GET, "/api/v1", "");
        assert!(!i.is_resource_request);
        let i = p(
            Method::GET,
            "/api/v1/namespaces",
            "fieldSelector=metadata.name%3Ddefault",
        );
        assert_eq!(i.name, "default");
    }

    #[test]
    fn decodes_queries() {
        let q = query_pairs(Some("command=echo&command=hello+world&x=%2Fa%zz"));
        assert_eq!(q[1].1, "hello world");
        assert_eq!(q[2].1, "/a%zz");
        assert_eq!(percent_decode("%"), "%");
        assert_eq!(percent_decode("a%4"), "a%4");
    }
}
