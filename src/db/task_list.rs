//! The task list: filters, sort orders and keyset pages. Every sort key has its own index ending
//! in `id`, so a page after a cursor is one range scan however deep it is (see
//! `docs/list-access-paths.md`). SQL is assembled only from the fixed fragments below; every
//! value the client sent is a bind parameter.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, Postgres, QueryBuilder};
use uuid::Uuid;

use super::tasks::{COLUMNS, Task, TaskRow};
use crate::domain::Priority;

/// Which of a user's tasks a listing shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shelf {
    Live,
    Trash,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    CreatedAt,
    UpdatedAt,
    /// Missing due dates last, in both directions.
    DueAt,
    /// By meaning: high > medium > low.
    Priority,
    /// Case-insensitive.
    Title,
    /// Full-text rank; only with a search.
    Relevance,
    /// The trash's order.
    DeletedAt,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Asc,
    Desc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TagMode {
    #[default]
    Any,
    All,
}

/// A full-text search as people type it, in `websearch_to_tsquery` syntax. When the last word is
/// a plain word of at least [`Search::PREFIX_MIN_CHARS`] letters or digits, outside quotes, it
/// also matches as a prefix (`mee` finds "meeting"); shorter prefixes would read the index
/// entries of every user's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Search {
    pub text: String,
    pub prefix: bool,
}

impl Search {
    pub const PREFIX_MIN_CHARS: usize = 3;

    pub fn parse(raw: &str) -> Option<Self> {
        let text = raw.trim();
        let last = text.split_whitespace().last()?;
        let prefix = last.chars().count() >= Self::PREFIX_MIN_CHARS
            && last.chars().all(char::is_alphanumeric)
            && !last.eq_ignore_ascii_case("or")
            && text.matches('"').count().is_multiple_of(2);
        Some(Self { text: text.to_owned(), prefix })
    }
}

/// What the list is narrowed to; empty fields do not narrow.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub search: Option<Search>,
    pub completed: Option<bool>,
    pub priorities: Vec<Priority>,
    pub tags: Vec<String>,
    pub tag_mode: TagMode,
    pub due_from: Option<DateTime<Utc>>,
    pub due_to: Option<DateTime<Utc>>,
    pub overdue: Option<bool>,
    pub has_due: Option<bool>,
    pub project: ProjectFilter,
    pub parent: ParentFilter,
}

/// Where in the subtask tree the listed tasks sit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ParentFilter {
    /// Every level.
    #[default]
    Any,
    /// Tasks that are nobody's subtask.
    TopLevel,
    /// The subtasks of this task.
    Of(Uuid),
}

/// Which projects' tasks a listing shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProjectFilter {
    /// The inbox and every project that is not archived.
    #[default]
    Active,
    Inbox,
    /// One project, archived or not.
    Project(Uuid),
}

/// Where the previous page ended: the last row's sort key and id.
#[derive(Debug, Clone, PartialEq)]
pub enum Key {
    Time(DateTime<Utc>),
    /// A due date, or none (which sorts last).
    Due(Option<DateTime<Utc>>),
    Rank(i16),
    Text(String),
    Relevance(f32),
}

#[derive(Debug, Clone, PartialEq)]
pub struct After {
    pub key: Key,
    pub id: Uuid,
}

#[derive(Debug, Clone)]
pub struct ListSpec {
    pub shelf: Shelf,
    pub filter: Filter,
    pub sort: SortKey,
    pub direction: Direction,
    pub limit: i64,
    pub offset: i64,
    pub after: Option<After>,
    /// A filtered list counts its matches exactly up to this many; past it, the total is the
    /// planner's estimate (at least one more than this).
    pub exact_total_up_to: i64,
    /// How many of a search's matches, the newest, a search by relevance ranks. Ranking reads
    /// each ranked row's search vector; bounding them bounds a search for a common word (a word
    /// in one task in ten is 5,000 matches at 50,000 tasks). The older matches follow, newest
    /// first, so every match stays reachable by cursor or offset.
    pub ranked_matches: i64,
}

