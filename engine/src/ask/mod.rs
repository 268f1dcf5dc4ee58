//! Answering a question about a corpus: route it, run the chosen strategy
//! (retrieval, compression or a full read), find the evidence, and report
//! every trade-off made, with the predicted cost next to the measured one.
//!
//! [`Asker`] is the one way in: it plans ([`Plan`]), runs a plan, escalates
//! a retrieval answer that found nothing to a wider read when the budget
//! allows (Self-Route, in `self_route.rs`), and compares the strategies,
//! reporting what happens as [`AskEvent`]s. `strategies.rs` gathers each
//! strategy's context, `assemble.rs` builds the answer's [`TradeOffs`].

pub mod abstain;
mod asker;
mod assemble;
pub mod context;
pub mod corpus;
pub mod evidence;
mod self_route;
mod strategies;
pub mod tradeoffs;

use crate::device::Placement;
use crate::llm::{GenerateOptions, Model};
use crate::router::{Budget, StrategyKind};
pub use asker::{AskEvent, Asker, Plan, Stage};
pub use context::Context;
pub use corpus::{Corpus, CorpusDoc};
pub use evidence::{
    find_evidence, quote_candidates, says_not_found, support, Evidence, MIN_SUPPORT,
};
pub use tradeoffs::{
    Answer, Cost, Coverage, DroppedSpan, Fallback, PlanChoice, Quote, ReadReport, StageReport,
    Support, TradeOffs, UsedChunk, NOT_IN_DOCUMENTS,
};

/// The order in which `--compare` and the TUI's compare view run and show
/// the strategies: cheapest read first.
pub const COMPARE_ORDER: [StrategyKind; 3] = [
    StrategyKind::Rag,
    StrategyKind::Compress,
    StrategyKind::Full,
];

/// How to answer: the budget, an optional forced strategy, generation.
#[derive(Debug, Clone)]
pub struct AskOptions {
    /// Limits the router's choice must meet (latency, memory, context tokens).
    pub budget: Budget,
    /// `--strategy`: skip the router's choice of kind.
    pub forced: Option<StrategyKind>,
    /// Chunks a retrieval plan reads.
    pub rag_k: usize,
    /// Answer length, sampling and the cancel flag.
    pub generate: GenerateOptions,
    /// Escalate when retrieval's answer says the documents do not say.
    pub self_route: bool,
    /// Progress bars for indexing.
    pub progress: bool,
    /// Quote and score each answer ([`crate::grounding::Grounding`]), and
    /// abstain below [`AskOptions::min_confidence`].
    pub ground: bool,
    /// `--min-confidence`: an answer whose answerability is lower is not
    /// kept (Self-Route widens the read, else "not in the documents");
    /// `None`: the model's calibrated threshold ([`abstain::min_confidence`]).
    pub min_confidence: Option<f64>,
    /// Where full reads keep their document prefix for the next question
    /// (and find it again); `None`: every full read prefills it all.
    pub prefix_cache: Option<std::sync::Arc<crate::prefix_cache::PrefixCache>>,
    /// `--kv-evict`: full reads keep a bounded KV cache.
    pub eviction: Option<crate::llm::Eviction>,
}

impl Default for AskOptions {
    fn default() -> Self {
        Self {
            budget: Budget::default(),
            forced: None,
            rag_k: 5,
            generate: GenerateOptions {
                max_new_tokens: 96,
                ..Default::default()
            },
            self_route: true,
            progress: false,
            ground: true,
            min_confidence: None,
            prefix_cache: None,
            eviction: None,
        }
    }
}

/// The models an answer uses: the one that answers, where it runs, and
/// the compressor's scorer (none: compression is not offered).
#[derive(Clone, Copy)]
pub struct Models<'a> {
    /// The model that reads the context and answers.
    pub answerer: &'a Model,
    /// The answerer's placement (`None`: the CPU).
    pub device: Option<&'a Placement>,
    /// The model whose token surprisal compression ranks text by.
    pub scorer: Option<&'a Model>,
}

impl<'a> Models<'a> {
    /// What the router knows of the answerer: the local model's limits,
    /// or the served model's (its context and measured rates) when reads
    /// go to a server.
    pub fn answerer_limits(&self) -> crate::router::ModelLimits {
        let limits = crate::router::ModelLimits::of(self.answerer);
        match self.server() {
            Some(server) => limits.served_by(server),
            None => limits,
        }
    }

    /// The server reads go to, if any.
    pub fn server(&self) -> Option<&'a crate::remote::RemoteServer> {
        self.device.and_then(|d| d.server())
    }

    /// The answerer on the CPU, with an optional scorer.
    pub fn cpu(answerer: &'a Model, scorer: Option<&'a Model>) -> Self {
        Self {
            answerer,
            device: None,
            scorer,
        }
    }
}
