//! GPU check of folio's forward pass (`folio_engine::gpu`), run on a machine
//! with an NVIDIA GPU by `scripts/gpu-check.sh`.
//!
//! ```text
//! gpu_model_check [MODEL.gguf]              # default .gpu/smollm2-8l.gguf
//! gpu_model_check truncate IN.gguf OUT.gguf LAYERS [q4_1]
//! ```
//!
//! 1. Agreement with the CPU: the CPU `Session` (default options: f32
//!    weights for prefill, flash attention, f32 KV) and a `GpuSession` run
//!    the same prompt (a fixed English text, about 300 tokens). Compared:
//!    every position's logits (one GPU chunk, and chunks of 64 tokens, which
//!    exercise the cache offset), the last position's (`Logits::Last`), and
//!    8 greedy decoding steps (against the CPU on f32 weights). Error =
//!    ||gpu - cpu|| / ||cpu|| over the logits compared; top-1 agreement =
//!    share of positions whose argmax is the same. Tolerances: relative
//!    error at most 3e-2 and top-1 agreement at least 95 %: bf16 keeps 8
//!    significant bits, and rounding weights, normed activations, q/k/v and
//!    attention outputs puts the logits about 1e-2 off; near-ties can flip
//!    the argmax. For scale the check also reports the CPU run with only the
//!    weights rounded to bf16, and the CPU's quantized decoding against f32.
//! 2. Speed: GPU prefill tokens/s at 512, 2048 and 8192 tokens and decoding
//!    tokens/s (64 greedy steps after a 512-token prompt, and after 8192),
//!    after warm-up, for the given model and for random weights of real
//!    models' shapes (SmolLM2-135M, Qwen2.5-0.5B, Qwen2.5-1.5B: speed does
//!    not depend on the values).
//!
//! `truncate` writes a GGUF with the first LAYERS blocks of IN (metadata
//! copied, `{arch}.block_count` set), small enough to carry to a GPU machine;
//! with `q4_1` the token embedding (SmolLM2 ships it as Q8_0, 30 MB) is
//! requantized to Q4_1 (18 MB). Both sessions read the same file, so this
//! changes nothing in the comparison.
//!
//! Results also go to `$OUT/gpu_model_check.json` (or `./`). Exit status 1 if
//! an agreement check fails, 2 if the GPU is unusable.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::quantized::gguf_file::{self, Content, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::Device;
use folio_engine::gpu::{cuda_available, GpuModel, GpuSession, GpuSessionOptions};
use folio_engine::llm::{Arch, Logits, Model, ModelConfig, Session, SessionOptions};
use folio_kernels::quant::{BlockFormat, BlockMatrix};

const TOL_REL: f64 = 3e-2;
const TOL_TOP1: f64 = 0.95;

/// The prompt: plain English prose (about 300 tokens with SmolLM2's tokenizer).
const TEXT: &str = "The lighthouse stood on a narrow spit of rock at the mouth of the harbour, \
and for more than a century its keepers had climbed the same one hundred and twelve steps every \
evening to light the lamp. In the early years the light came from a row of oil burners set \
before polished copper reflectors; later a great glass lens, shipped in crates from Paris, \
gathered the flame into a single beam that could be seen twenty miles out to sea. The keepers \
kept a log of every ship that passed, every storm that broke against the rocks, and every \
repair they made to the lantern. Reading those logs today, one is struck less by the drama of \
the shipwrecks than by the patience of the daily work: the wicks trimmed at midnight, the brass \
polished each morning, the windows of the lantern room cleaned of salt after every gale. \
When the light was finally automated, the last keeper wrote a short entry in the log, noting \
the weather, the state of the sea, and the time at which he locked the door behind him for the \
final time. The town later turned the keeper's cottage into a small museum. Visitors can see \
the log books in a glass case, the old copper reflectors mounted on the wall, and a model of \
the harbour as it looked before the breakwater was built. On clear evenings, the beam still \
sweeps across the water, though no one climbs the stairs to light it any more.";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = if args.first().map(String::as_str) == Some("truncate") {
        match &args[1..] {
            [inp, out, layers, rest @ ..] if rest.len() <= 1 => {
                let q4 = match rest.first().map(String::as_str) {
                    None => Ok(false),
                    Some("q4_1") => Ok(true),
                    Some(other) => Err(anyhow::anyhow!("unknown embedding format {other}")),
                };
                q4.and_then(|q4| {
                    let n = layers.parse().context("LAYERS must be a number")?;
                    truncate(Path::new(inp), Path::new(out), n, q4)
                })
            }
            _ => Err(anyhow::anyhow!(
                "usage: gpu_model_check truncate IN.gguf OUT.gguf LAYERS [q4_1]"
            )),
        }
    } else {
        let model = args
            .first()
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(".gpu/smollm2-8l.gguf"));
        check(&model)
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(1);
        }
    }
}

