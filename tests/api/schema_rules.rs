//! The schema stays ready to shard by user (docs/scaling.md): read from the catalog of a freshly
//! migrated database, so a new table or constraint that breaks a rule fails here, not on the day
//! a deployment moves onto Citus.

use std::collections::BTreeMap;

use sqlx::Row;

use crate::helpers::TestApp;

/// The distribution root: its `id` is the user id every other table carries.
const ROOT: &str = "users";

/// Tables outside the rules, each with why. They hold no user's data by `user_id`: each is
/// keyed by a globally unique id, small and bounded by expiry, as Citus reference tables are.
const GLOBAL: &[(&str, &str)] = &[
    ("_sqlx_migrations", "the migration history"),
    ("revoked_tokens", "logins revoked before they expire: keyed by the token id, kept until it expires"),
    ("used_link_tokens", "single-use email links already used: keyed by the link id, kept until it expires"),
    ("deleted_external_accounts", "external identities of deleted accounts: no user is left to key them by"),
];

struct Table {
    user_id_not_null: bool,
}

async fn user_tables(app: &TestApp) -> BTreeMap<String, Table> {
    let rows = sqlx::query(
        "SELECT c.relname,
                (SELECT a.attnotnull FROM pg_attribute a
                 WHERE a.attrelid = c.oid AND a.attname = 'user_id' AND NOT a.attisdropped) AS user_id_not_null
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    rows.iter()
        .map(|row| {
            let name: String = row.get("relname");
            let not_null: Option<bool> = row.get("user_id_not_null");
            (name, Table { user_id_not_null: not_null.unwrap_or(false) })
        })
        .filter(|(name, _)| name != ROOT && !GLOBAL.iter().any(|(global, _)| global == name))
        .collect()
}

#[tokio::test]
async fn every_table_of_user_data_carries_a_not_null_user_id() {
    let app = TestApp::spawn().await;
    let tables = user_tables(&app).await;
    assert!(tables.contains_key("tasks") && tables.contains_key("caldav_objects"), "{:?}", tables.keys());
    let missing: Vec<&String> = tables.iter().filter(|(_, t)| !t.user_id_not_null).map(|(n, _)| n).collect();
    assert!(
        missing.is_empty(),
        "tables without a NOT NULL user_id (add one, or list the table in GLOBAL with why): {missing:?}"
    );
}

#[tokio::test]
async fn every_primary_key_and_unique_index_includes_user_id() {
    let app = TestApp::spawn().await;
    let tables = user_tables(&app).await;
    let rows = sqlx::query(
        "SELECT c.relname AS tab, i.relname AS idx, x.indisprimary AS primary,
                EXISTS (SELECT 1 FROM pg_attribute a
                        WHERE a.attrelid = c.oid AND a.attname = 'user_id'
                          AND a.attnum = ANY (x.indkey::int2[])) AS has_user
         FROM pg_index x
         JOIN pg_class c ON c.oid = x.indrelid
         JOIN pg_class i ON i.oid = x.indexrelid
         JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public' AND x.indisunique",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let mut with_pk = Vec::new();
    let mut broken = Vec::new();
    for row in &rows {
        let table: String = row.get("tab");
        if !tables.contains_key(&table) {
            continue;
        }
        if row.get::<bool, _>("primary") {
            with_pk.push(table.clone());
        }
        if !row.get::<bool, _>("has_user") {
            broken.push(format!("{table}: {}", row.get::<String, _>("idx")));
        }
    }
    assert!(broken.is_empty(), "unique keys without user_id: {broken:?}");
    let without_pk: Vec<&String> = tables.keys().filter(|t| !with_pk.contains(t)).collect();
    assert!(without_pk.is_empty(), "user tables without a primary key: {without_pk:?}");
}

#[tokio::test]
async fn foreign_keys_between_user_tables_pair_user_id_with_user_id() {
    let app = TestApp::spawn().await;
    let tables = user_tables(&app).await;
    let rows = sqlx::query(
        "SELECT k.conname, f.relname AS from_table, t.relname AS to_table,
                ARRAY(SELECT a.attname::text FROM unnest(k.conkey) WITH ORDINALITY u(n, i)
                      JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n ORDER BY u.i) AS from_cols,
                ARRAY(SELECT a.attname::text FROM unnest(k.confkey) WITH ORDINALITY u(n, i)
                      JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.n ORDER BY u.i) AS to_cols
         FROM pg_constraint k
         JOIN pg_class f ON f.oid = k.conrelid
         JOIN pg_class t ON t.oid = k.confrelid
         JOIN pg_namespace n ON n.oid = f.relnamespace
         WHERE n.nspname = 'public' AND k.contype = 'f'",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let mut checked = 0;
    let mut broken = Vec::new();
    for row in &rows {
        let (from, to): (String, String) = (row.get("from_table"), row.get("to_table"));
        if !tables.contains_key(&from) {
            continue;
        }
        let from_cols: Vec<String> = row.get("from_cols");
        let to_cols: Vec<String> = row.get("to_cols");
        let paired = if to == ROOT {
            // The user itself: `user_id` → `users.id`.
            from_cols == ["user_id"] && to_cols == ["id"]
        } else {
            from_cols.iter().zip(&to_cols).any(|(f, t)| f == "user_id" && t == "user_id")
        };
        checked += 1;
        if !paired {
            broken
                .push(format!("{}: {from}{from_cols:?} → {to}{to_cols:?}", row.get::<String, _>("conname")));
        }
    }
    assert!(checked >= 10, "only {checked} foreign keys read: is the query right?");
    assert!(broken.is_empty(), "foreign keys that do not carry user_id on both sides: {broken:?}");
}
