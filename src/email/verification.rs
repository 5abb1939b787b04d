//! The verification email: a link that confirms the recipient owns the address.

use lettre::Message;
use lettre::message::{Mailbox, MultiPart};
use minijinja::context;

use super::reminder::BuildError;

// Compiled in, so a worker started from any folder renders the same mail.
const TEXT_TEMPLATE: &str = include_str!("../../templates/verification.txt");
const HTML_TEMPLATE: &str = include_str!("../../templates/verification.html");

pub const SUBJECT: &str = "Confirm your email address";

/// The whole message, with a plain-text and an HTML part. `link` is built from `public_url`
/// only, so the HTML part links nowhere else. It takes no text the registrant wrote (their
/// name, say): the address is not yet proved to be theirs, and whoever registers it could
/// otherwise send its owner words of their choosing.
pub fn build(from: &Mailbox, to: Mailbox, link: &str) -> Result<Message, BuildError> {
    let env = crate::render::environment(&[
        ("verification.txt", TEXT_TEMPLATE),
        ("verification.html", HTML_TEMPLATE),
    ])?;
    let values = context! {
        address => to.email.to_string(),
        link => link,
    };
    let text = env.get_template("verification.txt")?.render(&values)?;
    let html = env.get_template("verification.html")?.render(&values)?;
    let builder = Message::builder().from(from.clone()).to(to).subject(SUBJECT);
    // Automated, like every mail the service sends; no unsubscribe, since it answers the
    // recipient's own request. `with_multipart` keeps Content-Type where DKIM signs it.
    let builder = super::headers::automated(builder, None);
    Ok(super::headers::with_multipart(builder, MultiPart::alternative_plain_html(text, html))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_link_is_in_both_parts() {
        let from: Mailbox = "Todo <todo@example.com>".parse().unwrap();
        let to: Mailbox = "ann@example.com".parse().unwrap();
        let link = "https://todo.example.com/email/verify?token=abc.def";
        let message = build(&from, to, link).unwrap();
        let raw = message.formatted();
        let parsed = mail_parser::MessageParser::default().parse(&raw).unwrap();
        assert_eq!(parsed.subject(), Some(SUBJECT));
        assert!(raw.windows(30).any(|w| w == b"Auto-Submitted: auto-generated"), "automated");
        let text = parsed.body_text(0).unwrap();
        assert!(text.contains(link) && text.contains("ann@example.com"), "{text}");
        let html = parsed.body_html(0).unwrap();
        assert!(html.contains("token=abc.def"), "{html}");
    }
}
