//! The spool on a real file system: replay after reopen, crash damage, limits, shrinking.

use std::path::{Path, PathBuf};

use tars_monitor::spool::{Spool, SpoolError, HEADER_LEN, RECORD_HEADER_LEN};
use tars_testkit::process::TempDir;

fn pending(s: &Spool) -> Vec<(u64, Vec<u8>)> {
    let all: Vec<(u64, Vec<u8>)> = s.pending().map(|r| r.expect("a pending record reads back")).collect();
    assert_eq!(s.pending_seqs().collect::<Vec<_>>(), all.iter().map(|(q, _)| *q).collect::<Vec<_>>());
    assert_eq!(s.pending_bytes(), all.iter().map(|(_, p)| p.len() as u64).sum::<u64>());
    all
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

/// The payload of record `i` in the memory tests: distinct per record and per byte.
fn payload_of(i: usize, len: usize) -> Vec<u8> {
    let mut state = (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect()
}

/// Every pending record reads back, one at a time, as `expected(seq)`.
fn assert_reads_back(s: &mut Spool, expected: &dyn Fn(u64) -> Vec<u8>, what: &str) {
    let seqs: Vec<u64> = s.pending_seqs().collect();
    for q in seqs {
        let got = s.read(q).unwrap_or_else(|e| panic!("{what}: seq {q}: {e}")).expect("pending");
        assert!(got == expected(q), "{what}: seq {q} reads back different bytes");
    }
    assert_eq!(s.lost_records(), 0, "{what}");
}

/// The memory bound this item promises: per pending record the spool holds an index entry,
/// not the payload.
const MAX_RESIDENT_PER_RECORD: usize = 64;

fn assert_small(s: &Spool, what: &str) -> f64 {
    let per = s.resident_bytes() as f64 / s.pending_len() as f64;
    assert!(
        s.resident_bytes() <= MAX_RESIDENT_PER_RECORD * s.pending_len(),
        "{what}: {} bytes resident for {} records ({per:.1} per record), {} bytes pending",
        s.resident_bytes(),
        s.pending_len(),
        s.pending_bytes()
    );
    per
}

#[test]
fn tens_of_megabytes_pending_cost_an_index_of_a_few_bytes_each() {
    const RECORDS: usize = 1500;
    const LEN: usize = 20_000;
    let dir = TempDir::new("spool-memory").expect("temp dir");
    let mut s = open(&dir.0, 1 << 30);
    let mut seqs = Vec::with_capacity(RECORDS);
    for i in 0..RECORDS {
        seqs.push(s.append(&payload_of(i, LEN)).expect("append"));
    }
    let index_of = |q: u64| seqs.iter().position(|&x| x == q).expect("a seq we appended");
    let expected = |q: u64| payload_of(index_of(q), LEN);
    assert_eq!(s.pending_bytes(), (RECORDS * LEN) as u64, "30 MB pending");
    let appended = assert_small(&s, "after appending");
    assert!(s.resident_bytes() * 500 < usize::try_from(s.pending_bytes()).expect("fits"), "index vs payload");
    assert_reads_back(&mut s, &expected, "after appending");
    drop(s);

    let mut s = open(&dir.0, 1 << 30);
    assert_eq!(s.pending_len(), RECORDS);
    let reopened = assert_small(&s, "after reopening");
    assert_reads_back(&mut s, &expected, "after reopening");

    // Two of every three written: the acknowledged bytes pass the pending ones and the file
    // is rewritten, the pending records copied over.
    let before = s.file_len();
    for (i, q) in seqs.iter().enumerate() {
        if i % 3 != 0 {
            assert!(s.ack(*q).expect("ack"));
        }
    }
    let kept = RECORDS.div_ceil(3);
    assert_eq!(s.pending_len(), kept);
    let live = HEADER_LEN + s.pending_bytes() + RECORD_HEADER_LEN * kept as u64;
    assert!(
        s.file_len() < before && s.file_len() <= 2 * live,
        "compacted: {} of {before} bytes, {live} live",
        s.file_len()
    );
    assert_eq!(s.file_len(), std::fs::metadata(s.path()).expect("stat").len());
    let compacted = assert_small(&s, "after compaction");
    assert_reads_back(&mut s, &expected, "after compaction");
    assert_eq!(pending(&s).len(), kept);
    // Appends after the rewrite land in the new file, at the offsets the index says.
    let extra = s.append(b"after the rewrite").expect("append");
    assert_eq!(s.read(extra).expect("read").as_deref(), Some(&b"after the rewrite"[..]));
    drop(s);

    let mut s = open(&dir.0, 1 << 30);
    assert!(s.corruption().is_none() && s.truncated_tail().is_none());
    assert_eq!(s.pending_len(), kept + 1);
    assert!(s.ack(extra).expect("ack"));
    assert_reads_back(&mut s, &expected, "after compaction and reopening");
    eprintln!(
        "resident bytes per pending record: {appended:.1} appended, {reopened:.1} reopened, {compacted:.1} compacted ({} records, {} MB pending)",
        RECORDS,
        RECORDS * LEN / 1_000_000
    );
}

#[test]
fn the_index_gives_memory_back_when_a_backlog_is_written() {
    let dir = TempDir::new("spool-shrink-index").expect("temp dir");
    let mut s = open(&dir.0, 1 << 30);
    let seqs: Vec<u64> = (0..5000).map(|i| s.append(&[i as u8; 8]).expect("append")).collect();
    let full = s.resident_bytes();
    assert!(full >= 5000 * 24, "{full}");
    for q in &seqs[..4990] {
        s.ack(*q).expect("ack");
    }
    assert_eq!(s.pending_len(), 10);
    assert!(s.resident_bytes() <= 64 * 24, "{} bytes resident for 10 records (was {full})", s.resident_bytes());
    assert_eq!(pending(&s).into_iter().map(|(q, _)| q).collect::<Vec<_>>(), seqs[4990..].to_vec());
}

/// Flips one bit of the byte at `at` in the file, behind the spool's back.
fn flip(path: &Path, at: u64) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new().read(true).write(true).open(path).expect("open");
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, at).expect("read");
    b[0] ^= 0x20;
    f.write_all_at(&b, at).expect("write");
}

