//! Calendar subscription feeds through HTTP: created with the address shown once, listed
//! without it, revoked; the feed itself public, cached by ETag, scoped to its owner (and to one
//! project when asked), and written as RFC 5545 that survives hostile text.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, assert_problem};

async fn create(app: &TestApp, user: &TestUser, body: Value) -> reqwest::Response {
    app.send_as(&user.token, Method::POST, "/api/v1/calendar-feeds", Some(&body)).await
}

/// A feed's path (`/calendar/todo_cal_….ics`) and id.
async fn feed(app: &TestApp, user: &TestUser, body: Value) -> (String, String) {
    let response = create(app, user, body).await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    let url = created["url"].as_str().unwrap();
    let path = &url[url.find("/calendar/").expect("a /calendar/ address")..];
    (path.to_owned(), created["id"].as_str().unwrap().to_owned())
}

async fn project(app: &TestApp, user: &TestUser, name: &str) -> String {
    let body = json!({"name": name});
    let response = app.send_as(&user.token, Method::POST, "/api/v1/projects", Some(&body)).await;
    assert_eq!(response.status(), 201);
    response.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
}

/// The feed's body, unfolded into content lines, after checking the framing: CRLF everywhere,
/// no line over 75 octets, one VCALENDAR.
async fn lines(app: &TestApp, path: &str) -> Vec<String> {
    let response = app.get(path).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/calendar; charset=utf-8");
    let body = response.text().await.unwrap();
    assert!(body.ends_with("\r\n"));
    for line in body.split("\r\n") {
        assert!(line.len() <= 75, "a line of {} octets: {line}", line.len());
        assert!(!line.contains('\n') && !line.contains('\r'), "a bare line break: {line:?}");
    }
    let unfolded = body.replace("\r\n ", "");
    let lines: Vec<String> = unfolded.split("\r\n").filter(|l| !l.is_empty()).map(str::to_owned).collect();
    assert_eq!(lines.first().map(String::as_str), Some("BEGIN:VCALENDAR"));
    assert_eq!(lines.last().map(String::as_str), Some("END:VCALENDAR"));
    lines
}

fn count(lines: &[String], line: &str) -> usize {
    lines.iter().filter(|l| *l == line).count()
}

fn has(lines: &[String], line: &str) -> bool {
    count(lines, line) > 0
}

#[tokio::test]
async fn a_feed_is_created_listed_without_its_secret_and_revoked_into_a_bare_404() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let response = create(&app, &user, json!({"name": "  My tasks "})).await;
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let created: Value = response.json().await.unwrap();
    let url = created["url"].as_str().unwrap();
    let secret = url.rsplit('/').next().unwrap().strip_suffix(".ics").unwrap().to_owned();
    assert!(url.starts_with("http") && url.contains("/calendar/todo_cal_"), "{url}");
    assert_eq!(secret.len(), "todo_cal_".len() + 43, "256 random bits: {secret}");
    assert_eq!(created["name"], "My tasks");
    assert_eq!(created["project_id"], Value::Null);
    assert_eq!(created["hint"], format!("todo_cal_…{}", &secret[secret.len() - 4..]));
    let path = format!("/calendar/{secret}.ics");
    let id = created["id"].as_str().unwrap();

    let listed = app.get_as(&user.token, "/api/v1/calendar-feeds").await.text().await.unwrap();
    assert!(!listed.contains(&secret["todo_cal_".len()..]), "never listed: {listed}");
    let listed: Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed["items"][0]["id"], id);
    assert_eq!(listed["items"][0]["hint"], created["hint"]);

    let lines = lines(&app, &path).await;
    assert!(has(&lines, "X-WR-CALNAME:My tasks") && has(&lines, "VERSION:2.0"));
    // Read-only: no other method is served there.
    let post = app.client.request(Method::POST, app.url(&path)).send().await.unwrap();
    assert_eq!(post.status(), 404);
    // No other credential is needed, and the stored digest is not the secret.
    let stored: Vec<u8> =
        sqlx::query_scalar("SELECT digest FROM calendar_feeds").fetch_one(&app.pool).await.unwrap();
    assert_eq!(stored.len(), 32);

    let other = app.new_user().await;
    let foreign =
        app.send_as(&other.token, Method::DELETE, &format!("/api/v1/calendar-feeds/{id}"), None).await;
    assert_problem(foreign, 404, "not_found").await;
    assert_eq!(app.get(&path).await.status(), 200, "another user cannot revoke it");

    let revoked =
        app.send_as(&user.token, Method::DELETE, &format!("/api/v1/calendar-feeds/{id}"), None).await;
    assert_eq!(revoked.status(), 204);
    assert_problem(app.get(&path).await, 404, "not_found").await;
    let again = app.send_as(&user.token, Method::DELETE, &format!("/api/v1/calendar-feeds/{id}"), None).await;
    assert_eq!(again.status(), 404);
    let listed: Value = app.get_as(&user.token, "/api/v1/calendar-feeds").await.json().await.unwrap();
    assert_eq!(listed["items"], json!([]));
    // Malformed and unknown secrets look the same as revoked ones.
    assert_problem(app.get("/calendar/todo_cal_nope.ics").await, 404, "not_found").await;
    let unknown = format!("/calendar/todo_cal_{}.ics", "A".repeat(43));
    assert_problem(app.get(&unknown).await, 404, "not_found").await;
}

