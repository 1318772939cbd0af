//! An append-only, checksummed, fsync'd file of batches: what a database's writer keeps while
//! MySQL is unreachable and across restarts, so an outage or a crash loses nothing (upstream
//! drops the batch after one retry).
//!
//! The payloads are opaque bytes. The file `<dir>/<name>.spool` is a header and a sequence of
//! records:
//!
//! ```text
//! header  magic "TARSSPOL" | version u16 | 0 u16 | base_seq u64 | crc32 of the 20 bytes before
//! record  kind u8 (1 append, 2 ack) | seq u64 | len u32 | head_crc u32 | crc u32 | payload
//! ```
//!
//! All integers are little-endian. `head_crc` covers kind, seq and len, so a damaged length is
//! recognised before it is believed; `crc` covers kind, seq, len and the payload. An ack has no
//! payload. `base_seq` is where numbering continues when the file holds no records, so sequence
//! numbers keep increasing across restarts even after the file was emptied.
//!
//! Only an index lives in memory: per pending record its sequence number, offset and length
//! (24 bytes; [`Spool::resident_bytes`]), so a spool allowed a gigabyte costs the process a
//! few megabytes at most. [`Spool::read`] reads a payload back with `pread` and checks it
//! again, since the disk may have changed it since it was written.
//!
//! Every write is followed by `fdatasync` before the call returns. When nothing is pending the
//! file is replaced by an empty one (temp file, fsync, rename, fsync of the directory), and when
//! acknowledged records make up most of it, by one holding only the pending records, copied
//! record by record from the old file; so it never grows much beyond twice the pending data.
//!
//! On open, a damaged last record (a write cut short by a crash: the file ends inside it, or
//! what follows its header is only zeros) is cut off with a warning. Damage anywhere else stops
//! the replay there: the records before it are kept, the file is renamed aside to
//! `<name>.spool.corrupt-<unix>` for a human to look at, and [`Spool::corruption`] says where it
//! broke. The service starts either way, and nothing is deleted. A pending record found damaged
//! later, when read back or copied, is dropped from the index and the file rewritten without it
//! (an error log; [`Spool::lost_records`] counts them), so the next open does not stop there.
//!
//! [`DeadLetters`] is the same format under `<name>.dead`: records that are never acknowledged.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// The first bytes of every spool file.
const MAGIC: [u8; 8] = *b"TARSSPOL";
/// The file format version this code writes and reads.
const VERSION: u16 = 1;
/// Size of the file header; also the size of a spool file with nothing pending.
pub const HEADER_LEN: u64 = 24;
/// Size of a record header (everything before the payload).
pub const RECORD_HEADER_LEN: u64 = 21;
/// Acknowledged bytes tolerated in the file before it is compacted, whatever the pending size.
const COMPACT_MIN: u64 = 64 * 1024;
/// How much of a payload is read (on open) or copied (on a rewrite) at a time.
const CHUNK: usize = 64 * 1024;
/// What a rewrite gathers before writing it to the new file.
const COPY_BUF: usize = 1 << 20;
/// Index entries always allowed to stay allocated, however few records are pending.
const INDEX_MIN_CAPACITY: usize = 64;

const KIND_APPEND: u8 = 1;
const KIND_ACK: u8 = 2;

/// What went wrong with a spool.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// The spool name cannot be a file name.
    #[error("bad spool name {0:?}: use 1-100 of [A-Za-z0-9_.-], not starting with '.'")]
    BadName(String),
    /// A file operation failed.
    #[error("spool {}: {what}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What we were doing.
        what: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// Appending would put more than the limit in the spool; the caller drops the batch (and
    /// counts and logs it).
    #[error(
        "spool {} is full: {pending_bytes} bytes pending, {payload_len} more would pass the limit of {max_bytes}",
        path.display()
    )]
    Full {
        /// The spool file.
        path: PathBuf,
        /// Payload bytes not yet acknowledged.
        pending_bytes: u64,
        /// Size of the refused payload.
        payload_len: u64,
        /// The limit.
        max_bytes: u64,
    },
    /// The file was damaged before its end; replay stopped at `offset` and the file was moved
    /// aside. Reported by [`Spool::corruption`], not by [`Spool::open`], which carries on.
    #[error(
        "spool {} is corrupt at byte {offset}: {reason}; records from there on were not replayed and the file was moved to {}",
        path.display(), moved_to.display()
    )]
    Corrupt {
        /// The spool file.
        path: PathBuf,
        /// Where the first bad record starts.
        offset: u64,
        /// What is wrong there.
        reason: String,
        /// Where the damaged file now is.
        moved_to: PathBuf,
    },
    /// A pending record read back from the file is not what was written: the batch is lost,
    /// and no longer pending.
    #[error("spool {} record {seq} at byte {offset} is damaged: {reason}; the batch is lost", path.display())]
    Damaged {
        /// The spool file.
        path: PathBuf,
        /// The record's sequence number.
        seq: u64,
        /// Where the record starts.
        offset: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// Sequence numbers ran out (only a hand-made file can get there).
    #[error("spool {}: sequence numbers exhausted", path.display())]
    SeqExhausted {
        /// The spool file.
        path: PathBuf,
    },
}

/// Where a pending record is: all that is kept of it in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    seq: u64,
    /// Where the record's header starts.
    offset: u64,
    /// The payload's length.
    len: u32,
}

