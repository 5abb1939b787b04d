//! Hand-written attacks: each gets a clear 4xx, changes nothing it should not, and costs the
//! server little.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Method;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::helpers::{TEST_PASSWORD, TestApp, assert_problem, gzip_of_spaces};

const REGISTER: &str = "/api/v1/auth/register";

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

#[tokio::test]
async fn compressed_request_bodies_are_refused_before_anything_inflates_them() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    // 4 KiB of gzip that inflates to 4 MiB.
    let bomb = gzip_of_spaces(4);
    assert!(bomb.len() < 64 * 1024, "the bomb fits under the body limit");
    for path in ["/api/v1/tasks", REGISTER] {
        let response = app
            .client
            .post(app.url(path))
            .bearer_auth(&user.token)
            .header("content-type", "application/json")
            .header("content-encoding", "gzip")
            .body(bomb.clone())
            .send()
            .await
            .unwrap();
        let problem = assert_problem(response, 415, "unsupported_content_encoding").await;
        assert!(problem["detail"].as_str().unwrap().contains("Content-Encoding"));
    }
    let identity = app
        .client
        .post(app.url("/api/v1/tasks"))
        .bearer_auth(&user.token)
        .header("content-encoding", "identity")
        .json(&json!({"title": "Plain"}))
        .send()
        .await
        .unwrap();
    assert_eq!(identity.status(), 201, "identity is no encoding at all");
    let tasks: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks").fetch_one(&app.pool).await.unwrap();
    assert_eq!(tasks, 1);
}

#[tokio::test]
async fn a_body_trickling_in_is_cut_off_with_a_408_at_the_deadline() {
    let app = TestApp::spawn_with(|s| s.server.body_timeout_secs = 1).await;
    let address = app.address.trim_start_matches("http://").to_owned();
    let result = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(address).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let head = "POST /api/v1/auth/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                    Content-Length: 200\r\n\r\n{";
        stream.write_all(head.as_bytes()).unwrap();
        let started = Instant::now();
        // One byte every 200 ms, for longer than the deadline, unless the server hangs up.
        let writer = {
            let mut stream = stream.try_clone().unwrap();
            std::thread::spawn(move || {
                for _ in 0..40 {
                    std::thread::sleep(Duration::from_millis(200));
                    if stream.write_all(b" ").is_err() {
                        break;
                    }
                }
            })
        };
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = stream.read(&mut buf) {
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
            if answer.windows(4).any(|w| w == b"\r\n\r\n") && answer.ends_with(b"}") {
                break;
            }
        }
        let elapsed = started.elapsed();
        drop(stream);
        let _ = writer.join();
        (String::from_utf8_lossy(&answer).into_owned(), elapsed)
    })
    .await
    .unwrap();
    let (answer, elapsed) = result;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");
    assert!(elapsed < Duration::from_secs(4), "cut off after {elapsed:?}");
}

