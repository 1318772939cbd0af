//! A spool file with arbitrary contents: opening it never panics and never fails (only I/O
//! errors may make `open` fail); what it replays is in increasing sequence order within the
//! limit; a new batch can be appended and acknowledged; and reopening replays the same batches
//! again, with no damage reported the second time.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
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

fuzz_target!(|data: &[u8]| {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let dir = Dir(std::env::temp_dir().join(format!("tars-fuzz-spool-{}-{n}", std::process::id())));
    std::fs::create_dir_all(&dir.0).expect("temp dir");
    std::fs::write(dir.0.join("f.spool"), data).expect("write input");

    let mut spool = Spool::open(&dir.0, "f", MAX).expect("any file contents open");
    let first: Vec<(u64, Vec<u8>)> = spool.pending().map(|r| r.expect("a replayed record reads back")).collect();
    assert_eq!(spool.pending_seqs().collect::<Vec<_>>(), first.iter().map(|(s, _)| *s).collect::<Vec<_>>());
    assert_eq!(spool.first_pending(), first.first().map(|(s, _)| *s));
    assert!(first.windows(2).all(|w| w[0].0 < w[1].0), "replay out of order");
    assert!(first.iter().all(|(_, p)| p.len() as u64 <= MAX));
    assert_eq!(spool.pending_bytes(), first.iter().map(|(_, p)| p.len() as u64).sum::<u64>());
    if let Some(last) = first.last() {
        assert!(spool.next_seq() > last.0);
    }
    if let Ok(seq) = spool.append(b"fuzz") {
        assert!(first.last().is_none_or(|l| seq > l.0));
        assert!(spool.ack(seq).expect("ack"));
    }
    drop(spool);

    let again = Spool::open(&dir.0, "f", MAX).expect("reopen");
    assert!(again.corruption().is_none(), "a rewritten spool is damaged: {:?}", again.corruption());
    assert!(again.truncated_tail().is_none());
    let second: Vec<(u64, Vec<u8>)> = again.pending().map(|r| r.expect("a replayed record reads back")).collect();
    assert_eq!(first, second);
});
