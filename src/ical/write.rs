//! RFC 5545 content lines: text escaping (§3.3.11), parameter quoting (§3.2), line folding at
//! 75 octets without splitting a UTF-8 character (§3.1), CRLF line ends.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

/// Longest content line, in octets, before the CRLF.
const MAX_OCTETS: usize = 75;

/// Writes one iCalendar object into a string, a content line at a time.
#[derive(Debug, Default)]
pub struct Writer {
    out: String,
}

impl Writer {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn begin(&mut self, component: &str) {
        self.line("BEGIN", &[], component);
    }

    pub fn end(&mut self, component: &str) {
        self.line("END", &[], component);
    }

    /// A property whose value is already in its wire form (a date, a number, an RRULE).
    pub fn raw(&mut self, name: &str, value: &str) {
        self.line(name, &[], value);
    }

    /// A property with parameters, the value in its wire form.
    pub fn with_params(&mut self, name: &str, params: &[(&str, &str)], value: &str) {
        self.line(name, params, value);
    }

    /// A TEXT property: the value is escaped.
    pub fn text(&mut self, name: &str, value: &str) {
        self.line(name, &[], &escape_text(value));
    }

    /// A multi-valued TEXT property such as CATEGORIES: each value escaped, commas between.
    pub fn text_list(&mut self, name: &str, values: &[String]) {
        let joined: Vec<String> = values.iter().map(|v| escape_text(v)).collect();
        self.line(name, &[], &joined.join(","));
    }

    /// A content line kept as a client sent it (unfolded), folded again for the wire.
    pub fn kept(&mut self, line: &str) {
        fold_into(&mut self.out, line);
    }

    /// A UTC DATE-TIME (`…Z`).
    pub fn utc(&mut self, name: &str, at: DateTime<Utc>) {
        self.line(name, &[], &utc_value(at));
    }

    pub fn finish(self) -> String {
        self.out
    }

    pub fn len(&self) -> usize {
        self.out.len()
    }

    pub fn is_empty(&self) -> bool {
        self.out.is_empty()
    }

    fn line(&mut self, name: &str, params: &[(&str, &str)], value: &str) {
        let mut line = String::with_capacity(name.len() + value.len() + 16);
        line.push_str(name);
        for (key, param) in params {
            line.push(';');
            line.push_str(key);
            line.push('=');
            line.push_str(&param_value(param));
        }
        line.push(':');
        line.push_str(value);
        fold_into(&mut self.out, &line);
    }
}

/// TEXT escaping: backslash, semicolon, comma, and line breaks as `\n` (a CR or CRLF is one
/// break). Other control characters cannot appear in a content line and are dropped.
pub fn escape_text(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push_str("\\n");
            }
            '\n' => out.push_str("\\n"),
            '\t' => out.push('\t'),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// A parameter value: quoted when it holds `:`, `;` or `,`; double quotes and control
/// characters cannot be represented and are dropped.
pub fn param_value(value: &str) -> String {
    let clean: String = value.chars().filter(|c| *c != '"' && !c.is_control()).collect();
    if clean.contains([':', ';', ',']) { format!("\"{clean}\"") } else { clean }
}

/// Appends `line` folded into pieces of at most 75 octets, each continuation starting with a
/// space (which counts), never splitting a character, each piece ending in CRLF.
pub fn fold_into(out: &mut String, line: &str) {
    let mut budget = MAX_OCTETS;
    let mut used = 0;
    for c in line.chars() {
        let len = c.len_utf8();
        if used + len > budget {
            out.push_str("\r\n ");
            // The leading space takes one of the next line's octets.
            budget = MAX_OCTETS - 1;
            used = 0;
        }
        out.push(c);
        used += len;
    }
    out.push_str("\r\n");
}

pub fn utc_value(at: DateTime<Utc>) -> String {
    at.format("%Y%m%dT%H%M%SZ").to_string()
}

/// A floating or TZID-qualified local DATE-TIME.
pub fn local_value(at: NaiveDateTime) -> String {
    at.format("%Y%m%dT%H%M%S").to_string()
}

pub fn date_value(day: NaiveDate) -> String {
    day.format("%Y%m%d").to_string()
}