/// A spool file and the index of what it holds that the database has not acknowledged. Lives
/// on one database writer's thread (it is `Send`, not shared): one spool per database, under a
/// name no other spool uses.
pub struct Spool {
    dir: PathBuf,
    path: PathBuf,
    max_bytes: u64,
    file: File,
    /// Length of the valid part of the file; the next record is written here.
    len: u64,
    /// A write failed and the file may hold a partial record after `len`.
    dirty: bool,
    next_seq: u64,
    /// In sequence order (appends only ever add larger numbers).
    pending: VecDeque<Entry>,
    pending_bytes: u64,
    /// The file holds a damaged record the index has dropped; rewrite it at the next chance.
    needs_rewrite: bool,
    lost: u64,
    corruption: Option<SpoolError>,
    truncated_tail: Option<u64>,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool")
            .field("path", &self.path)
            .field("len", &self.len)
            .field("next_seq", &self.next_seq)
            .field("pending", &self.pending.len())
            .field("pending_bytes", &self.pending_bytes)
            .field("max_bytes", &self.max_bytes)
            .field("lost", &self.lost)
            .finish()
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn io_err<'a>(path: &'a Path, what: &'static str) -> impl FnOnce(io::Error) -> SpoolError + 'a {
    move |source| SpoolError::Io { path: path.to_owned(), what, source }
}

fn encode_header(base_seq: u64) -> [u8; HEADER_LEN as usize] {
    let mut h = [0u8; HEADER_LEN as usize];
    h[0..8].copy_from_slice(&MAGIC);
    h[8..10].copy_from_slice(&VERSION.to_le_bytes());
    h[12..20].copy_from_slice(&base_seq.to_le_bytes());
    let crc = crc32fast::hash(&h[0..20]);
    h[20..24].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Encodes one record. `payload` must fit a u32 (checked by the callers).
fn encode_record(kind: u8, seq: u64, payload: &[u8], out: &mut Vec<u8>) {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let mut head = [0u8; 13];
    head[0] = kind;
    head[1..9].copy_from_slice(&seq.to_le_bytes());
    head[9..13].copy_from_slice(&len.to_le_bytes());
    let mut h = crc32fast::Hasher::new();
    h.update(&head);
    h.update(payload);
    out.extend_from_slice(&head);
    out.extend_from_slice(&crc32fast::hash(&head).to_le_bytes());
    out.extend_from_slice(&h.finalize().to_le_bytes());
    out.extend_from_slice(payload);
}

/// A record header's fields: kind, seq, len, head_crc, crc.
fn parse_record_header(rh: &[u8; RECORD_HEADER_LEN as usize]) -> (u8, u64, u32, u32, u32) {
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&rh[1..9]);
    (
        rh[0],
        u64::from_le_bytes(seq),
        u32::from_le_bytes([rh[9], rh[10], rh[11], rh[12]]),
        u32::from_le_bytes([rh[13], rh[14], rh[15], rh[16]]),
        u32::from_le_bytes([rh[17], rh[18], rh[19], rh[20]]),
    )
}

fn fsync_dir(dir: &Path) -> Result<(), SpoolError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_err(dir, "syncing the directory"))
}

/// How reading a file ended.
#[derive(Debug)]
enum ScanEnd {
    /// At the end of the file, after a whole record.
    Clean,
    /// In a record the file ends inside: a write cut short.
    Torn(String),
    /// At a damaged record with more data after it.
    Corrupt(String),
}

/// What a spool file holds.
#[derive(Debug)]
struct Scan {
    base_seq: u64,
    /// Largest append sequence number seen.
    max_seq: Option<u64>,
    pending: VecDeque<Entry>,
    /// Offset just after the last good record (where a torn or bad record starts).
    good_len: u64,
    end: ScanEnd,
}

/// True when the rest of `r` is only zero bytes (the tail of a file whose size was extended but
/// whose data never reached the disk).
fn rest_is_zero(r: &mut impl Read) -> io::Result<bool> {
    let mut buf = [0u8; 8192];
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(true),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf[..n].iter().any(|&b| b != 0) {
            return Ok(false);
        }
    }
}

/// Removes `seq` from an index in sequence order; the entry, if it was there.
fn remove_seq(index: &mut VecDeque<Entry>, seq: u64) -> Option<Entry> {
    // Acknowledgements come almost always for the oldest record.
    if index.front().is_some_and(|e| e.seq == seq) {
        return index.pop_front();
    }
    let i = index.binary_search_by_key(&seq, |e| e.seq).ok()?;
    index.remove(i)
}

