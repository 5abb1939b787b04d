//! `GET /events`: live changes across web processes, resuming, tickets, limits and ends.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use smtp_sink::SmtpSink;

use crate::helpers::{TestApp, TestUser, assert_problem, eventually};
use crate::sse::{EventStream, Message, Replica, server_state};

const WAIT: Duration = Duration::from_secs(5);

async fn ticket(app: &TestApp, user: &TestUser) -> String {
    let response = app.send_as(&user.token, Method::POST, "/api/v1/events/tickets", None).await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    assert!(body["expires_at"].is_string());
    body["ticket"].as_str().unwrap().to_owned()
}

async fn open_with_ticket(app: &TestApp, ticket: &str) -> reqwest::Response {
    EventStream::request(&app.client, &app.url(&format!("/api/v1/events?ticket={ticket}")), &[]).await
}

#[tokio::test]
async fn a_write_through_one_process_reaches_a_stream_on_another_within_200_ms() {
    let app = TestApp::spawn().await;
    let other = app.second_instance().await;
    let user = app.new_user().await;
    let mut stream = EventStream::bearer(&other.address, &user.token).await;
    for i in 0..5 {
        let written = Instant::now();
        let task = app.create_task(&user, json!({"title": format!("from process one {i}")})).await;
        let committed = written.elapsed();
        let event = stream.next_event(WAIT).await.expect("the change arrives");
        let delivered = written.elapsed();
        assert_eq!(event.kind(), "task.upserted");
        assert_eq!(event.data(), task, "the event carries the task as GET returns it");
        let Message::Event { id, .. } = &event else { unreachable!() };
        assert_eq!(*id, Some(i + 1), "the event id is the change number");
        assert!(
            delivered - committed < Duration::from_millis(200),
            "delivered {:?} after the write's answer",
            delivered - committed
        );
    }
    // And the other way round, with a delete.
    let mut first = EventStream::bearer(&app.address, &user.token).await;
    let task = app.create_task(&user, json!({"title": "to delete"})).await;
    assert_eq!(first.next_event(WAIT).await.unwrap().kind(), "task.upserted");
    let path = format!("/api/v1/tasks/{}", task["id"].as_str().unwrap());
    other.send_as(&user.token, Method::DELETE, &path, &[], None).await;
    let deleted = first.next_event(WAIT).await.unwrap();
    assert_eq!(deleted.kind(), "task.deleted");
    assert_eq!(deleted.data(), json!({"id": task["id"]}));
}

#[tokio::test]
async fn a_worker_created_occurrence_appears_on_the_stream() {
    let app = TestApp::spawn().await;
    // Registered (and verified) before the worker starts, so it only ever sees reminders.
    let user = app.new_user().await;
    let smtp = SmtpSink::start().await.unwrap();
    let _worker = app.spawn_worker(&smtp).await;
    let task = app
        .create_task(&user, json!({"title": "water plants", "due_at": "2030-03-04T09:00:00Z", "recurrence_rule": "FREQ=WEEKLY"}))
        .await;
    let mut stream = EventStream::bearer(&app.address, &user.token).await;
    let path = format!("/api/v1/tasks/{}/complete", task["id"].as_str().unwrap());
    let response = app.send_as(&user.token, Method::PATCH, &path, Some(&json!({"completed": true}))).await;
    assert_eq!(response.status(), 200);
    let completed = stream.next_event(WAIT).await.unwrap();
    assert_eq!(completed.data()["completed"], true);
    let next = stream.next_event(Duration::from_secs(15)).await.expect("the worker's occurrence");
    assert_eq!(next.kind(), "task.upserted");
    let next = next.data();
    assert_ne!(next["id"], task["id"]);
    assert_eq!(next["series_id"], task["series_id"]);
    assert_eq!(next["due_at"], "2030-03-11T09:00:00Z");
    assert_eq!(next["completed"], false);
}

