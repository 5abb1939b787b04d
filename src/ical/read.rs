//! Reading iCalendar (RFC 5545), the inverse of `write`: `parse` unfolds content lines and
//! splits them into names, parameters and values, within size bounds; `todo` picks out the one
//! to-do a CalDAV PUT carries, keeping everything the service does not model as it was sent.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

use super::task::NO_PRIORITY;

const MAX_OCTETS: usize = 1 << 20;
const MAX_LINES: usize = 10_000;
const MAX_DEPTH: usize = 4;
const MAX_LINE_OCTETS: usize = 64 * 1024;

/// Properties the server writes itself: what a client sends for them is dropped.
const SERVER_OWNED: [&str; 5] = ["UID", "DTSTAMP", "CREATED", "LAST-MODIFIED", "SEQUENCE"];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// Not iCalendar, or a value that does not parse: RFC 4791 valid-calendar-data.
    #[error("{0}")]
    Invalid(String),
    /// Holds no VTODO, or holds a VEVENT/VJOURNAL: supported-calendar-component.
    #[error("{0}")]
    Unsupported(String),
    /// Several VTODOs with different UIDs, or none with a UID: valid-calendar-object-resource.
    #[error("{0}")]
    NotOneObject(String),
}

fn invalid(message: impl Into<String>) -> ReadError {
    ReadError::Invalid(message.into())
}

/// One content line, unfolded. `name` upper-cased; params' names upper-cased, values unquoted;
/// `value` still escaped as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    pub name: String,
    pub params: Vec<(String, String)>,
    pub value: String,
    /// The unfolded line exactly as sent, for keeping it.
    pub line: String,
}