/// Reads a spool file of `file_len` bytes from `r`, checking every record but keeping only the
/// index of the pending ones. Payloads longer than `max_payload` are refused before anything
/// is read for them.
fn scan(r: &mut impl Read, file_len: u64, max_payload: u64) -> io::Result<Scan> {
    let mut out = Scan { base_seq: 1, max_seq: None, pending: VecDeque::new(), good_len: 0, end: ScanEnd::Clean };
    if file_len == 0 {
        // Nothing was ever written (or the first write never landed): nothing to lose.
        return Ok(out);
    }
    if file_len < HEADER_LEN {
        out.end = ScanEnd::Corrupt(format!("{file_len} bytes is too short for a spool header"));
        return Ok(out);
    }
    let mut h = [0u8; HEADER_LEN as usize];
    r.read_exact(&mut h)?;
    let crc = u32::from_le_bytes([h[20], h[21], h[22], h[23]]);
    if h[0..8] != MAGIC {
        out.end = ScanEnd::Corrupt("not a spool file (bad magic)".into());
        return Ok(out);
    }
    if crc32fast::hash(&h[0..20]) != crc {
        out.end = ScanEnd::Corrupt("bad header checksum".into());
        return Ok(out);
    }
    let version = u16::from_le_bytes([h[8], h[9]]);
    if version != VERSION {
        out.end = ScanEnd::Corrupt(format!("unknown spool version {version}"));
        return Ok(out);
    }
    let mut base = [0u8; 8];
    base.copy_from_slice(&h[12..20]);
    out.base_seq = u64::from_le_bytes(base);
    let mut off = HEADER_LEN;
    out.good_len = off;
    let mut chunk = vec![0u8; CHUNK];
    loop {
        let remaining = file_len - off;
        if remaining == 0 {
            return Ok(out);
        }
        if remaining < RECORD_HEADER_LEN {
            out.end = ScanEnd::Torn(format!("{remaining} bytes of a record header"));
            return Ok(out);
        }
        let mut rh = [0u8; RECORD_HEADER_LEN as usize];
        r.read_exact(&mut rh)?;
        let (kind, seq, len32, head_crc, crc) = parse_record_header(&rh);
        let len = u64::from(len32);
        if crc32fast::hash(&rh[0..13]) != head_crc {
            out.end = if rest_is_zero(r)? {
                ScanEnd::Torn("record header damaged and only zeros after it".into())
            } else {
                ScanEnd::Corrupt("bad record header checksum".into())
            };
            return Ok(out);
        }
        let problem = match kind {
            KIND_APPEND if len > max_payload => {
                Some(format!("payload of {len} bytes exceeds the limit of {max_payload}"))
            }
            KIND_APPEND if out.max_seq.is_some_and(|m| seq <= m) => {
                Some(format!("sequence number {seq} does not follow {}", out.max_seq.unwrap_or(0)))
            }
            KIND_APPEND if seq == u64::MAX => Some("sequence number out of range".to_owned()),
            KIND_ACK if len != 0 => Some(format!("acknowledgement with a {len}-byte payload")),
            KIND_APPEND | KIND_ACK => None,
            other => Some(format!("unknown record kind {other}")),
        };
        if let Some(reason) = problem {
            out.end = ScanEnd::Corrupt(reason);
            return Ok(out);
        }
        let record_len = RECORD_HEADER_LEN + len;
        if record_len > remaining {
            out.end = ScanEnd::Torn(format!("record of {record_len} bytes cut short at {remaining}"));
            return Ok(out);
        }
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&rh[0..13]);
        let mut left = len;
        while left > 0 {
            let n = usize::try_from(left).unwrap_or(CHUNK).min(CHUNK);
            r.read_exact(&mut chunk[..n])?;
            hasher.update(&chunk[..n]);
            left -= n as u64;
        }
        if hasher.finalize() != crc {
            out.end = if record_len == remaining {
                ScanEnd::Torn("last record's payload checksum does not match".into())
            } else {
                ScanEnd::Corrupt("payload checksum does not match".into())
            };
            return Ok(out);
        }
        match kind {
            KIND_APPEND => {
                out.max_seq = Some(seq);
                out.pending.push_back(Entry { seq, offset: off, len: len32 });
            }
            _ => {
                if remove_seq(&mut out.pending, seq).is_none() {
                    tracing::debug!(seq, offset = off, "spool acknowledgement of a record not pending; ignored");
                }
            }
        }
        off += record_len;
        out.good_len = off;
    }
}

/// Why a record could not be read back.
#[derive(Debug)]
enum ReadFail {
    /// The read itself failed; the record may be fine.
    Io(io::Error),
    /// The bytes are not the record the index describes.
    Damaged(String),
}

impl From<io::Error> for ReadFail {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            ReadFail::Damaged("the file ends inside the record".into())
        } else {
            ReadFail::Io(e)
        }
    }
}

/// Reads and checks the header of `e`'s record; returns it and the payload checksum it holds.
fn record_header(file: &File, e: &Entry) -> Result<([u8; RECORD_HEADER_LEN as usize], u32), ReadFail> {
    let mut rh = [0u8; RECORD_HEADER_LEN as usize];
    file.read_exact_at(&mut rh, e.offset)?;
    let (kind, seq, len, head_crc, crc) = parse_record_header(&rh);
    if crc32fast::hash(&rh[0..13]) != head_crc {
        return Err(ReadFail::Damaged("bad record header checksum".into()));
    }
    if kind != KIND_APPEND || seq != e.seq || len != e.len {
        return Err(ReadFail::Damaged(format!(
            "found record kind {kind} seq {seq} len {len}, expected an append of seq {} len {}",
            e.seq, e.len
        )));
    }
    Ok((rh, crc))
}

/// Reads `e`'s payload back and checks it.
fn read_payload(file: &File, e: &Entry) -> Result<Vec<u8>, ReadFail> {
    let (rh, crc) = record_header(file, e)?;
    // Bounded: the length was checked against the limit when the record was appended or read.
    let mut payload = vec![0u8; usize::try_from(e.len).unwrap_or(0)];
    file.read_exact_at(&mut payload, e.offset + RECORD_HEADER_LEN)?;
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&rh[0..13]);
    hasher.update(&payload);
    if hasher.finalize() != crc {
        return Err(ReadFail::Damaged("payload checksum does not match".into()));
    }
    Ok(payload)
}

/// A spool file written whole.
struct Written {
    file: File,
    len: u64,
    index: VecDeque<Entry>,
    /// Records left out because they were damaged, and why.
    lost: Vec<(Entry, String)>,
}