#[test]
fn a_record_damaged_after_it_was_written_is_dropped_and_the_file_rewritten() {
    let dir = TempDir::new("spool-damaged-read").expect("temp dir");
    let mut s = open(&dir.0, 1 << 20);
    let a = s.append(b"first batch").expect("append");
    let b_at = s.file_len();
    let b = s.append(b"second batch").expect("append");
    let c = s.append(b"third batch").expect("append");
    flip(s.path(), b_at + RECORD_HEADER_LEN + 2);

    // Reading everything reports it and leaves it pending; reading it drops it.
    let listed: Vec<_> = s.pending().collect();
    assert_eq!(listed.len(), 3);
    assert!(matches!(&listed[1], Err(SpoolError::Damaged { seq, offset, .. }) if *seq == b && *offset == b_at));
    assert_eq!(s.pending_len(), 3);
    match s.read(b) {
        Err(SpoolError::Damaged { seq, .. }) => assert_eq!(seq, b),
        other => panic!("expected Damaged, got {other:?}"),
    }
    assert_eq!(s.lost_records(), 1);
    assert_eq!(pending(&s), vec![(a, b"first batch".to_vec()), (c, b"third batch".to_vec())]);
    assert_eq!(s.pending_bytes(), 22);
    assert_eq!(s.read(b).expect("not pending is not an error"), None);
    drop(s);

    // The rewrite left the damage behind: the next open replays all that is left.
    let s = open(&dir.0, 1 << 20);
    assert!(s.corruption().is_none(), "{:?}", s.corruption());
    assert_eq!(pending(&s), vec![(a, b"first batch".to_vec()), (c, b"third batch".to_vec())]);
    assert!(corrupt_files(&dir.0).is_empty());
}

