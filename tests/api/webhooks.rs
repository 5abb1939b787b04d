//! Webhooks end to end: the app over real HTTP, a real worker, and a real receiver that checks
//! every signature with its own HMAC.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use smtp_sink::SmtpSink;

use crate::helpers::{TestApp, TestUser, TestWorker, assert_problem, eventually};
use crate::webhook_receiver::Receiver;

const WAIT: Duration = Duration::from_secs(30);

/// An app whose endpoints may point at this machine, where the receivers run.
pub async fn app_allowing_private() -> TestApp {
    TestApp::spawn_with(|s| s.webhooks.allow_private_targets = true).await
}

/// A worker that may reach this machine and retries after a few hundred milliseconds rather
/// than the production schedule's seconds and hours (same number of attempts).
pub async fn fast_worker(app: &TestApp, smtp: &SmtpSink) -> TestWorker {
    app.spawn_worker_with(smtp, |s| {
        s.webhooks.allow_private_targets = true;
        s.webhooks.retry_schedule_ms = vec![300; 7];
        s.webhooks.timeout_secs = 3;
    })
    .await
}

/// Registers an endpoint; its id and secret.
pub async fn register(app: &TestApp, user: &TestUser, url: &str, events: &[&str]) -> (String, String) {
    let body = json!({"url": url, "events": events, "description": "test receiver"});
    let response = app.send_as(&user.token, Method::POST, "/api/v1/webhooks", Some(&body)).await;
    assert_eq!(response.status(), 201, "registering {url}");
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let created: Value = response.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(location, format!("/api/v1/webhooks/{id}"));
    (id, created["secret"].as_str().unwrap().to_owned())
}

pub async fn deliveries(app: &TestApp, user: &TestUser, id: &str) -> Vec<Value> {
    let response = app.get_as(&user.token, &format!("/api/v1/webhooks/{id}/deliveries")).await;
    assert_eq!(response.status(), 200);
    let page: Value = response.json().await.unwrap();
    page["items"].as_array().unwrap().clone()
}

fn without_change_seq(data: &Value) -> (Value, i64) {
    let mut data = data.clone();
    let seq = data.as_object_mut().unwrap().remove("change_seq").expect("change_seq").as_i64().unwrap();
    (data, seq)
}

#[tokio::test]
async fn a_receiver_that_fails_at_first_gets_the_retry_and_every_signature_verifies() {
    let app = app_allowing_private().await;
    let smtp = SmtpSink::start().await.unwrap();
    let receiver = Receiver::start().await;
    receiver.answer(&[500, 503]);
    let user = app.new_user().await;
    let (id, secret) =
        register(&app, &user, &receiver.url("/hook"), &["task.created", "task.completed"]).await;
    assert!(secret.starts_with("whsec_"), "{secret}");
    receiver.trust(&secret);
    let _worker = fast_worker(&app, &smtp).await;

    let created = app.create_task(&user, json!({"title": "Water the plants"})).await;
    let path = format!("/api/v1/tasks/{}/complete", created["id"].as_str().unwrap());
    let done = app.send_as(&user.token, Method::PATCH, &path, Some(&json!({"completed": true}))).await;
    assert_eq!(done.status(), 200);
    let completed: Value = done.json().await.unwrap();

    let accepted = eventually("both events accepted", WAIT, || async {
        let accepted = receiver.accepted();
        (accepted.len() >= 2).then_some(accepted)
    })
    .await;
    let all = receiver.received();
    assert!(all.iter().all(|r| r.verified_by == [0]), "every signature verifies: {all:?}");
    let answers: Vec<u16> = all.iter().map(|r| r.answered).collect();
    assert_eq!(answers, [500, 503, 200, 200], "two failures, the retry, then the next message");
    assert_eq!(all[0].id, all[2].id, "a retry keeps its webhook-id");
    assert_ne!(all[2].id, all[3].id);
    let now = chrono::Utc::now().timestamp();
    assert!(all.iter().all(|r| (now - r.timestamp).abs() < 300), "fresh timestamps");

    assert_eq!(accepted[0].body["type"], "task.created");
    assert_eq!(accepted[1].body["type"], "task.completed");
    let (created_data, first_seq) = without_change_seq(&accepted[0].body["data"]);
    let (completed_data, second_seq) = without_change_seq(&accepted[1].body["data"]);
    assert_eq!(created_data, created, "the task as the API answered it");
    assert_eq!(completed_data, completed);
    assert!(second_seq > first_seq, "change numbers rise");

    let log = deliveries(&app, &user, &id).await;
    assert_eq!(log.len(), 2);
    assert_eq!(log[0]["event_type"], "task.completed", "newest first");
    assert_eq!((log[0]["status"].as_str(), log[0]["attempts"].as_i64()), (Some("succeeded"), Some(1)));
    assert_eq!((log[1]["status"].as_str(), log[1]["attempts"].as_i64()), (Some("succeeded"), Some(3)));
    assert_eq!(log[1]["webhook_id"], all[0].id.as_str());
    assert_eq!(log[1]["status_code"], 200);
    assert_eq!(log[1]["response_body"], "ok");
    assert!(log[1]["next_attempt_at"].is_null());
}

