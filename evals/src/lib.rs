//! Batch evaluation of folio's strategies over corpora: tasks, metrics and
//! reports.
//!
//! The crate sits between the engine and the app so that the CLI can run
//! evaluations without the engine knowing about them: `folio eval`'s suites,
//! records and reports ([`eval`]), the passkey probe of long-context
//! benchmarks, the compression benchmark, and SQuAD-style metrics.

pub mod compression;
pub mod compression_report;
pub mod eval;
pub mod metrics;
pub mod passkey;
