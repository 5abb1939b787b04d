//! calendar-query filters (RFC 4791 §9.7) over one task: time ranges from its stored times
//! (§9.9), property tests over the VTODO as it is served.

use chrono::{DateTime, Utc};

use super::xml::{CompFilter, PropFilter, TextMatch, TimeRange};
use crate::domain::Task;

/// Whether the object (`text`, as served) passes the VCALENDAR filter.
pub fn matches(calendar: &CompFilter, task: &Task, text: &str) -> bool {
    if calendar.name != "VCALENDAR" || calendar.not_defined {
        return false;
    }
    let lines = todo_lines(text);
    let results = calendar.comps.iter().map(|filter| component(filter, task, &lines));
    combine(calendar.any_of, results)
}

fn combine(any_of: bool, mut results: impl Iterator<Item = bool>) -> bool {
    if any_of { results.any(|r| r) } else { results.all(|r| r) }
}

fn component(filter: &CompFilter, task: &Task, lines: &[String]) -> bool {
    // The object holds one VTODO and nothing else a filter can name.
    if filter.name != "VTODO" {
        return filter.not_defined;
    }
    if filter.not_defined {
        return false;
    }
    let range = filter.time_range.is_none_or(|range| todo_in_range(task, range));
    let props = filter.props.iter().map(|p| property(p, task, lines));
    let alarms = filter.comps.iter().map(|c| match c.name.as_str() {
        "VALARM" => task.reminder_at.is_some() != c.not_defined,
        _ => c.not_defined,
    });
    range && combine(filter.any_of, props.chain(alarms))
}

fn property(filter: &PropFilter, task: &Task, lines: &[String]) -> bool {
    let values: Vec<&str> = lines.iter().filter_map(|line| value_of(line, &filter.name)).collect();
    if filter.not_defined {
        return values.is_empty();
    }
    if values.is_empty() {
        return false;
    }
    if let Some(range) = filter.time_range {
        let at = match filter.name.as_str() {
            "DUE" | "DTSTART" => task.due_at,
            "COMPLETED" => task.completed_at,
            "CREATED" => Some(task.created_at),
            "LAST-MODIFIED" | "DTSTAMP" => Some(task.updated_at),
            _ => None,
        };
        if !at.is_some_and(|at| within(range, at)) {
            return false;
        }
    }
    match &filter.text_match {
        Some(text) => values.iter().any(|value| text_matches(text, value)),
        None => true,
    }
}

fn text_matches(test: &TextMatch, value: &str) -> bool {
    let found = match test.exact {
        true => value.contains(&test.text),
        false => value.to_ascii_lowercase().contains(&test.text.to_ascii_lowercase()),
    };
    found != test.negate
}

/// RFC 4791 §9.9 for a VTODO, from the times this server writes: DUE when it has one, else
/// COMPLETED with CREATED, else CREATED.
fn todo_in_range(task: &Task, range: TimeRange) -> bool {
    let after_start =
        |at: DateTime<Utc>, strict: bool| range.start.is_none_or(|s| if strict { s < at } else { s <= at });
    let before_end =
        |at: DateTime<Utc>, strict: bool| range.end.is_none_or(|e| if strict { e > at } else { e >= at });
    match (task.due_at, task.completed_at) {
        (Some(due), _) => after_start(due, true) && before_end(due, false),
        (None, Some(done)) => {
            (after_start(task.created_at, false) || after_start(done, false))
                && (before_end(task.created_at, false) || before_end(done, false))
        }
        (None, None) => before_end(task.created_at, true),
    }
}

fn within(range: TimeRange, at: DateTime<Utc>) -> bool {
    range.start.is_none_or(|s| s <= at) && range.end.is_none_or(|e| at < e)
}

/// The VTODO's own content lines, unfolded (not those of its alarms).
fn todo_lines(text: &str) -> Vec<String> {
    let unfolded = text.replace("\r\n ", "").replace("\r\n\t", "");
    let mut depth = 0;
    let mut out = Vec::new();
    for line in unfolded.split("\r\n") {
        if line.eq_ignore_ascii_case("BEGIN:VTODO") {
            depth = 1;
        } else if depth >= 1 && line.starts_with("BEGIN:") {
            depth += 1;
        } else if depth >= 1 && line.starts_with("END:") {
            depth -= 1;
        } else if depth == 1 {
            out.push(line.to_owned());
        }
    }
    out
}

/// The value of a content line of property `name` (the text after the first colon outside
/// quotes), if the line is one.
fn value_of<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let head = line.get(..name.len())?;
    if !head.eq_ignore_ascii_case(name) || !matches!(line.as_bytes().get(name.len()), Some(b':' | b';')) {
        return None;
    }
    let mut quoted = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ':' if !quoted => return Some(&line[i + 1..]),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_found_past_quoted_colons() {
        assert_eq!(value_of("X-A;P=\"a:b\":v", "X-A"), Some("v"));
        assert_eq!(value_of("SUMMARY:Pay", "SUMMARY"), Some("Pay"));
        assert_eq!(value_of("SUMMARYX:Pay", "SUMMARY"), None);
    }

    #[test]
    fn only_the_todos_own_lines_count() {
        let text = "BEGIN:VCALENDAR\r\nBEGIN:VTODO\r\nSUMMARY:a\r\n b\r\nBEGIN:VALARM\r\nACTION:DISPLAY\r\nEND:VALARM\r\nSTATUS:NEEDS-ACTION\r\nEND:VTODO\r\nEND:VCALENDAR\r\n";
        assert_eq!(todo_lines(text), vec!["SUMMARY:ab".to_owned(), "STATUS:NEEDS-ACTION".to_owned()]);
    }
}
