//! Environment proxies are ignored: a canary proxy must see nothing. (Its own test binary,
//! because it sets process-wide environment variables.)

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chanmon::net::{HttpClient, NetworkPolicy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn server() -> (u16, Arc<AtomicUsize>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            h.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                    )
                    .await;
            });
        }
    });
    (port, hits)
}

#[tokio::test]
async fn environment_proxies_are_ignored() {
    let (proxy_port, proxy_hits) = server().await;
    let (target_port, target_hits) = server().await;
    let proxy = format!("http://127.0.0.1:{proxy_port}");
    for v in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ] {
        // SAFETY: this test binary has one test; nothing else reads the environment meanwhile.
        unsafe { std::env::set_var(v, &proxy) };
    }
    let policy = NetworkPolicy {
        allow_http: true,
        allow_cidrs: vec!["127.0.0.0/8".parse().unwrap()],
        ..NetworkPolicy::default()
    };
    let client = HttpClient::new(&policy).unwrap();
    let resp = client
        .request(
            reqwest::Method::GET,
            format!("http://127.0.0.1:{target_port}/").parse().unwrap(),
        )
        .unwrap()
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(target_hits.load(Ordering::SeqCst), 1);
    assert_eq!(
        proxy_hits.load(Ordering::SeqCst),
        0,
        "the environment proxy was used"
    );
}
