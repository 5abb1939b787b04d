//! DKIM (RFC 6376) signing with lettre's `dkim` feature: the signer built from the settings, once
//! at start, so a bad key stops the worker before it sends anything.
//!
//! lettre's `DkimConfig::default_config` signs only `From`, `Subject`, `To` and `Date`, with
//! simple/relaxed canonicalization. Mailbox providers also expect `Message-ID` and the RFC 8058
//! unsubscribe headers signed, and a relay that refolds a long header breaks "simple", so
//! [`SIGNED_HEADERS`] is signed with relaxed/relaxed. lettre puts every listed name in `h=` even
//! when the message lacks that header, which RFC 6376 §5.4 allows: it also stops a relay from
//! adding, say, a `List-Unsubscribe` of its own later.
//!
//! lettre writes a MIME body's `Content-Type` with the body, outside the headers it signs, yet
//! names it in `h=`, so the verifier hashes a header the signer did not: the signature fails.
//! [`Signer`] therefore leaves `Content-Type` out of `h=` for a message whose headers lack it;
//! [`super::headers::with_multipart`] lifts it into the headers so that it is signed.
//!
//! Keys are PEM: RSA as PKCS#1 (`BEGIN RSA PRIVATE KEY`) or PKCS#8 (`BEGIN PRIVATE KEY`, what
//! `openssl genpkey` writes), or Ed25519 as PKCS#8 (RFC 8463).

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use lettre::Message;
use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm, DkimSigningKey,
};
use lettre::message::header::{ContentType, HeaderName};
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey};
use rsa::pkcs8::DecodePrivateKey;
use rsa::traits::PublicKeyParts;
use secrecy::ExposeSecret;

use crate::config::DkimSettings;

/// The header fields each signature covers.
pub const SIGNED_HEADERS: &[&str] = &[
    "From",
    "Subject",
    "Date",
    "Message-ID",
    "To",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "Auto-Submitted",
    "Content-Type",
    "MIME-Version",
];

/// RFC 8301 §3.2: verifiers must refuse RSA keys under 1024 bits; 2048 is what to publish.
const MIN_RSA_BITS: usize = 1024;

/// PKCS#8 `PrivateKeyInfo` for an Ed25519 key (RFC 8410 §7), up to the 32-byte seed: OpenSSL
/// writes exactly this.
const ED25519_PKCS8_PREFIX: [u8; 16] =
    [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];

/// Signs messages with one key, selector and domain.
pub struct Signer {
    all: DkimConfig,
    without_content_type: DkimConfig,
}

impl Signer {
    /// Adds the `DKIM-Signature` header; call it after every other header is set.
    pub fn sign(&self, message: &mut Message) {
        match message.headers().get::<ContentType>() {
            Some(_) => message.sign(&self.all),
            None => message.sign(&self.without_content_type),
        }
    }
}

