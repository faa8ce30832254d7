//! The console's one timestamp format: a relative time ("5 minutes ago") in a
//! `<time datetime=… title=…>` whose title is the exact UTC time, shown on hover. Pages
//! compute it against the injected clock when they render.

use std::fmt;

use chrono::{DateTime, Utc};

/// A point in time as the console shows it; `Display` writes the `<time>` element (the
/// templates use it with `|safe`: every part is escaped here).
pub(crate) struct Stamp {
    iso: String,
    exact: String,
    relative: String,
}

impl Stamp {
    /// `t` seen at `now`.
    pub(crate) fn at(t: DateTime<Utc>, now: DateTime<Utc>) -> Self {
        Self {
            iso: pgfleet_api_types::ts(&t),
            exact: t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            relative: relative(now.signed_duration_since(t).num_seconds(), t),
        }
    }

    /// An RFC 3339 time of an API shape; shown as it is when it does not parse.
    pub(crate) fn parse(raw: &str, now: DateTime<Utc>) -> Self {
        match DateTime::parse_from_rfc3339(raw) {
            Ok(t) => Self::at(t.with_timezone(&Utc), now),
            Err(_) => Self {
                iso: escape(raw),
                exact: escape(raw),
                relative: escape(raw),
            },
        }
    }
}

/// "just now", "3 minutes ago", "in 2 hours", …; the date itself beyond 30 days.
fn relative(secs_ago: i64, t: DateTime<Utc>) -> String {
    let n = secs_ago.abs();
    if n < 60 {
        return "just now".to_string();
    }
    let (count, unit) = match n {
        n if n < 3600 => (n / 60, "minute"),
        n if n < 86_400 => (n / 3600, "hour"),
        n if n < 30 * 86_400 => (n / 86_400, "day"),
        _ => return t.format("%Y-%m-%d").to_string(),
    };
    let plural = if count == 1 { "" } else { "s" };
    if secs_ago >= 0 {
        format!("{count} {unit}{plural} ago")
    } else {
        format!("in {count} {unit}{plural}")
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

impl fmt::Display for Stamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "<time datetime=\"{}\" title=\"{}\">{}</time>",
            self.iso, self.exact, self.relative
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_relative_with_the_exact_time_on_hover() {
        let now = DateTime::parse_from_rfc3339("2025-03-10T12:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap();
        let html = Stamp::parse("2025-03-10T11:55:30.000Z", now).to_string();
        assert_eq!(
            html,
            "<time datetime=\"2025-03-10T11:55:30.000Z\" title=\"2025-03-10 11:55:30 UTC\">4 minutes ago</time>"
        );
        assert!(Stamp::parse("2025-03-10T11:59:30Z", now)
            .to_string()
            .contains(">just now<"));
        assert!(Stamp::parse("2025-03-09T11:00:00Z", now)
            .to_string()
            .contains(">1 day ago<"));
        assert!(Stamp::parse("2025-03-10T14:00:00Z", now)
            .to_string()
            .contains(">in 2 hours<"));
        assert!(Stamp::parse("2024-01-02T00:00:00Z", now)
            .to_string()
            .contains(">2024-01-02<"));
        assert_eq!(
            Stamp::parse("<b>", now).to_string(),
            "<time datetime=\"&lt;b&gt;\" title=\"&lt;b&gt;\">&lt;b&gt;</time>"
        );
    }
}