impl Property {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
    }

    /// The value as TEXT, unescaped.
    pub fn text(&self) -> String {
        unescape(&self.value)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Component {
    pub name: String,
    pub properties: Vec<Property>,
    pub components: Vec<Component>,
}

impl Component {
    pub fn property(&self, name: &str) -> Option<&Property> {
        self.properties.iter().find(|p| p.name.eq_ignore_ascii_case(name))
    }

    /// BEGIN, its lines as sent, its children, END.
    pub fn write_raw(&self, out: &mut Vec<String>) {
        out.push(format!("BEGIN:{}", self.name));
        out.extend(self.properties.iter().map(|p| p.line.clone()));
        for child in &self.components {
            child.write_raw(out);
        }
        out.push(format!("END:{}", self.name));
    }
}

/// Parses one VCALENDAR object: CRLF or bare LF, folded lines, a UTF-8 BOM; at most 1 MiB,
/// 10 000 lines, nesting depth 4, 64 KiB a line.
pub fn parse(text: &str) -> Result<Component, ReadError> {
    parse_bytes(text.as_bytes())
}

/// `parse` for a body not yet decoded: some clients fold inside a multi-byte character, so the
/// text is only UTF-8 once unfolded.
pub fn parse_bytes(body: &[u8]) -> Result<Component, ReadError> {
    if body.len() > MAX_OCTETS {
        return Err(invalid(format!("calendar data is over {MAX_OCTETS} octets")));
    }
    let body = body.strip_prefix("\u{feff}".as_bytes()).unwrap_or(body);
    let mut stack: Vec<Component> = Vec::new();
    let mut root = None;
    for (number, line) in unfold(body)? {
        let line = String::from_utf8(line).map_err(|_| invalid(format!("line {number}: not UTF-8")))?;
        let property =
            parse_line(line).ok_or_else(|| invalid(format!("line {number}: not a content line")))?;
        if root.is_some() {
            return Err(invalid(format!("line {number}: content after END:VCALENDAR")));
        }
        let value = property.value.trim().to_ascii_uppercase();
        match property.name.as_str() {
            "BEGIN" if stack.is_empty() && value != "VCALENDAR" => {
                return Err(invalid(format!("line {number}: BEGIN:{value} where BEGIN:VCALENDAR belongs")));
            }
            "BEGIN" if stack.len() == MAX_DEPTH => {
                return Err(invalid(format!("line {number}: components nest deeper than {MAX_DEPTH}")));
            }
            "BEGIN" => stack.push(Component { name: value, ..Component::default() }),
            "END" => {
                let done = stack.pop().ok_or_else(|| invalid(format!("line {number}: END without BEGIN")))?;
                if done.name != value {
                    return Err(invalid(format!("line {number}: END:{value} closes BEGIN:{}", done.name)));
                }
                match stack.last_mut() {
                    Some(parent) => parent.components.push(done),
                    None => root = Some(done),
                }
            }
            _ => match stack.last_mut() {
                Some(current) => current.properties.push(property),
                None => return Err(invalid(format!("line {number}: {} outside a component", property.name))),
            },
        }
    }
    if let Some(open) = stack.last() {
        return Err(invalid(format!("BEGIN:{} has no END", open.name)));
    }
    root.ok_or_else(|| invalid("no BEGIN:VCALENDAR"))
}

/// Unfolded content lines, each with the number of the physical line it starts on.
fn unfold(body: &[u8]) -> Result<Vec<(usize, Vec<u8>)>, ReadError> {
    let mut lines: Vec<(usize, Vec<u8>)> = Vec::new();
    for (index, raw) in body.split(|b| *b == b'\n').enumerate() {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let number = index + 1;
        if raw.is_empty() {
            continue;
        }
        if number > MAX_LINES {
            return Err(invalid(format!("more than {MAX_LINES} lines")));
        }
        match (raw[0], lines.last_mut()) {
            (b' ' | b'\t', Some((_, line))) => line.extend_from_slice(&raw[1..]),
            (b' ' | b'\t', None) => return Err(invalid(format!("line {number}: continues no line"))),
            _ => lines.push((number, raw.to_vec())),
        }
        if let Some((start, line)) = lines.last().filter(|(_, line)| line.len() > MAX_LINE_OCTETS) {
            return Err(invalid(format!("line {start}: {} octets, over {MAX_LINE_OCTETS}", line.len())));
        }
    }
    Ok(lines)
}

/// `name *(";" param) ":" value`; `None` when the line is not one.
fn parse_line(line: String) -> Option<Property> {
    let name_end = line.find([';', ':'])?;
    let name = token(&line[..name_end])?;
    let mut params = Vec::new();
    let mut rest = &line[name_end..];
    while let Some(param) = rest.strip_prefix(';') {
        let (key, after) = param.split_once('=')?;
        let (value, tail) = param_value(after)?;
        params.push((token(key)?, value));
        rest = tail;
    }
    let value = rest.strip_prefix(':')?.to_owned();
    Some(Property { name, params, value, line })
}

/// A property or parameter name, upper-cased: letters, digits and dashes.
fn token(name: &str) -> Option<String> {
    let valid = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    valid.then(|| name.to_ascii_uppercase())
}

/// A parameter's value with its quotes taken off, and what follows it (from `;` or `:` on):
/// inside quotes `:` and `;` are part of the value.
fn param_value(text: &str) -> Option<(String, &str)> {
    let mut value = String::new();
    let mut quoted = false;
    for (at, c) in text.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ';' | ':' if !quoted => return Some((value, &text[at..])),
            c => value.push(c),
        }
    }
    None
}

/// TEXT unescaped: `\n` `\N` `\,` `\;` `\\`; any other escaped character stands for itself.
fn unescape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match (c, c == '\\') {
            (_, false) => out.push(c),
            _ => match chars.next() {
                Some('n' | 'N') => out.push('\n'),
                Some(other) => out.push(other),
                None => out.push('\\'),
            },
        }
    }
    out
}

/// A TEXT list split at its unescaped commas, each item unescaped; empty items dropped.
fn split_list(value: &str) -> Vec<String> {
    let mut items = Vec::new();
    let (mut start, mut escaped) = (0, false);
    for (at, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            ',' => {
                items.push(unescape(&value[start..at]));
                start = at + 1;
            }
            _ => {}
        }
    }
    items.push(unescape(&value[start..]));
    items.retain(|item| !item.is_empty());
    items
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    Date(NaiveDate),
    Floating(NaiveDateTime),
    Zoned(NaiveDateTime, Tz),
    Utc(DateTime<Utc>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// Seconds relative to DUE (RELATED=END) or DTSTART (the default, RELATED=START).
    Relative {
        seconds: i64,
        related_end: bool,
    },
    Absolute(DateTime<Utc>),
}