#[tokio::test]
async fn a_410_disables_the_endpoint_and_its_owner_is_told_how_to_enable_it() {
    let app = app_allowing_private().await;
    let smtp = SmtpSink::start().await.unwrap();
    let receiver = Receiver::start().await;
    receiver.answer(&[410]);
    let user = app.new_user().await;
    let (id, secret) = register(&app, &user, &receiver.url("/gone"), &["task.created"]).await;
    receiver.trust(&secret);
    let _worker = fast_worker(&app, &smtp).await;
    app.create_task(&user, json!({"title": "First"})).await;

    let endpoint = eventually("the endpoint is disabled", WAIT, || async {
        let endpoint: Value =
            app.get_as(&user.token, &format!("/api/v1/webhooks/{id}")).await.json().await.unwrap();
        (endpoint["enabled"] == false).then_some(endpoint)
    })
    .await;
    assert_eq!(endpoint["disabled_reason"], "gone");
    let log = deliveries(&app, &user, &id).await;
    assert_eq!((log[0]["status"].as_str(), log[0]["status_code"].as_i64()), (Some("failed"), Some(410)));
    assert_eq!(receiver.received().len(), 1, "no retry after a 410");

    let notice = eventually("the owner is emailed", WAIT, || async {
        smtp.messages().into_iter().find_map(|m| {
            let parsed = mail_parser::MessageParser::default().parse(&m.data)?;
            let text = parsed.body_text(0)?.into_owned();
            (parsed.subject() == Some("A webhook endpoint was disabled")).then_some(text)
        })
    })
    .await;
    assert!(notice.contains("410") && notice.contains("\"enabled\": true"), "{notice}");

    // Nothing is sent while disabled; enabling it sends what came since.
    app.create_task(&user, json!({"title": "While disabled"})).await;
    let enable = json!({"enabled": true});
    let response =
        app.send_as(&user.token, Method::PATCH, &format!("/api/v1/webhooks/{id}"), Some(&enable)).await;
    assert_eq!(response.status(), 200);
    let endpoint: Value = response.json().await.unwrap();
    assert_eq!((endpoint["enabled"].as_bool(), endpoint["disabled_reason"].as_str()), (Some(true), None));
    app.create_task(&user, json!({"title": "After"})).await;
    let accepted = eventually("the next change arrives", WAIT, || async {
        let accepted = receiver.accepted();
        (!accepted.is_empty()).then_some(accepted)
    })
    .await;
    assert_eq!(accepted[0].body["data"]["title"], "After");
}

#[tokio::test]
async fn a_bulk_request_of_100_operations_makes_100_ordered_deliveries() {
    let app = app_allowing_private().await;
    let smtp = SmtpSink::start().await.unwrap();
    let receiver = Receiver::start().await;
    let user = app.new_user().await;
    let (id, secret) = register(&app, &user, &receiver.url("/bulk"), &["task.created"]).await;
    receiver.trust(&secret);
    let operations: Vec<Value> =
        (0..100).map(|i| json!({"op": "create", "task": {"title": format!("Bulk {i:03}")}})).collect();
    let response = app
        .send_as(&user.token, Method::POST, "/api/v1/tasks/bulk", Some(&json!({"operations": operations})))
        .await;
    assert_eq!(response.status(), 200);
    let queued: i64 =
        sqlx::query_scalar("SELECT count(*) FROM webhook_messages").fetch_one(&app.pool).await.unwrap();
    assert_eq!(queued, 100, "one message per operation");
    let jobs = app.jobs("todo.webhook").await;
    assert_eq!(jobs.len(), 1, "one delivery job for the whole burst: {jobs:?}");

    let _worker = fast_worker(&app, &smtp).await;
    let accepted = eventually("all 100 delivered", WAIT, || async {
        let accepted = receiver.accepted();
        (accepted.len() >= 100).then_some(accepted)
    })
    .await;
    assert_eq!(accepted.len(), 100, "each once");
    let titles: Vec<String> =
        accepted.iter().map(|r| r.body["data"]["title"].as_str().unwrap().to_owned()).collect();
    let expected: Vec<String> = (0..100).map(|i| format!("Bulk {i:03}")).collect();
    assert_eq!(titles, expected, "in change order");
    let seqs: Vec<i64> = accepted.iter().map(|r| r.body["data"]["change_seq"].as_i64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "change numbers rise: {seqs:?}");
    assert!(accepted.iter().all(|r| r.verified_by == [0]));
    assert_eq!(deliveries(&app, &user, &id).await.len(), 50, "the log pages");
}

