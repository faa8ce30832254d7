//! Each rewrite of the messages naming a client's prepared statements, and what it notes on
//! the server session (statements prepared there, replies to hide), with the client's
//! messages built by postgres-protocol.

use bytes::BytesMut;
use postgres_protocol::message::frontend;

use super::*;

/// A server session as a test sees it.
struct Server {
    prepared: PreparedSet,
    replies: Replies,
    max: usize,
    mark: u64,
}

impl Server {
    fn new(max: usize) -> Self {
        Self {
            prepared: PreparedSet::default(),
            replies: Replies::default(),
            max,
            mark: 0,
        }
    }

    fn on(&mut self) -> OnServer<'_> {
        OnServer {
            prepared: &mut self.prepared,
            replies: &mut self.replies,
            max: self.max,
            mark: self.mark,
        }
    }
}

fn parse_msg(name: &str, query: &str) -> BytesMut {
    let mut b = BytesMut::new();
    frontend::parse(name, query, [23], &mut b).unwrap();
    b
}

fn bind_msg(portal: &str, statement: &str, value: &[u8]) -> BytesMut {
    let mut b = BytesMut::new();
    frontend::bind(
        portal,
        statement,
        [1],
        [value],
        |v, buf| {
            buf.extend_from_slice(v);
            Ok(postgres_protocol::IsNull::No)
        },
        [1],
        &mut b,
    )
    .map_err(|_| "bind")
    .unwrap();
    b
}

fn describe_msg(variant: u8, name: &str) -> BytesMut {
    let mut b = BytesMut::new();
    frontend::describe(variant, name, &mut b).unwrap();
    b
}

fn close_msg(variant: u8, name: &str) -> BytesMut {
    let mut b = BytesMut::new();
    frontend::close(variant, name, &mut b).unwrap();
    b
}

/// The messages in `out`: type byte and body.
fn messages(out: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut rest = out;
    let mut v = Vec::new();
    while let Some((tag, len)) = proto::peek_header(rest).unwrap() {
        v.push((tag, rest[5..len].to_vec()));
        rest = &rest[len..];
    }
    assert!(rest.is_empty(), "a partial message");
    v
}

/// The statement name a `Parse` (body) prepares.
fn parsed_name(body: &[u8]) -> String {
    let (name, _) = proto::split_cstr(body).unwrap();
    String::from_utf8(name.to_vec()).unwrap()
}

/// A `Describe`/`Close` body of statement `name`.
fn statement_body(name: &str) -> Vec<u8> {
    let mut b = vec![b'S'];
    b.extend_from_slice(name.as_bytes());
    b.push(0);
    b
}

/// Prepares `name` as `query` through the proxy; its server name.
fn prepare(st: &mut Statements, server: &mut Server, name: &str, query: &str) -> String {
    let mut out = BytesMut::new();
    st.parse(
        &parse_msg(name, query),
        Leftover::None,
        &mut server.on(),
        &mut out,
    );
    let m = messages(&out);
    parsed_name(&m.last().unwrap().1)
}

#[test]
fn a_named_parse_is_renamed_after_a_close_of_its_server_name() {
    let (mut st, mut server) = (Statements::default(), Server::new(10));
    let mut out = BytesMut::new();
    let msg = parse_msg("s1", "SELECT $1");
    st.parse(&msg, Leftover::None, &mut server.on(), &mut out);
    let m = messages(&out);
    assert_eq!(m.len(), 2);
    let server_name = parsed_name(&m[1].1);
    assert!(server_name.starts_with("pgf_") && server_name.len() == SERVER_NAME_LEN);
    assert_eq!(m[0], (b'C', statement_body(&server_name)));
    // The rest of the Parse (query, parameter types) is the client's.
    assert_eq!(m[1].0, b'P');
    assert!(m[1].1.ends_with(&msg[5 + 3..]));
    assert!(server.prepared.touch(&server_name));
    // The Close's reply is the proxy's to hide, the ParseComplete the client's.
    server.replies.sent(b'S');
    assert!(server.replies.hides(b'3'));
    assert!(!server.replies.hides(b'1'));
}

