//! Account writes that involve email verification, each one transaction with its jobs:
//! registration, an email change, a resend, and the click on a verification link. They touch
//! the account row, never tasks, so they do not go through the per-user actor; the row lock
//! orders them instead.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::config::VerificationLimits;
use crate::db::users::{
    self, CreateUserError, ExternalAccount, ExternalIdentity, NewUser, ProfileChange, User,
};
use crate::db::verification::{self, ApplyError};
use crate::db::{api_tokens, links};
use crate::jobs::agenda;
use crate::jobs::verification::{self as job, RequestError};
use crate::links::{Claims, address_digest};

/// Why an account write that sends a verification email was refused.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("email already registered")]
    EmailTaken,
    #[error("too many verification emails")]
    TooManyVerifications { until: DateTime<Utc> },
    /// The address is verified and no change waits.
    #[error("nothing to verify")]
    NothingToVerify,
    #[error("the account is gone")]
    AccountGone,
    #[error(transparent)]
    Request(RequestError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl From<RequestError> for AccountError {
    fn from(err: RequestError) -> Self {
        match err {
            RequestError::Exhausted { until } | RequestError::RecipientExhausted { until } => {
                Self::TooManyVerifications { until }
            }
            RequestError::AccountGone => Self::AccountGone,
            other => Self::Request(other),
        }
    }
}

/// Queues the verification email of a new account. An address that has had its hour's
/// allowance still gets its account: the email is not sent, and the owner can ask again with
/// `POST /users/me/verification` once the window allows.
async fn request_for_new_account(
    tx: &mut PgConnection,
    user_id: Uuid,
    email: &str,
    limits: VerificationLimits,
) -> Result<(), AccountError> {
    match job::request(tx, user_id, email, limits).await {
        Err(RequestError::RecipientExhausted { .. }) => {
            tracing::warn!(%user_id, "verification email not sent: the address's hourly cap is reached");
            Ok(())
        }
        other => Ok(other?),
    }
}

/// Creates the account and queues the verification of its address, together.
pub async fn register(
    pool: &PgPool,
    new_user: NewUser<'_>,
    limits: VerificationLimits,
) -> Result<User, AccountError> {
    let mut tx = pool.begin().await?;
    let user = users::insert(&mut *tx, new_user).await.map_err(|e| match e {
        CreateUserError::EmailTaken => AccountError::EmailTaken,
        CreateUserError::Database(e) => AccountError::Database(e),
    })?;
    if let Some(email) = &user.email {
        request_for_new_account(&mut tx, user.id, email, limits).await?;
    }
    tx.commit().await?;
    Ok(user)
}

/// The account behind an external identity, created on first sight; an address the issuer did
/// not vouch for gets a verification email in the same transaction.
pub async fn resolve_external(
    pool: &PgPool,
    identity: ExternalIdentity<'_>,
    limits: VerificationLimits,
) -> Result<Option<Uuid>, AccountError> {
    // The common case, a known user, is one read outside any transaction.
    if let Some(id) = users::find_external(pool, identity.external_id).await? {
        return Ok(Some(id));
    }
    let mut tx = pool.begin().await?;
    let Some(ExternalAccount { id, unverified_email }) =
        users::find_or_create_external(&mut tx, identity).await?
    else {
        return Ok(None);
    };
    if let Some(email) = unverified_email {
        request_for_new_account(&mut tx, id, &email, limits).await?;
    }
    tx.commit().await?;
    Ok(Some(id))
}

/// A profile change, with an optional new address. The address takes effect only once verified:
/// until then it is the account's `pending_email`, and the current address keeps its reminders.
pub async fn update_profile(
    pool: &PgPool,
    user_id: Uuid,
    change: ProfileChange,
    new_email: Option<&str>,
    limits: VerificationLimits,
) -> Result<User, AccountError> {
    let mut tx = pool.begin().await?;
    if let Some(email) = new_email {
        let state = verification::state(&mut *tx, user_id, true).await?.ok_or(AccountError::AccountGone)?;
        let current = state.email.as_deref().is_some_and(|c| c.eq_ignore_ascii_case(email));
        if current {
            // Back to the current address: the change is withdrawn; an unverified current
            // address still needs its link (already sent).
            verification::set_pending(&mut tx, user_id, None).await?;
        } else {
            if verification::email_taken(&mut *tx, user_id, email).await? {
                return Err(AccountError::EmailTaken);
            }
            verification::set_pending(&mut tx, user_id, Some(email)).await?;
            job::request(&mut tx, user_id, email, limits).await?;
        }
    }
    let moves_agenda = change.moves_agenda();
    let user = users::update_profile(&mut *tx, user_id, change).await?.ok_or(AccountError::AccountGone)?;
    if moves_agenda {
        // The UPDATE holds the account row, which orders this with any agenda run (see
        // `jobs::agenda`); the next agenda is queued in the same transaction.
        agenda::reschedule(&mut tx, user_id, user.agenda_time, &user.timezone, None)
            .await
            .map_err(|e| AccountError::Request(RequestError::Enqueue(e)))?;
    }
    tx.commit().await?;
    Ok(user)
}

/// Sends the verification email again, for the address that awaits it.
pub async fn resend(pool: &PgPool, user_id: Uuid, limits: VerificationLimits) -> Result<(), AccountError> {
    let mut tx = pool.begin().await?;
    let state = verification::state(&mut *tx, user_id, true).await?.ok_or(AccountError::AccountGone)?;
    let address = state.awaiting().ok_or(AccountError::NothingToVerify)?.to_owned();
    job::request(&mut tx, user_id, &address, limits).await?;
    tx.commit().await?;
    Ok(())
}

/// Sets a new password and revokes every API token of the account, together: a token minted
/// by whoever knew the old password must not outlive it. False when the account is gone.
pub async fn change_password(
    pool: &PgPool,
    user_id: Uuid,
    new_hash: &str,
) -> Result<Option<u64>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    if !users::set_password_hash(&mut *tx, user_id, new_hash).await? {
        return Ok(None);
    }
    let revoked = api_tokens::revoke_all(&mut *tx, user_id).await?;
    tx.commit().await?;
    Ok(Some(revoked))
}

