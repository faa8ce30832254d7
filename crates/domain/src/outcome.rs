//! What one attempt to run a reconciler operation came to ([`Outcome`]).
//!
//! A module of its own, below both the reconciler (which produces outcomes) and the metrics
//! (which count them), so that each of those imports only what sits below it.

/// What happened when asked to run an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    Retrying,
    Failed,
    /// Another executor holds it, or it was already finished.
    NotRun,
}
