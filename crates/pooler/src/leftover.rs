//! What a client's SQL may leave behind on a server session after its transaction, so that
//! transaction pooling can clean it up before the next client gets the session.
//!
//! In transaction mode one server session runs the transactions of many clients. Session
//! state a client changes outside a transaction, or inside one without `LOCAL` (`SET
//! search_path`, `SET ROLE`, `SET statement_timeout`, `set_config(…, false)`, `LISTEN`,
//! `PREPARE`, a temporary table, a `WITH HOLD` cursor, a session advisory lock …), would
//! otherwise reach whoever runs next on that session. The proxy reads the text of every
//! `Query` and `Parse` a client sends (see [`classify`]) and keeps the worst verdict on the
//! server connection; when the connection goes back to the pool it is reused as is
//! ([`Leftover::None`]), reset with `DISCARD ALL` first ([`Leftover::Resettable`]), or closed
//! ([`Leftover::Permanent`]).
//!
//! The reported parameters the proxy tracks per client ([`crate::params::TRACKED`]:
//! `TimeZone`, `DateStyle`, `application_name` …) are not leftovers: they follow their
//! client and cost no reset. Transaction-scoped changes (`SET LOCAL`, `set_config(…, true)`,
//! `SET TRANSACTION`) end with their transaction and are not leftovers either.
//!
//! The reading is lexical (comments, quoted strings and identifiers, dollar quotes and `E''`
//! escapes are honoured) and errs on the side of a reset. What it cannot see: session state
//! changed from inside a function or procedure body the client calls (`SELECT f()` where
//! `f` runs `SET` or `set_config(…, false)`); any change of a reported parameter the proxy
//! does not track is still caught from the server's `ParameterStatus`.

use crate::params;

/// What a statement may leave on the server session beyond its transaction, worst last.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Leftover {
    /// Nothing (or only tracked parameters, which follow their client).
    #[default]
    None,
    /// State `DISCARD ALL` undoes: settings and the role (back to the login role's
    /// defaults), SQL prepared statements, cursors, `LISTEN`s, session advisory locks,
    /// temporary tables, cached plans and sequence state.
    Resettable,
    /// State `DISCARD ALL` does not undo: a custom variable (`a.b`) stays defined (with an
    /// empty value), a `LOAD`ed library stays loaded, a `dblink` connection stays open. The
    /// server connection is closed instead of reused.
    Permanent,
}

/// The leftover of one message's SQL text (a `Query` may hold several statements).
pub fn classify(sql: &[u8]) -> Leftover {
    let mut worst = functions(sql);
    let mut lexer = Lexer { s: sql, i: 0 };
    let mut stmt = Statement::default();
    while let Some(tok) = lexer.next_token() {
        if tok == Tok::Semicolon {
            worst = worst.max(stmt.verdict());
            stmt = Statement::default();
        } else {
            stmt.push(tok);
        }
    }
    worst.max(stmt.verdict())
}

/// Calls of session-changing functions anywhere in the text (also inside strings: a `DO`
/// body or an `EXECUTE` of a literal). Each name has an underscore: only the text around
/// the (few) underscores is compared.
fn functions(sql: &[u8]) -> Leftover {
    // (name, position of its underscore, what a call leaves). pg_advisory_lock(_shared) and
    // pg_try_advisory_lock(_shared) hold their lock past the transaction; the _xact_ ones do
    // not and are not matched.
    const NAMES: [(&[u8], usize, Leftover); 3] = [
        (b"set_config", 3, Leftover::Permanent),
        (b"dblink_connect", 6, Leftover::Permanent),
        (b"advisory_lock", 8, Leftover::Resettable),
    ];
    let mut worst = Leftover::None;
    let underscores = sql
        .iter()
        .enumerate()
        .filter(|(_, c)| **c == b'_')
        .map(|(i, _)| i);
    for at in underscores {
        for (name, offset, leftover) in NAMES {
            let Some(start) = at.checked_sub(offset) else {
                continue;
            };
            let Some(found) = sql.get(start..start + name.len()) else {
                continue;
            };
            if !found.eq_ignore_ascii_case(name) {
                continue;
            }
            let local = name == b"set_config" && last_argument_is_true(&sql[start + name.len()..]);
            if !local {
                worst = worst.max(leftover);
            }
        }
    }
    worst
}

