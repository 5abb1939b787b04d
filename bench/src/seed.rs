//! Seeding with `COPY`: users sharing one real argon2 hash, and tasks with ids the scenarios
//! (and pgbench) can compute, so no scenario has to look anything up first.

use chrono::{Duration, Utc};
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

/// How much to seed: `users` accounts, the first holding `big_user_tasks`, `tasks` in all.
#[derive(Debug, Clone, Copy)]
pub struct Size {
    pub users: usize,
    pub big_user_tasks: usize,
    pub tasks: usize,
}

impl Size {
    /// Tasks each user other than the first holds.
    pub fn tasks_per_user(&self) -> usize {
        (self.tasks.saturating_sub(self.big_user_tasks) / self.users.saturating_sub(1).max(1)).max(1)
    }

    pub fn tasks_of(&self, user: usize) -> usize {
        if user == 0 { self.big_user_tasks } else { self.tasks_per_user() }
    }
}

pub fn user_id(user: usize) -> Uuid {
    Uuid::from_u128((0xb0u128 << 120) | user as u128)
}

pub fn user_email(user: usize) -> String {
    format!("bench{user}@example.com")
}

/// Task `k` of user `user`. User 0's are `1…big_user_tasks` as plain numbers, which pgbench's
/// primary-key SELECT computes as `lpad(to_hex(k), 32, '0')::uuid`.
pub fn task_id(user: usize, k: usize) -> Uuid {
    Uuid::from_u128(((user as u128) << 64) | (k as u128 + 1))
}

/// Words that a search finds in about one task in a thousand.
pub fn rare_word(k: usize) -> String {
    format!("w{}", k % 997)
}

/// Seeds everyone but user 0 (registered over HTTP, whose hash they share); returns user 0's id.
pub async fn seed(url: &str, size: Size, password_hash: &str) -> anyhow::Result<Uuid> {
    let mut conn = PgConnection::connect(url).await?;
    sqlx::query("SET statement_timeout = 0").execute(&mut conn).await?;

    let mut users = String::new();
    for user in 1..size.users {
        users.push_str(&format!("{}\t{}\t{password_hash}\tUTC\n", user_id(user), user_email(user)));
    }
    // User 0 is registered over HTTP (its hash is the one shared); the rest come by COPY.
    let mut copy = conn.copy_in_raw("COPY users (id, email, password_hash, timezone) FROM STDIN").await?;
    copy.send(users.as_bytes()).await?;
    copy.finish().await?;

    // Every seeded address counts as confirmed, as a migrated account's does: the reminder
    // scenario measures delivery, not the verification flow (which the test suite covers).
    sqlx::query("UPDATE users SET email_verified = true").execute(&mut conn).await?;

    let big_user = big_user_id(&mut conn).await?;
    let words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"];
    let now = Utc::now();
    let mut batch = String::with_capacity(8 << 20);
    let mut copy = conn
        .copy_in_raw(
            "COPY tasks (id, user_id, title, priority, tags, due_at, timezone, created_at, updated_at) FROM STDIN",
        )
        .await?;
    for user in 0..size.users {
        let owner = if user == 0 { big_user } else { user_id(user) };
        let count = size.tasks_of(user);
        for k in 0..count {
            let created = now - Duration::seconds((count - k) as i64);
            let due =
                if k % 3 == 0 { (now + Duration::days((k % 60) as i64)).to_rfc3339() } else { "\\N".into() };
            let id = task_id(user, k);
            batch.push_str(&format!(
                "{id}\t{owner}\ttask {k} {} {}\t{}\t{{t{}}}\t{due}\tUTC\t{}\t{}\n",
                words[k % words.len()],
                rare_word(k),
                1 + k % 3,
                k % 10,
                created.to_rfc3339(),
                created.to_rfc3339(),
            ));
            if batch.len() > (7 << 20) {
                copy.send(batch.as_bytes()).await?;
                batch.clear();
            }
        }
    }
    copy.send(batch.as_bytes()).await?;
    copy.finish().await?;
    sqlx::query("ANALYZE").execute(&mut conn).await?;
    Ok(big_user)
}

/// User 0 registered over HTTP, so its id was chosen by the service.
async fn big_user_id(conn: &mut PgConnection) -> anyhow::Result<Uuid> {
    Ok(sqlx::query_scalar("SELECT id FROM users WHERE email = $1")
        .bind(user_email(0))
        .fetch_one(conn)
        .await?)
}
