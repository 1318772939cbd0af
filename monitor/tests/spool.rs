//! The spool on a real file system: replay after reopen, crash damage, limits, shrinking.

use std::path::{Path, PathBuf};

use tars_monitor::spool::{Spool, SpoolError, HEADER_LEN, RECORD_HEADER_LEN};
use tars_testkit::process::TempDir;

fn pending(s: &Spool) -> Vec<(u64, Vec<u8>)> {
    s.pending().map(|(q, p)| (q, p.to_vec())).collect()
}

fn open(dir: &Path, max: u64) -> Spool {
    Spool::open(dir, "db1", max).expect("spool opens")
}

fn corrupt_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("db1.spool.corrupt-")))
        .collect();
    v.sort();
    v
}

#[test]
fn reopen_replays_exactly_the_unacked_in_order() {
    let dir = TempDir::new("spool-replay").expect("temp dir");
    let mut s = open(&dir.0, 1 << 20);
    assert_eq!(s.pending_len(), 0);
    let seqs: Vec<u64> = (0..5).map(|i| s.append(format!("batch {i}").as_bytes()).expect("append")).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    assert!(s.ack(seqs[1]).expect("ack"));
    assert!(s.ack(seqs[3]).expect("ack"));
    assert!(!s.ack(seqs[3]).expect("second ack of the same batch"), "a second ack is not an ack");
    assert!(!s.ack(999).expect("unknown ack"));
    let want = vec![(seqs[0], b"batch 0".to_vec()), (seqs[2], b"batch 2".to_vec()), (seqs[4], b"batch 4".to_vec())];
    assert_eq!(pending(&s), want);
    assert_eq!(s.pending_bytes(), 21);
    drop(s);

    let mut s = open(&dir.0, 1 << 20);
    assert_eq!(pending(&s), want);
    assert!(s.corruption().is_none());
    assert!(s.truncated_tail().is_none());
    let new = s.append(b"after restart").expect("append");
    assert!(new > seqs[4], "{new} after {}", seqs[4]);
    assert!(s.ack(seqs[0]).expect("ack"));
    drop(s);

    let s = open(&dir.0, 1 << 20);
    assert_eq!(
        pending(&s),
        vec![(seqs[2], b"batch 2".to_vec()), (seqs[4], b"batch 4".to_vec()), (new, b"after restart".to_vec())]
    );
}

#[test]
fn file_shrinks_when_everything_is_acked_and_numbers_keep_increasing() {
    let dir = TempDir::new("spool-shrink").expect("temp dir");
    let mut s = open(&dir.0, 1 << 20);
    assert_eq!(std::fs::metadata(s.path()).expect("stat").len(), HEADER_LEN);
    let a = s.append(&[7u8; 1000]).expect("append");
    let b = s.append(&[8u8; 1000]).expect("append");
    let full = std::fs::metadata(s.path()).expect("stat").len();
    assert_eq!(full, HEADER_LEN + 2 * (RECORD_HEADER_LEN + 1000));
    s.ack(a).expect("ack");
    assert!(std::fs::metadata(s.path()).expect("stat").len() > full, "one pending: the ack is appended");
    s.ack(b).expect("ack");
    assert_eq!(std::fs::metadata(s.path()).expect("stat").len(), HEADER_LEN, "emptied once nothing is pending");
    assert_eq!(s.file_len(), HEADER_LEN);
    // Appends after the rewrite land in the new file.
    let c = s.append(b"c").expect("append");
    assert!(c > b);
    s.ack(c).expect("ack");
    drop(s);
    let mut s = open(&dir.0, 1 << 20);
    assert_eq!(s.pending_len(), 0);
    let d = s.append(b"d").expect("append");
    assert!(d > c, "sequence numbers restart after an emptied file: {d} <= {c}");
    assert!(!dir.0.join("db1.spool.tmp").exists());
}

#[test]
fn file_is_compacted_while_something_stays_pending() {
    let dir = TempDir::new("spool-compact").expect("temp dir");
    let mut s = open(&dir.0, 1 << 20);
    let stuck = s.append(b"waits for the database").expect("append");
    let payload = vec![1u8; 10_000];
    let mut largest = 0;
    for _ in 0..100 {
        let q = s.append(&payload).expect("append");
        s.ack(q).expect("ack");
        largest = largest.max(std::fs::metadata(s.path()).expect("stat").len());
    }
    // 100 × 10 kB went through; the file never held much more than the compaction threshold.
    assert!(largest < 100_000, "file grew to {largest} bytes");
    assert_eq!(pending(&s), vec![(stuck, b"waits for the database".to_vec())]);
    drop(s);
    let s = open(&dir.0, 1 << 20);
    assert_eq!(pending(&s), vec![(stuck, b"waits for the database".to_vec())]);
    assert!(s.next_seq() > stuck + 100);
}