/// Writes the first `layers` blocks of `inp` to `out`, the token embedding
/// requantized to Q4_1 when `embed_q4_1`.
fn truncate(inp: &Path, out: &Path, layers: usize, embed_q4_1: bool) -> Result<i32> {
    let mut f = std::fs::File::open(inp).with_context(|| format!("opening {}", inp.display()))?;
    let content = Content::read(&mut f)?;
    let arch = match content.metadata.get("general.architecture") {
        Some(Value::String(s)) => s.clone(),
        _ => bail!("no general.architecture"),
    };
    let count_key = format!("{arch}.block_count");
    let total = content
        .metadata
        .get(&count_key)
        .context("no block_count")?
        .to_u32()?;
    if layers == 0 || layers as u32 > total {
        bail!("{layers} layers asked, the model has {total}");
    }
    let mut metadata: Vec<(String, Value)> = content
        .metadata
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (k, v) in metadata.iter_mut() {
        if *k == count_key {
            *v = Value::U32(layers as u32);
        }
    }
    metadata.sort_by(|a, b| a.0.cmp(&b.0));
    let mut names: Vec<&String> = content
        .tensor_infos
        .keys()
        .filter(|n| match n.strip_prefix("blk.") {
            Some(rest) => rest
                .split('.')
                .next()
                .and_then(|i| i.parse::<usize>().ok())
                .is_some_and(|i| i < layers),
            None => true,
        })
        .collect();
    names.sort();
    let mut tensors = Vec::with_capacity(names.len());
    for n in &names {
        let t = content.tensor(&mut f, n, &Device::Cpu)?;
        tensors.push(if embed_q4_1 && n.as_str() == "token_embd.weight" {
            QTensor::quantize(&t.dequantize(&Device::Cpu)?, GgmlDType::Q4_1)?
        } else {
            t
        });
    }
    let md: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let ts: Vec<(&str, &_)> = names
        .iter()
        .map(|n| n.as_str())
        .zip(tensors.iter())
        .collect();
    let mut w = std::io::BufWriter::new(std::fs::File::create(out)?);
    gguf_file::write(&mut w, &md, &ts)?;
    drop(w);
    let model = Model::load(out).context("the truncated model does not load")?;
    println!(
        "wrote {} ({} of {total} layers, {} tensors, {:.1} MB); loads: {} layers, hidden {}",
        out.display(),
        layers,
        ts.len(),
        std::fs::metadata(out)?.len() as f64 / 1e6,
        model.config.n_layers,
        model.config.hidden
    );
    Ok(0)
}

/// ||a - b|| / ||b|| over all values.
fn rel_err(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let (mut num, mut den) = (0f64, 0f64);
    for (x, y) in a.iter().zip(b) {
        if !x.is_finite() {
            return f64::NAN;
        }
        let d = (*x - *y) as f64;
        num += d * d;
        den += (*y as f64) * (*y as f64);
    }
    (num / den.max(1e-300)).sqrt()
}

fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, v) in row.iter().enumerate() {
        if *v > row[best] {
            best = i;
        }
    }
    best
}

/// Share of rows of `[rows, vocab]` logits with the same argmax.
fn top1(a: &[f32], b: &[f32], vocab: usize) -> f64 {
    let rows = a.len() / vocab;
    let same = a
        .chunks_exact(vocab)
        .zip(b.chunks_exact(vocab))
        .filter(|(x, y)| argmax(x) == argmax(y))
        .count();
    same as f64 / rows.max(1) as f64
}

