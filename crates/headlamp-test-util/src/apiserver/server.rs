//! Connection handling and the request pipeline, in kube-apiserver's filter
//! order: record -> (fault injection) -> authenticate -> impersonate ->
//! authorize -> handler.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use headlamp_core::Clock;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt as _, Empty, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use super::Fault;
use super::authn::{Authenticator, Authn};
use super::authz::{Attributes, Policy};
use super::impersonation::{Impersonation, impersonate};
use super::log::{RecordedRequest, RequestLog};
use super::objects::{self, BASE_RESOURCE_VERSION, Fixtures, Kind};
use super::request_info::{self, RequestInfo, query_get};
use super::status::KubeStatus;
use super::user::{ALL_UNAUTHENTICATED, ANONYMOUS, UserInfo};
use super::watch::{self, WatchRequest, WatchSettings};
use super::{exec, logs, websocket};

pub(crate) type Body = UnsyncBoxBody<Bytes, Infallible>;

pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed_unsync()
}

pub(crate) fn empty() -> Body {
    Empty::new().boxed_unsync()
}

/// A 200 whose body is every chunk received on `rx`, each sent as soon as
/// it arrives (chunked transfer on HTTP/1.1, DATA frames on HTTP/2).
pub(crate) fn streaming_response(
    rx: tokio::sync::mpsc::Receiver<Bytes>,
    content_type: &'static str,
) -> Response<Body> {
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, Infallible>(hyper::body::Frame::data(chunk)), rx))
    });
    let mut response = Response::new(http_body_util::StreamBody::new(stream).boxed_unsync());
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// Request bodies (reviews) are small; anything larger is refused.
const MAX_REQUEST_BODY: usize = 1 << 20;

/// Paths anonymous requests may reach even when anonymous authentication
/// is otherwise off, like a kube 1.32 `AuthenticationConfiguration` with
/// `anonymous: {enabled: true, conditions: [{path: /livez}, {path: /readyz}, {path: /healthz}]}`
/// (<https://kubernetes.io/docs/reference/access-authn-authz/authentication/#anonymous-authenticator-configuration>).
const HEALTH_PATHS: &[&str] = &["/healthz", "/livez", "/readyz"];

pub(crate) struct State {
    pub(crate) authn: Authenticator,
    pub(crate) policy: Policy,
    pub(crate) anonymous_auth: bool,
    pub(crate) log: RequestLog,
    pub(crate) fault: std::sync::Mutex<Option<Fault>>,
    pub(crate) fixtures: Fixtures,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) watch: WatchSettings,
    pub(crate) server_address: String,
    pub(crate) tasks: std::sync::Mutex<JoinSet<()>>,
    pub(crate) audit_ids: AtomicU64,
}

impl State {
    /// Spawns a task that is aborted when the server is dropped.
    pub(crate) fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        // Reap finished tasks so a long test's connections do not pile up.
        while tasks.try_join_next().is_some() {}
        tasks.spawn(task);
    }

    pub(crate) fn abort_all(&self) {
        self.tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .abort_all();
    }
}

/// What the connection told us before any request: TLS, and the user of a
/// verified client certificate.
#[derive(Debug, Clone, Default)]
struct ConnInfo {
    tls: bool,
    cert_user: Option<UserInfo>,
}

/// Returned by the service to make hyper drop the connection without a
/// response (`Fault::CloseConnection`).
#[derive(Debug)]
struct DropConnection;

impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}

impl std::error::Error for DropConnection {}

