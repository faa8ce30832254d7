//! `[http]`: limits on the API's connections (how many, how long a request head and body
//! may take), their defaults and their validation.

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// `[http]`: the API's connections. Each holds a file descriptor; see
/// [`crate::descriptors`] for how the caps are derived from the open-files limit.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Connections open at once; past it a new connection is answered `503` and closed.
    /// Default: a quarter of the file descriptors left after the reserve, at most 4096 (a
    /// value that does not fit the open-files limit is lowered, with a warning).
    /// `config print` shows the value derived for this machine.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<usize>,
    /// A new connection whose complete request head has not arrived within this (or within
    /// `keep_alive_timeout_secs` if shorter) is closed, in seconds (a silent or trickling
    /// client would otherwise hold its descriptor).
    pub header_read_timeout_secs: u64,
    /// A kept-alive connection whose next request head has not arrived within this is
    /// closed, in seconds.
    pub keep_alive_timeout_secs: u64,
    /// A request body must arrive whole within this after the request head, in seconds
    /// (bodies are at most `body_limit_bytes`); past it the request fails with `400`.
    pub body_read_timeout_secs: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            max_connections: None,
            header_read_timeout_secs: 5,
            keep_alive_timeout_secs: 15,
            body_read_timeout_secs: 30,
        }
    }
}

impl HttpConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.max_connections == Some(0)
            || !(1..=3600).contains(&self.header_read_timeout_secs)
            || !(1..=3600).contains(&self.keep_alive_timeout_secs)
            || !(1..=3600).contains(&self.body_read_timeout_secs)
        {
            return Err(ConfigError::Invalid(
                "http: max_connections must be at least 1; header_read_timeout_secs, \
                 keep_alive_timeout_secs and body_read_timeout_secs 1 to 3600"
                    .to_string(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Config, Overrides};

    #[test]
    fn http_section_and_pooler_startup_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pgfleet.toml");
        std::fs::write(
            &file,
            "[http]\nmax_connections = 300\nheader_read_timeout_secs = 2\n\
             keep_alive_timeout_secs = 9\n[pooler]\nstartup_timeout_secs = 3\n\
             max_client_connections = 40\n",
        )
        .unwrap();
        let cfg = Config::load(Some(&file), &Overrides::default()).unwrap();
        assert_eq!(cfg.http.max_connections, Some(300));
        assert_eq!(cfg.http.header_read_timeout_secs, 2);
        assert_eq!(cfg.http.keep_alive_timeout_secs, 9);
        assert_eq!(cfg.pooler.startup_timeout_secs, 3);
        assert_eq!(cfg.pooler.max_client_connections, Some(40));
        let text = cfg.to_toml();
        assert!(text.contains("[http]") && text.contains("header_read_timeout_secs = 2"));
        // Unset caps are derived later (from the open-files limit).
        let defaults = Config::load(None, &Overrides::default()).unwrap();
        assert_eq!(defaults.http.max_connections, None);
        assert_eq!(defaults.pooler.max_client_connections, None);
        for bad in [
            "[http]\nmax_connections = 0\n",
            "[http]\nheader_read_timeout_secs = 0\n",
            "[http]\nbody_read_timeout_secs = 0\n",
            "[http]\nkeep_alive_timeout = 5\n",
            "[pooler]\nstartup_timeout_secs = 0\n",
        ] {
            std::fs::write(&file, bad).unwrap();
            assert!(
                Config::load(Some(&file), &Overrides::default()).is_err(),
                "{bad}"
            );
        }
    }
}
