//! TCP sockets on whichever driver the current shard runs.
//!
//! Both types are poll-based at heart (`poll_*`), so a connection can be driven as one
//! hand-written state machine; the `async` methods and the `futures_io` impls are
//! conveniences over them. A socket belongs to the shard that made it.

use std::cell::RefCell;
use std::future::poll_fn;
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;
use futures_lite::{AsyncRead, AsyncWrite};

use super::{driver, epoll, IoMode};

/// Size of the per-shard buffer reads land in before being copied to a connection's buffer:
/// connections then hold only what they actually received.
const SCRATCH: usize = 64 * 1024;

thread_local! {
    static SCRATCH_BUF: RefCell<Vec<u8>> = RefCell::new(vec![0; SCRATCH]);
}

/// A listening socket bound with `SO_REUSEPORT`, so every shard can bind the same address
/// and the kernel spreads incoming connections over them.
#[derive(Debug)]
pub struct TcpListener(ListenerInner);

#[derive(Debug)]
enum ListenerInner {
    Uring(glommio::net::TcpListener),
    Epoll(epoll::net::Listener),
}

impl TcpListener {
    /// Binds `addr` on this shard's driver.
    pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
        match driver() {
            IoMode::Uring => glommio::net::TcpListener::bind(addr)
                .map(|l| TcpListener(ListenerInner::Uring(l)))
                .map_err(io::Error::from),
            IoMode::EpollEt | IoMode::EpollLt => {
                let sock = socket2::Socket::new(
                    socket2::Domain::for_address(addr),
                    socket2::Type::STREAM.nonblocking().cloexec(),
                    Some(socket2::Protocol::TCP),
                )?;
                sock.set_reuse_address(true)?;
                sock.set_reuse_port(true)?;
                sock.bind(&addr.into())?;
                sock.listen(1024)?;
                Ok(TcpListener(ListenerInner::Epoll(epoll::net::Listener::new(sock.into())?)))
            }
        }
    }

    /// The bound address (with the real port when 0 was asked for).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match &self.0 {
            ListenerInner::Uring(l) => l.local_addr().map_err(io::Error::from),
            ListenerInner::Epoll(l) => l.local_addr(),
        }
    }

    /// Waits for the next connection.
    pub async fn accept(&self) -> io::Result<TcpStream> {
        match &self.0 {
            ListenerInner::Uring(l) => {
                l.accept().await.map(|s| TcpStream(StreamInner::Uring(s))).map_err(io::Error::from)
            }
            ListenerInner::Epoll(l) => poll_fn(|cx| l.poll_accept(cx)).await.map(|s| TcpStream(StreamInner::Epoll(s))),
        }
    }
}

/// A connected TCP stream.
#[derive(Debug)]
pub struct TcpStream(StreamInner);

#[derive(Debug)]
enum StreamInner {
    Uring(glommio::net::TcpStream),
    Epoll(epoll::net::Stream),
}