pub(crate) async fn accept_loop(
    state: Arc<State>,
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
) {
    loop {
        let tcp = match listener.accept().await {
            Ok((tcp, _peer)) => tcp,
            Err(_) => {
                // Out of file descriptors or similar: back off instead of
                // spinning, as hyper's examples and Go's net/http do.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let state2 = Arc::clone(&state);
        let tls = tls.clone();
        state.spawn(async move {
            let _ = tcp.set_nodelay(true);
            match tls {
                Some(acceptor) => {
                    let Ok(Ok(stream)) =
                        tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await
                    else {
                        return;
                    };
                    let cert_user = stream
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|chain| chain.first())
                        .and_then(|cert| crate::tls::subject_user_and_groups(cert))
                        .map(|(username, groups)| UserInfo {
                            username,
                            groups,
                            ..Default::default()
                        });
                    let conn = ConnInfo {
                        tls: true,
                        cert_user,
                    };
                    serve_connection(state2, TokioIo::new(stream), conn).await;
                }
                None => serve_connection(state2, TokioIo::new(tcp), ConnInfo::default()).await,
            }
        });
    }
}

async fn serve_connection<I>(state: Arc<State>, io: I, conn: ConnInfo)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let conn = Arc::new(conn);
    let service = hyper::service::service_fn(move |req| {
        let state = Arc::clone(&state);
        let conn = Arc::clone(&conn);
        async move { handle(state, conn, req).await }
    });
    let _ = auto::Builder::new(TokioExecutor::new())
        .serve_connection_with_upgrades(io, service)
        .await;
}

fn record(req: &Request<Incoming>, tls: bool) -> RecordedRequest {
    RecordedRequest {
        seq: 0,
        method: req.method().as_str().to_owned(),
        path: req.uri().path().to_owned(),
        path_and_query: req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|| req.uri().path().to_owned()),
        headers: req
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        tls,
        authenticated_user: None,
        effective_user: None,
        authentication_error: None,
        status: None,
    }
}

async fn handle(
    state: Arc<State>,
    conn: Arc<ConnInfo>,
    req: Request<Incoming>,
) -> Result<Response<Body>, DropConnection> {
    let seq = state.log.push(record(&req, conn.tls));
    let fault = state
        .fault
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    match fault {
        None => {}
        Some(Fault::Delay(d)) => tokio::time::sleep(d).await,
        Some(Fault::Hang) => std::future::pending::<()>().await,
        Some(Fault::CloseConnection) => return Err(DropConnection),
        Some(Fault::Respond {
            status,
            content_type,
            body,
        }) => {
            let mut r = Response::new(full(body));
            *r.status_mut() = status;
            if let Ok(ct) = HeaderValue::from_str(&content_type) {
                r.headers_mut().insert(header::CONTENT_TYPE, ct);
            }
            state
                .log
                .update(seq, |rec| rec.status = Some(status.as_u16()));
            return Ok(r);
        }
    }
    let mut response = route(&state, &conn, seq, req).await;
    let audit_id = state.audit_ids.fetch_add(1, Ordering::Relaxed);
    let upgraded = response.status() == StatusCode::SWITCHING_PROTOCOLS;
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("00000000-0000-4000-8000-{audit_id:012x}")) {
        h.insert("audit-id", v);
    }
    if !upgraded {
        // kube-apiserver's WithCacheControl filter and responsewriters'
        // nosniff on everything it writes.
        if !h.contains_key(header::CACHE_CONTROL) {
            h.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("no-cache, private"),
            );
        }
        h.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
    }
    let status = response.status().as_u16();
    state.log.update(seq, |rec| rec.status = Some(status));
    Ok(response)
}

