//! The process's file-descriptor budget. At start the soft `RLIMIT_NOFILE` is raised to the
//! hard limit; from the limit in force, [`plan`] derives how many HTTP connections (the
//! API's and the `prisma+postgres://` endpoint's) and pooler clients may be open at once,
//! after a reserve for what else needs descriptors
//! (metadata and PostgreSQL connections, backup pipes, files, the runtime). Sockets from the
//! network therefore cannot take the descriptors the server itself needs: past its cap a
//! listener refuses new connections at once instead of failing with `EMFILE` elsewhere.

use nix::sys::resource::{getrlimit, setrlimit, Resource};

/// Descriptors kept back at least, besides the metadata store's connections: the runtime,
/// log and data files, admin and sampler connections to PostgreSQL, backup pipes, and the
/// sockets being refused past the caps ([`crate::http_server::REFUSERS`],
/// [`pgfleet_pooler::REFUSAL_SLOTS`]).
pub const BASE_RESERVE: u64 =
    160 + crate::http_server::REFUSERS as u64 + pgfleet_pooler::REFUSAL_SLOTS as u64;
/// Fewest descriptors left for connections that makes a usable server.
pub const MIN_AVAILABLE: u64 = 64;
/// Default ceiling of `http.max_connections` (each idle connection costs memory too).
pub const HTTP_DEFAULT_CEILING: usize = 4096;
/// Default ceiling of `accelerate.max_connections`.
pub const ACCELERATE_DEFAULT_CEILING: usize = 1024;
/// Default ceiling of `pooler.max_client_connections`.
pub const POOLER_DEFAULT_CEILING: usize = 10_000;
/// Descriptors one pooler client may cost: its socket and, while it has one, a server
/// connection (idle server connections are bounded by the clients that recently used them).
pub const POOLER_COST: usize = 2;
/// Highest soft limit asked for when the hard limit is "unlimited" (Linux refuses more than
/// `fs.nr_open`, 1 048 576 by default).
const UNLIMITED_TARGET: u64 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum BudgetError {
    #[error("cannot read or raise the open-files limit (RLIMIT_NOFILE): {0}")]
    Rlimit(#[from] nix::Error),
    #[error(
        "the open-files limit is {limit}: too low for pgfleet, which needs at least {need} \
         (raise it: `ulimit -n`, or LimitNOFILE= in a systemd unit)"
    )]
    TooLow { limit: u64, need: u64 },
}

/// The soft `RLIMIT_NOFILE` in force.
pub fn current_limit() -> Result<u64, BudgetError> {
    Ok(getrlimit(Resource::RLIMIT_NOFILE)?.0)
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (an unprivileged process may) and
/// returns the soft limit then in force. Children (the embedded PostgreSQL) inherit it.
pub fn raise_soft_limit() -> Result<u64, BudgetError> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    let target = raised_target(hard);
    if soft >= target {
        return Ok(soft);
    }
    setrlimit(Resource::RLIMIT_NOFILE, target, hard)?;
    current_limit()
}

/// The soft limit [`raise_soft_limit`] asks for under the hard limit `hard`.
fn raised_target(hard: u64) -> u64 {
    if hard == nix::sys::resource::RLIM_INFINITY {
        UNLIMITED_TARGET
    } else {
        hard
    }
}

/// For `config print`: fills the caps `pgfleet serve` would derive on this machine (from the
/// limit it would raise to) and returns comment lines saying so.
pub fn fill_for_print(cfg: &mut crate::config::Config) -> String {
    let planned = getrlimit(Resource::RLIMIT_NOFILE)
        .map_err(BudgetError::from)
        .and_then(|(soft, hard)| plan(raised_target(hard).max(soft), Wanted::of(cfg, true)));
    match planned {
        Ok(p) => {
            cfg.http.max_connections = Some(p.http_max_connections);
            cfg.pooler.max_client_connections = Some(p.pooler_max_client_connections);
            if p.accelerate_max_connections > 0 {
                cfg.accelerate.max_connections = Some(p.accelerate_max_connections);
            }
            let mut text = format!(
                "# http.max_connections, accelerate.max_connections and \
                 pooler.max_client_connections: for an open-files limit of {} ({} descriptors \
                 reserved)\n",
                p.limit, p.reserve
            );
            if let Some(why) = p.lowered {
                text.push_str(&format!("# warning: {why}\n"));
            }
            text
        }
        Err(e) => format!("# {e}\n"),
    }
}

