//! `reportMicMsg` on one thread without the network: the generated decoder (a `BTreeMap` of
//! owned heads and bodies) against `tars_stat::mic` (borrowed views), alone and followed by
//! what `StatObj` does with each entry (normalize, then merge into the shard's map, which
//! already holds every key: the steady state within a 5-minute window). Each iteration goes
//! through all 100 requests of `tars-bench-stat`'s workload (10,000 distinct keys, 100 entries
//! per request), so the map and the requests are as big as in the ingest benchmark. `mic` is
//! `StatObj`'s path for iVersion 1 requests, `generated` its path for TUP and JSON.
//!
//! On a shared machine prefer `tars-bench-stat --part decode`, which counts this thread's CPU
//! time instead of wall time. Results: `bench/RESULTS.md`.

use std::collections::HashMap;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tars_bench::stat::{decode_generated, ingest_generated, ingest_mic, mic_entries, report_bodies};
use tars_stat::mic::{MicLimits, MicReport};

fn bench(c: &mut Criterion) {
    let entries = mic_entries(10_000, 0x57A7_2026);
    let bodies = report_bodies(&entries, 100);
    let peer = "10.1.0.7";
    let mut full = HashMap::new();
    let n = ingest_generated(&bodies, &mut full, peer).expect("decodes");

    let mut g = c.benchmark_group("report_mic_msg_10k_entries");
    g.throughput(Throughput::Elements(n));
    g.bench_function(BenchmarkId::new("decode", "generated"), |b| {
        b.iter(|| {
            for body in &bodies {
                black_box(decode_generated(black_box(body)).expect("decodes"));
            }
        })
    });
    g.bench_function(BenchmarkId::new("decode", "mic"), |b| {
        b.iter(|| {
            for body in &bodies {
                black_box(MicReport::decode(black_box(body), MicLimits::default()).expect("decodes").len());
            }
        })
    });
    g.bench_function(BenchmarkId::new("decode_normalize_merge", "generated"), |b| {
        let mut map = full.clone();
        b.iter(|| ingest_generated(black_box(&bodies), &mut map, peer).expect("decodes"))
    });
    g.bench_function(BenchmarkId::new("decode_normalize_merge", "mic"), |b| {
        let mut map = full.clone();
        let mut scratch = Vec::new();
        b.iter(|| ingest_mic(black_box(&bodies), &mut map, &mut scratch, peer).expect("decodes"))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
