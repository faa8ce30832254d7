//! pgfleet-accelerate: serves Prisma Client 7's HTTP query protocol (`prisma+postgres://`) by
//! executing the query plans the client compiles, in Rust, against PostgreSQL — a port of
//! `@prisma/query-plan-executor` 7.10.0 with `@prisma/adapter-pg` (docs/design/accelerate.md).
//!
//! [`server::router`] is the entry point; the host implements [`server::Backend`] (API key →
//! database, pooled connections). Module map: `plan` (serde types), `value` (runtime values,
//! JSON), `scope`, `generators`, `render` (SQL + binds), `interpret` (nodes), `process`
//! (in-memory ops, joins), `data_map`, `raw`, `pg` (the adapter part), `error`,
//! `transactions`, `key_slots` (the per-key concurrency limit), `server`.

pub mod data_map;
pub mod error;
pub mod generators;
pub mod interpret;
pub mod key_slots;
pub mod pg;
pub mod plan;
pub mod process;
pub mod raw;
pub mod render;
pub mod scope;
pub mod server;
pub mod transactions;
pub mod value;

pub use error::ExecError;
pub use server::{
    router, router_with_entropy, router_with_revoker, Backend, BackendError, Limits, Revoker,
};
