//! Drives the sink with a raw SMTP client over TCP.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use smtp_sink::{Limits, Mode, SmtpSink};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// Upper bound for any single wait, so a broken server fails a test instead of hanging it.
const PATIENCE: Duration = Duration::from_secs(5);

fn local() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
}

struct Client {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

impl Client {
    /// Connects and reads the greeting.
    async fn connect(sink: &SmtpSink) -> Self {
        let mut client = Self::connect_raw(sink).await;
        let (code, lines) = client.reply().await;
        assert_eq!(code, 220, "{lines:?}");
        client
    }

    async fn connect_raw(sink: &SmtpSink) -> Self {
        let stream = TcpStream::connect(sink.addr()).await.unwrap();
        let (reader, writer) = stream.into_split();
        Self { reader: BufReader::new(reader), writer }
    }

    /// Connects, greets with EHLO and checks the advertised extensions.
    async fn ehlo(sink: &SmtpSink) -> Self {
        let mut client = Self::connect(sink).await;
        client.send("EHLO client.example").await;
        let (code, lines) = client.reply().await;
        assert_eq!(code, 250);
        assert_eq!(&lines[1..], ["8BITMIME", "SMTPUTF8"], "only these extensions: {lines:?}");
        client
    }

    async fn send(&mut self, line: &str) {
        self.send_raw(format!("{line}\r\n").as_bytes()).await;
    }

    async fn send_raw(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).await.unwrap();
    }

    /// Reads one (possibly multi-line) reply: its code and the text of each line.
    async fn reply(&mut self) -> (u16, Vec<String>) {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(PATIENCE, self.reader.read_line(&mut line)).await.unwrap().unwrap();
            assert!(n > 0, "connection closed while waiting for a reply; got {lines:?}");
            assert!(line.ends_with("\r\n"), "reply line without CRLF: {line:?}");
            let code: u16 = line[..3].parse().unwrap();
            let last = &line[3..4] == " ";
            lines.push(line[4..line.len() - 2].to_owned());
            if last {
                return (code, lines);
            }
            assert_eq!(&line[3..4], "-", "bad continuation: {line:?}");
        }
    }

    async fn cmd(&mut self, line: &str) -> u16 {
        self.send(line).await;
        self.reply().await.0
    }

    /// Sends a whole transaction and returns the code answering the end of DATA.
    async fn mail(&mut self, from: &str, to: &[&str], body: &str) -> u16 {
        assert_eq!(self.cmd(&format!("MAIL FROM:<{from}>")).await, 250);
        for to in to {
            assert_eq!(self.cmd(&format!("RCPT TO:<{to}>")).await, 250);
        }
        assert_eq!(self.cmd("DATA").await, 354);
        self.send_raw(body.as_bytes()).await;
        self.send_raw(b".\r\n").await;
        self.reply().await.0
    }

    /// Asserts the server closes the connection (without sending anything more).
    async fn expect_closed(&mut self) {
        let mut rest = Vec::new();
        let read = tokio::time::timeout(PATIENCE, self.reader.read_to_end(&mut rest)).await.unwrap();
        // A reset is as closed as a FIN.
        if read.is_ok() {
            assert!(rest.is_empty(), "unexpected data: {:?}", String::from_utf8_lossy(&rest));
        }
    }
}