async fn route(
    state: &Arc<State>,
    conn: &ConnInfo,
    seq: u64,
    req: Request<Incoming>,
) -> Response<Body> {
    let is_ws = websocket::is_upgrade(req.headers());
    let authn = state
        .authn
        .authenticate(req.headers(), conn.cert_user.as_ref(), is_ws)
        .await;
    let path = req.uri().path().to_owned();
    let user = match authn.outcome {
        Authn::User(user) => user.with_authenticated_group(),
        Authn::NoCredentials if state.anonymous_auth || HEALTH_PATHS.contains(&path.as_str()) => {
            UserInfo::new(ANONYMOUS, &[ALL_UNAUTHENTICATED])
        }
        Authn::NoCredentials => return KubeStatus::unauthorized().into_response(),
        Authn::Refused(reason) => {
            state
                .log
                .update(seq, |r| r.authentication_error = Some(reason));
            return KubeStatus::unauthorized().into_response();
        }
    };
    state
        .log
        .update(seq, |r| r.authenticated_user = Some(user.clone()));

    let effective = match impersonate(req.headers(), &user, &state.policy) {
        Impersonation::NotRequested => user,
        Impersonation::Granted(impersonated) => impersonated,
        Impersonation::Forbidden(status) => return status.into_response(),
        Impersonation::WithoutUser(status) => return status.into_response(),
    };
    state
        .log
        .update(seq, |r| r.effective_user = Some(effective.clone()));

    let query = request_info::query_pairs(req.uri().query());
    let info = request_info::parse(req.method(), &path, &query);
    let attributes = Attributes::of_request(&effective, &info);
    if state.policy.authorize(&attributes).is_none() {
        return attributes.forbidden().into_response();
    }
    if info.is_resource_request {
        resource(state, &info, &query, &effective, req, &authn.ws_protocols).await
    } else {
        {
            let accept = req
                .headers()
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            non_resource(state, req.method(), &path, accept)
        }
    }
}

fn json_response(code: StatusCode, value: &Value) -> Response<Body> {
    json_response_typed(code, value, "application/json")
}

fn json_response_typed(
    code: StatusCode,
    value: &Value,
    content_type: &'static str,
) -> Response<Body> {
    let mut r = Response::new(full(value.to_string()));
    *r.status_mut() = code;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn non_resource(state: &State, method: &Method, path: &str, accept: &str) -> Response<Body> {
    if method != Method::GET && method != Method::HEAD {
        return KubeStatus::method_not_allowed().into_response();
    }
    let trimmed = path.trim_end_matches('/');
    let parts: Vec<&str> = trimmed.trim_start_matches('/').split('/').collect();
    let doc = match parts.as_slice() {
        ["healthz" | "livez" | "readyz"] => {
            let mut r = Response::new(full("ok"));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            r.headers_mut().insert(
                "x-content-type-options",
                HeaderValue::from_static("nosniff"),
            );
            return r;
        }
        ["version"] => Some(objects::version()),
        ["api" | "apis"] if objects::wants_aggregated(accept) => {
            return json_response_typed(
                StatusCode::OK,
                &objects::aggregated_discovery(parts == ["api"]),
                objects::AGGREGATED_CONTENT_TYPE,
            );
        }
        ["api"] => Some(objects::api_versions(&state.server_address)),
        ["apis"] => Some(objects::api_group_list()),
        ["api", "v1"] => objects::api_resource_list("v1"),
        ["apis", group] => objects::api_group(group),
        ["apis", group, version] => objects::api_resource_list(&format!("{group}/{version}")),
        _ => None,
    };
    match doc {
        Some(doc) => json_response(StatusCode::OK, &doc),
        None => KubeStatus::path_not_found().into_response(),
    }
}

/// Reads a review's request body: JSON, or the protobuf client-go's typed
/// clients send (`kubectl auth whoami`, `kubectl auth can-i`), and checks
/// its `kind`.
async fn read_body(req: Request<Incoming>, kind: &str) -> Result<Value, KubeStatus> {
    let protobuf = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/vnd.kubernetes.protobuf"));
    let bytes = collect_body(req).await?;
    let value = if protobuf {
        super::protobuf::decode_review(&bytes).ok_or_else(|| {
            KubeStatus::bad_request(format!(
                "the body of the request was in an unknown format: not a protobuf-encoded {kind}"
            ))
        })?
    } else {
        serde_json::from_slice(&bytes).map_err(|e| {
            KubeStatus::bad_request(format!(
                "the body of the request was in an unknown format: {e}"
            ))
        })?
    };
    check_kind(&value, kind)?;
    Ok(value)
}

async fn collect_body(req: Request<Incoming>) -> Result<Bytes, KubeStatus> {
    let bytes = Limited::new(req.into_body(), MAX_REQUEST_BODY)
        .collect()
        .await
        .map_err(|e| {
            KubeStatus::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLarge",
                format!("the request body could not be read: {e}"),
            )
        })?
        .to_bytes();
    Ok(bytes)
}

