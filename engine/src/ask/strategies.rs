//! The three ways to read for a question, each producing the context the
//! answerer reads and where it came from: retrieval (the top chunks),
//! compression (the scorer's kept spans) and the full read (everything,
//! with the plan's attention, RoPE scaling and KV cache).

use std::time::Instant;

use anyhow::{anyhow, Result};
use folio_corpora::Span;
use folio_retrieval::Mode;

use super::asker::{AskEvent, Stage};
use super::context::Context;
use super::corpus::Corpus;
use super::tradeoffs::UsedChunk;
use super::{AskOptions, Models};
use crate::answer::{answer_from_context, AnswerOptions, AnswerReport};
use crate::compress::{compress, CompressOptions, Target};
use crate::llm::{AttentionMode, SessionOptions, SparseConfig};
use crate::router::{PlannedAttention, StageSeconds, Strategy};

/// What running a strategy produced before the answer is assembled.
pub(super) struct Run {
    pub report: AnswerReport,
    /// The text the model read and where each run of it came from.
    pub context: Context,
    /// Document regions the model saw.
    pub regions: Vec<(usize, Span)>,
    pub dropped: Vec<(usize, Span)>,
    pub chunks: Vec<UsedChunk>,
    pub measured: StageSeconds,
    /// Source tokens the compressor read (scorer tokens), for the model.
    pub compressed_source_tokens: usize,
}

/// The context a strategy assembled, before the answerer reads it.
struct Gathered {
    context: Context,
    regions: Vec<(usize, Span)>,
    dropped: Vec<(usize, Span)>,
    chunks: Vec<UsedChunk>,
    measured: StageSeconds,
    compressed_source_tokens: usize,
}

/// Runs `strategy` for `question` over `corpus` and reads what it gathered.
pub(super) fn run(
    corpus: &mut Corpus,
    models: Models,
    strategy: &Strategy,
    question: &str,
    options: &AskOptions,
    on: &mut dyn FnMut(AskEvent),
) -> Result<Run> {
    let progress = options.progress;
    let gathered = match strategy {
        Strategy::Rag { k } => retrieve(corpus, question, *k, progress, on)?,
        Strategy::Compress { target_tokens } => {
            compressed(corpus, models, question, *target_tokens, on)?
        }
        Strategy::Full { .. } => {
            let ctx = Context::full(corpus);
            Gathered {
                regions: ctx.regions(),
                context: ctx,
                dropped: Vec::new(),
                chunks: Vec::new(),
                measured: StageSeconds::default(),
                compressed_source_tokens: 0,
            }
        }
    };
    on(AskEvent::Stage(Stage::Reading));
    let answer_options = AnswerOptions {
        generate: options.generate.clone(),
        session: SessionOptions {
            // `--kv-evict` first, else the plan's own (a memory budget).
            eviction: match strategy {
                Strategy::Full { eviction, .. } => options.eviction.or(*eviction),
                _ => None,
            },
            ..session_for(models, strategy)
        },
        device: models.device.cloned().unwrap_or_default(),
        ground: options.ground,
        // A retrieved or compressed context changes with each question;
        // only the whole corpus is a prefix worth keeping.
        prefix_cache: matches!(strategy, Strategy::Full { .. })
            .then(|| options.prefix_cache.clone())
            .flatten(),
    };
    let mut on_text = |piece: &str| on(AskEvent::Text(piece));
    let runs = gathered.context.document_runs();
    let label = match strategy {
        Strategy::Full { .. } => corpus_label(corpus),
        _ => "context".to_string(),
    };
    let report = answer_from_context(
        models.answerer,
        &label,
        (&gathered.context.text, &runs),
        question,
        &answer_options,
        &mut on_text,
    )?;
    let mut measured = gathered.measured;
    measured.prefill = report.seconds.tokenize + report.seconds.prefill;
    measured.decode = report.seconds.decode;
    measured.quote = report.grounding.as_ref().map_or(0.0, |g| g.seconds);
    measured.kv_cache = report
        .prefix
        .as_ref()
        .map_or(0.0, |p| p.restore_seconds + p.save_seconds);
    Ok(Run {
        report,
        context: gathered.context,
        regions: gathered.regions,
        dropped: gathered.dropped,
        chunks: gathered.chunks,
        measured,
        compressed_source_tokens: gathered.compressed_source_tokens,
    })
}

