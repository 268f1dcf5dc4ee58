//! The one layer from flags to the engine's options: budgets, answer and
//! ask options, long-context session options, device placement, and the
//! defaults that depend on folio's home folder.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use folio_engine::answer::AnswerOptions;
use folio_engine::ask::AskOptions;
use folio_engine::device::{DeviceRequest, Placement};
use folio_engine::gpu::GpuSessionOptions;
use folio_engine::llm::{
    AttentionMode, Eviction, EvictionPolicy, GenerateOptions, KvDtype, Model, RopeScaling,
    Sampling, SessionOptions, SparseConfig,
};
use folio_engine::models::load_model;
use folio_engine::prefix_cache::PrefixCache;
use folio_engine::remote::{rates, RemoteConfig, RemoteServer};
use folio_engine::router::Budget;

use super::{
    AskArgs, AttentionArg, BackendArg, BackendArgs, BudgetArgs, GenerationArgs, KvArg, KvCacheArgs,
    KvEvictArgs, LongContextArgs, RopeArg,
};

/// The attention mode the flags ask for.
pub fn attention_mode(args: &LongContextArgs) -> Result<AttentionMode> {
    Ok(match args.attention {
        AttentionArg::Dense => AttentionMode::Dense,
        AttentionArg::Flash => AttentionMode::Flash,
        AttentionArg::Sparse => {
            if args.sparse_block == 0 || args.top_k == 0 {
                bail!("--top-k and --sparse-block must be at least 1");
            }
            AttentionMode::Sparse(SparseConfig {
                top_k: args.top_k,
                block: args.sparse_block,
                sinks: args.sinks,
                window: args.window,
            })
        }
    })
}

/// The RoPE scaling the flags ask for, against `model`'s trained context.
pub fn rope_scaling(args: &LongContextArgs, model: &Model) -> Result<RopeScaling> {
    let original = model.config.trained_positions();
    let factor = || -> Result<f32> {
        match args.rope_factor {
            Some(f) => Ok(f),
            None => bail!(
                "--rope {:?} needs --rope-factor S (the context it covers is {original} × S)",
                args.rope
            ),
        }
    };
    let scaling = match args.rope {
        RopeArg::Auto => match args.rope_factor {
            Some(_) => bail!("--rope-factor needs --rope pi|ntk|yarn|dynamic"),
            None => model.config.default_rope_scaling(),
        },
        RopeArg::None => RopeScaling::None,
        RopeArg::Pi => RopeScaling::Linear { factor: factor()? },
        RopeArg::Ntk => RopeScaling::Ntk { factor: factor()? },
        RopeArg::Yarn => RopeScaling::yarn(factor()?, original),
        RopeArg::Dynamic => RopeScaling::Dynamic {
            factor: args.rope_factor.unwrap_or(1.0),
            original_context: original,
        },
    };
    scaling.validate()?;
    Ok(scaling)
}

/// Session options for `model` from the flags.
pub fn session_options(args: &LongContextArgs, model: &Model) -> Result<SessionOptions> {
    if args.prefill_chunk == 0 {
        bail!("--prefill-chunk must be at least 1");
    }
    Ok(SessionOptions {
        attention: attention_mode(args)?.build(),
        rope_scaling: rope_scaling(args, model)?,
        kv_dtype: match args.kv {
            KvArg::F32 => KvDtype::F32,
            KvArg::F16 => KvDtype::F16,
            KvArg::Int8 => KvDtype::Int8,
        },
        prefill_chunk: args.prefill_chunk,
        eviction: eviction(&args.evict)?,
        ..SessionOptions::default()
    })
}

/// The eviction `--kv-evict` and `--kv-budget` ask for, checked.
pub fn eviction(args: &KvEvictArgs) -> Result<Option<Eviction>> {
    match (&args.kv_evict, args.kv_budget) {
        (None, None) => Ok(None),
        (None, Some(_)) => bail!("--kv-budget needs --kv-evict streaming|h2o|snapkv"),
        (Some(_), None) => {
            bail!("--kv-evict needs --kv-budget N: the positions each layer and KV head keeps")
        }
        (Some(_), Some(0)) => bail!("--kv-budget must be at least 1 position"),
        (Some(name), Some(budget)) => {
            let policy = EvictionPolicy::parse(name).with_context(|| {
                format!("--kv-evict {name:?} is not a policy: use streaming, h2o or snapkv")
            })?;
            if let EvictionPolicy::SnapKv { window, .. } = policy {
                if budget <= window {
                    bail!(
                        "--kv-budget {budget} leaves snapkv no room beside the question's \
                         {window}-token window: give more than {window}"
                    );
                }
            }
            Ok(Some(Eviction { policy, budget }))
        }
    }
}

