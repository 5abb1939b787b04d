//! The `todo-worker` binary as an operator starts it. (Building this test also makes cargo build
//! the binary, which the crash tests in the root package start and kill.)

use std::process::Command;

#[test]
fn production_refuses_to_start_without_smtp_in_one_line() {
    let output = Command::new(env!("CARGO_BIN_EXE_todo-worker"))
        .env("APP_ENV", "production")
        .env("JWT_SECRET", "0123456789abcdef0123456789abcdef0123456789")
        .env("SMTP_URL", "")
        .env("DATABASE_URL", "postgres://postgres@127.0.0.1:1/none")
        .output()
        .expect("run todo-worker");
    assert!(!output.status.success(), "it must not start");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("SMTP_URL")).collect();
    assert_eq!(errors.len(), 1, "one line naming SMTP_URL: {stderr}");
}

#[test]
fn production_refuses_to_start_without_a_public_url_in_one_line() {
    let output = Command::new(env!("CARGO_BIN_EXE_todo-worker"))
        .env("APP_ENV", "production")
        .env("JWT_SECRET", "0123456789abcdef0123456789abcdef0123456789")
        .env("SMTP_URL", "smtp://127.0.0.1:1")
        .env("PUBLIC_URL", "")
        .env("DATABASE_URL", "postgres://postgres@127.0.0.1:1/none")
        .output()
        .expect("run todo-worker");
    assert!(!output.status.success(), "it must not start");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("PUBLIC_URL")).collect();
    assert_eq!(errors.len(), 1, "one line naming PUBLIC_URL: {stderr}");
    assert!(!stderr.contains("database"), "refused before waiting on the database: {stderr}");
}

#[test]
fn a_partial_or_bad_dkim_configuration_refuses_to_start_in_one_line() {
    let cases: [(&[(&str, &str)], &str); 2] = [
        (&[("DKIM_SELECTOR", "mail2026")], "DKIM is partly configured"),
        (
            &[
                ("DKIM_SELECTOR", "mail2026"),
                ("DKIM_DOMAIN", "example.com"),
                ("DKIM_PRIVATE_KEY", "not a key"),
            ],
            "DKIM_PRIVATE_KEY: not a PEM private key",
        ),
    ];
    for (env, expected) in cases {
        let output = Command::new(env!("CARGO_BIN_EXE_todo-worker"))
            .env("APP_ENV", "development")
            .env("DATABASE_URL", "postgres://postgres@127.0.0.1:1/none")
            .envs(env.iter().copied())
            .output()
            .expect("run todo-worker");
        assert!(!output.status.success(), "it must not start with {env:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("DKIM")).collect();
        assert_eq!(errors.len(), 1, "one line naming DKIM: {stderr}");
        assert!(errors[0].contains(expected), "{stderr}");
        assert!(!stderr.contains("not a key"), "the key is never echoed: {stderr}");
    }
}
