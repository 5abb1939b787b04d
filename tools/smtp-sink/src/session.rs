//! One SMTP connection: the command state machine and the `DATA` reader.

use std::io;
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::time::timeout;

use crate::{Mode, Received, Settings, Shared};

/// The name in the greeting and in `EHLO`/`HELO` replies.
const HOSTNAME: &str = "smtp-sink";

/// Message text is read in pieces of at most this many bytes, so a long line cannot make us
/// buffer more than the message limit allows.
const DATA_CHUNK: usize = 64 * 1024;

/// After refusing an overlong line we close, but first read (and drop) what the client already
/// sent, for at most this long and this much: closing a socket with unread input makes the
/// kernel send a reset, which can destroy our reply before the client reads it.
const LINGER_TIME: Duration = Duration::from_secs(2);
const LINGER_BYTES: u64 = 1024 * 1024;

const IDLE: &str = "421 4.4.2 Idle timeout, closing connection";
const TEMP_FAIL: &str = "451 4.3.0 Temporarily unable to accept mail, try again later";
const PERM_FAIL: &str = "550 5.7.1 Mailbox unavailable";
const TOO_BIG: &str = "552 5.3.4 Message too big";

/// Serves one connection until the client quits, goes idle or breaks the rules.
pub(crate) async fn run(stream: TcpStream, shared: &Shared) {
    // Each reply is one write and the client waits for it; don't let Nagle hold it back.
    let _ = stream.set_nodelay(true);
    let (reader, writer) = stream.into_split();
    let mut session =
        Session { reader: BufReader::new(reader), writer, shared, greeted: false, envelope: None };
    // An I/O error ends only this connection, and there is nobody to report it to.
    let _ = session.serve().await;
}

struct Session<'a> {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    shared: &'a Shared,
    /// Whether `EHLO`/`HELO` was seen; `MAIL` needs it.
    greeted: bool,
    /// The transaction in progress, from `MAIL` to the end of `DATA` (or `RSET`).
    envelope: Option<Envelope>,
}

struct Envelope {
    from: String,
    to: Vec<String>,
}

/// What to do after a command.
enum Flow {
    Continue,
    Close,
}

/// Outcome of one bounded read.
enum Read {
    Data,
    Eof,
    Idle,
}

/// Outcome of reading a command line.
enum Command {
    Line,
    TooLong,
    Eof,
    Idle,
}

/// Outcome of reading the message text after `354`.
enum Body {
    Complete(Vec<u8>),
    TooBig,
    Eof,
    Idle,
}

