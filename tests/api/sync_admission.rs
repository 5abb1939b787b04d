//! Who gets an event stream, and when its place is given back: a refused stream leaves its ticket
//! usable, and a closed stream frees its place at once.

use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

use crate::helpers::{TestApp, TestUser, assert_problem, eventually};
use crate::sse::EventStream;

async fn ticket(app: &TestApp, user: &TestUser) -> String {
    let response = app.send_as(&user.token, Method::POST, "/api/v1/events/tickets", None).await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    body["ticket"].as_str().unwrap().to_owned()
}

async fn open(app: &TestApp, path: &str, headers: &[(&str, String)]) -> reqwest::Response {
    EventStream::request(&app.client, &app.url(path), headers).await
}

#[tokio::test]
async fn a_stream_refused_with_400_403_or_429_leaves_its_ticket_usable() {
    let app = TestApp::spawn_with(|s| s.sync.max_streams_per_user = 1).await;
    let (alice, bob) = (app.new_user().await, app.new_user().await);
    let ticket = ticket(&app, &alice).await;
    let with_ticket = format!("/api/v1/events?ticket={ticket}");

    let bad_position = [("last-event-id", "soon".to_owned())];
    assert_problem(open(&app, &with_ticket, &bad_position).await, 400, "bad_request").await;

    let bobs_alias = format!("/api/v1/users/{}/events?ticket={ticket}", bob.id);
    assert_problem(open(&app, &bobs_alias, &[]).await, 403, "forbidden").await;

    let held = EventStream::bearer(&app.address, &alice.token).await;
    assert_problem(open(&app, &with_ticket, &[]).await, 429, "too_many_streams").await;
    drop(held);
    eventually("the held stream's place is free", Duration::from_secs(5), || async {
        (app.state.events.open_streams() == 0).then_some(())
    })
    .await;

    // Every refusal above left the ticket alone; it opens the stream now, and only once.
    let mut stream = EventStream::from_response(open(&app, &with_ticket, &[]).await);
    stream.wait_connected().await;
    drop(stream);
    eventually("the stream's place is free", Duration::from_secs(5), || async {
        (app.state.events.open_streams() == 0).then_some(())
    })
    .await;
    assert_problem(open(&app, &with_ticket, &[]).await, 401, "ticket_invalid").await;
}

#[tokio::test]
async fn a_closed_stream_frees_its_place_within_a_few_seconds_not_heartbeats_later() {
    // The default heartbeat (15 s): the place must not wait for a write to fail.
    let app = TestApp::spawn_with(|s| s.sync.max_streams_per_user = 1).await;
    assert!(app.settings.sync.heartbeat_secs >= 15);
    let user = app.new_user().await;
    let bearer = [("authorization", format!("Bearer {}", user.token))];
    for round in 0..10 {
        let started = std::time::Instant::now();
        let mut stream = EventStream::from_response(open(&app, "/api/v1/events", &bearer).await);
        stream.wait_connected().await;
        drop(stream);
        eventually(
            &format!("round {round}: the closed stream's place is free"),
            Duration::from_secs(3),
            || async { (app.state.events.open_streams() == 0).then_some(()) },
        )
        .await;
        assert!(started.elapsed() < Duration::from_secs(3), "round {round} took {:?}", started.elapsed());
    }
}
