//! The `pgfleet` binary's library half: configuration, logging and the server wiring, so the
//! integration tests can start a real server in-process.

pub mod admin;
pub mod cli;
pub mod config;
pub mod logging;
pub mod server;
