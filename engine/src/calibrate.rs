//! `folio calibrate`: measure this machine's throughputs once, so the
//! router can predict a plan's cost from a model's shape alone.
//!
//! Every measurement runs the kernels the forward pass runs, on random
//! inputs sized like Qwen2.5-0.5B's layers (14 query
//! heads, 2 KV heads, head dim 64, hidden 896, FFN 4864): candle's f32
//! matrix product for prefill projections (and, where the CPU has the fast
//! kernel, folio's int8 K-quant product at the 1.5B's shapes), folio's Q8_0 matrix-vector
//! kernel over more weights than fit in cache for decoding, and the flash
//! and sparse attention kernels in 512-token prefill chunks.

use std::path::PathBuf;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use folio_kernels::attention::{flash, sparse, AttentionShape, KeySummaries, SparseConfig};
use folio_kernels::quant::{self, BlockMatrix};
use rand::{Rng, SeedableRng};

use crate::router::{DeviceProfile, PROFILE_VERSION};

/// Where the profile is cached: `profile-release.json` (or `-debug`) in
/// folio's home. Debug builds run some kernels an order of magnitude slower,
/// so each build kind predicts from its own measurements.
pub fn profile_path() -> PathBuf {
    let build = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    folio_corpora::fetch::folio_home().join(format!("profile-{build}.json"))
}

/// The cached profile, if one was measured with this layout and thread count.
pub fn cached_profile() -> Result<Option<DeviceProfile>> {
    let path = profile_path();
    let Ok(bytes) = std::fs::read(&path) else {
        return Ok(None);
    };
    let profile: DeviceProfile = match serde_json::from_slice(&bytes) {
        Ok(p) => p,
        // An old or damaged profile is measured again, not trusted.
        Err(_) => return Ok(None),
    };
    let threads = crate::threads::init(None);
    Ok((profile.version == PROFILE_VERSION && profile.threads == threads).then_some(profile))
}

/// The cached profile, or a fresh one measured (embedding rate included)
/// and saved when there is none for this build and thread count; `log`
/// hears what is measured, a line per step.
pub fn ensure_profile(log: &mut dyn FnMut(&str)) -> Result<DeviceProfile> {
    match cached_profile()? {
        Some(p) => Ok(p),
        None => Ok(calibrate(true, false, log)?.0),
    }
}

/// Measures the profile, the embedding rate too when `embed` (`progress`:
/// the embedding model's download bar on first use), and saves it; returns
/// it with where it was saved. `log` hears a line per step.
pub fn calibrate(
    embed: bool,
    progress: bool,
    log: &mut dyn FnMut(&str),
) -> Result<(DeviceProfile, PathBuf)> {
    let embed_rate = if embed {
        log("embedding rate (MiniLM, 64 chunks)");
        Some(embed_rate(progress)?)
    } else {
        None
    };
    let profile = measure(embed_rate, log)?;
    let path = save(&profile)?;
    Ok((profile, path))
}

/// Chunks per second the embedding model encodes (ingest's bottleneck).
pub fn embed_rate(progress: bool) -> Result<f64> {
    let embedder = folio_retrieval::embed::Embedder::load(None, progress)?;
    let chunk = "The quick brown fox jumps over the lazy dog near the river bank. ".repeat(12);
    let texts = vec![chunk; 64];
    embedder.embed(&texts[..8])?;
    let t = Instant::now();
    embedder.embed(&texts)?;
    Ok(texts.len() as f64 / t.elapsed().as_secs_f64())
}

/// Measures the profile (see the module docs) around a given embedding
/// rate (`None`: not measured). `log` receives a line per step.
pub fn measure(
    embed_chunks_per_s: Option<f64>,
    log: &mut dyn FnMut(&str),
) -> Result<DeviceProfile> {
    let threads = crate::threads::init(None);
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    log("f32 matrix products (prefill projections)");
    let matmul_gflops = crate::threads::install(|| matmul_gflops(&mut rng))?;
    let int8_matmul_gflops = if quant::fast_int8_matmul(quant::BlockFormat::Q4_K) {
        log("int8 K-quant matrix products (prefill projections)");
        crate::threads::install(int8_matmul_gflops)?
    } else {
        matmul_gflops
    };
    log("quantized matrix-vector products (decoding)");
    let decode_gbps = crate::threads::install(|| decode_gbps(&mut rng))?;
    log("flash attention, 4096-token prefill");
    let (flash_gflops, decode_attention_gflops) =
        crate::threads::install(|| flash_gflops(&mut rng));
    log("sparse attention, 8192-token prefill");
    let sparse_gflops = crate::threads::install(|| sparse_gflops(&mut rng));
    let (memory_total_bytes, memory_available_bytes) = memory()?;
    Ok(DeviceProfile {
        version: PROFILE_VERSION,
        measured_at: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        cpu: cpu_name(),
        threads,
        matmul_gflops,
        int8_matmul_gflops,
        decode_gbps,
        flash_gflops,
        sparse_gflops,
        decode_attention_gflops,
        embed_chunks_per_s,
        memory_total_bytes,
        memory_available_bytes,
    })
}