/// The budget from the flags; memory defaults to what is available now.
pub fn budget(args: &BudgetArgs) -> Result<Budget> {
    budget_from(
        &args.budget_latency,
        args.budget_memory.as_deref(),
        &args.budget_tokens,
    )
}

/// A budget from `--budget-latency`, `--budget-memory` (`None`: what is
/// available now) and `--budget-tokens` values.
pub fn budget_from(latency: &str, memory: Option<&str>, tokens: &str) -> Result<Budget> {
    let memory = match memory {
        Some(m) => parse_bytes(m)?,
        None => Some(folio_engine::calibrate::memory()?.1).filter(|b| *b > 0),
    };
    Ok(Budget {
        latency_s: parse_seconds(latency)?,
        memory_bytes: memory,
        context_tokens: match tokens {
            "none" => None,
            n => Some(n.parse().with_context(|| {
                format!("--budget-tokens {n:?} is not a number of tokens (or `none`)")
            })?),
        },
    })
}

/// `value` and `unit` of `30s` or `4GiB` (unit possibly empty); `None` for
/// `none`. `what` names the expected kind in the error.
fn split_quantity<'a>(s: &'a str, what: &str) -> Result<Option<(f64, &'a str)>> {
    let s = s.trim();
    if s == "none" {
        return Ok(None);
    }
    let split = s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: f64 = num
        .trim()
        .parse()
        .with_context(|| format!("{s:?} is not {what}"))?;
    Ok(Some((value, unit)))
}

/// `30s`, `1.5m`, `500ms`, `2h`, a bare number of seconds, or `none`.
pub fn parse_seconds(s: &str) -> Result<Option<f64>> {
    let Some((value, unit)) = split_quantity(s, "a duration (try 30s, 2m or none)")? else {
        return Ok(None);
    };
    let scale = match unit {
        "" | "s" => 1.0,
        "ms" => 1e-3,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => bail!("unknown unit in {:?}: use ms, s, m or h", s.trim()),
    };
    if value <= 0.0 {
        bail!("a latency budget must be positive (got {:?})", s.trim());
    }
    Ok(Some(value * scale))
}

/// `4GiB`, `512MiB`, `2GB`, a bare number of bytes, or `none`.
pub fn parse_bytes(s: &str) -> Result<Option<u64>> {
    let Some((value, unit)) = split_quantity(s, "a size (try 4GiB, 512MiB or none)")? else {
        return Ok(None);
    };
    let scale = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        _ => bail!(
            "unknown unit in {:?}: use B, kB, MB, GB, KiB, MiB or GiB",
            s.trim()
        ),
    };
    Ok(Some((value * scale) as u64))
}

/// Places `model` as `request` asks; a `cuda` request that falls back to
/// the CPU says why (an `auto` one falls back quietly; its cards say so
/// only when a GPU was found).
pub fn place(model: &Model, request: DeviceRequest) -> Placement {
    let placement = Placement::prepare(model, request);
    if let (Some(note), DeviceRequest::Cuda) = (placement.note(), request) {
        eprintln!("folio: {note}");
    }
    placement
}

/// The answering model and where it reads: `model` placed as `device`
/// asks, or, with `--backend openai`, the local tokenizer model (its
/// weights never read) and the connected server serving `model`.
pub fn answerer(
    model: &str,
    device: DeviceRequest,
    backend: &BackendArgs,
    progress: bool,
) -> Result<(Model, Placement)> {
    if backend.backend == BackendArg::Local {
        if backend.base_url.is_some() && std::env::var_os("FOLIO_BASE_URL").is_none() {
            eprintln!("folio: --base-url is used only with --backend openai; answering in-process");
        }
        let answerer = load_model(model, progress)?;
        let placement = place(&answerer, device);
        return Ok((answerer, placement));
    }
    let (tokenizer, mut server) = connect_server(model, backend, progress)?;
    server.rates = Some(match rates::cached_rates(&server) {
        Some(r) => r.rates,
        None => {
            if progress {
                eprintln!(
                    "folio: measuring the server's speed once for the router \
                     (`folio calibrate --backend openai` re-runs it)"
                );
            }
            match rates::measure(&server, &tokenizer) {
                Ok(r) => r.rates,
                Err(e) => {
                    // A notice: stderr for the CLI, the status bar in the TUI.
                    log::warn!(
                        "could not measure the server ({e:#}); plans assume a typical GPU server"
                    );
                    folio_engine::router::ServedRates::UNMEASURED
                }
            }
        }
    });
    if progress {
        eprintln!(
            "folio: answering through {} at {} (model {}, context {})",
            server.info.kind.name(),
            server.info.url,
            server.info.model,
            server
                .info
                .context
                .map_or("not reported".into(), |n| format!("{n} tokens"))
        );
    }
    Ok((tokenizer, Placement::remote(Arc::new(server))))
}

