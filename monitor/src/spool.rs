//! An append-only, checksummed, fsync'd file of batches: what a database's writer keeps while
//! MySQL is unreachable and across restarts, so an outage or a crash loses nothing
//! (upstream drops the batch after one retry, framework.md §14 item 27).
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
//! Every write is followed by `fdatasync` before the call returns. When nothing is pending the
//! file is replaced by an empty one (temp file, fsync, rename, fsync of the directory), and when
//! acknowledged records make up most of it, by one holding only the pending records; so it
//! never grows much beyond twice the pending data.
//!
//! On open, a damaged last record (a write cut short by a crash: the file ends inside it, or
//! what follows its header is only zeros) is cut off with a warning. Damage anywhere else stops
//! the replay there: the records before it are kept, the file is renamed aside to
//! `<name>.spool.corrupt-<unix>` for a human to look at, and [`Spool::corruption`] says where it
//! broke. The service starts either way, and nothing is deleted.

use std::collections::BTreeMap;
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
    /// Sequence numbers ran out (only a hand-made file can get there).
    #[error("spool {}: sequence numbers exhausted", path.display())]
    SeqExhausted {
        /// The spool file.
        path: PathBuf,
    },
}

/// A spool file and what it holds that the database has not acknowledged. Lives on one
/// database writer's thread (it is `Send`, not shared): one spool per database, under a name
/// no other spool uses.
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
    pending: BTreeMap<u64, Vec<u8>>,
    pending_bytes: u64,
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
    pending: BTreeMap<u64, Vec<u8>>,
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

/// Reads a spool file of `file_len` bytes from `r`. Payloads longer than `max_payload` are
/// refused before anything is allocated for them.
fn scan(r: &mut impl Read, file_len: u64, max_payload: u64) -> io::Result<Scan> {
    let mut out = Scan { base_seq: 1, max_seq: None, pending: BTreeMap::new(), good_len: 0, end: ScanEnd::Clean };
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
        let kind = rh[0];
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&rh[1..9]);
        let seq = u64::from_le_bytes(seq);
        let len = u64::from(u32::from_le_bytes([rh[9], rh[10], rh[11], rh[12]]));
        let head_crc = u32::from_le_bytes([rh[13], rh[14], rh[15], rh[16]]);
        let crc = u32::from_le_bytes([rh[17], rh[18], rh[19], rh[20]]);
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
        // Bounded: `len` is at most `max_payload` and no more than the file still holds.
        let mut payload = vec![0u8; usize::try_from(len).unwrap_or(0)];
        r.read_exact(&mut payload)?;
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&rh[0..13]);
        hasher.update(&payload);
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
                out.pending.insert(seq, payload);
            }
            _ => {
                if out.pending.remove(&seq).is_none() {
                    tracing::debug!(seq, offset = off, "spool acknowledgement of a record not pending; ignored");
                }
            }
        }
        off += record_len;
        out.good_len = off;
    }
}