pub struct Page {
    pub items: Vec<Task>,
    pub total: i64,
    /// False when `total` is an estimate: more than `exact_total_up_to` tasks match.
    pub total_is_exact: bool,
    /// Where the next page starts, when there is one.
    pub next: Option<After>,
}

#[derive(sqlx::FromRow)]
struct ListedRow {
    #[sqlx(flatten)]
    task: TaskRow,
    sort_text: Option<String>,
    sort_rank: Option<f32>,
    full_count: Option<i64>,
}

pub async fn list(conn: &mut PgConnection, user_id: Uuid, spec: &ListSpec) -> Result<Page, sqlx::Error> {
    match ranked(spec) && spec.direction == Direction::Desc {
        true => ranked_list(conn, user_id, spec).await,
        false => plain_list(conn, user_id, spec).await,
    }
}

/// A search by relevance: the newest `ranked_matches` matches by rank, then the rest by
/// creation, newest first. A cursor in the second part carries a time, not a rank.
async fn ranked_list(conn: &mut PgConnection, user_id: Uuid, spec: &ListSpec) -> Result<Page, sqlx::Error> {
    let older = |after: After, limit: i64, offset: i64| ListSpec {
        sort: SortKey::CreatedAt,
        direction: Direction::Desc,
        after: Some(after),
        limit,
        offset,
        ..spec.clone()
    };
    if let Some(after @ After { key: Key::Time(_), .. }) = &spec.after {
        return plain_list(conn, user_id, &older(after.clone(), spec.limit, spec.offset)).await;
    }
    let mut rows = ranked_rows(conn, user_id, spec).await?;
    // Each row carries how many matches are ranked and the oldest of them; a page past the
    // ranked part has no row to carry them.
    let (ranked, edge, matches) = match rows.first() {
        Some(row) => (row.listed.full_count.unwrap_or(0), row.edge_at.zip(row.edge_id), row.matches),
        None => {
            let (ranked, edge) = newest_edge(conn, user_id, spec).await?;
            (ranked, edge, None)
        }
    };
    let edge = edge.map(|(at, id)| After { key: Key::Time(at), id });
    // Fewer ranked than the bound: they are all the matches, and their number is the total.
    let (edge, counted) = match ranked < spec.ranked_matches {
        true => (None, Some(ranked)),
        false => (edge, matches),
    };
    let more = rows.len() as i64 > spec.limit;
    rows.truncate(usize::try_from(spec.limit).unwrap_or(0));
    let last = rows.last().map(|last| After { key: key_of(spec, &last.listed), id: last.listed.task.id });
    let mut items: Vec<Task> = rows.into_iter().map(|r| Task::from(r.listed.task)).collect();
    let remaining = spec.limit - items.len() as i64;
    let next = match edge {
        // The ranked part goes on, or ends exactly here with older matches after it.
        _ if more => last,
        Some(_) if remaining == 0 => last,
        Some(edge) => {
            // An offset past the ranked part skips into the older part.
            let offset = (spec.offset - ranked).max(0);
            let older = plain_list(conn, user_id, &older(edge, remaining, offset)).await?;
            items.extend(older.items);
            return Ok(Page {
                items,
                total: older.total,
                total_is_exact: older.total_is_exact,
                next: older.next,
            });
        }
        None => None,
    };
    let (total, total_is_exact) = total(conn, user_id, spec, counted).await?;
    Ok(Page { items, total, total_is_exact, next })
}

#[derive(sqlx::FromRow)]
struct RankedRow {
    /// `full_count` is the number of ranked matches.
    #[sqlx(flatten)]
    listed: ListedRow,
    edge_at: Option<DateTime<Utc>>,
    edge_id: Option<Uuid>,
    /// Every match, ranked or not: counted in the pass that finds the newest.
    matches: Option<i64>,
}

