//! A loopback SMTP server for the email sink's tests: plain SMTP, enough of RFC 5321 for a
//! real client (lettre) — EHLO/HELO, AUTH PLAIN and LOGIN when credentials are set (then
//! required before MAIL), MAIL FROM, RCPT TO, DATA with dot-unstuffing, RSET, NOOP, QUIT.
//!
//! It records every message that reached the end of DATA, with the reply it gave, so a test
//! can script "451 once, then accept" and see both attempts. With a certificate from the
//! throwaway CA (`mock_tls`) it speaks implicit TLS from the first byte, or offers STARTTLS.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

/// One message as the server saw it.
#[derive(Debug, Clone)]
pub(crate) struct Mail {
    /// The user that authenticated on this connection, if any.
    pub auth_user: Option<String>,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// The message (headers and body) after dot-unstuffing, CRLF line ends.
    pub data: String,
    /// The code the server answered the end of DATA with.
    pub reply: u16,
    /// Whether the session was encrypted when the message arrived.
    pub tls: bool,
}

impl Mail {
    /// The first header called `name` (unfolded).
    pub(crate) fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or("");
        let mut out: Option<String> = None;
        for line in head.split("\r\n") {
            if let Some(v) = out.as_mut()
                && (line.starts_with(' ') || line.starts_with('\t'))
            {
                v.push_str(line);
                continue;
            }
            if out.is_some() {
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.eq_ignore_ascii_case(name)
            {
                out = Some(v.trim().to_owned());
            }
        }
        out
    }

    /// The body, quoted-printable or base64 decoded as its header says.
    pub(crate) fn body(&self) -> String {
        let raw = self.data.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        match self
            .header("Content-Transfer-Encoding")
            .map(|s| s.to_ascii_lowercase())
            .as_deref()
        {
            Some("quoted-printable") => decode_qp(raw),
            Some("base64") => {
                let joined: String = raw.split_whitespace().collect();
                String::from_utf8_lossy(&B64.decode(joined).unwrap_or_default()).into_owned()
            }
            _ => raw.to_owned(),
        }
    }
}

fn decode_qp(s: &str) -> String {
    let s = s.replace("=\r\n", "");
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'='
            && i + 2 < b.len()
            && let Some(v) = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[derive(Default)]
struct State {
    /// Replies to the next DATA ends, in order; then 250.
    script: VecDeque<(u16, String)>,
    mails: Vec<Mail>,
    /// AUTH attempts that failed (wrong user or password).
    bad_auth: usize,
}

pub(crate) struct SmtpServer {
    port: u16,
    state: Arc<Mutex<State>>,
}

/// How the server protects sessions.
#[derive(Clone)]
pub(crate) enum SmtpTlsMode {
    Plain,
    /// TLS from the first byte (SMTPS).
    Implicit(Arc<rustls::ServerConfig>),
    /// Plain, offering STARTTLS.
    StartTls(Arc<rustls::ServerConfig>),
}

impl SmtpTlsMode {
    /// A server certificate from the test CA (`mock_tls`), for 127.0.0.1 and localhost.
    pub(crate) fn config(leaf: &super::mock::tls_mock::Leaf) -> Arc<rustls::ServerConfig> {
        let tls = super::MockTls::new(leaf, None);
        Arc::new(super::mock::tls_mock::server_config(&tls))
    }
}

impl SmtpServer {
    /// A plain server on 127.0.0.1; with `credentials` it advertises AUTH PLAIN LOGIN and
    /// requires them before MAIL.
    pub(crate) fn start(credentials: Option<(&str, &str)>) -> SmtpServer {
        Self::start_with(credentials, SmtpTlsMode::Plain)
    }

    pub(crate) fn start_with(credentials: Option<(&str, &str)>, mode: SmtpTlsMode) -> SmtpServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().unwrap().port();
        let state: Arc<Mutex<State>> = Arc::default();
        let creds = credentials.map(|(u, p)| (u.to_owned(), p.to_owned()));
        let st = state.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (st, creds, mode) = (st.clone(), creds.clone(), mode.clone());
                std::thread::spawn(move || {
                    let _ = session(conn, &st, creds.as_ref(), &mode);
                });
            }
        });
        SmtpServer { port, state }
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// Answer the next DATA end with `code text` (then back to 250).
    pub(crate) fn reply_next(&self, code: u16, text: &str) {
        self.state
            .lock()
            .unwrap()
            .script
            .push_back((code, text.to_owned()));
    }

    /// Every message that reached the end of DATA, accepted or not.
    pub(crate) fn mails(&self) -> Vec<Mail> {
        self.state.lock().unwrap().mails.clone()
    }

    /// Only the messages the server accepted.
    pub(crate) fn accepted(&self) -> Vec<Mail> {
        self.mails()
            .into_iter()
            .filter(|m| m.reply == 250)
            .collect()
    }

    pub(crate) fn bad_auth(&self) -> usize {
        self.state.lock().unwrap().bad_auth
    }
}

trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

struct Conn {
    r: BufReader<Box<dyn Stream>>,
    tls: bool,
}

impl Conn {
    fn send(&mut self, line: &str) -> std::io::Result<()> {
        let w = self.r.get_mut();
        w.write_all(format!("{line}\r\n").as_bytes())?;
        w.flush()
    }

    /// Wraps the connection in TLS (the client speaks first: a ClientHello).
    fn upgrade(self, config: &Arc<rustls::ServerConfig>) -> std::io::Result<Conn> {
        let inner = self.r.into_inner();
        let server =
            rustls::ServerConnection::new(config.clone()).map_err(std::io::Error::other)?;
        Ok(Conn {
            r: BufReader::new(Box::new(rustls::StreamOwned::new(server, inner))),
            tls: true,
        })
    }

    fn line(&mut self) -> std::io::Result<Option<String>> {
        let mut s = String::new();
        if self.r.read_line(&mut s)? == 0 {
            return Ok(None);
        }
        Ok(Some(s.trim_end_matches(['\r', '\n']).to_owned()))
    }
}

fn b64(s: &str) -> String {
    String::from_utf8_lossy(&B64.decode(s.trim()).unwrap_or_default()).into_owned()
}

/// AUTH PLAIN (with or without an initial response) or LOGIN; the user when it matched.
fn auth(c: &mut Conn, args: &str, creds: &(String, String)) -> std::io::Result<Option<String>> {
    let mut parts = args.split_whitespace();
    let mech = parts.next().unwrap_or("").to_ascii_uppercase();
    let (user, pass) = match mech.as_str() {
        "PLAIN" => {
            let resp = match parts.next() {
                Some(r) => r.to_owned(),
                None => {
                    c.send("334 ")?;
                    c.line()?.unwrap_or_default()
                }
            };
            let plain = b64(&resp);
            let mut f = plain.split('\0');
            let _authzid = f.next();
            (
                f.next().unwrap_or("").to_owned(),
                f.next().unwrap_or("").to_owned(),
            )
        }
        "LOGIN" => {
            let user = match parts.next() {
                Some(u) => b64(u),
                None => {
                    c.send("334 VXNlcm5hbWU6")?;
                    b64(&c.line()?.unwrap_or_default())
                }
            };
            c.send("334 UGFzc3dvcmQ6")?;
            (user, b64(&c.line()?.unwrap_or_default()))
        }
        _ => {
            c.send("504 5.5.4 mechanism not supported")?;
            return Ok(None);
        }
    };
    if (user.as_str(), pass.as_str()) == (creds.0.as_str(), creds.1.as_str()) {
        c.send("235 2.7.0 Authentication successful")?;
        Ok(Some(user))
    } else {
        c.send("535 5.7.8 Authentication credentials invalid")?;
        Ok(None)
    }
}