#[test]
fn compaction_leaves_out_a_record_damaged_on_disk() {
    let dir = TempDir::new("spool-damaged-copy").expect("temp dir");
    let mut s = open(&dir.0, 1 << 20);
    let a = s.append(b"waits for the database").expect("append");
    let bad_at = s.file_len();
    let bad = s.append(b"this one rots on disk").expect("append");
    flip(s.path(), bad_at + RECORD_HEADER_LEN + 5);
    let payload = vec![9u8; 10_000];
    for _ in 0..20 {
        let q = s.append(&payload).expect("append");
        s.ack(q).expect("ack");
    }
    assert_eq!(s.lost_records(), 1, "the rewrite found the damage");
    assert_eq!(s.pending_seqs().collect::<Vec<_>>(), vec![a]);
    assert!(!s.ack(bad).expect("ack"), "no longer pending");
    drop(s);
    let s = open(&dir.0, 1 << 20);
    assert!(s.corruption().is_none(), "{:?}", s.corruption());
    assert_eq!(pending(&s), vec![(a, b"waits for the database".to_vec())]);
}

#[test]
fn a_file_written_before_this_layout_still_opens() {
    // Bytes as the format has always been written: header (base 1), append 1 "one",
    // append 2 "two", ack 1.
    fn record(kind: u8, seq: u64, payload: &[u8]) -> Vec<u8> {
        let mut head = vec![kind];
        head.extend_from_slice(&seq.to_le_bytes());
        head.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        let mut all = head.clone();
        all.extend_from_slice(payload);
        let mut r = head.clone();
        r.extend_from_slice(&crc32fast_hash(&head).to_le_bytes());
        r.extend_from_slice(&crc32fast_hash(&all).to_le_bytes());
        r.extend_from_slice(payload);
        r
    }
    let mut bytes = b"TARSSPOL".to_vec();
    bytes.extend_from_slice(&1u16.to_le_bytes());
    bytes.extend_from_slice(&0u16.to_le_bytes());
    bytes.extend_from_slice(&1u64.to_le_bytes());
    let crc = crc32fast_hash(&bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
    bytes.extend(record(1, 1, b"one"));
    bytes.extend(record(1, 2, b"two"));
    bytes.extend(record(2, 1, b""));
    let dir = TempDir::new("spool-format").expect("temp dir");
    std::fs::write(dir.0.join("db1.spool"), &bytes).expect("write");
    let mut s = open(&dir.0, 1 << 20);
    assert!(s.corruption().is_none() && s.truncated_tail().is_none());
    assert_eq!(pending(&s), vec![(2, b"two".to_vec())]);
    assert_eq!(s.next_seq(), 3);
    // And what we write is that format: the next record follows byte for byte.
    s.append(b"three").expect("append");
    let mut want = bytes.clone();
    want.extend(record(1, 3, b"three"));
    assert_eq!(std::fs::read(s.path()).expect("read"), want);
}

/// CRC-32 (IEEE), bit by bit: the checksum the format specifies, computed independently.
fn crc32fast_hash(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

#[test]
fn dead_letters_are_kept_bounded_and_read_back() {
    use tars_monitor::spool::DeadLetters;
    let dir = TempDir::new("spool-dead").expect("temp dir");
    assert_eq!(DeadLetters::path_for(&dir.0, "db1"), dir.0.join("db1.dead"));
    let mut d = DeadLetters::open(&dir.0, "db1", 100).expect("open");
    assert!(d.is_empty());
    assert_eq!(d.path(), dir.0.join("db1.dead"));
    d.append(&[1u8; 60]).expect("append");
    d.append(b"second").expect("append");
    assert!(matches!(d.append(&[2u8; 50]), Err(SpoolError::Full { .. })), "bounded like the spool");
    assert_eq!((d.len(), d.bytes()), (2, 66));
    drop(d);
    let d = DeadLetters::open(&dir.0, "db1", 100).expect("reopen");
    assert!(d.corruption().is_none());
    let records: Vec<Vec<u8>> = d.records().map(|r| r.expect("reads back").1).collect();
    assert_eq!(records, vec![vec![1u8; 60], b"second".to_vec()]);
    assert_eq!(d.file_len(), std::fs::metadata(d.path()).expect("stat").len());
    // The spool of the same name is another file.
    let s = open(&dir.0, 100);
    assert_eq!(s.pending_len(), 0);
}
