//! Non-blocking TCP sockets on the epoll reactor. Each socket lives on the shard that
//! created or accepted it.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::AsFd;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::{reactor, Dir, Reactor, Trigger};

/// A socket registered with this shard's reactor; deregistered on drop.
#[derive(Debug)]
struct Registration {
    reactor: Rc<Reactor>,
    key: u64,
}

impl Registration {
    fn new(fd: &impl AsFd) -> io::Result<Registration> {
        let reactor = reactor();
        let key = reactor.register(fd.as_fd())?;
        Ok(Registration { reactor, key })
    }

    /// Runs `op` when the socket is believed ready for `dir`, following the trigger mode:
    /// edge mode keeps readiness until `EAGAIN`; level mode spends one report per read.
    fn poll_io<T>(
        &self,
        cx: &Context<'_>,
        dir: Dir,
        mut op: impl FnMut() -> io::Result<T>,
        on_block: impl Fn() -> io::Result<()>,
    ) -> Poll<io::Result<T>> {
        loop {
            if !self.reactor.poll_ready(self.key, dir, cx) {
                return Poll::Pending;
            }
            if dir == Dir::Read && self.reactor.trigger() == Trigger::Level {
                self.reactor.clear_ready(self.key, dir);
            }
            match op() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.reactor.clear_ready(self.key, dir);
                    on_block()?;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                r => return Poll::Ready(r),
            }
        }
    }
}

/// A listening socket.
#[derive(Debug)]
pub(crate) struct Listener {
    sock: std::net::TcpListener,
    reg: Registration,
}

impl Listener {
    /// Wraps a bound, listening, non-blocking socket.
    pub(crate) fn new(sock: std::net::TcpListener) -> io::Result<Listener> {
        let reg = Registration::new(&sock)?;
        Ok(Listener { sock, reg })
    }

    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.local_addr()
    }

    pub(crate) fn poll_accept(&self, cx: &Context<'_>) -> Poll<io::Result<Stream>> {
        let r = self.reg.poll_io(
            cx,
            Dir::Read,
            || {
                let fd = rustix::net::accept_with(
                    &self.sock,
                    rustix::net::SocketFlags::NONBLOCK | rustix::net::SocketFlags::CLOEXEC,
                )?;
                Ok(std::net::TcpStream::from(fd))
            },
            || Ok(()),
        );
        match r {
            Poll::Ready(Ok(s)) => Poll::Ready(Stream::new(s)),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.reg.reactor.deregister(self.reg.key, Some(self.sock.as_fd()));
    }
}

/// A connected stream.
#[derive(Debug)]
pub(crate) struct Stream {
    sock: std::net::TcpStream,
    reg: Registration,
}

impl Stream {
    pub(crate) fn new(sock: std::net::TcpStream) -> io::Result<Stream> {
        let reg = Registration::new(&sock)?;
        Ok(Stream { sock, reg })
    }

    /// Starts a non-blocking connect and waits for it to finish.
    pub(crate) async fn connect(addr: SocketAddr) -> io::Result<Stream> {
        let sock = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::STREAM.nonblocking().cloexec(),
            Some(socket2::Protocol::TCP),
        )?;
        match sock.connect(&addr.into()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::INPROGRESS.raw_os_error()) => {}
            Err(e) => return Err(e),
        }
        let stream = Stream::new(std::net::TcpStream::from(sock))?;
        // The connect completes when the socket turns writable.
        stream.reg.reactor.clear_ready(stream.reg.key, Dir::Write);
        stream.arm_write(true)?;
        std::future::poll_fn(|cx| {
            if stream.reg.reactor.poll_ready(stream.reg.key, Dir::Write, cx) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
        stream.arm_write(false)?;
        if let Some(e) = stream.sock.take_error()? {
            return Err(e);
        }
        // Writable also after a refused connect; peer_addr tells the two apart.
        stream.sock.peer_addr()?;
        Ok(stream)
    }

    fn arm_write(&self, on: bool) -> io::Result<()> {
        self.reg.reactor.set_write_interest(self.reg.key, self.sock.as_fd(), on)
    }

    pub(crate) fn std(&self) -> &std::net::TcpStream {
        &self.sock
    }

    pub(crate) fn poll_read(&self, cx: &Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        self.reg.poll_io(cx, Dir::Read, || (&self.sock).read(buf), || Ok(()))
    }

    /// Reads into `sink` through `scratch`: in edge mode until `EAGAIN`, end of stream or
    /// `max` bytes; in level mode once.
    pub(crate) fn poll_read_into(
        &self,
        cx: &Context<'_>,
        scratch: &mut [u8],
        max: usize,
        sink: &mut dyn FnMut(&[u8]),
    ) -> Poll<io::Result<usize>> {
        let mut total = 0;
        loop {
            match self.poll_read(cx, scratch) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Ok(total)),
                Poll::Ready(Ok(n)) => {
                    sink(&scratch[..n]);
                    total += n;
                    if self.reg.reactor.trigger() == Trigger::Level || total >= max {
                        return Poll::Ready(Ok(total));
                    }
                }
                Poll::Ready(Err(e)) if total == 0 => return Poll::Ready(Err(e)),
                // Report the bytes we have; the error comes back on the next read.
                Poll::Ready(Err(_)) => return Poll::Ready(Ok(total)),
                Poll::Pending if total > 0 => return Poll::Ready(Ok(total)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    pub(crate) fn poll_write(&self, cx: &Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.reg.poll_io(cx, Dir::Write, || (&self.sock).write(buf), || self.arm_write(true))
    }

    /// The writer has nothing more queued: stop asking epoll about writability.
    pub(crate) fn write_idle(&self) -> io::Result<()> {
        self.arm_write(false)
    }

    pub(crate) fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self.sock.shutdown(how) {
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
            r => r,
        }
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.reg.reactor.deregister(self.reg.key, Some(self.sock.as_fd()));
    }
}
