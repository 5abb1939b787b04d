//! Signed, single-purpose tokens for links in emails: verifying an address, completing or
//! snoozing a task from its reminder, and the one-click unsubscribe.
//!
//! A token is `base64url(claims) "." base64url(tag)`, where the claims are a small binary record
//! (version, purpose, token id, user id, expiry, subject) and the tag is HMAC-SHA256 over them,
//! cut to 128 bits. The key is derived from the JWT secret under its own label, so a link token
//! can never pass for an access token or the other way round, and rotating `JWT_SECRET` voids
//! both. Signature and expiry are checked here without the database; "works once" is enforced in
//! it (`db::links::redeem`), inside the transaction of the action the link performs (for a task
//! action, the command's own transaction in the user's actor), so a use never outlives a failed
//! or interrupted action.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::config::AuthSettings;

type HmacSha256 = Hmac<Sha256>;

/// Bumped if the binary layout changes, so old links fail as malformed, not as garbage.
const VERSION: u8 = 1;
const TAG_BYTES: usize = 16;
/// Version, purpose, token id, user id, expiry.
const FIXED_BYTES: usize = 1 + 1 + 16 + 16 + 8;
/// Subjects are ids or digests, never free text.
pub const MAX_SUBJECT_BYTES: usize = 64;
/// Longest token text accepted: anything longer is refused before decoding.
pub const MAX_TOKEN_CHARS: usize = 4 * (FIXED_BYTES + MAX_SUBJECT_BYTES + TAG_BYTES).div_ceil(3) + 1;

/// Where the pages behind emailed links live, under `public_url`. Here rather than in the web
/// module because the worker, which has no web code, writes the links.
pub mod paths {
    pub const VERIFY: &str = "/email/verify";
    pub const TASK: &str = "/email/task";
    pub const UNSUBSCRIBE: &str = "/email/unsubscribe";
}

/// What a link may do; signed into the token, so a token minted for one purpose is refused by
/// every other. Append new purposes with new numbers; never reuse one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Confirms that the person reading the mailbox owns the address. Subject:
    /// [`address_digest`] of the address.
    VerifyEmail,
    /// Completes or snoozes a task from its reminder or agenda email. Subject:
    /// [`TaskAction::subject`] (the task, the email it came from, and the action).
    TaskAction,
    /// Turns one kind of email off (RFC 8058). Subject: [`EmailKind::subject`].
    Unsubscribe,
    /// Only for the tests of purpose binding, until a second real purpose exists.
    #[cfg(test)]
    Test,
}

impl Purpose {
    fn code(self) -> u8 {
        match self {
            Self::VerifyEmail => 1,
            Self::TaskAction => 2,
            Self::Unsubscribe => 3,
            #[cfg(test)]
            Self::Test => 255,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::VerifyEmail),
            2 => Some(Self::TaskAction),
            3 => Some(Self::Unsubscribe),
            #[cfg(test)]
            255 => Some(Self::Test),
            _ => None,
        }
    }

    /// The name stored with a used token.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify_email",
            Self::TaskAction => "task_action",
            Self::Unsubscribe => "unsubscribe",
            #[cfg(test)]
            Self::Test => "test",
        }
    }

    /// How long a link of this purpose works.
    pub fn lifetime(self) -> Duration {
        match self {
            Self::VerifyEmail => Duration::hours(48),
            // A reminder is acted on within days or not at all.
            Self::TaskAction => Duration::days(7),
            // RFC 8058 clients may POST long after the mail arrived, and an unsubscribe link that
            // stopped working would push the reader to the spam button: a year, and reusable
            // (turning a kind of email off twice is harmless), so it is never recorded as used.
            Self::Unsubscribe => Duration::days(365),
            #[cfg(test)]
            Self::Test => Duration::hours(1),
        }
    }
}