#[test]
fn the_server_name_follows_the_text_and_types_not_the_client_name() {
    let (mut st, mut server) = (Statements::default(), Server::new(10));
    let a = prepare(&mut st, &mut server, "a", "SELECT 1");
    let b = prepare(&mut st, &mut server, "b", "SELECT 1");
    let c = prepare(&mut st, &mut server, "c", "SELECT 2");
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn an_unnamed_parse_passes_unchanged() {
    let (mut st, mut server) = (Statements::default(), Server::new(10));
    let mut out = BytesMut::new();
    let msg = parse_msg("", "SELECT 1");
    st.parse(&msg, Leftover::None, &mut server.on(), &mut out);
    assert_eq!(&out[..], &msg[..]);
    assert!(server.prepared.is_empty());
}

#[test]
fn a_bind_is_renamed_keeping_its_parameters() {
    let (mut st, mut server) = (Statements::default(), Server::new(10));
    let name = prepare(&mut st, &mut server, "s1", "SELECT $1");
    let msg = bind_msg("p1", "s1", b"42");
    let mut out = BytesMut::new();
    let (consumed, leftover) = st
        .bind_head(&msg, msg.len(), &mut server.on(), &mut out)
        .unwrap();
    assert_eq!(consumed, 5 + 3 + 3);
    assert_eq!(leftover, Leftover::None);
    out.extend_from_slice(&msg[consumed..]);
    let m = messages(&out);
    assert_eq!(
        m.len(),
        1,
        "already prepared on this session: only the Bind"
    );
    let mut expected = BytesMut::new();
    frontend::bind(
        "p1",
        &name,
        [1],
        [b"42"],
        |v: &[u8; 2], buf| {
            buf.extend_from_slice(v);
            Ok(postgres_protocol::IsNull::No)
        },
        [1],
        &mut expected,
    )
    .map_err(|_| "bind")
    .unwrap();
    assert_eq!(&out[..], &expected[..]);
}

#[test]
fn a_bind_on_a_session_without_the_statement_prepares_it_hidden() {
    let (mut st, mut first) = (Statements::default(), Server::new(10));
    let name = prepare(&mut st, &mut first, "s1", "SET search_path TO x");
    // Another server connection, later: it has never seen the statement.
    let mut other = Server::new(10);
    let msg = bind_msg("", "s1", b"1");
    let mut out = BytesMut::new();
    let (consumed, _) = st
        .bind_head(&msg, msg.len(), &mut other.on(), &mut out)
        .unwrap();
    out.extend_from_slice(&msg[consumed..]);
    let m = messages(&out);
    let tags: Vec<u8> = m.iter().map(|(t, _)| *t).collect();
    assert_eq!(tags, b"CPB");
    assert_eq!(parsed_name(&m[1].1), name);
    assert!(other.prepared.touch(&name));
    // Both replies to the proxy's Close and Parse are hidden.
    other.replies.sent(b'B');
    other.replies.sent(b'S');
    assert!(other.replies.hides(b'3'));
    assert!(other.replies.hides(b'1'));
    assert!(!other.replies.hides(b'1'));
}

#[test]
fn a_bind_tells_what_its_statement_leaves_on_the_session() {
    let (mut st, mut server) = (Statements::default(), Server::new(10));
    let mut out = BytesMut::new();
    let msg = parse_msg("s1", "SET search_path TO x");
    st.parse(&msg, Leftover::Resettable, &mut server.on(), &mut out);
    let b = bind_msg("", "s1", b"1");
    let (_, leftover) = st
        .bind_head(&b, b.len(), &mut server.on(), &mut BytesMut::new())
        .unwrap();
    assert_eq!(leftover, Leftover::Resettable);
}

#[test]
fn unnamed_and_unknown_statements_are_bound_unchanged() {
    let (st, mut server) = (Statements::default(), Server::new(10));
    for stmt in ["", "never_prepared"] {
        let msg = bind_msg("", stmt, b"1");
        let mut out = BytesMut::new();
        assert!(st
            .bind_head(&msg, msg.len(), &mut server.on(), &mut out)
            .is_none());
        assert!(out.is_empty());
    }
}

#[test]
fn bind_names_wait_for_both_names() {
    let msg = bind_msg("portal", "stmt", b"1");
    assert!(bind_names(&msg[..5 + 7]).is_none());
    assert!(bind_names(&msg[..5 + 7 + 4]).is_none());
    let (portal, stmt, at) = bind_names(&msg[..5 + 7 + 5]).unwrap();
    assert_eq!(
        (portal, stmt, at),
        (&b"portal"[..], &b"stmt"[..], 5 + 7 + 5)
    );
}

#[test]
fn describe_of_a_statement_is_renamed_and_of_a_portal_unchanged() {
    let (mut st, mut server) = (Statements::default(), Server::new(10));
    let name = prepare(&mut st, &mut server, "s1", "SELECT 1");
    let mut out = BytesMut::new();
    st.describe_or_close(b'D', &describe_msg(b'S', "s1"), &mut server.on(), &mut out);
    assert_eq!(messages(&out), [(b'D', statement_body(&name))]);
    for msg in [
        describe_msg(b'P', "s1"),
        describe_msg(b'S', ""),
        describe_msg(b'S', "nope"),
    ] {
        let mut out = BytesMut::new();
        st.describe_or_close(b'D', &msg, &mut server.on(), &mut out);
        assert_eq!(&out[..], &msg[..]);
    }
}

#[test]
fn describe_on_a_session_without_the_statement_prepares_it_first() {
    let (mut st, mut first) = (Statements::default(), Server::new(10));
    let name = prepare(&mut st, &mut first, "s1", "SELECT 1");
    let mut other = Server::new(10);
    let mut out = BytesMut::new();
    st.describe_or_close(b'D', &describe_msg(b'S', "s1"), &mut other.on(), &mut out);
    let tags: Vec<u8> = messages(&out).iter().map(|(t, _)| *t).collect();
    assert_eq!(tags, b"CPD");
    assert!(other.prepared.touch(&name));
}

#[test]
fn close_of_a_statement_is_renamed_and_forgets_it() {
    let (mut st, mut server) = (Statements::default(), Server::new(10));
    let name = prepare(&mut st, &mut server, "s1", "SELECT 1");
    let mut out = BytesMut::new();
    st.describe_or_close(b'C', &close_msg(b'S', "s1"), &mut server.on(), &mut out);
    assert_eq!(messages(&out), [(b'C', statement_body(&name))]);
    assert!(!server.prepared.touch(&name));
    // Forgotten by the proxy too: a second Close, or a Bind, passes unchanged.
    let again = close_msg(b'S', "s1");
    let mut out = BytesMut::new();
    st.describe_or_close(b'C', &again, &mut server.on(), &mut out);
    assert_eq!(&out[..], &again[..]);
    let b = bind_msg("", "s1", b"1");
    assert!(st
        .bind_head(&b, b.len(), &mut server.on(), &mut BytesMut::new())
        .is_none());
}

#[test]
fn the_least_recently_used_statements_are_closed_to_make_room() {
    let (mut st, mut server) = (Statements::default(), Server::new(2));
    let a = prepare(&mut st, &mut server, "a", "SELECT 'a'");
    let b = prepare(&mut st, &mut server, "b", "SELECT 'b'");
    // `a` used again: `b` is now the least recently used.
    let bind = bind_msg("", "a", b"1");
    st.bind_head(&bind, bind.len(), &mut server.on(), &mut BytesMut::new())
        .unwrap();
    server.mark = server.prepared.now();
    server.replies = Replies::default();
    let mut out = BytesMut::new();
    st.parse(
        &parse_msg("c", "SELECT 'c'"),
        Leftover::None,
        &mut server.on(),
        &mut out,
    );
    let m = messages(&out);
    assert_eq!(m[0], (b'C', statement_body(&b)), "b closed first");
    assert_eq!(m.len(), 3);
    assert!(server.prepared.touch(&a));
    assert!(!server.prepared.touch(&b));
    // Its CloseComplete is hidden with the one before the Parse.
    server.replies.sent(b'S');
    assert!(server.replies.hides(b'3') && server.replies.hides(b'3'));
    assert!(!server.replies.hides(b'3'));
}

#[test]
fn statements_used_since_the_client_got_the_session_are_spared() {
    let (mut st, mut server) = (Statements::default(), Server::new(1));
    let a = prepare(&mut st, &mut server, "a", "SELECT 'a'");
    // `a` was used by this client on this session (after the mark): no room is made, the
    // session keeps one more than its cap for now.
    let mut out = BytesMut::new();
    st.parse(
        &parse_msg("b", "SELECT 'b'"),
        Leftover::None,
        &mut server.on(),
        &mut out,
    );
    let tags: Vec<u8> = messages(&out).iter().map(|(t, _)| *t).collect();
    assert_eq!(tags, b"CP");
    assert!(server.prepared.touch(&a));
    assert_eq!(server.prepared.len(), 2);
}
