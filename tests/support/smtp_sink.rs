//! A real SMTP listener on 127.0.0.1 that keeps what it is sent, for tests.
//!
//! Shared by the integration tests (`mod`-included) and the mail module's unit tests (included
//! by `#[path]`), so it depends on nothing but tokio and std.
// Each includer uses a different subset.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::{JoinHandle, JoinSet};

/// One message accepted with `250` after DATA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMail {
    /// The envelope sender from MAIL FROM, without angle brackets.
    pub from: String,
    /// Envelope recipients from RCPT TO, without angle brackets.
    pub to: Vec<String>,
    /// The message as transmitted (CRLF line ends), dot-unstuffed, without the final `.` line.
    pub data: String,
}

impl ReceivedMail {
    /// First header field with this name (case-insensitive), unfolded.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or_default();
        let mut found: Option<String> = None;
        for l in head.split("\r\n") {
            if l.starts_with([' ', '\t']) {
                if let Some(v) = found.as_mut() {
                    v.push_str(l);
                }
                continue;
            }
            if found.is_some() {
                break;
            }
            if let Some((n, v)) = l.split_once(':')
                && n.eq_ignore_ascii_case(name)
            {
                found = Some(v.trim().to_owned());
            }
        }
        found
    }

    /// Everything after the blank line that ends the header.
    pub fn body(&self) -> &str {
        self.data
            .split_once("\r\n\r\n")
            .map(|(_, b)| b)
            .unwrap_or_default()
    }
}

#[derive(Default)]
struct Shared {
    messages: Mutex<Vec<ReceivedMail>>,
    failing: AtomicBool,
    /// Recipients answered `550` at RCPT TO: a permanent refusal.
    refused: Mutex<Vec<String>>,
    /// MAIL FROM commands seen, accepted or not: shows that a retry really reached the server.
    mail_commands: AtomicUsize,
    arrived: Notify,
}

impl Shared {
    fn messages(&self) -> MutexGuard<'_, Vec<ReceivedMail>> {
        // A test that panicked while holding the lock should not hide what was received.
        self.messages.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub struct SmtpSink {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: JoinHandle<()>,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        // Dropping the acceptor's JoinSet also closes every open connection.
        self.acceptor.abort();
    }
}

impl SmtpSink {
    /// Binds 127.0.0.1 on a free port and starts accepting. Panics if it cannot bind: a test
    /// without its sink cannot mean anything.
    pub async fn start() -> SmtpSink {
        let listener = match TcpListener::bind("127.0.0.1:0").await {
            Ok(l) => l,
            Err(e) => panic!("smtp sink: bind 127.0.0.1:0: {e}"),
        };
        let addr = match listener.local_addr() {
            Ok(a) => a,
            Err(e) => panic!("smtp sink: local_addr: {e}"),
        };
        let shared = Arc::new(Shared::default());
        let acceptor = tokio::spawn(accept_loop(listener, shared.clone()));
        SmtpSink {
            addr,
            shared,
            acceptor,
        }
    }

    /// A URL for `MailTransport::from_smtp_url` / the service's SMTP setting.
    pub fn url(&self) -> String {
        format!("smtp://{}:{}", self.addr.ip(), self.addr.port())
    }

    pub fn messages(&self) -> Vec<ReceivedMail> {
        self.shared.messages().clone()
    }

    pub fn clear(&self) {
        self.shared.messages().clear();
    }

    /// While true, MAIL FROM and the end of DATA are answered `451` (try again later).
    pub fn set_failing(&self, failing: bool) {
        self.shared.failing.store(failing, Ordering::SeqCst);
    }

    /// From now on RCPT TO `addr` is answered `550 5.1.1` (no such user): refused for good.
    pub fn refuse_recipient(&self, addr: &str) {
        self.shared
            .refused
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(addr.to_owned());
    }

    pub fn mail_commands(&self) -> usize {
        self.shared.mail_commands.load(Ordering::SeqCst)
    }

    /// The first received message matching `pred`, waiting up to `within` for it to arrive.
    pub async fn wait_for(
        &self,
        pred: impl Fn(&ReceivedMail) -> bool,
        within: Duration,
    ) -> Option<ReceivedMail> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            // Registered before looking, so an arrival between the look and the wait is seen.
            let arrived = self.shared.arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            if let Some(m) = self.shared.messages().iter().find(|m| pred(m)) {
                return Some(m.clone());
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                return None;
            }
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(session(stream, shared.clone()));
                }
                Err(_) => return,
            },
            // Reap finished sessions so a long test does not accumulate them.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn reply<W: AsyncWrite + Unpin>(w: &mut W, text: &str) -> std::io::Result<()> {
    w.write_all(text.as_bytes()).await?;
    w.write_all(b"\r\n").await?;
    w.flush().await
}

