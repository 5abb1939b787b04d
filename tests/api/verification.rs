//! Verified addresses before any reminder: the verification email, the page its link opens, the
//! resend limit and email changes, against a real worker and SMTP server.

use std::time::Duration;

use mail_parser::MessageParser;
use reqwest::Method;
use serde_json::{Value, json};
use smtp_sink::{Received, SmtpSink};
use todo::links::{Claims, LinkKeys, Purpose, address_digest};
use uuid::Uuid;

use crate::helpers::{TEST_PASSWORD, TestApp, TestUser, assert_problem, eventually};
use crate::mail_links::assert_links_only_to_public_url;

const WAIT: Duration = Duration::from_secs(20);
const VERIFICATION: &str = "todo.verification";

fn past(seconds: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::seconds(seconds)).to_rfc3339()
}

fn unique_email(who: &str) -> String {
    format!("{who}-{}@example.com", Uuid::new_v4().simple())
}

/// The verification link in a received message's plain-text part.
fn link_in(mail: &Received) -> String {
    let parsed = MessageParser::default().parse(&mail.data).expect("a parseable message");
    assert_eq!(parsed.subject(), Some("Confirm your email address"));
    let text = parsed.body_text(0).expect("a plain-text part").into_owned();
    let html = parsed.body_html(0).expect("an html part").into_owned();
    let link = text.lines().find(|l| l.contains("/email/verify?token=")).expect("a link in the text").trim();
    // The HTML part escapes the link's slashes as entities, which a mail client decodes.
    assert!(html.contains(&format!("verify?token={}\"", token_of(link))), "{html}");
    link.to_owned()
}

fn token_of(link: &str) -> String {
    link.split_once("token=").expect("a token parameter").1.to_owned()
}

