//! The descriptor cache: the last `getServers` answer, kept on disk so that a node started
//! while the registry is down still knows its servers (upstream keeps a `TC_HashMap` file,
//! `serversCache.dat`, for the same purpose).
//!
//! Our own format, written atomically (temporary file, fsync, rename): the magic line
//! [`MAGIC`], then per server a 4-byte big-endian length and the TARS encoding of its
//! `ServerDescriptor`. A truncated or undecodable file is reported, never half-used.
//!
//! Blocking file IO: called from the node's manager thread only.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use tars_proto::codec::Struct;
use tars_protocol::tars::ServerDescriptor;

/// First bytes of a cache file.
pub const MAGIC: &[u8] = b"tars-rs node descriptor cache v1\n";

/// The cache file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// Reading or writing.
    #[error("descriptor cache {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The file is not a cache file or is cut short.
    #[error("descriptor cache {path}: corrupt ({why})")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
}

/// Encodes descriptors in the cache format.
pub fn encode(servers: &[ServerDescriptor]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    for d in servers {
        let body = d.encode();
        let len = u32::try_from(body.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&body);
    }
    out
}

/// Decodes the cache format.
pub fn decode(buf: &[u8]) -> Result<Vec<ServerDescriptor>, String> {
    let mut rest = buf.strip_prefix(MAGIC).ok_or("no magic line")?;
    let mut out = Vec::new();
    while !rest.is_empty() {
        let (len, tail) = rest.split_first_chunk::<4>().ok_or("truncated length")?;
        let len = usize::try_from(u32::from_be_bytes(*len)).map_err(|e| e.to_string())?;
        if tail.len() < len {
            return Err("truncated descriptor".into());
        }
        let (body, tail) = tail.split_at(len);
        out.push(ServerDescriptor::decode(body).map_err(|e| e.to_string())?);
        rest = tail;
    }
    Ok(out)
}

/// Reads the cache; `Ok(None)` when there is no file.
pub fn load(path: &Path) -> Result<Option<Vec<ServerDescriptor>>, CacheError> {
    match fs::read(path) {
        Ok(buf) => decode(&buf).map(Some).map_err(|why| CacheError::Corrupt { path: path.to_owned(), why }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CacheError::Io { path: path.to_owned(), source }),
    }
}

/// Writes the cache atomically, unless the file already holds exactly these descriptors.
/// Returns whether it wrote.
pub fn store(path: &Path, servers: &[ServerDescriptor]) -> Result<bool, CacheError> {
    let bytes = encode(servers);
    if fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(false);
    }
    let err = |source| CacheError::Io { path: path.to_owned(), source };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(err)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp.{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(err(e));
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn round_trip_and_corruption() {
        let d = ServerDescriptor {
            application: "App".into(),
            server_name: "S".into(),
            profile: "<tars>\n</tars>\n".into(),
            ..Default::default()
        };
        let bytes = encode(&[d.clone(), d.clone()]);
        let back = decode(&bytes).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[1].server_name, "S");
        assert!(decode(&bytes[..bytes.len() - 1]).is_err());
        assert!(decode(b"nope").is_err());
        assert!(decode(MAGIC).unwrap().is_empty());
    }
}