/// What a token says; only trustworthy once it came out of [`LinkKeys::open`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// Unique per token: the key under which its use is recorded.
    pub id: Uuid,
    pub purpose: Purpose,
    pub user_id: Uuid,
    /// What the link is about, as the purpose defines it (an address digest, a task id…).
    pub subject: Vec<u8>,
    pub expires_at: DateTime<Utc>,
}

impl Claims {
    /// A new token's claims, expiring after the purpose's lifetime from `now`.
    pub fn new(purpose: Purpose, user_id: Uuid, subject: Vec<u8>, now: DateTime<Utc>) -> Self {
        Self { id: Uuid::new_v4(), purpose, user_id, subject, expires_at: now + purpose.lifetime() }
    }
}

/// Why a link does not work. Each reads differently to the person who clicked it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// Not a token this service made, or altered on the way (a mail client cutting it short).
    #[error("the link is not valid")]
    Invalid,
    #[error("the link has expired")]
    Expired,
    /// A genuine token for another action.
    #[error("the link is for another action")]
    WrongPurpose,
}

/// Signs and opens link tokens.
#[derive(Clone)]
pub struct LinkKeys {
    key: [u8; 32],
}

impl LinkKeys {
    /// The key is HMAC(JWT secret, label): deterministic across processes, distinct from the
    /// key access tokens are signed with.
    pub fn new(settings: &AuthSettings) -> Self {
        Self::from_secret(settings.jwt_secret.expose_secret().as_bytes())
    }

    pub fn from_secret(secret: &[u8]) -> Self {
        let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
        mac.update(b"todo link tokens v1");
        Self { key: mac.finalize().into_bytes().into() }
    }

    /// The token text for `claims`: URL-safe, about 100 characters for an address link.
    pub fn sign(&self, claims: &Claims) -> String {
        let subject = &claims.subject[..claims.subject.len().min(MAX_SUBJECT_BYTES)];
        let mut body = Vec::with_capacity(FIXED_BYTES + subject.len());
        body.push(VERSION);
        body.push(claims.purpose.code());
        body.extend_from_slice(claims.id.as_bytes());
        body.extend_from_slice(claims.user_id.as_bytes());
        body.extend_from_slice(&claims.expires_at.timestamp().to_be_bytes());
        body.extend_from_slice(subject);
        let tag = self.tag(&body);
        format!("{}.{}", URL_SAFE_NO_PAD.encode(&body), URL_SAFE_NO_PAD.encode(tag))
    }

    /// The claims of a genuine, unexpired token for `purpose`. Says nothing about whether it
    /// was used already: that is the database's to answer.
    pub fn open(&self, token: &str, purpose: Purpose, now: DateTime<Utc>) -> Result<Claims, LinkError> {
        let claims = self.verify(token)?;
        if claims.purpose != purpose {
            return Err(LinkError::WrongPurpose);
        }
        if claims.expires_at <= now {
            return Err(LinkError::Expired);
        }
        Ok(claims)
    }

    fn verify(&self, token: &str) -> Result<Claims, LinkError> {
        if token.len() > MAX_TOKEN_CHARS {
            return Err(LinkError::Invalid);
        }
        let (body, tag) = token.split_once('.').ok_or(LinkError::Invalid)?;
        let body = URL_SAFE_NO_PAD.decode(body).map_err(|_| LinkError::Invalid)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| LinkError::Invalid)?;
        if tag.len() != TAG_BYTES {
            return Err(LinkError::Invalid);
        }
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(&body);
        // Constant-time comparison of the truncated tag.
        mac.verify_truncated_left(&tag).map_err(|_| LinkError::Invalid)?;
        decode(&body).ok_or(LinkError::Invalid)
    }

    fn tag(&self, body: &[u8]) -> [u8; TAG_BYTES] {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(body);
        let full = mac.finalize().into_bytes();
        let mut tag = [0; TAG_BYTES];
        tag.copy_from_slice(&full[..TAG_BYTES]);
        tag
    }
}

