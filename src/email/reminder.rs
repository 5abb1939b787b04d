//! The reminder email: rendered from `templates/reminder.{txt,html}` with HTML escaping, and
//! identified by a Message-ID derived from (task, reminder time), so the copy that may be sent
//! twice in the crash window is recognisably the same message. It is marked `Auto-Submitted`, and
//! carries the RFC 8058 unsubscribe headers and a visible unsubscribe link when given a URL.

use chrono::{DateTime, Utc};
use lettre::Message;
use lettre::message::{Mailbox, MultiPart};
use minijinja::context;
use uuid::Uuid;

use super::headers;
use crate::domain::TimeZone;

/// The task title's share of the subject: a mail client shows about 60 characters of a subject.
const SUBJECT_TITLE_CHARS: usize = 80;

// Compiled in, so a worker started from any folder renders the same mail.
const TEXT_TEMPLATE: &str = include_str!("../../templates/reminder.txt");
const HTML_TEMPLATE: &str = include_str!("../../templates/reminder.html");

/// What a reminder says.
#[derive(Debug, Clone)]
pub struct Reminder<'a> {
    pub task_id: Uuid,
    pub reminder_at: DateTime<Utc>,
    pub title: &'a str,
    pub description: Option<&'a str>,
    pub due_at: Option<DateTime<Utc>>,
    /// The recipient's zone: times are shown the way they read their clock.
    pub timezone: TimeZone,
    pub recipient_name: Option<&'a str>,
    /// One-click links to complete or snooze the task, under `public_url`.
    pub actions: &'a [ActionLink],
    /// The one-click unsubscribe URL (RFC 8058): `None` sends neither the headers nor the link.
    pub unsubscribe_url: Option<&'a str>,
}

