//! What abstaining on the reader's answerability score buys and costs:
//! per suite and strategy, a sweep of thresholds over the recorded scores
//! (the risk–coverage curve), and the threshold that abstains most on
//! unanswerable items while losing at most a given share of answerable
//! accuracy. Records must come from a run that kept every answer
//! (`--min-confidence 0`) for the sweep to see each raw answer.

use std::collections::BTreeMap;

use folio_engine::ask::says_not_found;
use serde::{Deserialize, Serialize};

use super::record::EvalRecord;

/// The outcome of abstaining below one threshold.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CurvePoint {
    /// Answers scored below this are withheld.
    pub threshold: f64,
    /// Share of all items answered (not withheld, not refused).
    pub coverage: f64,
    /// Share of the answered items answered correctly (an answer to an
    /// unanswerable item is wrong); `None` when nothing is answered.
    pub kept_accuracy: Option<f64>,
    /// Share of the unanswerable items withheld or refused.
    pub abstained_unanswerable: Option<f64>,
    /// Share of the answerable items answered correctly.
    pub answerable_accuracy: Option<f64>,
}

/// The sweep of one (suite, strategy).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Abstention {
    /// The suite's name.
    pub suite: String,
    /// The strategy asked for.
    pub strategy: String,
    /// Records with a raw answer.
    pub items: usize,
    /// Of them, unanswerable.
    pub unanswerable: usize,
    /// Share of the answers with a score whose quote is the document's own
    /// text at its offsets.
    pub quotes_verified: Option<f64>,
    /// How well the answerability separates the answers worth keeping
    /// (answerable, correct) from the rest: the chance a random kept-worthy
    /// answer scores above a random other one (0.5: no better than chance).
    pub auroc_answerability: Option<f64>,
    /// The same for the answer's mean token log-probability.
    pub auroc_answer_logprob: Option<f64>,
    /// One point per threshold, 0 to 1 by 0.05.
    pub curve: Vec<CurvePoint>,
    /// The threshold that abstains most on unanswerable items while
    /// answerable accuracy stays within [`MAX_ACCURACY_LOSS`] of no
    /// abstention (`None` without both kinds of item).
    pub best_threshold: Option<f64>,
}

/// The most answerable accuracy (a share) a threshold may cost.
pub const MAX_ACCURACY_LOSS: f64 = 0.05;

fn share(hits: usize, of: usize) -> Option<f64> {
    (of > 0).then(|| hits as f64 / of as f64)
}

/// Whether `r` gives no answer below `threshold`: its raw answer refuses,
/// or its score is under the threshold.
fn abstains(r: &EvalRecord, threshold: f64) -> bool {
    says_not_found(&r.raw_answer) || r.answerability.is_some_and(|a| a < threshold)
}

fn point(rs: &[&EvalRecord], threshold: f64) -> CurvePoint {
    let (mut answered, mut right) = (0, 0);
    let (mut unanswerable, mut abstained) = (0, 0);
    let (mut answerable, mut answerable_right) = (0, 0);
    for r in rs {
        let abstain = abstains(r, threshold);
        let correct = !abstain && !r.golds.is_empty() && r.raw_correct;
        if !abstain {
            answered += 1;
            right += usize::from(correct);
        }
        if r.golds.is_empty() {
            unanswerable += 1;
            abstained += usize::from(abstain);
        } else {
            answerable += 1;
            answerable_right += usize::from(correct);
        }
    }
    CurvePoint {
        threshold,
        coverage: share(answered, rs.len()).unwrap_or(0.0),
        kept_accuracy: share(right, answered),
        abstained_unanswerable: share(abstained, unanswerable),
        answerable_accuracy: share(answerable_right, answerable),
    }
}

/// The sweep for each (suite, strategy) of `records` that recorded raw
/// answers.
pub fn abstention(records: &[EvalRecord]) -> Vec<Abstention> {
    let mut by: BTreeMap<(String, String), Vec<&EvalRecord>> = BTreeMap::new();
    for r in records
        .iter()
        .filter(|r| r.error.is_none() && !r.raw_answer.is_empty())
    {
        by.entry((r.suite.clone(), r.strategy.clone()))
            .or_default()
            .push(r);
    }
    by.into_iter()
        .map(|((suite, strategy), rs)| {
            let curve: Vec<CurvePoint> = (0..=20).map(|i| point(&rs, i as f64 / 20.0)).collect();
            let scored: Vec<&&EvalRecord> =
                rs.iter().filter(|r| r.answerability.is_some()).collect();
            let worth = |r: &EvalRecord| !r.golds.is_empty() && r.raw_correct;
            Abstention {
                auroc_answerability: auroc(&rs, |r| r.answerability, worth),
                auroc_answer_logprob: auroc(&rs, |r| r.answer_logprob, worth),
                items: rs.len(),
                unanswerable: rs.iter().filter(|r| r.golds.is_empty()).count(),
                quotes_verified: share(
                    scored.iter().filter(|r| r.quote_verified).count(),
                    scored.len(),
                ),
                best_threshold: best_threshold(&curve),
                curve,
                suite,
                strategy,
            }
        })
        .collect()
}

