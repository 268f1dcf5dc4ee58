//! The router: per question, choose retrieval, compression or a full read
//! within the user's budget, and say why.
//!
//! [`route`] is a pure function of the question, the corpus statistics, the
//! budget, the device profile and the model's limits: it predicts the cost
//! of every candidate plan with the [`cost`] model, keeps those that fit the
//! budget, and applies the rules below in order. Strategies execute the plan
//! elsewhere (`crate::ask`); tests ask the router anything without a model.
//!
//! 1. The corpus fits the trained context, the span the model was measured
//!    to read whole well ([`ModelLimits::whole_read_tokens`]) and the budget:
//!    read it all (flash; sparse only when flash breaks the latency budget).
//! 2. A wide question (counting, listing, summarising, comparing):
//!    compression, which keeps what the question needs from everywhere;
//!    retrieval if compression does not fit.
//! 3. A look-up question: retrieval; compression if retrieval does not fit.
//! 4. Nothing else fits: a full read anyway; beyond the trained context it
//!    uses RoPE scaling, flagged (scaling buys positions, not understanding).
//! 5. Nothing fits at all: [`NoPlan`], naming the cheapest plan and what it
//!    would need.

pub mod cost;
pub mod question;
pub mod records;

pub use cost::{DeviceProfile, PROFILE_VERSION};
pub use question::classify;
pub use records::{
    Budget, Candidate, CorpusStats, Cost, Decision, ModelLimits, PlannedAttention, PrefixPricing,
    QuestionKind, ServedRates, StageSeconds, Strategy, StrategyKind,
};

use crate::llm::{Eviction, KvDtype, RopeScaling};
use cost::PROMPT_OVERHEAD_TOKENS;

/// Everything the router decides from.
#[derive(Debug, Clone)]
pub struct RouteInput<'a> {
    /// The question, classified into a [`QuestionKind`].
    pub question: &'a str,
    /// The corpus as it is now (size, chunks, index state).
    pub corpus: &'a CorpusStats,
    /// The limits a plan must meet.
    pub budget: &'a Budget,
    /// This machine's measured throughputs, which costs are predicted from.
    pub profile: &'a DeviceProfile,
    /// The answering model's shape and trained context.
    pub model: &'a ModelLimits,
    /// The compressor's scoring model; `None`: compression is not offered.
    pub scorer: Option<&'a ModelLimits>,
    /// `--strategy`: only plans of this kind.
    pub forced: Option<StrategyKind>,
    /// Most answer tokens (room kept in the context).
    pub max_answer_tokens: usize,
    /// Each answer is quoted and checked (its cost is in every plan).
    pub ground: bool,
    /// Chunks a retrieval plan reads.
    pub rag_k: usize,
    /// A full read's prefix cache, when there is one.
    pub prefix: Option<PrefixPricing>,
}

/// No plan fits the budget: the cheapest one and what it would need.
#[derive(Debug, Clone)]
pub struct NoPlan {
    /// The budget no plan met.
    pub budget: Budget,
    /// The kind the plans were restricted to (`--strategy`), if any.
    pub forced: Option<StrategyKind>,
    /// The fastest plan considered, with what it breaks.
    pub cheapest: Option<Candidate>,
}

impl std::fmt::Display for NoPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let which = match self.forced {
            Some(kind) => format!("no {} plan", kind.name()),
            None => "no plan".to_string(),
        };
        let Some(c) = &self.cheapest else {
            return write!(f, "{which} can answer this question: nothing to read");
        };
        write!(
            f,
            "{which} meets the budget. The cheapest is {}: about {:.1} s, {}, {} tokens sent; \
             it breaks the budget because it {}. Raise the budget (--budget-latency, \
             --budget-memory, --budget-tokens) or ask about fewer documents.",
            c.strategy.describe(),
            c.cost.seconds.total(),
            gib(c.cost.peak_memory_bytes),
            c.cost.context_tokens,
            c.violations.join(" and "),
        )
    }
}

impl std::error::Error for NoPlan {}

