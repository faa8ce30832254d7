//! Relaying a logged-in client's messages while a server connection is lent to it.
//!
//! **Transaction mode.** A server connection is checked out when the client sends a
//! message and returned when the server reports `ReadyForQuery` idle with no more replies
//! owed (every `Query`, `Sync` and `FunctionCall` forwarded owes one).
//!
//! **Session state** a client leaves on a server connection in transaction mode (`SET
//! search_path`, `SET ROLE`, `set_config(…, false)`, `LISTEN`, temporary tables …) is noted
//! from the SQL text of its `Query` and `Parse` messages (and each `Bind` of a named
//! statement, which may run on another connection than its `Parse`) and from `ParameterStatus`
//! of parameters that are not tracked; when the transaction ends the connection is reset
//! (`DISCARD ALL`) or closed instead of going straight back to the pool (see
//! [`crate::leftover`]). The tracked parameters follow their client instead (see
//! [`crate::params`]).
//!
//! **COPY FROM through the extended protocol.** The server ignores a `Sync` that reaches it
//! in copy-in mode (tokio-postgres sends one right after the `Execute`), so when the client
//! ends the copy, the `Sync`s it sent since that `Execute` are taken off what is owed;
//! otherwise the session would never look finished and would keep its server connection.
//!
//! **Long messages** (from [`STREAM_FROM`] bytes) are passed on as they arrive rather than
//! held whole, in both directions, so a session's memory stays bounded whatever the size of
//! a query, a bound parameter or a row. The exceptions are what the proxy must read whole:
//! a named `Parse` in transaction mode (kept to re-prepare it elsewhere), and the short
//! messages it inspects.
//!
//! **Per-transaction cost.** The loop below runs a few times per transaction, so what it
//! does each time stays cheap (bench/pooler measures the proxy's CPU per transaction): one
//! stop signal kept across its waits ([`super::io::stop_signal`]), no timer unless the
//! client is idle inside a transaction, and messages passed on by copying them out of the
//! read buffer. With many clients ([`crate::Settings::batch_replies_from`]) a reply waits
//! for the other sessions of the loop's turn before it is written, so that the replies of
//! one turn reach the clients together (bench/pooler at 500 clients, two busy runs: p99
//! 0.83× and 0.84×, tps 0.98× and 1.07×, proxy CPU per transaction 1.03–1.04×).
//!
//! Prepared statements are renamed in [`super::statements`].

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::{Buf as _, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::io::{pass_on, poll_io, stop_signal, Io};
use super::replies::Replies;
use super::statements::{bind_names, Statements};
use super::{acquire_error, fatal};
use crate::leftover::{self, Leftover};
use crate::params;
use crate::pool::{Lease, Pool};
use crate::proto::{self, peek_header, put_message, ProtoError};
use crate::stream::ClientStream;
use crate::{CancelSlot, CancelTarget, PoolMode, Shared};

enum Step {
    Continue,
    Done,
}

pub(super) struct Session {
    pub(super) shared: Arc<Shared>,
    pub(super) pool: Arc<Pool>,
    pub(super) client: ClientStream,
    pub(super) cbuf: BytesMut,
    pub(super) sbuf: BytesMut,
    pub(super) lease: Option<Lease>,
    pub(super) statements: Statements,
    /// What the server owes on the lent connection (see [`super::replies`]).
    pub(super) replies: Replies,
    pub(super) slot: CancelSlot,
    /// A FATAL error from the server was already passed on.
    pub(super) fatal_sent: bool,
    /// Bytes of a long client message still to pass through as they arrive.
    pub(super) client_pass: usize,
    /// The client's values of the tracked parameters (see [`crate::params`]).
    pub(super) wanted: Vec<(String, String)>,
    /// The replies to the proxy's own `SET`s are being hidden (up to their ReadyForQuery).
    pub(super) setting: bool,
    /// Bytes of a long server message still to pass through as they arrive.
    pub(super) server_pass: usize,
    /// The server session's statement-use counter when this client got it: statements used
    /// since may be needed by what is being sent, so they are not closed to make room.
    pub(super) lease_mark: u64,
}

impl Session {
    pub(super) fn new(
        shared: Arc<Shared>,
        pool: Arc<Pool>,
        client: ClientStream,
        slot: CancelSlot,
        wanted: Vec<(String, String)>,
    ) -> Self {
        Self {
            shared,
            pool,
            client,
            cbuf: BytesMut::with_capacity(8192),
            sbuf: BytesMut::with_capacity(8192),
            lease: None,
            statements: Statements::default(),
            replies: Replies::default(),
            slot,
            fatal_sent: false,
            client_pass: 0,
            server_pass: 0,
            wanted,
            setting: false,
            lease_mark: 0,
        }
    }

    /// No reply owed, no transaction open, nothing half-sent: the server session can be
    /// lent to someone else (or left).
    fn between_transactions(&self) -> bool {
        self.replies.settled() && self.client_pass == 0 && !self.setting
    }

    pub(super) fn transaction_mode(&self) -> bool {
        self.shared.settings.mode == PoolMode::Transaction
    }

    pub(super) async fn run(&mut self) -> Result<(), ProtoError> {
        let mut closed = self.pool.closed();
        let mut shutdown = self.shared.shutdown.subscribe();
        let mut stop = stop_signal(&closed, &shutdown);
        let mut to_server = BytesMut::with_capacity(8192);
        let mut to_client = BytesMut::with_capacity(8192);
        let mut ctmp = vec![0u8; 8 * 1024];
        let mut stmp = vec![0u8; 16 * 1024];
        let mut server_unflushed = false;
        loop {
            // Between transactions (session mode keeps its lease then), a shutdown or a
            // closed pool ends the session; a transaction in flight finishes first.
            if self.lease.is_none() || (self.between_transactions() && to_server.is_empty()) {
                let reason = if *shutdown.borrow_and_update() {
                    Some("the pooler is shutting down")
                } else {
                    *closed.borrow_and_update()
                };
                if let Some(reason) = reason {
                    self.bye("57P01", &format!("terminating connection: {reason}"))
                        .await;
                    return Ok(());
                }
            }
            // Queue every whole message the client has sent, and what has arrived of a
            // long one (checking a server connection out first when there is none).
            loop {
                if self.client_pass > 0 {
                    pass_on(&mut self.client_pass, &mut self.cbuf, &mut to_server);
                    if self.client_pass > 0 {
                        break;
                    }
                    continue;
                }
                let Some((tag, len)) = peek_header(&self.cbuf)? else {
                    break;
                };
                let whole = self.cbuf.len() >= len;
                if !whole && (len < STREAM_FROM || !self.streamable(tag)) {
                    break;
                }
                if tag == b'X' {
                    return Ok(());
                }
                if self.lease.is_none() {
                    if let Step::Done = self.attach().await {
                        return Ok(());
                    }
                    self.sync_params(&mut to_server);
                }
                if whole {
                    self.forward(tag, len, &mut to_server);
                } else {
                    self.forward_head(tag, len, &mut to_server);
                }
            }

            let between = self.between_transactions() && to_server.is_empty();
            // A client idle inside a transaction holds a server connection others may need.
            let idle_timeout = self.shared.settings.idle_transaction_timeout;
            let idle_in_transaction = self.replies.idle_in_transaction()
                && to_server.is_empty()
                && self.client_pass == 0
                && !idle_timeout.is_zero();
            let Some(lease) = self.lease.as_mut() else {
                to_server.clear();
                tokio::select! {
                    r = self.client.read_buf(&mut self.cbuf) => {
                        if !matches!(r, Ok(n) if n > 0) {
                            return Ok(());
                        }
                    }
                    () = &mut stop => stop = stop_signal(&closed, &shutdown),
                }
                continue;
            };
            let server = &mut lease.conn.stream;
            let client = &mut self.client;
            let queued = &mut to_server;
            let unflushed = &mut server_unflushed;
            let io = std::future::poll_fn(|cx| {
                poll_io(cx, client, server, queued, unflushed, &mut ctmp, &mut stmp)
            });
            // The timer is made only when the branch is enabled: a disabled branch's future
            // is still built, and a `sleep` reads the clock and finds the timer wheel.
            let idle = async { tokio::time::sleep(idle_timeout).await };
            let event = tokio::select! {
                () = &mut stop, if between => {
                    stop = stop_signal(&closed, &shutdown);
                    continue;
                }
                e = io => e,
                () = idle, if idle_in_transaction => Io::IdleInTransaction,
            };
            match event {
                Io::IdleInTransaction => {
                    // As PostgreSQL's idle_in_transaction_session_timeout says it; the server
                    // connection, mid-transaction, is closed rather than reused.
                    self.bye(
                        "25P03",
                        "terminating connection due to idle-in-transaction timeout",
                    )
                    .await;
                    return Ok(());
                }
                Io::ClientData(n) => self.cbuf.extend_from_slice(&ctmp[..n]),
                Io::ClientGone => return Ok(()),
                Io::ServerGone => {
                    self.server_lost().await;
                    return Ok(());
                }
                Io::ServerData(n) => {
                    self.sbuf.extend_from_slice(&stmp[..n]);
                    let release = self.take_server_messages(&mut to_client)?;
                    // The transaction is over once its last reply is in hand: the server
                    // connection goes back before the client write, which may wait on a
                    // slow client, so a waiting client can start on it meanwhile.
                    if release && to_server.is_empty() && !self.fatal_sent {
                        self.release();
                        server_unflushed = false;
                    }
                    if !to_client.is_empty() {
                        if self.shared.active_clients.load(Ordering::Relaxed)
                            >= self.shared.settings.batch_replies_from
                        {
                            // Back in the loop's queue, behind the sessions it woke with
                            // this one (the server connection is already given back).
                            tokio::task::yield_now().await;
                        }
                        if self.client.write_all(&to_client).await.is_err()
                            || self.client.flush().await.is_err()
                        {
                            return Ok(());
                        }
                        to_client.clear();
                    }
                    if self.fatal_sent {
                        self.drop_lease();
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Checks a server connection out for the client.
    async fn attach(&mut self) -> Step {
        match self.pool.acquire(&self.shared).await {
            Ok(lease) => {
                if let Ok(mut slot) = self.slot.lock() {
                    *slot = Some(CancelTarget {
                        target: self.pool.target.clone(),
                        pid: lease.conn.pid,
                        secret: lease.conn.secret,
                    });
                }
                self.lease_mark = lease.conn.prepared.now();
                self.lease = Some(lease);
                self.replies.attached();
                Step::Continue
            }
            Err(e) => {
                let (code, msg) = acquire_error(&e);
                self.bye(&code, &msg).await;
                Step::Done
            }
        }
    }

    /// Gives the server session the client's values of the tracked parameters, with one
    /// `SET` query queued first whose replies are hidden.
    fn sync_params(&mut self, out: &mut BytesMut) {
        let Some(lease) = self.lease.as_ref() else {
            return;
        };
        if let Some(q) = params::sync_query(&self.wanted, &lease.conn.current) {
            let mut body = q.into_bytes();
            body.push(0);
            put_message(out, b'Q', &body);
            self.setting = true;
        }
    }

    /// A `ParameterStatus` from the server: the session's value now, and the client's.
    fn note_status(&mut self, body: &[u8]) {
        let Some((name, value)) = params::parse_status(body) else {
            return;
        };
        if let Some(l) = self.lease.as_mut() {
            params::set(&mut l.conn.current, &name, &value);
        }
        if params::tracked(&name).is_some() {
            params::set(&mut self.wanted, &name, &value);
        } else {
            // A reported parameter that does not follow its client (`is_superuser` after a
            // `SET ROLE` in a function, say) changed: whatever changed it, reset.
            self.note_leftover(Leftover::Resettable);
        }
    }

    fn clear_slot(&self) {
        if let Ok(mut slot) = self.slot.lock() {
            *slot = None;
        }
    }

    /// The transaction is over: the server connection goes back (reset or closed first
    /// when the client left session state on it).
    fn release(&mut self) {
        self.clear_slot();
        if let Some(lease) = self.lease.take() {
            self.pool.give_back(lease);
        }
    }

    /// Notes on the server connection what a client message may leave on its session.
    pub(super) fn note_leftover(&mut self, leftover: Leftover) {
        if let Some(l) = self.lease.as_mut() {
            l.conn.note_leftover(leftover);
        }
    }

    fn drop_lease(&mut self) {
        self.clear_slot();
        if let Some(lease) = self.lease.take() {
            self.pool.release(lease, false);
        }
    }

    async fn bye(&mut self, code: &str, message: &str) {
        self.drop_lease();
        fatal(&mut self.client, code, message).await;
    }

    async fn server_lost(&mut self) {
        self.drop_lease();
        if !self.fatal_sent {
            fatal(
                &mut self.client,
                "08006",
                "server connection lost; the transaction was aborted",
            )
            .await;
        }
    }

    /// When the client leaves: an idle server connection goes back to the pool (after
    /// `DISCARD ALL` in session mode, and in transaction mode when the client left session
    /// state on it), one in the middle of something, or with state `DISCARD ALL` does not
    /// undo, is closed.
    pub(super) async fn finish(&mut self) {
        let Some(mut lease) = self.lease.take() else {
            return;
        };
        self.clear_slot();
        if !self.between_transactions() {
            self.pool.release(lease, false);
            return;
        }
        if self.transaction_mode() {
            self.pool.give_back(lease);
            return;
        }
        let ok = lease.conn.leftover < Leftover::Permanent && lease.conn.reset().await;
        self.pool.release(lease, ok);
    }

    /// Whether the long client message at the head of `cbuf` can be passed on before all of
    /// it has arrived: not what transaction mode must read whole (a named `Parse`, and
    /// `Describe`/`Close`, which are short), and a `Bind` only once its names are in.
    fn streamable(&self, tag: u8) -> bool {
        if !self.transaction_mode() {
            return true;
        }
        let body = &self.cbuf[5..];
        match tag {
            b'P' => body.first() == Some(&0),
            b'B' => bind_names(&self.cbuf).is_some(),
            b'D' | b'C' => false,
            _ => true,
        }
    }

    /// Starts passing a long client message through: the head is queued now (a `Bind`'s
    /// renamed), the rest as it arrives.
    fn forward_head(&mut self, tag: u8, len: usize, out: &mut BytesMut) {
        self.replies.sent(tag);
        // SQL text too long to read whole before passing it on: assumed to change session
        // state (a reset after the transaction costs one round trip).
        if matches!(tag, b'Q' | b'P' | b'F') {
            self.note_leftover(Leftover::Resettable);
        }
        let mut rest = len;
        if tag == b'B' && self.transaction_mode() {
            if let Some(consumed) = self.bind_head(len, out) {
                let _ = self.cbuf.split_to(consumed);
                rest = len - consumed;
            }
        }
        self.client_pass = rest;
    }

    /// Appends the client message at the head of `cbuf` (`len` bytes, all there) to what
    /// goes to the server, renaming prepared statements in transaction mode.
    fn forward(&mut self, tag: u8, len: usize, out: &mut BytesMut) {
        self.replies.sent(tag);
        let leftover = leftover_of(tag, &self.cbuf[..len]);
        self.note_leftover(leftover);
        if self.transaction_mode() && matches!(tag, b'P' | b'B' | b'D' | b'C') {
            let msg = self.cbuf.split_to(len);
            match tag {
                b'P' => self.forward_parse(msg, leftover, out),
                b'B' => self.forward_bind(msg, out),
                _ => self.forward_describe_or_close(tag, msg, out),
            }
            return;
        }
        // Passed on as it is: copied out and skipped (see `take_server_messages`).
        out.extend_from_slice(&self.cbuf[..len]);
        self.cbuf.advance(len);
    }

    /// Takes the server's whole messages, hiding the replies to the proxy's own messages;
    /// returns whether the server connection can be released now.
    fn take_server_messages(&mut self, out: &mut BytesMut) -> Result<bool, ProtoError> {
        let mut release = false;
        loop {
            if self.server_pass > 0 {
                pass_on(&mut self.server_pass, &mut self.sbuf, out);
                if self.server_pass > 0 {
                    break;
                }
                continue;
            }
            let Some((tag, len)) = peek_header(&self.sbuf)? else {
                break;
            };
            if self.sbuf.len() < len {
                // Rows, copy data and the like go on as they arrive; what the proxy reads
                // (below) is short.
                if !self.setting
                    && len >= STREAM_FROM
                    && !matches!(tag, b'1' | b'3' | b'Z' | b'C' | b'E' | b'S')
                {
                    self.server_pass = len;
                    continue;
                }
                break;
            }
            if tag == b'S' {
                let body = self.sbuf[5..len].to_vec();
                self.note_status(&body);
            }
            if self.setting {
                // Replies to the proxy's own SETs: they come before any the client is owed.
                match tag {
                    b'E' => {
                        let fields = proto::error_fields(&self.sbuf[5..len]);
                        tracing::warn!(?fields, "pooler: a session parameter could not be set");
                        // Do not try again with every transaction.
                        if let Some(l) = self.lease.as_ref() {
                            self.wanted.clone_from(&l.conn.current);
                            self.wanted.retain(|(k, _)| params::tracked(k).is_some());
                        }
                    }
                    b'Z' => self.setting = false,
                    _ => {}
                }
                self.sbuf.advance(len);
                continue;
            }
            match tag {
                b'1' | b'3' if self.replies.hides(tag) => {
                    self.sbuf.advance(len);
                    continue;
                }
                b'G' => self.replies.copy_in(),
                b'Z' => {
                    let status = self.sbuf.get(5).copied().unwrap_or(b'I');
                    let idle = self.replies.ready(status);
                    if status == b'I' {
                        self.pool
                            .counters
                            .transactions
                            .fetch_add(1, Ordering::Relaxed);
                    }
                    if idle && self.client_pass == 0 && self.transaction_mode() {
                        release = true;
                    }
                }
                b'C' => {
                    self.pool
                        .counters
                        .statements
                        .fetch_add(1, Ordering::Relaxed);
                    let tag_text = &self.sbuf[5..len];
                    if tag_text.starts_with(b"DISCARD ALL")
                        || tag_text.starts_with(b"DEALLOCATE ALL")
                    {
                        if let Some(l) = self.lease.as_mut() {
                            l.conn.prepared.clear();
                        }
                    }
                }
                b'E' => {
                    let fields = proto::error_fields(&self.sbuf[5..len]);
                    if fields
                        .iter()
                        .any(|(k, v)| *k == b'S' && (v == "FATAL" || v == "PANIC"))
                    {
                        self.fatal_sent = true;
                    }
                    // Statements of this batch may not exist on the server.
                    let names = self.replies.failed();
                    if let Some(l) = self.lease.as_mut() {
                        for n in names {
                            l.conn.prepared.remove(&n);
                        }
                    }
                }
                _ => {}
            }
            // Copied out and skipped rather than split off: a split shares the buffer
            // (reference counts taken and dropped for every message).
            out.extend_from_slice(&self.sbuf[..len]);
            self.sbuf.advance(len);
        }
        Ok(release)
    }
}

/// Messages at least this long are passed through as they arrive instead of whole.
pub(super) const STREAM_FROM: usize = 64 * 1024;

/// What a client message may leave on the server session: the SQL text of a `Query` or a
/// `Parse` read by [`leftover::classify`]; a `FunctionCall` (by OID, unread) is assumed to.
fn leftover_of(tag: u8, msg: &[u8]) -> Leftover {
    let body = msg.get(5..).unwrap_or_default();
    match tag {
        b'Q' => leftover::classify(body.strip_suffix(&[0]).unwrap_or(body)),
        b'P' => proto::split_cstr(body)
            .and_then(|(_, rest)| proto::split_cstr(rest))
            .map_or(Leftover::Resettable, |(query, _)| leftover::classify(query)),
        b'F' => Leftover::Resettable,
        _ => Leftover::None,
    }
}