#[tokio::test]
async fn private_targets_are_refused_without_the_setting_when_written_and_when_sent() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    for url in [
        "http://127.0.0.1:9/hook",
        "http://localhost:9/",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/",
        "http://[::ffff:10.0.0.1]/",
        "http://100.64.0.1/",
        "http://[fd00:ec2::254]/",
        "http://10.0.0.8/",
        "ftp://hooks.example.com/",
        "hooks.example.com",
    ] {
        let body = json!({"url": url, "events": ["task.created"]});
        let response = app.send_as(&user.token, Method::POST, "/api/v1/webhooks", Some(&body)).await;
        let problem = assert_problem(response, 422, "validation_failed").await;
        assert_eq!(problem["errors"][0]["field"], "url", "{url}: {problem}");
    }
    let body = json!({"url": "https://hooks.example.com/in", "events": ["task.exploded"]});
    let response = app.send_as(&user.token, Method::POST, "/api/v1/webhooks", Some(&body)).await;
    let problem = assert_problem(response, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "events");
    let body = json!({"url": "https://hooks.example.com/in", "events": ["task.created"]});
    let response = app.send_as(&user.token, Method::POST, "/api/v1/webhooks", Some(&body)).await;
    assert_eq!(response.status(), 201);
    let id = response.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let patch = json!({"url": "http://127.0.0.1:9/"});
    let response =
        app.send_as(&user.token, Method::PATCH, &format!("/api/v1/webhooks/{id}"), Some(&patch)).await;
    assert_problem(response, 422, "validation_failed").await;

    // A private URL stored while the setting was on is refused at send time once it is off.
    let receiver = Receiver::start().await;
    sqlx::query("UPDATE webhook_endpoints SET url = $1")
        .bind(receiver.url("/"))
        .execute(&app.pool)
        .await
        .unwrap();
    let smtp = SmtpSink::start().await.unwrap();
    let _worker = app.spawn_worker_with(&smtp, |s| s.webhooks.retry_schedule_ms = vec![60_000]).await;
    app.create_task(&user, json!({"title": "Not for localhost"})).await;
    let log = eventually("the attempt is recorded", WAIT, || async {
        let log = deliveries(&app, &user, &id).await;
        log.first().filter(|d| d["attempts"] == 1).cloned()
    })
    .await;
    assert!(log["error"].as_str().unwrap().contains("refused"), "{log}");
    assert!(log["status_code"].is_null());
    assert!(receiver.received().is_empty(), "nothing reached the private address");
}

#[tokio::test]
async fn after_a_rotation_messages_carry_signatures_from_both_secrets() {
    let app = app_allowing_private().await;
    let smtp = SmtpSink::start().await.unwrap();
    let receiver = Receiver::start().await;
    let user = app.new_user().await;
    let (id, old) = register(&app, &user, &receiver.url("/rotate"), &["task.created"]).await;
    let response =
        app.send_as(&user.token, Method::POST, &format!("/api/v1/webhooks/{id}/rotate"), None).await;
    assert_eq!(response.status(), 200);
    let rotated: Value = response.json().await.unwrap();
    let new = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert!(rotated["previous_secret_expires_at"].is_string());
    receiver.trust(&old);
    receiver.trust(&new);
    let _worker = fast_worker(&app, &smtp).await;
    let response = app.send_as(&user.token, Method::POST, &format!("/api/v1/webhooks/{id}/test"), None).await;
    assert_eq!(response.status(), 202);
    let ping: Value = response.json().await.unwrap();
    let accepted = eventually("the ping arrives", WAIT, || async {
        let accepted = receiver.accepted();
        (!accepted.is_empty()).then_some(accepted)
    })
    .await;
    assert_eq!(accepted[0].body["type"], "ping");
    assert_eq!(accepted[0].id, ping["webhook_id"].as_str().unwrap());
    assert_eq!(accepted[0].signatures.len(), 2, "{:?}", accepted[0].signatures);
    assert_eq!(accepted[0].verified_by, [0, 1], "one signature per secret");

    // A retry sends the same message again, with the same webhook-id.
    let path = format!("/api/v1/webhooks/{id}/deliveries/{}/retry", ping["id"].as_str().unwrap());
    let response = app.send_as(&user.token, Method::POST, &path, None).await;
    assert_eq!(response.status(), 202);
    let again = eventually("the retry arrives", WAIT, || async {
        let accepted = receiver.accepted();
        (accepted.len() >= 2).then_some(accepted)
    })
    .await;
    assert_eq!(again[1].id, again[0].id);

    // Once the overlap is over, only the new secret signs.
    sqlx::query("UPDATE webhook_endpoints SET previous_secret_until = now() - interval '1 second'")
        .execute(&app.pool)
        .await
        .unwrap();
    let response = app.send_as(&user.token, Method::POST, &format!("/api/v1/webhooks/{id}/test"), None).await;
    assert_eq!(response.status(), 202);
    let after = eventually("the ping after the overlap", WAIT, || async {
        let accepted = receiver.accepted();
        (accepted.len() >= 3).then_some(accepted)
    })
    .await;
    assert_eq!(after[2].signatures.len(), 1, "{:?}", after[2].signatures);
    assert_eq!(after[2].verified_by, [1], "signed by the new secret alone");
}

