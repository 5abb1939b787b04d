//! The daily agenda's settings: a local wall time, and when that time falls on a given day.

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, TimeZone as _, Utc};

use super::{Invalid, TimeZone};

/// The local wall time ("07:30") at which the daily agenda goes out, to the minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgendaTime(NaiveTime);

impl AgendaTime {
    /// Accepts exactly `HH:MM`, 24-hour: one spelling, so what the API echoes is what was sent.
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, Invalid> {
        let bad = || Invalid::new(field, format!("{raw:?} is not a 24-hour local time such as \"07:30\""));
        let raw = raw.trim();
        if raw.len() != 5 || raw.as_bytes()[2] != b':' {
            return Err(bad());
        }
        NaiveTime::parse_from_str(raw, "%H:%M").map(Self).map_err(|_| bad())
    }

    pub fn from_time(time: NaiveTime) -> Self {
        Self(time)
    }

    pub fn time(self) -> NaiveTime {
        self.0
    }

    /// "07:30", as the API shows it.
    pub fn to_hhmm(self) -> String {
        self.0.format("%H:%M").to_string()
    }

    /// The instant this wall time falls at on `date` in `zone`. On a spring-forward day a time in
    /// the gap does not exist, so the agenda goes out when the clocks read it an hour later
    /// (02:30 becomes 03:30); on a fall-back day a time that occurs twice is taken the first time.
    /// Either way a day has exactly one instant, which is what makes one agenda per day possible.
    pub fn on(self, date: NaiveDate, zone: TimeZone) -> DateTime<Utc> {
        let tz = zone.tz();
        let naive = date.and_time(self.0);
        tz.from_local_datetime(&naive)
            .earliest()
            .or_else(|| tz.from_local_datetime(&(naive + Duration::hours(1))).earliest())
            // No zone has a gap longer than the hour above; UTC is a defined fallback regardless.
            .map_or_else(|| naive.and_utc(), |local| local.with_timezone(&Utc))
    }

    /// The first day on or after `from` (and not before today in `zone`) whose agenda instant is
    /// after `now`, with that instant.
    pub fn next(
        self,
        zone: TimeZone,
        from: Option<NaiveDate>,
        now: DateTime<Utc>,
    ) -> (NaiveDate, DateTime<Utc>) {
        let today = now.with_timezone(&zone.tz()).date_naive();
        let mut date = from.map_or(today, |from| from.max(today));
        // Within two days in any zone, since a day has one instant and today's may have passed.
        loop {
            let at = self.on(date, zone);
            if at > now {
                return (date, at);
            }
            match date.succ_opt() {
                Some(next) => date = next,
                None => return (date, at),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paris() -> TimeZone {
        TimeZone::parse("timezone", "Europe/Paris").unwrap()
    }

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn only_hh_mm_is_accepted() {
        assert_eq!(AgendaTime::parse("agenda_time", "07:30").unwrap().to_hhmm(), "07:30");
        assert_eq!(AgendaTime::parse("agenda_time", "23:59").unwrap().to_hhmm(), "23:59");
        for bad in ["7:30", "24:00", "07:60", "07:30:00", "0730", "", "noon", "07:3a"] {
            let err = AgendaTime::parse("agenda_time", bad).unwrap_err();
            assert_eq!(err.field, "agenda_time", "{bad}");
        }
    }

    #[test]
    fn a_day_has_one_instant_across_dst_changes() {
        let at = AgendaTime::parse("agenda_time", "02:30").unwrap();
        // Spring forward (02:00 → 03:00 CEST): 02:30 does not exist, 03:30 CEST does.
        assert_eq!(
            at.on(date("2027-03-28"), paris()),
            "2027-03-28T01:30:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        // Fall back (03:00 CEST → 02:00 CET): 02:30 happens twice; the first one counts.
        assert_eq!(
            at.on(date("2027-10-31"), paris()),
            "2027-10-31T00:30:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert_eq!(
            at.on(date("2027-11-01"), paris()),
            "2027-11-01T01:30:00Z".parse::<DateTime<Utc>>().unwrap()
        );
    }

    #[test]
    fn next_is_today_until_its_time_has_passed() {
        let at = AgendaTime::parse("agenda_time", "07:30").unwrap();
        let before = "2027-03-10T06:00:00Z".parse().unwrap();
        assert_eq!(at.next(paris(), None, before).0, date("2027-03-10"));
        let after = "2027-03-10T06:30:00Z".parse().unwrap();
        assert_eq!(at.next(paris(), None, after).0, date("2027-03-11"));
        assert_eq!(at.next(paris(), Some(date("2027-03-12")), before).0, date("2027-03-12"));
        // A follow-up whose day is long past catches up to the next future agenda, not the past.
        assert_eq!(at.next(paris(), Some(date("2027-03-01")), after).0, date("2027-03-11"));
    }
}