/// Which listeners run and what the configuration asks (`None`: derive it).
#[derive(Debug, Clone, Copy)]
pub struct Wanted {
    pub http: Option<usize>,
    pub pooler: Option<usize>,
    pub runs_http: bool,
    pub runs_pooler: bool,
    /// `accelerate.max_connections` (`None`: derive it).
    pub accelerate: Option<usize>,
    /// The `prisma+postgres://` endpoint runs (only beside the API).
    pub runs_accelerate: bool,
    /// The metadata store's pool size (reserved on top of [`BASE_RESERVE`]).
    pub metadata_connections: u32,
}

impl Wanted {
    /// What `cfg` asks of a process running the API when `runs_http` (`pgfleet serve`),
    /// else only the pooler (`pgfleet proxy`).
    pub fn of(cfg: &crate::config::Config, runs_http: bool) -> Self {
        Self {
            http: cfg.http.max_connections,
            pooler: cfg.pooler.max_client_connections,
            runs_http,
            runs_pooler: cfg.pooler.enabled || !runs_http,
            accelerate: cfg.accelerate.max_connections,
            runs_accelerate: runs_http && cfg.accelerate.enabled,
            metadata_connections: cfg
                .metadata
                .max_connections
                .unwrap_or(crate::config::DEFAULT_METADATA_POOL),
        }
    }
}

/// How the descriptors are shared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The soft open-files limit the plan is for.
    pub limit: u64,
    /// Kept for everything but client sockets.
    pub reserve: u64,
    pub http_max_connections: usize,
    pub pooler_max_client_connections: usize,
    /// 0 when the endpoint does not run.
    pub accelerate_max_connections: usize,
    /// Set when configured values did not fit and were lowered: what to tell the operator.
    pub lowered: Option<String>,
}

/// Shares `limit` descriptors: a reserve of a quarter (at least [`BASE_RESERVE`] and the
/// metadata store's connections); of the rest, first the `prisma+postgres://` endpoint's
/// HTTP connections when it runs (one descriptor each: by default an eighth, at most
/// [`ACCELERATE_DEFAULT_CEILING`]; a configured value at most half, else lowered); of what
/// is left, by default a quarter for HTTP connections (one descriptor each) and three quarters
/// for pooler clients ([`POOLER_COST`] each), or all of it for the only listener, each
/// default at most its ceiling. Configured values are kept when together they fit in the
/// rest; otherwise a configured value is lowered to what the other's default leaves, or
/// both configured ones in proportion (and `lowered` says so) — so the server still starts
/// under a lower limit than it was tuned for, and still cannot run out.
pub fn plan(limit: u64, wanted: Wanted) -> Result<Plan, BudgetError> {
    let fixed = BASE_RESERVE + u64::from(wanted.metadata_connections);
    let reserve = (limit / 4).max(fixed);
    let available = limit.saturating_sub(reserve);
    if available < MIN_AVAILABLE {
        return Err(BudgetError::TooLow {
            limit,
            need: fixed + MIN_AVAILABLE,
        });
    }
    let available = usize::try_from(available).unwrap_or(usize::MAX);
    let mut lowered_accelerate = None;
    let accelerate = if wanted.runs_accelerate {
        let default = (available / 8).clamp(1, ACCELERATE_DEFAULT_CEILING);
        let asked = wanted.accelerate.unwrap_or(default).max(1);
        let fits = (available / 2).max(1);
        if asked > fits {
            lowered_accelerate = Some(format!("accelerate.max_connections {asked} → {fits}"));
        }
        asked.min(fits)
    } else {
        0
    };
    let available = available - accelerate;
    let (http_share, pooler_share) = match (wanted.runs_http, wanted.runs_pooler) {
        (true, true) => (available / 4, available - available / 4),
        (true, false) => (available, 0),
        (false, _) => (0, available),
    };
    let http_default = http_share.clamp(1, HTTP_DEFAULT_CEILING);
    let pooler_default = (pooler_share / POOLER_COST).clamp(1, POOLER_DEFAULT_CEILING);
    let mut http = wanted.http.unwrap_or(http_default).max(1);
    let mut pooler = wanted.pooler.unwrap_or(pooler_default).max(1);
    let cost = |http: usize, pooler: usize| {
        let h = if wanted.runs_http { http } else { 0 };
        let p = if wanted.runs_pooler {
            pooler.saturating_mul(POOLER_COST)
        } else {
            0
        };
        h.saturating_add(p)
    };
    let demand = cost(http, pooler);
    let mut lowered = lowered_accelerate.as_ref().map(|change| {
        format!(
            "the prisma+postgres endpoint's connection cap does not fit the open-files limit \
             {limit} ({reserve} reserved); lowered: {change} (raise the limit: `ulimit -n`, or \
             LimitNOFILE= in a systemd unit)"
        )
    });
    if demand > available {
        let (was_http, was_pooler) = (http, pooler);
        match (wanted.http.is_some(), wanted.pooler.is_some()) {
            // One configured value: it gets what the other's default leaves (a default
            // never takes more than its share, so something is left).
            (true, false) => http = available.saturating_sub(cost(0, pooler)).max(1),
            (false, true) => {
                pooler = (available.saturating_sub(cost(http, 0)) / POOLER_COST).max(1);
            }
            _ => {
                let scale = |v: usize| -> usize {
                    // Widened: the product of two usizes does not overflow a u128.
                    let scaled = (v as u128) * (available as u128) / (demand.max(1) as u128);
                    usize::try_from(scaled).unwrap_or(usize::MAX).max(1)
                };
                http = scale(http);
                pooler = scale(pooler);
            }
        }
        let mut changes: Vec<String> = lowered_accelerate.into_iter().collect();
        if http != was_http {
            changes.push(format!("http.max_connections {was_http} → {http}"));
        }
        if pooler != was_pooler {
            changes.push(format!(
                "pooler.max_client_connections {was_pooler} → {pooler}"
            ));
        }
        lowered = Some(format!(
            "the connection caps need {demand} file descriptors, but the open-files limit \
             {limit} leaves {available} after {reserve} reserved; lowered: {} (raise the \
             limit: `ulimit -n`, or LimitNOFILE= in a systemd unit)",
            changes.join(", ")
        ));
    }
    Ok(Plan {
        limit,
        reserve,
        http_max_connections: http,
        pooler_max_client_connections: pooler,
        accelerate_max_connections: accelerate,
        lowered,
    })
}