/// Writes send no `NOTIFY` (notifying commits cannot overlap in PostgreSQL); a change made
/// behind every web process's back, straight in the database, still reaches an open stream, by
/// the process's poll of its streams' users' change numbers.
#[tokio::test]
async fn a_change_made_straight_in_the_database_reaches_the_stream_and_no_write_notifies() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let mut listener = sqlx::postgres::PgListener::connect_with(&app.pool).await.unwrap();
    listener.listen("task_changes").await.unwrap();
    let mut stream = EventStream::bearer(&app.address, &user.token).await;
    let task = app.create_task(&user, json!({"title": "through the API"})).await;
    assert_eq!(stream.next_event(WAIT).await.unwrap().data()["title"], "through the API");

    // A client-visible change bumps `version`, which gives it a change number.
    sqlx::query(
        "UPDATE tasks SET title = 'by an operator', version = version + 1, updated_at = now()
         WHERE id = $1::uuid AND user_id = $2::uuid",
    )
    .bind(task["id"].as_str().unwrap())
    .bind(user.id.to_string())
    .execute(&app.pool)
    .await
    .unwrap();
    let event = stream.next_event(WAIT).await.expect("the poll finds the change");
    assert_eq!(event.kind(), "task.upserted");
    assert_eq!(event.data()["title"], "by an operator");
    let Message::Event { id, .. } = &event else { unreachable!() };
    assert_eq!(*id, Some(2), "the event id is the change number");

    let heard = tokio::time::timeout(Duration::from_millis(300), listener.try_recv()).await;
    assert!(heard.is_err(), "a write notified: {heard:?}");
}

#[tokio::test]
async fn a_client_that_reconnects_with_last_event_id_ends_with_exactly_the_server_state() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let stop = Arc::new(AtomicBool::new(false));
    let mut writer = Some({
        let (client, url, token, stop) =
            (app.client.clone(), app.url("/api/v1/tasks"), user.token.clone(), stop.clone());
        tokio::spawn(async move {
            let mut ids: Vec<String> = Vec::new();
            let mut n = 0u32;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let request = match (n % 8, ids.len()) {
                    (1 | 5, 1..) => {
                        client.patch(format!("{url}/{}", ids[0])).json(&json!({"title": format!("edit {n}")}))
                    }
                    (2, 2..) => client.delete(format!("{url}/{}", ids.remove(1))),
                    (3 | 7, 1..) => client.post(format!("{url}/{}/toggle", ids[ids.len() - 1])),
                    _ => client.post(&url).json(&json!({"title": format!("new {n}"), "tags": ["t"]})),
                };
                let response = request.bearer_auth(&token).send().await.unwrap();
                assert!(response.status().is_success(), "{}", response.status());
                if response.status() == 201 {
                    ids.push(response.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned());
                }
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
        })
    });

    let mut replica = Replica::default();
    let mut last_id = None;
    // Three connections in turn, each dropped mid-stream while the writer keeps going.
    for round in 0..4 {
        let mut headers = vec![("authorization", format!("Bearer {}", user.token))];
        if let Some(id) = last_id {
            headers.push(("last-event-id", format!("{id}")));
        }
        let mut stream = EventStream::open(&app.client, &app.url("/api/v1/events"), &headers).await;
        stream.wait_connected().await;
        if round == 3 {
            stop.store(true, Ordering::Relaxed);
            writer.take().unwrap().await.unwrap();
        }
        let quiet = if round == 3 { Duration::from_millis(700) } else { Duration::from_millis(400) };
        let started = Instant::now();
        while round == 3 || started.elapsed() < Duration::from_millis(400) {
            match stream.next_event(quiet).await {
                Some(event) => replica.apply_event(&event),
                None => break,
            }
        }
        assert!(stream.last_event_id.is_some() || last_id.is_some(), "events arrived");
        last_id = stream.last_event_id.or(last_id);
    }
    let server = server_state(&app, &user.token).await;
    assert!(server.0.len() > 3, "the writer made tasks");
    assert_eq!(replica, server, "every task, field for field");
}

