//! Property tests over the parsers that take untrusted text: whatever arrives, they answer
//! `Ok` or `Err` and never panic or spin, and what they accept keeps their promises.
//!
//! CI runs proptest's default 256 cases each; for a long run:
//! `PROPTEST_CASES=100000 cargo test --lib fuzz`.

use chrono::{DateTime, TimeZone as _, Utc};
use proptest::prelude::*;

use super::recurrence::{Current, StepError, latest_instant, next_occurrence};
use super::{RecurrenceAnchor, RecurrenceRule, Tags, TimeZone};

/// RRULE-shaped text: real parts in any order and number, with junk mixed in.
fn rrule_text() -> impl Strategy<Value = String> {
    let part = prop_oneof![
        prop::sample::select(vec![
            "SECONDLY", "MINUTELY", "HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY", "FOO"
        ])
        .prop_map(|f| format!("FREQ={f}")),
        (0u32..400).prop_map(|n| format!("INTERVAL={n}")),
        (0u32..50).prop_map(|n| format!("COUNT={n}")),
        prop::collection::vec(
            prop::sample::select(vec!["MO", "TU", "WE", "TH", "FR", "SA", "SU", "-1FR", "2MO"]),
            1..5
        )
        .prop_map(|d| format!("BYDAY={}", d.join(","))),
        prop::collection::vec(-32i32..33, 1..4).prop_map(|d| format!(
            "BYMONTHDAY={}",
            d.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
        )),
        (0u32..14).prop_map(|m| format!("BYMONTH={m}")),
        (-400i32..400).prop_map(|d| format!("BYSETPOS={d}")),
        (1990u32..2100).prop_map(|y| format!("UNTIL={y}0101T000000Z")),
        "[A-Z=;,0-9-]{0,20}",
    ];
    prop::collection::vec(part, 0..6).prop_map(|parts| parts.join(";"))
}

fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    (0i64..4_102_444_800).prop_map(|secs| Utc.timestamp_opt(secs, 0).unwrap())
}

fn zone() -> impl Strategy<Value = TimeZone> {
    prop::sample::select(chrono_tz::TZ_VARIANTS.to_vec())
        .prop_map(|tz| TimeZone::parse("timezone", tz.name()).unwrap())
}

proptest! {
    #[test]
    fn the_rrule_parser_takes_any_text(raw in any::<String>()) {
        let _ = RecurrenceRule::parse(&raw);
    }

    #[test]
    fn accepted_rules_step_within_their_budget(
        raw in rrule_text(),
        due in instant(),
        zone in zone(),
        completion in any::<bool>(),
        late in 0i64..100_000_000,
    ) {
        let Ok(rule) = RecurrenceRule::parse(&raw) else { return Ok(()) };
        prop_assert!(rule.as_str().chars().count() <= RecurrenceRule::MAX_CHARS);
        let anchor = if completion { RecurrenceAnchor::Completion } else { RecurrenceAnchor::Due };
        let current = Current {
            rule: rule.as_str(),
            timezone: zone,
            anchor,
            series_start: due,
            due_at: due,
            series_index: 1,
            completed_at: Some(due + chrono::Duration::seconds(late)),
        };
        match next_occurrence(current) {
            Ok(Some(next)) => {
                prop_assert!(next.due_at > due, "{raw}: {next:?} is not after {due}");
                prop_assert!(next.due_at <= latest_instant());
                // Occurrences skipped for a late completion still count, as COUNT does.
                prop_assert!(next.series_index >= 2);
                if completion {
                    prop_assert_eq!(next.series_index, 2);
                }
            }
            Ok(None) | Err(StepError::TooFar | StepError::BadRule(_)) => {}
        }
    }

    #[test]
    fn accepted_tags_are_bounded_folded_and_stable(raw in prop::collection::vec(any::<String>(), 0..30)) {
        if let Ok(tags) = Tags::parse(&raw) {
            prop_assert!(tags.as_slice().len() <= Tags::MAX_COUNT);
            for tag in tags.as_slice() {
                prop_assert!((1..=Tags::MAX_CHARS).contains(&tag.chars().count()));
                prop_assert_eq!(tag, &tag.trim().to_lowercase());
            }
            // Parsing what was accepted changes nothing: a stored task re-reads the same.
            prop_assert_eq!(Tags::parse(tags.as_slice()), Ok(tags.clone()));
        }
    }

    #[test]
    fn the_time_zone_parser_takes_any_text_and_knows_every_iana_name(raw in any::<String>(), zone in zone()) {
        let _ = TimeZone::parse("timezone", &raw);
        prop_assert_eq!(TimeZone::parse("timezone", zone.name()), Ok(zone));
    }
}
