//! Named prepared statements in transaction mode.
//!
//! **Prepared statements.** A client's named statement becomes `pgf_<hash of its text and
//! parameter types>` on the server. Before a `Bind` or `Describe` uses it on a server
//! connection that has not prepared it, the proxy sends `Close` + `Parse` itself and hides
//! their replies (`CloseComplete`/`ParseComplete` carry no data, so hiding "the next N" of
//! a reply batch is exact). The hidden counts are kept per batch (up to each reply-owing
//! message) because an error makes the server skip to the next `Sync`. After an error the
//! statements prepared in that batch are forgotten (a later use re-prepares, and every
//! `Parse` the proxy sends comes after a `Close` of the name, which is not an error when the
//! statement does not exist). Each server connection keeps at most
//! `max_prepared_statements`; the least recently used are closed to make room.
//!
//! [`Statements`] holds a client's statements and rewrites the messages that use them
//! against the server session they go to ([`OnServer`]); the session's methods here only
//! hand it the lent connection.

use std::collections::HashMap;

use bytes::{Bytes, BytesMut};

use super::replies::Replies;
use super::session::Session;
use crate::backend::PreparedSet;
use crate::leftover::Leftover;
use crate::proto::{self, put_message};

struct ClientStatement {
    server_name: String,
    /// The `Parse` body, already renamed.
    parse: Bytes,
    /// What running it may leave on the server session (noted at each `Bind`: it may run
    /// on another server connection than the one it was parsed on).
    leftover: Leftover,
}

/// A client's named statements, by the client's name.
#[derive(Default)]
pub(super) struct Statements {
    by_name: HashMap<Vec<u8>, ClientStatement>,
}

/// The server session a rewritten message goes to: the statements it has prepared, the
/// replies it owes, how many statements it may keep, and its use counter when the client
/// got it (statements used since are not closed to make room).
pub(super) struct OnServer<'a> {
    pub(super) prepared: &'a mut PreparedSet,
    pub(super) replies: &'a mut Replies,
    pub(super) max: usize,
    pub(super) mark: u64,
}

impl Statements {
    /// A `Parse` (`msg`, type byte included): a named statement is renamed (and its `Parse`
    /// kept, to prepare it on other server sessions), after a `Close` of the server name.
    pub(super) fn parse(
        &mut self,
        msg: &[u8],
        leftover: Leftover,
        server: &mut OnServer<'_>,
        out: &mut BytesMut,
    ) {
        let body = &msg[5..];
        let Some((name, rest)) = proto::split_cstr(body) else {
            out.extend_from_slice(msg);
            return;
        };
        if name.is_empty() {
            out.extend_from_slice(msg);
            return;
        }
        let digest = ring::digest::digest(&ring::digest::SHA256, rest);
        let server_name = format!("pgf_{}", hex::encode(&digest.as_ref()[..12]));
        debug_assert_eq!(server_name.len(), SERVER_NAME_LEN);
        let mut parse = Vec::with_capacity(rest.len() + server_name.len() + 1);
        proto::put_cstr(&mut parse, &server_name);
        parse.extend_from_slice(rest);
        let parse = Bytes::from(parse);
        // Re-preparing a name the server session already has would fail, so it is closed
        // first, also when the proxy does not know of it: after an error the statements of a
        // batch are forgotten, but its `Parse` may have succeeded before the error.
        if !server.prepared.touch(&server_name) {
            make_room(server, out);
        }
        prepare_on_server(server, &server_name, &parse, false, out);
        self.by_name.insert(
            name.to_vec(),
            ClientStatement {
                server_name,
                parse,
                leftover,
            },
        );
    }

    /// Makes sure the server session has the client's statement `name`; returns its server
    /// name, or `None` when the client never prepared it (the server will say so).
    fn ensure_prepared(
        &self,
        name: &[u8],
        server: &mut OnServer<'_>,
        out: &mut BytesMut,
    ) -> Option<String> {
        let st = self.by_name.get(name)?;
        if server.prepared.touch(&st.server_name) {
            return Some(st.server_name.clone());
        }
        make_room(server, out);
        prepare_on_server(server, &st.server_name, &st.parse, true, out);
        Some(st.server_name.clone())
    }

    /// Queues the head of the `Bind` at the start of `msg` (`len` bytes in all) with its
    /// statement renamed; returns how many bytes of the original head it replaces and what
    /// running the statement may leave on the session, or `None` when the message passes
    /// unchanged (unnamed or unknown statement).
    pub(super) fn bind_head(
        &self,
        msg: &[u8],
        len: usize,
        server: &mut OnServer<'_>,
        out: &mut BytesMut,
    ) -> Option<(usize, Leftover)> {
        let (portal, stmt, consumed) = bind_names(msg)?;
        if stmt.is_empty() {
            return None;
        }
        // The length field counts itself but not the type byte.
        let new_len = i32::try_from(len - 1 - stmt.len() + SERVER_NAME_LEN).ok()?;
        let server_name = self.ensure_prepared(stmt, server, out)?;
        debug_assert_eq!(server_name.len(), SERVER_NAME_LEN);
        let leftover = self
            .by_name
            .get(stmt)
            .map_or(Leftover::None, |s| s.leftover);
        out.extend_from_slice(b"B");
        out.extend_from_slice(&new_len.to_be_bytes());
        out.extend_from_slice(portal);
        out.extend_from_slice(&[0]);
        out.extend_from_slice(server_name.as_bytes());
        out.extend_from_slice(&[0]);
        Some((consumed, leftover))
    }

