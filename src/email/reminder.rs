//! The reminder email: rendered from `templates/reminder.{txt,html}` with HTML escaping, and
//! identified by a Message-ID derived from (task, reminder time), so the copy that may be sent
//! twice in the crash window is recognisably the same message.

use chrono::{DateTime, Utc};
use lettre::Message;
use lettre::message::{Mailbox, MultiPart};
use minijinja::context;
use uuid::Uuid;

use crate::domain::TimeZone;

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
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("rendering the reminder template: {0}")]
    Render(#[from] minijinja::Error),
    #[error("building the message: {0}")]
    Message(#[from] lettre::error::Error),
}

/// "Tuesday 4 March 2030, 09:00 (Europe/Paris)".
pub fn human_time(at: DateTime<Utc>, timezone: TimeZone) -> String {
    let local = at.with_timezone(&timezone.tz());
    format!("{} ({})", local.format("%A %-d %B %Y, %H:%M"), timezone.name())
}

/// `<reminder.{task}.{unix seconds}@{sender's domain}>`: the same for every copy of one reminder.
pub fn message_id(task_id: Uuid, reminder_at: DateTime<Utc>, from: &Mailbox) -> String {
    format!("<reminder.{}.{}@{}>", task_id.simple(), reminder_at.timestamp(), from.email.domain())
}

pub fn subject(reminder: &Reminder<'_>) -> String {
    match reminder.due_at {
        Some(due) => format!("Reminder: {} (due {})", reminder.title, human_time(due, reminder.timezone)),
        None => format!("Reminder: {}", reminder.title),
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
    };
    let text = env.get_template("reminder.txt")?.render(&values)?;
    let html = env.get_template("reminder.html")?.render(&values)?;
    let message = Message::builder()
        .from(from.clone())
        .to(to)
        .subject(subject(reminder))
        .message_id(Some(message_id(reminder.task_id, reminder.reminder_at, from)))
        .multipart(MultiPart::alternative_plain_html(text, html))?;
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
        }
    }

    #[test]
    fn times_read_the_way_a_person_reads_them() {
        let zone = TimeZone::parse("timezone", "Europe/Paris").unwrap();
        assert_eq!(
            human_time("2030-03-04T08:00:00Z".parse().unwrap(), zone),
            "Monday 4 March 2030, 09:00 (Europe/Paris)"
        );
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