/// A page of the ranked part: narrow rows through the sort and the ranking, and only the
/// page's own rows read whole at the end.
async fn ranked_rows(
    conn: &mut PgConnection,
    user_id: Uuid,
    spec: &ListSpec,
) -> Result<Vec<RankedRow>, sqlx::Error> {
    let mut query = QueryBuilder::<Postgres>::new("");
    with_search(&mut query, spec);
    // The scan that finds the newest matches reads every match anyway: counting them there
    // costs a window over narrow rows, where a count of its own would read them all again.
    query.push(", newest AS MATERIALIZED (SELECT id, created_at, search, count(*) OVER () AS matches");
    from_where(&mut query, user_id, spec);
    query.push(" ORDER BY created_at DESC, id DESC LIMIT ").push_bind(spec.ranked_matches);
    query.push("), edge AS (SELECT created_at, id FROM newest ORDER BY created_at, id LIMIT 1)");
    query.push(", page AS (SELECT id, ts_rank(search, q.query) AS sort_rank FROM newest, q");
    if let Some(after) = &spec.after {
        query.push(" WHERE (ts_rank(search, q.query), id) < (");
        push_key(&mut query, spec, &after.key);
        query.push(", ").push_bind(after.id).push(")");
    }
    query.push(" ORDER BY sort_rank DESC, id DESC LIMIT ").push_bind(spec.limit + 1);
    query.push(" OFFSET ").push_bind(spec.offset);
    query.push(format_args!(
        ") SELECT {COLUMNS}, NULL::text AS sort_text, page.sort_rank, \
         (SELECT count(*) FROM newest) AS full_count, (SELECT matches FROM newest LIMIT 1) AS matches, \
         (SELECT created_at FROM edge) AS edge_at, (SELECT id FROM edge) AS edge_id \
         FROM page JOIN tasks USING (id) WHERE tasks.user_id = "
    ));
    query.push_bind(user_id).push(" ORDER BY page.sort_rank DESC, id DESC");
    query.build_query_as().persistent(false).fetch_all(&mut *conn).await
}

/// How many matches the ranked part holds, and its oldest: where the older part starts.
async fn newest_edge(
    conn: &mut PgConnection,
    user_id: Uuid,
    spec: &ListSpec,
) -> Result<(i64, Option<(DateTime<Utc>, Uuid)>), sqlx::Error> {
    let mut query = QueryBuilder::<Postgres>::new("");
    with_search(&mut query, spec);
    query.push(", newest AS (SELECT created_at, id");
    from_where(&mut query, user_id, spec);
    query.push(" ORDER BY created_at DESC, id DESC LIMIT ").push_bind(spec.ranked_matches);
    query.push(
        ") SELECT (SELECT count(*) FROM newest), oldest.created_at, oldest.id \
         FROM (SELECT 1) one LEFT JOIN (SELECT created_at, id FROM newest ORDER BY created_at, id LIMIT 1) oldest ON true",
    );
    let (count, at, id): (i64, Option<DateTime<Utc>>, Option<Uuid>) =
        query.build_query_as().persistent(false).fetch_one(&mut *conn).await?;
    Ok((count, at.zip(id)))
}

fn tasks(rows: Vec<ListedRow>) -> Vec<Task> {
    rows.into_iter().map(|r| Task::from(r.task)).collect()
}

/// The total for a page: exact up to the bound, then the planner's estimate. `counted` is the
/// count a page's first row carried, when it had one.
async fn total(
    conn: &mut PgConnection,
    user_id: Uuid,
    spec: &ListSpec,
    counted: Option<i64>,
) -> Result<(i64, bool), sqlx::Error> {
    let counted = match counted {
        Some(counted) => counted,
        None => count(conn, user_id, spec).await?,
    };
    Ok(match counted > spec.exact_total_up_to && spec.filter != Filter::default() {
        true => (estimate(conn, user_id, spec).await?.max(spec.exact_total_up_to + 1), false),
        false => (counted, true),
    })
}

