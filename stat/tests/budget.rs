//! What tarsstat's aggregation really allocates against its memory budget
//! (`/tars/aggregate<maxMB>`): a counting global allocator sees every byte the service's
//! threads hold while two shards are flooded with new keys, and while the collector merges,
//! renders and hands the window to the writer (SQLite), which spools and writes it.
//!
//! The bounds this asserts are the ones the README states: filling, the process holds at most
//! 1.5 times the budget above what it held before; the flush at most 3 times.

// A global allocator is the one way to see every byte; it only forwards to `System`.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tars_monitor::clock::Clock;
use tars_monitor::collect::ShardAgg;
use tars_monitor::service::{MonitorService, ServiceConfig};
use tars_monitor::targets::Target;
use tars_proto::config::Config;
use tars_protocol::tars::{StatMicMsgBody, StatMicMsgHead};
use tars_sql::StoreUrl;
use tars_stat::ingest::{normalize, IngestRules};
use tars_stat::service::{StatAgg, KEYS, TABLES};
use tars_testkit::process::TempDir;

struct Counting;

static HELD: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(n: usize) {
    let now = HELD.fetch_add(n, Ordering::Relaxed) + n;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: every call is forwarded to `System` unchanged; only the sizes are counted.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is passed on to `System`.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) };
        HELD.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as above.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            HELD.fetch_sub(layout.size(), Ordering::Relaxed);
            grew(new_size);
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// 2026-03-15 10:02:00 UTC.
const T_1002: i64 = 1_773_568_920;
const BUDGET: u64 = 8 << 20;

fn head(shard: usize, i: usize) -> StatMicMsgHead {
    StatMicMsgHead {
        master_name: format!("Shop.OrderServer{shard}"),
        slave_name: "Shop.StockServer".into(),
        interface_name: format!("reserveItem{i}"),
        master_ip: "10.1.2.3".into(),
        slave_ip: "10.1.2.4".into(),
        slave_port: 10000,
        return_value: 0,
        tars_version: "3.0.1".into(),
        ..StatMicMsgHead::default()
    }
}

fn body() -> StatMicMsgBody {
    StatMicMsgBody {
        count: 3,
        timeout_count: 0,
        exec_count: 0,
        interval_count: [(5, 1), (10, 1), (50, 1)].into(),
        total_rsp_time: 20,
        max_rsp_time: 12,
        min_rsp_time: 3,
    }
}

/// Adds `n` new keys through `agg`, 500 per request as a client's batch would.
fn flood(agg: &ShardAgg<StatAgg>, shard: usize, n: usize) {
    let rules = IngestRules::default();
    let b = body();
    for start in (0..n).step_by(500) {
        let mut batch = agg.batch();
        for i in start..(start + 500).min(n) {
            if let Some((k, v)) = normalize(&head(shard, i), &b, true, "10.1.2.3", &rules) {
                batch.add(k, v);
            }
        }
    }
}

fn counter(status: &str, prefix: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(prefix))
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {prefix:?} in\n{status}"))
}

#[test]
fn the_aggregation_and_its_flush_stay_within_a_multiple_of_the_budget() {
    let dir = TempDir::new("stat-budget").expect("temp dir");
    let clock = Clock::manual(T_1002, 0);
    let target = Target {
        name: "db1".into(),
        url: StoreUrl::parse(&format!("sqlite:{}", dir.0.join("stat.sqlite3").display())).expect("url"),
        prefix: "tars_stat_".into(),
        weight: 1,
    };
    let config = Config::parse("<tars>\n</tars>\n").expect("parses");
    let mut cfg =
        ServiceConfig::from_config(&config, &KEYS, &dir.0.display().to_string(), "127.0.0.1", Some(vec![target]))
            .expect("service config");
    cfg.aggregate_budget_bytes = BUDGET;
    cfg.clock = clock.clone();
    let svc = MonitorService::start(&cfg, TABLES, StatAgg { source_ip: "127.0.0.1".into() }, 2).expect("starts");
    assert!(svc.flush_writers(Duration::from_secs(30)), "the writer migrates its database");

    let base = HELD.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    // Each shard alone is offered more than the whole budget can hold.
    let aggs: Vec<ShardAgg<StatAgg>> = std::thread::scope(|s| {
        let threads: Vec<_> = (0..2)
            .map(|shard| {
                let agg = svc.shard_agg(shard).expect("a shard's aggregation");
                s.spawn(move || {
                    flood(&agg, shard, 60_000);
                    agg
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().expect("shard thread")).collect()
    });
    let status = svc.status();
    let ingested = counter(&status, "entries: ");
    let dropped = counter(&status, "dropped entries: ");
    let held = counter(&status, "aggregate bytes: ");
    assert_eq!(ingested + dropped, 120_000, "{status}");
    assert!(dropped > 0 && ingested > 10_000, "{status}");
    assert!(held <= BUDGET && held > BUDGET * 9 / 10, "{status}");
    let fill = PEAK.load(Ordering::Relaxed).saturating_sub(base) as u64;
    println!("budget {BUDGET}, charged {held}, keys {ingested}, allocated at the peak of the fill {fill}");
    assert!(fill <= BUDGET * 3 / 2, "filling allocated {fill} bytes for a budget of {BUDGET}");

    clock.set(T_1002 + 3 * 60 + 1);
    for agg in &aggs {
        agg.roll();
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = svc.status();
        let written = status.lines().find_map(|l| l.split_once("written ")).map(|(_, rest)| counter(rest, ""));
        let rows = status.split(" batches / ").nth(1).map(|rest| counter(rest, ""));
        if written.is_some_and(|w| w > 0) && rows == Some(ingested) {
            break;
        }
        assert!(Instant::now() < deadline, "the window was not written:\n{status}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = svc.status();
    assert_eq!(counter(&status, "aggregate bytes: "), 0, "the flush gives the bytes back\n{status}");
    let total = PEAK.load(Ordering::Relaxed).saturating_sub(base) as u64;
    println!("allocated at the peak of fill, merge, flush and write {total}");
    assert!(total <= BUDGET * 3, "the flush allocated {total} bytes for a budget of {BUDGET}");
    drop(aggs);
    drop(svc);
}