/// The claims of a signed body. Only called on bodies whose tag matched.
fn decode(body: &[u8]) -> Option<Claims> {
    if body.len() < FIXED_BYTES || body.len() > FIXED_BYTES + MAX_SUBJECT_BYTES || body[0] != VERSION {
        return None;
    }
    let purpose = Purpose::from_code(body[1])?;
    let id = Uuid::from_slice(&body[2..18]).ok()?;
    let user_id = Uuid::from_slice(&body[18..34]).ok()?;
    let expires = i64::from_be_bytes(body[34..42].try_into().ok()?);
    let expires_at = DateTime::from_timestamp(expires, 0)?;
    Some(Claims { id, purpose, user_id, subject: body[FIXED_BYTES..].to_vec(), expires_at })
}

/// What a reminder's link does to its task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Complete,
    Snooze(Snooze),
}

/// How far a snooze moves the reminder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Snooze {
    TenMinutes,
    OneHour,
    /// 09:00 on the next day, in the user's zone.
    TomorrowMorning,
}

impl Action {
    /// Every action a reminder offers, in the order the email lists them.
    pub const ALL: [Self; 4] = [
        Self::Complete,
        Self::Snooze(Snooze::TenMinutes),
        Self::Snooze(Snooze::OneHour),
        Self::Snooze(Snooze::TomorrowMorning),
    ];

    fn code(self) -> u8 {
        match self {
            Self::Complete => 1,
            Self::Snooze(Snooze::TenMinutes) => 2,
            Self::Snooze(Snooze::OneHour) => 3,
            Self::Snooze(Snooze::TomorrowMorning) => 4,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.code() == code)
    }

    /// The words of the email's link and of the page's button.
    pub fn label(self) -> &'static str {
        match self {
            Self::Complete => "Mark as done",
            Self::Snooze(Snooze::TenMinutes) => "Snooze 10 minutes",
            Self::Snooze(Snooze::OneHour) => "Snooze 1 hour",
            Self::Snooze(Snooze::TomorrowMorning) => "Snooze until tomorrow 09:00",
        }
    }
}

impl Snooze {
    /// The new reminder time for a snooze pressed at `now` by a user in `zone`. "Tomorrow 09:00"
    /// is the local wall time; on a DST change that skips it, the first instant after the gap.
    pub fn until(self, now: DateTime<Utc>, zone: crate::domain::TimeZone) -> DateTime<Utc> {
        use chrono::TimeZone as _;
        match self {
            Self::TenMinutes => now + Duration::minutes(10),
            Self::OneHour => now + Duration::hours(1),
            Self::TomorrowMorning => {
                let tz = zone.tz();
                let tomorrow = now.with_timezone(&tz).date_naive() + Duration::days(1);
                let nine = tomorrow.and_hms_opt(9, 0, 0).expect("09:00 exists");
                (0..=3)
                    .find_map(|h| tz.from_local_datetime(&(nine + Duration::hours(h))).earliest())
                    .map_or(now + Duration::days(1), |at| at.with_timezone(&Utc))
            }
        }
    }
}

/// What an action link was sent for. The link works only while the task still has this
/// instant, so a link from an old email stops working once the task moves on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    /// A reminder email, for the task's `reminder_at` (to the microsecond, as stored).
    Reminder(DateTime<Utc>),
    /// A daily agenda, which lists the task by its `due_at`.
    Due(DateTime<Utc>),
}

/// The subject of a [`Purpose::TaskAction`] token: the task, the email it came from (its
/// [`Anchor`]) and the action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskAction {
    pub task_id: Uuid,
    pub anchor: Anchor,
    pub action: Action,
}

/// The subject's byte length for a reminder's link (the first format, still accepted from
/// emails already sent) and for an agenda's, which appends its anchor's tag.
const REMINDER_SUBJECT_BYTES: usize = 25;
const DUE_TAG: u8 = 2;