/// The to-do a PUT carries, in the terms the service models; everything else it held is in
/// `extra`/`others`, to be written back unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Todo {
    pub uid: String,
    pub summary: Option<String>,
    pub description: Option<String>,
    pub due: Option<When>,
    pub start: Option<When>,
    /// Upper-cased.
    pub status: Option<String>,
    pub completed: Option<DateTime<Utc>>,
    pub percent_complete: Option<u8>,
    /// 0–9.
    pub priority: Option<u8>,
    /// All CATEGORIES lines, comma-split, unescaped, in order.
    pub categories: Vec<String>,
    /// The value as sent.
    pub rrule: Option<String>,
    /// The first RELATED-TO with RELTYPE=PARENT or no RELTYPE (PARENT is the default).
    pub parent_uid: Option<String>,
    /// From the first VALARM whose TRIGGER parses.
    pub alarm: Option<Trigger>,
    /// The VTODO's other content lines as sent (unfolded), in order; the other VALARMs and
    /// subcomponents as BEGIN…END lines. DTSTART is kept here too, as the client sent it.
    pub extra: Vec<String>,
    /// The calendar's other components (not VTIMEZONE, not the master VTODO) as BEGIN…END lines.
    pub others: Vec<String>,
    /// The lines of STATUS, PERCENT-COMPLETE and PRIORITY as sent (`NO_PRIORITY` for none):
    /// their fields hold less than they say, so these are kept to be written back.
    pub shadowed: Vec<String>,
    /// The mapped VALARM as sent, BEGIN…END: kept to be written back while `reminder_at` is
    /// what it said.
    pub alarm_lines: Vec<String>,
}

/// The master VTODO of a parsed VCALENDAR (the one without RECURRENCE-ID), with its TZIDs
/// resolved to IANA zones.
pub fn todo(calendar: &Component) -> Result<Todo, ReadError> {
    let mut todos = Vec::new();
    for child in &calendar.components {
        match child.name.as_str() {
            "VEVENT" | "VJOURNAL" | "VFREEBUSY" => {
                return Err(ReadError::Unsupported(format!("{} is not supported: only VTODO", child.name)));
            }
            "VTODO" => todos.push(child),
            _ => {}
        }
    }
    let master = master(&todos)?;
    let mut todo = read_vtodo(master, calendar)?;
    for child in &calendar.components {
        if child.name != "VTIMEZONE" && !std::ptr::eq(child, master) {
            child.write_raw(&mut todo.others);
        }
    }
    Ok(todo)
}

/// The one VTODO without RECURRENCE-ID, once every VTODO has been seen to share its UID.
fn master<'a>(todos: &[&'a Component]) -> Result<&'a Component, ReadError> {
    let uid = |c: &Component| c.property("UID").map(Property::text).filter(|uid| !uid.trim().is_empty());
    let first = todos.first().ok_or_else(|| ReadError::Unsupported("the calendar holds no VTODO".into()))?;
    let wanted = uid(first).ok_or_else(|| ReadError::NotOneObject("a VTODO has no UID".into()))?;
    for todo in todos {
        match uid(todo) {
            Some(other) if other == wanted => {}
            Some(other) => {
                return Err(ReadError::NotOneObject(format!("VTODOs with UIDs {wanted} and {other}")));
            }
            None => return Err(ReadError::NotOneObject("a VTODO has no UID".into())),
        }
    }
    let mut masters = todos.iter().filter(|todo| todo.property("RECURRENCE-ID").is_none());
    match (masters.next(), masters.next()) {
        (Some(master), None) => Ok(master),
        (None, _) => Err(ReadError::NotOneObject(format!("no VTODO {wanted} without RECURRENCE-ID"))),
        _ => Err(ReadError::NotOneObject(format!("several VTODOs {wanted} without RECURRENCE-ID"))),
    }
}

/// Properties mapped onto a field that holds less than they say (STATUS IN-PROCESS and
/// CANCELLED are open, PERCENT-COMPLETE below 100 is open, PRIORITY 1–4 is high).
const SHADOWED: [&str; 3] = ["STATUS", "PERCENT-COMPLETE", "PRIORITY"];

fn read_vtodo(vtodo: &Component, calendar: &Component) -> Result<Todo, ReadError> {
    let uid = vtodo.property("UID").map(Property::text).unwrap_or_default();
    let mut todo = Todo { uid, ..Todo::default() };
    for property in &vtodo.properties {
        let owned = SERVER_OWNED.contains(&property.name.as_str());
        if !owned && !map_property(&mut todo, property, calendar)? {
            todo.extra.push(property.line.clone());
        } else if !owned && SHADOWED.contains(&property.name.as_str()) {
            // Mapped onto a field with fewer values than the property has: the line as sent is
            // kept too, to write back while the field still says the same.
            todo.shadowed.push(property.line.clone());
        }
    }
    if todo.priority.is_none() {
        todo.shadowed.push(NO_PRIORITY.to_owned());
    }
    for child in &vtodo.components {
        if todo.alarm.is_none() && child.name == "VALARM" {
            todo.alarm = child.property("TRIGGER").and_then(|p| trigger(p, calendar).ok());
            if todo.alarm.is_some() {
                child.write_raw(&mut todo.alarm_lines);
                continue;
            }
        }
        child.write_raw(&mut todo.extra);
    }
    Ok(todo)
}