#[tokio::test]
async fn an_account_holds_at_most_ten_endpoints_however_many_are_created_at_once() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let creates = (0..14).map(|i| {
        let (app, user) = (&app, &user);
        async move {
            let body = json!({"url": format!("https://hooks.example.com/{i}"), "events": ["task.created"]});
            app.send_as(&user.token, Method::POST, "/api/v1/webhooks", Some(&body)).await
        }
    });
    let responses = futures::future::join_all(creates).await;
    let created = responses.iter().filter(|r| r.status() == 201).count();
    assert_eq!(created, 10);
    for response in responses.into_iter().filter(|r| r.status() != 201) {
        assert_problem(response, 409, "webhook_limit_reached").await;
    }
    let list: Value = app.get_as(&user.token, "/api/v1/webhooks").await.json().await.unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 10);
    assert!(list["items"][0].get("secret").is_none(), "secrets are shown once");

    // Another user sees none of them.
    let other = app.new_user().await;
    let id = list["items"][0]["id"].as_str().unwrap();
    for path in [format!("/api/v1/webhooks/{id}"), format!("/api/v1/webhooks/{id}/deliveries")] {
        assert_problem(app.get_as(&other.token, &path).await, 404, "not_found").await;
    }
    let response = app.send_as(&other.token, Method::DELETE, &format!("/api/v1/webhooks/{id}"), None).await;
    assert_problem(response, 404, "not_found").await;
    let response = app.send_as(&user.token, Method::DELETE, &format!("/api/v1/webhooks/{id}"), None).await;
    assert_eq!(response.status(), 204);
}

/// The events of every kind of writer, in one endpoint's order: task routes, projects, the trash
/// and its purge, the worker's reminder and next occurrence.
#[tokio::test]
async fn every_kind_of_change_reaches_a_subscribed_endpoint_in_change_order() {
    let app = app_allowing_private().await;
    let smtp = SmtpSink::start().await.unwrap();
    let receiver = Receiver::start().await;
    let user = app.new_user().await;
    let all = todo::webhooks::EVENTS;
    let (_, secret) = register(&app, &user, &receiver.url("/all"), all).await;
    receiver.trust(&secret);
    let send = |method: Method, path: String, body: Option<Value>| {
        let (app, user) = (&app, &user);
        async move {
            let response = app.send_as(&user.token, method, &path, body.as_ref()).await;
            assert!(response.status().is_success(), "{path}: {}", response.status());
        }
    };

    let project: Value = app
        .send_as(&user.token, Method::POST, "/api/v1/projects", Some(&json!({"name": "Home"})))
        .await
        .json()
        .await
        .unwrap();
    let project_id = project["id"].as_str().unwrap().to_owned();
    send(Method::PATCH, format!("/api/v1/projects/{project_id}"), Some(json!({"color": "#112233"}))).await;
    let task = app.create_task(&user, json!({"title": "Chores"})).await;
    let id = task["id"].as_str().unwrap().to_owned();
    send(Method::PATCH, format!("/api/v1/tasks/{id}"), Some(json!({"title": "More chores"}))).await;
    send(Method::POST, format!("/api/v1/tasks/{id}/toggle"), None).await;
    send(Method::POST, format!("/api/v1/tasks/{id}/toggle"), None).await;
    send(Method::DELETE, format!("/api/v1/tasks/{id}"), None).await;
    send(Method::POST, format!("/api/v1/tasks/{id}/restore"), None).await;
    send(Method::DELETE, format!("/api/v1/projects/{project_id}"), None).await;
    let expected_by_web = [
        "project.created",
        "project.updated",
        "task.created",
        "task.updated",
        "task.completed",
        "task.reopened",
        "task.deleted",
        "task.restored",
        "project.deleted",
    ];

    // The worker's writes: a reminder sent, and a recurring task's next occurrence.
    let remind = (chrono::Utc::now() - chrono::Duration::seconds(1)).to_rfc3339();
    let due = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let reminded =
        app.create_task(&user, json!({"title": "Call Bo", "due_at": due, "reminder_at": remind})).await;
    let _worker = fast_worker(&app, &smtp).await;
    let events = eventually("the reminder's event", WAIT, || async {
        let events: Vec<String> =
            receiver.accepted().iter().map(|r| r.body["type"].as_str().unwrap().to_owned()).collect();
        events.contains(&"reminder.sent".to_owned()).then_some(events)
    })
    .await;
    assert_eq!(&events[..expected_by_web.len()], expected_by_web, "in change order");
    let accepted = receiver.accepted();
    let sent = accepted.iter().find(|r| r.body["type"] == "reminder.sent").unwrap();
    assert_eq!(sent.body["data"]["id"], reminded["id"]);

    let series = app
        .create_task(
            &user,
            json!({"title": "Daily", "due_at": "2030-03-04T09:00:00Z", "recurrence_rule": "FREQ=DAILY"}),
        )
        .await;
    let path = format!("/api/v1/tasks/{}/complete", series["id"].as_str().unwrap());
    send(Method::PATCH, path, Some(json!({"completed": true}))).await;
    let next = eventually("the next occurrence's event", WAIT, || async {
        receiver.accepted().into_iter().find(|r| {
            r.body["type"] == "task.created"
                && r.body["data"]["series_id"] == series["series_id"]
                && r.body["data"]["id"] != series["id"]
        })
    })
    .await;
    assert_eq!(next.body["data"]["due_at"], "2030-03-05T09:00:00Z");

    // The purge of the trash, by the maintenance job, is a last `task.deleted`.
    send(Method::DELETE, format!("/api/v1/tasks/{}", reminded["id"].as_str().unwrap()), None).await;
    app.age_trash().await;
    app.purge(None).await;
    eventually("the purge's event", WAIT, || async {
        let deleted = receiver
            .accepted()
            .into_iter()
            .filter(|r| r.body["type"] == "task.deleted" && r.body["data"]["id"] == reminded["id"])
            .count();
        (deleted == 2).then_some(())
    })
    .await;
    let seqs: Vec<i64> =
        receiver.accepted().iter().filter_map(|r| r.body["data"]["change_seq"].as_i64()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "each change has its own, higher number: {seqs:?}");
    assert!(receiver.received().iter().all(|r| r.verified_by == [0]));
}