/// Whether the argument list starting at `rest` (`(…)` after `set_config`) ends with a
/// true `is_local` (`true`, `'t'`, `'on'` …), making the change transaction-scoped.
fn last_argument_is_true(rest: &[u8]) -> bool {
    let rest = rest.trim_ascii_start();
    let Some(args) = rest.strip_prefix(b"(") else {
        return false;
    };
    let (mut depth, mut quote, mut last_start) = (0usize, None::<u8>, 0usize);
    for (i, &c) in args.iter().enumerate() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, b'\'' | b'"') => quote = Some(c),
            (None, b'(') => depth += 1,
            (None, b',') if depth == 0 => last_start = i + 1,
            (None, b')') if depth == 0 => {
                let arg = args[last_start..i].trim_ascii();
                let arg = arg.split(|b| *b == b':').next().unwrap_or(arg).trim_ascii();
                let arg = arg
                    .strip_prefix(b"'")
                    .and_then(|a| a.strip_suffix(b"'"))
                    .unwrap_or(arg);
                return [&b"true"[..], b"t", b"on", b"yes", b"y", b"1"]
                    .iter()
                    .any(|t| arg.eq_ignore_ascii_case(t));
            }
            (None, b')') => depth -= 1,
            _ => {}
        }
    }
    false
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok<'a> {
    /// A keyword or identifier (a quoted one without its quotes), as written: compared
    /// case-insensitively, as PostgreSQL compares keywords and setting names.
    Word(&'a [u8]),
    Dot,
    Semicolon,
    /// Anything else: literals, numbers, operators, parameters.
    Other,
}

/// The first words of a statement, and the few facts about the rest that matter.
#[derive(Debug)]
struct Statement<'a> {
    head: [Tok<'a>; HEAD],
    /// Tokens in `head`.
    len: usize,
    /// `WITH HOLD` (a cursor that outlives its transaction).
    hold: bool,
    /// `… INTO TEMP …` / `… INTO pg_temp.…` (`SELECT INTO` a temporary table).
    into_temp: bool,
    /// `TEMP`, `TEMPORARY` or `pg_temp` anywhere (for `CREATE`).
    temp_word: bool,
    after_into: bool,
}

const HEAD: usize = 6;

impl Default for Statement<'_> {
    fn default() -> Self {
        Self {
            head: [Tok::Other; HEAD],
            len: 0,
            hold: false,
            into_temp: false,
            temp_word: false,
            after_into: false,
        }
    }
}

fn is_temp(w: &[u8]) -> bool {
    [&b"temp"[..], b"temporary", b"pg_temp"]
        .iter()
        .any(|t| w.eq_ignore_ascii_case(t))
}

/// A word lowercased on the stack (`?` when longer than any name looked for).
struct Lower {
    buf: [u8; 32],
    len: usize,
}

impl Lower {
    fn of(w: &[u8]) -> Self {
        let mut buf = [0u8; 32];
        let len = if w.len() <= buf.len() {
            buf[..w.len()].copy_from_slice(w);
            buf[..w.len()].make_ascii_lowercase();
            w.len()
        } else {
            buf[0] = b'?';
            1
        };
        Self { buf, len }
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("?")
    }
}

impl<'a> Statement<'a> {
    fn push(&mut self, tok: Tok<'a>) {
        match tok {
            // Only words of these lengths matter past the head: hold, into, temp, pg_temp,
            // temporary.
            Tok::Word(w) if matches!(w.len(), 4 | 7 | 9) => {
                self.hold |= w.eq_ignore_ascii_case(b"hold");
                let temp = is_temp(w);
                self.temp_word |= temp;
                self.into_temp |= self.after_into && temp;
                self.after_into = w.eq_ignore_ascii_case(b"into");
            }
            _ => self.after_into = false,
        }
        if self.len < HEAD {
            self.head[self.len] = tok;
            self.len += 1;
        }
    }

    /// The word at `i` of the statement's head, lowercased (empty when it is not a word).
    fn word(&self, i: usize) -> Lower {
        match self.head.get(i) {
            Some(Tok::Word(w)) if i < self.len => Lower::of(w),
            _ => Lower::of(b""),
        }
    }

    /// A setting's name at `i`: custom (`a.b`) is permanent, tracked costs nothing, any other
    /// is reset.
    fn setting_at(&self, i: usize) -> Leftover {
        if i + 1 < self.len && self.head[i + 1] == Tok::Dot {
            Leftover::Permanent
        } else if params::tracked(self.word(i).as_str()).is_some() {
            Leftover::None
        } else {
            Leftover::Resettable
        }
    }

