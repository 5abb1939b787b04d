//! The email sent when the service disables a webhook endpoint: which one, why, and how to turn
//! it back on.

use lettre::Message;
use lettre::message::{Mailbox, header::ContentType};

use super::headers::{automated, one_line};

pub const SUBJECT: &str = "A webhook endpoint was disabled";

/// `api_url` is the endpoint's address in the API, for the PATCH that re-enables it.
pub fn build(
    from: &Mailbox,
    to: Mailbox,
    endpoint_url: &str,
    reason: &str,
    api_url: &str,
) -> Result<Message, lettre::error::Error> {
    let why = match reason {
        "gone" => "its receiver answered 410 Gone, which asks senders to stop".to_owned(),
        _ => "every delivery to it has failed for about three days".to_owned(),
    };
    // The URL is the owner's own, but it is still shown on one line and shortened.
    let shown = one_line(endpoint_url, 200);
    let text = format!(
        "Hello,\n\nWe stopped sending webhooks to {shown} because {why}.\n\n\
         Messages that were still waiting are kept and will be sent, in order, once it is \
         enabled again. When the receiver works, turn it back on with:\n\n\
         curl -X PATCH {api_url} \\\n  -H 'authorization: Bearer <token>' \\\n  \
         -H 'content-type: application/json' -d '{{\"enabled\": true}}'\n\n\
         Its delivery log, at {api_url}/deliveries, shows each attempt's status and response.\n"
    );
    automated(Message::builder().from(from.clone()).to(to).subject(SUBJECT), None)
        .header(ContentType::TEXT_PLAIN)
        .body(text)
}
