//! The byte streams the proxy speaks over: a client's TCP connection (plain or TLS) and a
//! backend connection (TCP, TLS over TCP, or a Unix socket), and the cheap look at an idle
//! backend connection a pool checkout takes.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};

macro_rules! delegate_io {
    ($ty:ident { $($variant:ident),* }) => {
        impl AsyncRead for $ty {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    $($ty::$variant(s) => Pin::new(s).poll_read(cx, buf),)*
                }
            }
        }

        impl AsyncWrite for $ty {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                match self.get_mut() {
                    $($ty::$variant(s) => Pin::new(s).poll_write(cx, buf),)*
                }
            }

            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    $($ty::$variant(s) => Pin::new(s).poll_flush(cx),)*
                }
            }

            fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    $($ty::$variant(s) => Pin::new(s).poll_shutdown(cx),)*
                }
            }

            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[io::IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                match self.get_mut() {
                    $($ty::$variant(s) => Pin::new(s).poll_write_vectored(cx, bufs),)*
                }
            }

            fn is_write_vectored(&self) -> bool {
                match self {
                    $($ty::$variant(s) => s.is_write_vectored(),)*
                }
            }
        }
    };
}

/// A client connection.
pub enum ClientStream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

delegate_io!(ClientStream { Plain, Tls });

impl ClientStream {
    pub fn is_tls(&self) -> bool {
        matches!(self, Self::Tls(_))
    }
}

/// A connection to a PostgreSQL server.
pub enum BackendStream {
    Tcp(TcpStream),
    Unix(UnixStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

delegate_io!(BackendStream { Tcp, Unix, Tls });

impl BackendStream {
    /// Whether nothing (no byte, no end of stream) waits to be read, without waiting. A
    /// plain socket is asked through its readiness, which costs no system call while the
    /// event loop has not seen it readable and registers no waker (a pool checkout asks
    /// this of every idle connection it lends); over TLS a read is tried.
    pub fn nothing_to_read(&mut self) -> bool {
        let mut b = [0u8; 64];
        let idle =
            |r: io::Result<usize>| matches!(r, Err(e) if e.kind() == io::ErrorKind::WouldBlock);
        match self {
            Self::Tcp(s) => idle(s.try_read(&mut b)),
            Self::Unix(s) => idle(s.try_read(&mut b)),
            Self::Tls(s) => {
                use futures::FutureExt as _;
                use tokio::io::AsyncReadExt as _;
                s.read(&mut b).now_or_never().is_none()
            }
        }
    }

    /// Tells the server the session ends (`Terminate`), without waiting: a plain socket
    /// takes the 5 bytes at once or not at all. Over TLS the connection is just closed.
    pub fn terminate_now(&self) {
        const TERMINATE: &[u8] = &[b'X', 0, 0, 0, 4];
        match self {
            Self::Tcp(s) => {
                let _ = s.try_write(TERMINATE);
            }
            Self::Unix(s) => {
                let _ = s.try_write(TERMINATE);
            }
            Self::Tls(_) => {}
        }
    }
}
