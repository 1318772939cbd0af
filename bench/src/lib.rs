//! Benchmarks for tars-rs; see `benches/` and `RESULTS.md`.