    fn verdict(&self) -> Leftover {
        match self.word(0).as_str() {
            "set" => {
                let i = usize::from(self.word(1).as_str() == "session");
                match self.word(1 + i).as_str() {
                    "local" if i == 0 => Leftover::None,
                    "transaction" | "constraints" if i == 0 => Leftover::None,
                    // TimeZone and client_encoding, both tracked.
                    "time" if self.word(2 + i).as_str() == "zone" => Leftover::None,
                    "names" => Leftover::None,
                    "" => Leftover::Resettable,
                    "role" | "authorization" | "characteristics" => Leftover::Resettable,
                    _ => self.setting_at(1 + i),
                }
            }
            "reset" => match self.word(1).as_str() {
                "all" | "role" | "session" | "" => Leftover::Resettable,
                _ => self.setting_at(1),
            },
            "listen" | "prepare" | "do" => Leftover::Resettable,
            "declare" if self.hold => Leftover::Resettable,
            "create" if self.temp_word => Leftover::Resettable,
            "load" => Leftover::Permanent,
            _ if self.into_temp => Leftover::Resettable,
            _ => Leftover::None,
        }
    }
}

struct Lexer<'a> {
    s: &'a [u8],
    i: usize,
}

fn ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c >= 0x80
}

fn ident_char(c: u8) -> bool {
    ident_start(c) || c.is_ascii_digit() || c == b'$'
}

impl<'a> Lexer<'a> {
    fn peek(&self, at: usize) -> Option<u8> {
        self.s.get(self.i + at).copied()
    }