#[tokio::test]
async fn the_feed_shows_open_due_tasks_as_events_and_nothing_else_nor_anyone_elses() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let other = app.new_user().await;
    let dentist = app.create_task(&user, json!({"title": "Dentist", "due_at": "2027-07-14T09:30:00+02:00", "timezone": "Europe/Paris", "tags": ["health"], "priority": "high"})).await;
    assert_eq!(dentist["timezone"], "Europe/Paris");
    app.create_task(
        &user,
        json!({"title": "Rent", "due_at": "2027-08-01T00:00:00+02:00", "timezone": "Europe/Paris"}),
    )
    .await;
    app.create_task(&user, json!({"title": "Someday"})).await;
    let done =
        app.create_task(&user, json!({"title": "Done already", "due_at": "2027-07-15T10:00:00Z"})).await;
    let trashed =
        app.create_task(&user, json!({"title": "Thrown away", "due_at": "2027-07-16T10:00:00Z"})).await;
    app.create_task(&other, json!({"title": "Not yours", "due_at": "2027-07-14T10:00:00Z"})).await;
    let toggle = format!("/api/v1/tasks/{}/toggle", done["id"].as_str().unwrap());
    assert_eq!(app.send_as(&user.token, Method::POST, &toggle, None).await.status(), 200);
    let trash = format!("/api/v1/tasks/{}", trashed["id"].as_str().unwrap());
    assert_eq!(app.send_as(&user.token, Method::DELETE, &trash, None).await.status(), 204);
    let (path, _) = feed(&app, &user, json!({})).await;

    let lines = lines(&app, &path).await;
    assert_eq!(count(&lines, "BEGIN:VEVENT"), 2, "{lines:#?}");
    assert!(has(&lines, "SUMMARY:Dentist") && has(&lines, "SUMMARY:Rent"));
    for absent in ["Someday", "Done already", "Thrown away", "Not yours"] {
        assert!(!lines.iter().any(|l| l.contains(absent)), "{absent} is not in the feed");
    }
    assert!(has(&lines, "X-WR-CALNAME:Tasks"), "the default name");
    assert!(has(&lines, "DTSTART;TZID=Europe/Paris:20270714T093000"), "{lines:#?}");
    assert!(has(&lines, "DTEND;TZID=Europe/Paris:20270714T103000"));
    assert!(has(&lines, "DTSTART;VALUE=DATE:20270801") && has(&lines, "DTEND;VALUE=DATE:20270802"));
    assert_eq!(count(&lines, "TZID:Europe/Paris"), 1, "one VTIMEZONE for the zone");
    assert!(has(&lines, "CATEGORIES:health") && has(&lines, "PRIORITY:1"));
    // No personal data beyond the tasks.
    assert!(!lines.iter().any(|l| l.contains(&user.email) || l.contains("@example.com")));
}

#[tokio::test]
async fn a_to_do_feed_lists_every_open_task_with_status_priority_tags_rule_and_alarm() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    app.create_task(&user, json!({"title": "Someday", "priority": "low"})).await;
    app.create_task(&user, json!({
        "title": "Standup", "due_at": "2027-03-01T09:00:00-05:00", "timezone": "America/New_York",
        "recurrence_rule": "FREQ=WEEKLY;BYDAY=MO", "reminder_at": "2027-03-01T08:45:00-05:00", "tags": ["work", "team"],
    })).await;
    let (path, _) = feed(&app, &user, json!({})).await;
    let lines = lines(&app, &format!("{path}?component=vtodo")).await;
    assert_eq!(count(&lines, "BEGIN:VTODO"), 2);
    assert_eq!(count(&lines, "STATUS:NEEDS-ACTION"), 2);
    assert!(has(&lines, "PRIORITY:9") && has(&lines, "PRIORITY:5"));
    assert!(has(&lines, "DUE;TZID=America/New_York:20270301T090000"));
    assert!(has(&lines, "RRULE:FREQ=WEEKLY;BYDAY=MO"));
    assert!(has(&lines, "CATEGORIES:team,work") || has(&lines, "CATEGORIES:work,team"), "{lines:#?}");
    assert!(has(&lines, "TRIGGER;RELATED=END:-PT15M"));
    assert_eq!(count(&lines, "BEGIN:VEVENT"), 0);
    assert_eq!(app.get(&format!("{path}?component=vjournal")).await.status(), 400);
}

