//! A recorded message and header lookup in its raw text.

use std::time::SystemTime;

/// A message the sink accepted.
#[derive(Debug, Clone)]
pub struct Received {
    /// The reverse-path of `MAIL FROM`, without angle brackets; empty for the null sender `<>`.
    pub from: String,
    /// The forward-paths of the `RCPT TO` commands, without angle brackets, in order.
    pub to: Vec<String>,
    /// The raw message (headers and body), dot-unstuffed, CRLF line endings kept, without the
    /// final `.\r\n`.
    pub data: Vec<u8>,
    /// When the final `.` arrived.
    pub received_at: SystemTime,
}

impl Received {
    /// The first header field called `name` (case-insensitive), unfolded (continuation lines
    /// joined with a single space) and trimmed. The value is raw: encoded words and the like are
    /// not decoded. Invalid UTF-8 is replaced by U+FFFD.
    pub fn header(&self, name: &str) -> Option<String> {
        let mut parts: Option<Vec<&[u8]>> = None;
        for line in header_lines(&self.data) {
            if line.starts_with(b" ") || line.starts_with(b"\t") {
                if let Some(parts) = parts.as_mut() {
                    parts.push(line.trim_ascii());
                }
                continue;
            }
            if parts.is_some() {
                // The next field starts, so the one we found is complete.
                break;
            }
            let Some(colon) = line.iter().position(|&b| b == b':') else { continue };
            if line[..colon].trim_ascii_end().eq_ignore_ascii_case(name.as_bytes()) {
                parts = Some(vec![line[colon + 1..].trim_ascii()]);
            }
        }
        let parts = parts?;
        let value = parts.into_iter().filter(|part| !part.is_empty()).collect::<Vec<_>>().join(&b' ');
        Some(String::from_utf8_lossy(&value).into_owned())
    }
}

/// The lines of the header section, without line endings: everything before the first empty
/// line. Bare LF endings are accepted too.
fn header_lines(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    data.split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .take_while(|line| !line.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(data: &str) -> Received {
        Received {
            from: String::new(),
            to: Vec::new(),
            data: data.as_bytes().to_vec(),
            received_at: SystemTime::now(),
        }
    }

    #[test]
    fn finds_the_first_header_case_insensitively() {
        let m = message("From: a@x\r\nSubject:  Hello  \r\nsubject: second\r\n\r\nSubject: body\r\n");
        assert_eq!(m.header("SUBJECT").as_deref(), Some("Hello"));
        assert_eq!(m.header("from").as_deref(), Some("a@x"));
        assert_eq!(m.header("To"), None);
    }

    #[test]
    fn unfolds_continuation_lines() {
        let m = message("Subject: a long\r\n\tsubject\r\n   folded twice\r\nTo: b@x\r\n\r\nbody\r\n");
        assert_eq!(m.header("subject").as_deref(), Some("a long subject folded twice"));
        assert_eq!(m.header("to").as_deref(), Some("b@x"));
    }

    #[test]
    fn value_may_start_on_the_continuation_line() {
        let m = message("Subject:\r\n =?UTF-8?B?w6k=?=\r\n\r\n");
        assert_eq!(m.header("Subject").as_deref(), Some("=?UTF-8?B?w6k=?="));
    }

    #[test]
    fn ignores_the_body_and_lines_without_colon() {
        let m = message("X-A: 1\r\nnot a header\r\n\r\nSubject: in body\r\n");
        assert_eq!(m.header("Subject"), None);
        assert_eq!(m.header("x-a").as_deref(), Some("1"));
        assert_eq!(message("").header("Subject"), None);
    }

    #[test]
    fn empty_value_is_some_empty() {
        assert_eq!(message("Subject:\r\n\r\n").header("subject").as_deref(), Some(""));
    }
}