/// Sequential writes at explicit offsets, gathered into large writes; able to take back what
/// was added since an offset (a record found damaged half-way through copying it).
struct Out<'a> {
    file: &'a File,
    buf: Vec<u8>,
    /// Bytes written to the file so far.
    flushed: u64,
}

impl Out<'_> {
    fn pos(&self) -> u64 {
        self.flushed + self.buf.len() as u64
    }

    fn push(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= COPY_BUF {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.write_all_at(&self.buf, self.flushed)?;
        self.flushed += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    /// Forgets everything after `pos`; what already reached the file is overwritten by what
    /// follows, or cut off at the end.
    fn rewind(&mut self, pos: u64) {
        if pos >= self.flushed {
            self.buf.truncate(usize::try_from(pos - self.flushed).unwrap_or(0));
        } else {
            self.buf.clear();
            self.flushed = pos;
        }
    }
}

/// Copies `e`'s record from `src` to `out`, checking it on the way.
fn copy_record(src: &File, e: &Entry, out: &mut Out<'_>, chunk: &mut [u8]) -> Result<(), ReadFail> {
    let (rh, crc) = record_header(src, e)?;
    out.push(&rh).map_err(ReadFail::Io)?;
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&rh[0..13]);
    let mut at = e.offset + RECORD_HEADER_LEN;
    let mut left = u64::from(e.len);
    while left > 0 {
        let n = usize::try_from(left).unwrap_or(chunk.len()).min(chunk.len());
        src.read_exact_at(&mut chunk[..n], at)?;
        hasher.update(&chunk[..n]);
        out.push(&chunk[..n]).map_err(ReadFail::Io)?;
        at += n as u64;
        left -= n as u64;
    }
    if hasher.finalize() != crc {
        return Err(ReadFail::Damaged("payload checksum does not match".into()));
    }
    Ok(())
}

/// Writes a complete spool file atomically at `path` (temp file, fsync, rename, fsync of the
/// directory): the header with `base_seq`, then `entries`' records copied from `src` and
/// checked on the way, a bounded piece at a time. Returns the handle (now at `path`), the
/// file's length and the index into it. `src_path` names `src` in errors.
fn write_file(
    dir: &Path,
    path: &Path,
    tmp: &Path,
    base_seq: u64,
    src: Option<(&File, &Path)>,
    entries: &VecDeque<Entry>,
) -> Result<Written, SpoolError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(tmp)
        .map_err(io_err(tmp, "creating the temporary file"))?;
    let fail = |what: &'static str, source: io::Error, at: &Path| {
        let _ = std::fs::remove_file(tmp);
        SpoolError::Io { path: at.to_owned(), what, source }
    };
    let mut index = VecDeque::with_capacity(entries.len());
    let mut lost = Vec::new();
    let mut out = Out { file: &file, buf: Vec::with_capacity(COPY_BUF.min(4096 + entries.len() * 64)), flushed: 0 };
    out.push(&encode_header(base_seq)).map_err(|e| fail("writing the temporary file", e, tmp))?;
    if let Some((src, src_path)) = src {
        let mut chunk = vec![0u8; CHUNK];
        for e in entries {
            let start = out.pos();
            match copy_record(src, e, &mut out, &mut chunk) {
                Ok(()) => index.push_back(Entry { offset: start, ..*e }),
                Err(ReadFail::Damaged(reason)) => {
                    out.rewind(start);
                    lost.push((*e, reason));
                }
                Err(ReadFail::Io(source)) => {
                    return Err(fail("reading a record to copy it into the rewritten file", source, src_path));
                }
            }
        }
    }
    let len = out.pos();
    let written = out.flush().and_then(|()| file.set_len(len)).and_then(|()| file.sync_all());
    if let Err(source) = written {
        return Err(fail("writing the temporary file", source, tmp));
    }
    if let Err(source) = std::fs::rename(tmp, path) {
        return Err(fail("replacing the spool file", source, path));
    }
    // The new file is at `path` now, so its handle is the one to keep writing to even when
    // the rename's durability is in doubt: the old handle names a file no longer linked.
    if let Err(e) = fsync_dir(dir) {
        tracing::warn!(error = %e, "the spool file was replaced but its directory could not be synced");
    }
    Ok(Written { file, len, index, lost })
}

impl Spool {
    /// Opens (creating `dir` and the file if needed) the spool `<dir>/<name>.spool`, keeping at
    /// most `max_bytes` of unacknowledged payload. Whatever a previous run left unacknowledged
    /// is [`pending`](Spool::pending), in append order, for the caller to replay.
    ///
    /// A torn last record is cut off (warning; see [`Spool::truncated_tail`]); damage before
    /// the end moves the file aside and keeps what preceded it (error log; see
    /// [`Spool::corruption`]). Only I/O failures and a bad `name` make this fail.
    pub fn open(dir: &Path, name: &str, max_bytes: u64) -> Result<Spool, SpoolError> {
        Spool::open_file(dir, name, "spool", max_bytes)
    }

