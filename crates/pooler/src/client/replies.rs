//! The transaction-pooling state machine: what the server still owes the client, and which
//! of its replies answer the proxy's own messages.
//!
//! Every `Query`, `Sync` and `FunctionCall` sent owes one `ReadyForQuery` and closes a
//! *batch*; the proxy's own `Close`/`Parse` (re-preparing a statement) are counted in the
//! batch being written, so that their `CloseComplete`/`ParseComplete` are hidden from the
//! client. An error makes the server skip to the next `Sync`, so the counts are per batch.
//! The server connection may go back to the pool once nothing is owed, the transaction is
//! over and no extended-protocol message waits for its `Sync`.

use std::collections::VecDeque;

/// Replies to hide in one batch, and statements it prepared.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Batch {
    hide_parse: u32,
    hide_close: u32,
    prepared: Vec<String>,
}

/// What the server owes the client on the connection lent to it.
#[derive(Debug, Default)]
pub(super) struct Replies {
    /// Replies (`ReadyForQuery`) the server still owes.
    owed: usize,
    /// Batches whose `ReadyForQuery` has not arrived, oldest first.
    batches: VecDeque<Batch>,
    /// The batch being written (its reply-owing message not sent yet).
    open: Batch,
    /// The last `ReadyForQuery` said a transaction is open.
    in_transaction: bool,
    /// Extended-protocol messages were sent after the last `Sync`: the server session is
    /// in the middle of something even when idle.
    unsynced: bool,
    /// `Sync`s sent since the last `Execute` or `Query`.
    syncs_since_execute: usize,
    /// The server said it is in copy-in mode (`CopyInResponse`) and the client has not
    /// ended the copy yet.
    copy_in: bool,
}

impl Replies {
    /// A server connection was just lent: nothing is owed on it yet.
    pub(super) fn attached(&mut self) {
        self.owed = 0;
        self.unsynced = false;
        self.batches.clear();
        self.open = Batch::default();
    }

    /// No reply owed, no transaction open, no extended-protocol message waiting for its
    /// `Sync`.
    pub(super) fn settled(&self) -> bool {
        self.owed == 0 && !self.in_transaction && !self.unsynced
    }

    /// Inside a transaction with nothing owed: the client is the one to speak.
    pub(super) fn idle_in_transaction(&self) -> bool {
        self.in_transaction && self.owed == 0
    }

    /// Notes a client message sent to the server: what it owes and leaves open.
    pub(super) fn sent(&mut self, tag: u8) {
        match tag {
            b'E' | b'Q' => self.syncs_since_execute = 0,
            b'S' => self.syncs_since_execute += 1,
            // The end of a copy-in: the server ignored the `Sync`s it received in copy-in
            // mode (tokio-postgres sends one right after the `Execute` of a COPY FROM), so
            // they owe nothing, and their batches are one with the next.
            b'c' | b'f' if self.copy_in => {
                self.copy_in = false;
                for _ in 0..std::mem::take(&mut self.syncs_since_execute) {
                    let Some(b) = self.batches.pop_back() else {
                        break;
                    };
                    self.owed = self.owed.saturating_sub(1);
                    self.open.hide_parse += b.hide_parse;
                    self.open.hide_close += b.hide_close;
                    self.open.prepared.extend(b.prepared);
                }
            }
            _ => {}
        }
        match tag {
            // Each owes one ReadyForQuery and ends a batch.
            b'Q' | b'S' | b'F' => {
                self.unsynced = false;
                self.owed += 1;
                self.batches.push_back(std::mem::take(&mut self.open));
            }
            b'P' | b'B' | b'D' | b'E' | b'C' => self.unsynced = true,
            _ => {}
        }
    }

    /// The proxy queued its own `Close` of a statement (its `CloseComplete` to hide).
    pub(super) fn own_close(&mut self) {
        self.open.hide_close += 1;
    }

    /// The proxy queued a `Parse` of `server_name` after its own `Close`; `own` when the
    /// `Parse` is the proxy's too (its `ParseComplete` to hide).
    pub(super) fn prepared(&mut self, server_name: &str, own: bool) {
        self.own_close();
        if own {
            self.open.hide_parse += 1;
        }
        self.open.prepared.push(server_name.to_string());
    }

    /// The batch the server's replies now answer.
    fn answering(&mut self) -> &mut Batch {
        if self.batches.is_empty() {
            &mut self.open
        } else {
            &mut self.batches[0]
        }
    }

