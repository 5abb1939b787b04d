//! Bounds what a request body can cost before any handler sees it: compressed bodies are refused
//! (a few kilobytes of gzip can inflate to gigabytes before the size limit applies), and a body
//! must arrive in full within a deadline, so a client trickling bytes cannot hold a connection.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::HttpMessage;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header::{CONTENT_ENCODING, CONTENT_LENGTH, TRANSFER_ENCODING};
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use futures_util::Stream;

use super::problem::ApiError;

/// What a timed-out body reports; the JSON extractor maps the `TimedOut` kind to a 408.
const BODY_TIMEOUT_MESSAGE: &str = "request body deadline passed";

pub async fn middleware(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
    timeout: Duration,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let headers = req.headers();
    let encoded = headers.get(CONTENT_ENCODING).is_some_and(|v| {
        !v.to_str().is_ok_and(|v| v.split(',').all(|e| e.trim().eq_ignore_ascii_case("identity")))
    });
    if encoded {
        return Ok(req.error_response(ApiError::UnsupportedEncoding).map_into_right_body());
    }
    let has_body = headers.contains_key(TRANSFER_ENCODING)
        || headers.get(CONTENT_LENGTH).is_some_and(|v| v.as_bytes() != b"0");
    if has_body {
        let payload = Deadline { inner: req.take_payload(), sleep: Box::pin(tokio::time::sleep(timeout)) };
        let boxed: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> = Box::pin(payload);
        req.set_payload(Payload::from(boxed));
    }
    Ok(next.call(req).await?.map_into_left_body())
}

/// A payload that fails with a timeout once its deadline passes.
struct Deadline {
    inner: Payload,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl Stream for Deadline {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Poll::Ready(item) = Pin::new(&mut self.inner).poll_next(cx) {
            return Poll::Ready(item);
        }
        match self.sleep.as_mut().poll(cx) {
            Poll::Ready(()) => {
                let err = io::Error::new(io::ErrorKind::TimedOut, BODY_TIMEOUT_MESSAGE);
                Poll::Ready(Some(Err(PayloadError::Io(err))))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}