struct Checks {
    failed: bool,
    json: String,
}

impl Checks {
    fn compare(&mut self, name: &str, gpu: &[f32], cpu: &[f32], vocab: usize, judged: bool) {
        let err = rel_err(gpu, cpu);
        let agree = top1(gpu, cpu, vocab);
        let ok = !judged || (err.is_finite() && err <= TOL_REL && agree >= TOL_TOP1);
        println!(
            "{name:<52} rel_err {err:>9.3e}  top-1 {:>6.1} % ({} rows)  {}",
            100.0 * agree,
            gpu.len() / vocab,
            if !judged {
                "(reference)"
            } else if ok {
                "ok"
            } else {
                "FAIL"
            }
        );
        self.failed |= !ok;
        let _ = write!(
            self.json,
            "{}{{\"name\":\"{name}\",\"rel_err\":{err:.4e},\"top1\":{agree:.4},\"rows\":{},\"judged\":{judged},\"ok\":{ok}}}",
            if self.json.is_empty() { "" } else { "," },
            gpu.len() / vocab
        );
    }
}

/// Rounds every matrix of `model` to bf16 (in place), for the reference spread.
fn round_weights_to_bf16(model: &mut Model) -> Result<()> {
    let round = |m: &BlockMatrix| -> Result<BlockMatrix> {
        let bytes: Vec<u8> = m
            .dequantize_all()
            .into_iter()
            .flat_map(|x| half::bf16::from_f32(x).to_le_bytes())
            .collect();
        BlockMatrix::new(BlockFormat::Bf16, m.rows, m.cols, bytes).map_err(anyhow::Error::msg)
    };
    for l in &mut model.weights.layers {
        for lin in [&mut l.qkv, &mut l.attn_out, &mut l.gate_up, &mut l.down] {
            for part in &mut lin.parts {
                *part = round(part)?;
            }
        }
    }
    for part in &mut model.weights.output.parts {
        *part = round(part)?;
    }
    model.weights.embeddings = round(&model.weights.embeddings)?;
    Ok(())
}

