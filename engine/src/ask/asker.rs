//! The one way through the engine for a question: an [`Asker`] holds the
//! corpus, the models, the device profile and the options; it plans
//! ([`Plan`]), runs a plan, escalates (Self-Route) and compares, telling
//! its caller what happens as [`AskEvent`]s.

use anyhow::{anyhow, Result};

use super::self_route::{escalation, Escalation};
use super::tradeoffs::Answer;
use super::{assemble, strategies, AskOptions, Corpus, Models, COMPARE_ORDER};
use crate::prefix_cache::PrefixKey;
use crate::router::{
    route, CorpusStats, Decision, DeviceProfile, ModelLimits, PrefixPricing, RouteInput,
};
use crate::router::{Strategy, StrategyKind};

/// The router's plan for one question: what it will read and why, with the
/// corpus statistics it was chosen from.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The question, as asked.
    pub question: String,
    /// The corpus as the router saw it: documents, tokens, chunks, index state.
    pub stats: CorpusStats,
    /// The router's choice, the candidates it weighed and its reasons.
    pub decision: Decision,
}

impl Plan {
    /// The strategy the plan runs.
    pub fn strategy(&self) -> &Strategy {
        &self.decision.chosen.strategy
    }
}

/// A stage of a read, announced as it begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Building the corpus' retrieval index (its first retrieval).
    Indexing {
        /// Documents to index.
        documents: usize,
    },
    /// Searching the index.
    Retrieving,
    /// The scorer compressing the corpus for the question.
    Compressing,
    /// The answerer reading the context (prefill), then answering.
    Reading,
}

/// What happens while a question is answered, in order.
#[derive(Debug)]
pub enum AskEvent<'a> {
    /// A plan starts: the router's choice, or a Self-Route escalation's.
    Started(&'a Strategy),
    /// A stage of the read begins.
    Stage(Stage),
    /// A piece of the answer, as it is generated.
    Text(&'a str),
    /// The first answer found nothing and a wider read follows.
    Escalating {
        /// The wider plan that runs next.
        to: &'a Strategy,
        /// Why the first answer is not kept.
        reason: &'a str,
    },
}

/// Answers questions about one corpus with one set of models, which it
/// borrows from its caller (who keeps them between askers: a TUI session,
/// an eval run over many corpora).
pub struct Asker<'a> {
    corpus: &'a mut Corpus,
    models: Models<'a>,
    profile: &'a DeviceProfile,
    /// How to answer; changed between questions as the caller likes.
    pub options: AskOptions,
}

impl<'a> Asker<'a> {
    /// An asker over `corpus`; nothing is computed until the first plan.
    pub fn new(
        corpus: &'a mut Corpus,
        models: Models<'a>,
        profile: &'a DeviceProfile,
        options: AskOptions,
    ) -> Self {
        Self {
            corpus,
            models,
            profile,
            options,
        }
    }

    /// The corpus asked about.
    pub fn corpus(&self) -> &Corpus {
        self.corpus
    }

