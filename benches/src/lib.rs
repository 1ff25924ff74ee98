//! Criterion benchmarks for smsim live in `benches/benches/`.
