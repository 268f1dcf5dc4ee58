//! Batch evaluation of folio's strategies over corpora: tasks, metrics and
//! reports.
//!
//! The crate sits between the engine and the app so that the CLI can run
//! evaluations without the engine knowing about them. So far: the passkey
//! probe of long-context benchmarks; the suites land with the batch
//! evaluation issue.

pub mod passkey;