/// The served `model`'s tokenizer (a local GGUF) and the connected server
/// of `--backend openai` (its rates not yet read).
pub fn connect_server(
    model: &str,
    backend: &BackendArgs,
    progress: bool,
) -> Result<(Model, RemoteServer)> {
    let Some(base_url) = backend.base_url.clone() else {
        bail!("--backend openai needs the server's address: --base-url URL (or FOLIO_BASE_URL), e.g. http://127.0.0.1:8080");
    };
    let tokenizer_id = backend.tokenizer.as_deref().unwrap_or(model);
    let tokenizer = load_model(tokenizer_id, progress).with_context(|| match &backend.tokenizer {
        Some(t) => format!("loading the tokenizer model {t}"),
        None => format!(
            "'{model}' is the served model's name; folio also needs its tokenizer and chat template: \
             pass --tokenizer with the id (`folio models list`) or GGUF path of the same model"
        ),
    })?;
    let config = RemoteConfig {
        base_url,
        model: model.to_string(),
        api_key: std::env::var("FOLIO_API_KEY")
            .ok()
            .filter(|k| !k.is_empty()),
        timeout: std::time::Duration::from_secs(backend.server_timeout.max(1)),
    };
    let server = RemoteServer::connect(&config, &tokenizer)?;
    Ok((tokenizer, server))
}

/// The store folder used when `--store` (or `--corpus`) is not given.
pub fn default_store() -> PathBuf {
    folio_corpora::fetch::folio_home().join("corpus")
}

/// `folio ask`'s options from its flags.
pub fn ask_options(args: &AskArgs) -> Result<AskOptions> {
    Ok(AskOptions {
        budget: budget(&args.budget)?,
        forced: args.strategy.as_deref().map(str::parse).transpose()?,
        rag_k: args.plan.chunks.max(1),
        generate: GenerateOptions {
            max_new_tokens: args.max_tokens,
            ..Default::default()
        },
        self_route: !args.no_fallback,
        progress: !args.json,
        ground: !args.plan.no_quote,
        min_confidence: args.plan.min_confidence,
        prefix_cache: prefix_cache(&args.plan.kv_cache, false)?,
        eviction: eviction(&args.plan.evict)?,
    })
}

/// The prefix cache `--kv-cache-max` asks for: on disk unless it is 0, and
/// with the last prefix kept in memory when `keep_last` (the TUI).
pub fn prefix_cache(args: &KvCacheArgs, keep_last: bool) -> Result<Option<Arc<PrefixCache>>> {
    let max = parse_bytes(&args.kv_cache_max)?.unwrap_or(u64::MAX);
    let dir = args
        .kv_cache_dir
        .clone()
        .unwrap_or_else(PrefixCache::default_dir);
    Ok(match (max, keep_last) {
        (0, false) => None,
        (0, true) => Some(Arc::new(PrefixCache::in_memory())),
        (max, false) => Some(Arc::new(PrefixCache::on_disk(dir, max))),
        (max, true) => Some(Arc::new(
            PrefixCache::on_disk(dir, max).keeping_last_in_memory(),
        )),
    })
}

/// Generation and session options of `read` and `demo`, with the model
/// placed where `--device` asks (or on `server`, from [`answerer`]).
pub fn answer_options(
    g: &GenerationArgs,
    model: &Model,
    server: Option<Placement>,
) -> Result<AnswerOptions> {
    let sampling = if g.temperature > 0.0 {
        Sampling::TopP {
            temperature: g.temperature,
            top_p: g.top_p,
            seed: g.seed,
        }
    } else {
        Sampling::Greedy
    };
    let session = session_options(&g.long_context, model)?;
    // `auto` does not upload weights for a read the GPU would not run
    // (`cuda` does, and the card says why the read fell back).
    let request = match g.device {
        DeviceRequest::Auto if GpuSessionOptions::from_session(&session).is_err() => {
            DeviceRequest::Cpu
        }
        request => request,
    };
    Ok(AnswerOptions {
        generate: GenerateOptions {
            max_new_tokens: g.max_tokens,
            sampling,
            extra_stop_tokens: Vec::new(),
            cancel: None,
        },
        session,
        device: server.unwrap_or_else(|| place(model, request)),
        ground: true,
        prefix_cache: None,
    })
}