fn check_kind(body: &Value, want: &str) -> Result<(), KubeStatus> {
    match body["kind"].as_str() {
        None | Some("") => Ok(()),
        Some(k) if k == want => Ok(()),
        Some(k) => Err(KubeStatus::bad_request(format!(
            "the object provided is unrecognized (must be of type {want}): kind {k:?}"
        ))),
    }
}

async fn resource(
    state: &Arc<State>,
    info: &RequestInfo,
    query: &[(String, String)],
    user: &UserInfo,
    req: Request<Incoming>,
    ws_protocols: &[String],
) -> Response<Body> {
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let key = (
        info.api_group.as_str(),
        info.api_version.as_str(),
        info.resource.as_str(),
        info.subresource.as_str(),
    );
    match key {
        ("", "v1", "namespaces", "") => objects_endpoint(
            state,
            Kind::Namespace,
            info,
            query,
            &accept,
            req,
            ws_protocols,
        ),
        ("", "v1", "pods", "") => {
            objects_endpoint(state, Kind::Pod, info, query, &accept, req, ws_protocols)
        }
        ("", "v1", "pods", "log") => match info.verb.as_str() {
            "get" => match state.fixtures.get(Kind::Pod, &info.namespace, &info.name) {
                Some(pod) => logs::serve(state, &pod, query, req, ws_protocols),
                None => KubeStatus::not_found("", "pods", &info.name).into_response(),
            },
            _ => KubeStatus::method_not_allowed().into_response(),
        },
        ("", "v1", "pods", sub @ ("exec" | "attach")) => match info.verb.as_str() {
            "get" | "create" => match state.fixtures.get(Kind::Pod, &info.namespace, &info.name) {
                Some(pod) => {
                    let target = if sub == "exec" {
                        exec::Target::Exec
                    } else {
                        exec::Target::Attach
                    };
                    exec::serve(state, target, &pod, query, req, ws_protocols)
                }
                None => KubeStatus::not_found("", "pods", &info.name).into_response(),
            },
            _ => KubeStatus::method_not_allowed().into_response(),
        },
        ("authentication.k8s.io", "v1", "selfsubjectreviews", "") if info.verb == "create" => {
            // The review has no spec: the body only has to be well formed.
            if let Err(s) = read_body(req, "SelfSubjectReview").await {
                return s.into_response();
            }
            json_response(
                StatusCode::CREATED,
                &json!({
                    "kind": "SelfSubjectReview",
                    "apiVersion": "authentication.k8s.io/v1",
                    "metadata": { "creationTimestamp": objects::rfc3339(state.clock.now()) },
                    "status": { "userInfo": user },
                }),
            )
        }
        ("authorization.k8s.io", "v1", "selfsubjectrulesreviews", "") if info.verb == "create" => {
            let body = match read_body(req, "SelfSubjectRulesReview").await {
                Ok(b) => b,
                Err(s) => return s.into_response(),
            };
            let Some(namespace) = body["spec"]["namespace"].as_str().filter(|n| !n.is_empty())
            else {
                return KubeStatus::bad_request("no namespace on request").into_response();
            };
            json_response(
                StatusCode::CREATED,
                &json!({
                    "kind": "SelfSubjectRulesReview",
                    "apiVersion": "authorization.k8s.io/v1",
                    "metadata": { "creationTimestamp": null },
                    "spec": { "namespace": namespace },
                    "status": state.policy.rules_review(user, namespace),
                }),
            )
        }
        ("authorization.k8s.io", "v1", "selfsubjectaccessreviews", "") if info.verb == "create" => {
            let body = match read_body(req, "SelfSubjectAccessReview").await {
                Ok(b) => b,
                Err(s) => return s.into_response(),
            };
            access_review(state, user, &body)
        }
        (
            "authentication.k8s.io" | "authorization.k8s.io",
            "v1",
            "selfsubjectreviews" | "selfsubjectrulesreviews" | "selfsubjectaccessreviews",
            "",
        ) => KubeStatus::method_not_allowed().into_response(),
        _ => KubeStatus::path_not_found().into_response(),
    }
}