    /// A `Describe` (`D`) or `Close` (`C`): of a named statement the client prepared, renamed
    /// (prepared first for a `Describe`, forgotten after a `Close`); otherwise unchanged.
    pub(super) fn describe_or_close(
        &mut self,
        tag: u8,
        msg: &[u8],
        server: &mut OnServer<'_>,
        out: &mut BytesMut,
    ) {
        let body = &msg[5..];
        let (Some(&kind), Some((name, _))) = (body.first(), proto::split_cstr(&body[1..])) else {
            out.extend_from_slice(msg);
            return;
        };
        if kind != b'S' || name.is_empty() {
            out.extend_from_slice(msg);
            return;
        }
        let server_name = if tag == b'C' {
            match self.by_name.remove(name) {
                Some(st) => {
                    server.prepared.remove(&st.server_name);
                    st.server_name
                }
                None => {
                    out.extend_from_slice(msg);
                    return;
                }
            }
        } else {
            match self.ensure_prepared(name, server, out) {
                Some(n) => n,
                None => {
                    out.extend_from_slice(msg);
                    return;
                }
            }
        };
        put_statement_message(out, tag, &server_name);
    }
}

/// Queues `Close` (its reply hidden) and `Parse` of `server_name` and notes the statement
/// prepared on the server session; `ParseComplete` is hidden too when the `Parse` is the
/// proxy's own rather than the client's.
fn prepare_on_server(
    server: &mut OnServer<'_>,
    server_name: &str,
    parse: &[u8],
    own: bool,
    out: &mut BytesMut,
) {
    put_statement_message(out, b'C', server_name);
    put_message(out, b'P', parse);
    server.replies.prepared(server_name, own);
    server.prepared.insert(server_name.to_string());
}

/// Before a statement is prepared on the server session: closes the least recently used
/// ones (replies hidden) while the session has `max`, sparing those used since the client
/// got it. Should one of these `Close`s be skipped after an error, the statement stays on
/// the server unknown to the proxy; a later `Parse` of it closes it first anyway.
fn make_room(server: &mut OnServer<'_>, out: &mut BytesMut) {
    while server.prepared.len() >= server.max {
        let Some(old) = server.prepared.evict_before(server.mark) else {
            break;
        };
        put_statement_message(out, b'C', &old);
        server.replies.own_close();
    }
}

impl Session {
    /// The client's statements and the lent server session, apart; `None` without a lease.
    fn on_server(&mut self) -> Option<(&mut Statements, OnServer<'_>)> {
        let lease = self.lease.as_mut()?;
        let server = OnServer {
            prepared: &mut lease.conn.prepared,
            replies: &mut self.replies,
            max: self.shared.settings.max_prepared_statements,
            mark: self.lease_mark,
        };
        Some((&mut self.statements, server))
    }

    pub(super) fn forward_parse(&mut self, msg: BytesMut, leftover: Leftover, out: &mut BytesMut) {
        match self.on_server() {
            Some((statements, mut server)) => statements.parse(&msg, leftover, &mut server, out),
            None => out.extend_from_slice(&msg),
        }
    }

    pub(super) fn forward_bind(&mut self, msg: BytesMut, out: &mut BytesMut) {
        let from = self.bind_head_of(&msg, msg.len(), out).unwrap_or(0);
        out.extend_from_slice(&msg[from..]);
    }

    /// Queues the head of the `Bind` at the start of `cbuf` (`len` bytes in all) with its
    /// statement renamed; returns how many bytes of the original head it replaces, or
    /// `None` when the message passes unchanged (unnamed or unknown statement).
    pub(super) fn bind_head(&mut self, len: usize, out: &mut BytesMut) -> Option<usize> {
        let cbuf = std::mem::take(&mut self.cbuf);
        let r = self.bind_head_of(&cbuf, len, out);
        self.cbuf = cbuf;
        r
    }

    fn bind_head_of(&mut self, msg: &[u8], len: usize, out: &mut BytesMut) -> Option<usize> {
        let (statements, mut server) = self.on_server()?;
        let (consumed, leftover) = statements.bind_head(msg, len, &mut server, out)?;
        self.note_leftover(leftover);
        Some(consumed)
    }

    pub(super) fn forward_describe_or_close(&mut self, tag: u8, msg: BytesMut, out: &mut BytesMut) {
        match self.on_server() {
            Some((statements, mut server)) => {
                statements.describe_or_close(tag, &msg, &mut server, out);
            }
            None => out.extend_from_slice(&msg),
        }
    }
}

/// Length of the server-side name of a client's statement: `pgf_` and 24 hex digits.
const SERVER_NAME_LEN: usize = 28;

/// The portal and statement names of the `Bind` at the start of `msg` (type byte included)
/// and where its parameters start, once both names have arrived.
pub(super) fn bind_names(msg: &[u8]) -> Option<(&[u8], &[u8], usize)> {
    let body = msg.get(5..)?;
    let (portal, rest) = proto::split_cstr(body)?;
    let (stmt, _) = proto::split_cstr(rest)?;
    Some((portal, stmt, 5 + portal.len() + 1 + stmt.len() + 1))
}

/// A `Describe` (`D`) or `Close` (`C`) of the prepared statement `name`.
fn put_statement_message(out: &mut BytesMut, tag: u8, name: &str) {
    let mut b = vec![b'S'];
    proto::put_cstr(&mut b, name);
    put_message(out, tag, &b);
}

#[cfg(test)]
mod tests;
