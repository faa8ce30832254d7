//! The HTTP layer: one route table ([`routes::router`]), thin handlers (extract → authorize →
//! call a service → serialize), the extractors that turn bad input into contract-shaped
//! errors, the one place that maps errors to statuses ([`error`]) and the one rule that fits
//! a status to the list the contract gives its operation ([`statuses`]). The absolute URLs of
//! resources are written here too, not in the domain ([`located`]). The MCP server ([`mcp`])
//! is a second face of the same services: `/mcp` and `pgfleet mcp` (stdio).

pub mod breaker;
pub mod docs;
pub mod error;
pub mod error_examples;
pub mod extract;
pub mod handlers;
pub mod idempotency;
pub mod located;
pub mod mcp;
pub mod metrics;
pub mod openapi;
pub mod pages;
pub mod routes;
pub mod statuses;

pub use routes::{router, AppState};
