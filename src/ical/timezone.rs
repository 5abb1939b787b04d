//! VTIMEZONE components generated from the tz database (chrono-tz): one observance per offset
//! change within the span the calendar uses, so a client needs no tz data of its own and
//! agrees with the server about every wall time in that span.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Offset, TimeZone, Utc};
use chrono_tz::{OffsetComponents, OffsetName, Tz};

use super::write::{Writer, local_value};

/// The longest span one VTIMEZONE covers; uses outside it fall back to the nearest observance.
const MAX_SPAN_DAYS: i64 = 366 * 10;

/// The instants each time zone of a calendar is used at, to know which changes to describe.
#[derive(Debug, Default)]
pub struct ZoneSpans {
    spans: BTreeMap<&'static str, (Tz, DateTime<Utc>, DateTime<Utc>)>,
}

impl ZoneSpans {
    pub fn new() -> Self {
        Self::default()
    }

    /// Notes that `tz` is used at `at`. UTC needs no VTIMEZONE (its times are written `…Z`).
    pub fn note(&mut self, tz: Tz, at: DateTime<Utc>) {
        if needs_no_vtimezone(tz) {
            return;
        }
        let entry = self.spans.entry(tz.name()).or_insert((tz, at, at));
        entry.1 = entry.1.min(at);
        entry.2 = entry.2.max(at);
    }

    /// One VTIMEZONE per zone noted, in name order.
    pub fn write(&self, w: &mut Writer) {
        for (tz, from, to) in self.spans.values() {
            write_vtimezone(w, *tz, *from, *to);
        }
    }
}

/// Zones written as UTC `…Z` times rather than with a TZID.
pub fn needs_no_vtimezone(tz: Tz) -> bool {
    matches!(
        tz,
        Tz::UTC
            | Tz::Etc__UTC
            | Tz::Etc__UCT
            | Tz::Etc__Universal
            | Tz::Etc__Zulu
            | Tz::UCT
            | Tz::Universal
            | Tz::Zulu
    )
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Observance {
    /// When it starts (UTC).
    at: DateTime<Utc>,
    from: i32,
    to: i32,
    dst: bool,
    name: Option<String>,
}

fn offset_at(tz: Tz, at: DateTime<Utc>) -> (i32, bool, Option<String>) {
    let offset = tz.offset_from_utc_datetime(&at.naive_utc());
    let dst = !offset.dst_offset().is_zero();
    (offset.fix().local_minus_utc(), dst, offset.abbreviation().map(str::to_owned))
}

/// The offset changes between `from` and `to` (a day's margin either side), found by sampling
/// each day and bisecting to the second; the first entry is the observance in force at the start.
fn observances(tz: Tz, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Observance> {
    // Whole seconds, so every instant below is one.
    let start = DateTime::from_timestamp(from.timestamp(), 0).unwrap_or(from) - Duration::days(1);
    let end = (to + Duration::days(1)).min(start + Duration::days(MAX_SPAN_DAYS));
    let (offset, dst, name) = offset_at(tz, start);
    let mut out = vec![Observance { at: start, from: offset, to: offset, dst, name }];
    let mut day = start;
    let mut current = offset_at(tz, day);
    while day < end {
        let next_day = day + Duration::days(1);
        let next = offset_at(tz, next_day);
        if next.0 != current.0 || next.1 != current.1 {
            // The change lies in (day, next_day]: bisect, in whole seconds, to the first second
            // with the new offset.
            let (mut lo, mut hi) = (day.timestamp(), next_day.timestamp());
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                let at = DateTime::from_timestamp(mid, 0).unwrap_or(day);
                let probe = offset_at(tz, at);
                if probe.0 == current.0 && probe.1 == current.1 {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            let hi = DateTime::from_timestamp(hi, 0).unwrap_or(next_day);
            let (to_offset, dst, name) = offset_at(tz, hi);
            out.push(Observance { at: hi, from: current.0, to: to_offset, dst, name });
            current = offset_at(tz, hi);
        }
        day = next_day;
    }
    out
}

fn write_vtimezone(w: &mut Writer, tz: Tz, from: DateTime<Utc>, to: DateTime<Utc>) {
    w.begin("VTIMEZONE");
    w.raw("TZID", tz.name());
    for o in observances(tz, from, to) {
        let kind = if o.dst { "DAYLIGHT" } else { "STANDARD" };
        w.begin(kind);
        // DTSTART is the local time just before the change, in the offset it changes from.
        let local = (o.at + Duration::seconds(i64::from(o.from))).naive_utc();
        w.raw("DTSTART", &local_value(local));
        w.raw("TZOFFSETFROM", &offset_value(o.from));
        w.raw("TZOFFSETTO", &offset_value(o.to));
        if let Some(name) = o.name.as_deref() {
            w.text("TZNAME", name);
        }
        w.end(kind);
    }
    w.end("VTIMEZONE");
}

/// A UTC-OFFSET: `+0100`, `-0330`, or with seconds when it has any.
pub fn offset_value(seconds: i32) -> String {
    let sign = if seconds < 0 { '-' } else { '+' };
    let s = seconds.unsigned_abs();
    let (h, m, sec) = (s / 3600, s % 3600 / 60, s % 60);
    if sec == 0 { format!("{sign}{h:02}{m:02}") } else { format!("{sign}{h:02}{m:02}{sec:02}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn paris_over_a_year_has_its_two_changes_at_the_right_instants() {
        let obs = observances(Tz::Europe__Paris, utc("2027-01-10T00:00:00Z"), utc("2027-12-20T00:00:00Z"));
        assert_eq!(obs.len(), 3, "{obs:?}");
        assert_eq!((obs[0].from, obs[0].to, obs[0].dst), (3600, 3600, false));
        // 2027-03-28 01:00 UTC: 02:00 CET becomes 03:00 CEST.
        assert_eq!(obs[1].at, utc("2027-03-28T01:00:00Z"));
        assert_eq!((obs[1].from, obs[1].to, obs[1].dst), (3600, 7200, true));
        assert_eq!(obs[2].at, utc("2027-10-31T01:00:00Z"));
        assert_eq!((obs[2].from, obs[2].to, obs[2].dst), (7200, 3600, false));
    }

    #[test]
    fn the_written_component_names_local_times_before_each_change() {
        let mut spans = ZoneSpans::new();
        spans.note(Tz::America__New_York, utc("2027-03-01T12:00:00Z"));
        spans.note(Tz::America__New_York, utc("2027-04-01T12:00:00Z"));
        spans.note(Tz::UTC, utc("2027-04-01T12:00:00Z"));
        let mut w = Writer::new();
        spans.write(&mut w);
        let out = w.finish();
        assert_eq!(out.matches("BEGIN:VTIMEZONE").count(), 1);
        assert!(out.contains("TZID:America/New_York\r\n"));
        // 2027-03-14 02:00 EST (07:00 UTC) becomes 03:00 EDT.
        assert!(out.contains("BEGIN:DAYLIGHT\r\nDTSTART:20270314T020000\r\nTZOFFSETFROM:-0500\r\nTZOFFSETTO:-0400\r\nTZNAME:EDT\r\n"), "{out}");
    }

    #[test]
    fn offsets_are_written_with_sign_and_seconds_only_when_needed() {
        assert_eq!(offset_value(3600), "+0100");
        assert_eq!(offset_value(-12600), "-0330");
        assert_eq!(offset_value(0), "+0000");
        assert_eq!(offset_value(561), "+000921");
    }
}
