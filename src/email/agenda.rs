//! The daily agenda email: overdue tasks and tasks due that day, rendered from
//! `templates/agenda.{txt,html}`. Like every mail the service sends it is `Auto-Submitted`, has
//! a plain-text and an HTML part (which escapes all user text), and links only to `public_url`.

use chrono::{DateTime, NaiveDate, Utc};
use lettre::Message;
use lettre::message::{Mailbox, MultiPart};
use minijinja::context;
use serde::Serialize;
use uuid::Uuid;

use super::headers;
use super::reminder::{ActionLink, BuildError, human_time};
use crate::domain::TimeZone;

/// A title's share of one line in the list; the text part shows the title, not its description.
const ITEM_TITLE_CHARS: usize = 200;

// Compiled in, so a worker started from any folder renders the same mail.
const TEXT_TEMPLATE: &str = include_str!("../../templates/agenda.txt");
const HTML_TEMPLATE: &str = include_str!("../../templates/agenda.html");

/// One task in the agenda.
#[derive(Debug, Clone)]
pub struct Item<'a> {
    pub title: &'a str,
    pub due_at: DateTime<Utc>,
    /// The task's one-click links, under `public_url`.
    pub actions: Vec<ActionLink>,
}

/// What an agenda says.
#[derive(Debug, Clone)]
pub struct Agenda<'a> {
    pub user_id: Uuid,
    /// The recipient's local day the agenda is for.
    pub date: NaiveDate,
    pub timezone: TimeZone,
    pub recipient_name: Option<&'a str>,
    /// Due before `date` began, in due order.
    pub overdue: Vec<Item<'a>>,
    /// Due on `date`, in due order.
    pub due_today: Vec<Item<'a>>,
    /// Tasks left out of the lists by the cap.
    pub more: u64,
    /// Where the whole list is: the app at `public_url`.
    pub app_url: &'a str,
    /// The one-click unsubscribe URL (RFC 8058): `None` sends neither the headers nor the link.
    pub unsubscribe_url: Option<&'a str>,
}

/// "Your agenda for Monday 4 March".
pub fn subject(date: NaiveDate) -> String {
    format!("Your agenda for {}", date.format("%A %-d %B"))
}

/// `<agenda.{user}.{date}@{sender's domain}>`: the same for every copy of one day's agenda.
pub fn message_id(user_id: Uuid, date: NaiveDate, from: &Mailbox) -> String {
    format!("<agenda.{}.{}@{}>", user_id.simple(), date.format("%Y%m%d"), from.email.domain())
}

#[derive(Serialize)]
struct ItemView<'a> {
    title: String,
    due: String,
    actions: &'a [ActionLink],
}