async fn me(app: &TestApp, user: &TestUser) -> Value {
    let response = app.get_as(&user.token, "/api/v1/users/me").await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// Asserts an HTML page with this status and the strict page CSP; returns its text.
async fn assert_page(response: reqwest::Response, status: u16) -> String {
    assert_eq!(response.status().as_u16(), status, "status of {}", response.url());
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    assert_eq!(header("content-type").as_deref(), Some("text/html; charset=utf-8"));
    assert_eq!(header("cache-control").as_deref(), Some("no-store"));
    let csp = header("content-security-policy").unwrap();
    assert!(csp.starts_with("default-src 'none'") && csp.contains("form-action 'self'"), "{csp}");
    let body = response.text().await.unwrap();
    assert!(!body.contains("<script") && !body.contains("style"), "no script or style: {body}");
    body
}

async fn reminder_history(app: &TestApp, user: &TestUser, task: &Value) -> Vec<Value> {
    let id = task["id"].as_str().unwrap();
    eventually("the reminder to be decided", WAIT, || async {
        let history = app.reminders(user, id).await;
        history.first().is_some_and(|h| h["status"] != "pending").then_some(history)
    })
    .await
}

#[tokio::test]
async fn an_unverified_address_gets_the_verification_mail_and_no_reminder_until_its_link_is_followed() {
    let app = TestApp::spawn().await;
    let smtp = SmtpSink::start().await.unwrap();
    let email = unique_email("ann");
    let user = app.register_unverified(&email).await;
    assert_eq!(me(&app, &user).await["email_verified"], false);
    let worker = app.spawn_worker(&smtp).await;

    let received = smtp.wait_for(1, WAIT).await;
    assert_eq!(received[0].to, vec![email.clone()]);
    let link = link_in(&received[0]);
    assert!(link.starts_with(&format!("{}/email/verify?token=", app.address)), "{link}");

    let early = app.create_task(&user, json!({"title": "Too early", "reminder_at": past(1)})).await;
    let history = reminder_history(&app, &user, &early).await;
    assert_eq!(
        (&history[0]["status"], &history[0]["skip_reason"]),
        (&json!("skipped"), &json!("unverified"))
    );

    // Opening the link, as a mail scanner would, twice: a page with one button, and no change.
    for _ in 0..2 {
        let page = assert_page(app.client.get(&link).send().await.unwrap(), 200).await;
        assert!(
            page.contains(&email)
                && page.contains(r#"<form method="post""#)
                && page.matches("<button").count() == 1,
            "{page}"
        );
        assert_eq!(me(&app, &user).await["email_verified"], false, "a GET changes nothing");
    }
    let done = assert_page(app.post_verification(&token_of(&link)).await, 200).await;
    assert!(done.contains("confirmed"), "{done}");
    assert_eq!(me(&app, &user).await["email_verified"], true);

    let task = app.create_task(&user, json!({"title": "Now it counts", "reminder_at": past(1)})).await;
    let received = smtp.wait_for(2, WAIT).await;
    assert!(received[1].header("Subject").unwrap().contains("Now it counts"));
    assert_eq!(reminder_history(&app, &user, &task).await[0]["status"], "sent");

    // The link worked once.
    let replay = assert_page(app.post_verification(&token_of(&link)).await, 410).await;
    assert!(replay.contains("already used"), "{replay}");
    assert_page(app.client.get(&link).send().await.unwrap(), 410).await;
    assert_eq!(smtp.count(), 2, "one verification email and one reminder");
    worker.stop().await.unwrap();
}

#[tokio::test]
async fn expired_tampered_and_foreign_links_get_html_4xx_pages_and_change_nothing() {
    let app = TestApp::spawn().await;
    let email = unique_email("bob");
    let user = app.register_unverified(&email).await;
    let keys = LinkKeys::new(&app.settings.auth);
    let mut expired = Claims::new(Purpose::VerifyEmail, user.id, address_digest(&email), chrono::Utc::now());
    expired.expires_at = chrono::Utc::now() - chrono::Duration::seconds(1);
    let expired = keys.sign(&expired);
    let good = app.verification_token(user.id, &email);
    let flipped = if &good[10..11] == "A" { "B" } else { "A" };
    let tampered = format!("{}{flipped}{}", &good[..10], &good[11..]);
    let other_key = LinkKeys::from_secret(b"not this service's secret, though long enough")
        .sign(&Claims::new(Purpose::VerifyEmail, user.id, address_digest(&email), chrono::Utc::now()));
    let other_address = app.verification_token(user.id, "mallory@example.com");

    for (token, status) in [
        (expired.as_str(), 410),
        (tampered.as_str(), 400),
        (other_key.as_str(), 400),
        ("", 400),
        ("%00%ff", 400),
        (other_address.as_str(), 410),
    ] {
        let url = app.url(&format!("/email/verify?token={token}"));
        assert_page(app.client.get(&url).send().await.unwrap(), status).await;
        assert_page(app.post_verification(token).await, status).await;
    }
    let not_a_form = app.client.post(app.url("/email/verify")).json(&json!({"token": good})).send().await;
    assert_page(not_a_form.unwrap(), 415).await;
    let put = app.client.put(app.url("/email/verify")).send().await.unwrap();
    assert_eq!(put.headers()["allow"], "GET, HEAD, POST");
    assert_page(put, 405).await;
    assert_eq!(me(&app, &user).await["email_verified"], false, "nothing was verified");

    // The good link still works after all that.
    assert_page(app.post_verification(&good).await, 200).await;
    assert_eq!(me(&app, &user).await["email_verified"], true);
}

#[tokio::test]
async fn resending_is_limited_per_account_and_refused_once_nothing_awaits_verification() {
    let app = TestApp::spawn().await;
    let email = unique_email("cy");
    let user = app.register_unverified(&email).await;
    let resend = || app.send_as(&user.token, Method::POST, "/api/v1/users/me/verification", None);
    // Registration sent the first of the hour's allowance.
    for _ in 1..app.settings.email.verification_per_hour {
        assert_eq!(resend().await.status(), 202);
    }
    let refused = resend().await;
    let retry_after: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((3000..=3600).contains(&retry_after), "{retry_after}");
    assert_problem(refused, 429, "rate_limited").await;
    let pending: Vec<_> =
        app.jobs(VERIFICATION).await.into_iter().filter(|(status, ..)| status == "Pending").collect();
    assert_eq!(pending.len(), 1, "a resend replaces the email still queued: {pending:?}");

    app.verify_address(user.id, &email).await;
    assert!(app.jobs(VERIFICATION).await.is_empty(), "verifying drops the queued email");
    assert_problem(resend().await, 409, "nothing_to_verify").await;
}

#[tokio::test]
async fn an_email_change_takes_effect_only_once_the_new_address_is_verified() {
    let app = TestApp::spawn().await;
    let smtp = SmtpSink::start().await.unwrap();
    let user = app.new_user().await;
    let taken = app.new_user().await;
    let patch = |body: Value| {
        let (app, token) = (&app, user.token.clone());
        async move { app.send_as(&token, Method::PATCH, "/api/v1/users/me", Some(&body)).await }
    };
    assert_problem(patch(json!({"email": taken.email.to_uppercase()})).await, 409, "email_taken").await;
    assert_problem(patch(json!({"email": "not an address"})).await, 422, "validation_failed").await;

    let new_email = unique_email("new");
    let changed = patch(json!({"email": new_email, "name": "Dee"})).await;
    assert_eq!(changed.status(), 200);
    let body: Value = changed.json().await.unwrap();
    assert_eq!((&body["email"], &body["pending_email"]), (&json!(user.email), &json!(new_email)));
    assert_eq!((&body["email_verified"], &body["name"]), (&json!(true), &json!("Dee")));

    // Until the new address is verified, reminders keep going to the old one.
    let worker = app.spawn_worker(&smtp).await;
    app.create_task(&user, json!({"title": "Still the old address", "reminder_at": past(1)})).await;
    let received = smtp.wait_for(2, WAIT).await;
    let to = |subject: &str| {
        let mail = received.iter().find(|m| m.header("Subject").unwrap().contains(subject)).unwrap();
        mail.to.clone()
    };
    assert_eq!(to("Still the old address"), vec![user.email.clone()]);
    assert_eq!(to("Confirm your email address"), vec![new_email.clone()]);
    let link = link_in(received.iter().find(|m| m.to == vec![new_email.clone()]).unwrap());

    assert_page(app.post_verification(&token_of(&link)).await, 200).await;
    let body = me(&app, &user).await;
    assert_eq!((&body["email"], &body["pending_email"]), (&json!(new_email), &Value::Null));
    assert_eq!(body["email_verified"], true);
    app.create_task(&user, json!({"title": "At the new address", "reminder_at": past(1)})).await;
    let received = smtp.wait_for(3, WAIT).await;
    assert_eq!(received[2].to, vec![new_email]);
    assert!(received[2].header("Subject").unwrap().contains("At the new address"));
    worker.stop().await.unwrap();
}

#[tokio::test]
async fn accounts_that_existed_before_the_migration_are_verified_and_new_ones_are_not() {
    let app = TestApp::spawn_unmigrated().await;
    apalis_postgres::PostgresStorage::setup(&app.pool).await.unwrap();
    todo::db::MIGRATOR.run_to(20261206000001, &app.pool).await.unwrap();
    let existing = Uuid::now_v7();
    sqlx::query("INSERT INTO users (id, email, password_hash) VALUES ($1, 'old@example.com', 'x')")
        .bind(existing)
        .execute(&app.pool)
        .await
        .unwrap();
    todo::db::migrate(&app.pool).await.unwrap();
    let verified: bool = sqlx::query_scalar("SELECT email_verified FROM users WHERE id = $1")
        .bind(existing)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(verified, "existing accounts keep their reminders");
    let fresh = app.register_unverified(&unique_email("fresh")).await;
    assert_eq!(me(&app, &fresh).await["email_verified"], false);
}

#[tokio::test]
async fn a_used_link_token_is_purged_once_expired() {
    let app = TestApp::spawn().await;
    let email = unique_email("eve");
    let user = app.register_unverified(&email).await;
    app.verify_address(user.id, &email).await;
    let used = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM used_link_tokens")
            .fetch_one(&app.pool)
            .await
            .unwrap()
    };
    assert_eq!(used().await, 1);
    app.purge(None).await;
    assert_eq!(used().await, 1, "kept while the link could still be replayed");
    sqlx::query("UPDATE used_link_tokens SET expires_at = now() - interval '1 second'")
        .execute(&app.pool)
        .await
        .unwrap();
    app.purge(None).await;
    assert_eq!(used().await, 0);
}

#[tokio::test]
async fn the_verification_email_carries_no_text_the_registrant_wrote() {
    let app = TestApp::spawn().await;
    let smtp = SmtpSink::start().await.unwrap();
    let email = unique_email("stranger");
    let lure = "Claim your prize at evil example dot com";
    let body = json!({"email": email, "password": TEST_PASSWORD, "name": lure});
    let registered = app.post_json("/api/v1/auth/register", &body).await;
    assert_eq!(registered.status(), 201);
    let worker = app.spawn_worker(&smtp).await;
    let mail = smtp.wait_for(1, WAIT).await[0].clone();
    worker.stop().await.unwrap();

    let parsed = MessageParser::default().parse(&mail.data).unwrap();
    let to = mail.header("To").expect("a To header");
    assert!(!to.contains("prize") && to.contains(&email), "the address alone: {to}");
    for part in [parsed.body_text(0).unwrap(), parsed.body_html(0).unwrap()] {
        assert!(!part.contains("prize") && part.contains(&email), "{part}");
    }
    assert!(link_in(&mail).starts_with(&format!("{}/email/verify?token=", app.address)));
    assert_links_only_to_public_url(&app, &mail);
}

#[tokio::test]
async fn many_accounts_cannot_make_the_service_mail_one_address_past_its_hourly_cap() {
    let app = TestApp::spawn_with(|s| s.email.verification_per_recipient_per_hour = 2).await;
    let smtp = SmtpSink::start().await.unwrap();
    let victim = unique_email("victim");
    let mut accounts = Vec::new();
    for _ in 0..3 {
        accounts.push(app.new_user().await);
    }
    let change = |user: &TestUser| {
        let (app, token, body) = (&app, user.token.clone(), json!({"email": victim.to_uppercase()}));
        async move { app.send_as(&token, Method::PATCH, "/api/v1/users/me", Some(&body)).await }
    };
    assert_eq!(change(&accounts[0]).await.status(), 200);
    assert_eq!(change(&accounts[1]).await.status(), 200);

    // A third account naming the address: refused, and nothing changes.
    let refused = change(&accounts[2]).await;
    let retry_after: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((3000..=3600).contains(&retry_after), "{retry_after}");
    assert_problem(refused, 429, "rate_limited").await;
    assert_eq!(me(&app, &accounts[2]).await["pending_email"], Value::Null);
    // Nor may an account already waiting for it resend, within its own allowance.
    let resend = app.send_as(&accounts[0].token, Method::POST, "/api/v1/users/me/verification", None).await;
    assert_problem(resend, 429, "rate_limited").await;
    // A registration of the address still makes its account; its email waits for the window.
    let registrant = app.register_unverified(&victim).await;
    assert_eq!(me(&app, &registrant).await["email_verified"], false);

    let worker = app.spawn_worker(&smtp).await;
    let received = smtp.wait_for(2, WAIT).await;
    eventually("the verification queue to drain", WAIT, || async {
        let open = app.jobs(VERIFICATION).await.into_iter().filter(|(status, ..)| status != "Done").count();
        (open == 0).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    worker.stop().await.unwrap();
    let to_victim =
        smtp.messages().iter().filter(|m| m.to.iter().any(|t| t.eq_ignore_ascii_case(&victim))).count();
    assert_eq!((to_victim, smtp.count()), (2, 2), "{:?}", received.iter().map(|m| &m.to).collect::<Vec<_>>());
}
