//! Header fields every automated email carries, and header-safe text.
//!
//! - `Auto-Submitted: auto-generated` (RFC 3834), so vacation responders and the like stay quiet.
//! - With an unsubscribe URL, `List-Unsubscribe: <url>` and
//!   `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058), which mailbox providers
//!   require of bulk senders and show as an "unsubscribe" button.

use lettre::Message;
use lettre::message::header::{self, ContentTransferEncoding, ContentType, Header, HeaderName, HeaderValue};
use lettre::message::{Body, MessageBuilder, MultiPart};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoSubmitted;

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }

    fn parse(s: &str) -> Result<Self, BoxError> {
        match s.trim() {
            "auto-generated" => Ok(Self),
            other => Err(format!("unexpected Auto-Submitted value {other:?}").into()),
        }
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "auto-generated".into())
    }
}

/// `List-Unsubscribe: <https://…>`: only the HTTPS URL, since RFC 8058's one-click POST needs one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListUnsubscribe(String);

impl Header for ListUnsubscribe {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe")
    }

    fn parse(s: &str) -> Result<Self, BoxError> {
        let url = s.trim().strip_prefix('<').and_then(|s| s.strip_suffix('>'));
        url.map(|url| Self(url.to_owned())).ok_or_else(|| "expected <url>".into())
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), format!("<{}>", self.0))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListUnsubscribePost;

impl Header for ListUnsubscribePost {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe-Post")
    }

    fn parse(s: &str) -> Result<Self, BoxError> {
        match s.trim() {
            "List-Unsubscribe=One-Click" => Ok(Self),
            other => Err(format!("unexpected List-Unsubscribe-Post value {other:?}").into()),
        }
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "List-Unsubscribe=One-Click".into())
    }
}

/// Adds the headers of an automated message; `unsubscribe` is the one-click URL, when the kind
/// of email has one.
pub fn automated(builder: MessageBuilder, unsubscribe: Option<&str>) -> MessageBuilder {
    let builder = builder.header(AutoSubmitted);
    match unsubscribe {
        // A URL with spaces or angle brackets would break the header's `<…>` framing.
        Some(url) if !url.contains(|c: char| c.is_whitespace() || c == '<' || c == '>') => {
            builder.header(ListUnsubscribe(url.to_owned())).header(ListUnsubscribePost)
        }
        Some(_) | None => builder,
    }
}

/// The message with `part` as its body, its `Content-Type` among the message's own headers so that
/// DKIM signs it (lettre's `MessageBuilder::multipart` keeps it with the body, unsigned: see
/// `email::dkim`).
pub fn with_multipart(builder: MessageBuilder, part: MultiPart) -> Result<Message, lettre::error::Error> {
    let formatted = part.formatted();
    let body_at = formatted.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    let content_type = part.headers().get::<ContentType>();
    let (Some(body_at), Some(content_type)) = (body_at, content_type) else {
        return builder.multipart(part);
    };
    // lettre wrote and encoded every part itself (CRLF, lines within limits), so the body is
    // taken as it is: re-checking it would refuse quoted-printable's 76-character lines. Its own
    // encoding is the widest of its parts': lettre sends UTF-8 text as 8bit.
    let body = &formatted[body_at..];
    let encoding = match body.is_ascii() {
        true => ContentTransferEncoding::SevenBit,
        false => ContentTransferEncoding::EightBit,
    };
    let body = Body::dangerous_pre_encoded(body.to_vec(), encoding);
    builder.header(header::MIME_VERSION_1_0).header(content_type).body(body)
}

/// `text` as one line for a header: control characters (line breaks included) and bidi
/// overrides become spaces, runs of spaces collapse, and it is trimmed and cut to `max_chars`
/// with an ellipsis. User text in a subject must not fold into other headers or spoof direction.
pub fn one_line(text: &str, max_chars: usize) -> String {
    let cleaned: String = text.chars().map(|c| if is_unsafe(c) { ' ' } else { c }).collect();
    let words: Vec<&str> = cleaned.split_whitespace().collect();
    let joined = words.join(" ");
    if joined.chars().count() <= max_chars {
        return joined;
    }
    let cut: String = joined.chars().take(max_chars.saturating_sub(1)).collect();
    format!("{}…", cut.trim_end())
}

fn is_unsafe(c: char) -> bool {
    c.is_control() || matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use lettre::Message;

    use super::*;

    fn headers_of(unsubscribe: Option<&str>) -> String {
        let builder =
            Message::builder().from("a@example.com".parse().unwrap()).to("b@example.com".parse().unwrap());
        let message = automated(builder, unsubscribe).body(String::from("hi")).unwrap();
        String::from_utf8(message.formatted()).unwrap()
    }

    #[test]
    fn every_automated_message_says_so() {
        assert!(headers_of(None).contains("Auto-Submitted: auto-generated\r\n"));
    }

    #[test]
    fn an_unsubscribe_url_sets_both_one_click_headers_and_none_sets_neither() {
        let with = headers_of(Some("https://todo.example.com/unsubscribe/abc"));
        assert!(with.contains("List-Unsubscribe: <https://todo.example.com/unsubscribe/abc>\r\n"), "{with}");
        assert!(with.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"), "{with}");
        let without = headers_of(None);
        assert!(!without.contains("List-Unsubscribe"), "{without}");
        let broken = headers_of(Some("https://x/<a> b"));
        assert!(!broken.contains("List-Unsubscribe"), "a URL that would break the header is left out");
    }

    #[test]
    fn a_lifted_multipart_reads_the_same_with_its_content_type_in_the_headers() {
        let builder =
            || Message::builder().from("a@example.com".parse().unwrap()).to("b@example.com".parse().unwrap());
        let text = "café – crème brûlée à emporter, s'il vous plaît";
        let part = || MultiPart::alternative_plain_html(text.to_owned(), "<p>café</p>".to_owned());
        let lifted = with_multipart(builder(), part()).unwrap();
        assert!(lifted.headers().get::<ContentType>().is_some(), "where DKIM sees it");
        let raw = lifted.formatted();
        let parsed = mail_parser::MessageParser::default().parse(&raw).unwrap();
        assert_eq!(parsed.body_text(0).as_deref(), Some(text));
        assert_eq!(parsed.body_html(0).as_deref(), Some("<p>café</p>"));
        let text = String::from_utf8(raw).unwrap();
        assert_eq!(text.matches("MIME-Version: 1.0").count(), 1, "{text}");
        assert_eq!(text.matches("Content-Type: multipart/alternative").count(), 1, "{text}");
    }

    #[test]
    fn one_line_removes_controls_and_bidi_overrides_and_bounds_the_length() {
        assert_eq!(one_line("  Pay\r\nBcc: x@evil\tnow \u{7} ", 100), "Pay Bcc: x@evil now");
        assert_eq!(one_line("a\u{202E}gpj.exe", 100), "a gpj.exe");
        assert_eq!(one_line("abcdefghij", 5), "abcd…");
        assert_eq!(one_line("abcde", 5), "abcde");
        assert_eq!(one_line("\n\t", 5), "");
    }
}