/// Writes the profile where [`cached_profile`] finds it.
pub fn save(profile: &DeviceProfile) -> Result<PathBuf> {
    let path = profile_path();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(profile)?)?;
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Bytes of memory in total and available now (Linux `/proc/meminfo`).
pub fn memory() -> Result<(u64, u64)> {
    let info = std::fs::read_to_string("/proc/meminfo").context("reading /proc/meminfo")?;
    let field = |name: &str| {
        info.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    Ok((field("MemTotal:"), field("MemAvailable:")))
}

fn cpu_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

fn random(rng: &mut impl Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

/// Best of a few runs: the machine's capability, not its noise.
fn best_seconds(reps: usize, mut run: impl FnMut()) -> f64 {
    run();
    (0..reps)
        .map(|_| {
            let t = Instant::now();
            run();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn matmul_gflops(rng: &mut impl Rng) -> Result<f64> {
    let (rows, hidden, ffn) = (512, 896, 4864);
    let x = Tensor::from_vec(random(rng, rows * hidden), (rows, hidden), &Device::Cpu)?;
    let up = Tensor::from_vec(
        random(rng, 2 * ffn * hidden),
        (2 * ffn, hidden),
        &Device::Cpu,
    )?;
    let down = Tensor::from_vec(random(rng, hidden * ffn), (hidden, ffn), &Device::Cpu)?;
    let act = Tensor::from_vec(random(rng, rows * ffn), (rows, ffn), &Device::Cpu)?;
    let mut failed = None;
    let seconds = best_seconds(3, || {
        let a = x
            .matmul(&up.t().unwrap())
            .and_then(|y| y.flatten_all()?.to_vec1::<f32>());
        let b = act
            .matmul(&down.t().unwrap())
            .and_then(|y| y.flatten_all()?.to_vec1::<f32>());
        if let Err(e) = a.and(b) {
            failed = Some(e);
        }
    });
    if let Some(e) = failed {
        return Err(e.into());
    }
    let flops = 2.0 * rows as f64 * (2 * ffn * hidden + hidden * ffn) as f64;
    Ok(flops / seconds / 1e9)
}

/// Q4_K products with 8-bit activations on Qwen2.5-1.5B's gate and up
/// projections (hidden 1536, FFN 8960: K-quant rows need a multiple of
/// 256 columns, which the 0.5B's 896 is not), 512 prompt rows.
fn int8_matmul_gflops() -> Result<f64> {
    let (rows, hidden, ffn) = (512, 1536, 8960);
    let format = quant::BlockFormat::Q4_K;
    let bytes = 2 * ffn * format.row_bytes(hidden).expect("whole super-blocks");
    // Arbitrary non-zero blocks; 0x3b keeps the f16 scales small and finite.
    let data: Vec<u8> = (0..bytes).map(|i| (i * 7919 % 251) as u8 & 0x3b).collect();
    let up = BlockMatrix::new(format, 2 * ffn, hidden, data).map_err(anyhow::Error::msg)?;
    let x: Vec<f32> = (0..rows * hidden)
        .map(|i| (i as f32 * 0.37).sin())
        .collect();
    let mut y = vec![0f32; rows * 2 * ffn];
    let seconds = best_seconds(2, || {
        quant::matmul(
            &up,
            &quant::Activations::new(&x, rows, hidden),
            &mut y,
            2 * ffn,
            0,
        )
    });
    Ok(2.0 * (rows * 2 * ffn * hidden) as f64 / seconds / 1e9)
}

fn decode_gbps(rng: &mut impl Rng) -> Result<f64> {
    // 4 × 64 M weights in Q8_0 (~285 MB): more than any cache holds.
    let (rows, cols) = (8192, 8192);
    let mut mats = Vec::new();
    for _ in 0..4 {
        mats.push(
            BlockMatrix::quantize_q8_0(rows, cols, &random(rng, rows * cols))
                .map_err(anyhow::Error::msg)?,
        );
    }
    let x = random(rng, cols);
    let mut y = vec![0f32; rows];
    let seconds = best_seconds(5, || {
        for m in &mats {
            quant::matvec(m, &x, 1, &mut y);
        }
    });
    let bytes: usize = mats.iter().map(|m| m.data().len()).sum();
    Ok(bytes as f64 / seconds / 1e9)
}

const HEADS: usize = 14;
const KV_HEADS: usize = 2;
const HEAD_DIM: usize = 64;
const CHUNK: usize = 512;

/// Flash prefill GFLOP/s at 4096 tokens and one decode step's at 16K keys.
fn flash_gflops(rng: &mut impl Rng) -> (f64, f64) {
    let len = 4096;
    let (q, k, v) = qkv(rng, len);
    let mut out = vec![0f32; CHUNK * HEADS * HEAD_DIM];
    let scale = 1.0 / (HEAD_DIM as f32).sqrt();
    let mut pairs = 0u64;
    let prefill = best_seconds(2, || {
        pairs = 0;
        for start in (0..len).step_by(CHUNK) {
            let shape = shape(CHUNK, start);
            let qs = &q[start * HEADS * HEAD_DIM..(start + CHUNK) * HEADS * HEAD_DIM];
            let kv_end = (start + CHUNK) * KV_HEADS * HEAD_DIM;
            pairs += flash(qs, &k[..kv_end], &v[..kv_end], &mut out, shape, scale).causal_pairs;
        }
    });
    let prefill_gflops = pairs as f64 * 4.0 * HEAD_DIM as f64 / prefill / 1e9;
    let long = 16384;
    let (q1, k1, v1) = qkv(rng, long);
    let mut out1 = vec![0f32; HEADS * HEAD_DIM];
    let steps = 16;
    let decode = best_seconds(2, || {
        for _ in 0..steps {
            flash(
                &q1[..HEADS * HEAD_DIM],
                &k1,
                &v1,
                &mut out1,
                shape(1, long - 1),
                scale,
            );
        }
    });
    let decode_flops = (steps * HEADS * long * 4 * HEAD_DIM) as f64;
    (prefill_gflops, decode_flops / decode / 1e9)
}

/// Sparse prefill GFLOP/s over attended pairs at 8192 tokens, indexer included.
fn sparse_gflops(rng: &mut impl Rng) -> f64 {
    let len = 8192;
    let (q, k, v) = qkv(rng, len);
    let cfg = SparseConfig::default();
    let mut out = vec![0f32; CHUNK * HEADS * HEAD_DIM];
    let scale = 1.0 / (HEAD_DIM as f32).sqrt();
    let mut attended = 0u64;
    let seconds = best_seconds(1, || {
        attended = 0;
        let mut summaries = KeySummaries::new(cfg.block, KV_HEADS, HEAD_DIM);
        for start in (0..len).step_by(CHUNK) {
            let kv_end = (start + CHUNK) * KV_HEADS * HEAD_DIM;
            summaries.update(&k[..kv_end], start + CHUNK);
            let qs = &q[start * HEADS * HEAD_DIM..(start + CHUNK) * HEADS * HEAD_DIM];
            let stats = sparse(
                qs,
                &k[..kv_end],
                &v[..kv_end],
                &mut out,
                shape(CHUNK, start),
                scale,
                &cfg,
                &summaries,
            );
            attended += stats.attended_pairs;
        }
    });
    attended as f64 * 4.0 * HEAD_DIM as f64 / seconds / 1e9
}

fn qkv(rng: &mut impl Rng, len: usize) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    (
        random(rng, len * HEADS * HEAD_DIM),
        random(rng, len * KV_HEADS * HEAD_DIM),
        random(rng, len * KV_HEADS * HEAD_DIM),
    )
}

fn shape(q_len: usize, q_start: usize) -> AttentionShape {
    AttentionShape {
        n_heads: HEADS,
        n_kv_heads: KV_HEADS,
        head_dim: HEAD_DIM,
        q_len,
        kv_len: q_start + q_len,
        q_start,
    }
}
