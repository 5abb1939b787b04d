//! A small SMTP server (a subset of RFC 5321) that accepts, records and can refuse mail.
//!
//! It is meant for integration tests and benchmarks of code that sends mail over plain SMTP
//! (for example lettre's async transport pointed at [`SmtpSink::url`]), and as a local mail
//! catcher (`cargo run -p smtp-sink -- --listen 127.0.0.1:1025`).
//!
//! It speaks `EHLO`/`HELO` (advertising only `8BITMIME` and `SMTPUTF8`), `MAIL`, `RCPT`, `DATA`,
//! `RSET`, `NOOP`, `VRFY` and `QUIT`, keeps connections open for several messages, and never
//! relays anything anywhere.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! use std::time::Duration;
//! use smtp_sink::{Mode, SmtpSink};
//!
//! let sink = SmtpSink::start().await?;
//! // Configure the mailer under test with `sink.url()`, e.g. "smtp://127.0.0.1:40123".
//! assert!(sink.url().starts_with("smtp://127.0.0.1:"));
//! sink.set_mode(Mode::TempFail); // the next messages get "451" at the end of DATA
//! let received = sink.wait_for(0, Duration::from_millis(10)).await;
//! assert!(received.is_empty());
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

mod received;
mod server;
mod session;

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use received::Received;

/// How the sink answers the end of `DATA`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Answer `250` and record the message.
    Accept,
    /// Answer `451 4.3.0 Temporarily unable to accept mail, try again later`; the message is not
    /// recorded.
    TempFail,
    /// Answer `550 5.7.1 Mailbox unavailable`; the message is not recorded.
    PermFail,
}

/// Resource bounds of a sink. [`Limits::default`] holds the production values; tests shrink
/// them (for example the idle timeout) through [`SmtpSink::bind_with`].
#[derive(Debug, Clone)]
pub struct Limits {
    /// A connection that sends nothing (or reads nothing) for this long is closed. Default 60 s.
    pub idle_timeout: Duration,
    /// Connections beyond this many get `421` and are closed. Default 256.
    pub max_connections: usize,
    /// Longest command line in bytes, not counting CRLF; longer ones get `500` and the
    /// connection is closed. Default 4096.
    pub max_line: usize,
    /// Largest message in bytes (after dot-unstuffing); larger ones are discarded and answered
    /// `552`, and the connection stays usable. Default 10 MiB.
    pub max_message_size: usize,
    /// Recipients per message; more get `452`. Default 1000 (RFC 5321 asks for at least 100).
    pub max_recipients: usize,
    /// Messages kept for [`SmtpSink::messages`]; the oldest are dropped beyond this, while
    /// [`SmtpSink::count`] keeps counting. Default 100,000.
    pub max_stored: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(60),
            max_connections: 256,
            max_line: 4096,
            max_message_size: 10 * 1024 * 1024,
            max_recipients: 1000,
            max_stored: 100_000,
        }
    }
}

/// A running SMTP server on a local port.
///
/// Dropping the handle (or calling [`SmtpSink::stop`]) stops the listener and closes every open
/// connection. The handle is not `Clone`; share it with an `Arc` if several tasks need it.
pub struct SmtpSink {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

impl SmtpSink {
    /// Starts a sink on an ephemeral port of 127.0.0.1 with the default [`Limits`].
    pub async fn start() -> io::Result<Self> {
        Self::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await
    }

    /// Starts a sink on `addr` with the default [`Limits`].
    pub async fn bind(addr: SocketAddr) -> io::Result<Self> {
        Self::bind_with(addr, Limits::default()).await
    }

    /// Starts a sink on `addr` with the given limits.
    pub async fn bind_with(addr: SocketAddr, limits: Limits) -> io::Result<Self> {
        let listener = listen(addr)?;
        let addr = listener.local_addr()?;
        let (accepted, _) = watch::channel(0);
        let (bodies, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            limits,
            settings: Mutex::new(Settings { mode: Mode::Accept, delay: Duration::ZERO }),
            messages: Mutex::new(VecDeque::new()),
            accepted,
            bodies,
            refused: AtomicUsize::new(0),
            refusal_times: Mutex::new(Vec::new()),
        });
        let server = tokio::spawn(server::serve(listener, Arc::clone(&shared)));
        Ok(Self { addr, shared, server })
    }