fn check(path: &Path) -> Result<i32> {
    let mut model = Model::load(path).with_context(|| format!("loading {}", path.display()))?;
    let c = model.config.clone();
    println!(
        "== model {} ({}): {} layers, hidden {}, ffn {}, heads {}/{}, head_dim {}, vocab {}",
        path.display(),
        c.name,
        c.n_layers,
        c.hidden,
        c.ffn_hidden,
        c.n_heads,
        c.n_kv_heads,
        c.head_dim,
        c.vocab_size
    );
    let mut tokens = model.tokenizer.encode_text(TEXT)?;
    tokens.truncate(320);
    let n = tokens.len();
    let vocab = c.vocab_size;
    println!("prompt: {n} tokens");
    let mut checks = Checks {
        failed: false,
        json: String::new(),
    };

    // CPU references: every position (f32 weights), then 8 greedy decoding
    // steps, on the f32 weights and on the quantized blocks (the CPU's
    // default for decoding).
    let t0 = Instant::now();
    let mut cpu = Session::new(&model, SessionOptions::default());
    let cpu_all = cpu.forward(&tokens, Logits::All)?;
    println!(
        "CPU prefill {n} tokens: {:.3} s",
        t0.elapsed().as_secs_f64()
    );
    let cpu_last = cpu_all[(n - 1) * vocab..].to_vec();
    let f32_decode = SessionOptions {
        quantized_activations: false,
        ..SessionOptions::default()
    };
    let mut cpu32 = Session::new(&model, f32_decode);
    cpu32.forward(&tokens, Logits::Last)?;
    let mut next = argmax(&cpu_last) as u32;
    let (mut cpu_steps, mut cpu_q_steps, mut steps_in) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..8 {
        steps_in.push(next);
        let l = cpu32.forward(&[next], Logits::Last)?;
        cpu_q_steps.extend(cpu.forward(&[next], Logits::Last)?);
        next = argmax(&l) as u32;
        cpu_steps.extend(l);
    }
    checks.compare(
        "CPU decode on quantized blocks vs f32 (reference)",
        &cpu_q_steps,
        &cpu_steps,
        vocab,
        false,
    );
    // Scale: what rounding the weights alone to bf16 does on the CPU (the
    // GPU rounds them the same way, so uploading the rounded model below
    // changes nothing).
    round_weights_to_bf16(&mut model)?;
    let mut cpu16 = Session::new(&model, SessionOptions::default());
    let all16 = cpu16.forward(&tokens, Logits::All)?;
    checks.compare(
        "CPU, weights rounded to bf16 (reference)",
        &all16,
        &cpu_all,
        vocab,
        false,
    );

    let rt = match cuda_available() {
        Ok(rt) => Arc::new(rt),
        Err(why) => {
            println!(
                "GPU unusable: {why}; the GPU check needs one (the CLI falls back to the CPU)"
            );
            return Ok(2);
        }
    };
    println!("== device: {}", rt.device_name()?);
    let gpu_model = GpuModel::upload(&model, rt.clone())?;
    println!(
        "uploaded: {:.1} MB of weights on the device",
        gpu_model.weight_bytes() as f64 / 1e6
    );
    {
        let mut s = GpuSession::new(&gpu_model, GpuSessionOptions::for_model(&model))?;
        let all = s.forward(&tokens, Logits::All)?;
        checks.compare("all positions, one chunk", &all, &cpu_all, vocab, true);
        let last_rows = 32.min(n);
        checks.compare(
            "last 32 positions, one chunk",
            &all[(n - last_rows) * vocab..],
            &cpu_all[(n - last_rows) * vocab..],
            vocab,
            true,
        );
        let mut gpu_steps = Vec::new();
        for &t in &steps_in {
            gpu_steps.extend(s.forward(&[t], Logits::Last)?);
        }
        checks.compare("8 decode steps", &gpu_steps, &cpu_steps, vocab, true);
        if s.position() != n + 8 {
            bail!("GPU position {} after {} tokens", s.position(), n + 8);
        }
        s.reset();
        let last = s.forward(&tokens, Logits::Last)?;
        checks.compare(
            "last position (Logits::Last) after reset",
            &last,
            &cpu_last,
            vocab,
            true,
        );
    }
    {
        let opts = GpuSessionOptions {
            prefill_chunk: 64,
            ..GpuSessionOptions::for_model(&model)
        };
        let mut s = GpuSession::new(&gpu_model, opts)?;
        let all = s.forward(&tokens, Logits::All)?;
        checks.compare("all positions, chunks of 64", &all, &cpu_all, vocab, true);
        let mut s = GpuSession::new(&gpu_model, opts)?;
        s.forward(&tokens[..n / 2], Logits::Last)?;
        let rest = s.forward(&tokens[n / 2..], Logits::All)?;
        checks.compare(
            "second half after a first call",
            &rest,
            &cpu_all[(n / 2) * vocab..],
            vocab,
            true,
        );
    }

    // Speed.
    let mut speed = String::new();
    time_model(
        &format!("{} ({} layers, real weights)", c.name, c.n_layers),
        &gpu_model,
        &mut speed,
    )?;
    drop(gpu_model);
    drop(model);
    for (label, cfg) in shapes() {
        let m = GpuModel::random(cfg, rt.clone(), 7)?;
        time_model(
            &format!("{label} (random weights, same shape)"),
            &m,
            &mut speed,
        )?;
    }

    let json = format!(
        "{{\"device\":\"{}\",\"model\":\"{}\",\"prompt_tokens\":{n},\"tol_rel\":{TOL_REL},\"tol_top1\":{TOL_TOP1},\"checks\":[{}],\"speed\":[{speed}]}}",
        rt.device_name()?,
        path.display(),
        checks.json
    );
    let dir = std::env::var("OUT").unwrap_or_else(|_| ".".into());
    std::fs::write(Path::new(&dir).join("gpu_model_check.json"), json)?;
    println!(
        "{}",
        if checks.failed {
            "AGREEMENT CHECK FAILED"
        } else {
            "all agreement checks passed"
        }
    );
    Ok(i32::from(checks.failed))
}

