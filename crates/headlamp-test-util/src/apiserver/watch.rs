//! Watches (`?watch=1`): a stream of `{"type": ..., "object": ...}` events
//! over chunked HTTP (one JSON document per line) or over a WebSocket (one
//! JSON document per text frame), as kube-apiserver's `WatchServer` serves
//! them (`k8s.io/apiserver/pkg/endpoints/handlers/watch.go`; see
//! <https://kubernetes.io/docs/reference/using-api/api-concepts/#efficient-detection-of-changes>).
//!
//! The test cluster changes on a timer: without a `resourceVersion` the
//! watch first sends an `ADDED` event for every object, then every
//! `interval` a `MODIFIED` event for the next object (resource version
//! `1000 + k` for the k-th change, so a watch resumed from a seen version
//! continues the same history), up to `events` changes; the stream then
//! stays open until `timeoutSeconds` or the configured bound, and ends.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode, header};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use super::objects::{self, BASE_RESOURCE_VERSION, Kind};
use super::request_info::query_get;
use super::server::{Body, State, empty, streaming_response};
use super::status::KubeStatus;
use super::websocket;

/// How watches behave over time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WatchSettings {
    pub(crate) events: u64,
    pub(crate) interval: Duration,
    pub(crate) max_duration: Duration,
}

pub(crate) struct WatchRequest<'a> {
    pub(crate) kind: Kind,
    pub(crate) namespace: &'a str,
    pub(crate) query: &'a [(String, String)],
    pub(crate) table: bool,
}

/// Resource versions older than this are "too old" (410 Expired), as if
/// they had left the watch cache's window.
const OLDEST_WATCHABLE: u64 = BASE_RESOURCE_VERSION - 100;

