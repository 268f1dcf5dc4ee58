//! Batch evaluation of folio's strategies over corpora: tasks, metrics and
//! reports.
//!
//! The crate sits between the engine and the app so that the CLI can run
//! evaluations without the engine knowing about them. So far: the passkey
//! probe of long-context benchmarks and the compression benchmark (SQuAD v2
//! and HotpotQA accuracy under compression) with SQuAD-style metrics.

pub mod compression;
pub mod compression_report;
pub mod metrics;
pub mod passkey;
