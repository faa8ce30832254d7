//! The `pgfleet` binary's library half: configuration, logging and the server wiring, so the
//! integration tests can start a real server in-process, and the API client commands.

pub mod accelerate;
pub mod admin;
pub mod assembly;
pub mod banner;
pub mod cli;
pub mod cmd;
pub mod completions;
pub mod config;
pub mod descriptors;
pub mod http_server;
pub mod logging;
pub mod mcp;
pub mod pitr;
pub mod pooler;
pub mod private_file;
pub mod server;
