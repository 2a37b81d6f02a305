//! `-html-static-dir` served by the real binary: a directory shaped like a
//! Headlamp build (generated here), under `-base-url=/headlamp`. The three
//! `index.html` rewrites (backend/cmd/headlamp.go `baseURLReplace`) are in
//! every page answer, unknown paths are the single-page app, build files
//! keep their types, the directory is left untouched, and a directory
//! without `index.html` stops the server at start with a clear message.
// Helpers outside #[test] functions may unwrap too: a panic is a failed test.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use bytes::Bytes;
use headlamp_e2e::server::{ServerOptions, ServerProcess, free_port};
use headlamp_test_util::TestBedError;
use headlamp_test_util::idp::{HttpClient, HttpResponse};
use headlamp_test_util::kubeconfig::{KubeCluster, KubeUser, Kubeconfig};
use http::{Request, StatusCode, header};
use http_body_util::Full;

/// The parts of a Headlamp build's `index.html` the rewrites touch
/// (frontend/index.html after a Vite build with `base: './'`).
const BUILT_INDEX: &str = r#"<!DOCTYPE html>
<html lang="en"><head>
<link rel="icon" href="./favicon.ico" />
<link rel="manifest" href="./manifest.json" crossorigin="use-credentials" />
<script>
  __baseUrl__ = './<%= BASE_URL %>'.replace('%BASE_' + 'URL%', '').replace('<' + '%= BASE_URL %>', '');
  headlampBaseUrl = __baseUrl__;
</script>
<style>.splash { background: url(images/splash.png); }</style>
<script type="module" crossorigin src="./assets/index-BjQ3x9aF.js"></script>
<link rel="stylesheet" crossorigin href="./assets/index-Cq8Zt0Pe.css">
</head><body><div id="root"></div></body></html>
"#;

fn write_build(root: &Path) {
    std::fs::create_dir_all(root.join("assets")).unwrap();
    std::fs::write(root.join("index.html"), BUILT_INDEX).unwrap();
    std::fs::write(
        root.join("assets/index-BjQ3x9aF.js"),
        "export const app = 1;\n",
    )
    .unwrap();
    // Headlamp's build writes brotli copies beside its files
    // (frontend/scripts/precompress-build.ts); stand-in bytes here.
    std::fs::write(root.join("assets/index-BjQ3x9aF.js.br"), "brotli bytes").unwrap();
    std::fs::write(
        root.join("assets/index-Cq8Zt0Pe.css"),
        "body { margin: 0 }\n",
    )
    .unwrap();
    std::fs::write(root.join("manifest.json"), "{\"name\":\"Headlamp\"}").unwrap();
    std::fs::write(root.join("favicon.ico"), [0u8, 0, 1, 0]).unwrap();
}

/// A kubeconfig so the server does not look for the developer's; the
/// cluster is never contacted by these tests.
fn write_kubeconfig(path: &Path) {
    Kubeconfig::new()
        .cluster(
            "main",
            KubeCluster {
                server: "https://127.0.0.1:1".to_owned(),
                ..KubeCluster::default()
            },
        )
        .user("main", KubeUser::Anonymous)
        .context("main", "main", "main", None)
        .current_context("main")
        .write(path)
        .unwrap();
}

async fn start(static_dir: &Path, kubeconfig: &Path) -> Result<ServerProcess, TestBedError> {
    ServerProcess::start(ServerOptions::new(free_port()).args([
        format!("-html-static-dir={}", static_dir.display()),
        format!("-kubeconfig={}", kubeconfig.display()),
        "-base-url=/headlamp".to_owned(),
    ]))
    .await
}

async fn get(client: &HttpClient, url: &str, if_none_match: Option<&str>) -> HttpResponse {
    let mut request = Request::get(url);
    if let Some(etag) = if_none_match {
        request = request.header(header::IF_NONE_MATCH, etag);
    }
    client
        .send(
            request.body(Full::new(Bytes::new())).unwrap(),
            "static frontend",
        )
        .await
        .unwrap()
}