/// Fills `http.max_connections`, `accelerate.max_connections` and
/// `pooler.max_client_connections` of `cfg` with the plan for `limit` (a process running
/// the API and the endpoint when `runs_http`, the pooler when enabled), logs
/// the budget and warns when configured values were lowered.
pub fn apply(
    cfg: &mut crate::config::Config,
    limit: u64,
    runs_http: bool,
) -> Result<Plan, BudgetError> {
    let p = plan(limit, Wanted::of(cfg, runs_http))?;
    cfg.http.max_connections = Some(p.http_max_connections);
    cfg.pooler.max_client_connections = Some(p.pooler_max_client_connections);
    if p.accelerate_max_connections > 0 {
        cfg.accelerate.max_connections = Some(p.accelerate_max_connections);
    }
    if let Some(why) = &p.lowered {
        tracing::warn!("{why}");
    }
    tracing::info!(
        open_files_limit = p.limit,
        reserved = p.reserve,
        http_max_connections = runs_http.then_some(p.http_max_connections),
        pooler_max_client_connections = p.pooler_max_client_connections,
        accelerate_max_connections =
            (p.accelerate_max_connections > 0).then_some(p.accelerate_max_connections),
        "file descriptor budget"
    );
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn both(http: Option<usize>, pooler: Option<usize>) -> Wanted {
        Wanted {
            http,
            pooler,
            runs_http: true,
            runs_pooler: true,
            accelerate: None,
            runs_accelerate: false,
            metadata_connections: 16,
        }
    }

    #[test]
    fn defaults_leave_the_reserve_free() {
        let p = plan(1024, both(None, None)).unwrap();
        // The reserve: 256 fixed and the metadata store's 16 connections (more than 1024/4).
        assert_eq!(p.reserve, 272);
        assert_eq!(p.http_max_connections, 188);
        assert_eq!(p.pooler_max_client_connections, 282);
        assert!(p.http_max_connections + POOLER_COST * p.pooler_max_client_connections <= 752);
        assert!(p.lowered.is_none());
    }

    #[test]
    fn defaults_have_ceilings_under_a_large_limit() {
        let p = plan(1 << 20, both(None, None)).unwrap();
        assert_eq!(p.http_max_connections, HTTP_DEFAULT_CEILING);
        assert_eq!(p.pooler_max_client_connections, POOLER_DEFAULT_CEILING);
    }

    #[test]
    fn the_only_listener_gets_everything() {
        let proxy = plan(
            1024,
            Wanted {
                http: None,
                pooler: None,
                runs_http: false,
                runs_pooler: true,
                accelerate: None,
                runs_accelerate: false,
                metadata_connections: 16,
            },
        )
        .unwrap();
        assert_eq!(proxy.pooler_max_client_connections, 376);
        let api = plan(
            1024,
            Wanted {
                http: None,
                pooler: None,
                runs_http: true,
                runs_pooler: false,
                accelerate: None,
                runs_accelerate: false,
                metadata_connections: 16,
            },
        )
        .unwrap();
        assert_eq!(api.http_max_connections, 752);
    }

    #[test]
    fn configured_values_that_fit_are_kept() {
        let p = plan(1024, both(Some(500), Some(100))).unwrap();
        assert_eq!(
            (p.http_max_connections, p.pooler_max_client_connections),
            (500, 100)
        );
        assert!(p.lowered.is_none());
    }

    #[test]
    fn configured_values_that_do_not_fit_are_lowered_with_a_warning() {
        let p = plan(1024, both(Some(1000), Some(10_000))).unwrap();
        assert!(p.http_max_connections + POOLER_COST * p.pooler_max_client_connections <= 752);
        assert!(p.http_max_connections >= 1 && p.pooler_max_client_connections >= 1);
        let text = p.lowered.unwrap();
        assert!(
            text.contains("http.max_connections 1000 → ") && text.contains("1024"),
            "{text}"
        );
    }

    #[test]
    fn one_configured_value_gets_what_the_others_default_leaves() {
        let p = plan(1024, both(Some(5000), None)).unwrap();
        assert_eq!(p.pooler_max_client_connections, 282, "the default stays");
        assert_eq!(p.http_max_connections, 752 - 2 * 282);
        let text = p.lowered.unwrap();
        assert!(!text.contains("pooler.max_client_connections"), "{text}");
        let p = plan(1024, both(None, Some(5000))).unwrap();
        assert_eq!(p.http_max_connections, 188);
        assert_eq!(p.pooler_max_client_connections, (752 - 188) / 2);
    }

    #[test]
    fn a_large_metadata_pool_is_reserved_for() {
        let mut w = both(None, None);
        w.metadata_connections = 400;
        let p = plan(1024, w).unwrap();
        assert_eq!(p.reserve, BASE_RESERVE + 400);
        assert!(
            p.http_max_connections + POOLER_COST * p.pooler_max_client_connections <= 1024 - 656
        );
    }

    #[test]
    fn the_accelerate_endpoint_takes_its_share_first() {
        let mut w = both(None, None);
        w.runs_accelerate = true;
        let p = plan(1024, w).unwrap();
        assert_eq!(p.accelerate_max_connections, 752 / 8);
        assert_eq!(p.http_max_connections, (752 - 94) / 4);
        assert!(
            p.accelerate_max_connections
                + p.http_max_connections
                + POOLER_COST * p.pooler_max_client_connections
                <= 752
        );
        // Under a large limit the other listeners keep their ceilings.
        let p = plan(1 << 20, w).unwrap();
        assert_eq!(p.accelerate_max_connections, ACCELERATE_DEFAULT_CEILING);
        assert_eq!(p.http_max_connections, HTTP_DEFAULT_CEILING);
        assert_eq!(p.pooler_max_client_connections, POOLER_DEFAULT_CEILING);
        // A configured value past half of what is available is lowered, with a warning.
        w.accelerate = Some(5000);
        let p = plan(1024, w).unwrap();
        assert_eq!(p.accelerate_max_connections, 752 / 2);
        let text = p.lowered.unwrap();
        assert!(
            text.contains("accelerate.max_connections 5000 → 376"),
            "{text}"
        );
        // Off: nothing for it.
        let p = plan(1024, both(None, None)).unwrap();
        assert_eq!(p.accelerate_max_connections, 0);
    }

    #[test]
    fn a_tiny_limit_is_refused() {
        let e = plan(300, both(None, None)).unwrap_err();
        assert!(e.to_string().contains("ulimit -n"), "{e}");
    }
}
