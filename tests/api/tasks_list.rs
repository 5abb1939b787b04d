//! Finding tasks: search, filters, sort orders and pages, each checked against what the test
//! computes itself from the tasks it created.

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, assert_problem};

fn ids(items: &[Value]) -> Vec<String> {
    items.iter().map(|t| t["id"].as_str().unwrap().to_owned()).collect()
}

/// Every page of a query, following `next_cursor`; panics if a page repeats a task.
async fn all_pages(app: &TestApp, user: &TestUser, query: &str, limit: usize) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("/api/v1/tasks?{query}&limit={limit}");
        if let Some(cursor) = &cursor {
            url.push_str(&format!("&cursor={cursor}"));
        }
        let response = app.get_as(&user.token, &url).await;
        assert_eq!(response.status(), 200, "{url}");
        let page: Value = response.json().await.unwrap();
        items.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let unique: HashSet<String> = ids(&items).into_iter().collect();
    assert_eq!(unique.len(), items.len(), "no task twice in {query}");
    items
}

fn due(task: &Value) -> Option<DateTime<Utc>> {
    task["due_at"].as_str().map(|d| d.parse().unwrap())
}

fn rank(task: &Value) -> u8 {
    match task["priority"].as_str().unwrap() {
        "low" => 1,
        "medium" => 2,
        _ => 3,
    }
}

/// 40 tasks with every combination the filters care about, in a known arrangement.
async fn seed(app: &TestApp, user: &TestUser) -> Vec<Value> {
    let now = Utc::now();
    let tag_sets = [vec!["home"], vec!["work"], vec!["work", "urgent"], vec![], vec!["home", "urgent"]];
    let mut tasks = Vec::new();
    for i in 0..40_i64 {
        let due_at = match i % 4 {
            0 => None,
            1 => Some(now - Duration::days(i)),
            _ => Some(now + Duration::hours(i * 7)),
        };
        let name = ["Alpha", "beta", "Gamma", "delta"][(i % 4) as usize];
        let priority = ["low", "medium", "high"][(i % 3) as usize];
        let body = json!({
            // i and i + 20 share a title, so the id tiebreak of the title order is exercised.
            "title": format!("{name} task {}", i % 20),
            "priority": priority,
            "tags": tag_sets[(i % 5) as usize],
            "due_at": due_at.map(|d| d.to_rfc3339()),
            "completed": i % 6 == 0,
        });
        let mut task = app.create_task(user, body).await;
        if i % 3 == 0 {
            // An edit later than creation, so updated_at orders differently from created_at.
            let path = format!("/api/v1/tasks/{}", task["id"].as_str().unwrap());
            let edited =
                app.send_as(&user.token, Method::PATCH, &path, Some(&json!({"description": "edited"}))).await;
            task = edited.json().await.unwrap();
        }
        tasks.push(task);
    }
    tasks
}

fn expect(tasks: &[Value], keep: impl Fn(&Value) -> bool) -> HashSet<String> {
    tasks.iter().filter(|t| keep(t)).map(|t| t["id"].as_str().unwrap().to_owned()).collect()
}

fn has_tag(task: &Value, tag: &str) -> bool {
    task["tags"].as_array().unwrap().iter().any(|t| t == tag)
}