/// The corpus in a few words (its first file and how many more), naming a
/// full read in errors and in `folio cache list`.
fn corpus_label(corpus: &Corpus) -> String {
    let first = corpus
        .docs
        .first()
        .map(|d| super::context::file_name(&d.path).to_string())
        .unwrap_or_default();
    match corpus.docs.len() {
        0 | 1 => first,
        n => format!("{first} (+{} more)", n - 1),
    }
}

/// The answerer's session for `strategy`: the model's defaults, with a full
/// read's planned attention, RoPE scaling (when it stretches) and KV cache.
pub(super) fn session_for(models: Models, strategy: &Strategy) -> SessionOptions {
    let mut session = SessionOptions::for_model(models.answerer);
    if let Strategy::Full {
        attention,
        rope,
        kv,
        ..
    } = strategy
    {
        session.attention = match attention {
            PlannedAttention::Flash => AttentionMode::Flash,
            PlannedAttention::Sparse => AttentionMode::Sparse(SparseConfig::default()),
        }
        .build();
        if rope.factor() > 1.0 {
            session.rope_scaling = *rope;
        }
        session.kv_dtype = *kv;
    }
    session
}

/// Retrieval: the corpus' top `k` chunks (hybrid when it has embeddings),
/// indexing it first if it has no index yet.
fn retrieve(
    corpus: &mut Corpus,
    question: &str,
    k: usize,
    progress: bool,
    on: &mut dyn FnMut(AskEvent),
) -> Result<Gathered> {
    let mut measured = StageSeconds::default();
    if !corpus.indexed() {
        on(AskEvent::Stage(Stage::Indexing {
            documents: corpus.docs.len(),
        }));
    }
    let t = Instant::now();
    let (store, ingested) = corpus.store(progress)?;
    if ingested.is_some() {
        measured.ingest = t.elapsed().as_secs_f64();
    }
    on(AskEvent::Stage(Stage::Retrieving));
    let t = Instant::now();
    let mode = if store.has_dense() {
        Mode::Hybrid
    } else {
        Mode::Bm25
    };
    let hits = store.search(question, mode, k)?.hits;
    let passages = store.assemble(&hits)?;
    measured.retrieve = t.elapsed().as_secs_f64();
    let chunks = hits
        .iter()
        .map(|h| UsedChunk {
            path: h.path.clone(),
            span: h.span,
            rank: h.rank,
            score: h.score,
            bm25_rank: h.bm25.map(|r| r.rank),
            dense_rank: h.dense.map(|r| r.rank),
        })
        .collect();
    let ctx = Context::passages(corpus, &passages)?;
    Ok(Gathered {
        regions: ctx.regions(),
        context: ctx,
        dropped: Vec::new(),
        chunks,
        measured,
        compressed_source_tokens: 0,
    })
}

/// Compression: the whole corpus cut to `target_tokens` by the scorer.
fn compressed(
    corpus: &Corpus,
    models: Models,
    question: &str,
    target_tokens: usize,
    on: &mut dyn FnMut(AskEvent),
) -> Result<Gathered> {
    let scorer = models
        .scorer
        .ok_or_else(|| anyhow!("compression needs its scorer model, which was not loaded"))?;
    on(AskEvent::Stage(Stage::Compressing));
    let ctx = Context::full(corpus);
    let compressed = compress(
        scorer,
        &ctx.text,
        question,
        &CompressOptions {
            target: Target::Tokens(target_tokens),
            ..Default::default()
        },
    )?;
    let measured = StageSeconds {
        compress: compressed.seconds,
        ..Default::default()
    };
    let to_docs = |spans: &[Span]| spans.iter().flat_map(|s| ctx.to_docs(*s)).collect();
    Ok(Gathered {
        regions: to_docs(&compressed.kept),
        dropped: to_docs(&compressed.dropped),
        context: ctx.kept_copy(compressed.text, &compressed.kept, &compressed.kept_at),
        chunks: Vec::new(),
        measured,
        compressed_source_tokens: compressed.source_tokens,
    })
}