fn session(
    stream: TcpStream,
    st: &Mutex<State>,
    creds: Option<&(String, String)>,
    mode: &SmtpTlsMode,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut c = Conn {
        r: BufReader::new(Box::new(stream)),
        tls: false,
    };
    if let SmtpTlsMode::Implicit(config) = mode {
        c = c.upgrade(config)?;
    }
    c.send("220 smtp.test ESMTP chanmon-test")?;
    let mut user: Option<String> = None;
    let (mut from, mut rcpt) = (String::new(), Vec::new());
    while let Some(line) = c.line()? {
        let (verb, args) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        match verb.to_ascii_uppercase().as_str() {
            "EHLO" => {
                c.send("250-smtp.test")?;
                if creds.is_some() {
                    c.send("250-AUTH PLAIN LOGIN")?;
                }
                if matches!(mode, SmtpTlsMode::StartTls(_)) && !c.tls {
                    c.send("250-STARTTLS")?;
                }
                c.send("250 8BITMIME")?;
            }
            "HELO" => c.send("250 smtp.test")?,
            "STARTTLS" => match mode {
                SmtpTlsMode::StartTls(config) if !c.tls => {
                    c.send("220 2.0.0 Ready to start TLS")?;
                    // RFC 3207: everything said before is forgotten.
                    (user, from, rcpt) = (None, String::new(), Vec::new());
                    c = c.upgrade(config)?;
                }
                _ => c.send("502 5.5.1 STARTTLS not offered")?,
            },
            "AUTH" => match creds {
                Some(cr) => {
                    user = auth(&mut c, args, cr)?;
                    if user.is_none() {
                        st.lock().unwrap().bad_auth += 1;
                    }
                }
                None => c.send("503 5.5.1 AUTH not advertised")?,
            },
            "MAIL" if creds.is_some() && user.is_none() => {
                c.send("530 5.7.0 Authentication required")?
            }
            "MAIL" => {
                from = addr(args);
                rcpt.clear();
                c.send("250 2.1.0 Ok")?;
            }
            "RCPT" => {
                rcpt.push(addr(args));
                c.send("250 2.1.5 Ok")?;
            }
            "DATA" if rcpt.is_empty() => c.send("503 5.5.1 no recipients")?,
            "DATA" => {
                let envelope = (user.clone(), from.clone(), rcpt.clone());
                data(&mut c, st, envelope)?;
            }
            "RSET" => {
                (from, rcpt) = (String::new(), Vec::new());
                c.send("250 2.0.0 Ok")?;
            }
            "NOOP" => c.send("250 2.0.0 Ok")?,
            "QUIT" => {
                c.send("221 2.0.0 Bye")?;
                return Ok(());
            }
            _ => c.send("502 5.5.2 command not recognized")?,
        }
    }
    Ok(())
}

/// DATA: reads the message, records it, answers as scripted (250 by default).
fn data(
    c: &mut Conn,
    st: &Mutex<State>,
    (auth_user, mail_from, rcpt_to): (Option<String>, String, Vec<String>),
) -> std::io::Result<()> {
    c.send("354 End data with <CR><LF>.<CR><LF>")?;
    let data = read_data(c)?;
    let (code, text) = {
        let mut st = st.lock().unwrap();
        let (code, text) = st
            .script
            .pop_front()
            .unwrap_or((250, "2.0.0 Ok: queued".into()));
        st.mails.push(Mail {
            auth_user,
            mail_from,
            rcpt_to,
            data,
            reply: code,
            tls: c.tls,
        });
        (code, text)
    };
    c.send(&format!("{code} {text}"))
}

/// `FROM:<a@b> SIZE=…` → `a@b`.
fn addr(args: &str) -> String {
    let start = args.find('<').map_or(0, |i| i + 1);
    let end = args[start..].find('>').map_or(args.len(), |i| start + i);
    args[start..end].to_owned()
}

/// Lines up to the lone ".", with a leading "." removed from the others (RFC 5321 4.5.2).
fn read_data(c: &mut Conn) -> std::io::Result<String> {
    let mut out = String::new();
    while let Some(line) = c.line()? {
        if line == "." {
            break;
        }
        out.push_str(line.strip_prefix('.').unwrap_or(&line));
        out.push_str("\r\n");
    }
    Ok(out)
}