#[tokio::test]
async fn two_messages_on_one_connection_with_dot_stuffing() {
    let sink = SmtpSink::start().await.unwrap();
    assert_eq!(sink.url(), format!("smtp://127.0.0.1:{}", sink.addr().port()));
    let mut client = Client::ehlo(&sink).await;

    // Like lettre: parameters on MAIL, a stuffed leading dot, a folded header.
    assert_eq!(client.cmd("MAIL FROM:<alice@example.com> BODY=8BITMIME SMTPUTF8").await, 250);
    assert_eq!(client.cmd("RCPT TO:<bob@example.com>").await, 250);
    assert_eq!(client.cmd("rcpt to:<carol@example.com>").await, 250);
    assert_eq!(client.cmd("DATA").await, 354);
    let wire = "Subject: Reminder:\r\n buy milk\r\nFrom: alice@example.com\r\n\r\n..leading dot\r\n..\r\n\r\nend.\r\n";
    client.send_raw(wire.as_bytes()).await;
    client.send_raw(b".\r\n").await;
    assert_eq!(client.reply().await.0, 250);

    // Between messages a pooled client may check the connection or reset it.
    assert_eq!(client.cmd("NOOP").await, 250);
    assert_eq!(client.cmd("RSET").await, 250);
    assert_eq!(client.mail("", &["dave@example.com"], "Subject: second\r\n\r\nhi\r\n").await, 250);
    assert_eq!(client.cmd("QUIT").await, 221);
    client.expect_closed().await;

    let messages = sink.messages();
    assert_eq!(messages.len(), 2);
    assert_eq!(sink.count(), 2);
    assert_eq!(sink.refused(), 0);
    let first = &messages[0];
    assert_eq!(first.from, "alice@example.com");
    assert_eq!(first.to, ["bob@example.com", "carol@example.com"]);
    let unstuffed =
        "Subject: Reminder:\r\n buy milk\r\nFrom: alice@example.com\r\n\r\n.leading dot\r\n.\r\n\r\nend.\r\n";
    assert_eq!(String::from_utf8_lossy(&first.data), unstuffed);
    assert_eq!(first.header("subject").as_deref(), Some("Reminder: buy milk"));
    assert_eq!(first.header("FROM").as_deref(), Some("alice@example.com"));
    let second = &messages[1];
    assert_eq!(second.from, "", "null reverse-path");
    assert_eq!(second.to, ["dave@example.com"]);
    assert_eq!(second.data, b"Subject: second\r\n\r\nhi\r\n");
    assert!(first.received_at <= second.received_at);
}

#[tokio::test]
async fn refusal_modes_answer_at_end_of_data_and_record_nothing() {
    let sink = SmtpSink::start().await.unwrap();
    let mut client = Client::ehlo(&sink).await;

    sink.set_mode(Mode::TempFail);
    client.send("MAIL FROM:<a@x>").await;
    assert_eq!(client.reply().await.0, 250);
    assert_eq!(client.cmd("RCPT TO:<b@x>").await, 250);
    assert_eq!(client.cmd("DATA").await, 354);
    client.send_raw(b"Subject: 1\r\n\r\nbody\r\n.\r\n").await;
    let (code, lines) = client.reply().await;
    assert_eq!((code, lines[0].as_str()), (451, "4.3.0 Temporarily unable to accept mail, try again later"));

    sink.set_mode(Mode::PermFail);
    assert_eq!(client.mail("a@x", &["b@x"], "Subject: 2\r\n\r\nbody\r\n").await, 550);
    assert_eq!(sink.count(), 0);
    assert_eq!(sink.refused(), 2);
    assert!(sink.messages().is_empty());

    // The connection stays usable, and the mode switches back for the next message.
    sink.set_mode(Mode::Accept);
    assert_eq!(client.mail("a@x", &["b@x"], "Subject: 3\r\n\r\nbody\r\n").await, 250);
    assert_eq!(sink.count(), 1);
    assert_eq!(sink.refused(), 2);
    assert_eq!(sink.messages()[0].header("subject").as_deref(), Some("3"));
}

#[tokio::test]
async fn rset_ends_the_transaction() {
    let sink = SmtpSink::start().await.unwrap();
    let mut client = Client::ehlo(&sink).await;
    assert_eq!(client.cmd("MAIL FROM:<a@x>").await, 250);
    assert_eq!(client.cmd("RCPT TO:<b@x>").await, 250);
    assert_eq!(client.cmd("RSET").await, 250);
    assert_eq!(client.cmd("DATA").await, 503);
    assert_eq!(client.cmd("RCPT TO:<b@x>").await, 503);
    // A fresh transaction works and does not carry the old recipient.
    assert_eq!(client.mail("c@x", &["d@x"], "\r\n").await, 250);
    let messages = sink.messages();
    assert_eq!((messages[0].from.as_str(), messages[0].to.as_slice()), ("c@x", &["d@x".to_owned()][..]));
}

