//! Outgoing email: the transport chosen by configuration, and the reminder message.
//!
//! Production sends through SMTP (`SMTP_URL`) with pooled connections and timeouts. Elsewhere,
//! without an `SMTP_URL`, each message is written as an `.eml` file under `email.outbox_dir`,
//! so reminders visibly work on a machine with no mail server. With DKIM configured, [`Mailer::send`]
//! signs every message, whatever its kind.

use std::time::Duration;

use anyhow::{Context, bail};
use lettre::message::Mailbox;
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;

use crate::config::{EmailSettings, Environment};

pub mod agenda;
pub mod dkim;
pub mod headers;
pub mod reminder;
pub mod verification;
pub mod webhook_disabled;

/// Why a message was not accepted, split the way a retry policy needs it.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Worth trying again later: a 4xx answer, a timeout, a refused or dropped connection.
    #[error("temporary mail failure: {0}")]
    Transient(String),
    /// Trying again cannot help: a 5xx answer or an address the server refuses.
    #[error("permanent mail failure: {0}")]
    Permanent(String),
}

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Files(AsyncFileTransport<Tokio1Executor>),
}

/// Sends messages from the configured sender.
pub struct Mailer {
    transport: Transport,
    from: Mailbox,
    dkim: Option<dkim::Signer>,
}

impl Mailer {
    /// Builds the transport the settings ask for. Production without `SMTP_URL` is refused,
    /// because a worker that silently wrote reminders to disk would lose them.
    pub fn from_settings(settings: &EmailSettings, environment: Environment) -> anyhow::Result<Self> {
        let from: Mailbox = settings.from.parse().with_context(|| {
            format!(
                "MAIL_FROM={:?} is not a valid mailbox such as \"Todo <todo@example.com>\"",
                settings.from
            )
        })?;
        let dkim = dkim::signer(&settings.dkim)?;
        if dkim.is_some() {
            let (selector, domain) = (settings.dkim.selector.trim(), settings.dkim.domain.trim());
            let sender = from.email.domain();
            // DMARC passes on DKIM only when d= is the sender's domain or a parent of it.
            if sender != domain && !sender.ends_with(&format!(".{domain}")) {
                tracing::warn!(
                    domain,
                    sender,
                    "DKIM_DOMAIN is not the MAIL_FROM domain: DMARC will not count the signature"
                );
            }
            tracing::info!(selector, domain, "outgoing mail is DKIM-signed");
        }
        let url = settings.smtp_url.expose_secret().trim();
        let transport = if !url.is_empty() {
            let pool = PoolConfig::new()
                .max_size(settings.pool_max_connections)
                .idle_timeout(Duration::from_secs(60));
            let smtp = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                .map_err(|e| anyhow::anyhow!("SMTP_URL is not a valid smtp:// or smtps:// URL: {e}"))?
                .timeout(Some(Duration::from_secs(settings.timeout_secs)))
                .pool_config(pool)
                .build();
            Transport::Smtp(smtp)
        } else if environment == Environment::Production {
            bail!(
                "SMTP_URL is not set; production workers send reminders through SMTP, so set SMTP_URL (e.g. smtp://mail.internal:25)"
            );
        } else {
            std::fs::create_dir_all(&settings.outbox_dir)
                .with_context(|| format!("creating the outbox folder {:?}", settings.outbox_dir))?;
            tracing::info!(outbox = %settings.outbox_dir, "no SMTP_URL: reminder emails are written as .eml files");
            Transport::Files(AsyncFileTransport::new(&settings.outbox_dir))
        };
        Ok(Self { transport, from, dkim })
    }

    pub fn from_address(&self) -> &Mailbox {
        &self.from
    }

    /// Signs (when DKIM is on) and sends. Signing is last, so it covers every header set before.
    pub async fn send(&self, mut message: Message) -> Result<(), SendError> {
        if let Some(dkim) = &self.dkim {
            dkim.sign(&mut message);
        }
        match &self.transport {
            Transport::Smtp(smtp) => smtp.send(message).await.map(|_| ()).map_err(|e| {
                if e.is_permanent() {
                    SendError::Permanent(e.to_string())
                } else {
                    SendError::Transient(e.to_string())
                }
            }),
            Transport::Files(files) => {
                files.send(message).await.map(|_| ()).map_err(|e| SendError::Transient(e.to_string()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use super::*;

    fn settings(smtp_url: &str, outbox_dir: &str) -> EmailSettings {
        EmailSettings {
            smtp_url: SecretString::from(smtp_url),
            from: "Todo <todo@example.com>".into(),
            outbox_dir: outbox_dir.into(),
            timeout_secs: 5,
            pool_max_connections: 2,
            verification_per_hour: 5,
            verification_per_recipient_per_hour: 5,
            dkim: crate::config::DkimSettings {
                selector: String::new(),
                domain: String::new(),
                private_key: SecretString::from(""),
                private_key_file: String::new(),
            },
            caps: crate::config::ReminderCaps { per_account_per_hour: 0, per_recipient_per_hour: 0 },
        }
    }

    #[test]
    fn production_refuses_to_run_without_an_smtp_server() {
        let err = Mailer::from_settings(&settings("", "outbox"), Environment::Production).err().unwrap();
        assert!(err.to_string().contains("SMTP_URL is not set"), "{err}");
        assert!(!err.to_string().contains('\n'), "one line");
    }

    #[test]
    fn a_bad_smtp_url_or_sender_is_refused_at_start() {
        assert!(Mailer::from_settings(&settings("http://mail", "outbox"), Environment::Production).is_err());
        let mut bad_from = settings("smtp://127.0.0.1:25", "outbox");
        bad_from.from = "not an address".into();
        assert!(Mailer::from_settings(&bad_from, Environment::Production).is_err());
    }

    #[tokio::test]
    async fn without_an_smtp_server_development_writes_eml_files() {
        let dir = std::env::temp_dir().join(format!("todo-outbox-{}", uuid::Uuid::new_v4().simple()));
        let mailer =
            Mailer::from_settings(&settings("", dir.to_str().unwrap()), Environment::Development).unwrap();
        let message = Message::builder()
            .from(mailer.from_address().clone())
            .to("ann@example.com".parse().unwrap())
            .subject("Reminder: test")
            .body(String::from("hello"))
            .unwrap();
        mailer.send(message).await.unwrap();
        let files: Vec<_> = std::fs::read_dir(&dir).unwrap().filter_map(Result::ok).collect();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(files.len(), 1);
        assert!(files[0].path().extension().is_some_and(|e| e == "eml"));
    }
}
