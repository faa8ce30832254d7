//! The database-adapter half of the reference (`@prisma/adapter-pg` over node `pg`), redone on
//! tokio-postgres: parameters are bound as text with unspecified types (OID 0, the server
//! infers them from the SQL; buffers go in binary), results arrive in binary and are turned
//! into the values adapter-pg would give (int8 and numeric as text, timestamps as
//! `…+00:00` text, json as text, bytea as bytes), raw-result column types are named as
//! adapter-pg names them, and server errors become the adapter's error kinds.

mod decode;
mod errors;
mod params;

pub use decode::{column_type_name, decode_cell, numeric_text, RawCell};
pub use errors::driver_error;
pub use params::{encode_param, unspecified_type, PgParam};