#[tokio::test]
async fn commands_out_of_sequence_or_unknown_are_refused() {
    let sink = SmtpSink::start().await.unwrap();
    let mut client = Client::connect(&sink).await;
    assert_eq!(client.cmd("MAIL FROM:<a@x>").await, 503, "MAIL before EHLO");
    assert_eq!(client.cmd("HELO client.example").await, 250);
    assert_eq!(client.cmd("DATA").await, 503, "DATA before MAIL");
    assert_eq!(client.cmd("MAIL FROM:<a@x>").await, 250);
    assert_eq!(client.cmd("MAIL FROM:<a@x>").await, 503, "nested MAIL");
    assert_eq!(client.cmd("DATA").await, 503, "DATA before RCPT");
    assert_eq!(client.cmd("RCPT TO:<>").await, 501);
    assert_eq!(client.cmd("RCPT bob").await, 501);
    assert_eq!(client.cmd("STARTTLS").await, 502);
    assert_eq!(client.cmd("AUTH PLAIN AGJvYgBzZWNyZXQ=").await, 502);
    assert_eq!(client.cmd("").await, 500);
    assert_eq!(client.cmd("EHLO").await, 501);
    // None of that broke the connection or the transaction.
    assert_eq!(client.cmd("RCPT TO:<b@x>").await, 250);
    assert_eq!(client.cmd("DATA").await, 354);
    client.send_raw(b"\r\n.\r\n").await;
    assert_eq!(client.reply().await.0, 250);
    assert_eq!(sink.count(), 1);
}

#[tokio::test]
async fn overlong_command_line_is_refused_and_closed() {
    let sink = SmtpSink::start().await.unwrap();
    let mut client = Client::ehlo(&sink).await;
    // Exactly at the limit is still fine.
    let longest = format!("NOOP {}", "x".repeat(4096 - 5));
    assert_eq!(client.cmd(&longest).await, 250);
    client.send(&format!("NOOP {}", "x".repeat(5000))).await;
    assert_eq!(client.reply().await.0, 500);
    client.expect_closed().await;
}

#[tokio::test]
async fn wait_for_returns_once_the_message_arrives() {
    let sink = SmtpSink::start().await.unwrap();
    let started = Instant::now();
    assert!(sink.wait_for(1, Duration::from_millis(50)).await.is_empty(), "times out without mail");
    assert!(started.elapsed() >= Duration::from_millis(50));

    let mut client = Client::ehlo(&sink).await;
    let sender = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(client.mail("a@x", &["b@x"], "Subject: late\r\n\r\n").await, 250);
    });
    let started = Instant::now();
    let messages = sink.wait_for(1, PATIENCE).await;
    assert!(started.elapsed() < PATIENCE);
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].header("Subject").as_deref(), Some("late"));
    sender.await.unwrap();
}

#[tokio::test]
async fn oversized_message_is_refused_and_connection_stays_usable() {
    let limits = Limits { max_message_size: 1024, ..Limits::default() };
    let sink = SmtpSink::bind_with(local(), limits).await.unwrap();
    let mut client = Client::ehlo(&sink).await;
    // One line longer than the limit and many short ones: both are counted.
    let one_long_line = format!("Subject: big\r\n\r\n{}\r\n", "y".repeat(200_000));
    assert_eq!(client.mail("a@x", &["b@x"], &one_long_line).await, 552);
    let many_lines = "line\r\n".repeat(500);
    assert_eq!(client.mail("a@x", &["b@x"], &many_lines).await, 552);
    assert_eq!(sink.refused(), 2);
    let fits = format!("Subject: small\r\n\r\n{}\r\n", "z".repeat(900));
    assert_eq!(client.mail("a@x", &["b@x"], &fits).await, 250);
    assert_eq!(sink.messages()[0].data, fits.as_bytes());
}

