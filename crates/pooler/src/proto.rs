//! Framing of the PostgreSQL v3 wire protocol: the startup packet, reading message headers in
//! a buffer, and building the few messages the proxy writes itself (authentication,
//! parameter status, key data, ready-for-query, errors).

use bytes::{BufMut, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

pub const PROTOCOL_3_0: i32 = 196_608;
pub const SSL_REQUEST: i32 = 80_877_103;
pub const GSSENC_REQUEST: i32 = 80_877_104;
pub const CANCEL_REQUEST: i32 = 80_877_102;

/// Largest startup packet accepted (PostgreSQL's own limit is 10 000 bytes).
const MAX_STARTUP: usize = 10_000;
/// Largest regular message accepted from either side (PostgreSQL caps a field at 1 GB).
pub const MAX_MESSAGE: usize = 1 << 30;

/// The first packet of a connection.
#[derive(Debug)]
pub enum Startup {
    Ssl,
    GssEnc,
    Cancel {
        pid: i32,
        secret: i32,
    },
    Params {
        version: i32,
        params: Vec<(String, String)>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum ProtoError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("malformed message: {0}")]
    Malformed(&'static str),
}

/// Reads one startup-phase packet (no type byte: length, then a code).
pub async fn read_startup<S: AsyncRead + Unpin>(s: &mut S) -> Result<Startup, ProtoError> {
    let len = s.read_i32().await?;
    let len = usize::try_from(len).map_err(|_| ProtoError::Malformed("negative length"))?;
    if !(8..=MAX_STARTUP).contains(&len) {
        return Err(ProtoError::Malformed("startup packet length"));
    }
    let code = s.read_i32().await?;
    let mut body = vec![0u8; len - 8];
    s.read_exact(&mut body).await?;
    match code {
        SSL_REQUEST => Ok(Startup::Ssl),
        GSSENC_REQUEST => Ok(Startup::GssEnc),
        CANCEL_REQUEST => {
            if body.len() != 8 {
                return Err(ProtoError::Malformed("cancel request length"));
            }
            let pid = i32::from_be_bytes([body[0], body[1], body[2], body[3]]);
            let secret = i32::from_be_bytes([body[4], body[5], body[6], body[7]]);
            Ok(Startup::Cancel { pid, secret })
        }
        version => {
            let mut params = Vec::new();
            let mut fields = body.split(|b| *b == 0);
            while let Some(k) = fields.next() {
                if k.is_empty() {
                    break;
                }
                let v = fields
                    .next()
                    .ok_or(ProtoError::Malformed("startup parameter without a value"))?;
                params.push((
                    String::from_utf8_lossy(k).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                ));
            }
            Ok(Startup::Params { version, params })
        }
    }
}

/// The type byte and whole length (type byte included) of the first message in `buf`, once
/// its header has arrived (the message itself may not have).
#[inline]
pub fn peek_header(buf: &[u8]) -> Result<Option<(u8, usize)>, ProtoError> {
    if buf.len() < 5 {
        return Ok(None);
    }
    let len = i32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]);
    let len = usize::try_from(len).map_err(|_| ProtoError::Malformed("negative length"))?;
    if !(4..=MAX_MESSAGE).contains(&len) {
        return Err(ProtoError::Malformed("message length"));
    }
    Ok(Some((buf[0], len + 1)))
}

/// Reads one whole typed message (type, body) during authentication exchanges.
pub async fn read_message<S: AsyncRead + Unpin>(s: &mut S) -> Result<(u8, Vec<u8>), ProtoError> {
    let tag = s.read_u8().await?;
    let len = s.read_i32().await?;
    let len = usize::try_from(len).map_err(|_| ProtoError::Malformed("negative length"))?;
    if !(4..=MAX_STARTUP * 100).contains(&len) {
        return Err(ProtoError::Malformed("message length"));
    }
    let mut body = vec![0u8; len - 4];
    s.read_exact(&mut body).await?;
    Ok((tag, body))
}

