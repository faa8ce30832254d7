//! What bench/pooler reads of the machine around a run: CPU time (user and kernel apart) of
//! the proxy, of PostgreSQL and of pgbench, the proxy's context switches, and the machine's
//! idle share, all from `/proc` and `getrusage`.
//!
//! User and kernel time are kept apart because they answer different questions: user time is
//! what the proxy's own code costs (and what a change to it can cut); kernel time is the
//! sockets, TLS records' system calls and the sleeps and wake-ups between them, much the same
//! for any proxy doing the same work.

/// CPU time, user and kernel (system) apart, in ms.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Cpu {
    pub(crate) user_ms: f64,
    pub(crate) sys_ms: f64,
}

impl Cpu {
    pub(crate) fn total_ms(self) -> f64 {
        self.user_ms + self.sys_ms
    }

    /// The time spent since `before`.
    pub(crate) fn since(self, before: Cpu) -> Cpu {
        Cpu {
            user_ms: self.user_ms - before.user_ms,
            sys_ms: self.sys_ms - before.sys_ms,
        }
    }
}

impl std::iter::Sum for Cpu {
    fn sum<I: Iterator<Item = Cpu>>(iter: I) -> Cpu {
        iter.fold(Cpu::default(), |a, b| Cpu {
            user_ms: a.user_ms + b.user_ms,
            sys_ms: a.sys_ms + b.sys_ms,
        })
    }
}

/// CPU time of a process so far (all its threads; `/proc/<pid>/stat`, USER_HZ = 100).
pub(crate) fn process(pid: u32) -> Cpu {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return Cpu::default();
    };
    // Fields after the command name (which may contain spaces) start at state (field 3).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    Cpu {
        user_ms: ticks(11) * 10.0,
        sys_ms: ticks(12) * 10.0,
    }
}

/// Context switches of a process so far (voluntary, when a thread waits, and involuntary,
/// summed over its threads).
pub(crate) fn switches(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|t| std::fs::read_to_string(t.path().join("status")).ok())
        .flat_map(|status| {
            status
                .lines()
                .filter_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.ends_with("ctxt_switches")
                        .then(|| v.trim().parse::<u64>().ok())
                        .flatten()
                })
                .collect::<Vec<u64>>()
        })
        .sum()
}

/// CPU time of the PostgreSQL processes (the embedded cluster's postmaster, backends and
/// background workers).
pub(crate) fn postgres() -> Cpu {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Cpu::default();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "postgres")
        })
        .map(process)
        .sum()
}

/// CPU time of the waited-for children so far (pgbench runs).
pub(crate) fn children() -> Cpu {
    use nix::sys::resource::{getrusage, UsageWho};
    getrusage(UsageWho::RUSAGE_CHILDREN).map_or(Cpu::default(), |u| {
        let ms =
            |t: nix::sys::time::TimeVal| t.tv_sec() as f64 * 1000.0 + t.tv_usec() as f64 / 1000.0;
        Cpu {
            user_ms: ms(u.user_time()),
            sys_ms: ms(u.system_time()),
        }
    })
}

/// (idle, total) jiffies of the whole machine from `/proc/stat`.
pub(crate) fn machine_jiffies() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let f: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|v| v.parse().ok())
        .collect();
    (f.get(3).copied().unwrap_or(0), f.iter().sum())
}
