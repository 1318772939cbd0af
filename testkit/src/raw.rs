//! A blocking TARS client over a plain `std` socket, independent of our runtime and client:
//! it sends exactly the bytes a test asks for, so it can also send garbage.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use tars_proto::codec::Struct;
use tars_proto::frame::encode_frame;
use tars_proto::packet::{packet_type, version, RequestPacket, StringMap};
use tars_proto::rpc::{ParamWriter, Reply};
use tars_proto::{Bytes, BytesMut};

/// One connection.
#[derive(Debug)]
pub struct RawConn {
    stream: TcpStream,
    buf: BytesMut,
    next_id: i32,
}

impl RawConn {
    /// Connects with a 10 s read timeout.
    pub fn connect(addr: SocketAddr) -> io::Result<RawConn> {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.set_nodelay(true)?;
        Ok(RawConn { stream, buf: BytesMut::new(), next_id: 1 })
    }

    /// The socket, for tests that misbehave with it directly.
    pub fn stream(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// A request for `servant.func` with `body`, the next id, and a 3 s timeout.
    pub fn request(&mut self, servant: &str, func: &str, ver: i16, body: Bytes) -> RequestPacket {
        let id = self.next_id;
        self.next_id += 1;
        RequestPacket {
            i_version: ver,
            c_packet_type: packet_type::NORMAL,
            i_message_type: 0,
            i_request_id: id,
            s_servant_name: servant.to_owned(),
            s_func_name: func.to_owned(),
            s_buffer: body,
            i_timeout: 3000,
            context: StringMap::new(),
            status: StringMap::new(),
        }
    }

    /// Sends `req` framed.
    pub fn send(&mut self, req: &RequestPacket) -> io::Result<()> {
        self.stream.write_all(&encode_frame(req))
    }

    /// Sends raw bytes.
    pub fn send_bytes(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Reads the next reply frame; `Ok(None)` when the server closed the connection.
    pub fn read_reply(&mut self) -> io::Result<Option<Reply>> {
        loop {
            if self.buf.len() >= 4 {
                let len = u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]) as usize;
                if len < 4 {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, format!("frame length {len}")));
                }
                if self.buf.len() >= len {
                    let frame = self.buf.split_to(len).freeze().slice(4..);
                    return Reply::decode(&frame)
                        .map(Some)
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()));
                }
            }
            let mut chunk = [0u8; 65536];
            let n = match self.stream.read(&mut chunk) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => 0,
                // A signal to this thread (the test harness runs other tests' children) is no
                // answer from the server: read again.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if n == 0 {
                return Ok(None);
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Sends `req` and reads one reply (which must exist).
    pub fn call(&mut self, req: &RequestPacket) -> io::Result<Reply> {
        self.send(req)?;
        self.read_reply()?.ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "server closed the connection"))
    }

    /// Calls `echoString(s)` on `servant` over version 1 and returns the reply.
    pub fn echo_string(&mut self, servant: &str, s: &str) -> io::Result<Reply> {
        let mut w = ParamWriter::new(version::TARS);
        w.write_str(1, "s", s);
        let req = self.request(servant, "echoString", version::TARS, w.finish());
        self.call(&req)
    }

    /// Waits until the server closes the connection (reading and discarding), or `limit`.
    /// Returns whether it closed.
    pub fn closed_within(&mut self, limit: Duration) -> bool {
        let _ = self.stream.set_read_timeout(Some(limit));
        let mut chunk = [0u8; 4096];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return true,
                Err(_) => return false,
            }
        }
    }
}

/// Sends `command` to the `AdminObj` at `addr` (`AdminF.notify`) and returns its answer.
pub fn admin_notify(addr: SocketAddr, command: &str) -> io::Result<String> {
    let mut c = RawConn::connect(addr)?;
    let mut w = ParamWriter::new(version::TARS);
    w.write_str(1, "command", command);
    let req = c.request("AdminObj", "notify", version::TARS, w.finish());
    let reply = c.call(&req)?;
    if reply.ret != 0 {
        return Err(io::Error::other(format!("AdminObj.notify failed: {} {}", reply.ret, reply.desc)));
    }
    let mut p = reply.params().map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
    p.read_ret().map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
}

/// Encodes `req` the way a peer would, for tests that cut or corrupt the bytes.
pub fn frame_bytes(req: &RequestPacket) -> Vec<u8> {
    encode_frame(req).to_vec()
}

/// The body of `req` without the length prefix.
pub fn packet_bytes(req: &RequestPacket) -> Bytes {
    req.encode()
}