#[tokio::test]
async fn retry_after_on_a_429_or_a_503_is_obeyed_instead_of_the_schedule() {
    let app = app_allowing_private().await;
    let smtp = SmtpSink::start().await.unwrap();
    let receiver = Receiver::start().await;
    receiver.answer_retry_after(429, 2);
    receiver.answer_retry_after(503, 2);
    let user = app.new_user().await;
    let (_, secret) = register(&app, &user, &receiver.url("/busy"), &["task.created"]).await;
    receiver.trust(&secret);
    let _worker = fast_worker(&app, &smtp).await;
    app.create_task(&user, json!({"title": "Later, please"})).await;
    let received = eventually("the retries", WAIT, || async {
        let received = receiver.received();
        (received.len() >= 3).then_some(received)
    })
    .await;
    for pair in received.windows(2) {
        let waited = pair[1].arrived - pair[0].arrived;
        assert!(waited >= Duration::from_millis(1900), "waited {waited:?}, not the 300 ms schedule");
    }
    let answers: Vec<u16> = received.iter().map(|r| r.answered).collect();
    assert_eq!(answers, [429, 503, 200]);
}

#[tokio::test]
async fn an_endpoint_failing_past_the_limit_is_disabled_and_its_owner_emailed() {
    let app = app_allowing_private().await;
    let smtp = SmtpSink::start().await.unwrap();
    let receiver = Receiver::start().await;
    receiver.answer_always(500);
    let user = app.new_user().await;
    let (id, secret) = register(&app, &user, &receiver.url("/down"), &["task.created"]).await;
    receiver.trust(&secret);
    // Three days in production; a second here, with more attempts than fit in it.
    let _worker = app
        .spawn_worker_with(&smtp, |s| {
            s.webhooks.allow_private_targets = true;
            s.webhooks.retry_schedule_ms = vec![400; 7];
            s.webhooks.disable_after_secs = 1;
        })
        .await;
    app.create_task(&user, json!({"title": "Into the void"})).await;
    let endpoint = eventually("the endpoint is disabled", WAIT, || async {
        let endpoint: Value =
            app.get_as(&user.token, &format!("/api/v1/webhooks/{id}")).await.json().await.unwrap();
        (endpoint["enabled"] == false).then_some(endpoint)
    })
    .await;
    assert_eq!(endpoint["disabled_reason"], "failing");
    let attempts = receiver.received().len();
    assert!((2..8).contains(&attempts), "disabled before the schedule ran out ({attempts} attempts)");
    let log = deliveries(&app, &user, &id).await;
    assert_eq!(log[0]["status"], "pending", "kept, to be sent once enabled again");
    let notice = eventually("the owner is emailed", WAIT, || async {
        smtp.messages().into_iter().find_map(|m| {
            let parsed = mail_parser::MessageParser::default().parse(&m.data)?;
            let text = parsed.body_text(0)?.into_owned();
            (parsed.subject() == Some("A webhook endpoint was disabled")).then_some(text)
        })
    })
    .await;
    assert!(notice.contains("three days") && notice.contains(&id), "{notice}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(receiver.received().len(), attempts, "nothing more is sent while disabled");
}

#[tokio::test]
async fn a_job_queued_before_jobs_named_their_owner_still_delivers() {
    let app = app_allowing_private().await;
    let smtp = SmtpSink::start().await.unwrap();
    let receiver = Receiver::start().await;
    let user = app.new_user().await;
    let (id, secret) = register(&app, &user, &receiver.url("/hook"), &["task.created"]).await;
    receiver.trust(&secret);
    app.create_task(&user, json!({"title": "queued before the upgrade"})).await;
    // The payload as `webhook_wake` wrote it before it named the owner.
    let rewritten = sqlx::query(
        "UPDATE apalis.jobs SET job = convert_to(json_build_object('endpoint_id', $1::uuid)::text, 'UTF8')
         WHERE job_type = 'todo.webhook' AND metadata -> 'endpoint_id' = $1",
    )
    .bind(&id)
    .execute(&app.pool)
    .await
    .unwrap();
    assert_eq!(rewritten.rows_affected(), 1);
    let _worker = fast_worker(&app, &smtp).await;
    let accepted = eventually("the message delivered", WAIT, || async {
        let accepted = receiver.accepted();
        (!accepted.is_empty()).then_some(accepted)
    })
    .await;
    assert_eq!(accepted[0].body["data"]["title"], "queued before the upgrade");
    assert_eq!(deliveries(&app, &user, &id).await[0]["status"], "succeeded");
}

/// Two changes to one project with no task write between: a receiver keeping only a message with
/// a higher number than the last for that id (the README's recipe) must keep both.
#[tokio::test]
async fn each_change_to_a_project_has_its_own_higher_change_number() {
    let app = app_allowing_private().await;
    let smtp = SmtpSink::start().await.unwrap();
    let receiver = Receiver::start().await;
    let user = app.new_user().await;
    let events = ["project.created", "project.updated", "project.deleted", "task.created"];
    let (_, secret) = register(&app, &user, &receiver.url("/projects"), &events).await;
    receiver.trust(&secret);
    let task = app.create_task(&user, json!({"title": "Before"})).await;
    let response =
        app.send_as(&user.token, Method::POST, "/api/v1/projects", Some(&json!({"name": "Home"}))).await;
    assert_eq!(response.status(), 201);
    let project: Value = response.json().await.unwrap();
    let path = format!("/api/v1/projects/{}", project["id"].as_str().unwrap());
    for color in ["#112233", "#445566"] {
        let response = app.send_as(&user.token, Method::PATCH, &path, Some(&json!({"color": color}))).await;
        assert_eq!(response.status(), 200);
    }
    assert_eq!(app.send_as(&user.token, Method::DELETE, &path, None).await.status(), 204);
    let _worker = fast_worker(&app, &smtp).await;
    let accepted = eventually("every event", WAIT, || async {
        let accepted = receiver.accepted();
        (accepted.len() >= 5).then_some(accepted)
    })
    .await;
    let events: Vec<&str> = accepted.iter().map(|r| r.body["type"].as_str().unwrap()).collect();
    assert_eq!(
        events,
        ["task.created", "project.created", "project.updated", "project.updated", "project.deleted"]
    );
    assert_eq!(accepted[3].body["data"]["color"], "#445566");
    let seqs: Vec<i64> = accepted.iter().map(|r| r.body["data"]["change_seq"].as_i64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "strictly rising: {seqs:?}");
    // The receiver's recipe keeps every one of them, the last update included.
    let mut last = std::collections::HashMap::new();
    let kept = accepted
        .iter()
        .filter(|r| {
            let (id, seq) =
                (r.body["data"]["id"].to_string(), r.body["data"]["change_seq"].as_i64().unwrap());
            let newer = last.get(&id).is_none_or(|&seen| seq > seen);
            if newer {
                last.insert(id, seq);
            }
            newer
        })
        .count();
    assert_eq!(kept, 5);
    // The change feed passes over the projects' numbers: a client at the task's number has
    // nothing new, and the last project number is a position the feed knows.
    for since in [seqs[0], seqs[4]] {
        let response = app.get_as(&user.token, &format!("/api/v1/changes?since={since}")).await;
        assert_eq!(response.status(), 200, "since {since}");
        let feed: Value = response.json().await.unwrap();
        assert_eq!(feed["changes"], json!([]), "{feed}");
    }
    assert_eq!(accepted[0].body["data"]["id"], task["id"]);
}

/// A redirect is an answer like any other, not a success: the worker does not follow it to the
/// other receiver, logs it, and tries the same endpoint again later.
#[tokio::test]
async fn a_redirect_is_not_followed_and_the_log_shows_the_attempt() {
    let app = app_allowing_private().await;
    let smtp = SmtpSink::start().await.unwrap();
    let receiver = Receiver::start().await;
    let elsewhere = Receiver::start().await;
    let long_body = "x".repeat(3000);
    receiver.answer_redirect(302, &elsewhere.url("/moved"), &long_body);
    let user = app.new_user().await;
    let (id, secret) = register(&app, &user, &receiver.url("/hook"), &["task.created"]).await;
    receiver.trust(&secret);
    // A retry slow enough to see the message waiting for it.
    let _worker = app
        .spawn_worker_with(&smtp, |s| {
            s.webhooks.allow_private_targets = true;
            s.webhooks.retry_schedule_ms = vec![2_000; 7];
        })
        .await;
    app.create_task(&user, json!({"title": "Follow me"})).await;

    let waiting = eventually("the first attempt is logged", WAIT, || async {
        deliveries(&app, &user, &id).await.into_iter().next().filter(|d| d["attempts"] == 1)
    })
    .await;
    assert_eq!(waiting["status"], "pending", "{waiting}");
    assert_eq!(waiting["status_code"], 302);
    assert!(waiting["duration_ms"].as_i64().is_some_and(|ms| ms >= 0), "{waiting}");
    assert_eq!(waiting["response_body"].as_str().map(str::len), Some(1024), "the first 1 KiB");
    let last: chrono::DateTime<chrono::Utc> = waiting["last_attempt_at"].as_str().unwrap().parse().unwrap();
    let next: chrono::DateTime<chrono::Utc> = waiting["next_attempt_at"].as_str().unwrap().parse().unwrap();
    assert!(next > last, "the retry is scheduled after the attempt: {waiting}");

    let done = eventually("the retry succeeds", WAIT, || async {
        deliveries(&app, &user, &id).await.into_iter().next().filter(|d| d["status"] == "succeeded")
    })
    .await;
    assert_eq!((done["attempts"].as_i64(), done["status_code"].as_i64()), (Some(2), Some(200)));
    assert!(done["next_attempt_at"].is_null());
    assert!(elsewhere.received().is_empty(), "the redirect was not followed");
    let answers: Vec<u16> = receiver.received().iter().map(|r| r.answered).collect();
    assert_eq!(answers, [302, 200]);

    // The log pages with its cursor, newest first.
    app.create_task(&user, json!({"title": "Second"})).await;
    let path = format!("/api/v1/webhooks/{id}/deliveries?limit=1");
    let first: Value = app.get_as(&user.token, &path).await.json().await.unwrap();
    assert_eq!(first["items"].as_array().map(Vec::len), Some(1));
    let cursor = first["next_cursor"].as_str().expect("a next page").to_owned();
    let second: Value =
        app.get_as(&user.token, &format!("{path}&cursor={cursor}")).await.json().await.unwrap();
    assert_eq!(second["items"][0]["id"], done["id"], "the older message on the next page");
    assert!(second["next_cursor"].is_null(), "{second}");
}

#[tokio::test]
async fn an_answer_slower_than_the_timeout_is_logged_as_timed_out_and_retried() {
    let app = app_allowing_private().await;
    let smtp = SmtpSink::start().await.unwrap();
    let receiver = Receiver::start().await;
    receiver.set_delay(Duration::from_millis(2_500));
    let user = app.new_user().await;
    let (id, secret) = register(&app, &user, &receiver.url("/slow"), &["task.created"]).await;
    receiver.trust(&secret);
    let _worker = app
        .spawn_worker_with(&smtp, |s| {
            s.webhooks.allow_private_targets = true;
            s.webhooks.retry_schedule_ms = vec![300; 7];
            s.webhooks.timeout_secs = 1;
        })
        .await;
    app.create_task(&user, json!({"title": "Take your time"})).await;
    let timed_out = eventually("the timeout is logged", WAIT, || async {
        deliveries(&app, &user, &id).await.into_iter().next().filter(|d| d["attempts"].as_i64() >= Some(1))
    })
    .await;
    assert_eq!(timed_out["status"], "pending", "{timed_out}");
    assert!(timed_out["status_code"].is_null(), "{timed_out}");
    assert!(timed_out["error"].as_str().is_some_and(|e| e.contains("timed out")), "{timed_out}");
    let took = timed_out["duration_ms"].as_i64().unwrap();
    assert!((900..2_400).contains(&took), "cut off at the timeout, not the answer: {took} ms");
    receiver.set_delay(Duration::ZERO);
    let done = eventually("a retry succeeds", WAIT, || async {
        deliveries(&app, &user, &id).await.into_iter().next().filter(|d| d["status"] == "succeeded")
    })
    .await;
    assert!(done["attempts"].as_i64() >= Some(2), "{done}");
    assert_eq!(receiver.accepted().len(), 1);
}

/// After the last attempt of the schedule the message is given up, and the worker's metrics
/// count the outcomes.
#[tokio::test]
async fn a_message_failing_every_scheduled_attempt_is_given_up() {
    let app = app_allowing_private().await;
    let smtp = SmtpSink::start().await.unwrap();
    let receiver = Receiver::start().await;
    receiver.answer_always(500);
    let user = app.new_user().await;
    let (id, secret) = register(&app, &user, &receiver.url("/broken"), &["task.created"]).await;
    receiver.trust(&secret);
    let worker = app
        .spawn_worker_with(&smtp, |s| {
            s.webhooks.allow_private_targets = true;
            s.webhooks.retry_schedule_ms = vec![200; 2];
        })
        .await;
    app.create_task(&user, json!({"title": "Never lands"})).await;
    let failed = eventually("the message is given up", WAIT, || async {
        deliveries(&app, &user, &id).await.into_iter().next().filter(|d| d["status"] == "failed")
    })
    .await;
    assert_eq!((failed["attempts"].as_i64(), failed["status_code"].as_i64()), (Some(3), Some(500)));
    assert!(failed["next_attempt_at"].is_null(), "{failed}");
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(receiver.received().len(), 3, "the immediate attempt and the two retries, no more");
    let endpoint: Value =
        app.get_as(&user.token, &format!("/api/v1/webhooks/{id}")).await.json().await.unwrap();
    assert_eq!(endpoint["enabled"], true, "one given-up message does not disable the endpoint");

    // Counters are per process (other tests' workers add to them), so at least these.
    let metrics = app
        .client
        .get(format!("http://{}/metrics", worker.metrics_addr))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let value = |series: &str| -> f64 {
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{series} missing from:\n{metrics}"))
    };
    assert!(value(r#"webhook_deliveries_total{outcome="retrying"}"#) >= 2.0);
    assert!(value(r#"webhook_deliveries_total{outcome="failed"}"#) >= 1.0);
    assert!(value("webhook_queue_age_seconds_count") >= 1.0);
}

/// A bulk request's messages are one per task change: a trashed parent carries its subtasks into
/// the trash, and each of them is a change its receiver must hear of. Every message is a state
/// the task really had, in change order, ending at the task's final state.
#[tokio::test]
async fn a_bulk_request_on_parents_makes_a_message_per_task_it_changes() {
    let app = app_allowing_private().await;
    let user = app.new_user().await;
    let (_, _) = register(&app, &user, "http://127.0.0.1:9/hook", &["task.deleted", "task.updated"]).await;
    let mut parents = Vec::new();
    let mut all = Vec::new();
    for p in 0..2 {
        let parent = app.create_task(&user, json!({"title": format!("parent {p}")})).await;
        all.push(parent["id"].as_str().unwrap().to_owned());
        for c in 0..3 {
            let child = app
                .create_task(&user, json!({"title": format!("child {p}.{c}"), "parent_id": parent["id"]}))
                .await;
            all.push(child["id"].as_str().unwrap().to_owned());
        }
        parents.push(parent["id"].as_str().unwrap().to_owned());
    }
    sqlx::query("DELETE FROM webhook_messages").execute(&app.pool).await.unwrap();
    let operations: Vec<Value> = parents.iter().map(|id| json!({"op": "delete", "id": id})).collect();
    let response = app
        .send_as(&user.token, Method::POST, "/api/v1/tasks/bulk", Some(&json!({"operations": operations})))
        .await;
    assert_eq!(response.status(), 200);
    let rows: Vec<(String, String, i64, Option<String>)> = sqlx::query_as(
        "SELECT snapshot ->> 'id', event_type, change_seq, snapshot ->> 'deleted_at' FROM webhook_messages ORDER BY seq",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let mut touched: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    touched.sort();
    touched.dedup();
    let mut expected: Vec<&str> = all.iter().map(String::as_str).collect();
    expected.sort();
    assert_eq!(touched, expected, "every task the two operations changed, and no other");
    assert!(rows.windows(2).all(|w| w[0].2 < w[1].2), "in change order: {rows:?}");
    for id in &all {
        let last = rows.iter().rev().find(|r| &r.0 == id).unwrap();
        assert_eq!(last.1, "task.deleted", "each task's last message is its trashing: {rows:?}");
        assert!(last.3.is_some());
    }
    // The bound: at most the operations' own tasks, their subtrees, and one update of each parent
    // whose subtask counts the trashing changed.
    assert!(rows.len() <= all.len() + parents.len(), "{} messages: {rows:?}", rows.len());
}
