//! The spool, two ways.
//!
//! - Input starting with an even byte: the rest is a spool file's raw contents. Opening it
//!   never panics and never fails (only I/O errors may make `open` fail); what it replays is
//!   in increasing sequence order within the limit; a new batch can be appended and
//!   acknowledged; and reopening replays the same batches again, with no damage reported the
//!   second time.
//! - Input starting with an odd byte: the rest is a program of appends, acknowledgements,
//!   reopenings, flipped bytes and cut tails on a real spool, checked against a model. Raw
//!   bytes almost never carry valid checksums, so this is what reaches replay past the first
//!   record, compaction and damage in the middle of a file.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use tars_monitor::spool::Spool;

const MAX: u64 = 1 << 16;

/// Removes the directory when the iteration ends, also when an assertion fails.
struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scratch() -> Dir {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let dir = Dir(std::env::temp_dir().join(format!("tars-fuzz-spool-{}-{n}", std::process::id())));
    std::fs::create_dir_all(&dir.0).expect("temp dir");
    dir
}

/// Every replayed record, checked for order and bounds against the spool's own counters.
fn replay(spool: &Spool) -> Vec<(u64, Vec<u8>)> {
    let got: Vec<(u64, Vec<u8>)> = spool.pending().map(|r| r.expect("a replayed record reads back")).collect();
    assert_eq!(spool.pending_seqs().collect::<Vec<_>>(), got.iter().map(|(s, _)| *s).collect::<Vec<_>>());
    assert_eq!(spool.first_pending(), got.first().map(|(s, _)| *s));
    assert!(got.windows(2).all(|w| w[0].0 < w[1].0), "replay out of order");
    assert!(got.iter().all(|(_, p)| p.len() as u64 <= MAX));
    assert_eq!(spool.pending_bytes(), got.iter().map(|(_, p)| p.len() as u64).sum::<u64>());
    if let Some(last) = got.last() {
        assert!(spool.next_seq() > last.0);
    }
    got
}

fn raw(data: &[u8]) {
    let dir = scratch();
    std::fs::write(dir.0.join("f.spool"), data).expect("write input");
    let mut spool = Spool::open(&dir.0, "f", MAX).expect("any file contents open");
    let first = replay(&spool);
    if let Ok(seq) = spool.append(b"fuzz") {
        assert!(first.last().is_none_or(|l| seq > l.0));
        assert!(spool.ack(seq).expect("ack"));
    }
    drop(spool);
    let again = Spool::open(&dir.0, "f", MAX).expect("reopen");
    assert!(again.corruption().is_none(), "a rewritten spool is damaged: {:?}", again.corruption());
    assert!(again.truncated_tail().is_none());
    assert_eq!(first, replay(&again));
}

/// Flips one byte of the file or cuts its tail; what replays afterwards must be records that
/// were really written (checksums keep damage from inventing or altering a batch).
fn damage(path: &Path, at: usize, cut: bool) {
    let Ok(mut bytes) = std::fs::read(path) else { return };
    if bytes.is_empty() {
        return;
    }
    let at = at % bytes.len();
    if cut {
        bytes.truncate(at);
    } else {
        bytes[at] ^= 0x5a;
    }
    std::fs::write(path, bytes).expect("rewrite");
}

fn program(ops: &[u8]) {
    let dir = scratch();
    let mut spool = Spool::open(&dir.0, "f", MAX).expect("a new spool opens");
    // What the spool must hold: appended and not acknowledged, in order.
    let mut model: Vec<(u64, Vec<u8>)> = Vec::new();
    // Everything ever appended: after damage, replay may only return records from here.
    let mut written: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut it = ops.iter().copied();
    while let Some(op) = it.next() {
        let arg = usize::from(it.next().unwrap_or(0));
        match op % 6 {
            0 | 1 => {
                // Payload lengths up to ~4 KiB, bytes from the program for variety.
                let len = arg * 16 + usize::from(op >> 3);
                let payload: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(op)).collect();
                if let Ok(seq) = spool.append(&payload) {
                    assert!(model.last().is_none_or(|l| seq > l.0), "sequence numbers go backwards");
                    model.push((seq, payload.clone()));
                    written.push((seq, payload));
                }
            }
            2 => {
                if !model.is_empty() {
                    let (seq, _) = model.remove(arg % model.len());
                    assert!(spool.ack(seq).expect("ack"), "a pending batch is acknowledged");
                }
            }
            3 => {
                drop(spool);
                spool = Spool::open(&dir.0, "f", MAX).expect("reopen");
                let got = replay(&spool);
                assert_eq!(got, model, "reopening changed what is pending");
            }
            _ => {
                let path = spool.path().to_path_buf();
                drop(spool);
                let at = arg * 97 + usize::from(op);
                damage(&path, at, op % 6 == 5);
                spool = Spool::open(&dir.0, "f", MAX).expect("a damaged spool opens");
                let got = replay(&spool);
                assert!(got.iter().all(|r| written.contains(r)), "damage invented or altered a batch");
                // The damage was acted on at open: from here the model is exact again.
                model = got;
            }
        }
    }
    assert_eq!(replay(&spool), model);
}

fuzz_target!(|data: &[u8]| {
    match data.split_first() {
        Some((&mode, rest)) if mode & 1 == 1 => program(rest),
        _ => raw(data),
    }
});
