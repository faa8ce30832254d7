//! Domain services of pgfleet: what the API does, without HTTP.
//!
//! Handlers in the http crate call [`Services`] (one accessor per capability, e.g.
//! `services.backups()`), the console after getting the caller's capability from [`access`];
//! services read and write the metadata store, drive the data plane and return the wire
//! types of `pgfleet-api-types`. Time and randomness come in through [`Clock`] and
//! [`Randomness`] so tests can control them. A change to a server is written first as an
//! intent ([`intent`]) and carried out by the [`reconciler`].

pub mod access;
pub mod backup_store;
pub mod bootstrap;
pub mod capacity;
pub mod clock;
pub mod error;
pub mod failpoint;
pub mod hash_gate;
pub mod idempotency;
pub mod ids;
pub mod intent;
pub mod lease;
pub mod metadata_probe;
pub mod metrics;
pub mod names;
pub mod oauth_keys;
pub mod outcome;
pub mod page;
pub mod pooled;
pub mod principal;
pub mod random;
pub mod reconciler;
pub mod regions;
pub mod request;
pub mod services;

pub use access::{ServerAdmin, WorkspaceAccess, WorkspaceWide, WorkspaceWideWrite, WriteAccess};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{AuthFailure, Dependency, DomainError, Result};
pub use page::PageRequest;
pub use principal::{CredentialKind, Principal, TokenScope};
pub use random::Randomness;
pub use services::{Services, ServicesConfig};