async fn plain_list(conn: &mut PgConnection, user_id: Uuid, spec: &ListSpec) -> Result<Page, sqlx::Error> {
    let mut query = QueryBuilder::<Postgres>::new("");
    with_search(&mut query, spec);
    query.push(format_args!("SELECT {COLUMNS}, "));
    query.push(match spec.sort {
        SortKey::Title => "lower(title) AS sort_text, NULL::real AS sort_rank",
        SortKey::Relevance if spec.filter.search.is_some() => {
            "NULL::text AS sort_text, ts_rank(search, q.query) AS sort_rank"
        }
        _ => "NULL::text AS sort_text, NULL::real AS sort_rank",
    });
    // The total comes with the page, from the same snapshot and in the same round trip. Ranking
    // visits every match anyway, so a ranked search's first page counts them in that pass.
    if ranked(spec) && spec.after.is_none() {
        query.push(", count(*) OVER () AS full_count");
    } else {
        query.push(", (");
        push_count(&mut query, user_id, spec);
        query.push(") AS full_count");
    }
    from_where(&mut query, user_id, spec);
    if let Some(after) = &spec.after {
        query.push(" AND (").push(key_sql(spec)).push(", id) ");
        query.push(if spec.direction == Direction::Asc { "> (" } else { "< (" });
        push_key(&mut query, spec, &after.key);
        query.push(", ").push_bind(after.id).push(")");
    }
    let direction = if spec.direction == Direction::Asc { " ASC" } else { " DESC" };
    query.push(" ORDER BY ").push(key_sql(spec)).push(direction).push(", id").push(direction);
    query.push(" LIMIT ").push_bind(spec.limit + 1).push(" OFFSET ").push_bind(spec.offset);
    // Not a prepared statement: a cached generic plan cannot see the search or the user's
    // numbers, and picked a scan of all the user's tasks (138 ms instead of 3 ms at 50,000).
    let mut rows: Vec<ListedRow> = query.build_query_as().persistent(false).fetch_all(&mut *conn).await?;

    let more = rows.len() as i64 > spec.limit;
    rows.truncate(usize::try_from(spec.limit).unwrap_or(0));
    let next = match (more, rows.last()) {
        (true, Some(last)) => Some(After { key: key_of(spec, last), id: last.task.id }),
        _ => None,
    };
    // A page past the end has no row to carry the total.
    let counted = rows.first().map(|row| row.full_count.unwrap_or(0));
    let (total, total_is_exact) = total(conn, user_id, spec, counted).await?;
    Ok(Page { items: tasks(rows), total, total_is_exact, next })
}

fn ranked(spec: &ListSpec) -> bool {
    spec.sort == SortKey::Relevance && spec.filter.search.is_some()
}

/// How many tasks match, whatever page this is, for a page with no row to carry it.
async fn count(conn: &mut PgConnection, user_id: Uuid, spec: &ListSpec) -> Result<i64, sqlx::Error> {
    let mut query = QueryBuilder::<Postgres>::new("");
    with_search(&mut query, spec);
    query.push("SELECT (");
    push_count(&mut query, user_id, spec);
    query.push(")");
    query
        .build_query_scalar::<Option<i64>>()
        .persistent(false)
        .fetch_one(conn)
        .await
        .map(Option::unwrap_or_default)
}

/// How many tasks the planner expects the filter to match: the total past the exact bound, for
/// the price of planning the count (no row is read).
async fn estimate(conn: &mut PgConnection, user_id: Uuid, spec: &ListSpec) -> Result<i64, sqlx::Error> {
    let mut query = QueryBuilder::<Postgres>::new("EXPLAIN (FORMAT JSON) ");
    with_search(&mut query, spec);
    query.push("SELECT 1");
    from_where(&mut query, user_id, spec);
    let plan: sqlx::types::Json<serde_json::Value> =
        query.build_query_scalar().persistent(false).fetch_one(conn).await?;
    let rows = plan.0[0]["Plan"]["Plan Rows"].as_f64().unwrap_or_default();
    Ok(rows.round() as i64)
}

