//! Server-sent events: each open `GET /events` stream follows its user's change feed live.

mod heads;
mod hub;
mod outbox;
mod stream;

pub use heads::follow as follow_heads;
pub use hub::{AuthSignal, Hub, Refused, Subscription};
pub use outbox::Body;
pub use stream::{Position, StreamAuth};

use outbox::Outbox;
use sqlx::PgPool;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// Starts a stream's producer on this worker's runtime and returns the body to answer with.
/// `backlog`: a replica to read the changes already made from, before following the primary.
pub fn open(subscription: Subscription, auth: StreamAuth, start: Position, backlog: Option<PgPool>) -> Body {
    let (outbox, body) = Outbox::new(subscription.hub().settings.stream_buffer_bytes);
    let pool = subscription.hub().pool.clone();
    actix_web::rt::spawn(async move {
        // The preamble always fits: the buffer is empty.
        let preamble = outbox.send(stream::preamble(), std::time::Duration::ZERO, stream::preamble()).await;
        if preamble.is_ok() && !*subscription.shutdown.borrow() {
            stream::run(pool, backlog, subscription, outbox, auth, start).await;
        }
    });
    body
}

/// A fresh ticket and the digest stored for it: 244 random bits from the OS generator (two v4
/// UUIDs), encoded in 43 URL-safe characters.
pub fn new_ticket() -> (String, Vec<u8>) {
    let mut bytes = [0u8; 32];
    bytes[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    let ticket = URL_SAFE_NO_PAD.encode(bytes);
    let digest = ticket_digest(&ticket);
    (ticket, digest)
}

/// What is stored and looked up for a ticket: never the ticket itself.
pub fn ticket_digest(ticket: &str) -> Vec<u8> {
    Sha256::digest(ticket.as_bytes()).to_vec()
}
