//! The id of what is being served: an HTTP request (its `x-request-id`) or a round of a
//! periodic job. The http layer runs each request inside [`scope`] and [`crate::services`]'
//! periodic loop each round, so code below reads it with [`current`] without a parameter
//! threaded through every service method. [`Services::commit_intent`](crate::Services)
//! records it on the operations an intent plans, and the reconciler runs each operation in
//! a span carrying it, so an operation's log lines name the request (or job round) that
//! caused it, even when a later attempt runs in the background.
//!
//! A tokio task-local: a task spawned inside a scope does not inherit it (the operation row
//! carries the id across instead).

use std::future::Future;

tokio::task_local! {
    /// The id of the request or job round the current task serves.
    pub static REQUEST_ID: String;
}

/// Longest id kept: a client chooses its own `x-request-id`.
const MAX_LEN: usize = 128;

/// Runs `fut` with `id` as the current request id (an id that is too long, or holds
/// anything but visible ASCII, is not kept: it would reach logs and the metadata store).
pub async fn scope<F: Future>(id: &str, fut: F) -> F::Output {
    let kept = if acceptable(id) { id } else { "-" };
    REQUEST_ID.scope(kept.to_string(), fut).await
}

/// The id of the request or job round this task serves, if any.
pub fn current() -> Option<String> {
    REQUEST_ID
        .try_with(|id| id.clone())
        .ok()
        .filter(|id| id != "-")
}

fn acceptable(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_LEN && id.bytes().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_id_is_seen_inside_its_scope_only() {
        assert_eq!(current(), None);
        let seen = scope("req-1", async { current() }).await;
        assert_eq!(seen.as_deref(), Some("req-1"));
        assert_eq!(current(), None);
        let spawned = scope("req-2", async { tokio::spawn(async { current() }).await })
            .await
            .ok()
            .flatten();
        assert_eq!(spawned, None, "a spawned task does not inherit it");
    }

    #[tokio::test]
    async fn odd_ids_are_not_kept() {
        let long = "x".repeat(MAX_LEN + 1);
        for id in ["", "a b", "é", "line\nbreak", long.as_str()] {
            assert_eq!(scope(id, async { current() }).await, None, "{id:?}");
        }
    }
}
