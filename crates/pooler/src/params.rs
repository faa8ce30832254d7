//! Session parameters that follow a client from one server connection to the next in
//! transaction pooling: the ones the server reports (`ParameterStatus`) and clients set at
//! startup or with `SET` (PgBouncer tracks the same). A client's values start from its
//! startup packet (else the server's defaults) and follow what the server reports while
//! the client holds a connection; before a transaction runs on a connection whose values
//! differ, the proxy sends the `SET`s itself and hides their replies. Other session state
//! (other `SET`s, the role, advisory locks, `LISTEN`, SQL `PREPARE`, temporary tables) does
//! not follow its client: the server connection it was left on is reset or closed before the
//! next transaction runs there (see [`crate::leftover`]).

/// Canonical names, as the server reports them.
pub const TRACKED: &[&str] = &[
    "application_name",
    "client_encoding",
    "DateStyle",
    "IntervalStyle",
    "TimeZone",
    "standard_conforming_strings",
];

/// The canonical name of a tracked parameter (names are case-insensitive).
pub fn tracked(name: &str) -> Option<&'static str> {
    // Names mostly arrive spelled as the server reports them (checked before every
    // transaction): the exact comparison first is the cheaper one.
    TRACKED.iter().copied().find(|t| *t == name).or_else(|| {
        TRACKED
            .iter()
            .copied()
            .find(|t| t.eq_ignore_ascii_case(name))
    })
}

/// The value of `name` in a list of (name, value) pairs, case-insensitively.
pub fn get<'a>(list: &'a [(String, String)], name: &str) -> Option<&'a str> {
    list.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Sets `name` in a list of (name, value) pairs, case-insensitively.
pub fn set(list: &mut Vec<(String, String)>, name: &str, value: &str) {
    match list.iter_mut().find(|(k, _)| k.eq_ignore_ascii_case(name)) {
        Some((_, v)) => value.clone_into(v),
        None => list.push((name.to_string(), value.to_string())),
    }
}

/// The name and value of a `ParameterStatus` body.
pub fn parse_status(body: &[u8]) -> Option<(String, String)> {
    let (k, rest) = crate::proto::split_cstr(body)?;
    let (v, _) = crate::proto::split_cstr(rest)?;
    Some((
        String::from_utf8_lossy(k).into_owned(),
        String::from_utf8_lossy(v).into_owned(),
    ))
}

/// One simple query of `SET`s making a session whose values are `current` have `wanted`;
/// `None` when nothing differs.
pub fn sync_query(wanted: &[(String, String)], current: &[(String, String)]) -> Option<String> {
    let mut q = String::new();
    for (name, value) in wanted {
        let Some(name) = tracked(name) else { continue };
        if get(current, name) == Some(value.as_str()) {
            continue;
        }
        // An escape string literal reads the same whatever standard_conforming_strings is.
        let literal = value.replace('\\', "\\\\").replace('\'', "\\'");
        q.push_str(&format!("SET \"{name}\" TO E'{literal}';"));
    }
    (!q.is_empty()).then_some(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn sets_only_what_differs_with_safe_literals() {
        let current = pairs(&[("TimeZone", "UTC"), ("DateStyle", "ISO, MDY")]);
        assert_eq!(sync_query(&pairs(&[("timezone", "UTC")]), &current), None);
        assert_eq!(
            sync_query(
                &pairs(&[("TimeZone", "Asia/Tokyo"), ("DateStyle", "ISO, MDY")]),
                &current
            )
            .as_deref(),
            Some("SET \"TimeZone\" TO E'Asia/Tokyo';")
        );
        assert_eq!(
            sync_query(&pairs(&[("application_name", "it's a \\ test")]), &current).as_deref(),
            Some("SET \"application_name\" TO E'it\\'s a \\\\ test';")
        );
        assert_eq!(sync_query(&pairs(&[("search_path", "x")]), &current), None);
    }

    #[test]
    fn names_are_case_insensitive() {
        let mut l = pairs(&[("TimeZone", "UTC")]);
        set(&mut l, "timezone", "Europe/Paris");
        assert_eq!(l, pairs(&[("TimeZone", "Europe/Paris")]));
        assert_eq!(get(&l, "TIMEZONE"), Some("Europe/Paris"));
        assert_eq!(tracked("datestyle"), Some("DateStyle"));
        assert_eq!(tracked("work_mem"), None);
    }
}