#[tokio::test]
async fn every_filter_and_their_combinations_return_exactly_the_matching_tasks() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let tasks = seed(&app, &user).await;
    // Another user's tasks match every filter too, and must never show.
    let other = app.new_user().await;
    seed(&app, &other).await;
    let now = Utc::now();
    let in_a_day = (now + Duration::days(1)).to_rfc3339().replace('+', "%2B");
    let a_week_ago = (now - Duration::days(7)).to_rfc3339().replace('+', "%2B");

    let cases: Vec<(String, HashSet<String>)> = vec![
        ("completed=true".into(), expect(&tasks, |t| t["completed"] == true)),
        ("completed=false".into(), expect(&tasks, |t| t["completed"] == false)),
        ("priority=high".into(), expect(&tasks, |t| t["priority"] == "high")),
        ("priority=LOW,high".into(), expect(&tasks, |t| t["priority"] != "medium")),
        ("priority=low&priority=medium".into(), expect(&tasks, |t| t["priority"] != "high")),
        ("tags=work".into(), expect(&tasks, |t| has_tag(t, "work"))),
        ("tags=home,urgent".into(), expect(&tasks, |t| has_tag(t, "home") || has_tag(t, "urgent"))),
        (
            "tags=Work,URGENT&tag_mode=all".into(),
            expect(&tasks, |t| has_tag(t, "work") && has_tag(t, "urgent")),
        ),
        ("has_due=false".into(), expect(&tasks, |t| due(t).is_none())),
        ("has_due=true".into(), expect(&tasks, |t| due(t).is_some())),
        (
            "overdue=true".into(),
            expect(&tasks, |t| t["completed"] == false && due(t).is_some_and(|d| d < now)),
        ),
        (
            "overdue=false".into(),
            expect(&tasks, |t| !(t["completed"] == false && due(t).is_some_and(|d| d < now))),
        ),
        (
            format!("due_to={in_a_day}"),
            expect(&tasks, |t| due(t).is_some_and(|d| d <= now + Duration::days(1))),
        ),
        (
            format!("due_from={a_week_ago}"),
            expect(&tasks, |t| due(t).is_some_and(|d| d >= now - Duration::days(7))),
        ),
        (
            format!("due_from={a_week_ago}&due_to={in_a_day}"),
            expect(&tasks, |t| {
                due(t).is_some_and(|d| d >= now - Duration::days(7) && d <= now + Duration::days(1))
            }),
        ),
        (
            "completed=false&priority=high&tags=work".into(),
            expect(&tasks, |t| t["completed"] == false && t["priority"] == "high" && has_tag(t, "work")),
        ),
        (
            format!("has_due=true&tags=urgent&due_from={a_week_ago}&sort=due_at"),
            expect(&tasks, |t| has_tag(t, "urgent") && due(t).is_some_and(|d| d >= now - Duration::days(7))),
        ),
    ];
    for (query, expected) in cases {
        let found: HashSet<String> = ids(&all_pages(&app, &user, &query, 7).await).into_iter().collect();
        assert_eq!(found, expected, "{query}");
        let first: Value =
            app.get_as(&user.token, &format!("/api/v1/tasks?{query}")).await.json().await.unwrap();
        assert_eq!(first["total"], expected.len(), "total for {query}");
    }
}

#[tokio::test]
async fn each_sort_order_is_total_stable_and_puts_missing_due_dates_last() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let tasks = seed(&app, &user).await;
    let by = |key: &dyn Fn(&Value) -> (i64, String), reverse: bool| {
        let mut sorted = tasks.clone();
        sorted.sort_by(|a, b| {
            let (ka, kb) = (key(a), key(b));
            let order = ka.0.cmp(&kb.0).then(ka.1.cmp(&kb.1));
            let order = if reverse { order.reverse() } else { order };
            order.then_with(|| {
                let ids = a["id"].as_str().cmp(&b["id"].as_str());
                if reverse { ids.reverse() } else { ids }
            })
        });
        ids(&sorted)
    };
    let micros = |t: &Value, field: &str| {
        t[field].as_str().unwrap().parse::<DateTime<Utc>>().unwrap().timestamp_micros()
    };
    let title = |t: &Value| (0, t["title"].as_str().unwrap().to_lowercase());
    let due_key = |t: &Value, missing: i64| (due(t).map_or(missing, |d| d.timestamp_micros()), String::new());

    let cases: Vec<(&str, Vec<String>)> = vec![
        ("", by(&|t| (micros(t, "created_at"), String::new()), true)),
        ("sort=created_at&order=asc", by(&|t| (micros(t, "created_at"), String::new()), false)),
        ("sort=updated_at", by(&|t| (micros(t, "updated_at"), String::new()), true)),
        ("sort=priority", by(&|t| (i64::from(rank(t)), String::new()), true)),
        ("sort=priority&order=asc", by(&|t| (i64::from(rank(t)), String::new()), false)),
        ("sort=title", by(&title, false)),
        ("sort=title&order=desc", by(&title, true)),
        ("sort=due_at", by(&|t| due_key(t, i64::MAX), false)),
        ("sort=due_at&order=desc", by(&|t| due_key(t, i64::MIN), true)),
    ];
    for (query, expected) in cases {
        for limit in [100, 6] {
            let found = ids(&all_pages(&app, &user, query, limit).await);
            assert_eq!(found, expected, "sort {query:?}, pages of {limit}");
        }
    }
    let by_due = all_pages(&app, &user, "sort=due_at&order=desc", 100).await;
    assert!(
        by_due.iter().rev().take(10).all(|t| due(t).is_none()),
        "missing due dates last when descending too"
    );
}

