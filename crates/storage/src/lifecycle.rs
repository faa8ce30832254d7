//! The lifecycle vocabulary of the metadata store: the states of databases, connections,
//! backups and operations, what started a backup, and the kinds of operations.
//!
//! Each is an enum whose variants carry the exact text stored in its column (the same
//! strings the `CHECK` constraints of `migrations/` list, and that the API and logs show),
//! written once in a [`text_enum!`] table that gives `as_str`, `Display`, `FromStr` and the
//! sqlx `Type`/`Encode`/`Decode` of a `text` column. A stored value this binary does not
//! know is a decode error ([`UnknownValue`]), never a silent fallback. (A hand macro rather
//! than `#[derive(sqlx::Type)]` + strum: the derive binds by a type *name* and would list
//! every name a second time for `FromStr`.)

use std::fmt;
use std::str::FromStr;

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgHasArrayType, PgTypeInfo, PgValueRef};
use sqlx::{Decode, Encode, Postgres, Type};

/// A stored or given text that is none of an enum's values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {value:?}")]
pub struct UnknownValue {
    /// What was being read (e.g. `database state`).
    pub what: &'static str,
    pub value: String,
}

/// An enum stored as `text`: `name { Variant = "stored text", … }`.
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        $name:ident ($what:literal) {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The stored (and shown) text.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownValue;

            fn from_str(s: &str) -> Result<Self, UnknownValue> {
                match s {
                    $( $text => Ok($name::$variant), )+
                    _ => Err(UnknownValue { what: $what, value: s.to_string() }),
                }
            }
        }

        impl Type<Postgres> for $name {
            fn type_info() -> PgTypeInfo {
                <&str as Type<Postgres>>::type_info()
            }

            fn compatible(ty: &PgTypeInfo) -> bool {
                <&str as Type<Postgres>>::compatible(ty)
            }
        }

        impl PgHasArrayType for $name {
            fn array_type_info() -> PgTypeInfo {
                <&str as PgHasArrayType>::array_type_info()
            }

            fn array_compatible(ty: &PgTypeInfo) -> bool {
                <&str as PgHasArrayType>::array_compatible(ty)
            }
        }

        impl<'q> Encode<'q, Postgres> for $name {
            fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
                <&str as Encode<'q, Postgres>>::encode(self.as_str(), buf)
            }
        }

        impl<'r> Decode<'r, Postgres> for $name {
            fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
                Ok(<&str as Decode<'r, Postgres>>::decode(value)?.parse()?)
            }
        }
    };
}

text_enum! {
    /// `databases.status`. Rows `deleting` are on their way out and invisible to the API.
    DatabaseState ("database state") {
        /// Written, waiting for the reconciler to create it on its server.
        Provisioning = "provisioning",
        Ready = "ready",
        /// Being restored in place from a backup.
        Recovering = "recovering",
        /// Its create failed for good.
        Failure = "failure",
        Deleting = "deleting",
    }
}

impl DatabaseState {
    /// Provisioning or recovering: an operation is changing it, so it cannot be changed
    /// (deleted, its connections changed) now.
    pub fn is_busy(self) -> bool {
        matches!(
            self,
            DatabaseState::Provisioning | DatabaseState::Recovering
        )
    }
}

text_enum! {
    /// `connections.status`. Rows `deleting` are invisible to the API.
    ConnectionState ("connection state") {
        /// Its login role is not created yet.
        Creating = "creating",
        Active = "active",
        Deleting = "deleting",
    }
}

text_enum! {
    /// `webhook_deliveries.state`.
    DeliveryState ("webhook delivery state") {
        /// Not delivered yet: due at `next_attempt_at` (a claimed one, after its deadline).
        Pending = "pending",
        /// The endpoint answered 2xx.
        Delivered = "delivered",
        /// Given up: its endpoint was disabled.
        Failed = "failed",
    }
}

