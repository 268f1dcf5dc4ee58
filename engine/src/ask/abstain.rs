//! When an answer is withheld: the answerability threshold of a reader,
//! calibrated per model on SQuAD v2's calibration split (different articles
//! from every reported number), or the one the user gives.

use serde::Serialize;

/// Thresholds measured per model (GGUF `general.name`): on SQuAD v2's
/// calibration half, the one that abstains most on unanswerable questions
/// while answerable accuracy stays within 5 points of no abstention
/// (`folio eval --suite squad --split calibration --min-confidence 0`,
/// BENCHMARKS.md "Answerability").
const CALIBRATED: &[(&str, f64)] = &[];

/// Used for a model without a calibrated threshold.
pub const DEFAULT_MIN_CONFIDENCE: f64 = 0.5;

/// Where the threshold an answer was held to came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ThresholdSource {
    /// `--min-confidence`.
    Requested,
    /// Calibrated for this model.
    Calibrated,
    /// Not calibrated for this model: [`DEFAULT_MIN_CONFIDENCE`].
    Default,
}

impl ThresholdSource {
    /// How the card words it.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Requested => "--min-confidence",
            Self::Calibrated => "calibrated for this model",
            Self::Default => "default; not calibrated for this model",
        }
    }
}

/// The threshold for the model named `gguf_name`: `requested` when given,
/// else its calibrated one, else [`DEFAULT_MIN_CONFIDENCE`].
pub fn min_confidence(gguf_name: &str, requested: Option<f64>) -> (f64, ThresholdSource) {
    if let Some(r) = requested {
        return (r, ThresholdSource::Requested);
    }
    CALIBRATED
        .iter()
        .find(|(name, _)| *name == gguf_name)
        .map_or(
            (DEFAULT_MIN_CONFIDENCE, ThresholdSource::Default),
            |&(_, t)| (t, ThresholdSource::Calibrated),
        )
}
