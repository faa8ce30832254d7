//! The per-key limit on concurrent queries, shared across replicas: every replica serving
//! the same keys admits at most `ceil(limit / replicas)` queries of a key at once (the
//! host says how many replicas are alive), so across the fleet a key runs at most its
//! limit (plus at most one per replica from the rounding). A shared counter in the
//! metadata store would be exact but costs a round trip per query; this costs none. Keys
//! with nothing running are forgotten.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Queries running per key on this replica.
#[derive(Debug, Default)]
pub struct KeySlots {
    running: Arc<Mutex<HashMap<String, usize>>>,
}

/// One admitted query; its slot is freed when dropped.
#[derive(Debug)]
pub struct KeySlot {
    running: Arc<Mutex<HashMap<String, usize>>>,
    key: String,
}

/// This replica's share of a key's `limit` when `replicas` are alive (at least 1 each).
pub fn share(limit: usize, replicas: usize) -> usize {
    limit.div_ceil(replicas.max(1)).max(1)
}

impl KeySlots {
    /// A slot for one query of `key`, if fewer than `allowed` of its queries are running
    /// here.
    pub fn try_admit(&self, key: &str, allowed: usize) -> Option<KeySlot> {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        let n = running.entry(key.to_owned()).or_insert(0);
        if *n >= allowed {
            if *n == 0 {
                running.remove(key);
            }
            return None;
        }
        *n += 1;
        Some(KeySlot {
            running: self.running.clone(),
            key: key.to_owned(),
        })
    }

    /// Keys with queries running (for tests).
    pub fn keys(&self) -> usize {
        self.running.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

impl Drop for KeySlot {
    fn drop(&mut self) {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = running.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                running.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_share_is_the_limit_divided_by_the_live_replicas_rounded_up() {
        assert_eq!(share(64, 1), 64);
        assert_eq!(share(64, 0), 64);
        assert_eq!(share(64, 3), 22);
        assert_eq!(share(2, 2), 1);
        assert_eq!(share(1, 5), 1);
    }

    #[test]
    fn slots_are_counted_per_key_and_freed_on_drop() {
        let slots = KeySlots::default();
        let a1 = slots.try_admit("a", 2).unwrap();
        let _a2 = slots.try_admit("a", 2).unwrap();
        assert!(slots.try_admit("a", 2).is_none());
        let b = slots.try_admit("b", 2).unwrap();
        drop(a1);
        let _a3 = slots.try_admit("a", 2).unwrap();
        // A lower share (a replica joined) refuses until enough have ended.
        assert!(slots.try_admit("a", 1).is_none());
        drop(b);
        assert_eq!(slots.keys(), 1);
    }
}