#[tokio::test]
async fn idle_connection_is_closed() {
    let limits = Limits { idle_timeout: Duration::from_millis(100), ..Limits::default() };
    let sink = SmtpSink::bind_with(local(), limits).await.unwrap();
    let mut client = Client::ehlo(&sink).await;
    let (code, _) = client.reply().await;
    assert_eq!(code, 421);
    client.expect_closed().await;

    // Going quiet in the middle of DATA counts too, and the partial message is not kept.
    let mut client = Client::ehlo(&sink).await;
    assert_eq!(client.cmd("MAIL FROM:<a@x>").await, 250);
    assert_eq!(client.cmd("RCPT TO:<b@x>").await, 250);
    assert_eq!(client.cmd("DATA").await, 354);
    client.send_raw(b"Subject: half\r\n").await;
    assert_eq!(client.reply().await.0, 421);
    client.expect_closed().await;
    assert_eq!(sink.count(), 0);
}

#[tokio::test]
async fn connections_beyond_the_limit_get_421() {
    let limits = Limits { max_connections: 2, ..Limits::default() };
    let sink = SmtpSink::bind_with(local(), limits).await.unwrap();
    let first = Client::connect(&sink).await;
    let _second = Client::connect(&sink).await;
    let mut third = Client::connect_raw(&sink).await;
    assert_eq!(third.reply().await.0, 421);
    third.expect_closed().await;

    // Closing a connection frees its slot.
    drop(first);
    let deadline = Instant::now() + PATIENCE;
    loop {
        let mut client = Client::connect_raw(&sink).await;
        match client.reply().await.0 {
            220 => break,
            421 if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(5)).await,
            code => panic!("unexpected greeting {code}"),
        }
    }
}

#[tokio::test]
async fn stored_messages_are_bounded_but_count_keeps_counting() {
    let limits = Limits { max_stored: 2, ..Limits::default() };
    let sink = SmtpSink::bind_with(local(), limits).await.unwrap();
    let mut client = Client::ehlo(&sink).await;
    for n in 1..=3 {
        assert_eq!(client.mail("a@x", &["b@x"], &format!("Subject: {n}\r\n\r\n")).await, 250);
    }
    assert_eq!(sink.count(), 3);
    let subjects: Vec<_> = sink.messages().iter().filter_map(|m| m.header("subject")).collect();
    assert_eq!(subjects, ["2", "3"]);
    assert_eq!(sink.drain().len(), 2);
    assert!(sink.messages().is_empty());
    assert_eq!(sink.count(), 3);
}

#[tokio::test]
async fn delay_holds_back_the_answer_to_data() {
    let sink = SmtpSink::start().await.unwrap();
    sink.set_delay(Duration::from_millis(150));
    let mut client = Client::ehlo(&sink).await;
    let started = Instant::now();
    assert_eq!(client.mail("a@x", &["b@x"], "\r\n").await, 250);
    assert!(started.elapsed() >= Duration::from_millis(150));
    // Only the end of DATA is delayed.
    let started = Instant::now();
    assert_eq!(client.cmd("NOOP").await, 250);
    assert!(started.elapsed() < Duration::from_millis(150));
}

#[tokio::test]
async fn stop_closes_open_connections() {
    let sink = SmtpSink::start().await.unwrap();
    let mut client = Client::ehlo(&sink).await;
    sink.stop();
    client.expect_closed().await;
    assert!(TcpStream::connect(sink.addr()).await.is_err(), "listener is closed");
}

#[tokio::test]
async fn pipelined_commands_get_answers_in_order() {
    // Not advertised, but a client that sends ahead must not confuse the server.
    let sink = SmtpSink::start().await.unwrap();
    let mut client = Client::ehlo(&sink).await;
    client.send_raw(b"MAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\n").await;
    for expected in [250, 250, 354] {
        assert_eq!(client.reply().await.0, expected);
    }
    client.send_raw(b"Subject: p\r\n\r\n.\r\nQUIT\r\n").await;
    assert_eq!(client.reply().await.0, 250);
    assert_eq!(client.reply().await.0, 221);
    assert_eq!(sink.count(), 1);
}