#[tokio::test]
async fn a_cursor_visits_every_task_exactly_once_while_tasks_are_created_and_completed() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let original = seed(&app, &user).await;
    for query in ["sort=created_at", "sort=due_at", "sort=title&order=desc", "sort=priority"] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        let mut round = 0;
        loop {
            let mut url = format!("/api/v1/tasks?{query}&limit=6");
            if let Some(cursor) = &cursor {
                url.push_str(&format!("&cursor={cursor}"));
            }
            let page: Value = app.get_as(&user.token, &url).await.json().await.unwrap();
            seen.extend(ids(page["items"].as_array().unwrap()));
            // Between pages, another device adds a task and completes one not yet seen.
            round += 1;
            app.create_task(&user, json!({"title": format!("added during paging {round}")})).await;
            let unseen =
                original.iter().map(|t| t["id"].as_str().unwrap()).find(|id| !seen.iter().any(|s| s == id));
            let Some(done) = unseen else { break };
            app.send_as(
                &user.token,
                Method::PATCH,
                &format!("/api/v1/tasks/{done}/complete"),
                Some(&json!({"completed": true})),
            )
            .await;
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
        let unique: HashSet<&String> = seen.iter().collect();
        assert_eq!(unique.len(), seen.len(), "{query}: nothing twice");
        for task in &original {
            assert!(
                unique.contains(&task["id"].as_str().unwrap().to_owned()),
                "{query}: every original task once"
            );
        }
    }
}