/// The count's query, written inside the list's (`q` is the search the statement starts with).
/// Unfiltered, it is the trigger-kept count. A filter's count stops one past the exact bound, so
/// its cost is bounded however many tasks match.
fn push_count(query: &mut QueryBuilder<Postgres>, user_id: Uuid, spec: &ListSpec) {
    if spec.filter == Filter::default() {
        // Trigger-kept counts: the user's live tasks less those in archived projects.
        match spec.shelf {
            Shelf::Live => query
                .push("SELECT live - coalesce((SELECT sum(total_tasks) FROM projects WHERE archived AND user_id = ")
                .push_bind(user_id)
                .push("), 0) FROM task_counts WHERE user_id = ")
                .push_bind(user_id),
            Shelf::Trash => query.push("SELECT trashed FROM task_counts WHERE user_id = ").push_bind(user_id),
        };
    } else {
        query.push("SELECT count(*) FROM (SELECT 1");
        from_where(query, user_id, spec);
        query.push(" LIMIT ").push_bind(spec.exact_total_up_to + 1).push(") matches");
    }
}

fn with_search(query: &mut QueryBuilder<Postgres>, spec: &ListSpec) {
    let Some(search) = &spec.filter.search else { return };
    let parsed = "websearch_to_tsquery('simple', todo_unaccent(";
    query.push("WITH q AS (SELECT ");
    if search.prefix {
        // websearch_to_tsquery keeps the precedence people mean (`a or b c` is a | (b & c)) and
        // does all the quoting; its text ends with the last word's lexeme, made a prefix here.
        query.push("(regexp_replace(").push(parsed).push_bind(search.text.clone());
        query.push("))::text, '''$', ''':*'))::tsquery");
    } else {
        query.push(parsed).push_bind(search.text.clone()).push("))");
    }
    query.push(" AS query) ");
}

fn from_where(query: &mut QueryBuilder<Postgres>, user_id: Uuid, spec: &ListSpec) {
    let filter = &spec.filter;
    query.push(" FROM tasks");
    if filter.search.is_some() {
        query.push(", q");
    }
    query.push(" WHERE user_id = ").push_bind(user_id);
    query.push(match spec.shelf {
        Shelf::Live => " AND deleted_at IS NULL",
        Shelf::Trash => " AND deleted_at IS NOT NULL",
    });
    if filter.search.is_some() {
        query.push(" AND search @@ q.query");
    }
    match (spec.shelf, filter.project) {
        (Shelf::Trash, _) => {}
        // The user's archived projects are few: one small array, computed once per statement.
        (Shelf::Live, ProjectFilter::Active) => {
            query.push(" AND (project_id IS NULL OR NOT project_id = ANY(ARRAY(SELECT id FROM projects WHERE archived AND user_id = ");
            query.push_bind(user_id).push(")))");
        }
        (Shelf::Live, ProjectFilter::Inbox) => {
            query.push(" AND project_id IS NULL");
        }
        (Shelf::Live, ProjectFilter::Project(id)) => {
            query.push(" AND project_id = ").push_bind(id);
        }
    }
    match filter.parent {
        ParentFilter::Any => {}
        ParentFilter::TopLevel => {
            query.push(" AND parent_id IS NULL");
        }
        ParentFilter::Of(parent) => {
            query.push(" AND parent_id = ").push_bind(parent);
        }
    }
    if let Some(completed) = filter.completed {
        query.push(" AND completed = ").push_bind(completed);
    }
    if !filter.priorities.is_empty() {
        let ranks: Vec<i16> = filter.priorities.iter().map(|p| p.rank()).collect();
        query.push(" AND priority = ANY(").push_bind(ranks).push(")");
    }
    if !filter.tags.is_empty() {
        query.push(match filter.tag_mode {
            TagMode::Any => " AND tags && ",
            TagMode::All => " AND tags @> ",
        });
        query.push_bind(filter.tags.clone()).push("::text[]");
    }
    // Written over the due index's own expression so that index serves date ranges too.
    if let Some(from) = filter.due_from {
        query
            .push(" AND due_at IS NOT NULL AND coalesce(due_at, 'infinity'::timestamptz) >= ")
            .push_bind(from);
    }
    if let Some(to) = filter.due_to {
        query.push(" AND coalesce(due_at, 'infinity'::timestamptz) <= ").push_bind(to);
    }
    match filter.overdue {
        Some(true) => query.push(" AND NOT completed AND due_at < now()"),
        Some(false) => query.push(" AND (completed OR due_at IS NULL OR due_at >= now())"),
        None => query,
    };
    match filter.has_due {
        Some(true) => query.push(" AND due_at IS NOT NULL"),
        Some(false) => query.push(" AND due_at IS NULL"),
        None => query,
    };
}