/// What a verification link points at now, read without changing anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkTarget {
    /// The address waits for this link: pressing the button verifies it.
    Awaiting { address: String },
    /// This address is verified already.
    AlreadyVerified { address: String },
    /// The account moved on (another address was asked for, or it is gone).
    Stale,
    /// The link was used.
    Used,
}

/// What the link's button would do; for the page a GET shows.
pub async fn inspect_verification(pool: &PgPool, claims: &Claims) -> Result<LinkTarget, sqlx::Error> {
    if links::is_used(pool, claims).await? {
        return Ok(LinkTarget::Used);
    }
    let state = verification::state(pool, claims.user_id, false).await?;
    Ok(target(state.as_ref(), claims))
}

fn target(state: Option<&verification::AddressState>, claims: &Claims) -> LinkTarget {
    let Some(state) = state else { return LinkTarget::Stale };
    fn named<'a>(address: &'a Option<String>, claims: &Claims) -> Option<&'a str> {
        address.as_deref().filter(|a| address_digest(a) == claims.subject)
    }
    if let Some(address) = named(&state.pending_email, claims) {
        return LinkTarget::Awaiting { address: address.to_owned() };
    }
    match named(&state.email, claims) {
        Some(address) if state.email_verified => LinkTarget::AlreadyVerified { address: address.to_owned() },
        Some(address) => LinkTarget::Awaiting { address: address.to_owned() },
        None => LinkTarget::Stale,
    }
}

/// What pressing a verification link's button did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verified {
    /// The address is now the account's verified email.
    Now {
        address: String,
    },
    Refused(LinkTarget),
    /// Another account took the address before the link was followed.
    AddressTaken,
}

/// Verifies the address a link names, using the link up, in one transaction: a link works once,
/// and only while its address still waits for it.
pub async fn verify(pool: &PgPool, claims: &Claims) -> Result<Verified, sqlx::Error> {
    let mut tx = pool.begin().await?;
    if !links::redeem(&mut tx, claims).await? {
        return Ok(Verified::Refused(LinkTarget::Used));
    }
    let state = verification::state(&mut *tx, claims.user_id, true).await?;
    let address = match target(state.as_ref(), claims) {
        LinkTarget::Awaiting { address } => address,
        // Nothing to do; the transaction rolls back, so the link is not spent on it.
        other => return Ok(Verified::Refused(other)),
    };
    match verification::apply(&mut tx, claims.user_id, &address).await {
        Ok(()) => {}
        Err(ApplyError::Taken) => return Ok(Verified::AddressTaken),
        Err(ApplyError::Database(e)) => return Err(e),
    }
    job::settled(&mut tx, claims.user_id).await?;
    tx.commit().await?;
    Ok(Verified::Now { address })
}