#[tokio::test]
async fn search_understands_phrases_or_exclusion_prefixes_and_other_languages() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let titles = [
        ("Team meeting notes", "agenda for the weekly sync"),
        ("Meeting the dentist", ""),
        ("Lunch with the team", "the meeting point: the café"),
        ("Café crème", "order at the counter"),
        ("Привет мир", "встреча с командой"),
        ("Ταξίδι στην Αθήνα", ""),
        ("Naïve résumé review", ""),
        ("Пʼять хвилин", "Ukrainian apostrophe"),
        ("ΟΔΟΣ ΑΘΗΝΑΣ", ""),
    ];
    let mut by_title = std::collections::HashMap::new();
    for (title, description) in titles {
        let task = app.create_task(&user, json!({"title": title, "description": description})).await;
        by_title.insert(task["id"].as_str().unwrap().to_owned(), title);
    }
    let other = app.new_user().await;
    app.create_task(&other, json!({"title": "Team meeting (someone else's)"})).await;

    let search = |q: &'static str| {
        let app = &app;
        let user = &user;
        let by_title = &by_title;
        async move {
            let url = format!("/api/v1/tasks?q={}", urlencode(q));
            let response = app.get_as(&user.token, &url).await;
            assert_eq!(response.status(), 200, "{q}");
            let page: Value = response.json().await.unwrap();
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| by_title[t["id"].as_str().unwrap()])
                .collect::<Vec<_>>()
        }
    };
    let set = |v: Vec<&'static str>| v.into_iter().collect::<HashSet<_>>();

    // Title matches rank above description matches.
    let meeting = search("meeting").await;
    assert_eq!(
        set(meeting.clone()),
        set(vec!["Team meeting notes", "Meeting the dentist", "Lunch with the team"])
    );
    assert_eq!(meeting.last(), Some(&"Lunch with the team"), "a description match ranks last: {meeting:?}");
    assert_eq!(search("\"team meeting\"").await, vec!["Team meeting notes"], "a quoted phrase");
    assert_eq!(set(search("meeting -dentist").await), set(vec!["Team meeting notes", "Lunch with the team"]));
    assert_eq!(
        set(search("dentist or lunch").await),
        set(vec!["Meeting the dentist", "Lunch with the team"])
    );
    assert_eq!(set(search("mee").await), set(search("meeting").await), "the last word is a prefix");
    assert_eq!(search("team mee").await.len(), 2, "earlier words are whole: team + mee*");
    assert_eq!(
        set(search("cafe").await),
        set(vec!["Café crème", "Lunch with the team"]),
        "accents do not matter"
    );
    assert_eq!(search("CAFÉ CRÈME").await, vec!["Café crème"]);
    assert_eq!(search("мир").await, vec!["Привет мир"], "Cyrillic whole words");
    assert_eq!(search("встреча").await, vec!["Привет мир"]);
    assert_eq!(
        set(search("Αθήνα").await),
        set(vec!["Ταξίδι στην Αθήνα", "ΟΔΟΣ ΑΘΗΝΑΣ"]),
        "Greek, with a prefix"
    );
    assert_eq!(search("naive resume").await, vec!["Naïve résumé review"]);
    assert_eq!(search("Пʼять").await, vec!["Пʼять хвилин"], "a letter that unaccents to a quote");
    assert_eq!(search("Hawaiʻi").await, Vec::<&str>::new(), "no match, and no error");
    assert_eq!(search("ΟΔΟΣ").await, vec!["ΟΔΟΣ ΑΘΗΝΑΣ"], "uppercase Greek with a final sigma");
    // `or` binds looser than the words around it: dentist | (lunch & team).
    assert_eq!(
        set(search("dentist or lunch team").await),
        set(vec!["Meeting the dentist", "Lunch with the team"])
    );
    assert_eq!(set(search("dentist or lunch zzz").await), set(vec!["Meeting the dentist"]));
    assert!(search("nothing-like-this").await.is_empty());
    assert!(search("\"").await.is_empty(), "a lone quote is harmless");

    // With a sort, the sort wins over relevance.
    let sorted: Value =
        app.get_as(&user.token, "/api/v1/tasks?q=meeting&sort=title").await.json().await.unwrap();
    let titles: Vec<&str> =
        sorted["items"].as_array().unwrap().iter().map(|t| by_title[t["id"].as_str().unwrap()]).collect();
    assert_eq!(titles, ["Lunch with the team", "Meeting the dentist", "Team meeting notes"]);
    assert_eq!(sorted["total"], 3);
    // The total is the same on a ranked first page (counted in the ranking pass) and after it.
    let first: Value = app.get_as(&user.token, "/api/v1/tasks?q=meeting&limit=1").await.json().await.unwrap();
    assert_eq!(first["total"], 3);
    let cursor = first["next_cursor"].as_str().unwrap();
    let second: Value = app
        .get_as(&user.token, &format!("/api/v1/tasks?q=meeting&limit=1&cursor={cursor}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(second["total"], 3);
    let beyond: Value =
        app.get_as(&user.token, "/api/v1/tasks?q=meeting&offset=5").await.json().await.unwrap();
    assert_eq!((beyond["total"].as_i64(), beyond["items"].as_array().unwrap().len()), (Some(3), 0));
    // Relevance pages with a cursor like any other order.
    let paged = all_pages(&app, &user, "q=meeting", 1).await;
    assert_eq!(paged.iter().map(|t| by_title[t["id"].as_str().unwrap()]).collect::<Vec<_>>(), meeting);
}

fn urlencode(raw: &str) -> String {
    raw.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn offset_pages_carry_the_total_and_a_cursor_to_continue() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    for i in 0..5 {
        app.create_task(&user, json!({"title": format!("Task {i}")})).await;
    }
    let page: Value = app.get_as(&user.token, "/api/v1/tasks?limit=2&offset=1").await.json().await.unwrap();
    assert_eq!(
        (page["total"].as_i64(), page["limit"].as_i64(), page["offset"].as_i64()),
        (Some(5), Some(2), Some(1))
    );
    let titles: Vec<&str> =
        page["items"].as_array().unwrap().iter().map(|t| t["title"].as_str().unwrap()).collect();
    assert_eq!(titles, ["Task 3", "Task 2"]);
    let next = page["next_cursor"].as_str().unwrap();
    let rest: Value =
        app.get_as(&user.token, &format!("/api/v1/tasks?limit=2&cursor={next}")).await.json().await.unwrap();
    let titles: Vec<&str> =
        rest["items"].as_array().unwrap().iter().map(|t| t["title"].as_str().unwrap()).collect();
    assert_eq!(titles, ["Task 1", "Task 0"]);
    assert!(rest["next_cursor"].is_null(), "the last page says so");
}

#[tokio::test]
async fn the_trash_pages_with_limit_and_cursor_most_recently_deleted_first() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let mut deleted = Vec::new();
    for i in 0..5 {
        let task = app.create_task(&user, json!({"title": format!("Old {i}")})).await;
        let id = task["id"].as_str().unwrap().to_owned();
        app.send_as(&user.token, Method::DELETE, &format!("/api/v1/tasks/{id}"), None).await;
        deleted.push(id);
    }
    deleted.reverse();
    let first: Value = app.get_as(&user.token, "/api/v1/tasks/trash?limit=3").await.json().await.unwrap();
    assert_eq!(first["total"], 5);
    let cursor = first["next_cursor"].as_str().unwrap();
    let second: Value = app
        .get_as(&user.token, &format!("/api/v1/tasks/trash?limit=3&cursor={cursor}"))
        .await
        .json()
        .await
        .unwrap();
    let mut seen = ids(first["items"].as_array().unwrap());
    seen.extend(ids(second["items"].as_array().unwrap()));
    assert_eq!(seen, deleted);
    assert!(second["next_cursor"].is_null());
    let live: Value = app.get_as(&user.token, "/api/v1/tasks").await.json().await.unwrap();
    assert_eq!(live["total"], 0, "trashed tasks never appear in the list");
    // The unfiltered totals are kept by the database as tasks move, whoever moves them.
    app.send_as(&user.token, Method::POST, &format!("/api/v1/tasks/{}/restore", deleted[0]), None).await;
    sqlx::query("DELETE FROM tasks WHERE id = $1")
        .bind(deleted[1].parse::<uuid::Uuid>().unwrap())
        .execute(&app.pool)
        .await
        .unwrap();
    let live: Value = app.get_as(&user.token, "/api/v1/tasks").await.json().await.unwrap();
    let trash: Value = app.get_as(&user.token, "/api/v1/tasks/trash").await.json().await.unwrap();
    assert_eq!((live["total"].as_i64(), trash["total"].as_i64()), (Some(1), Some(3)));
    assert_eq!(live["items"].as_array().unwrap().len(), 1);
    let filtered = app.get_as(&user.token, "/api/v1/tasks/trash?q=old").await;
    assert_problem(filtered, 400, "bad_request").await;
}