fn header_of(response: &HttpResponse, name: header::HeaderName) -> &str {
    response
        .headers
        .get(&name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

#[tokio::test]
async fn serves_a_headlamp_build_with_the_base_url_rewrites_and_index_fallback() {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    write_build(&site);
    let kubeconfig = dir.path().join("kubeconfig");
    write_kubeconfig(&kubeconfig);
    let server = start(&site, &kubeconfig).await.unwrap();
    let client = HttpClient::new().unwrap();

    // The app's own routes and the root: the rewritten index.html.
    for path in [
        "/",
        "",
        "/index.html",
        "/auth?cluster=main",
        "/c/main/pods",
        "/c/main/pods/default/web.js",
        "/login",
    ] {
        let response = get(&client, &server.url(path), None).await;
        assert_eq!(response.status, StatusCode::OK, "{path}");
        assert_eq!(
            header_of(&response, header::CONTENT_TYPE),
            "text/html; charset=utf-8",
            "{path}"
        );
        assert_eq!(header_of(&response, header::CACHE_CONTROL), "no-cache");
        let html = response.text();
        assert!(
            html.contains("headlampBaseUrl = '/headlamp';"),
            "{path}: {html}"
        );
        assert!(
            html.contains(r#"src="/headlamp/assets/index-BjQ3x9aF.js""#),
            "{html}"
        );
        assert!(
            html.contains(r#"href="/headlamp/assets/index-Cq8Zt0Pe.css""#),
            "{html}"
        );
        assert!(html.contains(r#"href="/headlamp/manifest.json""#), "{html}");
        assert!(html.contains("url(/headlamp/images/splash.png)"), "{html}");
        assert!(!html.contains("./"), "{path}: {html}");
    }

    // Build files with their types; hashed ones are cacheable for good.
    for (path, content_type, cache) in [
        (
            "/assets/index-BjQ3x9aF.js",
            "text/javascript; charset=utf-8",
            "public, max-age=31536000, immutable",
        ),
        (
            "/assets/index-Cq8Zt0Pe.css",
            "text/css; charset=utf-8",
            "public, max-age=31536000, immutable",
        ),
        ("/manifest.json", "application/json", "no-cache"),
        ("/favicon.ico", "image/x-icon", "no-cache"),
    ] {
        let response = get(&client, &server.url(path), None).await;
        assert_eq!(response.status, StatusCode::OK, "{path}");
        assert_eq!(
            header_of(&response, header::CONTENT_TYPE),
            content_type,
            "{path}"
        );
        assert_eq!(header_of(&response, header::CACHE_CONTROL), cache, "{path}");
        assert_eq!(
            header_of(&response, header::X_CONTENT_TYPE_OPTIONS),
            "nosniff"
        );
        let etag = header_of(&response, header::ETAG).to_owned();
        let again = get(&client, &server.url(path), Some(&etag)).await;
        assert_eq!(again.status, StatusCode::NOT_MODIFIED, "{path}");
    }
    assert_eq!(
        get(&client, &server.url("/assets/index-BjQ3x9aF.js"), None)
            .await
            .text(),
        "export const app = 1;\n"
    );

    // Browsers that take brotli get the precompressed copy.
    let request = Request::get(server.url("/assets/index-BjQ3x9aF.js"))
        .header(header::ACCEPT_ENCODING, "gzip, deflate, br, zstd")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let brotli = client.send(request, "static frontend").await.unwrap();
    assert_eq!(header_of(&brotli, header::CONTENT_ENCODING), "br");
    assert_eq!(
        header_of(&brotli, header::CONTENT_TYPE),
        "text/javascript; charset=utf-8"
    );
    assert_eq!(brotli.text(), "brotli bytes");

    // A chunk of an older build is a 404, not HTML run as a script.
    let missing = get(&client, &server.url("/assets/index-0ldBu1ld.js"), None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.text().contains("\"kind\":\"Status\""));

    // Nothing outside the directory, however encoded.
    std::fs::write(dir.path().join("secret.txt"), "top secret").unwrap();
    for path in [
        "/%2e%2e/secret.txt",
        "/assets/..%2F..%2Fsecret.txt",
        "/..%5Csecret.txt",
    ] {
        let response = get(&client, &server.url(path), None).await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{path}");
        assert!(!response.text().contains("top secret"), "{path}");
    }

    // Outside the base URL there is no frontend.
    let outside = get(&client, &format!("{}/index.html", server.origin()), None).await;
    assert_eq!(outside.status, StatusCode::NOT_FOUND);

    // Rewritten in memory: the directory is as it was (it may be read-only).
    assert_eq!(
        std::fs::read_to_string(site.join("index.html")).unwrap(),
        BUILT_INDEX
    );
    let mut names: Vec<_> = std::fs::read_dir(&site)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["assets", "favicon.ico", "index.html", "manifest.json"]
    );
}

#[tokio::test]
async fn a_directory_without_index_html_stops_the_server_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    std::fs::create_dir(&site).unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    write_kubeconfig(&kubeconfig);
    match start(&site, &kubeconfig).await {
        Err(TestBedError::ProcessExited { logs, .. }) => {
            assert!(logs.contains("-html-static-dir"), "{logs}");
            assert!(logs.contains("index.html"), "{logs}");
        }
        other => panic!("expected the server to exit at start, got {other:?}"),
    }
}