#[tokio::test]
async fn the_etag_answers_304_until_any_task_changes_and_head_answers_like_get() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let task = app.create_task(&user, json!({"title": "A", "due_at": "2027-07-14T10:00:00Z"})).await;
    let (path, _) = feed(&app, &user, json!({})).await;
    let first = app.get(&path).await;
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["cache-control"], "private, max-age=300");
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    let body = first.text().await.unwrap();
    assert_eq!(app.get(&path).await.text().await.unwrap(), body, "the same data reads the same");

    let cached = app.client.get(app.url(&path)).header("If-None-Match", &etag).send().await.unwrap();
    assert_eq!(cached.status(), 304);
    assert_eq!(cached.headers()["etag"], etag.as_str());
    let head = app.client.request(Method::HEAD, app.url(&path)).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["etag"], etag.as_str());
    assert!(head.text().await.unwrap().is_empty());
    let todos = app.get(&format!("{path}?component=vtodo")).await;
    assert_ne!(todos.headers()["etag"], etag.as_str(), "each component has its own tag");

    let rename = format!("/api/v1/tasks/{}", task["id"].as_str().unwrap());
    let changed = app.send_as(&user.token, Method::PATCH, &rename, Some(&json!({"title": "B"}))).await;
    assert_eq!(changed.status(), 200);
    let fresh = app.client.get(app.url(&path)).header("If-None-Match", &etag).send().await.unwrap();
    assert_eq!(fresh.status(), 200);
    assert_ne!(fresh.headers()["etag"], etag.as_str());
    assert!(fresh.text().await.unwrap().contains("SUMMARY:B\r\n"));
}

#[tokio::test]
async fn a_project_feed_shows_only_that_project_and_ends_with_it() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let other = app.new_user().await;
    let work = project(&app, &user, "Work").await;
    let foreign = project(&app, &other, "Theirs").await;
    app.create_task(&user, json!({"title": "In work", "due_at": "2027-07-14T10:00:00Z", "project_id": work}))
        .await;
    app.create_task(&user, json!({"title": "In inbox", "due_at": "2027-07-14T10:00:00Z"})).await;

    for bad in [
        json!({"project_id": foreign}),
        json!({"project_id": uuid::Uuid::new_v4()}),
        json!({"project_id": "nope"}),
    ] {
        let problem = assert_problem(create(&app, &user, bad).await, 422, "validation_failed").await;
        assert_eq!(problem["errors"][0]["field"], "project_id");
    }
    let blank =
        assert_problem(create(&app, &user, json!({"name": "  "})).await, 422, "validation_failed").await;
    assert_eq!(blank["errors"][0]["field"], "name");
    let (path, _) = feed(&app, &user, json!({"project_id": work})).await;
    let lines = lines(&app, &path).await;
    assert!(has(&lines, "SUMMARY:In work") && !has(&lines, "SUMMARY:In inbox"));
    assert!(has(&lines, "X-WR-CALNAME:Work"), "named after the project");
    let listed: Value = app.get_as(&user.token, "/api/v1/calendar-feeds").await.json().await.unwrap();
    assert_eq!(listed["items"][0]["project_id"], work.as_str());

    let gone = app.send_as(&user.token, Method::DELETE, &format!("/api/v1/projects/{work}"), None).await;
    assert_eq!(gone.status(), 204);
    assert_problem(app.get(&path).await, 404, "not_found").await;
    let listed: Value = app.get_as(&user.token, "/api/v1/calendar-feeds").await.json().await.unwrap();
    assert_eq!(listed["items"], json!([]), "the feed went with its project");
}