#[tokio::test]
async fn bad_list_parameters_are_problem_documents_naming_the_parameter() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    for i in 0..3 {
        app.create_task(&user, json!({"title": format!("Task {i}")})).await;
    }
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("offset=-1", "offset"),
        ("offset=10001", "offset"),
        ("priority=urgent", "priority"),
        ("priority=low,", "priority"),
        ("completed=yes", "completed"),
        ("overdue=1", "overdue"),
        ("has_due=maybe", "has_due"),
        ("tag_mode=some", "tag_mode"),
        ("tags=,", "tags"),
        ("sort=colour", "sort"),
        ("sort=id", "sort"),
        ("order=up", "order"),
        ("due_from=tomorrow", "due_from"),
        ("due_to=2030-13-01T00:00:00Z", "due_to"),
        ("due_from=2030-02-01T00:00:00Z&due_to=2030-01-01T00:00:00Z", "due_to"),
    ] {
        let response = app.get_as(&user.token, &format!("/api/v1/tasks?{query}")).await;
        let problem = assert_problem(response, 422, "validation_failed").await;
        assert_eq!(problem["errors"][0]["field"], field, "{query}");
    }
    for query in ["limit=ten", "offset=1.5", "colour=red", "limit=1&limit=2", "sort=title;DROP TABLE tasks"] {
        let response = app.get_as(&user.token, &format!("/api/v1/tasks?{query}")).await;
        assert_problem(
            response,
            if query.starts_with("sort=") { 422 } else { 400 },
            if query.starts_with("sort=") { "validation_failed" } else { "bad_request" },
        )
        .await;
    }

    // Cursors: altered, from another sort or filter, from another user, or beside an offset.
    let page: Value = app.get_as(&user.token, "/api/v1/tasks?limit=1&sort=title").await.json().await.unwrap();
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let mut altered = cursor.clone();
    let flipped = if altered.ends_with('A') { 'B' } else { 'A' };
    altered.pop();
    altered.push(flipped);
    for query in [
        format!("limit=1&sort=title&cursor={altered}"),
        "limit=1&sort=title&cursor=garbage".to_owned(),
        format!("limit=1&sort=due_at&cursor={cursor}"),
        format!("limit=1&sort=title&order=desc&cursor={cursor}"),
        format!("limit=1&sort=title&completed=false&cursor={cursor}"),
    ] {
        let response = app.get_as(&user.token, &format!("/api/v1/tasks?{query}")).await;
        let problem = assert_problem(response, 400, "bad_request").await;
        assert!(problem["detail"].as_str().unwrap().contains("cursor"), "{query}: {problem}");
    }
    let other = app.new_user().await;
    let stolen = app.get_as(&other.token, &format!("/api/v1/tasks?limit=1&sort=title&cursor={cursor}")).await;
    assert_problem(stolen, 400, "bad_request").await;
    let with_offset =
        app.get_as(&user.token, &format!("/api/v1/tasks?limit=1&sort=title&offset=1&cursor={cursor}")).await;
    assert_eq!(assert_problem(with_offset, 422, "validation_failed").await["errors"][0]["field"], "offset");
    let same = app.get_as(&user.token, &format!("/api/v1/tasks?limit=1&sort=title&cursor={cursor}")).await;
    assert_eq!(same.status(), 200, "the untouched cursor still works");
}

