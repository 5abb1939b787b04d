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
    (
        "verification_recipients",
        "verification emails per address in the last hour, from any account: keyed by an address digest",
    ),
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

/// Statements that read several users' rows on purpose, each with why (a substring of the
/// statement, and the file it is in).
const MULTI_USER: &[(&str, &str, &str)] = &[
    ("src/db/tasks/mod.rs", "FROM tasks {filter}", "the filter, given by each caller, names the user"),
    (
        "src/db/tasks/mod.rs",
        "series_start IS NULL",
        "the upgrade's backfill: a read across users, then a write per task that names its user",
    ),
];

/// Pieces of statements built in steps, each a whole literal, with the step that names the user.
const FRAGMENTS: &[(&str, &str, &str)] =
    &[("src/db/task_list.rs", " FROM tasks", "the list's query builder pushes `WHERE user_id = ` next")];

/// The string literals of a Rust source file, outside comments and char literals.
fn string_literals(source: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut chars = source.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            // A char literal: '"' or '\"' is not the start of a string.
            '\'' => {
                let literal: String = chars.clone().take(3).collect();
                if literal.starts_with("\"'") {
                    chars.nth(1);
                } else if literal.starts_with("\\\"'") {
                    chars.nth(2);
                }
            }
            '"' => {
                let mut text = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        c => text.push(c),
                    }
                }
                found.push(text);
            }
            _ => {}
        }
    }
    found
}

fn rust_files(dir: &std::path::Path, into: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, into);
        } else if path.extension().is_some_and(|e| e == "rs") {
            into.push(path);
        }
    }
}

/// Whether `sql` reads or writes `table` (after FROM, UPDATE, INTO or JOIN).
fn touches(sql: &str, table: &str) -> bool {
    let words: Vec<&str> = sql.split(|c: char| c.is_whitespace() || c == '(' || c == ',').collect();
    words.windows(2).any(|pair| {
        ["FROM", "UPDATE", "INTO", "JOIN"].contains(&pair[0].to_ascii_uppercase().as_str())
            && pair[1] == table
    })
}

/// Without the user in a statement, Citus sends it to every shard, and a multi-shard `FOR UPDATE`
/// fails (docs/scaling.md, "Queries by id name the user"). Read from the source, so a new query
/// that forgets the user fails here.
#[tokio::test]
async fn every_statement_on_user_data_names_the_user() {
    let app = TestApp::spawn().await;
    let tables = user_tables(&app).await;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["src/db", "src/jobs", "workers/src"] {
        rust_files(&root.join(dir), &mut files);
    }
    let mut statements = 0;
    let mut unnamed = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(root).unwrap().to_string_lossy().into_owned();
        for sql in string_literals(&std::fs::read_to_string(file).unwrap()) {
            let Some(table) = tables.keys().find(|table| touches(&sql, table)) else { continue };
            statements += 1;
            let allowed = MULTI_USER.iter().any(|(f, part, _)| *f == relative && sql.contains(part))
                || FRAGMENTS.iter().any(|(f, fragment, _)| *f == relative && sql == *fragment);
            if !(sql.contains("user_id") || sql.contains("owner") || allowed) {
                unnamed.push(format!(
                    "{relative} ({table}): {}",
                    sql.split_whitespace().collect::<Vec<_>>().join(" ")
                ));
            }
        }
    }
    assert!(statements > 100, "the scan found only {statements} statements: is it still reading the source?");
    assert!(
        unnamed.is_empty(),
        "statements on user data that do not name the user (add `AND user_id = $n`, or list one that \
         reads several users on purpose in MULTI_USER with why):\n{}",
        unnamed.join("\n")
    );
}