    /// A `ParseComplete` (`1`) or `CloseComplete` (`3`) arrived: whether it answers the
    /// proxy's own message (and is to be hidden).
    pub(super) fn hides(&mut self, tag: u8) -> bool {
        let b = self.answering();
        let counter = if tag == b'1' {
            &mut b.hide_parse
        } else {
            &mut b.hide_close
        };
        if *counter > 0 {
            *counter -= 1;
            true
        } else {
            false
        }
    }

    /// An `ErrorResponse` arrived: the statements the batch prepared may not exist on the
    /// server (the server skips to the next `Sync`).
    pub(super) fn failed(&mut self) -> Vec<String> {
        std::mem::take(&mut self.answering().prepared)
    }

    /// The server says it is in copy-in mode (`CopyInResponse`).
    pub(super) fn copy_in(&mut self) {
        self.copy_in = true;
    }

    /// A `ReadyForQuery` with `status` arrived; whether the session is now idle with
    /// nothing owed and nothing half-sent.
    pub(super) fn ready(&mut self, status: u8) -> bool {
        self.copy_in = false;
        self.owed = self.owed.saturating_sub(1);
        self.batches.pop_front();
        self.in_transaction = status != b'I';
        self.owed == 0 && status == b'I' && !self.unsynced
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_simple_query_owes_one_ready_for_query() {
        let mut r = Replies::default();
        assert!(r.settled());
        r.sent(b'Q');
        assert!(!r.settled());
        assert!(r.ready(b'I'));
        assert!(r.settled());
    }

    #[test]
    fn a_transaction_keeps_the_session_until_it_ends() {
        let mut r = Replies::default();
        r.sent(b'Q');
        assert!(!r.ready(b'T'));
        assert!(r.idle_in_transaction());
        assert!(!r.settled());
        r.sent(b'Q');
        assert!(!r.idle_in_transaction());
        assert!(r.ready(b'I'));
        assert!(r.settled());
    }

    #[test]
    fn extended_messages_before_sync_keep_the_session_busy() {
        let mut r = Replies::default();
        for tag in [b'P', b'B', b'D', b'E'] {
            r.sent(tag);
            assert!(!r.settled());
        }
        r.sent(b'S');
        assert!(r.ready(b'I'));
        // A `Parse` sent while a reply is still owed: idle, but not releasable.
        r.sent(b'S');
        r.sent(b'P');
        assert!(!r.ready(b'I'));
    }

    #[test]
    fn pipelined_batches_are_answered_in_order() {
        let mut r = Replies::default();
        r.sent(b'Q');
        r.sent(b'Q');
        assert!(!r.ready(b'I'));
        assert!(r.ready(b'I'));
    }

    #[test]
    fn the_proxys_own_replies_are_hidden_per_batch() {
        let mut r = Replies::default();
        r.prepared("pgf_a", true);
        r.sent(b'B');
        r.sent(b'S');
        r.prepared("pgf_b", false);
        r.sent(b'S');
        // First batch: its own Close and Parse are hidden, nothing more.
        assert!(r.hides(b'3'));
        assert!(r.hides(b'1'));
        assert!(!r.hides(b'1'));
        r.ready(b'I');
        // Second batch: the Close is the proxy's, the Parse the client's.
        assert!(r.hides(b'3'));
        assert!(!r.hides(b'1'));
        assert!(r.ready(b'I'));
    }

    #[test]
    fn an_error_forgets_what_the_batch_prepared() {
        let mut r = Replies::default();
        r.prepared("pgf_a", true);
        r.sent(b'S');
        r.prepared("pgf_b", true);
        r.sent(b'S');
        assert_eq!(r.failed(), vec!["pgf_a".to_string()]);
        assert!(r.failed().is_empty());
        r.ready(b'I');
        assert_eq!(r.failed(), vec!["pgf_b".to_string()]);
    }

    #[test]
    fn syncs_sent_in_copy_in_mode_owe_nothing() {
        let mut r = Replies::default();
        r.sent(b'P');
        r.sent(b'B');
        r.sent(b'E');
        r.sent(b'S');
        r.copy_in();
        r.sent(b'd');
        r.sent(b'c');
        // The `Sync` the server ignored is no longer owed; the next one is.
        assert!(r.settled());
        r.sent(b'S');
        assert!(r.ready(b'I'));
        assert!(r.settled());
    }

    #[test]
    fn a_copy_end_without_copy_in_changes_nothing() {
        let mut r = Replies::default();
        r.sent(b'S');
        r.sent(b'c');
        assert!(!r.settled());
        assert!(r.ready(b'I'));
    }

    #[test]
    fn attaching_starts_afresh() {
        let mut r = Replies::default();
        r.sent(b'P');
        r.sent(b'S');
        r.attached();
        assert!(r.settled());
        assert!(r.failed().is_empty());
    }
}
