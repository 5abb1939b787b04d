//! `smtp-sink`: a local mail catcher. Accepts every message, prints one line per message and can
//! save each one as an `.eml` file.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use smtp_sink::{Received, SmtpSink};

const USAGE: &str = "\
Usage: smtp-sink [--listen ADDR] [--out DIR]

A local SMTP server that accepts every message and prints one line per message
(time, sender, recipients, subject) to stdout.

Options:
  --listen ADDR  address to listen on (default 127.0.0.1:1025)
  --out DIR      also save each message as DIR/<n>.eml, numbered from 1
                 (existing files of the same name are overwritten)
  -h, --help     print this help

Runs until Ctrl-C or SIGTERM.";

struct Args {
    listen: SocketAddr,
    out: Option<PathBuf>,
}

/// Parses the arguments after the program name; `Ok(None)` means help was asked for.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut parsed = Args { listen: SocketAddr::from(([127, 0, 0, 1], 1025)), out: None };
    while let Some(arg) = args.next() {
        // Accept both "--listen ADDR" and "--listen=ADDR".
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => (name.to_owned(), Some(value.to_owned())),
            _ => (arg, None),
        };
        let mut value = || inline.clone().or_else(|| args.next()).ok_or(format!("{name} needs a value"));
        match name.as_str() {
            "-h" | "--help" => return Ok(None),
            "--listen" => {
                let text = value()?;
                parsed.listen = text
                    .parse()
                    .map_err(|_| format!("--listen: {text:?} is not an address like 127.0.0.1:1025"))?;
            }
            "--out" => parsed.out = Some(PathBuf::from(value()?)),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Some(parsed))
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("smtp-sink: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if let Some(dir) = &args.out
        && let Err(error) = std::fs::create_dir_all(dir)
    {
        eprintln!("smtp-sink: cannot create {}: {error}", dir.display());
        return ExitCode::FAILURE;
    }
    let sink = match SmtpSink::bind(args.listen).await {
        Ok(sink) => sink,
        Err(error) => {
            eprintln!("smtp-sink: cannot listen on {}: {error}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    // Status goes to stderr so that stdout holds only the message lines.
    eprintln!("smtp-sink: listening on {}", sink.url());

    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    let mut seen = 0;
    let mut number = 0u64;
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            count = sink.wait_for_count(seen + 1, Duration::from_secs(3600)) => seen = count,
        }
        // Draining (rather than copying the list) keeps memory flat on a long run.
        for message in sink.drain() {
            number += 1;
            print_line(&message);
            if let Some(dir) = &args.out {
                save(dir, number, &message);
            }
        }
    }
    sink.stop();
    eprintln!("smtp-sink: stopped after {} message(s)", sink.count());
    ExitCode::SUCCESS
}

/// Completes on Ctrl-C or, on Unix, SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    // If no handler can be installed, run until killed.
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

fn print_line(message: &Received) {
    // Addresses and subject come from the client; escape them so they can't drive the terminal.
    let to = message.to.iter().map(|to| format!("<{}>", to.escape_debug())).collect::<Vec<_>>().join(",");
    let subject = message.header("Subject").map_or_else(|| "(none)".to_owned(), |s| format!("{s:?}"));
    let line = format!(
        "{} from=<{}> to={to} subject={subject}",
        format_utc(message.received_at),
        message.from.escape_debug()
    );
    // A closed stdout (e.g. piped into `head`) must not stop the server.
    let _ = writeln!(io::stdout().lock(), "{line}");
}

/// Writes the message to `dir/<number>.eml`. Blocking I/O is fine here: this task does nothing
/// else, and the sessions run on other worker threads.
fn save(dir: &Path, number: u64, message: &Received) {
    let path = dir.join(format!("{number}.eml"));
    if let Err(error) = std::fs::write(&path, &message.data) {
        eprintln!("smtp-sink: cannot write {}: {error}", path.display());
    }
}

/// Formats a time as RFC 3339 in UTC with milliseconds, e.g. `2024-05-01T12:34:56.789Z`.
fn format_utc(time: SystemTime) -> String {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since_epoch.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        since_epoch.subsec_millis()
    )
}

/// Converts days since 1970-01-01 to a (year, month, day) date in the proleptic Gregorian
/// calendar (Howard Hinnant's `civil_from_days`, for non-negative days).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Option<Args>, String> {
        parse_args(list.iter().map(|s| s.to_string()))
    }

    #[test]
    fn parses_arguments() {
        let parsed = args(&[]).unwrap().unwrap();
        assert_eq!(parsed.listen, "127.0.0.1:1025".parse().unwrap());
        assert!(parsed.out.is_none());
        let parsed = args(&["--listen", "0.0.0.0:2525", "--out=/tmp/mail"]).unwrap().unwrap();
        assert_eq!(parsed.listen, "0.0.0.0:2525".parse().unwrap());
        assert_eq!(parsed.out, Some(PathBuf::from("/tmp/mail")));
        assert!(args(&["--help"]).unwrap().is_none());
        assert!(args(&["--listen"]).is_err());
        assert!(args(&["--listen", "localhost"]).is_err());
        assert!(args(&["--bogus"]).is_err());
    }

    #[test]
    fn formats_utc_times() {
        assert_eq!(format_utc(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let time = UNIX_EPOCH + Duration::from_millis(1_709_210_096_789); // a leap day
        assert_eq!(format_utc(time), "2024-02-29T12:34:56.789Z");
        let time = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29, a 400-year leap day
        assert_eq!(format_utc(time), "2000-02-29T00:00:00.000Z");
    }
}
