//! What tarsstat and tarsproperty share: 5-minute windows and their upstream labels
//! ([`clock`]), per-shard aggregation and the collector that merges the shards
//! ([`collect`]), the databases rows are dealt to ([`targets`]), and each database's
//! writer ([`writer`]) with its hourly tables ([`tables`]) and the append-only spool that
//! keeps batches while MySQL is unreachable ([`spool`], [`batch`]).

pub mod batch;
pub mod clock;
pub mod collect;
pub mod service;
pub mod spool;
pub mod tables;
pub mod targets;
pub mod text;
pub mod writer;

mod wire {
    include!(concat!(env!("OUT_DIR"), "/_include.rs"));
}