/// A link in the reminder that acts on its task.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ActionLink {
    pub label: &'static str,
    pub url: String,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("rendering the reminder template: {0}")]
    Render(#[from] minijinja::Error),
    #[error("building the message: {0}")]
    Message(#[from] lettre::error::Error),
}

/// "Monday 4 March 2030, 09:00 CET (Europe/Paris)": the abbreviation says which side of a DST
/// change the time is on, and the zone name is shown unless it is the abbreviation ("UTC").
pub fn human_time(at: DateTime<Utc>, timezone: TimeZone) -> String {
    let local = at.with_timezone(&timezone.tz());
    let shown = local.format("%A %-d %B %Y, %H:%M %Z").to_string();
    match shown.ends_with(timezone.name()) {
        true => shown,
        false => format!("{shown} ({})", timezone.name()),
    }
}

/// `<reminder.{task}.{unix seconds}@{sender's domain}>`: the same for every copy of one reminder.
pub fn message_id(task_id: Uuid, reminder_at: DateTime<Utc>, from: &Mailbox) -> String {
    format!("<reminder.{}.{}@{}>", task_id.simple(), reminder_at.timestamp(), from.email.domain())
}

/// "Reminder: {title} (due {time})", the title on one line and bounded (see [`headers::one_line`]).
pub fn subject(reminder: &Reminder<'_>) -> String {
    let title = headers::one_line(reminder.title, SUBJECT_TITLE_CHARS);
    match reminder.due_at {
        Some(due) => format!("Reminder: {title} (due {})", human_time(due, reminder.timezone)),
        None => format!("Reminder: {title}"),
    }
}

/// The whole message, with a plain-text and an HTML part.
pub fn build(from: &Mailbox, to: Mailbox, reminder: &Reminder<'_>) -> Result<Message, BuildError> {
    // The HTML part escapes every value, the text part shows it as typed.
    let env =
        crate::render::environment(&[("reminder.txt", TEXT_TEMPLATE), ("reminder.html", HTML_TEMPLATE)])?;
    let values = context! {
        title => reminder.title,
        description => reminder.description.filter(|d| !d.trim().is_empty()),
        due => reminder.due_at.map(|due| human_time(due, reminder.timezone)),
        name => reminder.recipient_name.filter(|n| !n.trim().is_empty()),
        actions => reminder.actions,
        unsubscribe_url => reminder.unsubscribe_url,
    };
    let text = env.get_template("reminder.txt")?.render(&values)?;
    let html = env.get_template("reminder.html")?.render(&values)?;
    let builder = Message::builder()
        .from(from.clone())
        .to(to)
        .subject(subject(reminder))
        .message_id(Some(message_id(reminder.task_id, reminder.reminder_at, from)));
    let builder = headers::automated(builder, reminder.unsubscribe_url);
    let message = headers::with_multipart(builder, MultiPart::alternative_plain_html(text, html))?;
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(title: &str) -> Reminder<'_> {
        Reminder {
            task_id: Uuid::nil(),
            reminder_at: "2030-03-04T07:45:00Z".parse().unwrap(),
            title,
            description: Some("Bring the <b>slides</b> & notes"),
            due_at: Some("2030-03-04T08:00:00Z".parse().unwrap()),
            timezone: TimeZone::parse("timezone", "Europe/Paris").unwrap(),
            recipient_name: Some("Ann"),
            actions: &[],
            unsubscribe_url: None,
        }
    }

    fn parsed(reminder: &Reminder<'_>) -> (String, String, String) {
        let from: Mailbox = "Todo <todo@example.com>".parse().unwrap();
        let raw = build(&from, "ann@example.com".parse().unwrap(), reminder).unwrap().formatted();
        let parsed = mail_parser::MessageParser::default().parse(&raw).unwrap();
        let (text, html) =
            (parsed.body_text(0).unwrap().into_owned(), parsed.body_html(0).unwrap().into_owned());
        (String::from_utf8(raw).unwrap(), text, html)
    }

    #[test]
    fn times_read_the_way_a_person_reads_them() {
        let zone = TimeZone::parse("timezone", "Europe/Paris").unwrap();
        assert_eq!(
            human_time("2030-03-04T08:00:00Z".parse().unwrap(), zone),
            "Monday 4 March 2030, 09:00 CET (Europe/Paris)"
        );
        assert_eq!(
            human_time("2030-07-01T07:00:00Z".parse().unwrap(), zone),
            "Monday 1 July 2030, 09:00 CEST (Europe/Paris)",
            "summer time has its own abbreviation"
        );
        assert_eq!(
            human_time("2030-07-01T07:00:00Z".parse().unwrap(), TimeZone::UTC),
            "Monday 1 July 2030, 07:00 UTC"
        );
    }

    #[test]
    fn the_subject_is_the_title_on_one_bounded_line() {
        let subject = subject(&sample("  Call\r\nBcc: victim@example.org\u{202E}  "));
        assert_eq!(
            subject,
            "Reminder: Call Bcc: victim@example.org (due Monday 4 March 2030, 09:00 CET (Europe/Paris))"
        );
        let long = "x".repeat(300);
        let subject = super::subject(&Reminder { due_at: None, ..sample(&long) });
        assert_eq!(subject.chars().count(), "Reminder: ".len() + SUBJECT_TITLE_CHARS, "{subject}");
    }

    #[test]
    fn an_unsubscribe_url_gives_the_one_click_headers_and_a_link_in_both_parts() {
        let url = "https://todo.example.com/u/abc?k=1&x=2";
        let (raw, text, html) = parsed(&Reminder { unsubscribe_url: Some(url), ..sample("Standup") });
        assert!(raw.contains("Auto-Submitted: auto-generated\r\n"), "{raw}");
        assert!(raw.contains(&format!("List-Unsubscribe: <{url}>\r\n")), "{raw}");
        assert!(raw.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"), "{raw}");
        assert!(text.contains(&format!("Unsubscribe: {url}")), "{text}");
        // Escaped like every value (`/` too), which a mail client decodes back to the URL.
        let href = "href=\"https:&#x2f;&#x2f;todo.example.com&#x2f;u&#x2f;abc?k=1&amp;x=2\"";
        assert!(html.contains(href), "{html}");

        let (raw, text, html) = parsed(&sample("Standup"));
        assert!(raw.contains("Auto-Submitted: auto-generated\r\n"), "always automated: {raw}");
        assert!(!raw.contains("List-Unsubscribe"), "{raw}");
        assert!(!text.contains("nsubscribe") && !html.contains("nsubscribe"), "no link without a URL");
    }

    #[test]
    fn action_links_are_listed_in_both_parts() {
        let actions = [
            ActionLink { label: "Mark as done", url: "https://todo.example.com/email/task?token=a".into() },
            ActionLink { label: "Snooze 1 hour", url: "https://todo.example.com/email/task?token=b".into() },
        ];
        let (_, text, html) = parsed(&Reminder { actions: &actions, ..sample("Standup") });
        assert!(text.contains("Mark as done: https://todo.example.com/email/task?token=a\r\n"), "{text}");
        assert!(text.contains("Snooze 1 hour: https://todo.example.com/email/task?token=b\r\n"), "{text}");
        assert!(html.contains("task?token=b\"") && html.contains(">Snooze 1 hour</a>"), "{html}");
    }

    #[test]
    fn html_escapes_what_the_user_typed_and_text_keeps_it() {
        let from: Mailbox = "Todo <todo@example.com>".parse().unwrap();
        let to: Mailbox = "ann@example.com".parse().unwrap();
        let message = build(&from, to, &sample("<script>alert(1)</script>")).unwrap();
        let raw = message.formatted();
        let parsed = mail_parser::MessageParser::default().parse(&raw).unwrap();
        assert_eq!(
            parsed.message_id(),
            Some("reminder.00000000000000000000000000000000.1898840700@example.com")
        );
        let html = parsed.body_html(0).unwrap();
        assert!(html.contains("&lt;script&gt;alert(1)&lt;"), "html part escapes: {html}");
        assert!(!html.contains("<script>"), "no raw markup in the html part: {html}");
        assert!(
            html.contains("&lt;b&gt;slides&lt;") && html.contains("&amp; notes"),
            "description escaped too"
        );
        let text = parsed.body_text(0).unwrap();
        assert!(text.contains("<script>alert(1)</script>"), "the text part shows the title as typed");
        assert!(text.contains("Bring the <b>slides</b> & notes"), "and the description: {text}");
    }
}
