//! A loopback HTTP receiver for alert tests: it records every request (method, path,
//! headers, body) and answers as told — a status, or hanging after reading the request (to
//! cut a delivery off between "received" and "answered"). It speaks plain HTTP/1.1 with
//! `Content-Length` bodies, which is what chanmon's client sends.
//!
//! One receiver stands in for every sink type: the tests check each request against the
//! shape the real service documents (Slack's `text`, Discord's `content`, Telegram's
//! `/bot<token>/sendMessage`, ntfy's headers, PagerDuty's Events API v2 body).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How the receiver answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    Status(u16),
    /// Read the request, record it, never answer (until the connection is dropped).
    Hang,
}

#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

#[derive(Default)]
struct State {
    answer: Option<Answer>,
    received: Vec<Received>,
}

pub(crate) struct Receiver {
    port: u16,
    state: Arc<Mutex<State>>,
}

impl Receiver {
    pub(crate) fn start() -> Receiver {
        Self::start_on(0)
    }

    /// Binds `port` (0: any free one) on 127.0.0.1.
    pub(crate) fn start_on(port: u16) -> Receiver {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind receiver");
        let port = listener.local_addr().expect("addr").port();
        let state = Arc::new(Mutex::new(State::default()));
        let st = state.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let st = st.clone();
                std::thread::spawn(move || serve(conn, &st));
            }
        });
        Receiver { port, state }
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub(crate) fn answer(&self, a: Answer) {
        self.state.lock().unwrap().answer = Some(a);
    }

    pub(crate) fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    /// The `X-Chanmon-Event-Id` of every request, in order.
    pub(crate) fn event_ids(&self) -> Vec<String> {
        self.received()
            .iter()
            .filter_map(|r| r.header("x-chanmon-event-id").map(str::to_owned))
            .collect()
    }
}

fn serve(conn: TcpStream, st: &Mutex<State>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let mut reader = BufReader::new(match conn.try_clone() {
        Ok(c) => c,
        Err(_) => return,
    });
    let mut conn = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_owned();
        let path = parts.next().unwrap_or("").to_owned();
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_owned(), v.trim().to_owned()));
            }
        }
        let len: usize = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let answer = {
            let mut s = st.lock().unwrap();
            s.received.push(Received {
                method,
                path,
                headers,
                body,
            });
            s.answer.unwrap_or(Answer::Status(200))
        };
        match answer {
            Answer::Hang => {
                // Hold the connection open and say nothing.
                std::thread::sleep(Duration::from_secs(600));
                return;
            }
            Answer::Status(code) => {
                let body = if (200..300).contains(&code) {
                    "ok"
                } else {
                    "try later"
                };
                let reply = format!(
                    "HTTP/1.1 {code} X\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                if conn.write_all(reply.as_bytes()).is_err() {
                    return;
                }
            }
        }
    }
}