#[tokio::test]
async fn hostile_text_is_escaped_and_cannot_forge_components() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let title = "Pay; \"Bob\", now \\ é🎉 END:VEVENT ".to_owned() + &"日本".repeat(40);
    let description = "line one\nEND:VEVENT\r\nBEGIN:VEVENT\nSUMMARY:forged";
    app.create_task(&user, json!({"title": title, "description": description, "due_at": "2027-07-14T10:00:00Z", "tags": ["a;b", "c,d"]})).await;
    let (path, _) = feed(&app, &user, json!({"name": "Mine, all; mine"})).await;
    let lines = lines(&app, &path).await;
    assert_eq!(count(&lines, "BEGIN:VEVENT"), 1);
    assert_eq!(count(&lines, "END:VEVENT"), 1);
    assert!(!has(&lines, "SUMMARY:forged"));
    let escaped = format!("SUMMARY:Pay\\; \"Bob\"\\, now \\\\ é🎉 END:VEVENT {}", "日本".repeat(40));
    assert!(has(&lines, &escaped), "{lines:#?}");
    assert!(has(&lines, "DESCRIPTION:line one\\nEND:VEVENT\\nBEGIN:VEVENT\\nSUMMARY:forged"));
    assert!(has(&lines, "CATEGORIES:a\\;b,c\\,d"));
    assert!(has(&lines, "X-WR-CALNAME:Mine\\, all\\; mine"));
}

#[tokio::test]
async fn an_account_holds_at_most_twenty_feeds_however_many_are_created_at_once() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let attempts = (0..26).map(|_| create(&app, &user, json!({})));
    let statuses: Vec<u16> =
        futures::future::join_all(attempts).await.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 20, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 6, "{statuses:?}");
    assert_problem(create(&app, &user, json!({})).await, 409, "calendar_feed_limit_reached").await;
}

#[tokio::test]
async fn feeds_are_managed_with_the_account_scope_only() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let account = crate::token_scopes::create_token(&app, &user, &["account"]).await;
    let reader = crate::token_scopes::create_token(&app, &user, &["tasks:read"]).await;
    let body = json!({});
    let made = app.send_as(&account, Method::POST, "/api/v1/calendar-feeds", Some(&body)).await;
    assert_eq!(made.status(), 201);
    let refused = app.send_as(&reader, Method::POST, "/api/v1/calendar-feeds", Some(&body)).await;
    assert_problem(refused, 403, "insufficient_scope").await;
    assert_eq!(app.get_as(&reader, "/api/v1/calendar-feeds").await.status(), 403);
}

#[tokio::test]
async fn fetching_a_feed_counts_against_its_owners_read_rate_limit() {
    let app = TestApp::spawn_with(|s| {
        s.rate_limit.enabled = true;
        s.rate_limit.user_reads_per_minute = 3;
    })
    .await;
    let user = app.new_user().await;
    let (path, _) = feed(&app, &user, json!({})).await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let response = app.get(&path).await;
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            assert!(response.headers().contains_key("retry-after"));
            break;
        }
    }
    assert_eq!(statuses.first(), Some(&200), "{statuses:?}");
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
}

#[tokio::test]
async fn a_feed_larger_than_a_page_holds_every_task_once_across_ties_and_tasks_without_due_times() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    // 450 tasks on three due times (ties across page ends), then 200 with none: the first page of
    // to-dos (500) ends among those without a due time.
    let dues = ["2027-01-01T10:00:00Z", "2027-01-02T10:00:00Z", "2027-01-03T10:00:00Z"];
    for chunk in 0..7 {
        let operations: Vec<Value> = (0..100)
            .map(|i| chunk * 100 + i)
            .filter(|n| *n < 650)
            .map(|n| {
                let mut task = json!({"title": format!("task {n}")});
                if n < 450 {
                    task["due_at"] = json!(dues[n % 3]);
                }
                json!({"op": "create", "task": task})
            })
            .collect();
        if operations.is_empty() {
            break;
        }
        let body = json!({"operations": operations});
        let response = app.send_as(&user.token, Method::POST, "/api/v1/tasks/bulk", Some(&body)).await;
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    }
    let (path, _) = feed(&app, &user, json!({})).await;
    let uids = |lines: &[String]| {
        let uids: std::collections::BTreeSet<String> =
            lines.iter().filter(|l| l.starts_with("UID:")).cloned().collect();
        (uids.len(), lines.iter().filter(|l| l.starts_with("UID:")).count())
    };
    let events = lines(&app, &path).await;
    assert_eq!(uids(&events), (450, 450), "each task with a due time once");
    let todos = lines(&app, &format!("{path}?component=vtodo")).await;
    assert_eq!(uids(&todos), (650, 650), "every open task once");
}
