//! Table tests of the router: corpus sizes × budgets × question kinds →
//! the strategy it must choose. Pure: no model is loaded.

use folio_engine::router::{
    route, Budget, CorpusStats, Decision, DeviceProfile, ModelLimits, NoPlan, PlannedAttention,
    PrefixPricing, ServedRates, Strategy, StrategyKind,
};

/// A profile of the order this 2-core machine measures.
fn profile() -> DeviceProfile {
    DeviceProfile {
        version: 1,
        measured_at: 0,
        cpu: "test".into(),
        threads: 2,
        matmul_gflops: 150.0,
        int8_matmul_gflops: 150.0,
        decode_gbps: 8.0,
        flash_gflops: 40.0,
        sparse_gflops: 25.0,
        decode_attention_gflops: 10.0,
        embed_chunks_per_s: Some(60.0),
        memory_total_bytes: 24 << 30,
        memory_available_bytes: 20 << 30,
    }
}

/// Qwen2.5-0.5B's shape.
fn qwen() -> ModelLimits {
    ModelLimits {
        name: "qwen".into(),
        trained_context: 32768,
        whole_read_tokens: 32768,
        n_layers: 24,
        hidden: 896,
        ffn_hidden: 4864,
        n_heads: 14,
        n_kv_heads: 2,
        head_dim: 64,
        vocab_size: 151936,
        resident_bytes: 2_955_000_000,
        decode_bytes: 700_000_000,
        prompt_int8_share: 0.0,
        served: None,
    }
}

/// SmolLM2-135M's shape (the compressor's scorer).
fn smol() -> ModelLimits {
    ModelLimits {
        name: "smol".into(),
        trained_context: 8192,
        whole_read_tokens: 8192,
        n_layers: 30,
        hidden: 576,
        ffn_hidden: 1536,
        n_heads: 9,
        n_kv_heads: 3,
        head_dim: 64,
        vocab_size: 49152,
        resident_bytes: 748_000_000,
        decode_bytes: 150_000_000,
        prompt_int8_share: 0.0,
        served: None,
    }
}

fn corpus(tokens: usize) -> CorpusStats {
    CorpusStats {
        documents: 1,
        bytes: tokens as u64 * 4,
        tokens,
        tokens_estimated: false,
        chunks: tokens / 200 + 1,
        chunk_tokens: 200,
        indexed: true,
        dense: true,
    }
}

const LOOKUP: &str = "Who founded Viaweb?";
const WIDE: &str = "List all the companies the author started.";

fn budget(latency: Option<f64>, memory_gib: Option<u64>, tokens: Option<usize>) -> Budget {
    Budget {
        latency_s: latency,
        memory_bytes: memory_gib.map(|g| g << 30),
        context_tokens: tokens,
    }
}

fn decide(
    question: &str,
    tokens: usize,
    b: Budget,
    forced: Option<StrategyKind>,
) -> Result<Strategy, String> {
    decide_with(qwen(), question, tokens, b, forced)
        .map(|d| d.chosen.strategy)
        .map_err(|e| e.to_string())
}

fn decide_with(
    m: ModelLimits,
    question: &str,
    tokens: usize,
    b: Budget,
    forced: Option<StrategyKind>,
) -> Result<Decision, Box<NoPlan>> {
    decide_cached(m, (question, tokens), b, forced, None)
}

fn decide_cached(
    m: ModelLimits,
    (question, tokens): (&str, usize),
    b: Budget,
    forced: Option<StrategyKind>,
    prefix: Option<PrefixPricing>,
) -> Result<Decision, Box<NoPlan>> {
    let (c, p, s) = (corpus(tokens), profile(), smol());
    let input = folio_engine::router::RouteInput {
        question,
        corpus: &c,
        budget: &b,
        profile: &p,
        model: &m,
        scorer: Some(&s),
        forced,
        max_answer_tokens: 128,
        ground: false,
        rag_k: 5,
        prefix,
    };
    route(&input)
}

