//! The server side of the WebSocket opening handshake (RFC 6455 section
//! 4.2) on a hyper request, shared by watches and exec.

use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};

use super::server::{Body, State, empty};

pub(crate) type ServerSocket = WebSocketStream<TokioIo<Upgraded>>;

/// `wsstream.IsWebSocketRequest`: `Upgrade: websocket` and a `Connection`
/// header listing `upgrade`.
pub(crate) fn is_upgrade(headers: &HeaderMap) -> bool {
    let upgrade = headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let connection = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    upgrade && connection
}

/// The `101 Switching Protocols` answer, or `None` when the handshake is
/// malformed (no key, or a version other than 13).
pub(crate) fn accept_response(
    headers: &HeaderMap,
    protocol: Option<&str>,
) -> Option<Response<Body>> {
    let key = headers.get(header::SEC_WEBSOCKET_KEY)?;
    if headers.get(header::SEC_WEBSOCKET_VERSION)?.as_bytes() != b"13" {
        return None;
    }
    let mut response = Response::new(empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = response.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(
        header::SEC_WEBSOCKET_ACCEPT,
        HeaderValue::from_str(&derive_accept_key(key.as_bytes())).ok()?,
    );
    if let Some(p) = protocol.filter(|p| !p.is_empty()) {
        h.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_str(p).ok()?,
        );
    }
    Some(response)
}

/// A close frame with status 1000: client-go treats any other closure
/// (including one without a status, 1005) as an error on every stream.
pub(crate) fn normal_close() -> CloseFrame {
    CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    }
}

/// Waits for hyper to hand over the upgraded connection.
pub(crate) async fn upgraded(upgrade: OnUpgrade) -> Option<ServerSocket> {
    let io = upgrade.await.ok()?;
    Some(WebSocketStream::from_raw_socket(TokioIo::new(io), Role::Server, None).await)
}

/// Serves a one-way stream (watch events, log chunks) on an upgraded
/// connection: runs `producer`, sends each chunk it yields as one message
/// made by `encode`, closes normally when it ends, and stops early when the
/// client closes or errors (the client sends nothing but control frames:
/// `wsstream.IgnoreReceives`).
pub(crate) fn pump(
    state: &std::sync::Arc<State>,
    upgrade: OnUpgrade,
    producer: impl std::future::Future<Output = ()> + Send + 'static,
    mut rx: mpsc::Receiver<Bytes>,
    encode: fn(Bytes) -> Message,
) {
    state.spawn(async move {
        let Some(mut ws) = upgraded(upgrade).await else {
            return;
        };
        let producer = tokio::spawn(producer);
        loop {
            tokio::select! {
                chunk = rx.recv() => match chunk {
                    Some(chunk) => {
                        if ws.send(encode(chunk)).await.is_err() {
                            break;
                        }
                    }
                    None => {
                        let _ = ws.close(Some(normal_close())).await;
                        break;
                    }
                },
                incoming = ws.next() => match incoming {
                    Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                    Some(Ok(_)) => {}
                },
            }
        }
        producer.abort();
    });
}