#[tokio::test]
async fn another_users_changes_never_appear_on_your_stream() {
    let app = TestApp::spawn().await;
    let (alice, bob) = (app.new_user().await, app.new_user().await);
    let mut stream = EventStream::bearer(&app.address, &alice.token).await;
    for i in 0..10 {
        let task = app.create_task(&bob, json!({"title": format!("bob {i}")})).await;
        app.send_as(
            &bob.token,
            Method::DELETE,
            &format!("/api/v1/tasks/{}", task["id"].as_str().unwrap()),
            None,
        )
        .await;
    }
    let mine = app.create_task(&alice, json!({"title": "alice"})).await;
    let first = stream.next_event(WAIT).await.unwrap();
    assert_eq!(first.data(), mine, "the first event is alice's own");
    assert!(stream.next_event(Duration::from_millis(300)).await.is_none());

    let response = EventStream::request(
        &app.client,
        &app.url(&format!("/api/v1/users/{}/events", bob.id)),
        &[("authorization", format!("Bearer {}", alice.token))],
    )
    .await;
    assert_problem(response, 403, "forbidden").await;
}

#[tokio::test]
async fn tickets_are_single_use_expire_and_stand_for_their_user_and_token() {
    let app = TestApp::spawn_with(|s| s.sync.ticket_ttl_secs = 1).await;
    let (alice, bob) = (app.new_user().await, app.new_user().await);

    let once = ticket(&app, &alice).await;
    let response = open_with_ticket(&app, &once).await;
    let mut stream = EventStream::from_response(response);
    stream.wait_connected().await;
    let task = app.create_task(&alice, json!({"title": "seen through a ticket"})).await;
    assert_eq!(stream.next_event(WAIT).await.unwrap().data(), task);
    assert_problem(open_with_ticket(&app, &once).await, 401, "ticket_invalid").await;
    assert_problem(open_with_ticket(&app, "made-up").await, 401, "ticket_invalid").await;

    let expiring = ticket(&app, &alice).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_problem(open_with_ticket(&app, &expiring).await, 401, "ticket_invalid").await;

    // Alice's ticket opens only Alice's stream.
    let hers = ticket(&app, &alice).await;
    let url = app.url(&format!("/api/v1/users/{}/events?ticket={hers}", bob.id));
    assert_problem(EventStream::request(&app.client, &url, &[]).await, 403, "forbidden").await;

    // A ticket stands for its token: after logout it opens nothing, and its stream ends.
    let before_logout = ticket(&app, &alice).await;
    let mut stream = EventStream::from_response(open_with_ticket(&app, &ticket(&app, &alice).await).await);
    stream.wait_connected().await;
    let response = app.send_as(&alice.token, Method::POST, "/api/v1/auth/logout", None).await;
    assert_eq!(response.status(), 204);
    assert_problem(open_with_ticket(&app, &before_logout).await, 401, "token_revoked").await;
    let last = stream.until_end(WAIT).await;
    assert_eq!(last, [Message::Comment("the token was revoked".into())]);

    let response = app.client.post(app.url("/api/v1/events/tickets")).send().await.unwrap();
    assert_problem(response, 401, "token_missing").await;
}

#[tokio::test]
async fn a_stream_ends_when_its_token_expires_and_sends_heartbeats_meanwhile() {
    let app = TestApp::spawn_with(|s| {
        s.auth.token_ttl_secs = 3;
        s.sync.heartbeat_secs = 1;
    })
    .await;
    let user = app.new_user().await;
    let mut stream = EventStream::bearer(&app.address, &user.token).await;
    let messages = stream.until_end(Duration::from_secs(10)).await;
    let heartbeats = messages.iter().filter(|m| **m == Message::Comment("heartbeat".into())).count();
    assert!(heartbeats >= 1, "{messages:?}");
    assert_eq!(messages.last(), Some(&Message::Comment("the token expired".into())));
}

