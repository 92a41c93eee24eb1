//! The network policy at the socket: a DNS server of the test's own on loopback, a canary
//! HTTP server that must never be reached, redirects that must not be followed.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chanmon::model::Kind;
use chanmon::net::{HttpClient, NetworkPolicy, classify_error, read_body_capped};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A canary HTTP server counting connections; answers 200 (or what `reply` says).
async fn canary(reply: &'static [u8]) -> (SocketAddr, Arc<AtomicUsize>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            h.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(reply).await;
            });
        }
    });
    (addr, hits)
}

const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";

/// A one-question DNS server: the n-th A query gets `answers[n]` (the last one repeats);
/// `None` answers NXDOMAIN. AAAA queries get an empty answer.
fn dns_server(answers: Vec<Option<Vec<Ipv4Addr>>>) -> (SocketAddr, Arc<AtomicUsize>) {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = sock.local_addr().unwrap();
    let queries = Arc::new(AtomicUsize::new(0));
    let q = queries.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while let Ok((n, peer)) = sock.recv_from(&mut buf) {
            let req = &buf[..n];
            if n < 12 {
                continue;
            }
            // Question: labels, then type and class.
            let mut i = 12;
            while i < n && req[i] != 0 {
                i += req[i] as usize + 1;
            }
            if i + 5 > n {
                continue;
            }
            let qtype = u16::from_be_bytes([req[i + 1], req[i + 2]]);
            let question = &req[12..i + 5];
            let (rcode, ips) = if qtype == 1 {
                let k = q.fetch_add(1, Ordering::SeqCst);
                match &answers[k.min(answers.len() - 1)] {
                    Some(ips) => (0u8, ips.clone()),
                    None => (3u8, vec![]),
                }
            } else {
                (0, vec![])
            };
            let mut out = Vec::new();
            out.extend_from_slice(&req[0..2]);
            out.extend_from_slice(&[0x81, 0x80 | rcode]);
            out.extend_from_slice(&1u16.to_be_bytes());
            out.extend_from_slice(&(ips.len() as u16).to_be_bytes());
            out.extend_from_slice(&[0, 0, 0, 0]);
            out.extend_from_slice(question);
            for ip in ips {
                out.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4]);
                out.extend_from_slice(&ip.octets());
            }
            let _ = sock.send_to(&out, peer);
        }
    });
    (addr, queries)
}

fn policy() -> NetworkPolicy {
    NetworkPolicy {
        allow_http: true,
        connect_timeout: Duration::from_secs(3),
        ..NetworkPolicy::default()
    }
}

async fn get(client: &HttpClient, url: &str) -> Result<reqwest::Response, (Kind, String)> {
    let req = client
        .request(reqwest::Method::GET, url.parse().unwrap())
        .map_err(|b| (Kind::Blocked, b.to_string()))?;
    req.timeout(Duration::from_secs(5))
        .send()
        .await
        .map_err(|e| classify_error(&e))
}

#[tokio::test]
async fn dns_answers_pointing_inside_are_refused_and_nothing_connects() {
    let (canary_addr, hits) = canary(OK).await;
    let lo = Ipv4Addr::LOCALHOST;
    let answers = vec![
        Some(vec![lo]),
        Some(vec![Ipv4Addr::new(10, 0, 0, 1)]),
        Some(vec![Ipv4Addr::new(93, 184, 216, 34), lo]),
    ];
    let (ns, queries) = dns_server(answers);
    let client = HttpClient::with_nameserver(&policy(), ns).unwrap();
    let url = format!("http://rebind.test:{}/", canary_addr.port());
    for round in 0..3 {
        let err = get(&client, &url)
            .await
            .err()
            .unwrap_or_else(|| panic!("round {round} was not refused"));
        assert_eq!(err.0, Kind::Blocked, "round {round}: {err:?}");
        assert!(err.1.contains("allow"), "{}", err.1);
    }
    assert!(
        queries.load(Ordering::SeqCst) >= 3,
        "the resolver really asked each time"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 0, "the canary was reached");
}

