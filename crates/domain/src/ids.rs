//! Resource identifiers: a type prefix (`wksp_`, `proj_`, `db_`, …, as real clients expect)
//! and 20 random lowercase alphanumerics (~103 bits).

use crate::Randomness;

pub const WORKSPACE: &str = "wksp_";
pub const USER: &str = "usr_";
pub const PROJECT: &str = "proj_";
pub const DATABASE: &str = "db_";
pub const CONNECTION: &str = "con_";
pub const SERVICE_TOKEN: &str = "stk_";
pub const BACKUP: &str = "bkp_";
pub const OAUTH_CLIENT: &str = "itgr_";
pub const INTEGRATION: &str = "intg_";
pub const OPERATION: &str = "op_";
pub const SERVER: &str = "srv_";
/// A round of a periodic job (its log span, and the `request_id` of what it causes).
pub const JOB_ROUND: &str = "job_";

pub fn new_id(prefix: &str, rng: &Randomness) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    rng.with(|r| {
        let mut s = String::with_capacity(prefix.len() + 20);
        s.push_str(prefix);
        while s.len() < prefix.len() + 20 {
            let b = (r.next_u32() & 0xff) as usize;
            // 252 = 36 * 7: rejection keeps every letter equally likely.
            if b < 252 {
                s.push(ALPHABET[b % 36] as char);
            }
        }
        s
    })
}

/// True when `id` has the prefix and a plausible body; lets us answer 404 without a query.
pub fn looks_like(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix).is_some_and(|rest| {
        !rest.is_empty() && rest.len() <= 64 && rest.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}