#[tokio::test]
async fn the_list_alias_under_users_filters_the_same() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    app.create_task(&user, json!({"title": "Tagged", "tags": ["x"]})).await;
    app.create_task(&user, json!({"title": "Plain"})).await;
    let page: Value = app
        .get_as(&user.token, &format!("/api/v1/users/{}/tasks?tags=x", user.id))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["total"], 1);
    assert_eq!(page["items"][0]["title"], "Tagged");
}

#[tokio::test]
async fn a_filtered_total_is_exact_up_to_the_bound_and_an_estimate_past_it() {
    let app = TestApp::spawn_with(|s| s.tasks.list_exact_total_up_to = 3).await;
    let user = app.new_user().await;
    for i in 0..5 {
        let tags = if i < 3 { json!(["few", "many"]) } else { json!(["many"]) };
        app.create_task(&user, json!({"title": format!("Task {i}"), "tags": tags})).await;
    }
    let page = |query: &'static str| {
        let (app, user) = (&app, &user);
        async move {
            let page: Value =
                app.get_as(&user.token, &format!("/api/v1/tasks?{query}")).await.json().await.unwrap();
            (page["total"].as_i64().unwrap(), page["total_is_exact"].as_bool().unwrap(), page)
        }
    };
    // At the bound: counted exactly.
    let (total, exact, _) = page("tags=few").await;
    assert_eq!((total, exact), (3, true));
    // Past it: an estimate, never below the bound plus one, on every page and past the end.
    for query in ["tags=many", "tags=many&limit=2", "tags=many&offset=100", "q=task"] {
        let (total, exact, body) = page(query).await;
        assert!(!exact, "{query}: {body}");
        assert!(total > 3, "{query}: an estimate past the bound is larger than it: {body}");
    }
    // Every match is still listed, whatever the total says.
    assert_eq!(all_pages(&app, &user, "tags=many", 2).await.len(), 5);
    // An unfiltered list's total is the kept count: always exact.
    let (total, exact, _) = page("limit=1").await;
    assert_eq!((total, exact), (5, true));
}