/// The sort key's SQL: the exact expression its index is built on.
fn key_sql(spec: &ListSpec) -> &'static str {
    match (spec.sort, spec.direction) {
        (SortKey::CreatedAt, _) => "created_at",
        (SortKey::UpdatedAt, _) => "updated_at",
        (SortKey::DueAt, Direction::Asc) => "coalesce(due_at, 'infinity'::timestamptz)",
        (SortKey::DueAt, Direction::Desc) => "coalesce(due_at, '-infinity'::timestamptz)",
        (SortKey::Priority, _) => "priority",
        (SortKey::Title, _) => "lower(title)",
        (SortKey::Relevance, _) if spec.filter.search.is_some() => "ts_rank(search, q.query)",
        (SortKey::Relevance, _) => "created_at",
        (SortKey::DeletedAt, _) => "deleted_at",
    }
}

fn push_key(query: &mut QueryBuilder<Postgres>, spec: &ListSpec, key: &Key) {
    match key {
        Key::Time(at) => query.push_bind(*at),
        Key::Due(at) => {
            let sentinel = match spec.direction {
                Direction::Asc => "'infinity'::timestamptz)",
                Direction::Desc => "'-infinity'::timestamptz)",
            };
            query.push("coalesce(").push_bind(*at).push("::timestamptz, ").push(sentinel)
        }
        Key::Rank(rank) => query.push_bind(*rank),
        Key::Text(text) => query.push_bind(text.clone()),
        Key::Relevance(rank) => query.push_bind(*rank).push("::real"),
    };
}

fn key_of(spec: &ListSpec, row: &ListedRow) -> Key {
    let task = &row.task;
    match spec.sort {
        SortKey::CreatedAt => Key::Time(task.created_at),
        SortKey::UpdatedAt => Key::Time(task.updated_at),
        SortKey::DueAt => Key::Due(task.due_at),
        SortKey::Priority => Key::Rank(task.priority),
        SortKey::Title => Key::Text(row.sort_text.clone().unwrap_or_default()),
        SortKey::Relevance if spec.filter.search.is_some() => {
            Key::Relevance(row.sort_rank.unwrap_or_default())
        }
        SortKey::Relevance => Key::Time(task.created_at),
        SortKey::DeletedAt => Key::Time(task.deleted_at.unwrap_or(task.created_at)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_plain_word_is_also_a_prefix() {
        let prefix = |q: &str| Search::parse(q).map(|s| s.prefix);
        assert_eq!(prefix("team mee"), Some(true));
        assert_eq!(prefix("Café"), Some(true));
        assert_eq!(prefix("dentist OR lunch"), Some(true));
        assert_eq!(prefix("\"a b\" -c dee"), Some(true));
        assert_eq!(prefix("\"team meeting\""), Some(false), "a quoted phrase stays whole");
        assert_eq!(prefix("team -lunch"), Some(false), "an exclusion is not a prefix");
        assert_eq!(prefix("standup or"), Some(false));
        assert_eq!(prefix("\"open quote"), Some(false));
        assert_eq!(prefix("it's"), Some(false), "only letters and digits become a prefix");
        assert_eq!(prefix("go to"), Some(false), "too short: it would read every user's words");
        assert_eq!(Search::parse("   "), None);
    }
}