impl Session<'_> {
    async fn serve(&mut self) -> io::Result<()> {
        self.reply(&format!("220 {HOSTNAME} ESMTP ready")).await?;
        let mut line = Vec::new();
        loop {
            match self.read_command(&mut line).await? {
                Command::Line => {}
                Command::Eof => return Ok(()),
                Command::Idle => return self.reply(IDLE).await,
                Command::TooLong => {
                    self.reply("500 5.5.2 Line too long").await?;
                    self.linger().await;
                    return Ok(());
                }
            }
            if let Flow::Close = self.command(&line).await? {
                return Ok(());
            }
        }
    }

    async fn command(&mut self, line: &[u8]) -> io::Result<Flow> {
        let Ok(line) = std::str::from_utf8(line) else {
            self.reply("500 5.5.2 Syntax error: command is not valid UTF-8").await?;
            return Ok(Flow::Continue);
        };
        let (verb, arg) = line.split_once(' ').map_or((line, ""), |(verb, arg)| (verb, arg.trim()));
        let reply = match verb.to_ascii_uppercase().as_str() {
            "EHLO" => self.hello(arg, true),
            "HELO" => self.hello(arg, false),
            "MAIL" => self.mail(arg),
            "RCPT" => self.rcpt(arg),
            "DATA" => return self.data(arg).await,
            "RSET" if !arg.is_empty() => "501 5.5.4 Syntax: RSET takes no parameters".into(),
            "RSET" => {
                self.envelope = None;
                "250 2.0.0 OK".into()
            }
            "NOOP" => "250 2.0.0 OK".into(),
            // RFC 5321 lists VRFY as required; 252 is its "won't tell, but try" answer.
            "VRFY" => "252 2.5.2 Cannot VRFY user, but will accept message".into(),
            "QUIT" => {
                self.reply("221 2.0.0 Bye").await?;
                return Ok(Flow::Close);
            }
            "" => "500 5.5.2 Syntax error: empty command".into(),
            _ => "502 5.5.1 Command not implemented".into(),
        };
        self.reply(&reply).await?;
        Ok(Flow::Continue)
    }

    fn hello(&mut self, arg: &str, extended: bool) -> String {
        if arg.is_empty() {
            return "501 5.5.4 Syntax: EHLO or HELO followed by a domain".into();
        }
        // A new greeting aborts any transaction, like RSET (RFC 5321 section 4.1.4).
        self.envelope = None;
        self.greeted = true;
        // No PIPELINING, STARTTLS or AUTH: the sink answers one command at a time in plain text.
        // The client's name is not echoed, so nothing it sent ends up in a reply.
        if extended {
            format!("250-{HOSTNAME} Hello\r\n250-8BITMIME\r\n250 SMTPUTF8")
        } else {
            format!("250 {HOSTNAME} Hello")
        }
    }

    fn mail(&mut self, arg: &str) -> String {
        if !self.greeted {
            return "503 5.5.1 Send EHLO or HELO first".into();
        }
        if self.envelope.is_some() {
            return "503 5.5.1 Sender already given; send RSET to start over".into();
        }
        // Parameters such as BODY=8BITMIME or SMTPUTF8 are accepted and ignored.
        let Some(from) = parse_path(arg, "FROM:") else {
            return "501 5.5.4 Syntax: MAIL FROM:<address>".into();
        };
        self.envelope = Some(Envelope { from, to: Vec::new() });
        "250 2.1.0 Sender OK".into()
    }

    fn rcpt(&mut self, arg: &str) -> String {
        let max_recipients = self.shared.limits.max_recipients;
        let Some(envelope) = self.envelope.as_mut() else {
            return "503 5.5.1 Send MAIL first".into();
        };
        let Some(to) = parse_path(arg, "TO:").filter(|to| !to.is_empty()) else {
            return "501 5.5.4 Syntax: RCPT TO:<address>".into();
        };
        if envelope.to.len() >= max_recipients {
            return "452 4.5.3 Too many recipients".into();
        }
        envelope.to.push(to);
        "250 2.1.5 Recipient OK".into()
    }

    async fn data(&mut self, arg: &str) -> io::Result<Flow> {
        let Envelope { from, to } = match self.envelope.take() {
            Some(envelope) if arg.is_empty() && !envelope.to.is_empty() => envelope,
            other => {
                let reply = if !arg.is_empty() {
                    "501 5.5.4 Syntax: DATA takes no parameters"
                } else if other.is_none() {
                    "503 5.5.1 Send MAIL first"
                } else {
                    "503 5.5.1 Send RCPT first"
                };
                self.envelope = other;
                self.reply(reply).await?;
                return Ok(Flow::Continue);
            }
        };
        self.reply("354 Start mail input; end with <CRLF>.<CRLF>").await?;
        let data = match self.read_body().await? {
            Body::Complete(data) => Some(data),
            Body::TooBig => None,
            Body::Eof => return Ok(Flow::Close),
            Body::Idle => {
                self.reply(IDLE).await?;
                return Ok(Flow::Close);
            }
        };
        let received_at = SystemTime::now();
        self.shared.bodies.send_modify(|count| *count += 1);
        // Read at the end of each message, so a change applies from the next message on.
        let Settings { mode, delay } = self.shared.settings();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let reply = match (data, mode) {
            (Some(data), Mode::Accept) => {
                self.shared.record(Received { from, to, data, received_at });
                "250 2.0.0 OK: message accepted"
            }
            (Some(_), Mode::TempFail) => TEMP_FAIL,
            (Some(_), Mode::PermFail) => PERM_FAIL,
            (None, _) => TOO_BIG,
        };
        if !reply.starts_with('2') {
            self.shared.refuse();
        }
        self.reply(reply).await?;
        Ok(Flow::Continue)
    }

    /// Reads a command line into `line`, without its line ending (CRLF, or a bare LF from
    /// hand-typed sessions).
    async fn read_command(&mut self, line: &mut Vec<u8>) -> io::Result<Command> {
        line.clear();
        let max = self.shared.limits.max_line;
        // Room for the longest allowed line and its CRLF: a line not ended by then is too long.
        let limit = max.saturating_add(2);
        match self.read_line(line, limit).await? {
            Read::Data => {}
            Read::Eof => return Ok(Command::Eof),
            Read::Idle => return Ok(Command::Idle),
        }
        if line.last() != Some(&b'\n') {
            // The read stops at a newline, at the limit, or at the end of input.
            return Ok(if line.len() >= limit { Command::TooLong } else { Command::Eof });
        }
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        Ok(if line.len() > max { Command::TooLong } else { Command::Line })
    }

    /// Reads the message text up to the `<CRLF>.<CRLF>` terminator, undoing dot-stuffing. A
    /// message over the size limit is read to its end but not kept, so the connection stays in
    /// step and usable.
    async fn read_body(&mut self) -> io::Result<Body> {
        let max = self.shared.limits.max_message_size;
        let mut data = Vec::new();
        let mut too_big = false;
        let mut chunk = Vec::new();
        // Only a line that follows a CRLF (or opens the text) can be the terminator or stuffed.
        let mut at_line_start = true;
        let mut after_cr = false;
        loop {
            chunk.clear();
            match self.read_line(&mut chunk, DATA_CHUNK).await? {
                Read::Data => {}
                Read::Eof => return Ok(Body::Eof),
                Read::Idle => return Ok(Body::Idle),
            }
            if at_line_start && chunk == b".\r\n" {
                return Ok(if too_big { Body::TooBig } else { Body::Complete(data) });
            }
            // The client doubled every dot that starts a line (RFC 5321 section 4.5.2).
            let text = if at_line_start && chunk.starts_with(b".") { &chunk[1..] } else { &chunk[..] };
            if !too_big {
                if data.len() + text.len() > max {
                    too_big = true;
                    data = Vec::new();
                } else {
                    data.extend_from_slice(text);
                }
            }
            // A chunk ends at a newline unless the line was longer than a chunk; the CR of a
            // CRLF may then end the previous chunk.
            at_line_start = chunk.ends_with(b"\r\n") || (chunk == b"\n" && after_cr);
            after_cr = chunk.ends_with(b"\r");
        }
    }

    /// Appends input up to and including the next LF, or at most `limit` bytes, to `buf`.
    async fn read_line(&mut self, buf: &mut Vec<u8>, limit: usize) -> io::Result<Read> {
        let limit = u64::try_from(limit).unwrap_or(u64::MAX);
        let mut bounded = (&mut self.reader).take(limit);
        match timeout(self.shared.limits.idle_timeout, bounded.read_until(b'\n', buf)).await {
            Err(_) => Ok(Read::Idle),
            Ok(Ok(0)) => Ok(Read::Eof),
            Ok(Ok(_)) => Ok(Read::Data),
            Ok(Err(error)) => Err(error),
        }
    }

    /// Sends one reply; `text` may hold several CRLF-separated lines of a multi-line reply.
    async fn reply(&mut self, text: &str) -> io::Result<()> {
        let mut out = Vec::with_capacity(text.len() + 2);
        out.extend_from_slice(text.as_bytes());
        out.extend_from_slice(b"\r\n");
        // A client that stops reading counts as idle too.
        match timeout(self.shared.limits.idle_timeout, self.writer.write_all(&out)).await {
            Ok(result) => result,
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "client stopped reading")),
        }
    }

    /// Closes our side, then drains the client's pending input for a short while (see
    /// [`LINGER_TIME`]).
    async fn linger(&mut self) {
        let _ = self.writer.shutdown().await;
        let mut pending = (&mut self.reader).take(LINGER_BYTES);
        let _ = timeout(LINGER_TIME, tokio::io::copy(&mut pending, &mut tokio::io::sink())).await;
    }
}

