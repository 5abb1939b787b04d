//! The bounded buffer between a stream's producer and the response body that actix writes out.
//!
//! The producer waits for room; if the client leaves the buffer full for too long, the buffer is
//! emptied at once and the client's last message is a `resync` event. So a client that stops
//! reading never holds more than the buffer's bound, and one that keeps up is never dropped.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use actix_web::web::Bytes;
use futures_util::Stream;
use tokio::sync::Notify;

pub struct Outbox {
    inner: Mutex<Inner>,
    /// Signalled when the body takes a chunk or goes away.
    taken: Notify,
    capacity: usize,
}

#[derive(Default)]
struct Inner {
    queue: VecDeque<Bytes>,
    bytes: usize,
    /// Sent after the queue, then the body ends.
    last: Option<Bytes>,
    finished: bool,
    /// The response body was dropped: the client is gone.
    gone: bool,
    waker: Option<Waker>,
}

/// Why a chunk was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotSent {
    /// The client went away.
    Gone,
    /// The client did not make room in time; it has been sent its last message.
    Slow,
}

impl Outbox {
    /// A buffer of `capacity` bytes and the body that drains it.
    pub fn new(capacity: usize) -> (Arc<Self>, Body) {
        let outbox = Arc::new(Self { inner: Mutex::default(), taken: Notify::new(), capacity });
        (outbox.clone(), Body { outbox })
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `chunk`, waiting up to `patience` for room. On [`NotSent::Slow`] the queue has been
    /// replaced by `on_slow` and the stream is finished.
    pub async fn send(&self, chunk: Bytes, patience: Duration, on_slow: Bytes) -> Result<(), NotSent> {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            // Registered before looking, so a chunk taken in between is not missed.
            let taken = self.taken.notified();
            {
                let mut inner = self.inner();
                if inner.gone {
                    return Err(NotSent::Gone);
                }
                // One chunk always fits in an empty queue, however large.
                if inner.queue.is_empty() || inner.bytes + chunk.len() <= self.capacity {
                    inner.bytes += chunk.len();
                    inner.queue.push_back(chunk);
                    wake(&mut inner);
                    return Ok(());
                }
            }
            if tokio::time::timeout_at(deadline, taken).await.is_err() {
                let mut inner = self.inner();
                inner.queue = VecDeque::new();
                inner.bytes = 0;
                inner.last = Some(on_slow);
                inner.finished = true;
                wake(&mut inner);
                return Err(NotSent::Slow);
            }
        }
    }

    /// Ends the body once what is queued (and `last`, if any) has gone out.
    pub fn finish(&self, last: Option<Bytes>) {
        let mut inner = self.inner();
        if !inner.finished {
            inner.last = last;
            inner.finished = true;
            wake(&mut inner);
        }
    }

    /// Resolves once the client has gone away.
    pub async fn gone(&self) {
        loop {
            let taken = self.taken.notified();
            if self.inner().gone {
                return;
            }
            taken.await;
        }
    }

    /// Bytes waiting to be written.
    #[cfg(test)]
    fn queued_bytes(&self) -> usize {
        self.inner().bytes
    }
}

fn wake(inner: &mut Inner) {
    if let Some(waker) = inner.waker.take() {
        waker.wake();
    }
}

/// The response body: yields what the producer queued.
pub struct Body {
    outbox: Arc<Outbox>,
}

impl Stream for Body {
    type Item = Result<Bytes, std::convert::Infallible>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut inner = self.outbox.inner();
        if let Some(chunk) = inner.queue.pop_front() {
            inner.bytes -= chunk.len();
            drop(inner);
            self.outbox.taken.notify_waiters();
            return Poll::Ready(Some(Ok(chunk)));
        }
        if inner.finished {
            return Poll::Ready(inner.last.take().map(Ok));
        }
        inner.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for Body {
    fn drop(&mut self) {
        let mut inner = self.outbox.inner();
        inner.gone = true;
        inner.queue = VecDeque::new();
        inner.bytes = 0;
        drop(inner);
        self.outbox.taken.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;

    use super::*;

    fn chunk(n: usize) -> Bytes {
        Bytes::from(vec![b'x'; n])
    }

    #[tokio::test]
    async fn a_reader_that_keeps_up_gets_everything_in_order() {
        let (outbox, mut body) = Outbox::new(10);
        let producer = tokio::spawn(async move {
            for i in 0..50u8 {
                outbox.send(Bytes::from(vec![i; 4]), Duration::from_secs(5), chunk(1)).await.unwrap();
            }
            outbox.finish(None);
        });
        let mut seen = Vec::new();
        while let Some(Ok(c)) = body.next().await {
            seen.push(c[0]);
        }
        producer.await.unwrap();
        assert_eq!(seen, (0..50).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_reader_that_stops_is_cut_off_with_the_last_message_and_the_buffer_freed() {
        let (outbox, mut body) = Outbox::new(10);
        outbox.send(chunk(6), Duration::from_millis(50), chunk(1)).await.unwrap();
        let result = outbox.send(chunk(6), Duration::from_millis(50), Bytes::from_static(b"bye")).await;
        assert_eq!(result, Err(NotSent::Slow));
        assert_eq!(outbox.queued_bytes(), 0);
        assert_eq!(body.next().await.unwrap().unwrap(), Bytes::from_static(b"bye"));
        assert!(body.next().await.is_none());
    }

    #[tokio::test]
    async fn a_client_that_leaves_is_noticed() {
        let (outbox, body) = Outbox::new(10);
        drop(body);
        outbox.gone().await;
        assert_eq!(outbox.send(chunk(1), Duration::from_secs(1), chunk(1)).await, Err(NotSent::Gone));
    }
}
