//! When an answer is withheld: the answerability threshold of a reader,
//! calibrated per model on SQuAD v2's calibration split (different articles
//! from every reported number), or the one the user gives.

use serde::Serialize;

/// Thresholds measured per model (GGUF `general.name`): on SQuAD v2's
/// calibration half, the one that abstains most on unanswerable questions
/// while answerable accuracy stays within 5 points of no abstention
/// (`folio eval --suite squad --split calibration --min-confidence 0`,
/// BENCHMARKS.md "Answerability").
/// Measured on 83-100 questions each (about half unanswerable), retrieval
/// plans, the check's AUROC in brackets: the 1.5B's 0.35 keeps answerable
/// accuracy at 80 % (85 % without abstention) and abstains on 30 % of the
/// unanswerable questions; the others separate little (SmolLM2 hardly
/// better than chance), so their thresholds withhold little.
const CALIBRATED: &[(&str, f64)] = &[
    // (0.806)
    ("Qwen2.5 Coder 1.5B Instruct GGUF", 0.35),
    // (0.704)
    ("Qwen2.5 Coder 0.5B Instruct AWQ", 0.25),
    // (0.604)
    ("Smollm2 135M 8k Lc100K Mix1 Ep2", 0.15),
];

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