    /// The models answering.
    pub fn models(&self) -> Models<'a> {
        self.models
    }

    /// The corpus' statistics now (its token count is computed once per
    /// corpus state, see [`Corpus::stats`]).
    pub fn stats(&self) -> Result<CorpusStats> {
        self.corpus.stats(self.models.answerer)
    }

    /// The router's plan for `question` under the options.
    pub fn plan(&mut self, question: &str) -> Result<Plan> {
        self.plan_with(question, self.options.forced)
    }

    /// [`plan`](Self::plan) with `forced` instead of the options' strategy.
    pub fn plan_with(&mut self, question: &str, forced: Option<StrategyKind>) -> Result<Plan> {
        if question.trim().is_empty() {
            return Err(anyhow!("the question is empty"));
        }
        let stats = self.stats()?;
        let model = self.models.answerer_limits();
        let scorer = self.models.scorer.map(ModelLimits::of);
        let options = &self.options;
        let decision = route(&RouteInput {
            question,
            corpus: &stats,
            budget: &options.budget,
            profile: self.profile,
            model: &model,
            scorer: scorer.as_ref(),
            forced,
            max_answer_tokens: options.generate.max_new_tokens,
            ground: options.ground,
            rag_k: options.rag_k,
            prefix: self.prefix_pricing(&stats, &model),
        })?;
        Ok(Plan {
            question: question.to_string(),
            stats,
            decision,
        })
    }

    /// What the prefix cache would change in a full read of the corpus as
    /// it is now: a saved prefix's restore, else the cost of saving one.
    /// `None` without a cache, or for a corpus a full read cannot hold
    /// without RoPE scaling (such reads are priced whole).
    fn prefix_pricing(&self, stats: &CorpusStats, model: &ModelLimits) -> Option<PrefixPricing> {
        let cache = self.options.prefix_cache.as_ref()?;
        // A server keeps (or not) its own prefix cache.
        if self.models.server().is_some() {
            return None;
        }
        let total = stats.tokens
            + crate::router::cost::PROMPT_OVERHEAD_TOKENS
            + self.options.generate.max_new_tokens;
        if total > model.trained_context {
            return None;
        }
        let session = strategies::session_for(self.models, &crate::router::PLAIN_FULL_READ);
        let text = super::context::Context::full(self.corpus).text;
        let key = PrefixKey::new(self.models.answerer, &session, &text, "", total).ok()?;
        Some(cache.pricing(cache.offer(&key)))
    }

    /// Runs `plan` as it is (no escalation) and builds its answer.
    pub fn execute(&mut self, plan: &Plan, on: &mut dyn FnMut(AskEvent)) -> Result<Answer> {
        on(AskEvent::Started(plan.strategy()));
        let run = strategies::run(
            self.corpus,
            self.models,
            plan.strategy(),
            &plan.question,
            &self.options,
            on,
        )?;
        Ok(assemble::answer(
            self.corpus,
            self.models,
            self.profile,
            plan,
            &self.options,
            run,
        ))
    }

    /// Plans, runs, and escalates a retrieval answer that found nothing
    /// when the rest of the latency budget allows a wider read (Self-Route).
    pub fn ask(&mut self, question: &str, on: &mut dyn FnMut(AskEvent)) -> Result<Answer> {
        let plan = self.plan(question)?;
        let first = self.execute(&plan, on)?;
        match escalation(&first, &plan.decision, &self.options) {
            Escalation::Keep => Ok(first),
            Escalation::Exhausted(fallback) => {
                let mut first = first;
                first.trade_offs.plan.fallback = Some(fallback);
                Ok(first)
            }
            Escalation::Widen { fallback, decision } => {
                on(AskEvent::Escalating {
                    to: &decision.chosen.strategy,
                    reason: &fallback.reason,
                });
                let wider = Plan {
                    decision: *decision,
                    ..plan
                };
                let mut answer = self.execute(&wider, on)?;
                answer.trade_offs.plan.fallback = Some(fallback);
                Ok(answer)
            }
        }
    }

    /// Each strategy of [`COMPARE_ORDER`] forced on the same question, none
    /// escalating; `on` hears each one's events with its kind. Once the
    /// options' cancel flag is set, the strategies not yet started are
    /// skipped as cancelled.
    pub fn compare(
        &mut self,
        question: &str,
        on: &mut dyn FnMut(StrategyKind, AskEvent),
    ) -> Vec<(StrategyKind, Result<Answer>)> {
        let mut results = Vec::new();
        for kind in COMPARE_ORDER {
            if self.options.generate.cancelled() {
                results.push((kind, Err(anyhow!("cancelled"))));
                continue;
            }
            let result = self
                .plan_with(question, Some(kind))
                .and_then(|plan| self.execute(&plan, &mut |e| on(kind, e)));
            results.push((kind, result));
        }
        results
    }
}
