//! [`HashGate`]: the one way pgfleet runs argon2 on a secret someone sent (sign-in, a
//! password an administrator sets). argon2id with the default parameters takes about
//! 19 MiB and tens of milliseconds of CPU per call, so unbounded, a few hundred
//! unauthenticated requests would take gigabytes.
//!
//! The gate bounds both: `concurrency` dedicated worker threads run the hashes, each in its
//! own [`pgfleet_auth::HashMemory`] allocated once and reused (so the memory held is
//! `concurrency × 19 MiB` however long a flood lasts; allocating per call grew without
//! bound), and at most `concurrency + queue` callers are admitted at once. Beyond
//! that, [`HashGate::admit`] refuses at once with [`DomainError::TooManyRequests`] (HTTP 429
//! with `Retry-After`) before anything is counted or hashed. An admitted caller keeps its
//! place until its hash has run, even if its request is dropped meanwhile, so clients that
//! hang up cannot push more work in than the bound.

use std::sync::{mpsc, Arc, Mutex};

use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

use pgfleet_auth::HashMemory;

use crate::{DomainError, Result};

/// How many hashes run at once, and how many callers may wait for one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashGateSettings {
    pub concurrency: usize,
    pub queue: usize,
}

/// Most hashes run at once by default, whatever the CPU count: each holds about 19 MiB.
pub const MAX_DEFAULT_CONCURRENCY: usize = 4;
/// Callers that may wait per running hash, by default.
pub const DEFAULT_QUEUE_PER_WORKER: usize = 4;
/// What a refused caller is told to wait, in seconds (a queue drains in well under that).
pub const BUSY_RETRY_AFTER_SECS: u64 = 1;

impl HashGateSettings {
    /// The CPU count (at most [`MAX_DEFAULT_CONCURRENCY`]) hashing at once, and
    /// [`DEFAULT_QUEUE_PER_WORKER`] waiting callers per hash.
    pub fn for_this_machine() -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        let concurrency = cpus.clamp(1, MAX_DEFAULT_CONCURRENCY);
        Self {
            concurrency,
            queue: concurrency * DEFAULT_QUEUE_PER_WORKER,
        }
    }
}

type Job = Box<dyn FnOnce(&mut HashMemory) + Send>;

/// Bounded argon2: see the module documentation.
pub struct HashGate {
    admitted: Arc<Semaphore>,
    /// Dropping the sender (with the gate) stops the workers.
    jobs: mpsc::Sender<Job>,
    settings: HashGateSettings,
}

impl std::fmt::Debug for HashGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashGate")
            .field("settings", &self.settings)
            .field("free", &self.admitted.available_permits())
            .finish()
    }
}

/// A caller's admitted place at the gate; [`HashTicket::run`] uses it.
#[derive(Debug)]
pub struct HashTicket<'a> {
    gate: &'a HashGate,
    place: OwnedSemaphorePermit,
}

impl HashGate {
    /// Starts the worker threads (at least one).
    pub fn start(settings: HashGateSettings) -> Result<Self> {
        let settings = HashGateSettings {
            concurrency: settings.concurrency.max(1),
            queue: settings.queue,
        };
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..settings.concurrency {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("pgfleet-hash-{i}"))
                .spawn(move || worker(&rx))
                .map_err(|e| DomainError::internal(format!("starting a hashing thread: {e}")))?;
        }
        Ok(Self {
            admitted: Arc::new(Semaphore::new(settings.concurrency + settings.queue)),
            jobs: tx,
            settings,
        })
    }

    pub fn settings(&self) -> HashGateSettings {
        self.settings
    }

    /// A place at the gate, or `TooManyRequests` at once when every place is taken.
    pub fn admit(&self) -> Result<HashTicket<'_>> {
        match self.admitted.clone().try_acquire_owned() {
            Ok(place) => Ok(HashTicket { gate: self, place }),
            Err(_) => Err(busy()),
        }
    }

    /// `TooManyRequests` when every place is taken right now, without taking one: lets a
    /// caller refuse before doing any other work (a flood is answered without touching the
    /// metadata store). [`Self::admit`] still decides.
    pub fn refuse_if_full(&self) -> Result<()> {
        if self.admitted.available_permits() == 0 {
            return Err(busy());
        }
        Ok(())
    }

    /// Admits and hashes a password (argon2id, fresh salt).
    pub async fn hash_password(&self, password: &str, rng: &crate::Randomness) -> Result<String> {
        let salt = rng.with(pgfleet_auth::new_salt);
        let password = password.to_string();
        self.admit()?
            .run(move |mem| pgfleet_auth::hash_password_in(mem, &password, &salt))
            .await?
            .map_err(DomainError::internal)
    }
}

