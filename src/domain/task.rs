//! The rules a task's fields obey. Each type is built only through `parse`.

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use rrule::{Frequency, NWeekday, RRule, Unvalidated};
use serde::{Deserialize, Serialize};

use super::{Invalid, TaskFields};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Title(String);

impl Title {
    pub const MAX_CHARS: usize = 200;

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let title = raw.trim();
        match title.chars().count() {
            0 => Err(Invalid::new("title", "must not be blank")),
            n if n > Self::MAX_CHARS => Err(Invalid::new(
                "title",
                format!("must be at most {} characters after trimming", Self::MAX_CHARS),
            )),
            _ if title.chars().any(char::is_control) => {
                Err(Invalid::new("title", "must not contain control characters"))
            }
            _ => Ok(Self(title.to_owned())),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description(String);

impl Description {
    pub const MAX_CHARS: usize = 2000;

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        if raw.chars().count() > Self::MAX_CHARS {
            return Err(Invalid::new(
                "description",
                format!("must be at most {} characters", Self::MAX_CHARS),
            ));
        }
        // Line breaks and tabs are text; other control characters (NUL above all) are not.
        if raw.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
            return Err(Invalid::new("description", "must not contain control characters"));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "web", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    Low,
    #[default]
    Medium,
    High,
}

impl Priority {
    /// Accepts any case: `HIGH`, `High` and `high` are the same.
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "low" => Ok(Self::Low),
            "medium" => Ok(Self::Medium),
            "high" => Ok(Self::High),
            _ => Err(Invalid::new("priority", "must be one of low, medium, high")),
        }
    }

    /// The stored rank: higher is more urgent.
    pub fn rank(self) -> i16 {
        match self {
            Self::Low => 1,
            Self::Medium => 2,
            Self::High => 3,
        }
    }

    pub fn from_rank(rank: i16) -> Self {
        match rank {
            ..=1 => Self::Low,
            2 => Self::Medium,
            _ => Self::High,
        }
    }
}

/// De-duplicated, case-folded tags, in the order first given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tags(Vec<String>);

impl Tags {
    pub const MAX_COUNT: usize = 20;
    pub const MAX_CHARS: usize = 50;

    pub fn parse(raw: &[String]) -> Result<Self, Invalid> {
        let mut tags: Vec<String> = Vec::with_capacity(raw.len());
        for tag in raw {
            let tag = tag.trim().to_lowercase();
            let chars = tag.chars().count();
            if chars == 0 || chars > Self::MAX_CHARS {
                return Err(Invalid::new(
                    "tags",
                    format!("each tag must be 1–{} characters", Self::MAX_CHARS),
                ));
            }
            if tag.chars().any(char::is_control) {
                return Err(Invalid::new("tags", "tags must not contain control characters"));
            }
            if !tags.contains(&tag) {
                tags.push(tag);
            }
        }
        if tags.len() > Self::MAX_COUNT {
            return Err(Invalid::new("tags", format!("at most {} distinct tags", Self::MAX_COUNT)));
        }
        Ok(Self(tags))
    }

