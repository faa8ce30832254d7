//! Cursor pagination shared by every list: stable order by each table's `seq`, an opaque
//! cursor that encodes the last `seq` seen, `limit` 1..=100.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use pgfleet_api_types::{List, Pagination};

use crate::{DomainError, Result};

pub const MAX_LIMIT: i64 = 100;

/// A validated page request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub after: Option<i64>,
    pub limit: i64,
}

impl PageRequest {
    /// Validates raw query values (`limit` as it arrived, so a non-number is our 400 too).
    pub fn parse(cursor: Option<&str>, limit: Option<&str>, default_limit: i64) -> Result<Self> {
        let limit = match limit {
            None => default_limit,
            Some(raw) => match raw.trim().parse::<i64>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                _ => {
                    return Err(DomainError::bad_request_hint(
                        format!("limit must be a whole number from 1 to {MAX_LIMIT}, got {raw:?}"),
                        format!("Omit limit for the default of {default_limit}."),
                    ))
                }
            },
        };
        let after = match cursor {
            None | Some("") => None,
            Some(c) => Some(decode_cursor(c).ok_or_else(|| {
                DomainError::bad_request_hint(
                    "The cursor is not valid",
                    "Pass pagination.nextCursor from a previous page unchanged, or omit cursor to start from the beginning.",
                )
            })?),
        };
        Ok(Self { after, limit })
    }

    /// How many rows to fetch: one more than the page, to know whether there is a next page.
    pub fn fetch(&self) -> i64 {
        self.limit + 1
    }

    /// Builds the list from `limit + 1` rows fetched in `seq` order.
    pub fn finish<R, T>(
        &self,
        mut rows: Vec<R>,
        seq: impl Fn(&R) -> i64,
        view: impl FnMut(R) -> T,
    ) -> List<T> {
        let has_more = rows.len() as i64 > self.limit;
        rows.truncate(self.limit as usize);
        let next_cursor = if has_more {
            rows.last().map(|r| encode_cursor(seq(r)))
        } else {
            None
        };
        List {
            data: rows.into_iter().map(view).collect(),
            pagination: Pagination {
                next_cursor,
                has_more,
            },
        }
    }
}

pub fn encode_cursor(seq: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("pgfleet:{seq}"))
}

fn decode_cursor(c: &str) -> Option<i64> {
    let raw = URL_SAFE_NO_PAD.decode(c.as_bytes()).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let n: i64 = text.strip_prefix("pgfleet:")?.parse().ok()?;
    (n >= 0).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_roundtrip_and_validation() {
        let p = PageRequest::parse(Some(&encode_cursor(42)), Some("10"), 100).unwrap();
        assert_eq!(
            p,
            PageRequest {
                after: Some(42),
                limit: 10
            }
        );
        assert!(PageRequest::parse(Some("garbage!"), None, 100).is_err());
        assert!(PageRequest::parse(None, Some("0"), 100).is_err());
        assert!(PageRequest::parse(None, Some("101"), 100).is_err());
        assert!(PageRequest::parse(None, Some("ten"), 100).is_err());
        assert_eq!(PageRequest::parse(None, None, 25).unwrap().limit, 25);
    }
}