#[tokio::test]
async fn a_search_ranks_its_newest_matches_and_lists_the_older_ones_after_them_newest_first() {
    let app = TestApp::spawn_with(|s| s.tasks.search_ranked_matches = 3).await;
    let user = app.new_user().await;
    // The oldest says "alpha" most often: by rank alone it would come first.
    let titles = [
        "alpha alpha alpha alpha oldest",
        "alpha second",
        "alpha third",
        "alpha fourth",
        "alpha alpha alpha fifth",
        "alpha sixth",
    ];
    let mut created = Vec::new();
    for title in titles {
        created
            .push(app.create_task(&user, json!({"title": title})).await["id"].as_str().unwrap().to_owned());
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    app.create_task(&user, json!({"title": "unrelated"})).await;
    let title_of = |id: &str| titles[created.iter().position(|c| c == id).unwrap()];

    let page: Value = app.get_as(&user.token, "/api/v1/tasks?q=alpha").await.json().await.unwrap();
    let order: Vec<&str> = ids(page["items"].as_array().unwrap()).iter().map(|id| title_of(id)).collect();
    assert_eq!(page["total"], 6);
    // The newest three by rank (the fifth says it three times), then the rest newest first.
    assert_eq!(order[0], "alpha alpha alpha fifth");
    let mut ranked: Vec<&str> = order[..3].to_vec();
    ranked.sort_unstable();
    assert_eq!(ranked, ["alpha alpha alpha fifth", "alpha fourth", "alpha sixth"]);
    assert_eq!(order[3..], ["alpha third", "alpha second", "alpha alpha alpha alpha oldest"]);

    // Every page size, by cursor, visits the same order once; offsets cut it in the same places.
    for limit in 1..=4 {
        let paged: Vec<String> = ids(&all_pages(&app, &user, "q=alpha", limit).await);
        assert_eq!(paged.iter().map(|id| title_of(id)).collect::<Vec<_>>(), order, "limit {limit}");
    }
    for offset in 0..=6 {
        let page: Value = app
            .get_as(&user.token, &format!("/api/v1/tasks?q=alpha&limit=2&offset={offset}"))
            .await
            .json()
            .await
            .unwrap();
        let got: Vec<&str> = ids(page["items"].as_array().unwrap()).iter().map(|id| title_of(id)).collect();
        let want: Vec<&str> = order.iter().skip(offset).take(2).copied().collect();
        assert_eq!(got, want, "offset {offset}");
        assert_eq!(page["total"], 6);
    }
    // Least relevant first ranks every match, as before: the two that repeat the word come last.
    let reversed: Value =
        app.get_as(&user.token, "/api/v1/tasks?q=alpha&order=asc").await.json().await.unwrap();
    let reversed: Vec<&str> =
        ids(reversed["items"].as_array().unwrap()).iter().map(|id| title_of(id)).collect();
    assert_eq!(reversed[4..], ["alpha alpha alpha fifth", "alpha alpha alpha alpha oldest"]);
}