/// Picks the plan for one question (see the module docs for the rules).
pub fn route(input: &RouteInput) -> Result<Decision, Box<NoPlan>> {
    let (kind, marker) = classify(input.question);
    let candidates = candidates(input);
    let fits = |want: &dyn Fn(&Candidate) -> bool| {
        candidates.iter().find(|c| c.fits() && want(c)).cloned()
    };
    let tokens = input.corpus.tokens;
    let trained = input.model.trained_context;
    let mut reasons = Vec::new();
    let whole_read = input.model.whole_read_tokens;
    // A read that evicts is offered only when nothing else fits (rule 4).
    let in_range = |c: &Candidate| {
        matches!(c.strategy, Strategy::Full { eviction: None, .. }) && !c.cost.beyond_trained_range
    };
    let whole_read_well = tokens <= whole_read;
    let within = |c: &Candidate| in_range(c) && whole_read_well;
    let full_in_range = candidates.iter().find(|c| in_range(c));
    let kind_reason = match (kind, marker) {
        (QuestionKind::Wide, Some(m)) => {
            format!("the question asks for a wide read (\"{m}\"): retrieval would see only pieces")
        }
        _ => "a look-up question: the answer should sit in one place".to_string(),
    };

    let chosen = if let Some(forced) = input.forced {
        reasons.push(format!("--strategy {} was asked for", forced.name()));
        fits(&|c| c.strategy.kind() == forced)
    } else if let Some(c) = fits(&within) {
        reasons.push(format!(
            "the corpus ({tokens} tokens) fits the model's trained context ({trained}) and the \
             budget, so it is read whole: nothing is dropped"
        ));
        if let Strategy::Full {
            attention: PlannedAttention::Sparse,
            ..
        } = c.strategy
        {
            reasons.push(
                "exact flash attention breaks the latency budget; sparse attention fits".into(),
            );
        }
        Some(c)
    } else {
        reasons.push(match full_in_range {
            Some(_) if tokens > whole_read => format!(
                "the corpus ({tokens} tokens) is longer than {} was measured to read whole \
                 as well as a focused read ({whole_read} tokens)",
                input.model.name
            ),
            Some(c) => format!(
                "a full read breaks the budget: it {}",
                c.violations.join(" and ")
            ),
            None => format!(
                "the corpus ({tokens} tokens) is beyond the model's trained context ({trained})"
            ),
        });
        reasons.push(kind_reason);
        let order = match kind {
            QuestionKind::Wide => [StrategyKind::Compress, StrategyKind::Rag],
            QuestionKind::Lookup => [StrategyKind::Rag, StrategyKind::Compress],
        };
        let pick = order
            .iter()
            .find_map(|k| fits(&|c| c.strategy.kind() == *k));
        match &pick {
            Some(c) if c.strategy.kind() != order[0] => reasons.push(format!(
                "{} does not fit the budget, so {} is used instead",
                order[0].name(),
                c.strategy.kind().name()
            )),
            None if candidates.iter().any(|c| in_range(c) && c.fits()) => reasons.push(
                "neither retrieval nor compression fits the budget: reading it whole anyway".into(),
            ),
            None => reasons.push(
                "neither retrieval nor compression fits: reading beyond the trained range with \
                 RoPE scaling, which stretches positions without teaching the model to use them"
                    .into(),
            ),
            _ => {}
        }
        pick.or_else(|| fits(&|c| matches!(c.strategy, Strategy::Full { .. })))
    };
    let Some(chosen) = chosen else {
        let pool = candidates
            .iter()
            .filter(|c| input.forced.is_none_or(|k| c.strategy.kind() == k));
        let cheapest = pool
            .min_by(|a, b| a.cost.seconds.total().total_cmp(&b.cost.seconds.total()))
            .cloned();
        return Err(Box::new(NoPlan {
            budget: *input.budget,
            forced: input.forced,
            cheapest,
        }));
    };
    reasons.push(coverage_reason(&chosen, tokens));
    if let Some(reason) = prefix_reason(input, &chosen) {
        reasons.push(reason);
    }
    if let Strategy::Full {
        eviction: Some(e), ..
    } = chosen.strategy
    {
        reasons.push(format!(
            "a full KV cache breaks the memory budget: the read keeps {} positions per layer \
             and head ({}), and the answer may miss what it evicts",
            e.budget,
            e.policy.name()
        ));
    }
    Ok(Decision {
        chosen,
        question_kind: kind,
        reasons,
        candidates,
        whole_read_well,
    })
}

