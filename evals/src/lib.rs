//! Batch evaluation of folio's strategies over corpora: tasks, metrics and
//! reports.
//!
//! Empty so far: the crate sits between the engine and the app so that the
//! CLI can run evaluations without the engine knowing about them. Tasks land
//! with the batch-evaluation issue.