fn views<'a>(items: &'a [Item<'_>], zone: TimeZone) -> Vec<ItemView<'a>> {
    items
        .iter()
        .map(|item| ItemView {
            // One line per task: a title with line breaks would run into the next entry.
            title: headers::one_line(item.title, ITEM_TITLE_CHARS),
            due: human_time(item.due_at, zone),
            actions: &item.actions,
        })
        .collect()
}

/// The whole message, with a plain-text and an HTML part.
pub fn build(from: &Mailbox, to: Mailbox, agenda: &Agenda<'_>) -> Result<Message, BuildError> {
    let env = crate::render::environment(&[("agenda.txt", TEXT_TEMPLATE), ("agenda.html", HTML_TEMPLATE)])?;
    let values = context! {
        day => agenda.date.format("%A %-d %B %Y").to_string(),
        name => agenda.recipient_name.filter(|n| !n.trim().is_empty()),
        overdue => views(&agenda.overdue, agenda.timezone),
        due_today => views(&agenda.due_today, agenda.timezone),
        more => agenda.more,
        app_url => agenda.app_url,
        unsubscribe_url => agenda.unsubscribe_url,
    };
    let text = env.get_template("agenda.txt")?.render(&values)?;
    let html = env.get_template("agenda.html")?.render(&values)?;
    let builder = Message::builder()
        .from(from.clone())
        .to(to)
        .subject(subject(agenda.date))
        .message_id(Some(message_id(agenda.user_id, agenda.date, from)));
    let builder = headers::automated(builder, agenda.unsubscribe_url);
    Ok(headers::with_multipart(builder, MultiPart::alternative_plain_html(text, html))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample<'a>(overdue: Vec<Item<'a>>, due_today: Vec<Item<'a>>, more: u64) -> Agenda<'a> {
        Agenda {
            user_id: Uuid::nil(),
            date: "2030-03-04".parse().unwrap(),
            timezone: TimeZone::parse("timezone", "Europe/Paris").unwrap(),
            recipient_name: Some("Ann"),
            overdue,
            due_today,
            more,
            app_url: "https://todo.example.com",
            unsubscribe_url: None,
        }
    }

    fn item<'a>(title: &'a str, due: &str) -> Item<'a> {
        Item { title, due_at: due.parse().unwrap(), actions: Vec::new() }
    }

    fn parsed(agenda: &Agenda<'_>) -> (String, String, String) {
        let from: Mailbox = "Todo <todo@example.com>".parse().unwrap();
        let raw = build(&from, "ann@example.com".parse().unwrap(), agenda).unwrap().formatted();
        let parsed = mail_parser::MessageParser::default().parse(&raw).unwrap();
        let (text, html) =
            (parsed.body_text(0).unwrap().into_owned(), parsed.body_html(0).unwrap().into_owned());
        (String::from_utf8(raw).unwrap(), text, html)
    }

    #[test]
    fn both_sections_in_the_recipients_zone_with_user_text_escaped_in_html() {
        let agenda = sample(
            vec![item("<script>x</script>", "2030-03-01T08:00:00Z")],
            vec![item("Standup\r\nBcc: x@evil", "2030-03-04T08:00:00Z")],
            0,
        );
        let (raw, text, html) = parsed(&agenda);
        assert!(raw.contains("Subject: Your agenda for Monday 4 March\r\n"), "{raw}");
        assert!(raw.contains("Auto-Submitted: auto-generated\r\n"), "{raw}");
        assert!(raw.contains("Message-ID: <agenda.00000000000000000000000000000000.20300304@example.com>"));
        assert!(text.contains("Overdue") && text.contains("Due today"), "{text}");
        assert!(text.contains("<script>x</script>") && text.contains("Standup Bcc: x@evil"), "{text}");
        assert!(text.contains("Monday 4 March 2030, 09:00 CET (Europe/Paris)"), "{text}");
        assert!(html.contains("&lt;script&gt;x&lt;") && !html.contains("<script>"), "{html}");
        assert!(text.find("Overdue").unwrap() < text.find("Due today").unwrap());
        assert!(!text.contains("more") && !html.contains("nsubscribe"), "{text}");
    }

    #[test]
    fn the_cap_line_and_action_and_unsubscribe_seams() {
        let mut listed = item("Pay rent", "2030-03-04T08:00:00Z");
        listed.actions.push(ActionLink { label: "Complete", url: "https://todo.example.com/a/1".into() });
        let url = "https://todo.example.com/u/abc";
        let agenda = Agenda { unsubscribe_url: Some(url), ..sample(Vec::new(), vec![listed], 7) };
        let (raw, text, html) = parsed(&agenda);
        assert!(text.contains("and 7 more"), "{text}");
        assert!(text.contains("https://todo.example.com"), "{text}");
        assert!(text.contains("Complete: https://todo.example.com/a/1"), "{text}");
        assert!(html.contains("and 7 more") && html.contains(">Complete</a>"), "{html}");
        assert!(raw.contains(&format!("List-Unsubscribe: <{url}>\r\n")), "{raw}");
        assert!(text.contains(&format!("Unsubscribe: {url}")), "{text}");
        assert!(!text.contains("Overdue"), "an empty section is left out: {text}");
    }
}
