//! Mounting [`KubeProxy`] in a hyper server, the way another Rust service
//! (or headlamp-server) does.
//!
//! ```text
//! cargo run -p headlamp-proxy --example mount -- /path/to/kubeconfig 127.0.0.1:4466
//! kubectl --server http://127.0.0.1:4466/clusters/<context> --token "$TOKEN" get namespaces
//! ```
//!
//! Three things matter when mounting:
//! - serve connections with upgrades (`serve_connection_with_upgrades`),
//!   or exec, attach and port-forward cannot switch protocols;
//! - insert `ClientAddr` so `X-Forwarded-For` names the real client;
//! - a server that refreshes tokens inserts `ResolvedToken` so the fresh
//!   token is used for this very request.
// An example is a small binary: printing to the terminal is its output.
#![allow(clippy::print_stderr)]

use std::net::SocketAddr;

use headlamp_proxy::{ClientAddr, ClusterSources, KubeProxy, KubeconfigFiles, ProxyMode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tower::ServiceExt;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let kubeconfig = args
        .next()
        .ok_or("usage: mount <kubeconfig> [listen address, default 127.0.0.1:4466]")?;
    let listen: SocketAddr = args.next().as_deref().unwrap_or("127.0.0.1:4466").parse()?;

    let proxy = KubeProxy::builder(ProxyMode::passthrough())
        .clusters(ClusterSources {
            kubeconfig: Some(KubeconfigFiles::explicit(kubeconfig)),
            ..Default::default()
        })
        .build::<Incoming>()
        .await?;
    for cluster in proxy.clusters() {
        match &cluster.error {
            None => eprintln!("cluster {} -> {:?}", cluster.name, cluster.server),
            Some(error) => eprintln!("cluster {} unusable: {error}", cluster.name),
        }
    }

    let listener = tokio::net::TcpListener::bind(listen).await?;
    eprintln!("serving http://{listen}/clusters/<name>/...");
    loop {
        let (tcp, peer) = listener.accept().await?;
        let proxy = proxy.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                req.extensions_mut().insert(ClientAddr(peer));
                // A server with a session would insert a refreshed token here:
                // req.extensions_mut().insert(ResolvedToken(token));
                proxy.clone().oneshot(req)
            });
            if let Err(error) = auto::Builder::new(TokioExecutor::new())
                .serve_connection_with_upgrades(TokioIo::new(tcp), service)
                .await
            {
                eprintln!("connection from {peer}: {error}");
            }
        });
    }
}
