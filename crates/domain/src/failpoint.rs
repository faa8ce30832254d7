//! Failpoints: named places where a test can make the process die as if killed (`abort`),
//! to prove that the reconciler finishes or rolls back whatever was in flight.
//!
//! Configured once at start from the `failpoints` setting (comma-separated names); empty in
//! production. Hand-written rather than the `fail` crate: we need only "crash here", set from
//! our own configuration, and no global registry macros in library code.

use std::collections::HashSet;
use std::sync::OnceLock;

static POINTS: OnceLock<HashSet<String>> = OnceLock::new();

/// Every failpoint in the code, for documentation and validation.
pub const ALL: &[&str] = &[
    "database.create.after_database",
    "database.create.after_role",
    "database.create.before_ready",
    "database.delete.after_drop",
    "connection.create.after_role",
    "connection.rotate.after_password",
    "connection.delete.after_drop",
    "database.restore.before_swap",
    "backup.after_dump",
    "database.pitr.after_scratch",
];

/// Sets the active failpoints (first call wins).
pub fn configure(list: &str) -> Result<(), String> {
    let set: HashSet<String> = list
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    if let Some(bad) = set.iter().find(|p| !ALL.contains(&p.as_str())) {
        return Err(format!(
            "unknown failpoint {bad:?}; known: {}",
            ALL.join(", ")
        ));
    }
    let _ = POINTS.set(set);
    Ok(())
}

/// Aborts the process if `name` is active.
pub fn hit(name: &str) {
    if POINTS.get().is_some_and(|p| p.contains(name)) {
        eprintln!("pgfleet: failpoint {name} hit, aborting");
        std::process::abort();
    }
}