impl Decision {
    /// The plans wider than retrieval, best first, for Self-Route's
    /// escalation: the router's own order (rules 1-3), so the two cannot
    /// drift apart. Only plans within the trained range; past the span the
    /// model reads whole well, compression comes before a whole read.
    pub fn wider_reads(&self) -> Vec<&Candidate> {
        let mut wider: Vec<&Candidate> = self
            .candidates
            .iter()
            .filter(|c| c.strategy.kind() != StrategyKind::Rag && !c.cost.beyond_trained_range)
            .collect();
        if !self.whole_read_well {
            // Stable: each kind keeps the router's preference within it.
            wider.sort_by_key(|c| c.strategy.kind() == StrategyKind::Full);
        }
        wider
    }
}

fn coverage_reason(c: &Candidate, tokens: usize) -> String {
    let sent = c.cost.context_tokens;
    match c.strategy {
        Strategy::Full { .. } => format!("sends {sent} tokens for a {tokens}-token corpus"),
        _ => format!(
            "sends {sent} tokens for a {tokens}-token corpus ({:.1}% of it is read)",
            c.cost.coverage * 100.0
        ),
    }
}

/// What a saved document prefix does for a chosen full read: the prefill
/// it spares, in the cost model's seconds.
fn prefix_reason(input: &RouteInput, chosen: &Candidate) -> Option<String> {
    let prefix = input.prefix.as_ref()?;
    let Strategy::Full { attention, .. } = chosen.strategy else {
        return None;
    };
    let s = chosen.cost.seconds;
    let whole = cost::prefill_seconds(
        input.model,
        input.profile,
        chosen.cost.context_tokens,
        attention,
    );
    (prefix.cached_tokens > 0 && s.prefill < whole).then(|| {
        format!(
            "a saved prefix of this corpus ({} tokens, from an earlier full read) is restored              in about {:.1} s instead of prefilled: about {:.1} s of reading instead of {:.1} s",
            prefix.cached_tokens,
            s.kv_cache,
            s.prefill + s.kv_cache,
            whole
        )
    })
}

/// Every plan worth weighing, in order of preference within each kind.
fn candidates(input: &RouteInput) -> Vec<Candidate> {
    let mut out = Vec::new();
    if input.corpus.tokens == 0 {
        return out;
    }
    full_candidates(input, &mut out);
    rag_candidate(input, &mut out);
    compress_candidates(input, &mut out);
    out
}

fn full_candidates(input: &RouteInput, out: &mut Vec<Candidate>) {
    let (m, p) = (input.model, input.profile);
    let trained = m.trained_context;
    let prompt = input.corpus.tokens + PROMPT_OVERHEAD_TOKENS;
    let needed = prompt + input.max_answer_tokens;
    let rope = if needed <= trained {
        RopeScaling::None
    } else {
        RopeScaling::yarn(needed.div_ceil(trained) as f32, trained)
    };
    let sparse_helps = cost::sparse_pairs(prompt, &crate::llm::SparseConfig::default())
        < 0.75 * (prompt as f64 * (prompt as f64 + 1.0) / 2.0);
    // A server reads with its own kernels and cache, within its context:
    // past it, a full read is offered only to say why it cannot run.
    let served = m.served.is_some();
    if served && needed > trained {
        let seconds = StageSeconds {
            prefill: cost::prefill_seconds(m, p, prompt, PlannedAttention::Flash),
            decode: cost::decode_seconds(m, p, prompt, cost::EXPECTED_ANSWER_TOKENS),
            ..Default::default()
        };
        let c = Cost {
            seconds,
            peak_memory_bytes: cost::answer_memory(m, needed, KvDtype::F32, 512),
            context_tokens: prompt,
            coverage: 1.0,
            kv_bytes: 0,
            beyond_trained_range: true,
        };
        let mut full = candidate(input, PLAIN_FULL_READ, c);
        full.violations.push(format!(
            "needs {needed} tokens of context and the server holds {trained} (start it with a \
             longer context)"
        ));
        out.push(full);
        return;
    }
    for attention in [PlannedAttention::Flash, PlannedAttention::Sparse] {
        if attention == PlannedAttention::Sparse && (!sparse_helps || served) {
            continue;
        }
        for kv in [KvDtype::F32, KvDtype::Int8] {
            if served && kv != KvDtype::F32 {
                continue;
            }
            let (prefill, kv_cache) = cost::full_prefill_seconds(
                m,
                p,
                (prompt, input.corpus.tokens),
                (attention, kv, rope),
                input.prefix.as_ref(),
            );
            let seconds = StageSeconds {
                prefill,
                kv_cache,
                decode: cost::decode_seconds(m, p, prompt, cost::EXPECTED_ANSWER_TOKENS),
                quote: cost::quote_seconds(m, p, input.ground),
                ..Default::default()
            };
            let c = Cost {
                seconds,
                peak_memory_bytes: cost::answer_memory(m, needed, kv, 512),
                context_tokens: prompt,
                coverage: 1.0,
                kv_bytes: if served { 0 } else { m.kv_bytes(needed, kv) },
                beyond_trained_range: needed > trained,
            };
            out.push(candidate(
                input,
                Strategy::Full {
                    attention,
                    rope,
                    kv,
                    eviction: None,
                },
                c,
            ));
        }
    }
    evicted_candidate(input, out);
}