    /// [`Spool::open`] for the file `<dir>/<name>.<ext>`.
    fn open_file(dir: &Path, name: &str, ext: &str, max_bytes: u64) -> Result<Spool, SpoolError> {
        if !valid_name(name) {
            return Err(SpoolError::BadName(name.to_owned()));
        }
        std::fs::create_dir_all(dir).map_err(io_err(dir, "creating the spool directory"))?;
        let path = dir.join(format!("{name}.{ext}"));
        let tmp = dir.join(format!("{name}.{ext}.tmp"));
        // A temp file is only ever a rewrite that did not finish; the real file is intact.
        match std::fs::remove_file(&tmp) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(SpoolError::Io { path: tmp, what: "removing a stale temporary file", source: e })
            }
            _ => {}
        }
        let max_payload = max_bytes.min(u64::from(u32::MAX));
        let existing = match OpenOptions::new().read(true).write(true).open(&path) {
            Ok(f) => Some(f),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(SpoolError::Io { path, what: "opening the spool file", source: e }),
        };
        let Some(file) = existing else {
            let w = write_file(dir, &path, &tmp, 1, None, &VecDeque::new())?;
            return Ok(Spool::assemble(dir, path, max_bytes, w.file, w.len, 1, w.index));
        };
        let file_len = file.metadata().map_err(io_err(&path, "reading the file size"))?.len();
        let s = scan(&mut BufReader::new(&file), file_len, max_payload).map_err(io_err(&path, "reading the spool"))?;
        let next_seq = s.base_seq.max(s.max_seq.map_or(1, |m| m + 1)).max(1);
        match s.end {
            ScanEnd::Clean if file_len == 0 => {
                drop(file);
                let w = write_file(dir, &path, &tmp, 1, None, &VecDeque::new())?;
                Ok(Spool::assemble(dir, path, max_bytes, w.file, w.len, 1, w.index))
            }
            ScanEnd::Clean => Ok(Spool::assemble(dir, path, max_bytes, file, file_len, next_seq, s.pending)),
            ScanEnd::Torn(reason) => {
                tracing::warn!(
                    file = %path.display(), offset = s.good_len, cut = file_len - s.good_len, %reason,
                    "spool ends in a partly written record (a crash during a write); cutting it off"
                );
                file.set_len(s.good_len)
                    .and_then(|()| file.sync_all())
                    .map_err(io_err(&path, "cutting off a torn record"))?;
                let mut spool = Spool::assemble(dir, path, max_bytes, file, s.good_len, next_seq, s.pending);
                spool.truncated_tail = Some(s.good_len);
                Ok(spool)
            }
            ScanEnd::Corrupt(reason) => {
                // The handle still reads the renamed file: the good records are copied from it.
                let moved_to = Spool::move_aside(dir, &path)?;
                let error =
                    SpoolError::Corrupt { path: path.clone(), offset: s.good_len, reason, moved_to: moved_to.clone() };
                tracing::error!(error = %error, pending = s.pending.len(), "spool damaged; starting a new file");
                let w = write_file(dir, &path, &tmp, next_seq, Some((&file, &moved_to)), &s.pending)?;
                drop(file);
                let mut spool = Spool::assemble(dir, path, max_bytes, w.file, w.len, next_seq, w.index);
                spool.note_lost(w.lost);
                spool.corruption = Some(error);
                Ok(spool)
            }
        }
    }

    fn assemble(
        dir: &Path,
        path: PathBuf,
        max_bytes: u64,
        file: File,
        len: u64,
        next_seq: u64,
        pending: VecDeque<Entry>,
    ) -> Spool {
        let pending_bytes = pending.iter().map(|e| u64::from(e.len)).sum();
        Spool {
            dir: dir.to_owned(),
            path,
            max_bytes,
            file,
            len,
            dirty: false,
            next_seq,
            pending,
            pending_bytes,
            needs_rewrite: false,
            lost: 0,
            corruption: None,
            truncated_tail: None,
        }
    }

    /// Renames a damaged file to `<file>.corrupt-<unix>` (with `-N` added if taken).
    fn move_aside(dir: &Path, path: &Path) -> Result<PathBuf, SpoolError> {
        let unix = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let mut name = path.as_os_str().to_owned();
        name.push(format!(".corrupt-{unix}"));
        let mut target = PathBuf::from(name.clone());
        let mut n = 1;
        while target.exists() {
            let mut alt = name.clone();
            alt.push(format!("-{n}"));
            target = PathBuf::from(alt);
            n += 1;
        }
        std::fs::rename(path, &target).map_err(io_err(path, "moving the damaged spool aside"))?;
        fsync_dir(dir)?;
        Ok(target)
    }

    /// Counts and logs records a rewrite left out as damaged.
    fn note_lost(&mut self, lost: Vec<(Entry, String)>) {
        for (e, reason) in lost {
            self.lost += 1;
            tracing::error!(file = %self.path.display(), seq = e.seq, offset = e.offset, %reason,
                "spool record damaged on disk; the batch is lost");
        }
    }

    /// Writes one record at the end of the valid part and syncs it. A failed write is cut off
    /// again, so a later record never follows garbage.
    fn write_record(&mut self, kind: u8, seq: u64, payload: &[u8]) -> Result<(), SpoolError> {
        if self.dirty {
            self.file.set_len(self.len).map_err(io_err(&self.path, "cutting off a failed write"))?;
            self.dirty = false;
        }
        let mut buf = Vec::with_capacity(payload.len() + 21);
        encode_record(kind, seq, payload, &mut buf);
        let written = self.file.write_all_at(&buf, self.len).and_then(|()| self.file.sync_data());
        if let Err(source) = written {
            self.dirty = true;
            if self.file.set_len(self.len).is_ok() {
                self.dirty = false;
            }
            return Err(SpoolError::Io { path: self.path.clone(), what: "writing a record", source });
        }
        self.len += buf.len() as u64;
        Ok(())
    }

    /// Appends a batch and syncs it to disk; returns its sequence number (increasing, also
    /// across restarts). [`SpoolError::Full`] when the pending payload would pass the limit:
    /// nothing is written then.
    pub fn append(&mut self, payload: &[u8]) -> Result<u64, SpoolError> {
        let payload_len = payload.len() as u64;
        let len32 = u32::try_from(payload.len()).ok();
        let Some(len32) = len32.filter(|_| payload_len <= self.max_bytes.saturating_sub(self.pending_bytes)) else {
            return Err(SpoolError::Full {
                path: self.path.clone(),
                pending_bytes: self.pending_bytes,
                payload_len,
                max_bytes: self.max_bytes,
            });
        };
        let seq = self.next_seq;
        let next = seq.checked_add(1).filter(|n| *n < u64::MAX);
        let Some(next) = next else { return Err(SpoolError::SeqExhausted { path: self.path.clone() }) };
        let offset = self.len;
        self.write_record(KIND_APPEND, seq, payload)?;
        self.next_seq = next;
        self.pending.push_back(Entry { seq, offset, len: len32 });
        self.pending_bytes += payload_len;
        Ok(seq)
    }

    /// Records (synced) that batch `seq` reached the database. Returns false, writing nothing,
    /// when `seq` is not pending. Empties or compacts the file when acknowledged records make
    /// up most of it; a failed compaction is logged and retried at the next acknowledgement.
    ///
    /// On an error the batch is no longer pending all the same (the caller is done with it),
    /// but its record stays in the file until the next rewrite: a restart before that replays
    /// it once more.
    pub fn ack(&mut self, seq: u64) -> Result<bool, SpoolError> {
        if self.find(seq).is_none() {
            return Ok(false);
        }
        let written = self.write_record(KIND_ACK, seq, &[]);
        if let Some(e) = remove_seq(&mut self.pending, seq) {
            self.pending_bytes -= u64::from(e.len);
        }
        self.shrink_index();
        let live = HEADER_LEN + self.pending_bytes + RECORD_HEADER_LEN * self.pending.len() as u64;
        let dead = self.len.saturating_sub(live);
        let mut rewritten = false;
        if self.needs_rewrite || self.pending.is_empty() || (dead > live && dead >= COMPACT_MIN) {
            match self.rewrite() {
                Ok(()) => rewritten = true,
                Err(e) => {
                    tracing::warn!(error = %e, "spool compaction failed; the file stays valid and is retried later")
                }
            }
        }
        match written {
            // The rewritten file does not hold the record: the acknowledgement is on disk after all.
            Err(_) if rewritten => Ok(true),
            Err(e) => Err(e),
            Ok(()) => Ok(true),
        }
    }

    /// Gives memory back once the index has shrunk well below what it holds allocated, so a
    /// backlog that was written leaves nothing behind.
    fn shrink_index(&mut self) {
        let len = self.pending.len();
        if self.pending.capacity() > INDEX_MIN_CAPACITY && len < self.pending.capacity() / 2 {
            self.pending.shrink_to((len + len / 4).max(INDEX_MIN_CAPACITY));
        }
    }

    fn find(&self, seq: u64) -> Option<usize> {
        self.pending.binary_search_by_key(&seq, |e| e.seq).ok()
    }

    /// Replaces the file by one holding only the pending records.
    fn rewrite(&mut self) -> Result<(), SpoolError> {
        let tmp = self.dir.join(format!(
            "{}.tmp",
            self.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
        ));
        let w = write_file(&self.dir, &self.path, &tmp, self.next_seq, Some((&self.file, &self.path)), &self.pending)?;
        self.file = w.file;
        self.len = w.len;
        self.pending = w.index;
        self.pending_bytes = self.pending.iter().map(|e| u64::from(e.len)).sum();
        self.dirty = false;
        self.needs_rewrite = false;
        self.note_lost(w.lost);
        Ok(())
    }

    /// Reads pending batch `seq` back from the file (`None` when it is not pending). A record
    /// that is not what was written is dropped ([`SpoolError::Damaged`], counted in
    /// [`Spool::lost_records`]) and the file rewritten without it; other read errors leave it
    /// pending, to be read again later.
    pub fn read(&mut self, seq: u64) -> Result<Option<Vec<u8>>, SpoolError> {
        match self.find(seq) {
            Some(i) => self.read_at(i).map(Some),
            None => Ok(None),
        }
    }

    /// [`Spool::read`] of the oldest pending batch: its sequence number and payload, `None`
    /// when nothing is pending.
    pub fn read_first(&mut self) -> Result<Option<(u64, Vec<u8>)>, SpoolError> {
        match self.pending.front() {
            Some(e) => {
                let seq = e.seq;
                self.read_at(0).map(|p| Some((seq, p)))
            }
            None => Ok(None),
        }
    }

    fn read_at(&mut self, i: usize) -> Result<Vec<u8>, SpoolError> {
        let Some(e) = self.pending.get(i).copied() else {
            return Err(SpoolError::Io {
                path: self.path.clone(),
                what: "reading a record back",
                source: io::Error::new(io::ErrorKind::NotFound, "no such pending record"),
            });
        };
        match read_payload(&self.file, &e) {
            Ok(p) => Ok(p),
            Err(ReadFail::Io(source)) => {
                Err(SpoolError::Io { path: self.path.clone(), what: "reading a record back", source })
            }
            Err(ReadFail::Damaged(reason)) => {
                let error = SpoolError::Damaged { path: self.path.clone(), seq: e.seq, offset: e.offset, reason };
                tracing::error!(error = %error, "spool record damaged on disk");
                self.pending.remove(i);
                self.pending_bytes -= u64::from(e.len);
                self.lost += 1;
                // Left in the file, the damage would stop the next open's replay there.
                self.needs_rewrite = true;
                if let Err(e) = self.rewrite() {
                    tracing::warn!(error = %e, "rewriting the spool without a damaged record failed; retried later");
                }
                Err(error)
            }
        }
    }

    /// The batches not yet acknowledged, in append order (those a previous run left, then
    /// those appended since), each read back from the file when the iterator reaches it. A
    /// record that does not read back is an error item ([`SpoolError::Damaged`] or `Io`)
    /// and stays pending; [`Spool::read`] is what drops a damaged one.
    pub fn pending(&self) -> impl Iterator<Item = Result<(u64, Vec<u8>), SpoolError>> + '_ {
        self.pending.iter().map(move |e| {
            read_payload(&self.file, e).map(|p| (e.seq, p)).map_err(|f| match f {
                ReadFail::Io(source) => {
                    SpoolError::Io { path: self.path.clone(), what: "reading a record back", source }
                }
                ReadFail::Damaged(reason) => {
                    SpoolError::Damaged { path: self.path.clone(), seq: e.seq, offset: e.offset, reason }
                }
            })
        })
    }

    /// The sequence numbers of the pending batches, in append order.
    pub fn pending_seqs(&self) -> impl Iterator<Item = u64> + '_ {
        self.pending.iter().map(|e| e.seq)
    }

    /// The oldest pending batch's sequence number.
    pub fn first_pending(&self) -> Option<u64> {
        self.pending.front().map(|e| e.seq)
    }

    /// How many batches are pending.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Payload bytes pending (what the limit counts).
    pub fn pending_bytes(&self) -> u64 {
        self.pending_bytes
    }

    /// Heap bytes the spool holds for its pending batches: the index's allocation (24 bytes
    /// an entry, at most about twice the entries, never fewer than 64 entries' worth).
    /// Payloads are not held.
    pub fn resident_bytes(&self) -> usize {
        self.pending.capacity() * size_of::<Entry>()
    }

    /// Pending records found damaged since the spool was opened (on reading one back or
    /// copying it into a rewritten file) and dropped.
    pub fn lost_records(&self) -> u64 {
        self.lost
    }

    /// The limit on pending payload bytes.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// The sequence number the next append gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The spool file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's current length in bytes.
    pub fn file_len(&self) -> u64 {
        self.len
    }

    /// The damage [`Spool::open`] found before the end of the file ([`SpoolError::Corrupt`]:
    /// file, offset, where it was moved), if any.
    pub fn corruption(&self) -> Option<&SpoolError> {
        self.corruption.as_ref()
    }

    /// Where [`Spool::open`] cut off a torn last record, if it did.
    pub fn truncated_tail(&self) -> Option<u64> {
        self.truncated_tail
    }
}