/// Sends `head` a byte at a time every 200 ms and returns what the server answered, and when.
fn trickle_head(address: String, head: &'static str) -> (String, Duration) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let started = Instant::now();
    let writer = {
        let mut stream = stream.try_clone().unwrap();
        std::thread::spawn(move || {
            for byte in head.bytes() {
                if stream.write_all(&[byte]).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let elapsed = started.elapsed();
    drop(stream);
    let _ = writer.join();
    (String::from_utf8_lossy(&answer).into_owned(), elapsed)
}

#[tokio::test]
async fn headers_trickling_in_are_cut_off_at_the_header_deadline() {
    let app = TestApp::spawn_with(|s| s.server.header_timeout_secs = 1).await;
    let address = app.address.trim_start_matches("http://").to_owned();
    let head =
        "GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let (answer, elapsed) = tokio::task::spawn_blocking(move || trickle_head(address, head)).await.unwrap();
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(elapsed < Duration::from_secs(5), "the connection was held {elapsed:?}");
}

#[tokio::test]
async fn huge_headers_are_refused_without_harm() {
    let app = TestApp::spawn().await;
    let huge = "x".repeat(200 * 1024);
    // Both are refused by the HTTP layer (a 431, or the connection closed) before any route runs:
    // outside the document.
    let health = || app.client.get(app.url("/health")).outside_the_contract();
    let response = health().header("x-huge", huge).send().await;
    if let Ok(response) = response {
        assert!(response.status().is_client_error(), "{}", response.status());
    }
    let many = (0..200).fold(health(), |r, i| r.header(format!("x-h{i}"), "v"));
    if let Ok(response) = many.send().await {
        assert!(response.status().is_client_error(), "{}", response.status());
    }
    assert_eq!(app.get("/health").await.status(), 200, "the process is unharmed");
}

#[tokio::test]
async fn made_up_http_methods_do_not_grow_the_metrics() {
    let app = TestApp::spawn().await;
    for i in 0..50 {
        let method = Method::from_bytes(format!("INVENTED{i}").as_bytes()).unwrap();
        let response = app.client.request(method, app.url("/health")).send().await.unwrap();
        assert!(response.status().is_client_error(), "{}", response.status());
    }
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(!metrics.contains("INVENTED"), "every made-up method became a series");
    assert!(metrics.contains(r#"method="other""#));
}

#[tokio::test]
async fn a_fresh_process_reports_actor_and_queue_series_at_zero() {
    let app = TestApp::spawn().await;
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.lines().any(|l| l.starts_with("user_actors ")), "{metrics}");
    for queue in todo::jobs::queues() {
        for status in ["Pending", "Running", "Failed", "Done"] {
            let series = format!(r#"jobs{{queue="{queue}",status="{status}"}}"#);
            assert!(metrics.contains(&series), "{series} missing");
        }
    }
}

#[tokio::test]
async fn sql_metacharacters_are_stored_and_searched_as_plain_text() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let nasty = r#"x'); DROP TABLE tasks; -- \ % _ " $1 ; SELECT pg_sleep(10)"#;
    let task = app
        .create_task(
            &user,
            json!({"title": nasty, "description": nasty, "tags": ["a'b", "c\"d", "100%", "x_y"]}),
        )
        .await;
    assert_eq!(task["title"], nasty);
    assert_eq!(task["description"], nasty);
    let started = Instant::now();
    for query in [
        format!("q={}", urlencode(nasty)),
        format!("tags={}", urlencode("a'b,100%")),
        format!("tags={}&tag_mode=all", urlencode("x_y,c\"d")),
        format!("q={}", urlencode("' OR 1=1 --")),
        format!("sort={}", urlencode("title; DROP TABLE tasks")),
    ] {
        let response = app.get_as(&user.token, &format!("/api/v1/tasks?{query}")).await;
        let status = response.status().as_u16();
        assert!(status == 200 || status == 422, "{query}: {status}");
        if query.starts_with("sort=") {
            assert_eq!(status, 422, "an unknown sort column is refused");
        }
    }
    assert!(started.elapsed() < Duration::from_secs(5), "nothing ran pg_sleep");
    let found: Value = app.get_as(&user.token, "/api/v1/tasks?tags=100%25").await.json().await.unwrap();
    assert_eq!(found["total"], 1, "a % in a tag is a literal, not a wildcard");
    let unrelated: Value = app.get_as(&user.token, "/api/v1/tasks?tags=100x").await.json().await.unwrap();
    assert_eq!(unrelated["total"], 0);
    let tables: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks").fetch_one(&app.pool).await.unwrap();
    assert_eq!(tables, 1);
}

fn urlencode(raw: &str) -> String {
    raw.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn deeply_nested_json_and_invalid_utf8_are_400s() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let depth = 20_000;
    let nested = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let nested_object = format!(r#"{{"title":{}1{}}}"#, r#"{"a":"#.repeat(5000), "}".repeat(5000));
    for body in [nested.into_bytes(), nested_object.into_bytes(), b"{\"title\":\"\xff\xfe\"}".to_vec()] {
        let response = app
            .client
            .post(app.url("/api/v1/tasks"))
            .bearer_auth(&user.token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        assert!(status == 400 || status == 422, "{status}");
        assert_eq!(response.headers()["content-type"], "application/problem+json");
    }
    let big = app
        .client
        .post(app.url("/api/v1/tasks"))
        .bearer_auth(&user.token)
        .header("content-type", "application/json")
        .body(vec![b' '; 10 << 20])
        .send()
        .await;
    // A 10 MB body is refused as soon as its length is known; the server may hang up mid-upload.
    if let Ok(response) = big {
        assert_problem(response, 413, "payload_too_large").await;
    }
    let tasks: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks").fetch_one(&app.pool).await.unwrap();
    assert_eq!(tasks, 0);
}

#[tokio::test]
async fn forged_and_confused_tokens_are_refused() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let secret = app.settings.auth.jwt_secret.expose_secret().to_owned();
    let now = chrono::Utc::now().timestamp();
    let claims = json!({"sub": user.id, "iat": now, "exp": now + 600, "jti": uuid::Uuid::new_v4()});

    // A `kid` naming a file: the service has one key and never reads key material from a path.
    let mut kid_header = Header::new(Algorithm::HS256);
    kid_header.kid = Some("../../../../dev/null".into());
    let kid_token = jsonwebtoken::encode(&kid_header, &claims, &EncodingKey::from_secret(b"")).unwrap();

    // HS/RS confusion: a token that claims RS256, "signed" with the HMAC secret as if it were a
    // public key, must not verify.
    let payload = base64url(claims.to_string().as_bytes());
    let rs_head = base64url(br#"{"alg":"RS256","typ":"JWT"}"#);
    let rs_token = format!("{rs_head}.{payload}.{}", base64url(secret.as_bytes()));
    let none_token = format!("{}.{payload}.", base64url(br#"{"alg":"none","typ":"JWT"}"#));
    let huge = format!("{}.{}.{}", rs_head, "A".repeat(60_000), "B");

    for token in [kid_token, rs_token, none_token, huge, "not.a.token".into()] {
        let response = app.get_as(&token, "/api/v1/tasks").await;
        let status = response.status().as_u16();
        assert!(status == 401 || status == 431 || status == 400, "{status}");
        if status == 401 {
            assert_problem(response, 401, "token_invalid").await;
        }
    }
}

fn base64url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test]
async fn server_owned_fields_cannot_be_set_through_the_api() {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let victim = app.new_user().await;
    let forged = json!({
        "id": "00000000-0000-7000-8000-000000000001",
        "user_id": victim.id,
        "version": 99,
        "created_at": "2000-01-01T00:00:00Z",
        "series_id": "00000000-0000-7000-8000-000000000002",
    });
    let mut create = forged.clone();
    create["title"] = json!("Mine");
    let response = app.send_as(&user.token, Method::POST, "/api/v1/tasks", Some(&create)).await;
    assert_eq!(response.status(), 422, "unknown fields are named, not ignored");

    let task = app.create_task(&user, json!({"title": "Mine"})).await;
    let path = format!("/api/v1/tasks/{}", task["id"].as_str().unwrap());
    let mut replace = forged.clone();
    replace["title"] = json!("Mine");
    for (method, body) in [(Method::PATCH, forged.clone()), (Method::PUT, replace)] {
        let response = app.send_as(&user.token, method.clone(), &path, Some(&body)).await;
        assert_eq!(response.status(), 422, "{method}");
    }
    let now: Value = app.get_as(&user.token, &path).await.json().await.unwrap();
    assert_eq!(now, task, "nothing changed");
    let victims: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks WHERE user_id = $1")
        .bind(victim.id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(victims, 0);
}

#[tokio::test]
async fn a_cursor_cannot_be_forged_or_carried_to_another_user() {
    let app = TestApp::spawn().await;
    let owner = app.new_user().await;
    let other = app.new_user().await;
    for i in 0..3 {
        app.create_task(&owner, json!({"title": format!("Owner {i}")})).await;
    }
    app.create_task(&other, json!({"title": "Other"})).await;
    let page: Value = app.get_as(&owner.token, "/api/v1/tasks?limit=1").await.json().await.unwrap();
    let cursor = page["next_cursor"].as_str().expect("a next page").to_owned();

    let carried = app.get_as(&other.token, &format!("/api/v1/tasks?limit=1&cursor={cursor}")).await;
    let status = carried.status().as_u16();
    if status == 200 {
        let body: Value = carried.json().await.unwrap();
        for item in body["items"].as_array().unwrap() {
            assert_eq!(item["title"], "Other", "a carried cursor showed another user's task");
        }
    } else {
        assert_problem(carried, 400, "bad_request").await;
    }

    let mut forged = cursor.into_bytes();
    let middle = forged.len() / 2;
    forged[middle] = if forged[middle] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    let response = app.get_as(&owner.token, &format!("/api/v1/tasks?limit=1&cursor={forged}")).await;
    assert_problem(response, 400, "bad_request").await;
}

#[tokio::test]
async fn docs_get_a_strict_csp_and_api_answers_a_deny_all_one() {
    let app = TestApp::spawn().await;
    let docs = app.get("/docs/").await;
    assert_eq!(docs.status(), 200);
    let csp = header(&docs, "content-security-policy").expect("CSP on /docs");
    assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe-eval") && !csp.contains("script-src 'self' 'unsafe-inline'"), "{csp}");
    let health = app.get("/health").await;
    let csp = header(&health, "content-security-policy").expect("CSP on API answers");
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    assert_eq!(header(&health, "strict-transport-security"), None, "no HSTS unless configured");

    let tls = TestApp::spawn_with(|s| s.server.hsts_max_age_secs = 31_536_000).await;
    let health = tls.get("/health").await;
    assert_eq!(
        header(&health, "strict-transport-security").as_deref(),
        Some("max-age=31536000; includeSubDomains")
    );
}

#[tokio::test]
async fn cors_allows_only_configured_origins_and_never_credentials() {
    let app =
        TestApp::spawn_with(|s| s.server.cors_allowed_origins = vec!["https://app.example.com".into()]).await;
    let preflight = |origin: &'static str| {
        app.client
            .request(Method::OPTIONS, app.url("/api/v1/tasks"))
            // The CORS layer answers preflights before any route; the document describes routes.
            .outside_the_contract()
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization, content-type")
            .send()
    };
    let allowed = preflight("https://app.example.com").await.unwrap();
    assert!(allowed.status().is_success(), "{}", allowed.status());
    assert_eq!(header(&allowed, "access-control-allow-origin").as_deref(), Some("https://app.example.com"));
    assert_eq!(header(&allowed, "access-control-allow-credentials"), None);

    let refused = preflight("https://evil.example.com").await.unwrap();
    assert_eq!(header(&refused, "access-control-allow-origin"), None);

    let user = app.new_user().await;
    let simple = app
        .client
        .get(app.url("/api/v1/tasks"))
        .bearer_auth(&user.token)
        .header("origin", "https://evil.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&simple, "access-control-allow-origin"), None, "a foreign page cannot read answers");
    let login = json!({"email": user.email, "password": TEST_PASSWORD});
    let from_app = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("origin", "https://app.example.com")
        .json(&login)
        .send()
        .await
        .unwrap();
    assert_eq!(from_app.status(), 200);
    assert_eq!(header(&from_app, "access-control-allow-origin").as_deref(), Some("https://app.example.com"));
}

/// The response headers a client's code reads. A browser hides every header from the page except
/// the CORS-safelisted few unless the answer lists it in `Access-Control-Expose-Headers`.
const CLIENT_READ_HEADERS: [&str; 12] = [
    "etag",
    "location",
    "retry-after",
    "x-request-id",
    "idempotent-replayed",
    "ratelimit-limit",
    "ratelimit-remaining",
    "ratelimit-reset",
    "ratelimit-policy",
    "www-authenticate",
    "content-disposition",
    "allow",
];

#[tokio::test]
async fn a_page_on_an_allowed_origin_can_read_every_header_the_api_sends_it() {
    const ORIGIN: &str = "https://app.example.com";
    let app = TestApp::spawn_with(|s| {
        s.server.cors_allowed_origins = vec![ORIGIN.into()];
        s.rate_limit.enabled = true;
        s.rate_limit.user_reads_per_minute = 1;
    })
    .await;
    let user = app.new_user().await;

    // The preflight a browser sends before a cross-origin write with a key.
    let preflight = app
        .client
        .request(Method::OPTIONS, app.url("/api/v1/tasks"))
        // The CORS layer answers preflights before any route; the document describes routes.
        .outside_the_contract()
        .header("origin", ORIGIN)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization, content-type, idempotency-key")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(header(&preflight, "access-control-allow-origin").as_deref(), Some(ORIGIN));

    let request = |method: Method, path: &str| {
        app.client.request(method, app.url(path)).header("origin", ORIGIN).bearer_auth(&user.token)
    };
    let create = || {
        request(Method::POST, "/api/v1/tasks").header("idempotency-key", "k1").json(&json!({"title": "T"}))
    };
    let answers = [
        create().send().await.unwrap(),
        create().send().await.unwrap(),
        request(Method::GET, "/api/v1/users/me/export").send().await.unwrap(),
        request(Method::PUT, "/api/v1/tasks").send().await.unwrap(),
        app.client.get(app.url("/api/v1/tasks")).header("origin", ORIGIN).send().await.unwrap(),
        request(Method::GET, "/api/v1/tasks").send().await.unwrap(),
    ];
    assert_eq!(answers.last().unwrap().status(), 429, "the export spent the one read a minute");
    let mut seen = std::collections::BTreeSet::new();
    for answer in &answers {
        assert_eq!(header(answer, "access-control-allow-origin").as_deref(), Some(ORIGIN));
        let exposed =
            header(answer, "access-control-expose-headers").unwrap_or_default().to_ascii_lowercase();
        let exposed: Vec<&str> = exposed.split(',').map(str::trim).collect();
        for name in CLIENT_READ_HEADERS.iter().filter(|name| answer.headers().contains_key(**name)) {
            assert!(exposed.contains(name), "{name} is hidden from the page: exposed {exposed:?}");
            seen.insert(*name);
        }
    }
    // Each header above was really sent by one of these answers, so none is listed for nothing.
    assert_eq!(seen.len(), CLIENT_READ_HEADERS.len(), "sent: {seen:?}");
}
