//! `pods/<name>/exec` over WebSocket, speaking the remote-command channel
//! protocols the kubelet and kube-apiserver's stream translator speak
//! (`k8s.io/apimachinery/pkg/util/httpstream/wsstream/conn.go`,
//! `k8s.io/client-go/tools/remotecommand/websocket.go`; KEP-4006 for v5):
//! every message starts with a channel byte (0 stdin, 1 stdout, 2 stderr,
//! 3 error/status, 4 resize); `base64.*` variants send text frames with an
//! ASCII channel digit and base64 data; `v5.channel.k8s.io` adds the
//! `[255, channel]` close signal, which is how `kubectl exec -i` says that
//! stdin reached EOF. The command's status is written to channel 3 (a
//! `metav1.Status` JSON for v4/v5, plain error text for older protocols),
//! then the connection is closed, which is what ends client-go's stream.
//!
//! Authorization is that of Kubernetes 1.32: the WebSocket upgrade (a
//! `GET`) needs `get` on `pods/exec`; the extra `create` check
//! (`AuthorizePodWebsocketUpgradeCreatePermission`) is on by default only
//! from 1.35.
//!
//! Commands: `cat` echoes stdin to stdout until stdin closes; `echo ARGS`
//! prints its arguments; `true` / `false` exit 0 / 1; anything else fails
//! as an unknown executable. SPDY (kubectl's fallback) is not implemented:
//! a non-WebSocket exec request gets 400 "Upgrade request required".

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures_util::{SinkExt as _, StreamExt as _};
use http::{Response, StatusCode};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use super::objects;
use super::request_info::{parse_bool, query_get};
use super::server::{Body, State, empty};
use super::status::KubeStatus;
use super::websocket::{self, ServerSocket};

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;
const CLOSE: u8 = 255;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    /// `v5.channel.k8s.io`: v4 plus the close signal.
    V5,
    /// `v4.channel.k8s.io` / `v4.base64.channel.k8s.io`: JSON status.
    V4 { base64: bool },
    /// `channel.k8s.io` / `base64.channel.k8s.io` / none: text errors.
    V1 { base64: bool },
}

impl Protocol {
    /// The kubelet's `handshake`: the first offered protocol it supports,
    /// in the client's order; no protocol at all means binary v1.
    fn negotiate(offered: &[String]) -> Option<(Self, &str)> {
        if offered.is_empty() {
            return Some((Self::V1 { base64: false }, ""));
        }
        offered.iter().find_map(|p| {
            let proto = match p.as_str() {
                "v5.channel.k8s.io" => Self::V5,
                "v4.channel.k8s.io" => Self::V4 { base64: false },
                "v4.base64.channel.k8s.io" => Self::V4 { base64: true },
                "channel.k8s.io" => Self::V1 { base64: false },
                "base64.channel.k8s.io" => Self::V1 { base64: true },
                _ => return None,
            };
            Some((proto, p.as_str()))
        })
    }

    fn base64(self) -> bool {
        matches!(self, Self::V4 { base64: true } | Self::V1 { base64: true })
    }
}

struct ExecOptions {
    command: Vec<String>,
    stdin: bool,
    stdout: bool,
    stderr: bool,
}

/// The result of the command, as the kubelet reports it.
enum ExitStatus {
    Success,
    Code(u8),
    Failed(String),
}

/// What a remote-command request runs: `pods/exec` runs its `command`
/// parameters; `pods/attach` attaches to the container's main process,
/// which in this test cluster is a `cat` (stdin echoed to stdout).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    Exec,
    Attach,
}

pub(crate) fn serve(
    state: &Arc<State>,
    target: Target,
    pod: &Value,
    query: &[(String, String)],
    request: http::Request<hyper::body::Incoming>,
    ws_protocols: &[String],
) -> Response<Body> {
    if let Err(message) = objects::select_container(pod, query_get(query, "container")) {
        return KubeStatus::bad_request(message).into_response();
    }
    let flag = |name: &str| query_get(query, name).is_some_and(parse_bool);
    let options = ExecOptions {
        command: match target {
            Target::Exec => query
                .iter()
                .filter(|(k, _)| k == "command")
                .map(|(_, v)| v.clone())
                .collect(),
            Target::Attach => vec!["cat".to_owned()],
        },
        stdin: flag("stdin"),
        stdout: flag("stdout"),
        stderr: flag("stderr"),
    };
    if options.command.is_empty() {
        return KubeStatus::bad_request("you must specify at least 1 command").into_response();
    }
    if !(options.stdin || options.stdout || options.stderr) {
        return KubeStatus::bad_request("you must specify at least 1 of stdin, stdout, stderr")
            .into_response();
    }
    if !websocket::is_upgrade(request.headers()) {
        return KubeStatus::bad_request("Upgrade request required").into_response();
    }
    let Some((protocol, name)) = Protocol::negotiate(ws_protocols) else {
        // x/net/websocket answers a failed Handshake func with a bare 403.
        let mut r = Response::new(empty());
        *r.status_mut() = StatusCode::FORBIDDEN;
        return r;
    };
    let Some(response) = websocket::accept_response(request.headers(), Some(name)) else {
        return KubeStatus::bad_request("malformed WebSocket handshake").into_response();
    };
    let upgrade = hyper::upgrade::on(request);
    state.spawn(async move {
        if let Some(ws) = websocket::upgraded(upgrade).await {
            run(ws, protocol, options).await;
        }
    });
    response
}

