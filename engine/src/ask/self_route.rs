//! Self-Route: when a retrieval answer says the chunks do not hold it (or
//! is not supported by them), read wider if the rest of the budget allows.

use super::evidence::says_not_found;
use super::tradeoffs::{Answer, Fallback};
use super::AskOptions;
use crate::llm::StopReason;
use crate::router::{Budget, Candidate, Decision, StrategyKind};

/// What Self-Route decided after a first answer: nothing (the answer
/// stands), or a fallback record and, if one fits, the wider plan to run.
pub(super) enum Escalation {
    /// The first answer stands as it is.
    Keep,
    /// The first answer found nothing and no wider read fits: it stands,
    /// with this record of why.
    Exhausted(Fallback),
    /// Read again with `decision`, recording `fallback` on the new answer.
    Widen {
        fallback: Fallback,
        decision: Box<Decision>,
    },
}

/// Whether `first` (the answer to `decision`'s plan) escalates, and to what.
pub(super) fn escalation(first: &Answer, decision: &Decision, options: &AskOptions) -> Escalation {
    let t = &first.trade_offs;
    if !(options.self_route
        && options.forced.is_none()
        && t.support.not_found
        && t.read.stop_reason != StopReason::Cancelled
        && decision.chosen.strategy.kind() == StrategyKind::Rag)
    {
        return Escalation::Keep;
    }
    let remaining = options
        .budget
        .latency_s
        .map(|l| l - t.cost.measured_seconds);
    let next = decision
        .wider_reads()
        .into_iter()
        .find(|c| affordable(c, &options.budget, remaining))
        .cloned();
    let mut fallback = Fallback {
        from: decision.chosen.strategy.clone(),
        first_answer: first.answer.clone(),
        first_seconds: t.cost.measured_seconds,
        reason: if let (Some(withheld), Some(score)) =
            (&t.support.withheld_answer, t.support.answerability)
        {
            format!(
                "the answer from retrieval's chunks (\"{}\") is not supported by the passage it quoted \
                 (answerability {score:.2}, below {:.2})",
                withheld.chars().take(80).collect::<String>(),
                t.support.min_confidence
            )
        } else if says_not_found(&first.answer) {
            "the answer from retrieval's chunks says they do not hold it".into()
        } else {
            format!(
                "the answer from retrieval's chunks is not supported by them ({:.0}% of its words occur in what was read)",
                t.support.word_overlap * 100.0
            )
        },
        to: None,
    };
    let Some(next) = next else {
        fallback.reason += ", and no wider read fits the rest of the budget";
        return Escalation::Exhausted(fallback);
    };
    fallback.reason += &format!("; reading wider with {}", next.strategy.describe());
    fallback.to = Some(next.strategy.clone());
    // The last reason is the retrieval plan's coverage; the card shows the
    // fallback on its own line.
    let mut reasons = decision.reasons.clone();
    reasons.pop();
    reasons.push(format!(
        "after the fallback: sends about {} tokens ({:.1}% of the corpus)",
        next.cost.context_tokens,
        next.cost.coverage * 100.0
    ));
    Escalation::Widen {
        fallback,
        decision: Box::new(Decision {
            chosen: next,
            reasons,
            ..decision.clone()
        }),
    }
}

/// Whether `c` fits the budget with `remaining` seconds left.
fn affordable(c: &Candidate, budget: &Budget, remaining: Option<f64>) -> bool {
    remaining.is_none_or(|r| c.cost.seconds.total() <= r)
        && budget
            .memory_bytes
            .is_none_or(|m| c.cost.peak_memory_bytes <= m)
        && budget
            .context_tokens
            .is_none_or(|t| c.cost.context_tokens <= t)
}
