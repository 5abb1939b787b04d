//! A real HTTP receiver for webhook tests, on port 0. It verifies every message's signatures
//! with its own HMAC-SHA256 (not the service's code), answers with the statuses it is told to,
//! and keeps what it received.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Received {
    pub id: String,
    pub timestamp: i64,
    pub signatures: Vec<String>,
    pub body: Value,
    /// Which of the known secrets (by index) signed it.
    pub verified_by: Vec<usize>,
    /// What the receiver answered.
    pub answered: u16,
    /// When the request arrived.
    pub arrived: std::time::Instant,
}

/// One scripted answer.
#[derive(Default)]
struct Reply {
    status: u16,
    /// `Retry-After`, in seconds.
    retry_after: Option<u64>,
    location: Option<String>,
    /// The body; `ok` when `None`.
    body: Option<String>,
}

impl Reply {
    fn status(status: u16) -> Self {
        Self { status, ..Self::default() }
    }
}

#[derive(Default)]
struct State {
    received: Vec<Received>,
    /// Answers to give, in turn; 200 once they run out.
    script: VecDeque<Reply>,
    /// Answered to everything once the script runs out.
    otherwise: Option<u16>,
    /// The keys (decoded from `whsec_…`) signatures are checked against.
    keys: Vec<Vec<u8>>,
    delay: Duration,
}

#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl Receiver {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind receiver");
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = shared.clone();
                tokio::spawn(async move {
                    let _ = serve(stream, state).await;
                });
            }
        });
        Self { addr, state }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Checks signatures against this secret too (`whsec_…`).
    pub fn trust(&self, secret: &str) {
        let key = STANDARD.decode(secret.strip_prefix("whsec_").expect("whsec_ prefix")).expect("base64 key");
        self.state.lock().unwrap().keys.push(key);
    }

    /// Answers these statuses to the next requests, then 200.
    pub fn answer(&self, statuses: &[u16]) {
        self.state.lock().unwrap().script.extend(statuses.iter().map(|s| Reply::status(*s)));
    }

    /// Answers `status` with `Retry-After: secs` to the next request.
    pub fn answer_retry_after(&self, status: u16, secs: u64) {
        self.state
            .lock()
            .unwrap()
            .script
            .push_back(Reply { retry_after: Some(secs), ..Reply::status(status) });
    }

    /// Answers `status` with `Location: location` and `body` to the next request.
    pub fn answer_redirect(&self, status: u16, location: &str, body: &str) {
        let reply = Reply {
            location: Some(location.to_owned()),
            body: Some(body.to_owned()),
            ..Reply::status(status)
        };
        self.state.lock().unwrap().script.push_back(reply);
    }

    /// Answers `status` to everything once the script runs out.
    pub fn answer_always(&self, status: u16) {
        self.state.lock().unwrap().otherwise = Some(status);
    }

    pub fn set_delay(&self, delay: Duration) {
        self.state.lock().unwrap().delay = delay;
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    /// The messages answered 2xx, in arrival order.
    pub fn accepted(&self) -> Vec<Received> {
        self.received().into_iter().filter(|r| (200..300).contains(&r.answered)).collect()
    }
}

async fn serve(mut stream: TcpStream, state: Arc<Mutex<State>>) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0_u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let header = |name: &str| {
        head.lines().find_map(|line| {
            line.split_once(':')
                .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim().to_owned())
        })
    };
    let length: usize = header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let arrived = std::time::Instant::now();
    let body = &buf[head_end..head_end + length];
    let id = header("webhook-id").unwrap_or_default();
    let timestamp: i64 = header("webhook-timestamp").and_then(|v| v.parse().ok()).unwrap_or_default();
    let signatures: Vec<String> =
        header("webhook-signature").unwrap_or_default().split(' ').map(str::to_owned).collect();
    let (reply, delay, verified_by) = {
        let mut state = state.lock().unwrap();
        let verified_by = state
            .keys
            .iter()
            .enumerate()
            .filter(|(_, key)| signatures.contains(&expected_signature(key, &id, timestamp, body)))
            .map(|(i, _)| i)
            .collect();
        let otherwise = state.otherwise.unwrap_or(200);
        (state.script.pop_front().unwrap_or(Reply::status(otherwise)), state.delay, verified_by)
    };
    let answered = reply.status;
    tokio::time::sleep(delay).await;
    let received = Received {
        id,
        timestamp,
        signatures,
        body: serde_json::from_slice(body).unwrap_or(Value::Null),
        verified_by,
        answered,
        arrived,
    };
    let retry_after = reply.retry_after.map(|secs| format!("retry-after: {secs}\r\n")).unwrap_or_default();
    let location = reply.location.map(|to| format!("location: {to}\r\n")).unwrap_or_default();
    let body = reply.body.unwrap_or_else(|| "ok".to_owned());
    let reply = format!(
        "HTTP/1.1 {answered} Whatever\r\n{retry_after}{location}content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(reply.as_bytes()).await?;
    stream.shutdown().await?;
    // Recorded once the answer is out, so a delivery counted here was answered.
    state.lock().unwrap().received.push(received);
    Ok(())
}

/// `v1,` and the base64 HMAC-SHA256 of `{id}.{timestamp}.{body}`, as the specification says.
fn expected_signature(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}