fn frame(protocol: Protocol, channel: u8, data: &[u8]) -> Message {
    if protocol.base64() {
        Message::text(format!(
            "{}{}",
            char::from(b'0' + channel),
            STANDARD.encode(data)
        ))
    } else {
        let mut bytes = Vec::with_capacity(data.len() + 1);
        bytes.push(channel);
        bytes.extend_from_slice(data);
        Message::binary(bytes)
    }
}

/// An incoming message as (channel, payload); `None` for non-data frames.
fn decode(protocol: Protocol, message: Message) -> Option<(u8, Vec<u8>)> {
    match message {
        Message::Binary(b) if !protocol.base64() => {
            let (&channel, rest) = b.split_first()?;
            Some((channel, rest.to_vec()))
        }
        Message::Text(t) if protocol.base64() => {
            let bytes = t.as_bytes();
            let channel = bytes.first()?.checked_sub(b'0')?;
            Some((channel, STANDARD.decode(&bytes[1..]).ok()?))
        }
        _ => None,
    }
}

async fn run(mut ws: ServerSocket, protocol: Protocol, options: ExecOptions) {
    let args = &options.command[1..];
    let status = match options.command[0].as_str() {
        "cat" => {
            if !echo_stdin(&mut ws, protocol, &options).await {
                // The client went away before stdin closed: nobody to tell.
                return;
            }
            ExitStatus::Success
        }
        "echo" => {
            let line = format!("{}\n", args.join(" "));
            if options.stdout
                && ws
                    .send(frame(protocol, STDOUT, line.as_bytes()))
                    .await
                    .is_err()
            {
                return;
            }
            ExitStatus::Success
        }
        "true" => ExitStatus::Success,
        "false" => ExitStatus::Code(1),
        other => ExitStatus::Failed(format!(
            "failed to exec in container: exec: {other:?}: executable file not found in $PATH"
        )),
    };
    if options.stderr
        && let ExitStatus::Failed(message) = &status
    {
        let _ = ws.send(frame(protocol, STDERR, message.as_bytes())).await;
    }
    if let Some(payload) = status_payload(protocol, &status, &options.command) {
        let _ = ws.send(frame(protocol, ERROR, &payload)).await;
    }
    let _ = ws.close(Some(websocket::normal_close())).await;
    // Drain until the client acknowledges the close.
    while let Some(Ok(_)) = ws.next().await {}
}

/// Copies stdin to stdout until stdin ends. Returns false when the client
/// closed the connection instead.
async fn echo_stdin(ws: &mut ServerSocket, protocol: Protocol, options: &ExecOptions) -> bool {
    if !options.stdin {
        return true;
    }
    while let Some(message) = ws.next().await {
        let Ok(message) = message else { return false };
        if message.is_close() {
            return false;
        }
        let Some((channel, data)) = decode(protocol, message) else {
            continue;
        };
        match channel {
            STDIN if options.stdout && ws.send(frame(protocol, STDOUT, &data)).await.is_err() => {
                return false;
            }
            CLOSE if protocol == Protocol::V5 && data.first() == Some(&STDIN) => return true,
            _ => {}
        }
    }
    false
}

/// What goes on the error channel: v4/v5 a `metav1.Status`
/// (`NonZeroExitCode` with an `ExitCode` cause for exit codes), older
/// protocols only the error text on failure.
fn status_payload(protocol: Protocol, status: &ExitStatus, command: &[String]) -> Option<Vec<u8>> {
    let v4 = matches!(protocol, Protocol::V4 { .. } | Protocol::V5);
    let value = match status {
        ExitStatus::Success if v4 => json!({ "metadata": {}, "status": "Success" }),
        ExitStatus::Success => return None,
        ExitStatus::Code(code) => {
            let message = format!(
                "command terminated with non-zero exit code: error executing command {command:?}, exit code {code}"
            );
            if !v4 {
                return Some(message.into_bytes());
            }
            json!({
                "metadata": {}, "status": "Failure", "message": message,
                "reason": "NonZeroExitCode",
                "details": { "causes": [{ "reason": "ExitCode", "message": code.to_string() }] },
            })
        }
        ExitStatus::Failed(message) => {
            if !v4 {
                return Some(message.clone().into_bytes());
            }
            json!({
                "metadata": {}, "status": "Failure", "message": message,
                "reason": "InternalError",
                "details": { "causes": [{ "message": message }] }, "code": 500,
            })
        }
    };
    Some(value.to_string().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiates_like_the_kubelet() {
        let offer = |p: &[&str]| {
            Protocol::negotiate(&p.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .map(|(p, _)| p)
        };
        assert_eq!(offer(&["v5.channel.k8s.io"]), Some(Protocol::V5));
        assert_eq!(
            offer(&["bogus", "base64.channel.k8s.io", "v4.channel.k8s.io"]),
            Some(Protocol::V1 { base64: true })
        );
        assert_eq!(offer(&[]), Some(Protocol::V1 { base64: false }));
        assert_eq!(offer(&["v6.channel.k8s.io"]), None);
    }

    #[test]
    fn frames_round_trip() {
        for p in [Protocol::V5, Protocol::V4 { base64: true }] {
            assert_eq!(
                decode(p, frame(p, STDIN, b"hi\n")),
                Some((STDIN, b"hi\n".to_vec()))
            );
        }
        let status = status_payload(Protocol::V5, &ExitStatus::Code(1), &["false".into()]).unwrap();
        let v: Value = serde_json::from_slice(&status).unwrap();
        assert_eq!(v["details"]["causes"][0]["message"], "1");
        assert_eq!(
            status_payload(Protocol::V1 { base64: false }, &ExitStatus::Success, &[]),
            None
        );
    }
}