/// Real models' shapes, for timing with random weights.
fn shapes() -> Vec<(&'static str, ModelConfig)> {
    let cfg = |arch, name: &str, layers, hidden, ffn, heads, kv, d, vocab, theta| ModelConfig {
        arch,
        name: name.into(),
        n_layers: layers,
        hidden,
        ffn_hidden: ffn,
        n_heads: heads,
        n_kv_heads: kv,
        head_dim: d,
        vocab_size: vocab,
        rms_eps: 1e-6,
        rope_theta: theta,
        rope_dim: d,
        trained_context: 32768,
        rope_scaling_type: None,
        rope_scaling_factor: None,
        rope_scaling_original_context: None,
        numerics: Default::default(),
    };
    vec![
        (
            "SmolLM2-135M shape",
            cfg(
                Arch::Llama,
                "smollm2-135m",
                30,
                576,
                1536,
                9,
                3,
                64,
                49152,
                1e5,
            ),
        ),
        (
            "Qwen2.5-0.5B shape",
            cfg(
                Arch::Qwen2,
                "qwen2.5-0.5b",
                24,
                896,
                4864,
                14,
                2,
                64,
                151936,
                1e6,
            ),
        ),
        (
            "Qwen2.5-1.5B shape",
            cfg(
                Arch::Qwen2,
                "qwen2.5-1.5b",
                28,
                1536,
                8960,
                12,
                2,
                128,
                151936,
                1e6,
            ),
        ),
    ]
}

fn pseudo_tokens(n: usize, vocab: usize, seed: u64) -> Vec<u32> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % vocab as u64) as u32
        })
        .collect()
}

/// Median seconds of `runs` calls of `f` (each ends synchronised: forward
/// copies its logits to the host).
fn median<F: FnMut() -> Result<()>>(runs: usize, mut f: F) -> Result<f64> {
    let mut t = Vec::with_capacity(runs);
    for _ in 0..runs {
        let s = Instant::now();
        f()?;
        t.push(s.elapsed().as_secs_f64());
    }
    t.sort_by(|a, b| a.total_cmp(b));
    Ok(t[t.len() / 2])
}

fn time_model(label: &str, m: &GpuModel, json: &mut String) -> Result<()> {
    let vocab = m.dims.vocab;
    let mut s = GpuSession::new(m, GpuSessionOptions::default())?;
    let toks = pseudo_tokens(8192, vocab, 11);
    // Warm-up: every chunk size and the decode path once.
    s.forward(&toks[..2048], Logits::Last)?;
    s.forward(&toks[..512], Logits::Last)?;
    s.forward(&toks[..1], Logits::Last)?;
    s.reset();
    println!(
        "== {label}: {:.0} MB of weights, prefill chunk {}",
        m.weight_bytes() as f64 / 1e6,
        s.options().prefill_chunk
    );
    let mut entry = format!(
        "{{\"label\":\"{label}\",\"weight_mb\":{:.1}",
        m.weight_bytes() as f64 / 1e6
    );
    for len in [512usize, 2048, 8192] {
        let secs = median(3, || {
            s.reset();
            s.forward(&toks[..len], Logits::Last).map(|_| ())
        })?;
        println!(
            "prefill {len:>5} tokens: {:>8.2} ms  {:>9.0} tok/s",
            secs * 1e3,
            len as f64 / secs
        );
        let _ = write!(entry, ",\"prefill_{len}_tok_s\":{:.0}", len as f64 / secs);
    }
    for ctx in [512usize, 8192] {
        s.reset();
        s.forward(&toks[..ctx], Logits::Last)?;
        let mut next = 0u32;
        let start = Instant::now();
        for _ in 0..64 {
            let l = s.forward(&[next], Logits::Last)?;
            next = argmax(&l) as u32;
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "decode 64 tokens after {ctx:>5}: {:>8.3} ms/token {:>7.0} tok/s",
            secs * 1e3 / 64.0,
            64.0 / secs
        );
        let _ = write!(entry, ",\"decode_after_{ctx}_tok_s\":{:.0}", 64.0 / secs);
    }
    entry.push('}');
    if !json.is_empty() {
        json.push(',');
    }
    json.push_str(&entry);
    Ok(())
}