    /// The address the sink listens on (with the actual port when bound to port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL to give an SMTP client, e.g. `smtp://127.0.0.1:40123`.
    ///
    /// When bound to an unspecified address (`0.0.0.0` or `::`), the URL names loopback, which
    /// is where a local client can reach it.
    pub fn url(&self) -> String {
        let mut addr = self.addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(match addr {
                SocketAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
            });
        }
        format!("smtp://{addr}")
    }

    /// Sets how the end of `DATA` is answered, from the next message on.
    pub fn set_mode(&self, mode: Mode) {
        lock(&self.shared.settings).mode = mode;
    }

    /// Waits this long before answering the end of `DATA` (default zero), to simulate a slow
    /// server. Takes effect from the next message on.
    pub fn set_delay(&self, delay: Duration) {
        lock(&self.shared.settings).delay = delay;
    }

    /// The accepted messages still stored (see [`Limits::max_stored`]), in arrival order.
    pub fn messages(&self) -> Vec<Received> {
        lock(&self.shared.messages).iter().cloned().collect()
    }

    /// Removes and returns the stored messages, in arrival order. [`SmtpSink::count`] is not
    /// affected. Useful for long-running consumers that would otherwise copy an ever larger
    /// list.
    pub fn drain(&self) -> Vec<Received> {
        std::mem::take(&mut *lock(&self.shared.messages)).into()
    }

    /// How many messages were accepted since the start, including ones no longer stored.
    pub fn count(&self) -> usize {
        *self.shared.accepted.borrow()
    }

    /// How many messages were answered with a 4xx or 5xx reply at the end of `DATA` (refusals
    /// because of the [`Mode`] and messages over [`Limits::max_message_size`]).
    pub fn refused(&self) -> usize {
        self.shared.refused.load(Ordering::Relaxed)
    }

    /// When each refusal was answered, in order (the first 10,000), as the server saw it.
    pub fn refusal_times(&self) -> Vec<std::time::Instant> {
        lock(&self.shared.refusal_times).clone()
    }

    /// Waits until at least `n` messages were accepted, or until `timeout` passes, and returns
    /// [`SmtpSink::messages`] then. Check the length: on timeout it holds fewer than `n`.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        self.wait_for_count(n, timeout).await;
        self.messages()
    }

    /// Like [`SmtpSink::wait_for`] but returns [`SmtpSink::count`] instead of copying the
    /// messages.
    pub async fn wait_for_count(&self, n: usize, timeout: Duration) -> usize {
        let mut accepted = self.shared.accepted.subscribe();
        // The sender lives in `shared`, which we hold, so `wait_for` can only end by success.
        let _ = tokio::time::timeout(timeout, accepted.wait_for(|&count| count >= n)).await;
        *accepted.borrow()
    }

    /// Waits until the end of `DATA` of at least `n` messages was read, or until `timeout`
    /// passes, and returns how many were read. Unlike [`SmtpSink::wait_for_count`] this counts a
    /// message before the [delay](SmtpSink::set_delay) and whatever the [`Mode`], so a test can
    /// tell that a client is now waiting for the answer.
    pub async fn wait_for_bodies(&self, n: usize, timeout: Duration) -> usize {
        let mut bodies = self.shared.bodies.subscribe();
        let _ = tokio::time::timeout(timeout, bodies.wait_for(|&count| count >= n)).await;
        *bodies.borrow()
    }

    /// Stops accepting connections and closes the open ones. Recorded messages stay readable.
    pub fn stop(&self) {
        // Aborting the accept loop drops its JoinSet, which aborts every session task and so
        // closes their sockets.
        self.server.abort();
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop();
    }
}

impl fmt::Debug for SmtpSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSink").field("addr", &self.addr).finish_non_exhaustive()
    }
}

/// Pending connections the kernel may queue before we accept them (capped by
/// `net.core.somaxconn`). Tokio's default is 128. SMTP servers speak first, so a client whose
/// handshake was dropped from a full queue waits for a greeting that never comes; a burst of
/// connections from a benchmark must fit.
const BACKLOG: u32 = 1024;

fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    // Lets a restarted catcher take its port back at once, as `TcpListener::bind` does. Not on
    // Windows, where the option allows stealing a port that is in use.
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Refusal times kept for [`SmtpSink::refusal_times`].
const MAX_REFUSAL_TIMES: usize = 10_000;

/// State shared by the handle and every connection.
struct Shared {
    limits: Limits,
    settings: Mutex<Settings>,
    messages: Mutex<VecDeque<Received>>,
    /// Number of accepted messages; a watch channel so `wait_for` can sleep until it grows.
    accepted: watch::Sender<usize>,
    /// Number of messages whose end of `DATA` was read, before any delay or answer.
    bodies: watch::Sender<usize>,
    refused: AtomicUsize,
    /// When the first refusals happened, for tests of retry timing; bounded like the messages.
    refusal_times: Mutex<Vec<std::time::Instant>>,
}

#[derive(Debug, Clone, Copy)]
struct Settings {
    mode: Mode,
    delay: Duration,
}

impl Shared {
    fn settings(&self) -> Settings {
        *lock(&self.settings)
    }

    fn record(&self, mut message: Received) {
        // Messages may be kept for a long time; don't keep the slack of the growing buffer too.
        message.data.shrink_to_fit();
        let mut messages = lock(&self.messages);
        if self.limits.max_stored > 0 {
            while messages.len() >= self.limits.max_stored {
                messages.pop_front();
            }
            messages.push_back(message);
        }
        // Counted while the list is still locked, so a waiter woken by the count always finds
        // the message in the list, and counts and list agree on the order.
        self.accepted.send_modify(|count| *count += 1);
    }

    fn refuse(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
        let mut times = lock(&self.refusal_times);
        if times.len() < MAX_REFUSAL_TIMES {
            times.push(std::time::Instant::now());
        }
    }
}

/// Locks a mutex, ignoring poisoning: no code panics while holding these locks, and the data
/// (a list, two settings) stays consistent even if one did.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
