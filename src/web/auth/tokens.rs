//! Issuing and checking HS256 access tokens, ours and (optionally) an external issuer's.

use chrono::{DateTime, Utc};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::config::AuthSettings;
use crate::domain::Email;

/// Claims of the tokens this service issues.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: Uuid,
    iat: i64,
    exp: i64,
    jti: Uuid,
}

/// Claims read from an external issuer's token. Only `sub` and `exp` are required.
#[derive(Debug, Deserialize)]
struct ExternalClaims {
    sub: String,
    exp: i64,
    #[serde(default)]
    jti: Option<String>,
    #[serde(default)]
    email: Option<String>,
    /// Whether the issuer checked the address (OpenID Connect's claim); anything but `true`
    /// means it did not.
    #[serde(default)]
    email_verified: Option<serde_json::Value>,
    #[serde(default)]
    iat: Option<i64>,
}

/// Who a valid token speaks for.
#[derive(Debug, Clone)]
pub enum Subject {
    User(Uuid),
    /// An external issuer's user, resolved to a local row on first sight.
    External {
        external_id: String,
        email: Option<String>,
        /// The issuer vouches for `email` (`email_verified: true`).
        email_verified: bool,
        /// The `iat` claim, when the issuer sets one.
        issued_at: Option<DateTime<Utc>>,
    },
}

/// A token that passed signature and claim checks; revocation and user existence are checked
/// against the database by the extractor.
#[derive(Debug, Clone)]
pub struct VerifiedToken {
    pub subject: Subject,
    /// The key under which a logout records this token: its `jti`, or a digest of the token
    /// for external tokens that carry none.
    pub token_id: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token expired")]
    Expired,
    #[error("token invalid")]
    Invalid,
}

pub struct IssuedToken {
    pub token: String,
    pub expires_in: u64,
}

pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl_secs: u64,
    external: Option<(DecodingKey, Validation)>,
}

impl TokenKeys {
    pub fn new(settings: &AuthSettings) -> Self {
        let secret = settings.jwt_secret.expose_secret().as_bytes();
        let validation = strict_validation(settings.leeway_secs, &["sub", "exp", "iat", "jti"]);
        let external = settings.external.enabled.then(|| {
            let ext = &settings.external;
            let mut validation = strict_validation(settings.leeway_secs, &["sub", "exp"]);
            if !ext.issuer.is_empty() {
                validation.set_issuer(&[&ext.issuer]);
                validation.required_spec_claims.insert("iss".into());
            }
            if ext.audience.is_empty() {
                validation.validate_aud = false;
            } else {
                validation.set_audience(&[&ext.audience]);
                validation.required_spec_claims.insert("aud".into());
            }
            (DecodingKey::from_secret(ext.secret.expose_secret().as_bytes()), validation)
        });
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl_secs: settings.token_ttl_secs,
            external,
        }
    }

    pub fn issue(&self, user_id: Uuid) -> Result<IssuedToken, jsonwebtoken::errors::Error> {
        let now = Utc::now().timestamp();
        let ttl = i64::try_from(self.ttl_secs).unwrap_or(i64::MAX / 2);
        let claims = Claims { sub: user_id, iat: now, exp: now.saturating_add(ttl), jti: Uuid::new_v4() };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?;
        Ok(IssuedToken { token, expires_in: self.ttl_secs })
    }

    pub fn verify(&self, token: &str) -> Result<VerifiedToken, TokenError> {
        match jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation) {
            Ok(data) if self.issued_in_future(data.claims.iat) => Err(TokenError::Invalid),
            Ok(data) => Ok(VerifiedToken {
                subject: Subject::User(data.claims.sub),
                token_id: data.claims.jti.to_string(),
                expires_at: timestamp(data.claims.exp),
            }),
            Err(err) if *err.kind() == ErrorKind::InvalidSignature => self.verify_external(token),
            Err(err) => Err(classify(err.kind())),
        }
    }

    /// jsonwebtoken does not check `iat`: a token "issued" later than now (beyond the clock-skew
    /// leeway) was not issued by a correct clock, and would outlive its stated lifetime.
    fn issued_in_future(&self, iat: i64) -> bool {
        let leeway = i64::try_from(self.validation.leeway).unwrap_or(i64::MAX);
        iat > Utc::now().timestamp().saturating_add(leeway)
    }

    fn verify_external(&self, token: &str) -> Result<VerifiedToken, TokenError> {
        let (key, validation) = self.external.as_ref().ok_or(TokenError::Invalid)?;
        let data =
            jsonwebtoken::decode::<ExternalClaims>(token, key, validation).map_err(|e| classify(e.kind()))?;
        let claims = data.claims;
        if claims.iat.is_some_and(|iat| self.issued_in_future(iat)) {
            return Err(TokenError::Invalid);
        }
        if claims.sub.is_empty() || claims.sub.len() > 255 || claims.sub.chars().any(char::is_control) {
            return Err(TokenError::Invalid);
        }
        // A long `jti` is digested too: it becomes a key in `revoked_tokens` and a NOTIFY payload.
        let token_id = match claims.jti {
            Some(jti) if !jti.is_empty() && jti.len() <= 128 => format!("ext:{jti}"),
            _ => format!("ext-sha256:{:x}", Sha256::digest(token.as_bytes())),
        };
        Ok(VerifiedToken {
            // Only a well-formed email is kept; the issuer is trusted for identity, not for hygiene.
            subject: Subject::External {
                external_id: claims.sub,
                email: claims.email.and_then(|e| Email::parse(&e).ok()).map(|e| e.as_str().to_owned()),
                email_verified: claims.email_verified == Some(serde_json::Value::Bool(true)),
                issued_at: claims.iat.map(timestamp),
            },
            token_id,
            expires_at: timestamp(claims.exp),
        })
    }
}

/// HS256 only: `alg: none`, other HMAC sizes and every asymmetric algorithm are refused.
fn strict_validation(leeway_secs: u64, required: &[&str]) -> Validation {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = leeway_secs;
    validation.validate_exp = true;
    validation.set_required_spec_claims(required);
    validation
}

fn classify(kind: &ErrorKind) -> TokenError {
    match kind {
        ErrorKind::ExpiredSignature => TokenError::Expired,
        _ => TokenError::Invalid,
    }
}

fn timestamp(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
}