impl TaskAction {
    pub fn subject(&self) -> Vec<u8> {
        let (at, tag) = match self.anchor {
            Anchor::Reminder(at) => (at, None),
            Anchor::Due(at) => (at, Some(DUE_TAG)),
        };
        let mut subject = Vec::with_capacity(REMINDER_SUBJECT_BYTES + 1);
        subject.extend_from_slice(self.task_id.as_bytes());
        subject.extend_from_slice(&at.timestamp_micros().to_be_bytes());
        subject.push(self.action.code());
        subject.extend(tag);
        subject
    }

    pub fn from_subject(subject: &[u8]) -> Option<Self> {
        let anchor: fn(DateTime<Utc>) -> Anchor = match subject.get(REMINDER_SUBJECT_BYTES..)? {
            [] => Anchor::Reminder,
            [DUE_TAG] => Anchor::Due,
            _ => return None,
        };
        let task_id = Uuid::from_slice(&subject[..16]).ok()?;
        let at = DateTime::from_timestamp_micros(i64::from_be_bytes(subject[16..24].try_into().ok()?))?;
        Some(Self { task_id, anchor: anchor(at), action: Action::from_code(subject[24])? })
    }
}

/// A kind of email a user can turn off from the email itself. Signed into unsubscribe tokens, so
/// the daily agenda gets its own kind and its link turns off only the agenda.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailKind {
    Reminders,
    /// The daily agenda: its link turns `agenda_time` off.
    Agenda,
}

impl EmailKind {
    pub fn subject(self) -> Vec<u8> {
        vec![match self {
            Self::Reminders => 1,
            Self::Agenda => 2,
        }]
    }

    pub fn from_subject(subject: &[u8]) -> Option<Self> {
        match subject {
            [1] => Some(Self::Reminders),
            [2] => Some(Self::Agenda),
            _ => None,
        }
    }
}

