//! Randomness, injected: production draws from the OS, tests may seed a generator.

use std::sync::{Arc, Mutex};

use rand::{RngCore, SeedableRng};

#[derive(Clone)]
pub struct Randomness(Arc<Mutex<Box<dyn RngCore + Send>>>);

impl std::fmt::Debug for Randomness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Randomness")
    }
}

impl Randomness {
    /// The operating system's CSPRNG.
    pub fn os() -> Self {
        Self(Arc::new(Mutex::new(Box::new(rand::rngs::OsRng))))
    }

    /// A deterministic generator, for tests only.
    pub fn seeded(seed: u64) -> Self {
        Self(Arc::new(Mutex::new(Box::new(
            rand::rngs::StdRng::seed_from_u64(seed),
        ))))
    }

    /// Runs `f` with the generator.
    pub fn with<T>(&self, f: impl FnOnce(&mut dyn RngCore) -> T) -> T {
        let mut guard = self.0.lock().unwrap_or_else(|p| p.into_inner());
        f(guard.as_mut())
    }
}
