//! Event streams against the real `todo` binary: slow readers are cut off without holding memory,
//! and SIGTERM ends every stream cleanly.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{TestApp, WebProcess, eventually, register_at};
use crate::sse::{EventStream, Message};

/// Opens a stream over a socket with a tiny receive window and never reads from it.
async fn stalled_stream(port: u16, token: &str) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(([127, 0, 0, 1], port).into()).await.unwrap();
    let request =
        format!("GET /api/v1/events HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    stream
}

fn streams_open(metrics: &str) -> Option<f64> {
    metrics.lines().find_map(|l| l.strip_prefix("event_streams ")).and_then(|v| v.trim().parse().ok())
}

#[tokio::test]
async fn slow_readers_are_dropped_with_resync_while_one_that_keeps_up_gets_everything() {
    let app = TestApp::spawn().await;
    let web = WebProcess::start(
        &app,
        &[
            ("APP__RATE_LIMIT__ENABLED", "false"),
            ("APP__SYNC__STREAM_BUFFER_BYTES", "16384"),
            ("APP__SYNC__SLOW_CLIENT_SECS", "1"),
            ("APP__SYNC__MAX_STREAMS_PER_USER", "100"),
            ("APP__SERVER__BODY_LIMIT_BYTES", "400000"),
            // A client that has gone is noticed at the next write: the reader below leaves.
            ("APP__SYNC__HEARTBEAT_SECS", "1"),
        ],
    )
    .await;
    let token = register_at(&web.address, "slow@example.com").await;
    let mut stalled = Vec::new();
    for _ in 0..30 {
        stalled.push(stalled_stream(web.port, &token).await);
    }
    let mut keeping_up = EventStream::bearer(&web.address, &token).await;
    let client = reqwest::Client::new();
    let metrics_url = format!("{}/metrics", web.address);
    eventually("all streams are open", Duration::from_secs(5), || async {
        let metrics = client.get(&metrics_url).send().await.ok()?.text().await.ok()?;
        (streams_open(&metrics) == Some(31.0)).then_some(())
    })
    .await;
    let before = web.peak_mib();

    // About 5 MB of events for every stream: far more than the socket buffers hold.
    let description = "x".repeat(2000);
    let reader = tokio::spawn(async move {
        let mut upserts = 0;
        while let Some(message) = keeping_up.next_event(Duration::from_secs(10)).await {
            assert_eq!(message.kind(), "task.upserted", "the reader that keeps up is never dropped");
            upserts += 1;
            if upserts == 2000 {
                break;
            }
        }
        upserts
    });
    for batch in 0..20 {
        let operations: Vec<Value> = (0..100)
            .map(|i| json!({"op": "create", "task": {"title": format!("{batch}-{i}"), "description": description}}))
            .collect();
        let response = client
            .post(format!("{}/api/v1/tasks/bulk", web.address))
            .bearer_auth(&token)
            .json(&json!({"operations": operations}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    assert_eq!(reader.await.unwrap(), 2000, "every change reached the reader that keeps up");

    eventually("the stalled streams are dropped", Duration::from_secs(20), || async {
        let metrics = client.get(&metrics_url).send().await.ok()?.text().await.ok()?;
        (streams_open(&metrics) == Some(0.0)).then_some(())
    })
    .await;
    let peak = web.peak_mib();
    eprintln!("30 stalled streams behind 4 MB of events each: peak RSS {before} → {peak} MiB");
    assert!(peak < before + 40, "stalled streams held memory: {before} → {peak} MiB");

    // A stalled client that reads at last finds a `resync` event, then the end of the response.
    let mut socket = stalled.pop().unwrap();
    let mut received = Vec::new();
    let read_all = async {
        let mut buf = [0u8; 65536];
        loop {
            let n = socket.read(&mut buf).await.unwrap();
            received.extend_from_slice(&buf[..n]);
            if n == 0 || received.ends_with(b"\r\n0\r\n\r\n") {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read_all).await.expect("the response ends");
    let text = String::from_utf8_lossy(&received);
    assert!(text.contains("event: resync"), "{}", &text[text.len().saturating_sub(300)..]);
}

#[tokio::test]
async fn sigterm_ends_every_stream_cleanly_and_the_process_exits_promptly() {
    let app = TestApp::spawn().await;
    let mut web = WebProcess::start(&app, &[]).await;
    let token = register_at(&web.address, "term@example.com").await;
    let mut streams = Vec::new();
    for _ in 0..3 {
        streams.push(EventStream::bearer(&web.address, &token).await);
    }
    let status = tokio::task::spawn_blocking(move || {
        let status = web.terminate(Duration::from_secs(15));
        (status, web)
    });
    for stream in &mut streams {
        let last = stream.until_end(Duration::from_secs(10)).await;
        assert_eq!(last, [Message::Comment("the server is restarting; reconnect".into())]);
    }
    let (status, _web) = status.await.unwrap();
    let status = status.expect("the process exits well before its 30 s shutdown timeout");
    assert!(status.success(), "{status:?}");
}
