use std::time::Duration;

use tokio::sync::oneshot;

use crate::helpers::TestApp;

#[tokio::test]
async fn worker_registers_a_unique_name_runs_maintenance_and_stops_on_signal() {
    let app = TestApp::spawn().await;
    let mut settings = app.settings.clone();
    settings.worker.poll_interval_ms = 100;
    let (stop, stopped) = oneshot::channel::<()>();
    let worker = tokio::spawn(todo_worker::run(app.pool.clone(), settings, async move {
        let _ = stopped.await;
        Ok(())
    }));

    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let prefix = format!("{}-{}-", host.trim(), std::process::id());
    let mut done_jobs = 0_i64;
    for _ in 0..300 {
        done_jobs = sqlx::query_scalar(
            "SELECT count(*) FROM apalis.jobs WHERE job_type = 'todo.maintenance' AND status = 'Done'",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap();
        if done_jobs > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(done_jobs, 1, "the first maintenance slot ran once");

    let names: Vec<String> =
        sqlx::query_scalar("SELECT id FROM apalis.workers").fetch_all(&app.pool).await.unwrap();
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(names[0].starts_with(&prefix), "name {} has host and pid", names[0]);
    let suffix =
        names[0][prefix.len()..].strip_suffix(":todo.maintenance").expect("queue after the process name");
    assert!(suffix.len() == 8 && suffix.chars().all(|c| c.is_ascii_hexdigit()), "random suffix {suffix:?}");

    stop.send(()).unwrap();
    let result = tokio::time::timeout(Duration::from_secs(10), worker).await;
    let outcome = result.expect("worker stops within 10 s").expect("worker task did not panic");
    assert!(outcome.is_ok(), "clean shutdown: {outcome:?}");
}

#[test]
fn worker_names_differ_between_processes_and_restarts() {
    assert_ne!(todo_worker::worker_name(), todo_worker::worker_name());
}