/// Runs the watch, sending one JSON line per event into `tx`.
async fn produce(
    state: Arc<State>,
    kind: Kind,
    namespace: String,
    query: Vec<(String, String)>,
    table: bool,
    tx: mpsc::Sender<Bytes>,
) {
    let settings = state.watch;
    // timeoutSeconds=0 means "no client timeout", i.e. the server's.
    let timeout = query_get(&query, "timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .filter(|t| *t > 0)
        .map(Duration::from_secs)
        .unwrap_or(settings.max_duration)
        .min(settings.max_duration);
    let deadline = tokio::time::Instant::now() + timeout;
    let label = query_get(&query, "labelSelector");
    let include = objects::IncludeObject::from_query(query_get(&query, "includeObject"));
    let field = query_get(&query, "fieldSelector");
    let all = state.fixtures.objects(kind, &namespace);
    let age = state.clock.now().saturating_sub(state.fixtures.created);
    let encode = |event_type: &str, object: Value, rv: u64| {
        let object = if table {
            objects::table(kind, std::slice::from_ref(&object), rv, age, include)
        } else {
            objects::with_type(kind, object)
        };
        Bytes::from(format!(
            "{}\n",
            json!({ "type": event_type, "object": object })
        ))
    };
    let selected = |o: &Value| {
        objects::select(vec![o.clone()], label, field)
            .map(|v| !v.is_empty())
            .unwrap_or(false)
    };

    let since = query_get(&query, "resourceVersion").filter(|rv| !rv.is_empty() && *rv != "0");
    let first_change = match since.map(str::parse::<u64>) {
        None => {
            for object in all.iter().filter(|o| selected(o)) {
                let rv = object["metadata"]["resourceVersion"]
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(BASE_RESOURCE_VERSION);
                if tx.send(encode("ADDED", object.clone(), rv)).await.is_err() {
                    return;
                }
            }
            1
        }
        Some(Ok(rv)) if rv < OLDEST_WATCHABLE => {
            let status = KubeStatus::new(
                StatusCode::GONE,
                "Expired",
                format!("too old resource version: {rv} ({BASE_RESOURCE_VERSION})"),
            );
            let _ = tx
                .send(Bytes::from(format!(
                    "{}\n",
                    json!({ "type": "ERROR", "object": status.to_value() })
                )))
                .await;
            return;
        }
        Some(Ok(rv)) => rv.saturating_sub(BASE_RESOURCE_VERSION) + 1,
        // Validated before the response started.
        Some(Err(_)) => return,
    };

    let mut ticker = tokio::time::interval_at(
        tokio::time::Instant::now() + settings.interval,
        settings.interval,
    );
    for k in first_change..=settings.events {
        tokio::select! {
            _ = ticker.tick() => {}
            () = tokio::time::sleep_until(deadline) => return,
            () = tx.closed() => return,
        }
        if all.is_empty() {
            continue;
        }
        let index = usize::try_from((k - 1) % all.len() as u64).unwrap_or(0);
        let mut object = all[index].clone();
        let rv = BASE_RESOURCE_VERSION + k;
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        let annotations = &mut object["metadata"]["annotations"];
        if !annotations.is_object() {
            *annotations = json!({});
        }
        annotations["testbed.headlamp.dev/tick"] = json!(k.to_string());
        if selected(&object) && tx.send(encode("MODIFIED", object, rv)).await.is_err() {
            return;
        }
    }
    tokio::select! {
        () = tokio::time::sleep_until(deadline) => {}
        () = tx.closed() => {}
    }
}

/// Serves a watch over chunked HTTP, or over a WebSocket when the request
/// is an upgrade.
pub(crate) fn serve(
    state: &Arc<State>,
    w: WatchRequest<'_>,
    request: http::Request<hyper::body::Incoming>,
    ws_protocols: &[String],
) -> Response<Body> {
    if let Some(rv) = query_get(w.query, "resourceVersion")
        && !rv.is_empty()
        && rv.parse::<u64>().is_err()
    {
        return KubeStatus::bad_request(format!("invalid resource version: {rv:?}"))
            .into_response();
    }
    if let Err(e) = objects::select(
        Vec::new(),
        query_get(w.query, "labelSelector"),
        query_get(w.query, "fieldSelector"),
    ) {
        return KubeStatus::bad_request(e).into_response();
    }
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    let producer = produce(
        Arc::clone(state),
        w.kind,
        w.namespace.to_owned(),
        w.query.to_vec(),
        w.table,
        tx,
    );
    if websocket::is_upgrade(request.headers()) {
        return serve_websocket(state, request, ws_protocols, producer, rx);
    }
    state.spawn(producer);
    streaming_response(rx, "application/json")
}

/// x/net/websocket's server handshake as kube-apiserver uses it for
/// watches (`websocket.Handler`): the `Origin` header must be a URL
/// (`checkOrigin`, else 403), and at most one subprotocol may be offered,
/// which is echoed back (more than one is a 400). Events are text frames
/// of plain JSON (JSON encodes as text), whatever the subprotocol's name
/// says; Headlamp's frontend `JSON.parse`s them.
fn serve_websocket(
    state: &Arc<State>,
    request: http::Request<hyper::body::Incoming>,
    protocols: &[String],
    producer: impl std::future::Future<Output = ()> + Send + 'static,
    rx: mpsc::Receiver<Bytes>,
) -> Response<Body> {
    let origin_ok = request
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|o| o != "null" && (o.contains("://") || o.starts_with('/')));
    if !origin_ok {
        return plain_status(StatusCode::FORBIDDEN);
    }
    if protocols.len() > 1 {
        return plain_status(StatusCode::BAD_REQUEST);
    }
    let Some(mut response) =
        websocket::accept_response(request.headers(), protocols.first().map(String::as_str))
    else {
        return plain_status(StatusCode::BAD_REQUEST);
    };
    // x/net's JSON encoder output, newline included, as one text frame.
    let encode: fn(Bytes) -> Message =
        |event| Message::text(String::from_utf8_lossy(&event).into_owned());
    websocket::pump(state, hyper::upgrade::on(request), producer, rx, encode);
    *response.body_mut() = empty();
    response
}

fn plain_status(code: StatusCode) -> Response<Body> {
    let mut r = Response::new(empty());
    *r.status_mut() = code;
    r
}