/// The signer the settings describe: `None` when DKIM is off (every field empty). Errors are one
/// line naming the setting, and never show the key.
pub fn signer(settings: &DkimSettings) -> anyhow::Result<Option<Signer>> {
    let selector = settings.selector.trim();
    let domain = settings.domain.trim();
    let inline = settings.private_key.expose_secret().trim();
    let file = settings.private_key_file.trim();
    let mut missing = Vec::new();
    if selector.is_empty() {
        missing.push("DKIM_SELECTOR");
    }
    if domain.is_empty() {
        missing.push("DKIM_DOMAIN");
    }
    if inline.is_empty() && file.is_empty() {
        missing.push("DKIM_PRIVATE_KEY or DKIM_PRIVATE_KEY_FILE");
    }
    match missing.len() {
        3 => return Ok(None),
        0 => {}
        _ => bail!(
            "DKIM is partly configured: {} not set; set DKIM_SELECTOR, DKIM_DOMAIN and a key, or none of them",
            missing.join(", ")
        ),
    }
    if !inline.is_empty() && !file.is_empty() {
        bail!("both DKIM_PRIVATE_KEY and DKIM_PRIVATE_KEY_FILE are set; set one");
    }
    check_dns_name("DKIM_SELECTOR", selector)?;
    check_dns_name("DKIM_DOMAIN", domain)?;
    let (setting, pem) = match inline.is_empty() {
        false => ("DKIM_PRIVATE_KEY".to_owned(), inline.to_owned()),
        true => {
            let pem = std::fs::read_to_string(file)
                .with_context(|| format!("DKIM_PRIVATE_KEY_FILE={file:?} cannot be read"))?;
            (format!("DKIM_PRIVATE_KEY_FILE={file:?}"), pem)
        }
    };
    let config = |headers: &[&'static str]| -> anyhow::Result<DkimConfig> {
        let key = signing_key(&pem).context(setting.clone())?;
        let headers = headers.iter().map(|name| HeaderName::new_from_ascii_str(name)).collect();
        let relaxed = DkimCanonicalization {
            header: DkimCanonicalizationType::Relaxed,
            body: DkimCanonicalizationType::Relaxed,
        };
        Ok(DkimConfig::new(selector.to_owned(), domain.to_owned(), key, headers, relaxed))
    };
    let without: Vec<&'static str> =
        SIGNED_HEADERS.iter().copied().filter(|h| *h != "Content-Type").collect();
    Ok(Some(Signer { all: config(SIGNED_HEADERS)?, without_content_type: config(&without)? }))
}

/// Selectors and domains go into the `DKIM-Signature` header and a DNS name as they are.
fn check_dns_name(setting: &str, value: &str) -> anyhow::Result<()> {
    let valid = value.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    if !valid || value.len() > 253 {
        bail!("{setting}={value:?} is not a DNS name such as \"mail2026\" or \"example.com\"");
    }
    Ok(())
}

fn signing_key(pem: &str) -> anyhow::Result<DkimSigningKey> {
    let invalid = || anyhow::anyhow!("not a valid RSA or Ed25519 private key in PEM");
    if pem.contains("-----BEGIN RSA PRIVATE KEY-----") {
        return rsa_key(rsa::RsaPrivateKey::from_pkcs1_pem(pem).map_err(|_| invalid())?);
    }
    if pem.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        bail!(
            "the key is encrypted; give the unencrypted PEM (keep it secret through the environment or file permissions)"
        );
    }
    if !pem.contains("-----BEGIN PRIVATE KEY-----") {
        bail!(
            "not a PEM private key (expected \"-----BEGIN PRIVATE KEY-----\" or \"-----BEGIN RSA PRIVATE KEY-----\")"
        );
    }
    let der = pem_body(pem).ok_or_else(invalid)?;
    if let Some(seed) = der.strip_prefix(&ED25519_PKCS8_PREFIX[..]).filter(|seed| seed.len() == 32) {
        return DkimSigningKey::new(&STANDARD.encode(seed), DkimSigningAlgorithm::Ed25519)
            .map_err(|_| invalid());
    }
    rsa_key(rsa::RsaPrivateKey::from_pkcs8_pem(pem).map_err(|_| invalid())?)
}

fn rsa_key(key: rsa::RsaPrivateKey) -> anyhow::Result<DkimSigningKey> {
    let bits = key.size() * 8;
    if bits < MIN_RSA_BITS {
        bail!("the RSA key has {bits} bits; receivers refuse fewer than {MIN_RSA_BITS}, so use 2048");
    }
    // lettre reads only PKCS#1; the re-encoded PEM is as secret as the key and is dropped at once.
    let pkcs1 = key.to_pkcs1_pem(rsa::pkcs8::LineEnding::LF).context("re-encoding the RSA key")?;
    DkimSigningKey::new(&pkcs1, DkimSigningAlgorithm::Rsa)
        .map_err(|_| anyhow::anyhow!("lettre refused the RSA key"))
}