    pub fn as_slice(&self) -> &[String] {
        &self.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "web", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum RecurrenceAnchor {
    /// The next occurrence follows the previous due date.
    #[default]
    Due,
    /// The next occurrence follows the moment of completion.
    Completion,
}

impl RecurrenceAnchor {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "due" => Ok(Self::Due),
            "completion" => Ok(Self::Completion),
            _ => Err(Invalid::new("recurrence_anchor", "must be due or completion")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Due => "due",
            Self::Completion => "completion",
        }
    }
}

/// An RFC 5545 RRULE body such as `FREQ=WEEKLY;BYDAY=MO,WE,FR`, stored as given minus any
/// `RRULE:` prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecurrenceRule(String);

impl RecurrenceRule {
    /// Real rules are a few dozen characters; the bound keeps every list answer that echoes
    /// the rule, and the parser's work, small. The database checks it too.
    pub const MAX_CHARS: usize = 500;

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let body = raw.trim();
        if body.chars().count() > Self::MAX_CHARS {
            return Err(Invalid::new(
                "recurrence_rule",
                format!("must be at most {} characters", Self::MAX_CHARS),
            ));
        }
        if body.chars().any(char::is_control) {
            return Err(Invalid::new("recurrence_rule", "must not contain control characters"));
        }
        let body = body.strip_prefix("RRULE:").or_else(|| body.strip_prefix("rrule:")).unwrap_or(body);
        let rule: RRule<Unvalidated> = body.parse().map_err(|e| invalid_rule(&e))?;
        rfc5545(&rule).map_err(|message| Invalid::new("recurrence_rule", message))?;
        Ok(Self(body.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The rules RFC 5545 sets on how RRULE parts combine, which the rrule crate lets through or
/// silently ignores, and this product's own: a series fires at most once an hour, after the
/// expansion too.
fn rfc5545(rule: &RRule<Unvalidated>) -> Result<(), String> {
    let freq = rule.get_freq();
    // Sub-hourly series would spawn a task a minute; no todo list wants that.
    if matches!(freq, Frequency::Secondly | Frequency::Minutely) {
        return Err("FREQ must be HOURLY or slower".into());
    }
    // Several minutes or seconds would put occurrences less than an hour apart, whatever FREQ.
    if rule.get_by_minute().len() > 1 || rule.get_by_second().len() > 1 {
        return Err(
            "BYMINUTE and BYSECOND take one value each: occurrences must be at least an hour apart".into()
        );
    }
    let numbered_day = rule.get_by_weekday().iter().any(|day| matches!(day, NWeekday::Nth(..)));
    if numbered_day && !matches!(freq, Frequency::Monthly | Frequency::Yearly) {
        return Err("a numbered BYDAY (such as +1MO) needs FREQ=MONTHLY or FREQ=YEARLY".into());
    }
    if numbered_day && freq == Frequency::Yearly && !rule.get_by_week_no().is_empty() {
        return Err("a numbered BYDAY cannot be combined with BYWEEKNO".into());
    }
    if !rule.get_by_week_no().is_empty() && freq != Frequency::Yearly {
        return Err("BYWEEKNO needs FREQ=YEARLY".into());
    }
    if !rule.get_by_year_day().is_empty()
        && matches!(freq, Frequency::Daily | Frequency::Weekly | Frequency::Monthly)
    {
        return Err("BYYEARDAY cannot be used with FREQ=DAILY, WEEKLY or MONTHLY".into());
    }
    if !rule.get_by_month_day().is_empty() && freq == Frequency::Weekly {
        return Err("BYMONTHDAY cannot be used with FREQ=WEEKLY".into());
    }
    match (rule.get_count(), rule.get_until()) {
        (Some(0), _) => Err("COUNT must be at least 1".into()),
        (Some(_), Some(_)) => Err("COUNT and UNTIL cannot both be given".into()),
        _ => Ok(()),
    }
}

/// The span of times a task may carry: 1900-01-01 to 9999-12-31 in UTC. Earlier dates are of no
/// use to a todo list (and cost rule stepping dearly); later ones cannot be written in RFC 3339,
/// so the API could not return them in a form it accepts back.
pub fn check_instant(field: &'static str, at: DateTime<Utc>) -> Result<DateTime<Utc>, Invalid> {
    let earliest =
        NaiveDate::from_ymd_opt(1900, 1, 1).and_then(|d| d.and_hms_opt(0, 0, 0)).map(|d| d.and_utc());
    if earliest.is_some_and(|earliest| at < earliest) || at > super::recurrence::latest_instant() {
        return Err(Invalid::new(field, "must be between 1900-01-01T00:00:00Z and 9999-12-31T23:59:59Z"));
    }
    Ok(at)
}

fn invalid_rule(err: &impl fmt::Display) -> Invalid {
    Invalid::new("recurrence_rule", format!("not a valid RFC 5545 RRULE: {err}"))
}

/// Whether a reminder after the due time is accepted. A client may not set one (it is almost
/// always a mistake), but a snooze from the reminder email may move the reminder past the due
/// time, and a task so snoozed must stay editable while it keeps that reminder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LateReminder {
    Refused,
    Allowed,
}

impl TaskFields {
    /// The rules that span fields, checked after a patch is merged so the answer names the field.
    pub fn check(&self) -> Result<(), Vec<Invalid>> {
        self.check_with(LateReminder::Refused)
    }

    /// [`check`](Self::check), with the reminder-after-due rule as `late` says.
    pub fn check_with(&self, late: LateReminder) -> Result<(), Vec<Invalid>> {
        let mut errors = Vec::new();
        if let (Some(reminder), Some(due)) = (self.reminder_at, self.due_at)
            && reminder > due
            && late == LateReminder::Refused
        {
            errors.push(Invalid::new("reminder_at", "must not be after due_at"));
        }
        // Whether the rule goes on from this due date is the stepper's to say (a command runs it
        // off the async threads): it is the one part of checking a task that costs real work.
        if self.recurrence_rule.is_some() && self.due_at.is_none() {
            errors.push(Invalid::new("recurrence_rule", "needs due_at"));
        }
        if self.recurrence_rule.is_some() && self.parent_id.is_some() {
            errors.push(Invalid::new("recurrence_rule", "a subtask cannot recur"));
        }
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::TimeZone;

    #[test]
    fn titles_are_trimmed_and_bounded() {
        assert_eq!(Title::parse("  Buy milk ").unwrap().as_str(), "Buy milk");
        assert!(Title::parse(" \t ").is_err());
        assert!(Title::parse(&"é".repeat(200)).is_ok());
        assert!(Title::parse(&"é".repeat(201)).is_err());
        assert!(Title::parse("a\u{0}b").is_err());
        assert!(Description::parse("line one\nline two\ttab").is_ok());
        assert!(Description::parse("nul\u{0}").is_err());
        assert!(Tags::parse(&["a\u{0}".into()]).is_err());
    }

    #[test]
    fn priority_accepts_any_case() {
        assert_eq!(Priority::parse("HIGH").unwrap(), Priority::High);
        assert_eq!(Priority::parse("Low").unwrap(), Priority::Low);
        assert!(Priority::parse("urgent").is_err());
        assert_eq!(Priority::from_rank(Priority::High.rank()), Priority::High);
    }

    #[test]
    fn tags_are_folded_deduplicated_and_limited() {
        let tags = Tags::parse(&["Home".into(), "home".into(), " Errands ".into()]).unwrap();
        assert_eq!(tags.as_slice(), ["home", "errands"]);
        assert!(Tags::parse(&["".into()]).is_err());
        assert!(Tags::parse(&["x".repeat(51)]).is_err());
        let many: Vec<String> = (0..21).map(|i| format!("t{i}")).collect();
        assert!(Tags::parse(&many).is_err());
        let dupes: Vec<String> = (0..40).map(|i| format!("T{}", i % 20)).collect();
        assert_eq!(Tags::parse(&dupes).unwrap().as_slice().len(), 20, "the limit counts distinct tags");
    }

    #[test]
    fn recurrence_rules_parse_with_or_without_prefix() {
        assert_eq!(
            RecurrenceRule::parse("FREQ=WEEKLY;BYDAY=MO,WE,FR").unwrap().as_str(),
            "FREQ=WEEKLY;BYDAY=MO,WE,FR"
        );
        assert_eq!(RecurrenceRule::parse("RRULE:FREQ=DAILY;COUNT=3").unwrap().as_str(), "FREQ=DAILY;COUNT=3");
        for bad in ["", "FREQ=SOMETIMES", "BYDAY=MO", "FREQ=MINUTELY", "FREQ=DAILY;INTERVAL=x"] {
            assert!(RecurrenceRule::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn rules_rfc_5545_forbids_or_that_fire_more_than_hourly_are_refused() {
        let every_minute =
            format!("FREQ=HOURLY;BYMINUTE={}", (0..60).map(|m| m.to_string()).collect::<Vec<_>>().join(","));
        let every_second = format!(
            "FREQ=DAILY;BYHOUR=9;BYMINUTE=0;BYSECOND={}",
            (0..60).map(|m| m.to_string()).collect::<Vec<_>>().join(",")
        );
        for bad in [
            every_minute.as_str(),
            every_second.as_str(),
            "FREQ=HOURLY;BYMINUTE=0,30",
            "FREQ=DAILY;BYDAY=+1MO",
            "FREQ=WEEKLY;BYDAY=+1MO",
            "FREQ=YEARLY;BYWEEKNO=1;BYDAY=+1MO",
            "FREQ=DAILY;COUNT=0",
            "FREQ=DAILY;COUNT=3;UNTIL=20271201T000000Z",
            "FREQ=MONTHLY;BYWEEKNO=3",
            "FREQ=MONTHLY;BYYEARDAY=100",
            "FREQ=WEEKLY;BYMONTHDAY=1",
        ] {
            let err = RecurrenceRule::parse(bad).expect_err(bad);
            assert_eq!(err.field, "recurrence_rule", "{bad}");
        }
        for good in [
            "FREQ=MONTHLY;BYDAY=+1MO",
            "FREQ=YEARLY;BYMONTH=11;BYDAY=4TH",
            "FREQ=MONTHLY;BYDAY=-1FR",
            "FREQ=HOURLY;BYMINUTE=15",
            "FREQ=DAILY;BYHOUR=9,17;BYMINUTE=0;BYSECOND=0",
            "FREQ=DAILY;COUNT=1",
            "FREQ=DAILY;UNTIL=20271201T000000Z",
        ] {
            assert!(RecurrenceRule::parse(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn times_outside_1900_to_9999_are_refused_naming_the_field() {
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        assert!(check_instant("due_at", at("1900-01-01T00:00:00Z")).is_ok());
        assert!(check_instant("due_at", at("9999-12-31T23:59:59Z")).is_ok());
        assert_eq!(check_instant("due_at", at("1899-12-31T23:59:59Z")).unwrap_err().field, "due_at");
        assert_eq!(
            check_instant("reminder_at", at("9999-12-31T23:59:59-23:59")).unwrap_err().field,
            "reminder_at"
        );
        assert!(check_instant("due_at", at("0000-01-01T00:00:00+01:00")).is_err());
    }

    #[test]
    fn cross_field_rules_name_the_field() {
        let due: DateTime<Utc> = "2026-12-01T09:00:00Z".parse().unwrap();
        let mut fields = TaskFields {
            title: Title::parse("t").unwrap(),
            description: None,
            completed: false,
            priority: Priority::Medium,
            tags: Tags::default(),
            due_at: Some(due),
            timezone: TimeZone::UTC,
            reminder_at: Some(due + chrono::Duration::minutes(1)),
            recurrence_rule: None,
            recurrence_anchor: RecurrenceAnchor::Due,
            project_id: None,
            parent_id: None,
            position: None,
        };
        assert_eq!(fields.check().unwrap_err()[0].field, "reminder_at");
        assert!(fields.check_with(LateReminder::Allowed).is_ok(), "a snooze may pass the due time");
        fields.reminder_at = Some(due);
        assert!(fields.check().is_ok(), "a reminder at the due time is allowed");
        fields.due_at = None;
        fields.recurrence_rule = Some(RecurrenceRule::parse("FREQ=DAILY").unwrap());
        assert_eq!(fields.check().unwrap_err()[0].field, "recurrence_rule");
    }
}