impl TcpStream {
    /// Connects to `addr`.
    pub async fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
        match driver() {
            IoMode::Uring => glommio::net::TcpStream::connect(addr)
                .await
                .map(|s| TcpStream(StreamInner::Uring(s)))
                .map_err(io::Error::from),
            IoMode::EpollEt | IoMode::EpollLt => {
                epoll::net::Stream::connect(addr).await.map(|s| TcpStream(StreamInner::Epoll(s)))
            }
        }
    }

    /// Sets `TCP_NODELAY`: RPC replies are small and must not wait for Nagle.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        match &self.0 {
            StreamInner::Uring(s) => s.set_nodelay(on).map_err(io::Error::from),
            StreamInner::Epoll(s) => s.std().set_nodelay(on),
        }
    }

    /// Makes closing abortive (`SO_LINGER` 0, an RST): the kernel drops what is still unsent
    /// instead of trickling it to a peer that will not take it. For cutting abusive peers.
    pub fn set_abortive_close(&self) -> io::Result<()> {
        let none = Some(std::time::Duration::ZERO);
        match &self.0 {
            StreamInner::Uring(s) => {
                let raw = std::os::fd::AsRawFd::as_raw_fd(s);
                // glommio's stream exposes only its raw descriptor.
                #[allow(unsafe_code)]
                // SAFETY: `raw` is `s`'s open descriptor and `s` is borrowed for this whole call.
                let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(raw) };
                rustix::net::sockopt::set_socket_linger(fd, none).map_err(io::Error::from)
            }
            StreamInner::Epoll(s) => rustix::net::sockopt::set_socket_linger(s.std(), none).map_err(io::Error::from),
        }
    }

    /// The remote address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        match &self.0 {
            StreamInner::Uring(s) => s.peer_addr().map_err(io::Error::from),
            StreamInner::Epoll(s) => s.std().peer_addr(),
        }
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match &self.0 {
            StreamInner::Uring(s) => s.local_addr().map_err(io::Error::from),
            StreamInner::Epoll(s) => s.std().local_addr(),
        }
    }

    /// Reads what is available into `buf`, at most `max` bytes (edge-triggered epoll drains
    /// the socket up to that; level-triggered and uring read once). `Ok(0)` is end of stream.
    pub fn poll_read_buf(&mut self, cx: &mut Context<'_>, buf: &mut BytesMut, max: usize) -> Poll<io::Result<usize>> {
        SCRATCH_BUF.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            let limit = max.clamp(1, scratch.len());
            let scratch = &mut scratch[..limit];
            match &mut self.0 {
                StreamInner::Uring(s) => match Pin::new(s).poll_read(cx, scratch) {
                    Poll::Ready(Ok(n)) => {
                        buf.extend_from_slice(&scratch[..n]);
                        Poll::Ready(Ok(n))
                    }
                    other => other,
                },
                StreamInner::Epoll(s) => s.poll_read_into(cx, scratch, max, &mut |d| buf.extend_from_slice(d)),
            }
        })
    }

    /// Writes some of `buf`.
    pub fn poll_write_some(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match &mut self.0 {
            StreamInner::Uring(s) => Pin::new(s).poll_write(cx, buf),
            StreamInner::Epoll(s) => s.poll_write(cx, buf),
        }
    }

    /// Tells the driver that no output is queued any more, so it stops watching for
    /// writability (epoll disarms `EPOLLOUT`).
    pub fn write_idle(&mut self) -> io::Result<()> {
        match &mut self.0 {
            StreamInner::Uring(_) => Ok(()),
            StreamInner::Epoll(s) => s.write_idle(),
        }
    }

    /// Reads into `buf`; `Ok(0)` is end of stream.
    pub async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        poll_fn(|cx| Pin::new(&mut *self).poll_read(cx, buf)).await
    }

    /// Appends what is available to `buf` (see [`TcpStream::poll_read_buf`]).
    pub async fn read_buf(&mut self, buf: &mut BytesMut, max: usize) -> io::Result<usize> {
        poll_fn(|cx| self.poll_read_buf(cx, buf, max)).await
    }

    /// Writes all of `buf`.
    pub async fn write_all(&mut self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            let n = poll_fn(|cx| self.poll_write_some(cx, buf)).await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            buf = &buf[n..];
        }
        self.write_idle()
    }

    /// Shuts down one or both directions (a plain syscall on both drivers, so not async).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match &self.0 {
            // glommio's shutdown is a synchronous syscall behind an async signature, so it
            // is ready on its first poll.
            StreamInner::Uring(s) => futures_lite::future::block_on(futures_lite::future::poll_once(s.shutdown(how)))
                .unwrap_or_else(|| Err(glommio::GlommioError::from(io::Error::from(io::ErrorKind::WouldBlock))))
                .map_err(io::Error::from),
            StreamInner::Epoll(s) => s.shutdown(how),
        }
    }
}

impl AsyncRead for TcpStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().0 {
            StreamInner::Uring(s) => Pin::new(s).poll_read(cx, buf),
            StreamInner::Epoll(s) => s.poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for TcpStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.get_mut().poll_write_some(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().0 {
            StreamInner::Uring(s) => Pin::new(s).poll_flush(cx),
            StreamInner::Epoll(s) => Poll::Ready(s.write_idle()),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().0 {
            StreamInner::Uring(s) => Pin::new(s).poll_close(cx),
            StreamInner::Epoll(s) => Poll::Ready(s.shutdown(Shutdown::Write)),
        }
    }
}