/// Writes a complete spool file (header and `pending`) atomically at `path`: temp file, fsync,
/// rename, fsync of the directory. Returns the handle (now at `path`) and the file's length.
fn write_whole(
    dir: &Path,
    path: &Path,
    tmp: &Path,
    base_seq: u64,
    pending: &BTreeMap<u64, Vec<u8>>,
) -> Result<(File, u64), SpoolError> {
    let mut buf = Vec::with_capacity(
        usize::try_from(HEADER_LEN).unwrap_or(0)
            + pending.values().map(|p| p.len() + usize::try_from(RECORD_HEADER_LEN).unwrap_or(0)).sum::<usize>(),
    );
    buf.extend_from_slice(&encode_header(base_seq));
    for (seq, payload) in pending {
        encode_record(KIND_APPEND, *seq, payload, &mut buf);
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(tmp)
        .map_err(io_err(tmp, "creating the temporary file"))?;
    let written = file.write_all_at(&buf, 0).and_then(|()| file.sync_all());
    if let Err(source) = written {
        let _ = std::fs::remove_file(tmp);
        return Err(SpoolError::Io { path: tmp.to_owned(), what: "writing the temporary file", source });
    }
    if let Err(source) = std::fs::rename(tmp, path) {
        let _ = std::fs::remove_file(tmp);
        return Err(SpoolError::Io { path: path.to_owned(), what: "replacing the spool file", source });
    }
    fsync_dir(dir)?;
    Ok((file, buf.len() as u64))
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
        if !valid_name(name) {
            return Err(SpoolError::BadName(name.to_owned()));
        }
        std::fs::create_dir_all(dir).map_err(io_err(dir, "creating the spool directory"))?;
        let path = dir.join(format!("{name}.spool"));
        let tmp = dir.join(format!("{name}.spool.tmp"));
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
            let (file, len) = write_whole(dir, &path, &tmp, 1, &BTreeMap::new())?;
            return Ok(Spool::assemble(dir, path, max_bytes, file, len, 1, BTreeMap::new()));
        };
        let file_len = file.metadata().map_err(io_err(&path, "reading the file size"))?.len();
        let s = scan(&mut BufReader::new(&file), file_len, max_payload).map_err(io_err(&path, "reading the spool"))?;
        let next_seq = s.base_seq.max(s.max_seq.map_or(1, |m| m + 1)).max(1);
        match s.end {
            ScanEnd::Clean if file_len == 0 => {
                drop(file);
                let (file, len) = write_whole(dir, &path, &tmp, 1, &BTreeMap::new())?;
                Ok(Spool::assemble(dir, path, max_bytes, file, len, 1, BTreeMap::new()))
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
                drop(file);
                let moved_to = Spool::move_aside(dir, &path)?;
                let error = SpoolError::Corrupt { path: path.clone(), offset: s.good_len, reason, moved_to };
                tracing::error!(error = %error, pending = s.pending.len(), "spool damaged; starting a new file");
                let (file, len) = write_whole(dir, &path, &tmp, next_seq, &s.pending)?;
                let mut spool = Spool::assemble(dir, path, max_bytes, file, len, next_seq, s.pending);
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
        pending: BTreeMap<u64, Vec<u8>>,
    ) -> Spool {
        let pending_bytes = pending.values().map(|p| p.len() as u64).sum();
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
        if payload_len > u64::from(u32::MAX) || payload_len > self.max_bytes.saturating_sub(self.pending_bytes) {
            return Err(SpoolError::Full {
                path: self.path.clone(),
                pending_bytes: self.pending_bytes,
                payload_len,
                max_bytes: self.max_bytes,
            });
        }
        let seq = self.next_seq;
        let next = seq.checked_add(1).filter(|n| *n < u64::MAX);
        let Some(next) = next else { return Err(SpoolError::SeqExhausted { path: self.path.clone() }) };
        self.write_record(KIND_APPEND, seq, payload)?;
        self.next_seq = next;
        self.pending.insert(seq, payload.to_vec());
        self.pending_bytes += payload_len;
        Ok(seq)
    }

    /// Records (synced) that batch `seq` reached the database. Returns false, writing nothing,
    /// when `seq` is not pending. Empties or compacts the file when acknowledged records make
    /// up most of it; a failed compaction is logged and retried at the next acknowledgement.
    pub fn ack(&mut self, seq: u64) -> Result<bool, SpoolError> {
        if !self.pending.contains_key(&seq) {
            return Ok(false);
        }
        self.write_record(KIND_ACK, seq, &[])?;
        if let Some(p) = self.pending.remove(&seq) {
            self.pending_bytes -= p.len() as u64;
        }
        let live = HEADER_LEN + self.pending_bytes + RECORD_HEADER_LEN * self.pending.len() as u64;
        let dead = self.len.saturating_sub(live);
        if self.pending.is_empty() || (dead > live && dead >= COMPACT_MIN) {
            if let Err(e) = self.rewrite() {
                tracing::warn!(error = %e, "spool compaction failed; the file stays valid and is retried later");
            }
        }
        Ok(true)
    }

    /// Replaces the file by one holding only the pending records.
    fn rewrite(&mut self) -> Result<(), SpoolError> {
        let tmp = self.dir.join(format!(
            "{}.tmp",
            self.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
        ));
        let (file, len) = write_whole(&self.dir, &self.path, &tmp, self.next_seq, &self.pending)?;
        self.file = file;
        self.len = len;
        self.dirty = false;
        Ok(())
    }

    /// The batches not yet acknowledged, in append order: those a previous run left, then those
    /// appended since.
    pub fn pending(&self) -> impl Iterator<Item = (u64, &[u8])> + '_ {
        self.pending.iter().map(|(s, p)| (*s, p.as_slice()))
    }

    /// How many batches are pending.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Payload bytes pending (what the limit counts).
    pub fn pending_bytes(&self) -> u64 {
        self.pending_bytes
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

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_bytes(b: &[u8], max: u64) -> Scan {
        scan(&mut &b[..], b.len() as u64, max).expect("reading from memory cannot fail")
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
        assert_eq!(s.pending.into_iter().collect::<Vec<_>>(), vec![(2, b"bb".to_vec())]);
        assert_eq!(s.max_seq, Some(2));
        assert_eq!(s.good_len, b.len() as u64);
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
        for cut in 0..b.len() {
            let s = scan_bytes(&b[..cut], 100);
            assert!(s.pending.values().all(|p| p == b"first" || p == b"second"));
        }
        for i in 0..b.len() {
            for bit in 0..8 {
                let mut m = b.clone();
                m[i] ^= 1 << bit;
                let s = scan_bytes(&m, 100);
                assert!(s.pending.values().all(|p| p == b"first" || p == b"second"), "byte {i} bit {bit}");
                assert!(!matches!(s.end, ScanEnd::Clean), "byte {i} bit {bit}: damage went unnoticed");
            }
        }
    }
}