/// Sets the field `p` maps onto; false when it maps onto none (or that field is already set)
/// and so belongs in `extra`.
fn map_property(todo: &mut Todo, p: &Property, calendar: &Component) -> Result<bool, ReadError> {
    let parent = p.param("RELTYPE").is_none_or(|t| t.eq_ignore_ascii_case("PARENT"));
    match p.name.as_str() {
        "SUMMARY" if todo.summary.is_none() => todo.summary = Some(p.text()),
        "DESCRIPTION" if todo.description.is_none() => todo.description = Some(p.text()),
        "DUE" if todo.due.is_none() => todo.due = Some(when(p, calendar)?),
        "DTSTART" if todo.start.is_none() => {
            todo.start = Some(when(p, calendar)?);
            return Ok(false);
        }
        "STATUS" if todo.status.is_none() => todo.status = Some(p.value.trim().to_ascii_uppercase()),
        "COMPLETED" if todo.completed.is_none() => todo.completed = Some(to_utc(when(p, calendar)?, p)?),
        "PERCENT-COMPLETE" if todo.percent_complete.is_none() => {
            todo.percent_complete = Some(number(p, 100)?)
        }
        "PRIORITY" if todo.priority.is_none() => todo.priority = Some(number(p, 9)?),
        "CATEGORIES" => todo.categories.extend(split_list(&p.value)),
        "RRULE" if todo.rrule.is_none() => todo.rrule = Some(p.value.clone()),
        "RELATED-TO" if parent && todo.parent_uid.is_none() => todo.parent_uid = Some(p.text()),
        _ => return Ok(false),
    }
    Ok(true)
}

fn number(p: &Property, max: u8) -> Result<u8, ReadError> {
    let value = p.value.trim();
    let n = value.parse::<u8>().ok().filter(|n| *n <= max);
    n.ok_or_else(|| invalid(format!("{}: {value:?} is not a number from 0 to {max}", p.name)))
}

/// A DATE (with VALUE=DATE, or 8 characters long) or a DATE-TIME: UTC, zoned or floating.
fn when(p: &Property, calendar: &Component) -> Result<When, ReadError> {
    let value = p.value.trim();
    let bad = || invalid(format!("{}: {value:?} is not a DATE or DATE-TIME", p.name));
    let digits = |text: &str| text.bytes().all(|b| b.is_ascii_digit());
    if p.param("VALUE").is_some_and(|v| v.eq_ignore_ascii_case("DATE")) || value.len() == 8 {
        if value.len() != 8 || !digits(value) {
            return Err(bad());
        }
        return NaiveDate::parse_from_str(value, "%Y%m%d").map(When::Date).map_err(|_| bad());
    }
    let (local, utc) = value.strip_suffix(['Z', 'z']).map_or((value, false), |v| (v, true));
    // chrono would take one-digit fields and signs: the shape is checked first.
    let shape = local.as_bytes();
    if shape.len() != 15 || shape[8] != b'T' || !digits(&local[..8]) || !digits(&local[9..]) {
        return Err(bad());
    }
    let at = NaiveDateTime::parse_from_str(local, "%Y%m%dT%H%M%S").map_err(|_| bad())?;
    match p.param("TZID") {
        _ if utc => Ok(When::Utc(at.and_utc())),
        Some(tzid) => Ok(When::Zoned(at, zone(tzid, calendar)?)),
        None => Ok(When::Floating(at)),
    }
}

/// A value meant to be UTC: a zoned one read in its zone, a floating one (or a date) as UTC.
fn to_utc(when: When, p: &Property) -> Result<DateTime<Utc>, ReadError> {
    match when {
        When::Utc(at) => Ok(at),
        When::Floating(at) => Ok(at.and_utc()),
        When::Date(day) => Ok(day.and_time(NaiveTime::MIN).and_utc()),
        When::Zoned(at, tz) => tz
            .from_local_datetime(&at)
            .earliest()
            .map(|at| at.with_timezone(&Utc))
            .ok_or_else(|| invalid(format!("{}: {at} does not exist in {tz}", p.name))),
    }
}