fn kind(r: &Result<Strategy, String>) -> &'static str {
    match r {
        Ok(Strategy::Rag { .. }) => "rag",
        Ok(Strategy::Compress { .. }) => "compress",
        Ok(Strategy::Full { rope, .. }) if rope.factor() > 1.0 => "full-beyond",
        Ok(Strategy::Full {
            attention: PlannedAttention::Sparse,
            ..
        }) => "full-sparse",
        Ok(Strategy::Full { .. }) => "full",
        Err(_) => "error",
    }
}

#[test]
fn strategy_table() {
    let free = budget(None, None, None);
    let rows: Vec<(&str, usize, Budget, &str)> = vec![
        // Small documents are read whole, whatever the question.
        (LOOKUP, 1_000, free, "full"),
        (WIDE, 1_000, free, "full"),
        (
            LOOKUP,
            1_000,
            budget(Some(60.0), Some(8), Some(4096)),
            "full",
        ),
        // Within the trained context but over the latency budget.
        (LOOKUP, 20_000, budget(Some(30.0), None, None), "rag"),
        (WIDE, 20_000, budget(Some(60.0), None, None), "compress"),
        // A token budget smaller than the document.
        (LOOKUP, 6_000, budget(None, None, Some(2048)), "rag"),
        (WIDE, 6_000, budget(None, None, Some(2048)), "compress"),
        // Beyond the trained context.
        (LOOKUP, 200_000, budget(Some(120.0), None, None), "rag"),
        (WIDE, 100_000, budget(Some(300.0), None, None), "compress"),
        // A memory budget under the weights: nothing fits.
        (LOOKUP, 1_000, budget(None, Some(1), None), "error"),
    ];
    let mut failures = Vec::new();
    for (q, tokens, b, want) in rows {
        let got = decide(q, tokens, b, None);
        if kind(&got) != want {
            failures.push(format!(
                "{q:?} at {tokens} tokens, {b:?}: want {want}, got {got:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_model_measured_to_read_short_spans_whole_gets_focused_reads_past_them() {
    let short_reader = ModelLimits {
        whole_read_tokens: 1024,
        ..qwen()
    };
    let free = budget(None, None, None);
    let route = |q, tokens, b| decide_with(short_reader.clone(), q, tokens, b, None);
    let strategy = |d: &Result<Decision, Box<NoPlan>>| {
        kind(
            &d.as_ref()
                .map(|d| d.chosen.strategy.clone())
                .map_err(|e| e.to_string()),
        )
    };
    // Up to the span: read whole, as before.
    assert_eq!(strategy(&route(LOOKUP, 1_000, free)), "full");
    // Past it, within the trained context and the budget: focused reads,
    // and the reason names the measured span.
    let lookup = route(LOOKUP, 1_500, free);
    assert_eq!(strategy(&lookup), "rag");
    let reasons = lookup.unwrap().reasons.join(" | ");
    assert!(reasons.contains("measured to read whole"), "{reasons}");
    assert!(reasons.contains("1024 tokens"), "{reasons}");
    assert_eq!(strategy(&route(WIDE, 1_500, free)), "compress");
    // `--strategy full` still reads it whole.
    let forced = decide_with(
        short_reader.clone(),
        LOOKUP,
        1_500,
        free,
        Some(StrategyKind::Full),
    );
    assert_eq!(strategy(&forced), "full");

    // Self-Route escalates in the same order: past the span, compression
    // before a whole read; within it, a whole read first.
    let kinds = |d: Decision| -> Vec<StrategyKind> {
        d.wider_reads().iter().map(|c| c.strategy.kind()).collect()
    };
    let past = kinds(route(LOOKUP, 1_500, free).unwrap());
    assert_eq!(past.first(), Some(&StrategyKind::Compress), "{past:?}");
    assert_eq!(past.last(), Some(&StrategyKind::Full), "{past:?}");
    let within = kinds(decide_with(qwen(), LOOKUP, 1_500, free, None).unwrap());
    assert_eq!(within.first(), Some(&StrategyKind::Full), "{within:?}");
    assert!(within.contains(&StrategyKind::Compress), "{within:?}");
    // Never retrieval again, never past the trained range.
    let beyond = decide_with(
        qwen(),
        LOOKUP,
        200_000,
        budget(Some(120.0), None, None),
        None,
    )
    .unwrap();
    assert!(!beyond.wider_reads().is_empty());
    assert!(beyond
        .wider_reads()
        .iter()
        .all(|c| c.strategy.kind() == StrategyKind::Compress));
    assert!(!past.contains(&StrategyKind::Rag) && !within.contains(&StrategyKind::Rag));
}

#[test]
fn sparse_when_flash_breaks_latency() {
    // 30K tokens fits Qwen's trained 32K; flash attention is quadratic, the
    // sparse plan is cheaper, so a budget between the two picks sparse.
    let p = profile();
    let m = qwen();
    let n = 30_000 + folio_engine::router::cost::PROMPT_OVERHEAD_TOKENS;
    let flash = folio_engine::router::cost::prefill_seconds(&m, &p, n, PlannedAttention::Flash);
    let sparse = folio_engine::router::cost::prefill_seconds(&m, &p, n, PlannedAttention::Sparse);
    assert!(
        sparse < flash * 0.8,
        "sparse {sparse:.1} s vs flash {flash:.1} s"
    );
    let limit = (flash + sparse) / 2.0 + 5.0;
    let got = decide(
        WIDE,
        30_000,
        budget(Some(limit), None, None),
        Some(StrategyKind::Full),
    );
    assert_eq!(kind(&got), "full-sparse", "{got:?}");
}

#[test]
fn forced_strategy_and_impossible_budget() {
    let free = budget(None, None, None);
    assert_eq!(
        kind(&decide(LOOKUP, 1_000, free, Some(StrategyKind::Rag))),
        "rag"
    );
    assert_eq!(
        kind(&decide(LOOKUP, 100_000, free, Some(StrategyKind::Full))),
        "full-beyond"
    );
    // A corpus below the fixed compression targets is still compressible
    // 2× when asked, down to a target of 128 tokens; one smaller is not
    // compressed at all.
    assert_eq!(
        decide(LOOKUP, 800, free, Some(StrategyKind::Compress)),
        Ok(Strategy::Compress { target_tokens: 400 })
    );
    assert_eq!(
        decide(LOOKUP, 3_000, free, Some(StrategyKind::Compress)),
        Ok(Strategy::Compress {
            target_tokens: 1024
        })
    );
    assert_eq!(
        decide(LOOKUP, 400, free, Some(StrategyKind::Compress)),
        Ok(Strategy::Compress { target_tokens: 200 })
    );
    assert!(decide(LOOKUP, 200, free, Some(StrategyKind::Compress)).is_err());
    let err = decide(LOOKUP, 200_000, budget(Some(0.5), None, None), None).unwrap_err();
    assert!(err.contains("cheapest is rag"), "{err}");
    assert!(err.contains("--budget-latency"), "{err}");
}

/// After a first full read saved the corpus' prefix, the next question's
/// full read costs a restore and the question's own prefill: a latency
/// budget that ruled the full read out now allows it.
#[test]
fn a_saved_prefix_makes_the_next_full_read_cheap() {
    let m = qwen();
    let tokens = 20_000;
    let saving = PrefixPricing {
        cached_tokens: 0,
        restore_seconds: 0.0,
        save_bytes_per_s: 1e9,
    };
    let first = decide_cached(
        m.clone(),
        (LOOKUP, tokens),
        budget(None, None, None),
        Some(StrategyKind::Full),
        Some(saving),
    )
    .unwrap();
    let full = first.chosen.cost.seconds;
    // Saving the prefix is priced: its KV bytes at the disk's speed.
    assert!(full.kv_cache > 0.0, "{full:?}");
    let tight = full.total() / 4.0;
    let plain = decide_cached(
        m.clone(),
        (LOOKUP, tokens),
        budget(Some(tight), None, None),
        None,
        Some(saving),
    )
    .unwrap();
    assert_ne!(
        plain.chosen.strategy.kind(),
        StrategyKind::Full,
        "{:?}",
        plain.chosen
    );

    let saved = PrefixPricing {
        cached_tokens: tokens + 40,
        restore_seconds: 1.5,
        ..saving
    };
    let again = decide_cached(
        m,
        (LOOKUP, tokens),
        budget(Some(tight), None, None),
        None,
        Some(saved),
    )
    .unwrap();
    assert_eq!(
        again.chosen.strategy.kind(),
        StrategyKind::Full,
        "{:?}",
        again.reasons
    );
    let s = again.chosen.cost.seconds;
    assert_eq!(s.kv_cache, 1.5);
    assert!(
        again.reasons.iter().any(|r| r.contains("saved prefix")),
        "{:?}",
        again.reasons
    );
    assert!(s.prefill < full.prefill / 20.0, "{s:?} against {full:?}");
}

/// A full read whose cache breaks the memory budget is offered with H2O
/// eviction sized to the budget; only a forced full read (or nothing else
/// fitting) takes it, and the card says what it gives up.
#[test]
fn a_memory_budget_a_full_cache_breaks_gets_an_evicting_read() {
    let tokens = 30_000;
    let open = decide(
        LOOKUP,
        tokens,
        budget(None, None, None),
        Some(StrategyKind::Full),
    )
    .unwrap();
    let whole = decide_with(
        qwen(),
        LOOKUP,
        tokens,
        budget(None, None, None),
        Some(StrategyKind::Full),
    )
    .unwrap()
    .chosen
    .cost;
    assert!(matches!(open, Strategy::Full { eviction: None, .. }));
    // Room for about a quarter of the cache.
    let memory = whole.peak_memory_bytes - whole.kv_bytes * 3 / 4;
    let mut tight = budget(None, None, None);
    tight.memory_bytes = Some(memory);
    let d = decide_with(qwen(), LOOKUP, tokens, tight, Some(StrategyKind::Full)).unwrap();
    let Strategy::Full {
        eviction: Some(e), ..
    } = d.chosen.strategy
    else {
        panic!("{:?}", d.chosen)
    };
    assert!(e.budget > 1024 && e.budget < tokens / 3, "{e:?}");
    assert!(d.chosen.cost.peak_memory_bytes <= memory);
    assert!(
        d.reasons.iter().any(|r| r.contains("memory budget")),
        "{:?}",
        d.reasons
    );
    // Unforced, retrieval fits the same budget and is chosen instead.
    let free = decide_with(qwen(), LOOKUP, tokens, tight, None).unwrap();
    assert_eq!(free.chosen.strategy.kind(), StrategyKind::Rag);
}

#[test]
fn costs_grow_with_context_and_rag_reads_a_fraction() {
    let (c, p, m, s) = (corpus(20_000), profile(), qwen(), smol());
    let b = budget(None, None, None);
    let input = folio_engine::router::RouteInput {
        question: LOOKUP,
        corpus: &c,
        budget: &b,
        profile: &p,
        model: &m,
        scorer: Some(&s),
        forced: None,
        max_answer_tokens: 128,
        ground: false,
        rag_k: 5,
        prefix: None,
    };
    let d = route(&input).unwrap();
    let by = |k: StrategyKind| {
        d.candidates
            .iter()
            .find(|c| c.strategy.kind() == k)
            .unwrap()
            .cost
    };
    let (full, rag) = (by(StrategyKind::Full), by(StrategyKind::Rag));
    assert!(full.seconds.total() > 5.0 * rag.seconds.total());
    assert!(full.kv_bytes > 10 * rag.kv_bytes);
    assert!((rag.coverage - 1000.0 / 20_000.0).abs() < 1e-9);
    assert_eq!(full.coverage, 1.0);
    assert!(!d.reasons.is_empty());
}

#[test]
fn prefill_prices_int8_prompt_matrices_at_the_int8_rate() {
    use folio_engine::router::cost::prefill_seconds;
    let mut p = profile();
    p.int8_matmul_gflops = 2.0 * p.matmul_gflops;
    let f32_prompts = qwen();
    let int8_prompts = ModelLimits {
        prompt_int8_share: 1.0,
        ..qwen()
    };
    let tokens = 2048;
    let f32_s = prefill_seconds(&f32_prompts, &p, tokens, PlannedAttention::Flash);
    let int8_s = prefill_seconds(&int8_prompts, &p, tokens, PlannedAttention::Flash);
    // Only the projections' half of the cost changes: twice the rate, half the time.
    let projections = tokens as f64 * qwen().linear_flops_per_token() / (p.matmul_gflops * 1e9);
    let saved = f32_s - int8_s;
    assert!(
        (saved - projections / 2.0).abs() <= 1e-9 * f32_s,
        "saved {saved} s of {projections} s of projections"
    );
}

/// A model a server runs: its measured rates price the reads, its context
/// bounds full reads (no RoPE scaling: that is the server's), and its
/// memory is the server's, so a small memory budget no longer rules out
/// reading whole.
#[test]
fn a_served_model_is_priced_by_its_measured_rates_within_its_context() {
    let rates = ServedRates {
        prompt_tok_per_s: 4_000.0,
        prompt_quadratic_s: 1e-9,
        decode_tok_per_s: 40.0,
        request_seconds: 0.3,
    };
    let served = ModelLimits {
        trained_context: 16_384,
        whole_read_tokens: 16_384,
        served: Some(rates),
        ..qwen()
    };
    let p = profile();
    let prefill =
        folio_engine::router::cost::prefill_seconds(&served, &p, 8_000, PlannedAttention::Flash);
    assert!((prefill - (0.3 + 2.0 + 0.064)).abs() < 1e-9, "{prefill}");
    let decode = folio_engine::router::cost::decode_seconds(&served, &p, 8_000, 41);
    assert!((decode - 1.0).abs() < 1e-9, "{decode}");

    // 10K tokens: under a 1 GiB memory budget a local full read cannot
    // even hold the weights; on the server it is a 3 s read.
    let tight = budget(Some(30.0), Some(1), None);
    let d = decide_with(served.clone(), LOOKUP, 10_000, tight, None).unwrap();
    assert_eq!(kind(&Ok(d.chosen.strategy.clone())), "full", "{d:?}");
    assert_eq!(d.chosen.cost.kv_bytes, 0, "the server's cache is not ours");
    assert!(decide_with(qwen(), LOOKUP, 10_000, tight, None).is_err());
    // Only the plain read is offered: no sparse, int8 or evicting variants.
    for c in &d.candidates {
        if let Strategy::Full {
            attention,
            kv,
            eviction,
            ..
        } = &c.strategy
        {
            assert_eq!(*attention, PlannedAttention::Flash);
            assert_eq!(*kv, folio_engine::llm::KvDtype::F32);
            assert!(eviction.is_none());
        }
    }
    // Past the server's context nothing is read whole; forced, the error
    // says why.
    let d = decide_with(
        served.clone(),
        LOOKUP,
        20_000,
        budget(None, None, None),
        None,
    )
    .unwrap();
    assert_eq!(kind(&Ok(d.chosen.strategy)), "rag");
    let full = Some(StrategyKind::Full);
    let e = decide_with(served, LOOKUP, 20_000, budget(None, None, None), full).unwrap_err();
    assert!(e.to_string().contains("the server holds 16384"), "{e}");
}