#[tokio::test]
async fn the_same_path_connects_when_loopback_is_allowed() {
    let (canary_addr, hits) = canary(OK).await;
    let (ns, _) = dns_server(vec![Some(vec![Ipv4Addr::LOCALHOST])]);
    let mut p = policy();
    p.allow_cidrs = vec!["127.0.0.0/8".parse().unwrap()];
    let client = HttpClient::with_nameserver(&p, ns).unwrap();
    let resp = get(
        &client,
        &format!("http://allowed.test:{}/", canary_addr.port()),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn unknown_names_are_dns_errors() {
    let (ns, _) = dns_server(vec![None]);
    let client = HttpClient::with_nameserver(&policy(), ns).unwrap();
    let err = get(&client, "http://nowhere.test/").await.err().unwrap();
    assert_eq!(err.0, Kind::Dns, "{err:?}");
}

#[tokio::test]
async fn redirects_are_returned_not_followed() {
    const REDIRECT: &[u8] =
        b"HTTP/1.1 302 Found\r\nlocation: http://169.254.169.254/latest/meta-data/\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
    let (addr, hits) = canary(REDIRECT).await;
    let mut p = policy();
    p.allow_cidrs = vec!["127.0.0.0/8".parse().unwrap()];
    let client = HttpClient::new(&p).unwrap();
    let resp = get(&client, &format!("http://127.0.0.1:{}/", addr.port()))
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    assert_eq!(
        resp.headers()["location"],
        "http://169.254.169.254/latest/meta-data/"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn ip_literals_are_refused_before_anything_is_sent() {
    let (addr, hits) = canary(OK).await;
    let client = HttpClient::new(&policy()).unwrap();
    for host in [
        "127.0.0.1",
        "2130706433",
        "0x7f.1",
        "[::ffff:127.0.0.1]",
        "localhost",
    ] {
        let err = get(&client, &format!("http://{host}:{}/", addr.port()))
            .await
            .err()
            .unwrap();
        assert_eq!(err.0, Kind::Blocked, "{host}");
    }
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn bodies_are_read_up_to_the_cap() {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf).await;
        let _ = s
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 5242880\r\n\r\n")
            .await;
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..80 {
            if s.write_all(&chunk).await.is_err() {
                break;
            }
        }
    });
    let mut p = policy();
    p.allow_cidrs = vec!["127.0.0.0/8".parse().unwrap()];
    let client = HttpClient::new(&p).unwrap();
    let resp = get(&client, &format!("http://127.0.0.1:{}/", addr.port()))
        .await
        .unwrap();
    let body = read_body_capped(resp, 1 << 20).await.unwrap();
    assert!(body.truncated);
    assert_eq!(body.bytes.len(), 1 << 20);
}

#[tokio::test]
async fn transport_failures_are_classified() {
    let mut p = policy();
    p.allow_cidrs = vec!["127.0.0.0/8".parse().unwrap()];
    let client = HttpClient::new(&p).unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = get(&client, &format!("http://127.0.0.1:{closed}/"))
        .await
        .err()
        .unwrap();
    assert_eq!(err.0, Kind::Connect, "{err:?}");
    // https to a plain-HTTP server: the handshake fails.
    let (addr, _) = canary(OK).await;
    let err = get(&client, &format!("https://127.0.0.1:{}/", addr.port()))
        .await
        .err()
        .unwrap();
    assert_eq!(err.0, Kind::Tls, "{err:?}");
    // A server that accepts and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut keep = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            keep.push(s);
        }
    });
    let req = client
        .request(
            reqwest::Method::GET,
            format!("http://127.0.0.1:{port}/").parse().unwrap(),
        )
        .unwrap();
    let err = req
        .timeout(Duration::from_millis(300))
        .send()
        .await
        .err()
        .unwrap();
    assert_eq!(classify_error(&err).0, Kind::Timeout);
}

#[tokio::test]
async fn a_configured_proxy_on_the_lan_is_reachable_and_used() {
    let (proxy_addr, proxy_hits) = canary(OK).await;
    let (ns, _) = dns_server(vec![Some(vec![Ipv4Addr::LOCALHOST])]);
    let mut p = policy();
    p.proxy = Some(
        format!("http://proxy.test:{}", proxy_addr.port())
            .parse()
            .unwrap(),
    );
    let client = HttpClient::with_nameserver(&p, ns).unwrap();
    let resp = get(&client, "http://api.example.com/").await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(proxy_hits.load(Ordering::SeqCst), 1);
    // Targets are still checked before anything is sent.
    let err = get(&client, "http://10.0.0.1/").await.err().unwrap();
    assert_eq!(err.0, Kind::Blocked);
}