#[tokio::test]
async fn resuming_from_before_the_kept_tombstones_sends_resync_and_closes() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let task = app.create_task(&user, json!({"title": "doomed"})).await;
    app.send_as(
        &user.token,
        Method::DELETE,
        &format!("/api/v1/tasks/{}", task["id"].as_str().unwrap()),
        None,
    )
    .await;
    app.age_trash().await;
    let retention = todo::db::maintenance::Retention {
        tombstone_secs: 0,
        ..todo::db::maintenance::Retention::new(&app.settings)
    };
    let purged = app.purge(Some(retention)).await;
    assert_eq!((purged.trashed_tasks, purged.tombstones), (1, 1));

    let headers = [("authorization", format!("Bearer {}", user.token)), ("last-event-id", "1".to_owned())];
    let mut stream = EventStream::open(&app.client, &app.url("/api/v1/events"), &headers).await;
    stream.wait_connected().await;
    let messages = stream.until_end(WAIT).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0].kind(), "resync");
    assert_eq!(messages[0].data()["code"], "resync_required");

    let empty = [("authorization", format!("Bearer {}", user.token)), ("last-event-id", String::new())];
    let mut fresh = EventStream::open(&app.client, &app.url("/api/v1/events"), &empty).await;
    fresh.wait_connected().await;
    assert!(fresh.next_event(Duration::from_millis(300)).await.is_none(), "an empty id starts from now");
    let bad = [("authorization", format!("Bearer {}", user.token)), ("last-event-id", "soon".to_owned())];
    let response = EventStream::request(&app.client, &app.url("/api/v1/events"), &bad).await;
    assert_problem(response, 400, "bad_request").await;
}

#[tokio::test]
async fn streams_are_limited_per_user_and_per_process() {
    let app = TestApp::spawn_with(|s| {
        s.sync.max_streams_per_user = 2;
        s.sync.max_streams_per_process = 3;
    })
    .await;
    let (alice, bob) = (app.new_user().await, app.new_user().await);
    let a1 = EventStream::bearer(&app.address, &alice.token).await;
    let _a2 = EventStream::bearer(&app.address, &alice.token).await;
    let url = app.url("/api/v1/events");
    let as_user = |u: &TestUser| [("authorization", format!("Bearer {}", u.token))];
    let response = EventStream::request(&app.client, &url, &as_user(&alice)).await;
    let problem = assert_problem(response, 429, "too_many_streams").await;
    assert!(problem["detail"].as_str().unwrap().contains('2'));
    let _b1 = EventStream::bearer(&app.address, &bob.token).await;
    let response = EventStream::request(&app.client, &url, &as_user(&bob)).await;
    assert_eq!(response.headers().get("retry-after").unwrap(), "5");
    assert_problem(response, 503, "too_many_streams").await;

    // A closed stream frees its place.
    drop(a1);
    eventually("the closed stream's place is free", WAIT, || async {
        (app.state.events.open_streams() == 2).then_some(())
    })
    .await;
    let _b2 = EventStream::bearer(&app.address, &bob.token).await;
}

#[tokio::test]
async fn the_openapi_document_describes_sync() {
    let app = TestApp::spawn().await;
    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();
    for path in ["/api/v1/changes", "/api/v1/events", "/api/v1/events/tickets"] {
        assert!(doc["paths"][path].is_object(), "{path} is documented");
    }
    let events = &doc["paths"]["/api/v1/events"]["get"]["responses"]["200"]["content"];
    assert!(events["text/event-stream"].is_object(), "{events}");
    assert!(doc["paths"]["/api/v1/changes"]["get"]["responses"]["410"].is_object());
}

#[tokio::test]
async fn deleting_the_account_ends_its_streams_and_leaves_nothing_of_its_feed() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let task = app.create_task(&user, json!({"title": "gone soon"})).await;
    app.send_as(
        &user.token,
        Method::DELETE,
        &format!("/api/v1/tasks/{}", task["id"].as_str().unwrap()),
        None,
    )
    .await;
    app.age_trash().await;
    assert_eq!(app.purge(None).await.trashed_tasks, 1, "a tombstone to be removed with the account");
    app.create_task(&user, json!({"title": "still here"})).await;
    ticket(&app, &user).await;
    let mut stream = EventStream::bearer(&app.address, &user.token).await;

    let response = app.send_as(&user.token, Method::DELETE, "/api/v1/users/me", None).await;
    assert_eq!(response.status(), 204);
    let last = stream.until_end(WAIT).await;
    assert_eq!(last, [Message::Comment("the token was revoked".into())]);
    for table in ["task_counts", "task_tombstones", "caldav_departures", "event_tickets"] {
        let left: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM {table} WHERE user_id = $1"
        )))
        .bind(user.id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
        assert_eq!(left, 0, "{table} keeps nothing of a deleted account");
    }
}