/// The subject of an address link: a digest of the address as compared (case-insensitively),
/// so the link binds the address without writing it into URLs and access logs.
pub fn address_digest(address: &str) -> Vec<u8> {
    Sha256::digest(address.trim().to_lowercase().as_bytes())[..16].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> LinkKeys {
        LinkKeys::from_secret(b"a secret long enough for the tests, 32+ bytes")
    }

    fn claims(now: DateTime<Utc>) -> Claims {
        Claims::new(Purpose::VerifyEmail, Uuid::now_v7(), address_digest("Ann@Example.com"), now)
    }

    #[test]
    fn a_signed_token_opens_to_its_claims_and_is_short_and_url_safe() {
        let now = Utc::now();
        let claims = claims(now);
        let token = keys().sign(&claims);
        assert!(token.len() < 120, "{} chars", token.len());
        assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)), "{token}");
        let opened = keys().open(&token, Purpose::VerifyEmail, now).unwrap();
        // Expiry is kept to the second.
        assert_eq!(opened.expires_at.timestamp(), claims.expires_at.timestamp());
        assert_eq!(
            (opened.id, opened.user_id, &opened.subject),
            (claims.id, claims.user_id, &claims.subject)
        );
        assert_eq!(opened.subject, address_digest(" ann@example.COM "));
    }

    #[test]
    fn a_tampered_token_is_invalid() {
        let now = Utc::now();
        let token = keys().sign(&claims(now));
        let (body, tag) = token.split_once('.').unwrap();
        let mut bytes = URL_SAFE_NO_PAD.decode(body).unwrap();
        bytes[20] ^= 1; // another user
        let forged = format!("{}.{tag}", URL_SAFE_NO_PAD.encode(&bytes));
        for bad in [
            forged.as_str(),
            &token[..token.len() - 2],
            &format!("{token}A"),
            body,
            "",
            ".",
            "not a token at all",
            &"A".repeat(10_000),
        ] {
            assert_eq!(keys().open(bad, Purpose::VerifyEmail, now), Err(LinkError::Invalid), "{bad:?}");
        }
        let other_key = LinkKeys::from_secret(b"another secret, just as long as the first");
        assert_eq!(other_key.open(&token, Purpose::VerifyEmail, now), Err(LinkError::Invalid));
    }

    #[test]
    fn an_expired_token_is_refused_from_its_expiry_on() {
        let now = Utc::now();
        let mut minted = claims(now);
        minted.expires_at = now - Duration::seconds(1);
        let token = keys().sign(&minted);
        assert_eq!(keys().open(&token, Purpose::VerifyEmail, now), Err(LinkError::Expired));
        let fresh = keys().sign(&claims(now));
        let later = now + Purpose::VerifyEmail.lifetime() + Duration::seconds(1);
        assert_eq!(keys().open(&fresh, Purpose::VerifyEmail, later), Err(LinkError::Expired));
        assert!(keys().open(&fresh, Purpose::VerifyEmail, now + Duration::hours(47)).is_ok());
    }

    #[test]
    fn task_action_and_unsubscribe_subjects_round_trip_and_refuse_garbage() {
        let at: DateTime<Utc> = "2030-03-04T07:45:00.123456Z".parse().unwrap();
        for anchor in [Anchor::Reminder(at), Anchor::Due(at)] {
            for action in Action::ALL {
                let subject = TaskAction { task_id: Uuid::now_v7(), anchor, action };
                assert_eq!(TaskAction::from_subject(&subject.subject()), Some(subject));
            }
        }
        let reminder =
            TaskAction { task_id: Uuid::nil(), anchor: Anchor::Reminder(at), action: Action::Complete };
        assert_eq!(reminder.subject().len(), 25, "links already emailed keep their meaning");
        let mut bad = reminder.subject();
        bad[24] = 99;
        assert_eq!(TaskAction::from_subject(&bad), None);
        assert_eq!(TaskAction::from_subject(&bad[..10]), None);
        let mut unknown_anchor = reminder.subject();
        unknown_anchor.push(7);
        assert_eq!(TaskAction::from_subject(&unknown_anchor), None);
        for kind in [EmailKind::Reminders, EmailKind::Agenda] {
            assert_eq!(EmailKind::from_subject(&kind.subject()), Some(kind));
        }
        assert_eq!(EmailKind::from_subject(&[9]), None);
    }

    #[test]
    fn tomorrow_morning_is_nine_local_time_the_next_day_even_across_a_dst_change() {
        let paris = crate::domain::TimeZone::parse("timezone", "Europe/Paris").unwrap();
        // Saturday 29 March 2031, 23:30 in Paris; clocks go forward that night.
        let now: DateTime<Utc> = "2031-03-29T22:30:00Z".parse().unwrap();
        let until = Snooze::TomorrowMorning.until(now, paris);
        assert_eq!(until, "2031-03-30T07:00:00Z".parse::<DateTime<Utc>>().unwrap(), "09:00 CEST");
        assert_eq!(Snooze::TenMinutes.until(now, paris), now + Duration::minutes(10));
        assert_eq!(Snooze::OneHour.until(now, paris), now + Duration::hours(1));
    }

    #[test]
    fn a_token_for_another_purpose_is_refused() {
        let now = Utc::now();
        let other = Claims::new(Purpose::Test, Uuid::now_v7(), vec![1; 24], now);
        let token = keys().sign(&other);
        assert_eq!(keys().open(&token, Purpose::VerifyEmail, now), Err(LinkError::WrongPurpose));
        assert!(keys().open(&token, Purpose::Test, now).is_ok());
        // An unknown purpose number, however well signed, is no token of ours.
        let body = URL_SAFE_NO_PAD.decode(token.split_once('.').unwrap().0).unwrap();
        let mut unknown = body.clone();
        unknown[1] = 77;
        let resigned =
            format!("{}.{}", URL_SAFE_NO_PAD.encode(&unknown), URL_SAFE_NO_PAD.encode(keys().tag(&unknown)));
        assert_eq!(keys().open(&resigned, Purpose::VerifyEmail, now), Err(LinkError::Invalid));
    }
}
