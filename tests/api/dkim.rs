//! DKIM-signed reminders through the real SMTP sink, with keys made by openssl at test time.
//!
//! The signature's own check is an independent verifier, dkimpy, fed the public key through its
//! `dnsfunc` hook: `scripts/dkim` installs it (pinned, in target/dkim-venv) and runs the ignored
//! test here with `DKIM_VERIFIER` naming that venv's Python. `.ci/run` runs it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use lettre::Message;
use lettre::message::MultiPart;
use secrecy::SecretString;
use serde_json::json;
use smtp_sink::{Received, SmtpSink};
use todo::config::{DkimSettings, Environment};
use todo::email::Mailer;

use crate::helpers::TestApp;

const SELECTOR: &str = "test2026";
const DOMAIN: &str = "localhost";

/// A key pair in a temporary folder: the private PEM file, and the TXT record to publish.
struct TestKey {
    dir: PathBuf,
    pem: PathBuf,
    record: String,
}

impl TestKey {
    /// `algorithm` is `RSA` or `ed25519`, as `openssl genpkey` names them.
    fn generate(algorithm: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("todo-dkim-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let pem = dir.join("private.pem");
        let mut genpkey = vec!["genpkey", "-algorithm", algorithm, "-out", pem.to_str().unwrap()];
        if algorithm == "RSA" {
            genpkey.extend(["-pkeyopt", "rsa_keygen_bits:2048"]);
        }
        openssl(&genpkey);
        let public = openssl(&["pkey", "-in", pem.to_str().unwrap(), "-pubout", "-outform", "DER"]);
        // RSA publishes the whole SubjectPublicKeyInfo; Ed25519 the raw 32-byte key (RFC 8463).
        let (k, p) = match algorithm {
            "RSA" => ("rsa", STANDARD.encode(&public)),
            _ => ("ed25519", STANDARD.encode(&public[public.len() - 32..])),
        };
        Self { dir, pem, record: format!("v=DKIM1; k={k}; p={p}") }
    }

    fn settings(&self) -> DkimSettings {
        DkimSettings {
            selector: SELECTOR.into(),
            domain: DOMAIN.into(),
            private_key: SecretString::from(""),
            private_key_file: self.pem.to_str().unwrap().into(),
        }
    }
}

impl Drop for TestKey {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn openssl(args: &[&str]) -> Vec<u8> {
    let output = Command::new("openssl").args(args).output().expect("openssl runs");
    assert!(output.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    output.stdout
}

/// One reminder sent by a worker signing with `key`, as the sink received it.
async fn signed_reminder(app: &TestApp, smtp: &SmtpSink, key: &TestKey) -> Received {
    let before = smtp.count();
    let worker = app.spawn_worker_with(smtp, |s| s.email.dkim = key.settings()).await;
    let user = app.new_user().await;
    let reminder_at = (chrono::Utc::now() - chrono::Duration::seconds(1)).to_rfc3339();
    app.create_task(&user, json!({"title": "Signed <standup> – café", "reminder_at": reminder_at})).await;
    let received = smtp.wait_for(before + 1, Duration::from_secs(20)).await;
    worker.stop().await.unwrap();
    received[before].clone()
}

/// The tags of the message's DKIM-Signature header.
fn signature_tags(mail: &Received) -> Vec<(String, String)> {
    let header = mail.header("DKIM-Signature").expect("a DKIM-Signature header");
    header
        .split(';')
        .filter_map(|tag| tag.split_once('='))
        .map(|(name, value)| (name.trim().to_owned(), value.split_whitespace().collect()))
        .collect()
}

#[tokio::test]
async fn a_signed_reminder_covers_the_headers_mailbox_providers_expect() {
    let app = TestApp::spawn().await;
    let smtp = SmtpSink::start().await.unwrap();
    let key = TestKey::generate("RSA");
    let mail = signed_reminder(&app, &smtp, &key).await;
    let tags = signature_tags(&mail);
    let tag = |name: &str| tags.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
    assert_eq!(tag("d"), Some(DOMAIN));
    assert_eq!(tag("s"), Some(SELECTOR));
    assert_eq!(tag("a"), Some("rsa-sha256"));
    assert_eq!(tag("c"), Some("relaxed/relaxed"));
    let signed: Vec<&str> = tag("h").unwrap().split(':').collect();
    for header in [
        "from",
        "subject",
        "date",
        "message-id",
        "to",
        "list-unsubscribe",
        "list-unsubscribe-post",
        "auto-submitted",
        "content-type",
        "mime-version",
    ] {
        assert!(signed.contains(&header), "{header} is signed: {signed:?}");
    }
}

/// Runs contract/dkim/verify.py with dkimpy on `message`, publishing `record` for the selector.
fn dkimpy(python: &Path, dir: &Path, message: &[u8], record: &str) -> String {
    let path = dir.join("message.eml");
    std::fs::write(&path, message).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("contract/dkim/verify.py");
    let output = Command::new(python)
        .arg(script)
        .args([path.to_str().unwrap(), SELECTOR, DOMAIN, record])
        .output()
        .expect("run the verifier");
    let said = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    assert_eq!(output.status.success(), said == "pass", "{said} {}", String::from_utf8_lossy(&output.stderr));
    said
}

#[tokio::test]
#[ignore = "needs dkimpy: scripts/dkim installs it and runs this"]
async fn dkim_signatures_verify_with_dkimpy_and_a_changed_message_does_not() {
    let python = PathBuf::from(
        std::env::var_os("DKIM_VERIFIER")
            .expect("DKIM_VERIFIER names a Python with dkimpy; run scripts/dkim"),
    );
    let app = TestApp::spawn().await;
    let smtp = SmtpSink::start().await.unwrap();
    for algorithm in ["RSA", "ed25519"] {
        let key = TestKey::generate(algorithm);
        let mail = signed_reminder(&app, &smtp, &key).await;
        assert_eq!(dkimpy(&python, &key.dir, &mail.data, &key.record), "pass", "{algorithm}");

        let raw = String::from_utf8(mail.data.clone()).unwrap();
        let subject = mail.header("Subject").unwrap();
        let tampered = raw.replacen(&subject, "Reminder: pay the invoice", 1);
        assert_ne!(tampered, raw);
        let said = dkimpy(&python, &key.dir, tampered.as_bytes(), &key.record);
        assert!(said.starts_with("fail"), "{algorithm}: a changed subject fails: {said}");
        let other = TestKey::generate(algorithm);
        let said = dkimpy(&python, &key.dir, &mail.data, &other.record);
        assert!(said.starts_with("fail"), "{algorithm}: another key fails: {said}");

        // Any other kind of email, built the plain lettre way, is signed by the same send path.
        let mail = plain_multipart_sent_by_the_mailer(&app, &smtp, &key).await;
        assert_eq!(
            dkimpy(&python, &key.dir, &mail.data, &key.record),
            "pass",
            "{algorithm}, plain multipart"
        );
    }
}

async fn plain_multipart_sent_by_the_mailer(app: &TestApp, smtp: &SmtpSink, key: &TestKey) -> Received {
    let mut settings = app.settings.email.clone();
    settings.smtp_url = SecretString::from(smtp.url());
    settings.dkim = key.settings();
    let mailer = Mailer::from_settings(&settings, Environment::Test).unwrap();
    let message = Message::builder()
        .from(mailer.from_address().clone())
        .to("ann@example.com".parse().unwrap())
        .subject("Please verify your address")
        .multipart(MultiPart::alternative_plain_html("Verify: x".to_owned(), "<p>Verify</p>".to_owned()))
        .unwrap();
    let before = smtp.count();
    mailer.send(message).await.unwrap();
    smtp.wait_for(before + 1, Duration::from_secs(20)).await[before].clone()
}