/// When every full read's cache breaks the memory budget: a flash read
/// whose H2O eviction (during prefill) keeps as many positions per layer
/// and head as the budget holds, so the read never holds more.
fn evicted_candidate(input: &RouteInput, out: &mut Vec<Candidate>) {
    let (m, p) = (input.model, input.profile);
    let Some(memory) = input.budget.memory_bytes else {
        return;
    };
    if m.served.is_some() {
        return;
    }
    let prompt = input.corpus.tokens + PROMPT_OVERHEAD_TOKENS;
    let needed = prompt + input.max_answer_tokens;
    if needed > m.trained_context
        || out
            .iter()
            .any(|c| matches!(c.strategy, Strategy::Full { .. }) && c.fits())
    {
        return;
    }
    // The cache holds the budget plus one prefill chunk at most.
    let chunk = 512;
    // Everything but the cache, the scorer included (it stays loaded).
    let fixed = cost::answer_memory(m, chunk, KvDtype::F32, chunk)
        - m.kv_bytes(chunk, KvDtype::F32)
        + input.scorer.map_or(0, |s| s.resident_bytes);
    let per_position = m.kv_bytes(1, KvDtype::F32).max(1);
    let room = memory.saturating_sub(fixed) / per_position;
    let budget = (room as usize).saturating_sub(chunk);
    if budget < MIN_EVICTION_BUDGET || budget >= needed {
        return;
    }
    let eviction = Eviction {
        policy: crate::llm::EvictionPolicy::H2o { recent: 0 },
        budget,
    };
    let attention = PlannedAttention::Flash;
    // Attention over at most the budget, plus H2O's scoring (as much again).
    let linear = cost::prefill_seconds(m, p, prompt, attention)
        - cost::prefill_seconds(m, p, budget.min(prompt), attention);
    let seconds = StageSeconds {
        prefill: linear + 2.0 * cost::prefill_seconds(m, p, budget.min(prompt), attention),
        decode: cost::decode_seconds(m, p, budget, cost::EXPECTED_ANSWER_TOKENS),
        quote: cost::quote_seconds(m, p, input.ground),
        ..Default::default()
    };
    let c = Cost {
        seconds,
        peak_memory_bytes: cost::answer_memory(m, budget + chunk, KvDtype::F32, chunk),
        context_tokens: prompt,
        coverage: 1.0,
        kv_bytes: m.kv_bytes(budget, KvDtype::F32),
        beyond_trained_range: false,
    };
    let strategy = Strategy::Full {
        attention,
        rope: RopeScaling::None,
        kv: KvDtype::F32,
        eviction: Some(eviction),
    };
    out.push(candidate(input, strategy, c));
}

/// A full read within the trained context with folio's defaults (flash,
/// f32 cache, no RoPE scaling): what a server runs, and the plan a saved
/// prefix is looked up for.
pub const PLAIN_FULL_READ: Strategy = Strategy::Full {
    attention: PlannedAttention::Flash,
    rope: RopeScaling::None,
    kv: KvDtype::F32,
    eviction: None,
};

/// Fewest positions an evicted read is offered with: below this the
/// cache keeps too little of any document to answer from.
const MIN_EVICTION_BUDGET: usize = 1024;

fn rag_candidate(input: &RouteInput, out: &mut Vec<Candidate>) {
    let corpus = input.corpus;
    let chunk = corpus.chunk_tokens.max(1);
    let mut k = input.rag_k.max(1);
    if let Some(limit) = input.budget.context_tokens {
        k = k.min((limit.saturating_sub(PROMPT_OVERHEAD_TOKENS) / chunk).max(1));
    }
    let read = (k * chunk).min(corpus.tokens);
    let prompt = read + PROMPT_OVERHEAD_TOKENS;
    let c = Cost {
        seconds: StageSeconds {
            quote: cost::quote_seconds(input.model, input.profile, input.ground),
            ..cost::rag_seconds(input.model, input.profile, corpus, prompt)
        },
        peak_memory_bytes: cost::rag_memory(
            input.model,
            prompt + input.max_answer_tokens,
            !corpus.indexed,
        ),
        context_tokens: prompt,
        coverage: read as f64 / corpus.tokens as f64,
        kv_bytes: input
            .model
            .kv_bytes(prompt + input.max_answer_tokens, KvDtype::F32),
        beyond_trained_range: prompt + input.max_answer_tokens > input.model.trained_context,
    };
    out.push(candidate(input, Strategy::Rag { k }, c));
}

