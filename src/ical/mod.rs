//! iCalendar (RFC 5545) writing, shared by every door that speaks it: the subscription feed
//! now, CalDAV later. `write` knows content lines (escaping, folding, CRLF); `timezone` makes
//! VTIMEZONEs from the tz database; `task` turns a domain task into a VEVENT or a VTODO; this
//! module wraps them in a VCALENDAR.

pub mod fields;
pub mod read;
pub mod task;
pub mod timezone;
pub mod write;

use crate::domain::Task;
pub use task::Context;
use timezone::ZoneSpans;
use write::Writer;

pub const PRODID: &str = "-//todo service//calendar feed 1.0//EN";

/// Which component each task becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    /// For calendars that show events only: tasks with a due time.
    Event,
    /// For clients that read tasks.
    Todo,
}

/// A calendar's own properties.
#[derive(Debug, Clone)]
pub struct Calendar<'a> {
    pub name: &'a str,
    /// How often clients should fetch it again, as an RFC 5545 duration (`PT1H`).
    pub refresh: &'a str,
}

/// Builds a VCALENDAR a task at a time: components go into the body as they come (so the tasks
/// need not all be in memory at once), and the VTIMEZONEs they need are written ahead of them
/// at the end.
#[derive(Debug)]
pub struct CalendarWriter {
    component: Component,
    body: Writer,
    spans: ZoneSpans,
}

impl CalendarWriter {
    pub fn new(component: Component) -> Self {
        Self { component, body: Writer::new(), spans: ZoneSpans::new() }
    }

    pub fn add(&mut self, task: &Task, ctx: &Context<'_>) {
        match self.component {
            Component::Event => {
                if task::write_vevent(&mut self.body, task, ctx) {
                    task::note_zones(task, &mut self.spans);
                }
            }
            Component::Todo => {
                task::write_vtodo(&mut self.body, task, ctx);
                task::note_zones(task, &mut self.spans);
            }
        }
    }

    /// Octets of components written so far.
    pub fn len(&self) -> usize {
        self.body.len()
    }

    pub fn is_empty(&self) -> bool {
        self.body.is_empty()
    }

    /// The whole calendar. Making the VTIMEZONEs takes a scan of the tz database per zone used:
    /// run it off the async threads.
    pub fn finish(self, cal: &Calendar<'_>) -> String {
        let mut w = Writer::new();
        w.begin("VCALENDAR");
        w.raw("VERSION", "2.0");
        w.text("PRODID", PRODID);
        w.raw("CALSCALE", "GREGORIAN");
        w.text("NAME", cal.name);
        w.text("X-WR-CALNAME", cal.name);
        w.with_params("REFRESH-INTERVAL", &[("VALUE", "DURATION")], cal.refresh);
        w.raw("X-PUBLISHED-TTL", cal.refresh);
        self.spans.write(&mut w);
        let mut out = w.finish();
        out.push_str(&self.body.finish());
        let mut end = Writer::new();
        end.end("VCALENDAR");
        out.push_str(&end.finish());
        out
    }
}

/// One CalDAV calendar object: a VCALENDAR holding the task's VTODO, written with what its
/// client said beyond the fields (`kept`), the components it sent besides (`others`, lines as
/// sent), and the VTIMEZONEs they all name.
pub fn object(task: &Task, ctx: &Context<'_>, kept: &task::Kept<'_>, others: &str) -> String {
    let mut spans = ZoneSpans::new();
    task::note_zones(task, &mut spans);
    let at = task.due_at.unwrap_or(task.updated_at);
    for line in kept.extra.split("\r\n").chain(others.split("\r\n")) {
        for tz in tzids(line) {
            spans.note(tz, at);
        }
    }
    let mut w = Writer::new();
    w.begin("VCALENDAR");
    w.raw("VERSION", "2.0");
    w.text("PRODID", PRODID);
    w.raw("CALSCALE", "GREGORIAN");
    spans.write(&mut w);
    task::write_vtodo_keeping(&mut w, task, ctx, kept);
    for line in others.split("\r\n").filter(|line| !line.is_empty()) {
        w.kept(line);
    }
    w.end("VCALENDAR");
    w.finish()
}

/// The zones a kept line names in TZID parameters, that the tz database knows.
fn tzids(line: &str) -> impl Iterator<Item = chrono_tz::Tz> + '_ {
    let head = line.split_once(':').map_or(line, |(head, _)| head);
    head.split(';').filter_map(|param| {
        let (name, value) = param.split_once('=')?;
        name.eq_ignore_ascii_case("TZID").then(|| value.trim_matches('"').parse().ok()).flatten()
    })
}

/// The whole VCALENDAR for `tasks`.
pub fn calendar(cal: &Calendar<'_>, component: Component, tasks: &[Task], ctx: &Context<'_>) -> String {
    let mut writer = CalendarWriter::new(component);
    for task in tasks {
        writer.add(task, ctx);
    }
    writer.finish(cal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_calendar_has_its_header_zones_and_components() {
        let mut paris = task::tests::task("Pay rent", Some("2027-07-14T07:30:00Z"), "Europe/Paris");
        paris.reminder_at = None;
        let floating = task::tests::task("Someday", None, "UTC");
        let cal = Calendar { name: "Work", refresh: "PT1H" };
        let ctx = Context { uid_host: "h" };
        let events = calendar(&cal, Component::Event, &[paris.clone(), floating.clone()], &ctx);
        assert!(events.starts_with("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:"));
        assert!(events.ends_with("END:VCALENDAR\r\n"));
        assert!(events.contains(
            "X-WR-CALNAME:Work\r\nREFRESH-INTERVAL;VALUE=DURATION:PT1H\r\nX-PUBLISHED-TTL:PT1H\r\n"
        ));
        assert_eq!(events.matches("BEGIN:VEVENT").count(), 1);
        assert_eq!(events.matches("BEGIN:VTIMEZONE").count(), 1);
        let todos = calendar(&cal, Component::Todo, &[paris, floating], &ctx);
        assert_eq!(todos.matches("BEGIN:VTODO").count(), 2);
    }
}