/// A DURATION such as `-PT15M` or `P1DT2H` (seconds are kept; weeks are not used).
pub fn duration_value(seconds: i64) -> String {
    let sign = if seconds < 0 { "-" } else { "" };
    let mut rest = seconds.unsigned_abs();
    let days = rest / 86_400;
    rest %= 86_400;
    let (hours, minutes, secs) = (rest / 3600, rest % 3600 / 60, rest % 60);
    let mut out = format!("{sign}P");
    if days > 0 {
        out.push_str(&format!("{days}D"));
    }
    // dur-time is H[M[S]], M[S] or S: a later unit needs every one between.
    let time = match (hours, minutes, secs) {
        (0, 0, 0) if days > 0 => String::new(),
        (0, 0, s) => format!("T{s}S"),
        (0, m, 0) => format!("T{m}M"),
        (0, m, s) => format!("T{m}M{s}S"),
        (h, 0, 0) => format!("T{h}H"),
        (h, m, 0) => format!("T{h}H{m}M"),
        (h, m, s) => format!("T{h}H{m}M{s}S"),
    };
    out.push_str(&time);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_escapes_backslash_semicolon_comma_and_line_breaks() {
        assert_eq!(escape_text("a\\b;c,d\ne\r\nf\rg"), "a\\\\b\\;c\\,d\\ne\\nf\\ng");
        assert_eq!(escape_text("tab\there\u{0}"), "tab\there");
        assert_eq!(escape_text("BEGIN:VEVENT"), "BEGIN:VEVENT");
    }

    #[test]
    fn parameters_with_separators_are_quoted_and_quotes_dropped() {
        assert_eq!(param_value("Europe/Paris"), "Europe/Paris");
        assert_eq!(param_value("a:b"), "\"a:b\"");
        assert_eq!(param_value("say \"hi\";"), "\"say hi;\"");
    }

    #[test]
    fn long_lines_fold_at_75_octets_with_a_leading_space() {
        let mut out = String::new();
        fold_into(&mut out, &format!("SUMMARY:{}", "x".repeat(200)));
        let lines: Vec<&str> = out.split("\r\n").filter(|l| !l.is_empty()).collect();
        assert!(lines.iter().all(|l| l.len() <= 75), "{lines:?}");
        assert_eq!(lines[0].len(), 75);
        assert!(lines[1..].iter().all(|l| l.starts_with(' ')));
        let unfolded = out.replace("\r\n ", "");
        assert_eq!(unfolded, format!("SUMMARY:{}\r\n", "x".repeat(200)));
    }

    #[test]
    fn folding_never_splits_a_multibyte_character() {
        for text in
            ["é".repeat(100), "日本語のタスク".repeat(20), "🎉".repeat(50), format!("a{}", "€".repeat(60))]
        {
            let mut out = String::new();
            fold_into(&mut out, &format!("SUMMARY:{text}"));
            for line in out.split("\r\n") {
                assert!(line.len() <= 75, "{} octets: {line}", line.len());
            }
            // Each piece is valid UTF-8 by construction (a &str); unfolding restores the text.
            assert_eq!(out.replace("\r\n ", ""), format!("SUMMARY:{text}\r\n"));
        }
    }

    #[test]
    fn every_line_ends_in_crlf() {
        let mut w = Writer::new();
        w.begin("VCALENDAR");
        w.text("X-WR-CALNAME", "Tasks, mine");
        w.end("VCALENDAR");
        let out = w.finish();
        assert_eq!(out, "BEGIN:VCALENDAR\r\nX-WR-CALNAME:Tasks\\, mine\r\nEND:VCALENDAR\r\n");
        assert!(!out.replace("\r\n", "").contains('\n'));
    }

    #[test]
    fn durations_are_rfc_5545() {
        assert_eq!(duration_value(-900), "-PT15M");
        assert_eq!(duration_value(3600), "PT1H");
        assert_eq!(duration_value(0), "PT0S");
        assert_eq!(duration_value(-(86_400 + 7200 + 30)), "-P1DT2H0M30S");
        assert_eq!(duration_value(86_400), "P1D");
    }
}
