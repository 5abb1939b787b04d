//! A small server-sent-events client for the tests: reads a `text/event-stream` response as it
//! arrives and parses it as the EventSource specification does.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;

use crate::helpers::{CheckedClient, TestApp};

/// One dispatched event, or a comment line.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Event { id: Option<i64>, event: String, data: String },
    Comment(String),
}

impl Message {
    pub fn data(&self) -> Value {
        match self {
            Self::Event { data, .. } => serde_json::from_str(data).expect("event data is JSON"),
            Self::Comment(text) => panic!("a comment has no data: {text}"),
        }
    }

    pub fn kind(&self) -> &str {
        match self {
            Self::Event { event, .. } => event,
            Self::Comment(_) => "comment",
        }
    }
}

pub struct EventStream {
    body: futures::stream::BoxStream<'static, reqwest::Result<Vec<u8>>>,
    buffer: String,
    pending: Vec<Message>,
    /// The last `id` seen, as a browser keeps it for `Last-Event-ID`.
    pub last_event_id: Option<i64>,
    pub ended: bool,
}

impl EventStream {
    /// Opens `GET url` with the given headers and checks it is an event stream.
    pub async fn open(client: &CheckedClient, url: &str, headers: &[(&str, String)]) -> Self {
        let response = Self::request(client, url, headers).await;
        assert_eq!(response.status(), 200, "opening {url}: {:?}", response.text().await);
        Self::from_response(response)
    }

    pub async fn request(client: &CheckedClient, url: &str, headers: &[(&str, String)]) -> reqwest::Response {
        let mut request = client.get(url);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        request.send().await.expect("stream request sent")
    }

    pub fn from_response(response: reqwest::Response) -> Self {
        let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok());
        assert_eq!(content_type, Some("text/event-stream"));
        assert!(response.headers().get("content-encoding").is_none(), "events are not compressed");
        Self {
            body: response.bytes_stream().map(|chunk| chunk.map(|b| b.to_vec())).boxed(),
            buffer: String::new(),
            pending: Vec::new(),
            last_event_id: None,
            ended: false,
        }
    }

    /// The caller's stream on the app (or web process) at `app_address`, with a bearer token.
    pub async fn bearer(app_address: &str, token: &str) -> Self {
        let client = CheckedClient::for_app(app_address);
        let mut stream = Self::open(
            &client,
            &format!("{app_address}/api/v1/events"),
            &[("authorization", format!("Bearer {token}"))],
        )
        .await;
        stream.wait_connected().await;
        stream
    }

    /// Waits for the comment every stream starts with.
    pub async fn wait_connected(&mut self) {
        let first = self.next_message(Duration::from_secs(5)).await.expect("the stream's first message");
        assert_eq!(first, Message::Comment("connected".into()));
    }

    /// The next event or comment, or `None` if the stream ended or nothing came within `wait`.
    pub async fn next_message(&mut self, wait: Duration) -> Option<Message> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if !self.pending.is_empty() {
                let message = self.pending.remove(0);
                // Kept only once the event is handed over, as a browser does.
                if let Message::Event { id: Some(id), .. } = message {
                    self.last_event_id = Some(id);
                }
                return Some(message);
            }
            if self.ended {
                return None;
            }
            match tokio::time::timeout_at(deadline, self.body.next()).await {
                Err(_) => return None,
                Ok(None) => self.ended = true,
                Ok(Some(Err(err))) => panic!("the stream broke instead of ending cleanly: {err}"),
                Ok(Some(Ok(chunk))) => {
                    self.buffer.push_str(std::str::from_utf8(&chunk).expect("UTF-8 stream"));
                    self.parse();
                }
            }
        }
    }

    /// The next event, skipping comments.
    pub async fn next_event(&mut self, wait: Duration) -> Option<Message> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_message(left).await? {
                Message::Comment(_) => continue,
                event => return Some(event),
            }
        }
    }

    /// Reads until the stream ends, returning what came; panics if it does not end in `wait`.
    pub async fn until_end(&mut self, wait: Duration) -> Vec<Message> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut messages = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_message(left).await {
                Some(message) => messages.push(message),
                None if self.ended => return messages,
                None => panic!("the stream did not end within {wait:?}; got {messages:?}"),
            }
        }
    }

    fn parse(&mut self) {
        while let Some(end) = self.buffer.find("\n\n") {
            let block: String = self.buffer.drain(..end + 2).collect();
            let (mut id, mut event, mut data) = (None, None, Vec::new());
            for line in block.lines().filter(|l| !l.is_empty()) {
                if let Some(text) = line.strip_prefix(':') {
                    self.pending.push(Message::Comment(text.trim().to_owned()));
                    continue;
                }
                let (field, value) = line.split_once(':').unwrap_or((line, ""));
                let value = value.strip_prefix(' ').unwrap_or(value);
                match field {
                    "id" => id = Some(value.parse::<i64>().expect("numeric event id")),
                    "event" => event = Some(value.to_owned()),
                    "data" => data.push(value.to_owned()),
                    "retry" => {}
                    other => panic!("unexpected field {other:?} in {block:?}"),
                }
            }
            if event.is_some() || !data.is_empty() {
                self.pending.push(Message::Event {
                    id,
                    event: event.unwrap_or_else(|| "message".into()),
                    data: data.join("\n"),
                });
            }
        }
    }
}

/// A client's copy of the tasks, kept from feed entries or events.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Replica(pub BTreeMap<String, Value>);

impl Replica {
    pub fn apply_event(&mut self, message: &Message) {
        let data = message.data();
        let id = data["id"].as_str().expect("an id").to_owned();
        match message.kind() {
            "task.upserted" => {
                self.0.insert(id, data);
            }
            "task.deleted" => {
                self.0.remove(&id);
            }
            other => panic!("unexpected event {other}"),
        }
    }

    pub fn apply_change(&mut self, change: &Value) {
        let id = change["id"].as_str().expect("an id").to_owned();
        match change["type"].as_str() {
            Some("upsert") => {
                self.0.insert(id, change["task"].clone());
            }
            Some("delete") => {
                self.0.remove(&id);
            }
            other => panic!("unexpected change type {other:?}"),
        }
    }
}

/// Every live task of the user as the list returns them, keyed by id.
pub async fn server_state(app: &TestApp, token: &str) -> Replica {
    let mut replica = Replica::default();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/tasks?limit=100&cursor={c}"),
            None => "/api/v1/tasks?limit=100".to_owned(),
        };
        let response = app.get_as(token, &path).await;
        assert_eq!(response.status(), 200);
        let page: Value = response.json().await.unwrap();
        for task in page["items"].as_array().unwrap() {
            replica.0.insert(task["id"].as_str().unwrap().to_owned(), task.clone());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return replica,
        }
    }
}

/// Follows `GET /changes` from `since` to its end; returns the entries and the last `next_since`.
pub async fn follow_feed(app: &TestApp, token: &str, since: i64, limit: u32) -> (Vec<Value>, i64) {
    let mut since = since;
    let mut entries = Vec::new();
    loop {
        let response = app.get_as(token, &format!("/api/v1/changes?since={since}&limit={limit}")).await;
        assert_eq!(response.status(), 200, "reading changes since {since}");
        let page: Value = response.json().await.unwrap();
        entries.extend(page["changes"].as_array().unwrap().iter().cloned());
        since = page["next_since"].as_i64().unwrap();
        if !page["has_more"].as_bool().unwrap() {
            return (entries, since);
        }
    }
}
