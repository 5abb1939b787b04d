//! The worker process: consumes the Postgres-backed job queue. Scale it independently of web.

use std::process::ExitCode;

use todo::config::Settings;
use todo::telemetry;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let settings = Settings::load()?;
    telemetry::init(&settings.telemetry);
    // A configuration mistake is reported at once, before waiting on the database.
    todo::email::Mailer::from_settings(&settings.email, settings.environment)?;
    settings.public_url()?;
    let pool = todo_worker::connect(&settings).await?;
    todo_worker::run(pool, settings, shutdown_signal()).await
}

/// Resolves on SIGINT or SIGTERM, whichever comes first.
async fn shutdown_signal() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            res = tokio::signal::ctrl_c() => res,
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await
}