/// `<a@b> SIZE=1` -> `a@b`.
fn path_arg(rest: &str) -> String {
    let rest = rest.trim();
    match (rest.find('<'), rest.find('>')) {
        (Some(open), Some(close)) if open < close => rest[open + 1..close].to_owned(),
        _ => rest
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned(),
    }
}

async fn session(stream: TcpStream, shared: Arc<Shared>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    reply(&mut write, "220 smtp-sink ESMTP ready").await?;
    let mut from: Option<String> = None;
    let mut to: Vec<String> = Vec::new();
    let mut raw = Vec::new();
    loop {
        raw.clear();
        if read.read_until(b'\n', &mut raw).await? == 0 {
            return Ok(());
        }
        let line = String::from_utf8_lossy(&raw);
        let line = line.trim_end_matches(['\r', '\n']);
        let upper = line.to_ascii_uppercase();
        let failing = shared.failing.load(Ordering::SeqCst);
        if upper.starts_with("EHLO") {
            from = None;
            to.clear();
            reply(&mut write, "250-smtp-sink greets you").await?;
            reply(&mut write, "250-8BITMIME").await?;
            reply(&mut write, "250-SMTPUTF8").await?;
            reply(&mut write, "250 SIZE 10485760").await?;
        } else if upper.starts_with("HELO") {
            from = None;
            to.clear();
            reply(&mut write, "250 smtp-sink").await?;
        } else if upper.starts_with("MAIL FROM:") {
            shared.mail_commands.fetch_add(1, Ordering::SeqCst);
            if failing {
                reply(
                    &mut write,
                    "451 4.3.0 Temporarily unavailable, try again later",
                )
                .await?;
            } else {
                from = Some(path_arg(&line["MAIL FROM:".len()..]));
                to.clear();
                reply(&mut write, "250 2.1.0 OK").await?;
            }
        } else if upper.starts_with("RCPT TO:") {
            let rcpt = path_arg(&line["RCPT TO:".len()..]);
            let refused = shared
                .refused
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(&rcpt);
            if from.is_none() {
                reply(&mut write, "503 5.5.1 MAIL first").await?;
            } else if refused {
                reply(&mut write, "550 5.1.1 No such user here").await?;
            } else {
                to.push(rcpt);
                reply(&mut write, "250 2.1.5 OK").await?;
            }
        } else if upper == "DATA" {
            if from.is_none() || to.is_empty() {
                reply(&mut write, "503 5.5.1 RCPT first").await?;
                continue;
            }
            reply(&mut write, "354 End data with <CR><LF>.<CR><LF>").await?;
            let mut data = Vec::new();
            loop {
                raw.clear();
                if read.read_until(b'\n', &mut raw).await? == 0 {
                    return Ok(());
                }
                if raw == b".\r\n" || raw == b".\n" {
                    break;
                }
                // Dot-unstuffing (RFC 5321 4.5.2).
                let start = usize::from(raw.first() == Some(&b'.'));
                data.extend_from_slice(&raw[start..]);
            }
            // Read at the end of DATA too, so a test can flip it while a message is in flight.
            if shared.failing.load(Ordering::SeqCst) {
                reply(
                    &mut write,
                    "451 4.3.0 Temporarily unavailable, try again later",
                )
                .await?;
            } else {
                let mail = ReceivedMail {
                    from: from.take().unwrap_or_default(),
                    to: std::mem::take(&mut to),
                    data: String::from_utf8_lossy(&data).into_owned(),
                };
                shared.messages().push(mail);
                shared.arrived.notify_waiters();
                reply(&mut write, "250 2.0.0 OK queued").await?;
            }
            from = None;
            to.clear();
        } else if upper == "RSET" {
            from = None;
            to.clear();
            reply(&mut write, "250 2.0.0 OK").await?;
        } else if upper.starts_with("NOOP") {
            reply(&mut write, "250 2.0.0 OK").await?;
        } else if upper == "QUIT" {
            reply(&mut write, "221 2.0.0 Bye").await?;
            return Ok(());
        } else {
            reply(&mut write, "500 5.5.2 Command not recognised").await?;
        }
    }
}
