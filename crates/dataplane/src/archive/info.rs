//! Reading `pgbackrest info --output=json`: the base backups of the stanza and, for one
//! backup set, the databases it holds (to choose between `--db-include` and `--db-exclude`).

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{BaseBackup, BaseBackupKind, RepoInfo};
use crate::{DataplaneError, Result};

#[derive(Deserialize)]
struct Stanza {
    #[serde(default)]
    backup: Vec<Backup>,
    status: Status,
}

#[derive(Deserialize)]
struct Status {
    code: i32,
}

/// pgBackRest's info status codes for a stanza that does not exist (yet) in the repository.
const MISSING_STANZA_PATH: i32 = 1;
const MISSING_STANZA_DATA: i32 = 3;

#[derive(Deserialize)]
struct Backup {
    label: String,
    #[serde(rename = "type")]
    kind: String,
    timestamp: Stamps,
    info: Sizes,
    #[serde(rename = "database-ref", default)]
    database_ref: Option<Vec<DatabaseRef>>,
    #[serde(default)]
    error: Option<bool>,
}

#[derive(Deserialize)]
struct Stamps {
    start: i64,
    stop: i64,
}

#[derive(Deserialize)]
struct Sizes {
    repository: RepoSizes,
}

#[derive(Deserialize)]
struct RepoSizes {
    /// What this backup added to the repository (compressed).
    delta: i64,
}

#[derive(Deserialize)]
struct DatabaseRef {
    name: String,
}

fn bad(why: impl std::fmt::Display) -> DataplaneError {
    DataplaneError::Setup(format!("pgbackrest info: unexpected output: {why}"))
}

fn stanza(json: &str) -> Result<Stanza> {
    let mut list: Vec<Stanza> = serde_json::from_str(json).map_err(bad)?;
    if list.len() != 1 {
        return Err(bad(format!("{} stanzas, expected 1", list.len())));
    }
    Ok(list.remove(0))
}

fn at(secs: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp(secs, 0).ok_or_else(|| bad(format!("timestamp {secs}")))
}

/// The base backups, oldest first. Backups pgBackRest marks in error (a page checksum
/// failure) still restore, so they are kept.
pub(super) fn parse(json: &str) -> Result<RepoInfo> {
    let mut backups = Vec::new();
    for b in stanza(json)?.backup {
        let kind = match b.kind.as_str() {
            "full" => BaseBackupKind::Full,
            // A differential backup restores like an incremental one (full + it + WAL).
            "incr" | "diff" => BaseBackupKind::Incremental,
            other => return Err(bad(format!("backup type {other:?}"))),
        };
        let _ = b.error;
        backups.push(BaseBackup {
            label: b.label,
            kind,
            started_at: at(b.timestamp.start)?,
            stopped_at: at(b.timestamp.stop)?,
            size_bytes: b.info.repository.delta,
        });
    }
    backups.sort_by_key(|b| b.stopped_at);
    Ok(RepoInfo { backups })
}

/// Whether the stanza exists in the repository (`stanza-create` has run).
pub(super) fn stanza_exists(json: &str) -> Result<bool> {
    let code = stanza(json)?.status.code;
    Ok(code != MISSING_STANZA_PATH && code != MISSING_STANZA_DATA)
}

/// The databases of one backup set (`info --set=<label>`); `None` when this pgBackRest does
/// not list them.
pub(super) fn databases(json: &str) -> Result<Option<Vec<String>>> {
    let st = stanza(json)?;
    let Some(b) = st.backup.into_iter().next() else {
        return Err(bad("no backup in the answer for one set"));
    };
    Ok(b.database_ref
        .map(|refs| refs.into_iter().map(|r| r.name).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = r#"[{"archive":[{"database":{"id":1,"repo-key":1},"id":"15-1","max":"000000010000000000000005","min":"000000010000000000000001"}],
      "backup":[
        {"archive":{"start":"000000010000000000000003","stop":"000000010000000000000003"},"backrest":{"format":5,"version":"2.45"},
         "database":{"id":1,"repo-key":1},"error":false,"info":{"delta":100,"repository":{"delta":40,"size":40},"size":100},
         "label":"20261203-120000F","lsn":{"start":"0/3000028","stop":"0/3000100"},"prior":null,"reference":null,
         "timestamp":{"start":1764763200,"stop":1764763205},"type":"full",
         "database-ref":[{"name":"postgres","oid":5},{"name":"tenant_a","oid":16384}]},
        {"archive":{"start":"000000010000000000000005","stop":"000000010000000000000005"},"backrest":{"format":5,"version":"2.45"},
         "database":{"id":1,"repo-key":1},"error":false,"info":{"delta":10,"repository":{"delta":4,"size":41},"size":100},
         "label":"20261203-120000F_20261203-130000I","lsn":{"start":"0/5000028","stop":"0/5000100"},"prior":"20261203-120000F","reference":["20261203-120000F"],
         "timestamp":{"start":1764766800,"stop":1764766802},"type":"incr"}],
      "cipher":"none","db":[{"id":1,"repo-key":1,"system-id":7000000000000000000,"version":"15"}],"name":"embedded",
      "repo":[{"cipher":"none","key":1,"status":{"code":0,"message":"ok"}}],"status":{"code":0,"lock":{"backup":{"held":false}},"message":"ok"}}]"#;

    #[test]
    fn backups_and_databases_are_read() {
        let info = parse(INFO).unwrap();
        assert_eq!(info.backups.len(), 2);
        assert_eq!(info.backups[0].kind, BaseBackupKind::Full);
        assert_eq!(info.backups[1].kind, BaseBackupKind::Incremental);
        assert_eq!(info.backups[0].size_bytes, 40);
        assert_eq!(info.earliest(), Some(at(1764763206).unwrap()));
        assert_eq!(
            databases(INFO).unwrap(),
            Some(vec!["postgres".to_string(), "tenant_a".to_string()])
        );
        let empty =
            r#"[{"backup":[],"name":"embedded","status":{"code":2,"message":"no valid backups"}}]"#;
        assert!(parse(empty).unwrap().backups.is_empty());
        assert!(stanza_exists(empty).unwrap());
        let missing = r#"[{"backup":[],"name":"embedded","status":{"code":1,"message":"missing stanza path"}}]"#;
        assert!(!stanza_exists(missing).unwrap());
        assert!(parse("[]").is_err());
    }
}