/// The DER bytes between the first BEGIN and END lines.
fn pem_body(pem: &str) -> Option<Vec<u8>> {
    let body: String = pem
        .lines()
        .map(str::trim)
        .skip_while(|line| !line.starts_with("-----BEGIN"))
        .skip(1)
        .take_while(|line| !line.starts_with("-----END"))
        .collect();
    STANDARD.decode(body).ok()
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use secrecy::SecretString;

    use super::*;

    fn settings(selector: &str, domain: &str, key: &str, file: &str) -> DkimSettings {
        DkimSettings {
            selector: selector.into(),
            domain: domain.into(),
            private_key: SecretString::from(key),
            private_key_file: file.into(),
        }
    }

    /// A fresh key from openssl, as an operator makes one.
    fn openssl_key(args: &[&str]) -> String {
        let output = Command::new("openssl").arg("genpkey").args(args).output().expect("openssl runs");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap()
    }

    fn one_line_error(settings: &DkimSettings) -> String {
        let err = format!("{:#}", signer(settings).err().expect("refused"));
        assert!(!err.contains('\n'), "one line: {err}");
        err
    }

    #[test]
    fn no_settings_means_no_signing() {
        assert!(signer(&settings("", "", "", "")).unwrap().is_none());
    }

    #[test]
    fn a_partial_configuration_is_refused_naming_what_is_missing() {
        let err = one_line_error(&settings("mail", "", "", ""));
        assert!(err.contains("DKIM_DOMAIN") && err.contains("DKIM_PRIVATE_KEY"), "{err}");
        let err = one_line_error(&settings("", "example.com", "", "/etc/dkim.pem"));
        assert!(err.contains("DKIM_SELECTOR") && !err.contains("DKIM_DOMAIN,"), "{err}");
        let err = one_line_error(&settings("mail", "example.com", "x", "/etc/dkim.pem"));
        assert!(err.contains("set one"), "{err}");
        let err = one_line_error(&settings("mail; x=1", "example.com", "x", ""));
        assert!(err.contains("DKIM_SELECTOR"), "{err}");
    }

    #[test]
    fn a_bad_or_missing_key_is_refused_without_showing_it() {
        let secretish =
            "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWJ1dC1ub3QtYS1rZXk=\n-----END PRIVATE KEY-----\n";
        let err = one_line_error(&settings("mail", "example.com", secretish, ""));
        assert!(err.contains("DKIM_PRIVATE_KEY") && err.contains("not a valid"), "{err}");
        assert!(!err.contains("c2VjcmV0"), "the key is never shown: {err}");
        let err = one_line_error(&settings("mail", "example.com", "hunter2", ""));
        assert!(err.contains("not a PEM private key") && !err.contains("hunter2"), "{err}");
        let err = one_line_error(&settings("mail", "example.com", "", "/nonexistent/dkim.pem"));
        assert!(err.contains("DKIM_PRIVATE_KEY_FILE") && err.contains("cannot be read"), "{err}");
        let small = openssl_key(&["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:512"]);
        let err = one_line_error(&settings("mail", "example.com", &small, ""));
        assert!(err.contains("512 bits"), "{err}");
    }

    #[test]
    fn rsa_in_pkcs8_and_pkcs1_and_ed25519_keys_are_accepted() {
        let pkcs8 = openssl_key(&["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]);
        let pkcs1 = rsa::RsaPrivateKey::from_pkcs8_pem(&pkcs8)
            .unwrap()
            .to_pkcs1_pem(rsa::pkcs8::LineEnding::LF)
            .unwrap();
        let ed25519 = openssl_key(&["-algorithm", "ed25519"]);
        for pem in [pkcs8.as_str(), pkcs1.as_str(), ed25519.as_str()] {
            assert!(signer(&settings("mail", "example.com", pem, "")).unwrap().is_some());
        }
    }
}
