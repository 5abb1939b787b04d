//! Which link tokens have been used: the "works once" half of `crate::links`.

use sqlx::{PgConnection, PgExecutor};

use crate::links::Claims;

/// Records the token as used, in the transaction of the action it performs, so the action and
/// the use commit together. False when it was used before: a concurrent second use waits on the
/// first's row and then finds it.
pub async fn redeem(conn: &mut PgConnection, claims: &Claims) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO used_link_tokens (token_id, purpose, expires_at) VALUES ($1, $2, $3)
         ON CONFLICT (token_id) DO NOTHING",
    )
    .bind(claims.id)
    .bind(claims.purpose.as_str())
    .bind(claims.expires_at)
    .execute(conn)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// Whether the token was used already; for pages that only show what a link would do.
pub async fn is_used(conn: impl PgExecutor<'_>, claims: &Claims) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM used_link_tokens WHERE token_id = $1)")
        .bind(claims.id)
        .fetch_one(conn)
        .await
}