#[test]
fn torn_tail_is_cut_off() {
    let dir = TempDir::new("spool-torn").expect("temp dir");
    let mut s = open(&dir.0, 1 << 20);
    let a = s.append(b"one").expect("append");
    let b = s.append(b"two").expect("append");
    let good = s.file_len();
    s.append(b"three, cut short").expect("append");
    let path = s.path().to_owned();
    drop(s);
    // A crash in the middle of the third record's write.
    let f = std::fs::OpenOptions::new().write(true).open(&path).expect("open");
    f.set_len(good + 10).expect("truncate");
    drop(f);

    let mut s = open(&dir.0, 1 << 20);
    assert_eq!(pending(&s), vec![(a, b"one".to_vec()), (b, b"two".to_vec())]);
    assert_eq!(s.truncated_tail(), Some(good));
    assert!(s.corruption().is_none());
    assert_eq!(std::fs::metadata(&path).expect("stat").len(), good);
    assert!(corrupt_files(&dir.0).is_empty(), "a torn tail is not corruption");
    let d = s.append(b"four").expect("append");
    assert!(d > b);
    drop(s);

    // A tail whose size reached the disk but whose data did not: zeros.
    let f = std::fs::OpenOptions::new().append(true).open(&path).expect("open");
    std::io::Write::write_all(&mut &f, &[0u8; 300]).expect("write zeros");
    drop(f);
    let s = open(&dir.0, 1 << 20);
    assert_eq!(pending(&s), vec![(a, b"one".to_vec()), (b, b"two".to_vec()), (d, b"four".to_vec())]);
    assert!(s.truncated_tail().is_some());
    drop(s);
    let s = open(&dir.0, 1 << 20);
    assert!(s.truncated_tail().is_none(), "the cut is durable");
    assert_eq!(s.pending_len(), 3);
}