/// The chance that a record `positive` says is worth keeping scores higher
/// (by `score`) than one it does not; ties count half. Records without a
/// score are left out.
pub fn auroc(
    rs: &[&EvalRecord],
    score: impl Fn(&EvalRecord) -> Option<f64>,
    positive: impl Fn(&EvalRecord) -> bool,
) -> Option<f64> {
    let (mut pos, mut neg) = (Vec::new(), Vec::new());
    for r in rs {
        if let Some(s) = score(r) {
            if positive(r) {
                pos.push(s);
            } else {
                neg.push(s);
            }
        }
    }
    if pos.is_empty() || neg.is_empty() {
        return None;
    }
    let mut wins = 0.0;
    for p in &pos {
        for n in &neg {
            wins += if p > n {
                1.0
            } else if p == n {
                0.5
            } else {
                0.0
            };
        }
    }
    Some(wins / (pos.len() * neg.len()) as f64)
}

/// The threshold of `curve` with the most abstention on unanswerable items
/// among those within [`MAX_ACCURACY_LOSS`] of the first point's
/// answerable accuracy (the lowest such threshold on ties).
pub fn best_threshold(curve: &[CurvePoint]) -> Option<f64> {
    let base = curve.first()?.answerable_accuracy?;
    curve
        .iter()
        .filter(|p| {
            p.answerable_accuracy
                .is_some_and(|a| a >= base - MAX_ACCURACY_LOSS - 1e-9)
        })
        .filter_map(|p| Some((p.abstained_unanswerable?, p.threshold)))
        .fold(None, |best: Option<(f64, f64)>, (abst, t)| match best {
            Some((b, _)) if b >= abst => best,
            _ => Some((abst, t)),
        })
        .map(|(_, t)| t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(golds: &[&str], raw: &str, raw_correct: bool, score: f64) -> EvalRecord {
        EvalRecord {
            suite: "squad".into(),
            strategy: "rag".into(),
            golds: golds.iter().map(|g| g.to_string()).collect(),
            raw_answer: raw.into(),
            raw_correct,
            answerability: Some(score),
            quote_verified: true,
            ..Default::default()
        }
    }

    /// Two answerable items (one right at 0.9, one wrong at 0.2) and two
    /// unanswerable ones (invented answers at 0.3 and 0.6): at 0.35 the
    /// wrong answerable and one invented answer go, accuracy stays.
    #[test]
    fn the_sweep_counts_abstentions_and_kept_accuracy() {
        let records = vec![
            rec(&["Graz"], "Graz.", true, 0.9),
            rec(&["Turin"], "Milan.", false, 0.2),
            rec(&[], "Paris.", false, 0.3),
            rec(&[], "Rome.", false, 0.6),
        ];
        let a = &abstention(&records)[0];
        let at = |t: f64| {
            a.curve
                .iter()
                .find(|p| (p.threshold - t).abs() < 1e-9)
                .unwrap()
        };
        let none = at(0.0);
        assert_eq!(none.coverage, 1.0);
        assert_eq!(none.kept_accuracy, Some(0.25));
        assert_eq!(none.abstained_unanswerable, Some(0.0));
        assert_eq!(none.answerable_accuracy, Some(0.5));
        let p = at(0.35);
        assert_eq!(p.coverage, 0.5);
        assert_eq!(p.kept_accuracy, Some(0.5));
        assert_eq!(p.abstained_unanswerable, Some(0.5));
        assert_eq!(p.answerable_accuracy, Some(0.5));
        // Up to 0.6 nothing answerable is lost and both invented answers
        // go at 0.65; 0.95 loses the right answer.
        assert_eq!(a.best_threshold, Some(0.65));
        assert_eq!(a.quotes_verified, Some(1.0));
        // The one right answer outscores all three others.
        assert_eq!(a.auroc_answerability, Some(1.0));
    }
}