    fn next_token(&mut self) -> Option<Tok<'a>> {
        loop {
            let c = self.peek(0)?;
            match c {
                _ if c.is_ascii_whitespace() => self.i += 1,
                b'-' if self.peek(1) == Some(b'-') => {
                    while self.peek(0).is_some_and(|c| c != b'\n') {
                        self.i += 1;
                    }
                }
                b'/' if self.peek(1) == Some(b'*') => self.block_comment(),
                b';' => {
                    self.i += 1;
                    return Some(Tok::Semicolon);
                }
                b'.' => {
                    self.i += 1;
                    return Some(Tok::Dot);
                }
                b'\'' => {
                    self.string(false);
                    return Some(Tok::Other);
                }
                b'"' => return Some(Tok::Word(self.quoted_identifier())),
                b'$' if self.dollar_quote() => return Some(Tok::Other),
                _ if ident_start(c) => {
                    let start = self.i;
                    while self.peek(0).is_some_and(ident_char) {
                        self.i += 1;
                    }
                    let s: &'a [u8] = self.s;
                    let word = &s[start..self.i];
                    // E'…' takes backslash escapes; U&'…', B'…', X'…' are plain strings.
                    if self.peek(0) == Some(b'\'') {
                        self.string(word.eq_ignore_ascii_case(b"e"));
                        return Some(Tok::Other);
                    }
                    return Some(Tok::Word(word));
                }
                _ => {
                    // An operator or a number: one token (a run of digits at once).
                    self.i += 1;
                    while self.peek(0).is_some_and(|c| c.is_ascii_digit()) {
                        self.i += 1;
                    }
                    return Some(Tok::Other);
                }
            }
        }
    }

    /// `/* … */`, nested as PostgreSQL nests them.
    fn block_comment(&mut self) {
        let mut depth = 0usize;
        while let Some(c) = self.peek(0) {
            if c == b'/' && self.peek(1) == Some(b'*') {
                depth += 1;
                self.i += 2;
            } else if c == b'*' && self.peek(1) == Some(b'/') {
                self.i += 2;
                depth -= 1;
                if depth == 0 {
                    return;
                }
            } else {
                self.i += 1;
            }
        }
    }

    /// A `'…'` string (at the opening quote); `''` is a quote, and with `escapes` so is `\'`.
    fn string(&mut self, escapes: bool) {
        self.i += 1;
        while let Some(c) = self.peek(0) {
            self.i += 1;
            if escapes && c == b'\\' {
                self.i += 1;
            } else if c == b'\'' {
                if self.peek(0) == Some(b'\'') {
                    self.i += 1;
                } else {
                    return;
                }
            }
        }
    }

    /// A `"…"` identifier (at the opening quote), without its quotes (a `""` inside stays
    /// doubled: no name the proxy looks for has one).
    fn quoted_identifier(&mut self) -> &'a [u8] {
        self.i += 1;
        let s: &'a [u8] = self.s;
        let start = self.i;
        while let Some(c) = self.peek(0) {
            if c == b'"' {
                if self.peek(1) == Some(b'"') {
                    self.i += 2;
                    continue;
                }
                let word = &s[start..self.i];
                self.i += 1;
                return word;
            }
            self.i += 1;
        }
        &s[start..]
    }

    /// A `$tag$ … $tag$` string (at the first `$`), skipped; `false` (nothing consumed) when
    /// the `$` starts something else (a parameter such as `$1`).
    fn dollar_quote(&mut self) -> bool {
        let rest = &self.s[self.i + 1..];
        let tag_len = rest
            .iter()
            .take_while(|c| ident_char(**c) && **c != b'$')
            .count();
        if rest.get(tag_len) != Some(&b'$') || rest.first().is_some_and(u8::is_ascii_digit) {
            return false;
        }
        let delimiter = &self.s[self.i..self.i + tag_len + 2];
        let body_start = self.i + delimiter.len();
        let end = self.s[body_start..]
            .windows(delimiter.len())
            .position(|w| w == delimiter)
            .map_or(self.s.len(), |p| body_start + p + delimiter.len());
        self.i = end;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Leftover::{None as Clean, Permanent, Resettable};

    #[track_caller]
    fn check(sql: &str, want: Leftover) {
        assert_eq!(classify(sql.as_bytes()), want, "{sql}");
    }

    #[test]
    fn plain_statements_leave_nothing() {
        for sql in [
            "SELECT abalance FROM pgbench_accounts WHERE aid = $1",
            "UPDATE t SET search_path = 1 WHERE id = 2",
            "INSERT INTO t (temp) VALUES ($1) RETURNING temp",
            "SELECT temp FROM weather",
            "BEGIN; SELECT 1; COMMIT",
            "SELECT pg_advisory_xact_lock(1)",
            "SELECT set_config('request.jwt', $1, true)",
            "select set_config('a.b', '1', 't'::boolean)",
            "DECLARE c CURSOR FOR SELECT 1",
            "SELECT 'SET ROLE x'",
            "-- SET ROLE x\nSELECT 1",
            "/* SET /* nested */ ROLE x */ SELECT 1",
            "SELECT $$SET ROLE x$$, $tag$ ; SET ROLE y $tag$",
            "SELECT E'\\'; SET ROLE x'",
            "SELECT \"set\" FROM t",
            "",
            ";;",
        ] {
            check(sql, Clean);
        }
    }

    #[test]
    fn tracked_and_transaction_scoped_settings_leave_nothing() {
        for sql in [
            "SET TimeZone = 'UTC'",
            "SET SESSION TIME ZONE 'Asia/Tokyo'",
            "set datestyle to German",
            "SET \"DateStyle\" = 'ISO'",
            "SET application_name = 'x'",
            "SET NAMES 'UTF8'",
            "RESET TimeZone",
            "SET LOCAL search_path = x",
            "SET LOCAL ROLE other",
            "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
            "SET CONSTRAINTS ALL DEFERRED",
            "DISCARD ALL",
            "UNLISTEN *",
        ] {
            check(sql, Clean);
        }
    }

    #[test]
    fn session_state_is_resettable() {
        for sql in [
            "SET search_path = x",
            "set Search_Path to x, public",
            "SET SESSION statement_timeout = '1s'",
            "SET ROLE other",
            "SET ROLE NONE",
            "SET SESSION AUTHORIZATION DEFAULT",
            "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
            "SET SCHEMA 'x'",
            "RESET ALL",
            "RESET ROLE",
            "RESET search_path",
            "LISTEN chan",
            "PREPARE p AS SELECT 1",
            "DECLARE c CURSOR WITH HOLD FOR SELECT 1",
            "CREATE TEMP TABLE t (a int)",
            "create global temporary table t (a int)",
            "CREATE TABLE pg_temp.t (a int)",
            "SELECT 1 INTO TEMP t",
            "SELECT pg_advisory_lock(1)",
            "SELECT pg_try_advisory_lock_shared(1)",
            "DO $$ BEGIN PERFORM 1; END $$",
            "SELECT 1; SET search_path = x; SELECT 2",
            "BEGIN; SET search_path = x; COMMIT",
            "/* c */ SET search_path = x",
        ] {
            check(sql, Resettable);
        }
    }

    #[test]
    fn custom_variables_and_libraries_are_permanent() {
        for sql in [
            "SELECT set_config('a.b', '1', false)",
            "SELECT pg_catalog.set_config('a.b', '1', $3)",
            "SELECT SET_CONFIG('search_path', 'x', (1 = 0))",
            "SET a.b = 1",
            "SET \"my\".\"var\" TO 'x'",
            "RESET a.b",
            "LOAD 'auto_explain'",
            "SELECT dblink_connect('c', 'dbname=x')",
            "DO $$ BEGIN PERFORM set_config('a.b', '1', false); END $$",
            "SET search_path = x; SELECT set_config('a.b', '1', false)",
        ] {
            check(sql, Permanent);
        }
    }

    #[test]
    fn unterminated_text_does_not_panic() {
        for sql in [
            "SELECT '",
            "SELECT $a$ x",
            "/* x",
            "SELECT \"x",
            "SELECT E'\\",
            "$",
        ] {
            let _ = classify(sql.as_bytes());
        }
    }
}