#[test]
fn damage_in_the_middle_stops_replay_and_moves_the_file_aside() {
    let dir = TempDir::new("spool-corrupt").expect("temp dir");
    let mut s = open(&dir.0, 1 << 20);
    let a = s.append(b"first batch").expect("append");
    let second_at = s.file_len();
    s.append(b"second batch").expect("append");
    s.append(b"third batch").expect("append");
    let path = s.path().to_owned();
    drop(s);
    let mut damaged = std::fs::read(&path).expect("read");
    // Flip one payload byte of the second record.
    let i = usize::try_from(second_at + RECORD_HEADER_LEN + 3).expect("fits");
    damaged[i] ^= 0x40;
    std::fs::write(&path, &damaged).expect("write");

    let mut s = open(&dir.0, 1 << 20);
    assert_eq!(pending(&s), vec![(a, b"first batch".to_vec())], "replay stops at the damage");
    let err = s.corruption().expect("corruption reported");
    let text = err.to_string();
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(text.contains(&format!("byte {second_at}")), "{text}");
    match err {
        SpoolError::Corrupt { offset, moved_to, .. } => {
            assert_eq!(*offset, second_at);
            assert_eq!(std::fs::read(moved_to).expect("moved file kept"), damaged, "moved aside untouched");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(corrupt_files(&dir.0).len(), 1);
    // The new file is sound and keeps going.
    let d = s.append(b"fourth").expect("append");
    assert!(d > a);
    drop(s);
    let s = open(&dir.0, 1 << 20);
    assert!(s.corruption().is_none());
    assert_eq!(pending(&s), vec![(a, b"first batch".to_vec()), (d, b"fourth".to_vec())]);
    drop(s);

    // A damaged length field in the middle is corruption too, not a torn tail.
    let dir2 = TempDir::new("spool-corrupt-len").expect("temp dir");
    let mut s = open(&dir2.0, 1 << 20);
    s.append(b"first batch").expect("append");
    let second_at = s.file_len();
    s.append(b"second batch").expect("append");
    s.append(b"third batch").expect("append");
    let path = s.path().to_owned();
    drop(s);
    let mut bytes = std::fs::read(&path).expect("read");
    let len_at = usize::try_from(second_at + 9 + 3).expect("fits"); // the length's top byte
    bytes[len_at] = 0x7f;
    std::fs::write(&path, &bytes).expect("write");
    let s = open(&dir2.0, 1 << 20);
    assert_eq!(s.pending_len(), 1);
    assert!(matches!(s.corruption(), Some(SpoolError::Corrupt { offset, .. }) if *offset == second_at));
    assert!(s.truncated_tail().is_none());
}

#[test]
fn garbage_and_empty_files_open_as_new_spools() {
    let dir = TempDir::new("spool-garbage").expect("temp dir");
    let path = dir.0.join("db1.spool");
    std::fs::write(&path, b"this is not a spool file at all, just text").expect("write");
    let mut s = open(&dir.0, 1 << 20);
    assert_eq!(s.pending_len(), 0);
    assert!(matches!(s.corruption(), Some(SpoolError::Corrupt { offset: 0, .. })));
    assert_eq!(corrupt_files(&dir.0).len(), 1);
    s.append(b"x").expect("append");
    drop(s);

    std::fs::write(&path, b"").expect("write");
    let s = open(&dir.0, 1 << 20);
    assert_eq!(s.pending_len(), 0);
    assert!(s.corruption().is_none(), "an empty file holds nothing to lose");
    assert_eq!(std::fs::metadata(&path).expect("stat").len(), HEADER_LEN);

    // A stale temp file from an interrupted rewrite is removed; the real file wins.
    std::fs::write(dir.0.join("db1.spool.tmp"), b"half a rewrite").expect("write");
    drop(s);
    let s = open(&dir.0, 1 << 20);
    assert!(!dir.0.join("db1.spool.tmp").exists());
    assert!(s.corruption().is_none());
}

#[test]
fn full_refuses_and_writes_nothing() {
    let dir = TempDir::new("spool-full").expect("temp dir");
    let mut s = open(&dir.0, 100);
    let a = s.append(&[1u8; 60]).expect("append");
    let len = s.file_len();
    match s.append(&[2u8; 50]) {
        Err(SpoolError::Full { pending_bytes: 60, payload_len: 50, max_bytes: 100, .. }) => {}
        other => panic!("expected Full, got {other:?}"),
    }
    assert_eq!(s.file_len(), len, "nothing written for a refused batch");
    assert!(matches!(s.append(&[3u8; 101]), Err(SpoolError::Full { .. })));
    s.append(&[4u8; 40]).expect("exactly up to the limit fits");
    s.ack(a).expect("ack");
    s.append(&[5u8; 50]).expect("room again after the ack");
    assert_eq!(s.pending_bytes(), 90);
    drop(s);
    // A record longer than a smaller limit is refused on read, not allocated, and kept aside.
    let s = open(&dir.0, 10);
    assert_eq!(s.pending_len(), 0);
    assert!(matches!(s.corruption(), Some(SpoolError::Corrupt { .. })));
}

#[test]
fn names_are_checked_and_directories_created() {
    let dir = TempDir::new("spool-names").expect("temp dir");
    for bad in ["", ".hidden", "a/b", "..", "a b", "x\0y"] {
        assert!(matches!(Spool::open(&dir.0, bad, 100), Err(SpoolError::BadName(_))), "{bad:?}");
    }
    let nested = dir.0.join("a/b/c");
    let s = Spool::open(&nested, "tars_stat_1.db-2", 100).expect("open");
    assert_eq!(s.path(), nested.join("tars_stat_1.db-2.spool"));
}

/// What the fuzz target checks, on damaged copies of a real spool file: `open` never fails or
/// panics, replays in order, and a reopen replays the same with no damage left to report.
#[test]
fn damaged_copies_always_open_and_replay_consistently() {
    let dir = TempDir::new("spool-mutate").expect("temp dir");
    let mut s = open(&dir.0, 1 << 20);
    for i in 0..6u8 {
        let q = s.append(&vec![i; 10 + usize::from(i) * 7]).expect("append");
        if i % 3 == 1 {
            s.ack(q).expect("ack");
        }
    }
    let original = std::fs::read(s.path()).expect("read");
    drop(s);
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut rand = move |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        usize::try_from(state % n.max(1) as u64).expect("fits")
    };
    let case_dir = dir.0.join("case");
    for case in 0..400 {
        let mut bytes = original.clone();
        for _ in 0..1 + rand(3) {
            match rand(4) {
                0 => {
                    let i = rand(bytes.len());
                    bytes[i] ^= 1 << rand(8);
                }
                1 => bytes.truncate(rand(bytes.len() + 1)),
                2 => bytes.extend((0..rand(64)).map(|_| u8::try_from(rand(256)).expect("byte"))),
                _ => {
                    let i = rand(bytes.len());
                    bytes[i] = u8::try_from(rand(256)).expect("byte");
                }
            }
        }
        let _ = std::fs::remove_dir_all(&case_dir);
        std::fs::create_dir_all(&case_dir).expect("case dir");
        std::fs::write(case_dir.join("db1.spool"), &bytes).expect("write");
        let mut s = Spool::open(&case_dir, "db1", 1 << 20).unwrap_or_else(|e| panic!("case {case}: {e}"));
        let first = pending(&s);
        assert!(first.windows(2).all(|w| w[0].0 < w[1].0), "case {case}: out of order");
        let q = s.append(b"new").expect("append");
        assert!(first.last().is_none_or(|l| q > l.0), "case {case}: seq {q} reused");
        s.ack(q).expect("ack");
        drop(s);
        let s = Spool::open(&case_dir, "db1", 1 << 20).expect("reopen");
        assert!(s.corruption().is_none() && s.truncated_tail().is_none(), "case {case}: damage left behind");
        assert_eq!(pending(&s), first, "case {case}");
    }
}