/// The refusal of a full gate.
fn busy() -> DomainError {
    tracing::debug!("password hashing is at capacity; refusing");
    DomainError::TooManyRequests {
        message: "Too many sign-in attempts are being checked right now".to_string(),
        hint: Some("Try again in a moment.".to_string()),
        retry_after_secs: BUSY_RETRY_AFTER_SECS,
    }
}

impl HashTicket<'_> {
    /// Runs `f` (an argon2 call in the thread's memory) on a hashing thread once one is
    /// free. The place is given back when `f` has run.
    pub async fn run<T: Send + 'static>(
        self,
        f: impl FnOnce(&mut HashMemory) -> T + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        let place = self.place;
        let job: Job = Box::new(move |mem| {
            let out = f(mem);
            drop(place);
            let _ = tx.send(out);
        });
        self.gate
            .jobs
            .send(job)
            .map_err(|_| DomainError::internal("the password hashing threads have stopped"))?;
        rx.await
            .map_err(|_| DomainError::internal("a password hashing job failed"))
    }
}

/// A hashing thread: runs jobs until the gate is dropped. A job that panics loses its
/// answer (its caller gets an internal error), not the thread.
fn worker(rx: &Mutex<mpsc::Receiver<Job>>) {
    // Allocated at the first job, kept until the gate stops.
    let mut memory: Option<HashMemory> = None;
    loop {
        let job = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
        match job {
            Ok(job) => {
                let mem = memory.get_or_insert_with(HashMemory::default);
                let run = std::panic::AssertUnwindSafe(move || job(mem));
                if std::panic::catch_unwind(run).is_err() {
                    tracing::error!("a password hashing job panicked");
                }
            }
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn admits_concurrency_plus_queue_then_refuses_and_frees_places() {
        let gate = HashGate::start(HashGateSettings {
            concurrency: 1,
            queue: 2,
        })
        .unwrap();
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let first = gate.admit().unwrap();
        let second = gate.admit().unwrap();
        let third = gate.admit().unwrap();
        assert!(gate.refuse_if_full().is_err());
        match gate.admit() {
            Err(DomainError::TooManyRequests {
                retry_after_secs, ..
            }) => assert_eq!(retry_after_secs, BUSY_RETRY_AFTER_SECS),
            other => panic!("expected TooManyRequests, got {other:?}"),
        }
        drop((second, third));
        let running = first.run(move |_| wait.recv().is_ok());
        let runner = async {
            release.send(()).unwrap();
            running.await.unwrap()
        };
        assert!(runner.await);
        // Every place is free again.
        assert!(gate.refuse_if_full().is_ok());
        let places: Vec<_> = (0..3).map(|_| gate.admit().unwrap()).collect();
        assert!(gate.admit().is_err());
        drop(places);
        let h = gate
            .hash_password("pw-pw-pw-pw-pw", &crate::Randomness::seeded(1))
            .await
            .unwrap();
        assert!(pgfleet_auth::verify_password("pw-pw-pw-pw-pw", &h));
    }

    #[test]
    fn default_is_the_cpu_count_capped() {
        let s = HashGateSettings::for_this_machine();
        assert!((1..=MAX_DEFAULT_CONCURRENCY).contains(&s.concurrency));
        assert_eq!(s.queue, s.concurrency * DEFAULT_QUEUE_PER_WORKER);
    }
}