/// Where batches go that the database refused again and again: `<dir>/<name>.dead`, in the
/// spool's format, appended to (fsync'd) and never acknowledged, for a human to look at or
/// replay. Bounded like a spool: beyond `max_bytes` of payload an append is refused
/// ([`SpoolError::Full`]). Opening it checks it as [`Spool::open`] does.
#[derive(Debug)]
pub struct DeadLetters(Spool);

impl DeadLetters {
    /// The file the dead letters of spool `name` in `dir` go to.
    pub fn path_for(dir: &Path, name: &str) -> PathBuf {
        dir.join(format!("{name}.dead"))
    }

    /// Opens (creating if needed) `<dir>/<name>.dead`.
    pub fn open(dir: &Path, name: &str, max_bytes: u64) -> Result<DeadLetters, SpoolError> {
        Spool::open_file(dir, name, "dead", max_bytes).map(DeadLetters)
    }

    /// Appends a payload and syncs it; returns its sequence number.
    pub fn append(&mut self, payload: &[u8]) -> Result<u64, SpoolError> {
        self.0.append(payload)
    }

    /// The records, oldest first, each read back from the file.
    pub fn records(&self) -> impl Iterator<Item = Result<(u64, Vec<u8>), SpoolError>> + '_ {
        self.0.pending()
    }

    /// How many records the file holds.
    pub fn len(&self) -> usize {
        self.0.pending_len()
    }

    /// True when the file holds no record.
    pub fn is_empty(&self) -> bool {
        self.0.pending_len() == 0
    }

    /// Payload bytes in the file (what the limit counts).
    pub fn bytes(&self) -> u64 {
        self.0.pending_bytes()
    }

    /// The file's length.
    pub fn file_len(&self) -> u64 {
        self.0.file_len()
    }

    /// The file.
    pub fn path(&self) -> &Path {
        self.0.path()
    }

    /// What opening it found, as [`Spool::corruption`].
    pub fn corruption(&self) -> Option<&SpoolError> {
        self.0.corruption()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_bytes(b: &[u8], max: u64) -> Scan {
        scan(&mut &b[..], b.len() as u64, max).expect("reading from memory cannot fail")
    }

    /// The pending payloads of a scan, cut out of the bytes it read.
    fn payloads(b: &[u8], s: &Scan) -> Vec<(u64, Vec<u8>)> {
        s.pending
            .iter()
            .map(|e| {
                let at = usize::try_from(e.offset + RECORD_HEADER_LEN).expect("fits");
                (e.seq, b[at..at + usize::try_from(e.len).expect("fits")].to_vec())
            })
            .collect()
    }

    fn file_with(records: &[(u8, u64, &[u8])]) -> Vec<u8> {
        let mut b = encode_header(1).to_vec();
        for (k, s, p) in records {
            encode_record(*k, *s, p, &mut b);
        }
        b
    }

    #[test]
    fn scan_reads_appends_and_acks() {
        let b = file_with(&[(KIND_APPEND, 1, b"a"), (KIND_APPEND, 2, b"bb"), (KIND_ACK, 1, b""), (KIND_ACK, 9, b"")]);
        let s = scan_bytes(&b, 100);
        assert!(matches!(s.end, ScanEnd::Clean), "{:?}", s.end);
        assert_eq!(payloads(&b, &s), vec![(2, b"bb".to_vec())]);
        assert_eq!(s.pending[0], Entry { seq: 2, offset: HEADER_LEN + RECORD_HEADER_LEN + 1, len: 2 });
        assert_eq!(s.max_seq, Some(2));
        assert_eq!(s.good_len, b.len() as u64);
    }

    #[test]
    fn acks_out_of_order_leave_the_index_in_order() {
        let b = file_with(&[
            (KIND_APPEND, 1, b"a"),
            (KIND_APPEND, 2, b"b"),
            (KIND_APPEND, 3, b"c"),
            (KIND_APPEND, 4, b"d"),
            (KIND_ACK, 3, b""),
            (KIND_ACK, 1, b""),
        ]);
        let s = scan_bytes(&b, 100);
        assert_eq!(payloads(&b, &s), vec![(2, b"b".to_vec()), (4, b"d".to_vec())]);
    }

    #[test]
    fn absurd_length_is_refused_without_allocating() {
        let mut b = file_with(&[(KIND_APPEND, 1, b"a")]);
        let mut head = [0u8; 13];
        head[0] = KIND_APPEND;
        head[1..9].copy_from_slice(&2u64.to_le_bytes());
        head[9..13].copy_from_slice(&u32::MAX.to_le_bytes());
        b.extend_from_slice(&head);
        b.extend_from_slice(&crc32fast::hash(&head).to_le_bytes());
        b.extend_from_slice(&[0, 0, 0, 0]);
        b.extend_from_slice(b"some data");
        let s = scan_bytes(&b, 1 << 20);
        assert!(matches!(&s.end, ScanEnd::Corrupt(r) if r.contains("exceeds")), "{:?}", s.end);
        assert_eq!(s.pending.len(), 1);
    }

    #[test]
    fn payloads_longer_than_a_chunk_are_checked_whole() {
        let big: Vec<u8> = (0..CHUNK * 2 + 17).map(|i| (i % 251) as u8).collect();
        let b = file_with(&[(KIND_APPEND, 1, &big), (KIND_APPEND, 2, b"x")]);
        let s = scan_bytes(&b, 1 << 20);
        assert!(matches!(s.end, ScanEnd::Clean), "{:?}", s.end);
        assert_eq!(payloads(&b, &s), vec![(1, big.clone()), (2, b"x".to_vec())]);
        // A flipped byte in the second chunk is found.
        let mut m = b.clone();
        let i = usize::try_from(HEADER_LEN + RECORD_HEADER_LEN).expect("fits") + CHUNK + 5;
        m[i] ^= 1;
        assert!(matches!(scan_bytes(&m, 1 << 20).end, ScanEnd::Corrupt(_)));
    }

    #[test]
    fn non_increasing_sequence_is_corrupt() {
        let b = file_with(&[(KIND_APPEND, 5, b"a"), (KIND_APPEND, 5, b"b")]);
        assert!(matches!(scan_bytes(&b, 100).end, ScanEnd::Corrupt(_)));
        let b = file_with(&[(KIND_APPEND, 1, b"a"), (KIND_ACK, 1, b"x")]);
        assert!(matches!(scan_bytes(&b, 100).end, ScanEnd::Corrupt(_)));
        let b = file_with(&[(7, 1, b"a"), (KIND_APPEND, 2, b"b")]);
        assert!(matches!(scan_bytes(&b, 100).end, ScanEnd::Corrupt(_)));
    }

    #[test]
    fn zero_filled_tail_is_torn() {
        let mut b = file_with(&[(KIND_APPEND, 1, b"abc")]);
        let good = b.len() as u64;
        b.extend_from_slice(&[0u8; 4096]);
        let s = scan_bytes(&b, 100);
        assert!(matches!(s.end, ScanEnd::Torn(_)), "{:?}", s.end);
        assert_eq!(s.good_len, good);
    }

    /// Every prefix and every single-byte change of a valid file scans without panicking, and
    /// never yields a record that was not in the file.
    #[test]
    fn mutations_never_panic_or_invent_records() {
        let b = file_with(&[(KIND_APPEND, 1, b"first"), (KIND_APPEND, 2, b"second"), (KIND_ACK, 1, b"")]);
        let known = |p: &[u8]| p == b"first" || p == b"second";
        for cut in 0..b.len() {
            let s = scan_bytes(&b[..cut], 100);
            assert!(payloads(&b[..cut], &s).iter().all(|(_, p)| known(p)));
        }
        for i in 0..b.len() {
            for bit in 0..8 {
                let mut m = b.clone();
                m[i] ^= 1 << bit;
                let s = scan_bytes(&m, 100);
                assert!(payloads(&m, &s).iter().all(|(_, p)| known(p)), "byte {i} bit {bit}");
                assert!(!matches!(s.end, ScanEnd::Clean), "byte {i} bit {bit}: damage went unnoticed");
            }
        }
    }

    #[test]
    fn index_entries_stay_small() {
        assert_eq!(size_of::<Entry>(), 24);
    }
}
