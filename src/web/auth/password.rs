//! argon2id hashing on a few dedicated threads, fed by a bounded queue.
//!
//! Each hash holds `argon2_memory_kib` while it runs. Running them on the blocking pool let a
//! login flood start one per request (and glibc keeps each thread's freed buffer in that
//! thread's arena), which took a process to gigabytes. Here the threads are fixed and each keeps
//! one working buffer for its whole life, so memory is threads × `argon2_memory_kib`, and a full
//! queue answers 503 at once.

use std::cell::RefCell;
use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};

use crate::config::AuthSettings;
use crate::domain::Password;
use crate::web::problem::{ApiError, ProblemCode};

type Work = Box<dyn FnOnce() + Send>;

#[derive(Clone)]
pub struct PasswordHashing {
    argon2: Arc<Argon2<'static>>,
    /// A hash of a random password, verified against when the email is unknown so both
    /// failures take the same time.
    decoy_hash: Arc<str>,
    queue: SyncSender<Work>,
}

impl PasswordHashing {
    pub fn new(settings: &AuthSettings) -> anyhow::Result<Self> {
        let params = Params::new(
            settings.argon2_memory_kib,
            settings.argon2_iterations,
            settings.argon2_parallelism,
            None,
        )
        .map_err(|e| anyhow::anyhow!("invalid argon2 settings: {e}"))?;
        let argon2 = Arc::new(Argon2::new(Algorithm::Argon2id, Version::V0x13, params));
        let threads = match settings.max_concurrent_hashes {
            0 => std::thread::available_parallelism().map_or(2, usize::from),
            n => n,
        };
        let (queue, jobs) = sync_channel::<Work>(settings.max_queued_hashes);
        let jobs = Arc::new(Mutex::new(jobs));
        for i in 0..threads {
            let jobs = jobs.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || hash_thread(&jobs))
                .map_err(|e| anyhow::anyhow!("starting a hashing thread: {e}"))?;
        }
        // Hashed on a hashing thread, so its working buffer is the one that thread keeps anyway.
        let (decoy_sent, decoy_hash) = std::sync::mpsc::channel();
        let decoy_argon2 = argon2.clone();
        queue
            .send(Box::new(move || {
                let decoy = uuid::Uuid::new_v4().to_string();
                let _ = decoy_sent.send(hash_phc(&decoy_argon2, decoy.as_bytes()));
            }))
            .map_err(|_| anyhow::anyhow!("the hashing threads have stopped"))?;
        let decoy_hash = decoy_hash.recv().context("hashing the decoy password")??;
        Ok(Self { argon2, decoy_hash: decoy_hash.into(), queue })
    }

    /// Runs `work` on a hashing thread, or refuses at once when the queue is full.
    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T, ApiError> {
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Work = Box::new(move || {
            let _ = done.send(work());
        });
        match self.queue.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                metrics::counter!("password_hash_rejected_total").increment(1);
                return Err(ApiError::Unavailable { reason: ProblemCode::Overloaded, retry_after_secs: 1 });
            }
            Err(TrySendError::Disconnected(_)) => {
                return Err(ApiError::internal(anyhow::anyhow!("the hashing threads have stopped")));
            }
        }
        result.await.map_err(|_| ApiError::internal(anyhow::anyhow!("a password hash panicked")))
    }

    pub async fn hash(&self, password: Password) -> Result<String, ApiError> {
        let argon2 = self.argon2.clone();
        self.run(move || hash_phc(&argon2, password.expose().as_bytes())).await?.map_err(ApiError::Internal)
    }

    /// Checks `password` against `stored`, or against the decoy when there is no stored hash.
    pub async fn verify(&self, password: String, stored: Option<String>) -> Result<bool, ApiError> {
        let decoy = self.decoy_hash.clone();
        self.run(move || {
            let real = stored.is_some();
            let matches = verify_phc(stored.as_deref().unwrap_or(&decoy), password.as_bytes())?;
            Ok(real && matches)
        })
        .await?
        .map_err(ApiError::Internal)
    }
}

thread_local! {
    /// A hashing thread's working memory, reused by every hash it computes.
    static SCRATCH: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Computes a raw hash in this thread's reused buffer.
fn compute(argon2: &Argon2<'_>, password: &[u8], salt: &[u8], out: &mut [u8]) -> anyhow::Result<()> {
    SCRATCH
        .with_borrow_mut(|blocks| {
            let needed = argon2.params().block_count();
            if blocks.len() != needed {
                *blocks = vec![Block::default(); needed];
            }
            argon2.hash_password_into_with_memory(password, salt, out, &mut blocks[..])
        })
        .map_err(|e| anyhow::anyhow!("argon2: {e}"))
}

/// Hashes a password into a PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`).
fn hash_phc(argon2: &Argon2<'_>, password: &[u8]) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_buf = [0u8; 64];
    let salt_bytes = salt.as_salt().decode_b64(&mut salt_buf).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    compute(argon2, password, salt_bytes, &mut out)?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(argon2.params()).map_err(|e| anyhow::anyhow!("params: {e}"))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| anyhow::anyhow!("output: {e}"))?),
    };
    Ok(phc.to_string())
}

/// Recomputes the hash with the stored parameters and compares in constant time (`Output`'s
/// equality is constant-time).
fn verify_phc(stored: &str, password: &[u8]) -> anyhow::Result<bool> {
    let unreadable = |e: &dyn std::fmt::Display| anyhow::anyhow!("stored hash unreadable: {e}");
    let hash = PasswordHash::new(stored).map_err(|e| unreadable(&e))?;
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
        return Err(unreadable(&"no salt or hash"));
    };
    let algorithm = Algorithm::try_from(hash.algorithm).map_err(|e| unreadable(&e))?;
    let version =
        hash.version.map(Version::try_from).transpose().map_err(|e| unreadable(&e))?.unwrap_or_default();
    let params = Params::try_from(&hash).map_err(|e| unreadable(&e))?;
    let mut salt_buf = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_buf).map_err(|e| unreadable(&e))?;
    let mut out = vec![0u8; expected.len()];
    compute(&Argon2::new(algorithm, version, params), password, salt_bytes, &mut out)?;
    Ok(Output::new(&out).map_err(|e| unreadable(&e))? == expected)
}

/// A hashing thread: takes jobs until every sender is gone. A panicking job loses its answer
/// (the caller gets a 500), not the thread.
fn hash_thread(jobs: &Mutex<Receiver<Work>>) {
    loop {
        let job = match jobs.lock() {
            Ok(jobs) => jobs.recv(),
            Err(_) => return,
        };
        match job {
            Ok(job) => {
                let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
            }
            Err(_) => return,
        }
    }
}