text_enum! {
    /// `backups.status`.
    BackupState ("backup state") {
        Running = "running",
        Completed = "completed",
        Failed = "failed",
    }
}

text_enum! {
    /// `backups.trigger`: what started a backup.
    BackupTrigger ("backup trigger") {
        /// The schedule (`backups.interval`).
        Scheduled = "scheduled",
        /// A user or a client asked for it (`POST …/backups`, "Back up now").
        OnDemand = "manual",
    }
}

text_enum! {
    /// `operations.state`.
    OperationState ("operation state") {
        /// Due at `next_attempt_at` (new, or waiting for a retry).
        Pending = "pending",
        Running = "running",
        Succeeded = "succeeded",
        /// Gave up after its attempts.
        Failed = "failed",
    }
}

impl OperationState {
    /// Pending or running: not finished.
    pub fn is_open(self) -> bool {
        matches!(self, OperationState::Pending | OperationState::Running)
    }
}

text_enum! {
    /// `operations.kind`: what the reconciler does for an operation. Also the `kind` label
    /// of the provisioning metrics.
    OperationKind ("operation kind") {
        DatabaseCreate = "database.create",
        DatabaseDelete = "database.delete",
        ConnectionCreate = "connection.create",
        ConnectionRotate = "connection.rotate",
        ConnectionDelete = "connection.delete",
        BackupCreate = "backup.create",
        DatabaseRestore = "database.restore",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trips<T>(all: &[T])
    where
        T: Copy + fmt::Display + FromStr<Err = UnknownValue> + PartialEq + fmt::Debug,
    {
        for v in all {
            assert_eq!(v.to_string().parse::<T>(), Ok(*v));
        }
    }

    #[test]
    fn every_value_reads_back_from_its_text() {
        round_trips(DatabaseState::ALL);
        round_trips(ConnectionState::ALL);
        round_trips(BackupState::ALL);
        round_trips(BackupTrigger::ALL);
        round_trips(OperationState::ALL);
        round_trips(OperationKind::ALL);
    }

    #[test]
    fn stored_texts_are_the_wire_names() {
        assert_eq!(DatabaseState::Provisioning.as_str(), "provisioning");
        assert_eq!(BackupTrigger::OnDemand.as_str(), "manual");
        assert_eq!(OperationKind::DatabaseRestore.as_str(), "database.restore");
    }

    #[test]
    fn an_unknown_text_is_an_error_not_a_fallback() {
        assert_eq!(
            "exploding".parse::<DatabaseState>(),
            Err(UnknownValue {
                what: "database state",
                value: "exploding".to_string()
            })
        );
        assert!("Ready".parse::<DatabaseState>().is_err());
        assert!("database.explode".parse::<OperationKind>().is_err());
    }

    #[test]
    fn the_check_constraints_list_exactly_these_values() {
        let initial = include_str!("../migrations/0001_initial.sql");
        let check = |column: &str, all: Vec<&str>| {
            let line = initial
                .lines()
                .find(|l| {
                    l.contains(&format!("CHECK ({column} IN ("))
                        && all.iter().all(|v| l.contains(&format!("'{v}'")))
                })
                .unwrap_or_else(|| panic!("no CHECK on {column} listing {all:?}"));
            assert_eq!(
                line.matches('\'').count(),
                all.len() * 2 + line.matches("DEFAULT '").count() * 2,
                "{line}"
            );
        };
        check(
            "status",
            DatabaseState::ALL.iter().map(|s| s.as_str()).collect(),
        );
        check(
            "status",
            ConnectionState::ALL.iter().map(|s| s.as_str()).collect(),
        );
        check(
            "status",
            BackupState::ALL.iter().map(|s| s.as_str()).collect(),
        );
        check(
            "trigger",
            BackupTrigger::ALL.iter().map(|s| s.as_str()).collect(),
        );
        check(
            "state",
            OperationState::ALL.iter().map(|s| s.as_str()).collect(),
        );
    }
}