/// Smallest compression target offered, in tokens.
const MIN_COMPRESS_TARGET: usize = 128;

/// Compression targets, largest (most coverage) first.
fn compress_candidates(input: &RouteInput, out: &mut Vec<Candidate>) {
    let Some(scorer) = input.scorer else { return };
    let (m, p) = (input.model, input.profile);
    let tokens = input.corpus.tokens;
    let room = m
        .trained_context
        .saturating_sub(PROMPT_OVERHEAD_TOKENS + input.max_answer_tokens);
    let cap = input
        .budget
        .context_tokens
        .map_or(room, |b| room.min(b.saturating_sub(PROMPT_OVERHEAD_TOKENS)));
    let mut targets = vec![8192, 4096, 2048, 1024, 512];
    if tokens / 2 < 512 {
        // A corpus too small for the fixed targets is offered a 2× cut.
        targets.push(tokens / 2);
    }
    for target in targets {
        let target = target.min(cap);
        // Compressing to more than half the source is barely compressing;
        // below 128 tokens a sentence or two is left (a 386-token HotpotQA
        // item had no compress plan at all with a floor of 256).
        if target < MIN_COMPRESS_TARGET || target * 2 > tokens {
            continue;
        }
        if out.iter().any(|c| {
            c.strategy
                == Strategy::Compress {
                    target_tokens: target,
                }
        }) {
            continue;
        }
        let prompt = target + PROMPT_OVERHEAD_TOKENS;
        let seconds = StageSeconds {
            compress: cost::compress_seconds(scorer, p, tokens, target),
            prefill: cost::prefill_seconds(m, p, prompt, PlannedAttention::Flash),
            decode: cost::decode_seconds(m, p, prompt, cost::EXPECTED_ANSWER_TOKENS),
            quote: cost::quote_seconds(m, p, input.ground),
            ..Default::default()
        };
        let memory = cost::answer_memory(m, prompt + input.max_answer_tokens, KvDtype::F32, 512)
            + scorer.resident_bytes
            + scorer.kv_bytes(1024, KvDtype::F32);
        let c = Cost {
            seconds,
            peak_memory_bytes: memory,
            context_tokens: prompt,
            coverage: target as f64 / tokens as f64,
            kv_bytes: m.kv_bytes(prompt + input.max_answer_tokens, KvDtype::F32),
            beyond_trained_range: false,
        };
        out.push(candidate(
            input,
            Strategy::Compress {
                target_tokens: target,
            },
            c,
        ));
    }
}

fn candidate(input: &RouteInput, strategy: Strategy, mut cost: Cost) -> Candidate {
    // The scorer stays loaded whichever plan runs.
    if !matches!(strategy, Strategy::Compress { .. }) {
        cost.peak_memory_bytes += input.scorer.map_or(0, |s| s.resident_bytes);
    }
    let b = input.budget;
    let mut violations = Vec::new();
    if let Some(limit) = b.latency_s {
        if cost.seconds.total() > limit {
            violations.push(format!(
                "takes about {:.1} s (budget {limit:.1} s)",
                cost.seconds.total()
            ));
        }
    }
    if let Some(limit) = b.memory_bytes {
        if cost.peak_memory_bytes > limit {
            violations.push(format!(
                "needs {} (budget {})",
                gib(cost.peak_memory_bytes),
                gib(limit)
            ));
        }
    }
    if let Some(limit) = b.context_tokens {
        if cost.context_tokens > limit {
            violations.push(format!(
                "sends {} tokens (budget {limit})",
                cost.context_tokens
            ));
        }
    }
    Candidate {
        strategy,
        cost,
        violations,
    }
}

/// Bytes as GiB with two decimals, for messages.
pub fn gib(bytes: u64) -> String {
    format!("{:.2} GiB", bytes as f64 / (1u64 << 30) as f64)
}