fn access_review(state: &State, user: &UserInfo, body: &Value) -> Response<Body> {
    let spec = &body["spec"];
    let s = |v: &Value| v.as_str().unwrap_or("").to_owned();
    let (resource_request, r) = if spec["resourceAttributes"].is_object() {
        (true, &spec["resourceAttributes"])
    } else if spec["nonResourceAttributes"].is_object() {
        (false, &spec["nonResourceAttributes"])
    } else {
        return KubeStatus::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
            "SelfSubjectAccessReview.authorization.k8s.io \"\" is invalid: spec.resourceAttributes: Invalid value: \"null\": exactly one of nonResourceAttributes or resourceAttributes must be specified",
        )
        .into_response();
    };
    let (verb, path, group, resource, subresource, namespace, name) = (
        s(&r["verb"]),
        s(&r["path"]),
        s(&r["group"]),
        s(&r["resource"]),
        s(&r["subresource"]),
        s(&r["namespace"]),
        s(&r["name"]),
    );
    let attributes = Attributes {
        user,
        verb: &verb,
        resource_request,
        path: &path,
        api_group: &group,
        resource: &resource,
        subresource: &subresource,
        namespace: &namespace,
        name: &name,
    };
    let status = match state.policy.authorize(&attributes) {
        Some(rule) => {
            json!({ "allowed": true, "reason": format!("RBAC: allowed by test bed policy rule #{rule}") })
        }
        None => json!({ "allowed": false }),
    };
    json_response(
        StatusCode::CREATED,
        &json!({
            "kind": "SelfSubjectAccessReview",
            "apiVersion": "authorization.k8s.io/v1",
            "metadata": { "creationTimestamp": null },
            "spec": spec,
            "status": status,
        }),
    )
}

fn objects_endpoint(
    state: &Arc<State>,
    kind: Kind,
    info: &RequestInfo,
    query: &[(String, String)],
    accept: &str,
    req: Request<Incoming>,
    ws_protocols: &[String],
) -> Response<Body> {
    let table = objects::wants_table(accept);
    let include = objects::IncludeObject::from_query(query_get(query, "includeObject"));
    let age = state.clock.now().saturating_sub(state.fixtures.created);
    // For namespaces the "namespace" of `/api/v1/namespaces/<name>` is the
    // object's own name; namespaces are cluster-scoped.
    let namespace = if kind == Kind::Namespace {
        ""
    } else {
        info.namespace.as_str()
    };
    match info.verb.as_str() {
        "get" => match state.fixtures.get(kind, namespace, &info.name) {
            Some(object) if table => json_response_typed(
                StatusCode::OK,
                &objects::table(kind, &[object], BASE_RESOURCE_VERSION, age, include),
                objects::TABLE_CONTENT_TYPE,
            ),
            Some(object) => json_response(StatusCode::OK, &objects::with_type(kind, object)),
            None => KubeStatus::not_found("", kind.resource(), &info.name).into_response(),
        },
        "list" => {
            let selected = objects::select(
                state.fixtures.objects(kind, namespace),
                query_get(query, "labelSelector"),
                query_get(query, "fieldSelector"),
            );
            match selected {
                Ok(items) if table => json_response_typed(
                    StatusCode::OK,
                    &objects::table(kind, &items, BASE_RESOURCE_VERSION, age, include),
                    objects::TABLE_CONTENT_TYPE,
                ),
                Ok(items) => json_response(
                    StatusCode::OK,
                    &objects::list(kind, items, BASE_RESOURCE_VERSION),
                ),
                Err(e) => KubeStatus::bad_request(e).into_response(),
            }
        }
        "watch" => watch::serve(
            state,
            WatchRequest {
                kind,
                namespace,
                query,
                table,
            },
            req,
            ws_protocols,
        ),
        _ => KubeStatus::method_not_allowed().into_response(),
    }
}
