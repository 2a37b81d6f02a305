//! `pods/<name>/log`: a container's log as a plain-text stream over HTTP, or
//! over a WebSocket the way kube-apiserver serves streams to browsers
//! (`k8s.io/apimachinery/pkg/util/httpstream/wsstream/stream.go`,
//! `NewReader`): subprotocol `base64.binary.k8s.io` sends each chunk as a
//! base64 text frame (what Headlamp's log viewer asks for),
//! `binary.k8s.io` or none as binary frames. This is where the
//! `base64.binary.k8s.io` name really means base64.
//!
//! Each container has ten log lines; with `follow=true` one more line is
//! written every watch interval, up to the watch event count, and the
//! stream ends at `timeoutSeconds` or the watch bound, like a watch.
//! `tailLines`, `timestamps` and `limitBytes` are honoured.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::{Response, StatusCode};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use super::objects::{self, rfc3339};
use super::request_info::{parse_bool, query_get};
use super::server::{Body, State, empty, streaming_response};
use super::status::KubeStatus;
use super::websocket;

/// Lines a container has logged before anyone asks.
const INITIAL_LINES: u64 = 10;

struct LogOptions {
    pod: String,
    container: String,
    follow: bool,
    tail: Option<u64>,
    timestamps: bool,
    limit_bytes: Option<usize>,
    timeout: Duration,
}

fn line(o: &LogOptions, created: u64, n: u64) -> String {
    let text = format!("{}/{} log line {n}\n", o.pod, o.container);
    if o.timestamps {
        format!("{} {text}", rfc3339(created + n))
    } else {
        text
    }
}

async fn produce(state: Arc<State>, o: LogOptions, tx: mpsc::Sender<Bytes>) {
    let created = state.fixtures.created;
    let first = o
        .tail
        .map_or(1, |tail| INITIAL_LINES.saturating_sub(tail) + 1);
    let mut budget = o.limit_bytes.unwrap_or(usize::MAX);
    let mut send = |text: String| {
        let mut bytes = text.into_bytes();
        bytes.truncate(budget);
        budget -= bytes.len();
        bytes
    };
    for n in first..=INITIAL_LINES {
        let chunk = send(line(&o, created, n));
        if chunk.is_empty() || tx.send(Bytes::from(chunk)).await.is_err() {
            return;
        }
    }
    if !o.follow {
        return;
    }
    let deadline = tokio::time::Instant::now() + o.timeout;
    let interval = state.watch.interval;
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    for k in 1..=state.watch.events {
        tokio::select! {
            _ = ticker.tick() => {}
            () = tokio::time::sleep_until(deadline) => return,
            () = tx.closed() => return,
        }
        let chunk = send(line(&o, created, INITIAL_LINES + k));
        if chunk.is_empty() || tx.send(Bytes::from(chunk)).await.is_err() {
            return;
        }
    }
    tokio::select! {
        () = tokio::time::sleep_until(deadline) => {}
        () = tx.closed() => {}
    }
}

pub(crate) fn serve(
    state: &Arc<State>,
    pod: &Value,
    query: &[(String, String)],
    request: http::Request<hyper::body::Incoming>,
    ws_protocols: &[String],
) -> Response<Body> {
    let container = match objects::select_container(pod, query_get(query, "container")) {
        Ok(c) => c,
        Err(message) => return KubeStatus::bad_request(message).into_response(),
    };
    let number = |name: &str| -> Result<Option<u64>, KubeStatus> {
        query_get(query, name)
            .map(|v| {
                v.parse::<u64>()
                    .map_err(|_| KubeStatus::bad_request(format!("{name}: invalid value {v:?}")))
            })
            .transpose()
    };
    let (tail, limit, timeout) = match (
        number("tailLines"),
        number("limitBytes"),
        number("timeoutSeconds"),
    ) {
        (Ok(t), Ok(l), Ok(s)) => (t, l, s),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return e.into_response(),
    };
    let options = LogOptions {
        pod: pod["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        container,
        follow: query_get(query, "follow").is_some_and(parse_bool),
        tail,
        timestamps: query_get(query, "timestamps").is_some_and(parse_bool),
        limit_bytes: limit.and_then(|l| usize::try_from(l).ok()),
        timeout: timeout
            .filter(|t| *t > 0)
            .map(Duration::from_secs)
            .unwrap_or(state.watch.max_duration)
            .min(state.watch.max_duration),
    };
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    let producer = produce(Arc::clone(state), options, tx);
    if websocket::is_upgrade(request.headers()) {
        return serve_websocket(state, request, ws_protocols, producer, rx);
    }
    state.spawn(producer);
    streaming_response(rx, "text/plain")
}

/// `wsstream.NewReader`'s handshake: the first offered protocol it knows
/// (none offered means binary); none known is x/net's bare 403.
fn serve_websocket(
    state: &Arc<State>,
    request: http::Request<hyper::body::Incoming>,
    protocols: &[String],
    producer: impl std::future::Future<Output = ()> + Send + 'static,
    rx: mpsc::Receiver<Bytes>,
) -> Response<Body> {
    let chosen = if protocols.is_empty() {
        Some((false, ""))
    } else {
        protocols.iter().find_map(|p| match p.as_str() {
            "binary.k8s.io" => Some((false, "binary.k8s.io")),
            "base64.binary.k8s.io" => Some((true, "base64.binary.k8s.io")),
            _ => None,
        })
    };
    let Some((base64, protocol)) = chosen else {
        let mut r = Response::new(empty());
        *r.status_mut() = StatusCode::FORBIDDEN;
        return r;
    };
    let Some(response) = websocket::accept_response(request.headers(), Some(protocol)) else {
        return KubeStatus::bad_request("malformed WebSocket handshake").into_response();
    };
    let encode: fn(Bytes) -> Message = if base64 {
        |chunk| Message::text(STANDARD.encode(&chunk))
    } else {
        Message::binary
    };
    websocket::pump(state, hyper::upgrade::on(request), producer, rx, encode);
    response
}
