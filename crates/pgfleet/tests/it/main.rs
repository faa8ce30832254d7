//! The one integration test binary: every test runs against real PostgreSQL and real HTTP.
//!
//! `harness` starts one PostgreSQL cluster per test run (with pgfleet's own cluster code),
//! migrates a template metadata database once, and gives each test its own copy and its own
//! server on port 0.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code fails by panicking"
)]

mod browser;
mod harness;

mod accelerate;
mod accelerate_replicas;
mod accelerate_tcp;
mod admin_apps;
mod api_basics;
mod archive;
mod backups;
mod backups_s3;
mod capacity;
mod claimable;
mod client_sdk;
mod conformance;
mod console;
mod console_newcomer;
mod console_replicas;
mod core_api;
mod drain;
mod edges;
mod idempotency;
mod lifecycle;
mod limits;
mod mcp;
mod metadata_outage;
mod newcomer;
mod oauth;
mod openapi;
mod pages;
mod pitr;
mod pitr_remote;
mod pitr_replicas;
mod pooler;
mod pooler_hygiene;
mod private_files;
mod recovery;
mod replica_registry;
mod replicas;
mod request_logs;
mod scale_out;
mod scoped_tokens;
mod scoped_tokens_more;
mod sign_in_limits;
mod storage_quota;
mod tenant_limits;
mod tls_upstream;
mod usage;
mod webhooks;
mod webhooks_ui;