/// A startup-phase packet (no type byte): length, `code`, then `body`.
pub fn startup_packet(code: i32, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 8);
    out.extend_from_slice(&len_field(body.len() + 4).to_be_bytes());
    out.extend_from_slice(&code.to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// Appends a message with a type byte.
pub fn put_message(out: &mut BytesMut, tag: u8, body: &[u8]) {
    out.reserve(body.len() + 5);
    out.put_u8(tag);
    out.put_i32(len_field(body.len()));
    out.put_slice(body);
}

fn len_field(body: usize) -> i32 {
    i32::try_from(body + 4).unwrap_or(i32::MAX)
}

pub fn put_cstr(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(s.as_bytes());
    out.push(0);
}

/// `AuthenticationXxx` with a sub-code and payload.
pub fn put_auth(out: &mut BytesMut, code: i32, payload: &[u8]) {
    let mut body = Vec::with_capacity(payload.len() + 4);
    body.extend_from_slice(&code.to_be_bytes());
    body.extend_from_slice(payload);
    put_message(out, b'R', &body);
}

pub fn put_parameter_status(out: &mut BytesMut, name: &str, value: &str) {
    let mut body = Vec::new();
    put_cstr(&mut body, name);
    put_cstr(&mut body, value);
    put_message(out, b'S', &body);
}

pub fn put_backend_key(out: &mut BytesMut, pid: i32, secret: i32) {
    let mut body = Vec::with_capacity(8);
    body.extend_from_slice(&pid.to_be_bytes());
    body.extend_from_slice(&secret.to_be_bytes());
    put_message(out, b'K', &body);
}

pub fn put_ready(out: &mut BytesMut, status: u8) {
    put_message(out, b'Z', &[status]);
}

/// An `ErrorResponse` the way PostgreSQL writes one.
pub fn put_error(out: &mut BytesMut, severity: &str, code: &str, message: &str) {
    let mut body = Vec::new();
    for (field, value) in [
        (b'S', severity),
        (b'V', severity),
        (b'C', code),
        (b'M', message),
    ] {
        body.push(field);
        put_cstr(&mut body, value);
    }
    body.push(0);
    put_message(out, b'E', &body);
}

/// Reads the fields of an `ErrorResponse`/`NoticeResponse` body.
pub fn error_fields(body: &[u8]) -> Vec<(u8, String)> {
    let mut out = Vec::new();
    let mut rest = body;
    while let Some((&field, tail)) = rest.split_first() {
        if field == 0 {
            break;
        }
        let end = tail.iter().position(|b| *b == 0).unwrap_or(tail.len());
        out.push((field, String::from_utf8_lossy(&tail[..end]).into_owned()));
        rest = tail.get(end + 1..).unwrap_or(&[]);
    }
    out
}

/// A null-terminated string at the start of `buf`, and what follows it.
pub fn split_cstr(buf: &[u8]) -> Option<(&[u8], &[u8])> {
    let end = buf.iter().position(|b| *b == 0)?;
    Some((&buf[..end], &buf[end + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_read_once_all_five_bytes_are_in() {
        let mut b = BytesMut::new();
        put_ready(&mut b, b'I');
        assert_eq!(peek_header(&b).unwrap(), Some((b'Z', 6)));
        assert_eq!(peek_header(&b[..5]).unwrap(), Some((b'Z', 6)));
        assert_eq!(peek_header(&b[..4]).unwrap(), None);
        let bad = [b'Z', 0xff, 0xff, 0xff, 0xff];
        assert!(peek_header(&bad).is_err());
    }

    #[test]
    fn error_fields_round_trip() {
        let mut b = BytesMut::new();
        put_error(&mut b, "FATAL", "28P01", "nope");
        let f = error_fields(&b[5..]);
        assert!(f.contains(&(b'C', "28P01".to_string())));
        assert!(f.contains(&(b'M', "nope".to_string())));
    }
}
