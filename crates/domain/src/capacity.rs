//! Connection capacity: the rules that keep one workspace from taking a whole server.
//!
//! PostgreSQL 15 enforces three limits at login: a database's `CONNECTION LIMIT`, a role's
//! `CONNECTION LIMIT` (counted per role: membership in a group role does not add up), and
//! `max_connections` less `superuser_reserved_connections` for every non-superuser. pgfleet
//! builds its guarantees from the first and the last:
//!
//! - every tenant database gets a `CONNECTION LIMIT` (`database_connection_limit`); the
//!   pooler's server connections log in as the database's own roles, so they are counted in
//!   that limit too (at most `pooler.pool_size` of it);
//! - a workspace's databases together may hold at most `capacity.workspace_connections`
//!   slots (sum of their limits), wherever they are placed;
//! - the databases placed on a server together may hold at most its capacity:
//!   `max_connections − superuser_reserved_connections − capacity.reserved_connections`.
//!
//! Both reservations are subtracted because a superuser session takes any free slot, not a
//! reserved one: PostgreSQL only refuses a non-superuser when no more than
//! `superuser_reserved_connections` slots are free. So with every database of every workspace
//! at its limit and pgfleet using its whole share, the superuser-only slots are still free, no
//! tenant login is refused by the server as a whole (what is refused is a database's own
//! excess), and pgfleet gets its sessions; if pgfleet ever needs more than its share, the
//! superuser-only slots still take it. A create that does not fit is refused before anything
//! is written (see `services::capacity`).
//!
//! On PostgreSQL 16 and later the same split can be made without superuser sessions:
//! `reserved_connections` slots for roles granted `pg_use_reserved_connections`; pgfleet's
//! sessions would use such a role and the capacity would subtract both reservations.

use pgfleet_dataplane::ConnectionSettings;
use pgfleet_storage::capacity::ServerSlots;

/// Connection slots the databases placed on a server may hold together: its
/// `max_connections` less its superuser-only slots less pgfleet's own share (`reserved`, the
/// sessions pgfleet and its tools open on the server).
pub fn server_capacity(settings: ConnectionSettings, reserved: u32) -> i32 {
    let reserved = i32::try_from(reserved).unwrap_or(i32::MAX);
    settings
        .max_connections
        .saturating_sub(settings.superuser_reserved_connections.max(0))
        .saturating_sub(reserved)
        .max(0)
}

/// Where a new database holding `needed` slots can go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// The server with the most free slots that has room (the first by id on a tie).
    Server(String),
    /// No server takes it: every server not drained has its capacity known and no room.
    /// `most_free`: the most free slots of any server not drained; `drained`: how many of
    /// the region's `servers` are drained.
    Full {
        most_free: i64,
        drained: usize,
        servers: usize,
    },
    /// No server with room, and some server's capacity is still unknown (never reached).
    Unknown,
}

/// Picks the server with the most free slots among those with room for `needed`, leaving out
/// drained servers (an operator took them out of placement; their databases stay).
pub fn place(servers: &[ServerSlots], needed: i64) -> Placement {
    let mut best: Option<(&str, i64)> = None;
    let mut most_free = 0;
    let mut unknown = false;
    let mut drained = 0;
    for s in servers {
        if s.drained {
            drained += 1;
            continue;
        }
        let Some(capacity) = s.capacity else {
            unknown = true;
            continue;
        };
        let free = i64::from(capacity) - s.used;
        most_free = most_free.max(free);
        if free >= needed && best.is_none_or(|(_, f)| free > f) {
            best = Some((&s.server_id, free));
        }
    }
    match best {
        Some((id, _)) => Placement::Server(id.to_string()),
        None if unknown => Placement::Unknown,
        None => Placement::Full {
            most_free,
            drained,
            servers: servers.len(),
        },
    }
}

/// Whether a workspace holding `used` slots can take `needed` more within `quota`.
pub fn fits_quota(used: i64, needed: i64, quota: i64) -> bool {
    used.saturating_add(needed) <= quota
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slots(id: &str, capacity: Option<i32>, used: i64) -> ServerSlots {
        ServerSlots {
            server_id: id.to_string(),
            capacity,
            used,
            drained: false,
        }
    }

    fn full(most_free: i64, drained: usize, servers: usize) -> Placement {
        Placement::Full {
            most_free,
            drained,
            servers,
        }
    }

    #[test]
    fn placement_skips_drained_servers() {
        let drained = |id: &str, capacity, used| ServerSlots {
            drained: true,
            ..slots(id, capacity, used)
        };
        // The most free server is drained: the other one takes it.
        let servers = [slots("a", Some(100), 90), drained("b", Some(100), 0)];
        assert_eq!(place(&servers, 5), Placement::Server("a".into()));
        // The one not drained is full: the drained one's room does not count.
        assert_eq!(place(&servers, 20), full(10, 1, 2));
        // All drained, even one never reached: full, not unknown.
        let all = [drained("a", Some(100), 0), drained("b", None, 0)];
        assert_eq!(place(&all, 5), full(0, 2, 2));
    }

    #[test]
    fn capacity_keeps_both_reservations_free() {
        let s = |max, sr| ConnectionSettings {
            max_connections: max,
            superuser_reserved_connections: sr,
        };
        // The embedded cluster with its metadata (3 + a pool of 16 superuser-only slots).
        assert_eq!(server_capacity(s(300, 19), 10), 271);
        assert_eq!(server_capacity(s(100, 3), 10), 87);
        assert_eq!(server_capacity(s(100, 20), 0), 80);
        assert_eq!(server_capacity(s(5, 3), 10), 0);
        assert_eq!(server_capacity(s(100, 3), u32::MAX), 0);
    }

    #[test]
    fn placement_takes_the_most_free_server_with_room() {
        let servers = [
            slots("a", Some(100), 90),
            slots("b", Some(100), 40),
            slots("c", Some(80), 10),
        ];
        assert_eq!(place(&servers, 20), Placement::Server("c".into()));
        assert_eq!(place(&servers, 71), full(70, 0, 3));
        // A tie goes to the first by id.
        let tie = [slots("a", Some(50), 0), slots("b", Some(50), 0)];
        assert_eq!(place(&tie, 10), Placement::Server("a".into()));
        // Exactly full still fits.
        assert_eq!(
            place(&[slots("a", Some(20), 0)], 20),
            Placement::Server("a".into())
        );
        // Over capacity already (capacity lowered after placement): no room, not negative.
        assert_eq!(place(&[slots("a", Some(20), 30)], 1), full(0, 0, 1));
        assert_eq!(
            place(&[slots("a", None, 0), slots("b", Some(10), 10)], 5),
            Placement::Unknown
        );
        assert_eq!(
            place(&[slots("a", None, 0), slots("b", Some(10), 0)], 5),
            Placement::Server("b".into())
        );
        assert_eq!(place(&[], 5), full(0, 0, 0));
    }

    #[test]
    fn quota_counts_the_new_database() {
        assert!(fits_quota(80, 20, 100));
        assert!(!fits_quota(81, 20, 100));
        assert!(!fits_quota(i64::MAX, 1, 100));
    }
}
