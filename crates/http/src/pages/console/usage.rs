//! The usage section of a database's page: a range form and two SVG bar charts (operations
//! and storage per day, with axes and units), from the same service as
//! `GET /v1/databases/{id}/usage`.

use pgfleet_domain::WorkspaceAccess;

use crate::pages::query_param;
use crate::AppState;

/// Longest usage range the page charts, in days.
const USAGE_MAX_DAYS: i64 = 31;
/// Height of a chart's bars area, in SVG units.
const CHART_H: i64 = 100;
/// Room left of the bars for the y axis and its labels, in SVG units.
const CHART_LEFT: i64 = 40;

pub(super) struct DayBar {
    pub(super) date: String,
    pub(super) label: String,
    pub(super) x: i64,
    pub(super) ops: i64,
    pub(super) ops_h: i64,
    pub(super) storage: String,
    pub(super) storage_h: i64,
}

/// The usage section: a range form and one bar per day (operations, storage).
pub(super) struct UsageView {
    pub(super) from: String,
    pub(super) to: String,
    pub(super) days: Vec<DayBar>,
    /// Total width of a chart, and where its bars start (right of the y axis), in SVG units.
    pub(super) width: i64,
    pub(super) left: i64,
    pub(super) ops_total: i64,
    pub(super) ops_max: i64,
    pub(super) storage_max: String,
    /// The storage quota (now), when there is one.
    pub(super) quota: Option<String>,
    /// Over the quota now: writes are refused.
    pub(super) read_only: bool,
    pub(super) problem: Option<String>,
}

/// The range of `?from=YYYY-MM-DD&to=YYYY-MM-DD` (default: the last 7 days, UTC).
fn usage_range(
    query: Option<&str>,
    today: chrono::NaiveDate,
) -> Result<(chrono::NaiveDate, chrono::NaiveDate), String> {
    let day = |name: &str, default: chrono::NaiveDate| -> Result<chrono::NaiveDate, String> {
        match query_param(query, name).filter(|v| !v.trim().is_empty()) {
            None => Ok(default),
            Some(v) => chrono::NaiveDate::parse_from_str(v.trim(), "%Y-%m-%d")
                .map_err(|_| format!("{v:?} is not a date like 2025-01-31.")),
        }
    };
    let to = day("to", today)?;
    let from = day("from", to - chrono::Days::new(6))?;
    if from > to {
        return Err("The start of the range is after its end.".to_string());
    }
    if (to - from).num_days() >= USAGE_MAX_DAYS {
        return Err(format!(
            "Choose at most {USAGE_MAX_DAYS} days; the chart shows one bar per day."
        ));
    }
    Ok((from, to))
}

/// Usage per day of the range, from the same service as `GET /v1/databases/{id}/usage`.
pub(super) async fn usage_view(
    state: &AppState,
    p: &WorkspaceAccess,
    id: &str,
    query: Option<&str>,
) -> Result<UsageView, pgfleet_domain::DomainError> {
    let today = state.services.clock().now().date_naive();
    let mut view = UsageView {
        from: query_param(query, "from").unwrap_or_default(),
        to: query_param(query, "to").unwrap_or_default(),
        days: Vec::new(),
        width: 0,
        left: CHART_LEFT,
        ops_total: 0,
        ops_max: 0,
        storage_max: String::new(),
        quota: None,
        read_only: false,
        problem: None,
    };
    let (from, to) = match usage_range(query, today) {
        Ok(r) => r,
        Err(problem) => {
            view.problem = Some(problem);
            return Ok(view);
        }
    };
    view.from = from.to_string();
    view.to = to.to_string();
    let mut raw = Vec::new();
    let mut d = from;
    while d <= to {
        let day = d.to_string();
        let u = state
            .services
            .usage()
            .database(p, id, Some(&day), Some(&day))
            .await?;
        let bytes = (u.metrics.storage.used * 1024.0 * 1024.0 * 1024.0).round() as i64;
        view.quota = u
            .metrics
            .storage
            .quota
            .map(|q| human_size((q * 1024.0 * 1024.0 * 1024.0).round() as i64));
        view.read_only = u.metrics.storage.read_only;
        raw.push((day, u.metrics.operations.used, bytes));
        d = d + chrono::Days::new(1);
    }
    let ops_max = raw.iter().map(|r| r.1).max().unwrap_or(0);
    let storage_max = raw.iter().map(|r| r.2).max().unwrap_or(0);
    let scale = |v: i64, max: i64| {
        if max > 0 {
            (v * CHART_H / max).max(i64::from(v > 0))
        } else {
            0
        }
    };
    view.ops_total = raw.iter().map(|r| r.1).sum();
    view.ops_max = ops_max;
    view.storage_max = human_size(storage_max);
    view.width = CHART_LEFT + raw.len() as i64 * 24 + 4;
    view.days = raw
        .into_iter()
        .enumerate()
        .map(|(i, (date, ops, bytes))| DayBar {
            label: date.get(5..).unwrap_or_default().to_string(),
            x: CHART_LEFT + i as i64 * 24 + 4,
            ops_h: scale(ops, ops_max),
            storage_h: scale(bytes, storage_max),
            storage: human_size(bytes),
            date,
            ops,
        })
        .collect();
    Ok(view)
}

pub(super) fn human_size(bytes: i64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_ranges_are_checked() {
        let today = chrono::NaiveDate::from_ymd_opt(2025, 3, 10).unwrap_or_default();
        let r = usage_range(None, today).map(|(a, b)| (a.to_string(), b.to_string()));
        assert_eq!(r, Ok(("2025-03-04".to_string(), "2025-03-10".to_string())));
        let r = usage_range(Some("from=2025-02-01&to=2025-02-03"), today)
            .map(|(a, b)| (a.to_string(), b.to_string()));
        assert_eq!(r, Ok(("2025-02-01".to_string(), "2025-02-03".to_string())));
        assert!(usage_range(Some("from=2025-02-05&to=2025-02-03"), today).is_err());
        assert!(usage_range(Some("from=2025-01-01&to=2025-03-01"), today).is_err());
        assert!(usage_range(Some("from=yesterday"), today).is_err());
    }

    #[test]
    fn sizes_are_readable() {
        assert_eq!(human_size(512), "512 B");
        assert_eq!(human_size(2048), "2.0 KiB");
        assert_eq!(human_size(5 * 1024 * 1024), "5.0 MiB");
    }
}