/// Extracts the address from a `MAIL`/`RCPT` argument such as `FROM:<a@b> BODY=8BITMIME`.
/// Parameters after the path are ignored. Returns `None` on a syntax error.
fn parse_path(arg: &str, keyword: &str) -> Option<String> {
    if !arg.get(..keyword.len())?.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = arg[keyword.len()..].trim_start();
    let path = match rest.strip_prefix('<') {
        Some(inner) => &inner[..inner.find('>')?],
        // Hand-typed sessions often leave out the brackets; take the first word then.
        None => rest.split_whitespace().next()?,
    };
    // An obsolete source route ("@relay1,@relay2:user@host") is to be ignored (RFC 5321 C).
    let path = match path.strip_prefix('@') {
        Some(route) => route.split_once(':')?.1,
        None => path,
    };
    if path.chars().any(char::is_control) {
        return None;
    }
    Some(path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::parse_path;

    #[test]
    fn parses_paths_and_ignores_parameters() {
        let path = |arg, keyword| parse_path(arg, keyword);
        assert_eq!(path("FROM:<a@x> BODY=8BITMIME SMTPUTF8", "FROM:").as_deref(), Some("a@x"));
        assert_eq!(path("from: <a@x>", "FROM:").as_deref(), Some("a@x"));
        assert_eq!(path("FROM:<>", "FROM:").as_deref(), Some(""));
        assert_eq!(path("TO:b@x", "TO:").as_deref(), Some("b@x"));
        assert_eq!(path("TO:<@relay,@other:b@x>", "TO:").as_deref(), Some("b@x"));
        assert_eq!(path("TO:<ü@x.example>", "TO:").as_deref(), Some("ü@x.example"));
        assert_eq!(path("TO:<b@x", "TO:"), None);
        assert_eq!(path("TO:", "TO:"), None);
        assert_eq!(path("FROM:<a@x>", "TO:"), None);
        assert_eq!(path("FR", "FROM:"), None);
        assert_eq!(path("TO:<a\rb@x>", "TO:"), None);
    }
}
