//! The web binary: `todo serve` (the default) runs the HTTP API; `todo migrate` applies all
//! migrations and exits, for the Procfile's `release` step; `todo openapi` prints the OpenAPI
//! document the server serves at `/openapi.json`, for client generators and linters.

use std::process::ExitCode;

use todo::config::Settings;
use todo::web::startup::Application;
use todo::{db, telemetry};

fn main() -> ExitCode {
    let command = std::env::args().nth(1).unwrap_or_else(|| "serve".to_owned());
    let result = match command.as_str() {
        "serve" => actix_web::rt::System::new().block_on(serve()),
        "migrate" => actix_web::rt::System::new().block_on(migrate()),
        "openapi" => print_openapi(),
        other => Err(anyhow::anyhow!("unknown command {other:?}; expected `serve`, `migrate` or `openapi`")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve() -> anyhow::Result<()> {
    let settings = Settings::load()?;
    telemetry::init(&settings.telemetry);
    let app = Application::build(settings).await?;
    tracing::info!(port = app.port(), "web process listening");
    app.run_until_stopped().await?;
    tracing::info!("web process stopped");
    Ok(())
}

async fn migrate() -> anyhow::Result<()> {
    let settings = Settings::load()?;
    telemetry::init(&settings.telemetry);
    let pool = db::connect(&settings.database).await?;
    db::migrate(&pool).await?;
    tracing::info!("migrations applied");
    Ok(())
}

fn print_openapi() -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(&todo::web::openapi::document())?);
    Ok(())
}