/// The IANA zone a TZID names: itself, or what the calendar's VTIMEZONE of that TZID says it
/// is (X-LIC-LOCATION, or a zone name after a vendor prefix such as `/mozilla.org/…/`).
fn zone(tzid: &str, calendar: &Component) -> Result<Tz, ReadError> {
    if let Ok(tz) = tzid.parse() {
        return Ok(tz);
    }
    let defined =
        |c: &&Component| c.name == "VTIMEZONE" && c.property("TZID").is_some_and(|p| p.value == tzid);
    let named = calendar.components.iter().find(defined).and_then(|vtimezone| {
        let location = vtimezone.property("X-LIC-LOCATION").and_then(|p| p.text().trim().parse().ok());
        location.or_else(|| tzid.match_indices('/').find_map(|(at, _)| tzid[at + 1..].parse().ok()))
    });
    named.ok_or_else(|| invalid(format!("TZID {tzid:?} names no known time zone")))
}

fn trigger(p: &Property, calendar: &Component) -> Result<Trigger, ReadError> {
    if p.param("VALUE").is_some_and(|v| v.eq_ignore_ascii_case("DATE-TIME")) {
        return Ok(Trigger::Absolute(to_utc(when(p, calendar)?, p)?));
    }
    let seconds = duration(p.value.trim())
        .ok_or_else(|| invalid(format!("TRIGGER: {:?} is not a DURATION", p.value)))?;
    let related_end = p.param("RELATED").is_some_and(|r| r.eq_ignore_ascii_case("END"));
    Ok(Trigger::Relative { seconds, related_end })
}

