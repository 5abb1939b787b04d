//! Reading iCalendar (RFC 5545), the inverse of `write`: `parse` unfolds content lines and
//! splits them into names, parameters and values, within size bounds; `todo` picks out the one
//! to-do a CalDAV PUT carries, keeping everything the service does not model as it was sent.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

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

fn read_vtodo(vtodo: &Component, calendar: &Component) -> Result<Todo, ReadError> {
    let uid = vtodo.property("UID").map(Property::text).unwrap_or_default();
    let mut todo = Todo { uid, ..Todo::default() };
    for property in &vtodo.properties {
        let owned = SERVER_OWNED.contains(&property.name.as_str());
        if !owned && !map_property(&mut todo, property, calendar)? {
            todo.extra.push(property.line.clone());
        }
    }
    for child in &vtodo.components {
        if todo.alarm.is_none() && child.name == "VALARM" {
            todo.alarm = child.property("TRIGGER").and_then(|p| trigger(p, calendar).ok());
            if todo.alarm.is_some() {
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
    if p.param("VALUE").is_some_and(|v| v.eq_ignore_ascii_case("DATE")) || value.len() == 8 {
        return NaiveDate::parse_from_str(value, "%Y%m%d").map(When::Date).map_err(|_| bad());
    }
    let (local, utc) = value.strip_suffix(['Z', 'z']).map_or((value, false), |v| (v, true));
    if local.len() != 15 {
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
