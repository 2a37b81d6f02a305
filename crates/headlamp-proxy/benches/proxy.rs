//! Per-request cost of the proxy: a small GET straight to an in-process
//! upstream on 127.0.0.1, and the same through `KubeProxy::handle` in
//! passthrough and impersonate mode (with pooled upstream connections, as
//! in production). The difference is what the proxy adds.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../tests/support/mod.rs"]
mod support;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use headlamp_core::Authenticate;
use headlamp_proxy::{ClusterSources, KubeProxy, KubeconfigFiles, ProxyMode};
use http::Request;
use http_body_util::{BodyExt, Full};

async fn build<A: Authenticate>(
    mode: ProxyMode<A>,
    kubeconfig: &std::path::Path,
) -> KubeProxy<A, Full<Bytes>> {
    KubeProxy::builder(mode)
        .clusters(ClusterSources {
            kubeconfig: Some(KubeconfigFiles::explicit(kubeconfig)),
            ..Default::default()
        })
        .build()
        .await
        .unwrap()
}

fn request(uri: String, token: &str) -> Request<Full<Bytes>> {
    Request::get(uri)
        .header("authorization", format!("Bearer {token}"))
        .header("accept", "application/json")
        .header("cookie", "theme=dark; headlamp-refresh-bench=sealed")
        .header("user-agent", "bench")
        .body(Full::new(Bytes::new()))
        .unwrap()
}

fn proxy_overhead(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let upstream = rt.block_on(support::start_upstream(None));
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = support::kubeconfig(
        dir.path(),
        "sa-token",
        &[("bench", &format!("http://{}", upstream.addr), "")],
    );
    let passthrough = rt.block_on(build(ProxyMode::passthrough(), &kubeconfig));
    let impersonate = rt.block_on(build(
        ProxyMode::Impersonate {
            authenticator: support::FakeAuthenticator,
        },
        &kubeconfig,
    ));
    let direct = support::client();
    let addr = upstream.addr;
    // The recording upstream keeps every request; clear it as we go.
    let recorded = upstream.recorded.clone();

    let mut group = c.benchmark_group("get_namespaces");
    group.bench_function("direct", |b| {
        b.iter(|| {
            rt.block_on(async {
                let r = direct
                    .request(request(
                        format!("http://{addr}/api/v1/namespaces"),
                        "alice-token",
                    ))
                    .await
                    .unwrap();
                r.into_body().collect().await.unwrap();
            });
            recorded.lock().unwrap().clear();
        })
    });
    group.bench_function("passthrough", |b| {
        b.iter(|| {
            rt.block_on(async {
                let r = passthrough
                    .handle(request(
                        "/clusters/bench/api/v1/namespaces".into(),
                        "alice-token",
                    ))
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                r.into_body().collect().await.unwrap();
            });
            recorded.lock().unwrap().clear();
        })
    });
    group.bench_function("impersonate", |b| {
        b.iter(|| {
            rt.block_on(async {
                let r = impersonate
                    .handle(request(
                        "/clusters/bench/api/v1/namespaces".into(),
                        "alice-token",
                    ))
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                r.into_body().collect().await.unwrap();
            });
            recorded.lock().unwrap().clear();
        })
    });
    group.finish();
}

criterion_group!(benches, proxy_overhead);
criterion_main!(benches);