/// Seconds in a DURATION: a sign, `P`, then weeks or days, then `T` with hours, minutes, seconds.
fn duration(text: &str) -> Option<i64> {
    let (sign, rest) = match text.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, text.strip_prefix('+').unwrap_or(text)),
    };
    let (mut total, mut number, mut digits, mut units, mut in_time) = (0i64, 0i64, 0, 0, false);
    for c in rest.strip_prefix('P')?.chars() {
        let unit = match c {
            '0'..='9' => {
                number = number.checked_mul(10)?.checked_add(i64::from(c as u8 - b'0'))?;
                digits += 1;
                continue;
            }
            'T' if !in_time && digits == 0 => {
                in_time = true;
                continue;
            }
            'W' if !in_time => 604_800,
            'D' if !in_time => 86_400,
            'H' if in_time => 3600,
            'M' if in_time => 60,
            'S' if in_time => 1,
            _ => return None,
        };
        if digits == 0 {
            return None;
        }
        total = total.checked_add(number.checked_mul(unit)?)?;
        (number, digits, units) = (0, 0, units + 1);
    }
    (digits == 0 && units > 0).then_some(sign * total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crlf(text: &str) -> String {
        text.replace('\n', "\r\n")
    }

    fn read(text: &str) -> Result<Todo, ReadError> {
        todo(&parse(&crlf(text))?)
    }

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn local(text: &str) -> NaiveDateTime {
        text.parse().unwrap()
    }

    const APPLE: &str = "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//Apple Inc.//iOS 17.2//EN\nCALSCALE:GREGORIAN
BEGIN:VTODO\nCOMPLETED:20240116T081512Z\nCREATED:20240110T091233Z\nDTSTAMP:20240116T081512Z
DESCRIPTION:Leak under the sink\\, kitchen\\nAsk for a quote\nDUE;VALUE=DATE:20240115
LAST-MODIFIED:20240116T081512Z\nPERCENT-COMPLETE:100\nPRIORITY:1\nSEQUENCE:1\nSTATUS:COMPLETED
SUMMARY:Call the plumber\nUID:A1B2C3D4-E5F6-4789-ABCD-0123456789AB\nX-APPLE-SORT-ORDER:728554353
BEGIN:VALARM\nACTION:DISPLAY\nDESCRIPTION:Reminder\nTRIGGER;VALUE=DATE-TIME:20240115T080000Z
UID:F00DCAFE-1111\nX-WR-ALARMUID:F00DCAFE-1111\nEND:VALARM\nEND:VTODO\nEND:VCALENDAR\n";

    #[test]
    fn an_apple_reminders_todo_maps_its_fields_and_keeps_the_rest() {
        let todo = read(APPLE).unwrap();
        assert_eq!(todo.uid, "A1B2C3D4-E5F6-4789-ABCD-0123456789AB");
        assert_eq!(todo.summary.as_deref(), Some("Call the plumber"));
        assert_eq!(todo.description.as_deref(), Some("Leak under the sink, kitchen\nAsk for a quote"));
        assert_eq!(todo.due, Some(When::Date(NaiveDate::from_ymd_opt(2024, 1, 15).unwrap())));
        assert_eq!((todo.status.as_deref(), todo.percent_complete), (Some("COMPLETED"), Some(100)));
        assert_eq!((todo.completed, todo.priority), (Some(at("2024-01-16T08:15:12Z")), Some(1)));
        assert_eq!(todo.alarm, Some(Trigger::Absolute(at("2024-01-15T08:00:00Z"))));
        assert_eq!(todo.extra, ["X-APPLE-SORT-ORDER:728554353"]);
        assert!(todo.others.is_empty() && todo.categories.is_empty());
    }

    const TASKS_ORG: &str = "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:+//IDN tasks.org//android-130804//EN
BEGIN:VTODO\nDTSTAMP:20240301T120000Z\nUID:6423875627182936718\nSUMMARY:Water the plants
DTSTART;TZID=Europe/Berlin:20240304T080000\nDUE;TZID=Europe/Berlin:20240304T090000
RRULE:FREQ=WEEKLY;BYDAY=MO\nPRIORITY:5\nSTATUS:in-process\nPERCENT-COMPLETE:40
CATEGORIES:Home,Garden\nCATEGORIES:Weekly\\, routine\nRELATED-TO;RELTYPE=SIBLING:6423875627182936000
RELATED-TO:6423875627182936717\nX-APPLE-SORT-ORDER:1\nx-tasks-org;X-P=\"a;b\":Keep\\,me
BEGIN:VALARM\nTRIGGER;RELATED=END:-PT15M\nACTION:DISPLAY\nDESCRIPTION:Default\nEND:VALARM
BEGIN:VALARM\nTRIGGER:PT0S\nACTION:DISPLAY\nEND:VALARM\nEND:VTODO
BEGIN:VTODO\nUID:6423875627182936718\nRECURRENCE-ID;TZID=Europe/Berlin:20240311T090000\nSUMMARY:Moved
END:VTODO\nBEGIN:VTIMEZONE\nTZID:Europe/Berlin\nEND:VTIMEZONE\nEND:VCALENDAR\n";

    #[test]
    fn a_tasks_org_todo_has_a_parent_an_alarm_a_rule_and_two_category_lines() {
        let todo = read(TASKS_ORG).unwrap();
        let berlin = chrono_tz::Europe::Berlin;
        assert_eq!(todo.start, Some(When::Zoned(local("2024-03-04T08:00:00"), berlin)));
        assert_eq!(todo.due, Some(When::Zoned(local("2024-03-04T09:00:00"), berlin)));
        assert_eq!(todo.rrule.as_deref(), Some("FREQ=WEEKLY;BYDAY=MO"));
        assert_eq!((todo.priority, todo.status.as_deref()), (Some(5), Some("IN-PROCESS")));
        assert_eq!(todo.categories, ["Home", "Garden", "Weekly, routine"]);
        assert_eq!(todo.parent_uid.as_deref(), Some("6423875627182936717"));
        assert_eq!(todo.alarm, Some(Trigger::Relative { seconds: -900, related_end: true }));
        let extra = [
            "DTSTART;TZID=Europe/Berlin:20240304T080000",
            "RELATED-TO;RELTYPE=SIBLING:6423875627182936000",
            "X-APPLE-SORT-ORDER:1",
            "x-tasks-org;X-P=\"a;b\":Keep\\,me",
            "BEGIN:VALARM",
            "TRIGGER:PT0S",
            "ACTION:DISPLAY",
            "END:VALARM",
        ];
        assert_eq!(todo.extra, extra);
        assert_eq!(todo.others[0], "BEGIN:VTODO");
        assert_eq!(todo.others[2], "RECURRENCE-ID;TZID=Europe/Berlin:20240311T090000");
        assert_eq!(todo.others.len(), 5);
    }

    const THUNDERBIRD: &str = "BEGIN:VCALENDAR\nPRODID:-//Mozilla.org/NONSGML Mozilla Calendar V1.1//EN
VERSION:2.0\nBEGIN:VTIMEZONE\nTZID:/mozilla.org/20050126_1/Europe/Paris\nBEGIN:STANDARD
TZOFFSETFROM:+0200\nTZOFFSETTO:+0100\nTZNAME:CET\nDTSTART:19701025T030000
RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10\nEND:STANDARD\nEND:VTIMEZONE\nBEGIN:VTODO
UID:2b4c6e1a-5d0b-4f7e-9c3a-1e2f3a4b5c6d\nSUMMARY:Renew passport\nSTATUS:NEEDS-ACTION
DUE;TZID=/mozilla.org/20050126_1/Europe/Paris:20240520T170000
COMPLETED;TZID=/mozilla.org/20050126_1/Europe/Paris:20240519T120000\nX-MOZ-GENERATION:2
END:VTODO\nEND:VCALENDAR\n";

    #[test]
    fn a_thunderbird_tzid_resolves_through_its_vtimezone() {
        let todo = read(THUNDERBIRD).unwrap();
        let paris = chrono_tz::Europe::Paris;
        assert_eq!(todo.due, Some(When::Zoned(local("2024-05-20T17:00:00"), paris)));
        assert_eq!(todo.completed, Some(at("2024-05-19T10:00:00Z")));
        assert_eq!(todo.extra, ["X-MOZ-GENERATION:2"]);
        let licensed = THUNDERBIRD.replace("BEGIN:STANDARD", "X-LIC-LOCATION:Europe/Paris\nBEGIN:STANDARD");
        let windows = licensed.replace("/mozilla.org/20050126_1/Europe/Paris", "W. Europe");
        assert_eq!(read(&windows).unwrap().due, todo.due);
        let unknown = THUNDERBIRD.replace("/mozilla.org/20050126_1/Europe/Paris", "Mars/Olympus");
        assert!(matches!(read(&unknown), Err(ReadError::Invalid(m)) if m.contains("Mars/Olympus")));
    }

    #[test]
    fn folded_lines_unfold_even_inside_a_multibyte_character() {
        let summary = "SUMMARY:Café 日本語 🎉".as_bytes();
        // Fold inside "日" (3 octets) and, with a tab, inside "🎉" (4 octets).
        let (split_a, split_b) = (summary.len() - 11, summary.len() - 2);
        let mut body = b"BEGIN:VCALENDAR\r\nBEGIN:VTODO\r\nUID:u\r\n".to_vec();
        body.extend(
            [&summary[..split_a], b"\r\n ", &summary[split_a..split_b], b"\r\n\t", &summary[split_b..]]
                .concat(),
        );
        body.extend(b"\r\nEND:VTODO\r\nEND:VCALENDAR\r\n");
        let todo = todo(&parse_bytes(&body).unwrap()).unwrap();
        assert_eq!(todo.summary.as_deref(), Some("Café 日本語 🎉"));
    }

    #[test]
    fn text_escapes_are_undone_and_parameters_unquoted() {
        let p = parse_line(r#"x-a;Lang=en;X-Q="a:b;c",d:one\, two\; \\three\Nfour\n"#.into()).unwrap();
        assert_eq!((p.name.as_str(), p.param("LANG"), p.param("x-q")), ("X-A", Some("en"), Some("a:b;c,d")));
        assert_eq!(p.value, r"one\, two\; \\three\Nfour\n");
        assert_eq!(p.text(), "one, two; \\three\nfour\n");
        assert_eq!(split_list(r"a\,b,c\\,,d"), ["a,b", "c\\", "d"]);
    }

    #[test]
    fn bare_lf_and_a_bom_are_accepted() {
        let bare = format!("\u{feff}{}", APPLE.replace("\r\n", "\n"));
        assert_eq!(todo(&parse(&bare).unwrap()), read(APPLE));
    }

    #[test]
    fn the_bounds_hold() {
        let wrap = |body: String| format!("BEGIN:VCALENDAR\r\n{body}END:VCALENDAR\r\n");
        let too_big = wrap(format!("X-A:{}\r\n", "x".repeat(MAX_OCTETS)));
        assert!(matches!(parse(&too_big), Err(ReadError::Invalid(m)) if m.contains("octets")));
        let long_line = wrap(format!("X-A:v\r\n{}", format!(" {}\r\n", "x".repeat(1000)).repeat(66)));
        assert!(matches!(parse(&long_line), Err(ReadError::Invalid(m)) if m.contains("line 2")));
        assert!(parse(&wrap("X-A:b\r\n".repeat(MAX_LINES - 2))).is_ok());
        assert!(
            matches!(parse(&wrap("X-A:b\r\n".repeat(MAX_LINES - 1))), Err(ReadError::Invalid(m)) if m.contains("lines"))
        );
        let nest =
            |depth: usize| wrap(format!("{}{}", "BEGIN:X\r\n".repeat(depth), "END:X\r\n".repeat(depth)));
        assert!(parse(&nest(3)).is_ok());
        assert!(matches!(parse(&nest(4)), Err(ReadError::Invalid(m)) if m.contains("line 5")));
    }

    #[test]
    fn a_vevent_or_no_vtodo_is_unsupported() {
        let event = APPLE.replace("VTODO", "VEVENT");
        assert!(matches!(read(&event), Err(ReadError::Unsupported(_))));
        assert!(matches!(read("BEGIN:VCALENDAR\nEND:VCALENDAR\n"), Err(ReadError::Unsupported(_))));
    }

    #[test]
    fn two_uids_or_none_are_not_one_object() {
        let two = TASKS_ORG.replace("UID:6423875627182936718\nRECURRENCE-ID", "UID:other\nRECURRENCE-ID");
        assert!(matches!(read(&two), Err(ReadError::NotOneObject(m)) if m.contains("other")));
        let none = APPLE.replace("UID:A1B2C3D4-E5F6-4789-ABCD-0123456789AB\n", "");
        assert!(matches!(read(&none), Err(ReadError::NotOneObject(_))));
    }

    #[test]
    fn bad_values_are_invalid() {
        assert!(matches!(
            read(&THUNDERBIRD.replace("20240520T170000", "2024052é170000")),
            Err(ReadError::Invalid(_))
        ));
        for (from, to) in [
            ("PRIORITY:1", "PRIORITY:10"),
            ("PRIORITY:1", "PRIORITY:-1"),
            ("20240115\n", "2024011\n"),
            ("20240115\n", "2024011é\n"),
        ] {
            assert!(matches!(read(&APPLE.replace(from, to)), Err(ReadError::Invalid(_))), "{to}");
        }
        assert!(matches!(parse("<html>hello</html>"), Err(ReadError::Invalid(m)) if m.contains("line 1")));
        assert!(matches!(parse(""), Err(ReadError::Invalid(_))));
    }

    #[test]
    fn durations_are_read_as_seconds() {
        let cases =
            [("-PT15M", -900), ("P1D", 86_400), ("-P1DT2H", -93_600), ("P2W", 1_209_600), ("PT0S", 0)];
        for (text, seconds) in cases {
            assert_eq!(duration(text), Some(seconds), "{text}");
        }
        for text in ["", "P", "PT", "P1M", "PT1D", "P1H", "-", "1D", "P99999999999999999999D", "PT5"] {
            assert_eq!(duration(text), None, "{text}");
        }
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        let inputs = [
            "BEGIN:VCALENDAR\nBEGIN:VTODO\nUID:a\n",
            "END:VTODO\n",
            "BEGIN:VCALENDAR\nEND:VTODO\n",
            "BEGIN:VCALENDAR\nno colon here\nEND:VCALENDAR\n",
            "BEGIN:VCALENDAR\nX-A;P=\"a:b\nEND:VCALENDAR\n",
            "BEGIN:VCALENDAR\nX-A;=v:w\nEND:VCALENDAR\n",
            " leading fold\n",
            "BEGIN:VCALENDAR\nEND:VCALENDAR\nBEGIN:VCALENDAR\n",
            "BEGIN:VTODO\nEND:VTODO\n",
            ":\n;\n\u{0}\n",
        ];
        for input in inputs {
            assert!(matches!(parse(input), Err(ReadError::Invalid(_))), "{input:?}");
        }
        let quoted = parse("BEGIN:VCALENDAR\nX-A;P=\"a:b\":v\nEND:VCALENDAR\n").unwrap();
        assert_eq!(
            (quoted.properties[0].param("P"), quoted.properties[0].value.as_str()),
            (Some("a:b"), "v")
        );
        let bad_trigger = APPLE.replace("TRIGGER;VALUE=DATE-TIME:20240115T080000Z", "TRIGGER:soon");
        let todo = read(&bad_trigger).unwrap();
        assert_eq!((todo.alarm, todo.extra.len()), (None, 8));
    }
}
