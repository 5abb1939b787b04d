//! The accept loop: hands each connection to a session task, within the connection limit.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::{Shared, session};

/// Sent to connections beyond the limit, just before closing them.
const BUSY: &[u8] = b"421 4.3.2 Too many connections, try again later\r\n";

/// Pause after a failed accept. Failures like "too many open files" repeat immediately, so
/// retrying at once would spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Runs until the task is aborted. Sessions live in a `JoinSet` owned by this task, so aborting
/// it closes them too.
pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let slots = Arc::new(Semaphore::new(shared.limits.max_connections.min(Semaphore::MAX_PERMITS)));
    let mut sessions = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => match Arc::clone(&slots).try_acquire_owned() {
                    Ok(slot) => {
                        let shared = Arc::clone(&shared);
                        sessions.spawn(async move {
                            session::run(stream, &shared).await;
                            drop(slot);
                        });
                    }
                    // The client waits for the greeting before sending, so this fits in the
                    // empty socket buffer; if not, closing alone still tells it to go away.
                    Err(_) => {
                        let _ = stream.try_write(BUSY);
                    }
                },
                Err(_) => tokio::time::sleep(ACCEPT_BACKOFF).await,
            },
            // Reap finished sessions so the set does not grow with every connection ever made.
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
        }
    }
}
