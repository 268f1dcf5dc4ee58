//! GPU check of folio's CUDA kernels (run on a machine with an NVIDIA GPU;
//! `scripts/gpu-check.sh` is what the device run executes).
//!
//! 1. Correctness: every kernel against a simple f64 CPU reference written
//!    here, on fresh random inputs (never zeros; the seed is printed), with the
//!    output poisoned (NaN bits) before each launch. The error is
//!    ||out - ref|| / ||ref|| over the whole output. Thresholds: 1e-2 for
//!    kernels with 16-bit (bf16/f16) inputs or outputs (bf16 keeps 8 bits of
//!    mantissa: rounding the output alone costs about 2e-3), 1e-5 for f32
//!    kernels, exact for embedding, argmax and the top-k selection.
//! 2. Timings with CUDA events after warm-up (median of the timed runs):
//!    flash attention TFLOP/s counting 4 * head_dim FLOPs per causal
//!    (query, head, key) pair (FlashAttention's convention: causal is half of
//!    4 * L^2 * d * heads), sparse vs flash time, RMSNorm and RoPE bandwidth
//!    (bytes read + written once).
//!
//! Results also go to `$OUT/gpu_check.json` (or `./gpu_check.json`).
//! Exit status 1 if any correctness check fails, 2 if the GPU is unusable.

use cudarc::driver::{CudaSlice, CudaStream};
use folio_kernels::attention::AttentionShape;
use folio_kernels::cuda::{launch, CudaRuntime, GpuAttnShape, Half, SparseConfig};
use folio_kernels::reference::{self, rel_err};
use half::{bf16, f16};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::fmt::Write as _;
use std::sync::Arc;

type Res<T> = Result<T, Box<dyn std::error::Error>>;
/// q, k, v and output of one timed attention shape.
type Buffers = (
    CudaSlice<u16>,
    CudaSlice<u16>,
    CudaSlice<u16>,
    CudaSlice<u16>,
);

const TOL_16: f64 = 1e-2;
const TOL_32: f64 = 1e-5;
const POISON: u16 = 0xffff; // a NaN in both bf16 and f16

struct Report {
    rows: Vec<(String, f64, f64, bool)>,
    json: String,
}

impl Report {
    fn check(&mut self, name: &str, err: f64, tol: f64) {
        let ok = err.is_finite() && err <= tol;
        println!(
            "{:<44} rel_err {:>10.3e}  tol {:>7.0e}  {}",
            name,
            err,
            tol,
            if ok { "ok" } else { "FAIL" }
        );
        self.rows.push((name.to_string(), err, tol, ok));
    }
}

fn to_h(dtype: Half, x: f32) -> u16 {
    match dtype {
        Half::Bf16 => bf16::from_f32(x).to_bits(),
        Half::F16 => f16::from_f32(x).to_bits(),
    }
}

fn from_h(dtype: Half, x: u16) -> f64 {
    match dtype {
        Half::Bf16 => bf16::from_bits(x).to_f64(),
        Half::F16 => f16::from_bits(x).to_f64(),
    }
}

fn rand_h(rng: &mut StdRng, dtype: Half, n: usize, amp: f32) -> Vec<u16> {
    (0..n)
        .map(|_| to_h(dtype, rng.random_range(-amp..amp)))
        .collect()
}

/// Fast fill for the large timing buffers (values in about [-1, 1), never all zero).
fn fast_bf16(seed: u64, n: usize) -> Vec<u16> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let x = ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0;
            bf16::from_f32(x).to_bits()
        })
        .collect()
}

/// [`reference::attention`] on a GPU shape.
fn attention_ref(
    s: &GpuAttnShape,
    scale: f64,
    q: &[f64],
    k: &[f64],
    v: &[f64],
    allow: &dyn Fn(usize, usize, usize) -> bool,
) -> Vec<f64> {
    let shape = AttentionShape {
        n_heads: s.n_heads,
        n_kv_heads: s.n_kv_heads,
        head_dim: s.head_dim,
        q_len: s.q_len,
        kv_len: s.kv_len,
        q_start: s.q_start,
    };
    reference::attention(&shape, scale, q, k, v, allow)
}

fn poisoned(stream: &Arc<CudaStream>, n: usize) -> Res<CudaSlice<u16>> {
    Ok(stream.clone_htod(&vec![POISON; n])?)
}

fn check_flash(
    rt: &CudaRuntime,
    rng: &mut StdRng,
    rep: &mut Report,
    dtype: Half,
    s: GpuAttnShape,
) -> Res<()> {
    let st = rt.stream();
    let (q, k, v) = (
        rand_h(rng, dtype, s.q_elems(), 2.0),
        rand_h(rng, dtype, s.kv_elems(), 2.0),
        rand_h(rng, dtype, s.kv_elems(), 1.0),
    );
    let (dq, dk, dv) = (st.clone_htod(&q)?, st.clone_htod(&k)?, st.clone_htod(&v)?);
    let mut dout = poisoned(st, s.q_elems())?;
    let scale = 1.0 / (s.head_dim as f32).sqrt();
    rt.flash_attention(dtype, &s, scale, &dq, &dk, &dv, &mut dout)?;
    let out: Vec<f64> = st
        .clone_dtoh(&dout)?
        .iter()
        .map(|&x| from_h(dtype, x))
        .collect();
    let f = |x: &Vec<u16>| x.iter().map(|&x| from_h(dtype, x)).collect::<Vec<f64>>();
    let reference = attention_ref(&s, scale as f64, &f(&q), &f(&k), &f(&v), &|_, _, _| true);
    let name = format!(
        "flash w{} {} d{} h{}/{} q{}@{} kv{}",
        rt.flash_warps(),
        dtype.tag(),
        s.head_dim,
        s.n_heads,
        s.n_kv_heads,
        s.q_len,
        s.q_start,
        s.kv_len
    );
    rep.check(&name, rel_err(&out, &reference), TOL_16);
    Ok(())
}

fn check_sparse(
    rt: &CudaRuntime,
    rng: &mut StdRng,
    rep: &mut Report,
    s: GpuAttnShape,
    c: SparseConfig,
) -> Res<()> {
    let st = rt.stream();
    let dtype = Half::Bf16;
    let (q, k, v) = (
        rand_h(rng, dtype, s.q_elems(), 2.0),
        rand_h(rng, dtype, s.kv_elems(), 2.0),
        rand_h(rng, dtype, s.kv_elems(), 1.0),
    );
    let (dq, dk, dv) = (st.clone_htod(&q)?, st.clone_htod(&k)?, st.clone_htod(&v)?);
    let mut scratch = rt.sparse_scratch(&s, &c)?;
    st.memcpy_htod(&vec![-7i32; scratch.selected.len()], &mut scratch.selected)?;
    rt.sparse_select(dtype, &s, &c, &dq, &dk, &mut scratch)?;
    let scale = 1.0 / (s.head_dim as f32).sqrt();
    let mut dout = poisoned(st, s.q_elems())?;
    rt.sparse_attention(
        dtype,
        &s,
        &c,
        scale,
        &dq,
        &dk,
        &dv,
        &scratch.selected,
        &mut dout,
    )?;
    let gpu_scores = st.clone_dtoh(&scratch.scores)?;
    let sel = st.clone_dtoh(&scratch.selected)?;
    let out: Vec<f64> = st
        .clone_dtoh(&dout)?
        .iter()
        .map(|&x| from_h(dtype, x))
        .collect();
    let f = |x: &Vec<u16>| x.iter().map(|&x| from_h(dtype, x)).collect::<Vec<f64>>();
    let (qf, kf, vf) = (f(&q), f(&k), f(&v));
    let (d, nb, kb) = (s.head_dim, s.n_blocks(), c.top_k_blocks);

    // Quest scores in f64 over the causal blocks.
    let (mut got, mut want) = (Vec::new(), Vec::new());
    for g in 0..s.n_kv_heads {
        let mut mn = vec![f64::INFINITY; nb * d];
        let mut mx = vec![f64::NEG_INFINITY; nb * d];
        for key in 0..s.kv_len {
            let b = key / launch::SPARSE_BLOCK;
            for ch in 0..d {
                let x = kf[(key * s.n_kv_heads + g) * d + ch];
                mn[b * d + ch] = mn[b * d + ch].min(x);
                mx[b * d + ch] = mx[b * d + ch].max(x);
            }
        }
        for i in 0..s.q_len {
            let pos = s.q_start + i;
            for b in 0..nb {
                let gs = gpu_scores[(g * s.q_len + i) * nb + b] as f64;
                if b * launch::SPARSE_BLOCK > pos {
                    if gs != f64::NEG_INFINITY {
                        got.push(f64::NAN);
                        want.push(0.0);
                    }
                    continue;
                }
                let mut sc = 0f64;
                for hh in 0..s.group() {
                    let h = g * s.group() + hh;
                    for ch in 0..d {
                        let x = qf[(i * s.n_heads + h) * d + ch];
                        sc += (x * mn[b * d + ch]).max(x * mx[b * d + ch]);
                    }
                }
                got.push(gs);
                want.push(sc);
            }
        }
    }
    rep.check(
        "sparse indexer scores (f32 vs f64)",
        rel_err(&got, &want),
        TOL_32 * 10.0,
    );

    // Selection: exactly the rule applied to the GPU's own scores.
    let mut mismatches = 0usize;
    for g in 0..s.n_kv_heads {
        for i in 0..s.q_len {
            let pos = s.q_start + i;
            let nbi = (pos / launch::SPARSE_BLOCK + 1).min(nb);
            let row = &sel[(g * s.q_len + i) * kb..][..kb];
            let mut expect: Vec<i32> = if nbi <= kb {
                (0..nbi as i32).collect()
            } else {
                let mut cand: Vec<(bool, f32, usize)> = (0..nbi)
                    .map(|b| {
                        let forced = b < c.n_sink || b >= nbi - c.n_local;
                        (forced, gpu_scores[(g * s.q_len + i) * nb + b], b)
                    })
                    .collect();
                cand.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.total_cmp(&a.1)).then(a.2.cmp(&b.2)));
                let mut e: Vec<i32> = cand[..kb].iter().map(|x| x.2 as i32).collect();
                e.sort();
                e
            };
            expect.resize(kb, -1);
            if row != expect.as_slice() {
                mismatches += 1;
            }
        }
    }
    rep.check(
        "sparse top-k selection (mismatched rows)",
        mismatches as f64,
        0.0,
    );

    let allow = |i: usize, g: usize, key: usize| {
        let b = (key / launch::SPARSE_BLOCK) as i32;
        sel[(g * s.q_len + i) * kb..][..kb].contains(&b)
    };
    let reference = attention_ref(&s, scale as f64, &qf, &kf, &vf, &allow);
    let name = format!(
        "sparse attn bf16 d{} q{}@{} top{}",
        d,
        s.q_len,
        s.q_start,
        kb * launch::SPARSE_BLOCK
    );
    rep.check(&name, rel_err(&out, &reference), TOL_16);
    Ok(())
}

fn check_elementwise(rt: &CudaRuntime, rng: &mut StdRng, rep: &mut Report) -> Res<()> {
    let st = rt.stream();
    // RoPE: partial rotary (48 of 64 pairs), positions near 1e5, a YaRN-like
    // table of inverse frequencies.
    let (rows, heads, d, pairs, first) = (37usize, 4usize, 128usize, 48usize, 100_000usize);
    let inv: Vec<f32> = (0..pairs)
        .map(|i| 10000f32.powf(-(2.0 * i as f32) / 96.0) * rng.random_range(0.25..1.0))
        .collect();
    let dinv = st.clone_htod(&inv)?;
    for halves in [false, true] {
        let x: Vec<f32> = (0..rows * heads * d)
            .map(|_| rng.random_range(-2.0..2.0))
            .collect();
        let mut reference: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        for r in 0..rows {
            for h in 0..heads {
                let base = (r * heads + h) * d;
                for (i, f) in inv.iter().enumerate() {
                    let (a, b) = if halves {
                        (i, i + pairs)
                    } else {
                        (2 * i, 2 * i + 1)
                    };
                    let (sn, cs) = (((first + r) as f64) * *f as f64).sin_cos();
                    let (x0, x1) = (x[base + a] as f64, x[base + b] as f64);
                    reference[base + a] = x0 * cs - x1 * sn;
                    reference[base + b] = x0 * sn + x1 * cs;
                }
            }
        }
        let mut dx = st.clone_htod(&x)?;
        rt.rope_f32(&mut dx, &dinv, rows, heads, d, first, halves)?;
        let out: Vec<f64> = st.clone_dtoh(&dx)?.iter().map(|&v| v as f64).collect();
        let tag = if halves { "halves" } else { "interleaved" };
        rep.check(
            &format!("rope f32 {tag} pos 1e5"),
            rel_err(&out, &reference),
            TOL_32,
        );
        let xb: Vec<u16> = x.iter().map(|&v| to_h(Half::Bf16, v)).collect();
        let mut dxb = st.clone_htod(&xb)?;
        rt.rope_bf16(&mut dxb, &dinv, rows, heads, d, first, halves)?;
        let out: Vec<f64> = st
            .clone_dtoh(&dxb)?
            .iter()
            .map(|&v| from_h(Half::Bf16, v))
            .collect();
        rep.check(
            &format!("rope bf16 {tag} pos 1e5"),
            rel_err(&out, &reference),
            TOL_16,
        );
    }

    // RMSNorm.
    let (rows, h, eps) = (64usize, 4096usize, 1e-6f32);
    let x: Vec<f32> = (0..rows * h).map(|_| rng.random_range(-3.0..3.0)).collect();
    let w: Vec<f32> = (0..h).map(|_| rng.random_range(0.5..1.5)).collect();
    let mut reference = vec![0f64; rows * h];
    for r in 0..rows {
        let row = &x[r * h..][..h];
        let ms = row.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>() / h as f64;
        let inv = 1.0 / (ms + eps as f64).sqrt();
        for c in 0..h {
            reference[r * h + c] = row[c] as f64 * inv * w[c] as f64;
        }
    }
    let (dx, dw) = (st.clone_htod(&x)?, st.clone_htod(&w)?);
    let mut o32 = st.clone_htod(&vec![f32::NAN; rows * h])?;
    rt.rms_norm_f32(&dx, &dw, eps, &mut o32)?;
    let out: Vec<f64> = st.clone_dtoh(&o32)?.iter().map(|&v| v as f64).collect();
    rep.check("rms_norm f32", rel_err(&out, &reference), TOL_32);
    let mut o16 = poisoned(st, rows * h)?;
    rt.rms_norm_bf16_out(&dx, &dw, eps, &mut o16)?;
    let out: Vec<f64> = st
        .clone_dtoh(&o16)?
        .iter()
        .map(|&v| from_h(Half::Bf16, v))
        .collect();
    rep.check("rms_norm f32 -> bf16", rel_err(&out, &reference), TOL_16);

    // SwiGLU.
    let (rows, ffn) = (33usize, 3000usize);
    let gu: Vec<f32> = (0..rows * 2 * ffn)
        .map(|_| rng.random_range(-6.0..6.0))
        .collect();
    let silu = |g: f64| g / (1.0 + (-g).exp());
    let reference: Vec<f64> = (0..rows * ffn)
        .map(|idx| {
            let (r, j) = (idx / ffn, idx % ffn);
            silu(gu[r * 2 * ffn + j] as f64) * gu[r * 2 * ffn + ffn + j] as f64
        })
        .collect();
    let dgu = st.clone_htod(&gu)?;
    let mut o32 = st.clone_htod(&vec![f32::NAN; rows * ffn])?;
    rt.swiglu_f32(&dgu, ffn, &mut o32)?;
    let out: Vec<f64> = st.clone_dtoh(&o32)?.iter().map(|&v| v as f64).collect();
    rep.check("swiglu f32", rel_err(&out, &reference), TOL_32);
    let gub: Vec<u16> = gu.iter().map(|&v| to_h(Half::Bf16, v)).collect();
    let reference: Vec<f64> = (0..rows * ffn)
        .map(|idx| {
            let (r, j) = (idx / ffn, idx % ffn);
            silu(from_h(Half::Bf16, gub[r * 2 * ffn + j]))
                * from_h(Half::Bf16, gub[r * 2 * ffn + ffn + j])
        })
        .collect();
    let dgub = st.clone_htod(&gub)?;
    let mut o16 = poisoned(st, rows * ffn)?;
    rt.swiglu_bf16(&dgub, ffn, &mut o16)?;
    let out: Vec<f64> = st
        .clone_dtoh(&o16)?
        .iter()
        .map(|&v| from_h(Half::Bf16, v))
        .collect();
    rep.check("swiglu bf16", rel_err(&out, &reference), TOL_16);

    // Embedding lookup (exact).
    let (vocab, h, n) = (5000usize, 512usize, 77usize);
    let table: Vec<f32> = (0..vocab * h)
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();
    let toks: Vec<u32> = (0..n).map(|_| rng.random_range(0..vocab as u32)).collect();
    let dt = st.clone_htod(&toks)?;
    let mut o = st.clone_htod(&vec![f32::NAN; n * h])?;
    rt.embed_f32(&dt, &toks, &st.clone_htod(&table)?, h, &mut o)?;
    let out = st.clone_dtoh(&o)?;
    let bad = (0..n * h)
        .filter(|&idx| out[idx] != table[toks[idx / h] as usize * h + idx % h])
        .count();
    rep.check("embed f32 (wrong elements)", bad as f64, 0.0);
    let tb: Vec<u16> = table.iter().map(|&v| to_h(Half::Bf16, v)).collect();
    let mut o = st.clone_htod(&vec![f32::NAN; n * h])?;
    rt.embed_bf16(&dt, &toks, &st.clone_htod(&tb)?, h, &mut o)?;
    let out = st.clone_dtoh(&o)?;
    let bad = (0..n * h)
        .filter(|&idx| {
            out[idx] as f64 != from_h(Half::Bf16, tb[toks[idx / h] as usize * h + idx % h])
        })
        .count();
    rep.check("embed bf16 table (wrong elements)", bad as f64, 0.0);
    let too_big = [vocab as u32];
    let rejected = rt.embed_f32(
        &st.clone_htod(&too_big)?,
        &too_big,
        &st.clone_htod(&table)?,
        h,
        &mut o,
    );
    rep.check(
        "embed rejects out-of-vocab id",
        rejected.is_ok() as u8 as f64,
        0.0,
    );

    // Argmax (exact), with a planted tie resolved to the lower index.
    let (rows, vocab) = (16usize, 151_936usize);
    let mut logits: Vec<f32> = (0..rows * vocab)
        .map(|_| rng.random_range(-30.0..30.0))
        .collect();
    logits[5 * vocab + 100] = 99.0;
    logits[5 * vocab + 90_000] = 99.0;
    let want: Vec<u32> = (0..rows)
        .map(|r| {
            let row = &logits[r * vocab..][..vocab];
            let mut best = 0;
            for (j, &x) in row.iter().enumerate() {
                if x > row[best] {
                    best = j;
                }
            }
            best as u32
        })
        .collect();
    let mut o = st.clone_htod(&vec![u32::MAX; rows])?;
    rt.argmax_f32(&st.clone_htod(&logits)?, vocab, &mut o)?;
    let got = st.clone_dtoh(&o)?;
    let bad = got.iter().zip(&want).filter(|(a, b)| a != b).count();
    rep.check("argmax f32 (wrong rows)", bad as f64, 0.0);
    Ok(())
}

/// Median milliseconds of `reps` timed runs of `f` after `warm` untimed ones.
fn time_ms(rt: &CudaRuntime, warm: usize, reps: usize, mut f: impl FnMut() -> Res<()>) -> Res<f64> {
    for _ in 0..warm {
        f()?;
    }
    rt.stream().synchronize()?;
    let ctx = rt.context();
    let mut times = Vec::new();
    for _ in 0..reps {
        let a = ctx.new_event(Some(cudarc::driver::sys::CUevent_flags::CU_EVENT_DEFAULT))?;
        let b = ctx.new_event(Some(cudarc::driver::sys::CUevent_flags::CU_EVENT_DEFAULT))?;
        a.record(rt.stream())?;
        f()?;
        b.record(rt.stream())?;
        times.push(a.elapsed_ms(&b)? as f64);
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

fn main() {
    match run() {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("gpu_check: {e}");
            std::process::exit(2);
        }
    }
}

fn run() -> Res<bool> {
    let seed: u64 = std::env::var("GPU_CHECK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    let t0 = std::time::Instant::now();
    let mut rt = CudaRuntime::new(0)?;
    println!(
        "device: {}  (kernels compiled + loaded in {:.2}s, seed {seed})",
        rt.device_name()?,
        t0.elapsed().as_secs_f64()
    );
    let mut rng = StdRng::seed_from_u64(seed);
    let mut rep = Report {
        rows: Vec::new(),
        json: String::new(),
    };

    println!("\n== correctness (rel err = ||gpu - ref|| / ||ref||, ref in f64 on the CPU)");
    let sh = |nh, nk, d, q_len, kv_len| GpuAttnShape {
        n_heads: nh,
        n_kv_heads: nk,
        head_dim: d,
        q_len,
        kv_len,
        q_start: kv_len - q_len,
    };
    check_flash(
        &rt,
        &mut rng,
        &mut rep,
        Half::Bf16,
        sh(8, 2, 128, 300, 1000),
    )?;
    check_flash(&rt, &mut rng, &mut rep, Half::Bf16, sh(4, 4, 64, 257, 257))?;
    check_flash(&rt, &mut rng, &mut rep, Half::F16, sh(8, 1, 128, 130, 130))?;
    check_flash(&rt, &mut rng, &mut rep, Half::F16, sh(6, 2, 64, 1, 777))?;
    check_flash(&rt, &mut rng, &mut rep, Half::Bf16, sh(8, 2, 128, 1, 5000))?;
    // The 8-warp (128-row) kernels.
    rt.set_flash_warps(8)?;
    check_flash(
        &rt,
        &mut rng,
        &mut rep,
        Half::Bf16,
        sh(8, 2, 128, 300, 1000),
    )?;
    check_flash(&rt, &mut rng, &mut rep, Half::Bf16, sh(4, 4, 64, 257, 257))?;
    check_flash(&rt, &mut rng, &mut rep, Half::F16, sh(6, 2, 128, 129, 700))?;
    rt.set_flash_warps(folio_kernels::cuda::DEFAULT_FLASH_WARPS)?;
    let c = SparseConfig {
        top_k_blocks: 8,
        n_sink: 1,
        n_local: 2,
    };
    check_sparse(&rt, &mut rng, &mut rep, sh(8, 2, 128, 1024, 1024), c)?;
    check_sparse(&rt, &mut rng, &mut rep, sh(8, 2, 128, 100, 3000), c)?;
    check_sparse(
        &rt,
        &mut rng,
        &mut rep,
        sh(16, 2, 64, 77, 2000),
        SparseConfig {
            top_k_blocks: 5,
            n_sink: 2,
            n_local: 1,
        },
    )?;
    check_elementwise(&rt, &mut rng, &mut rep)?;
    let all_ok = rep.rows.iter().all(|r| r.3);
    println!(
        "correctness: {}",
        if all_ok { "all passed" } else { "FAILURES" }
    );

    println!("\n== timings (CUDA events, median after warm-up; FLOPs = 4*d per causal (query, head, key) pair)");
    let st = rt.stream().clone();
    // SAFETY: everything runs on the one stream, so cudarc's cross-stream events are not needed.
    unsafe { rt.context().disable_event_tracking() };
    let (nh, nk, d) = (32usize, 8usize, 128usize);
    let max_len = 131_072usize;
    let t_fill = std::time::Instant::now();
    let hq = fast_bf16(seed ^ 1, max_len * nh * d);
    let hk = fast_bf16(seed ^ 2, max_len * nk * d);
    let hv = fast_bf16(seed ^ 3, max_len * nk * d);
    println!(
        "(filled {:.1} GB of random bf16 in {:.1}s)",
        (max_len * (nh + 2 * nk) * d * 2) as f64 / 1e9,
        t_fill.elapsed().as_secs_f64()
    );
    let upload = |s: &GpuAttnShape| -> Res<Buffers> {
        Ok((
            st.clone_htod(&hq[..s.q_elems()])?,
            st.clone_htod(&hk[..s.kv_elems()])?,
            st.clone_htod(&hv[..s.kv_elems()])?,
            st.alloc_zeros::<u16>(s.q_elems())?,
        ))
    };
    let scale = 1.0 / (d as f32).sqrt();
    let mut json_flash = Vec::new();
    let mut flash_ms = std::collections::HashMap::new();
    println!(
        "{:<34} {:>10} {:>10} {:>10} {:>10}",
        "flash bf16 d128 h32/8 causal", "4w ms", "4w TFLOP/s", "8w ms", "8w TFLOP/s"
    );
    for (len, reps) in [
        (4096usize, 20usize),
        (16384, 10),
        (32768, 5),
        (65536, 3),
        (131072, 2),
    ] {
        let s = sh(nh, nk, d, len, len);
        let (qs, ks, vs, mut os) = upload(&s)?;
        let mut row = Vec::new();
        for warps in [4, 8] {
            rt.set_flash_warps(warps)?;
            let ms = time_ms(&rt, 1, reps, || {
                Ok(rt.flash_attention(Half::Bf16, &s, scale, &qs, &ks, &vs, &mut os)?)
            })?;
            row.push((ms, s.causal_flops() / (ms * 1e-3) / 1e12));
        }
        println!(
            "{:<34} {:>10.3} {:>10.1} {:>10.3} {:>10.1}",
            format!("seq {len}"),
            row[0].0,
            row[0].1,
            row[1].0,
            row[1].1
        );
        json_flash.push(format!(
            "{{\"seq\":{len},\"ms_w4\":{:.4},\"tflops_w4\":{:.2},\"ms_w8\":{:.4},\"tflops_w8\":{:.2}}}",
            row[0].0, row[0].1, row[1].0, row[1].1
        ));
        flash_ms.insert(len, row[0].0.min(row[1].0));
    }
    rt.set_flash_warps(folio_kernels::cuda::DEFAULT_FLASH_WARPS)?;

    let mut json_sparse = Vec::new();
    println!(
        "\n{:<34} {:>10} {:>10} {:>10} {:>9}",
        "sparse bf16 d128 top 2048 keys", "select ms", "attn ms", "total ms", "vs flash*"
    );
    for len in [32768usize, 131072] {
        let s = sh(nh, nk, d, len, len);
        let c = SparseConfig::for_keys(2048);
        let (qs, ks, vs, mut os) = upload(&s)?;
        let mut scratch = rt.sparse_scratch(&s, &c)?;
        let sel_ms = time_ms(&rt, 1, 3, || {
            Ok(rt.sparse_select(Half::Bf16, &s, &c, &qs, &ks, &mut scratch)?)
        })?;
        let attn_ms = time_ms(&rt, 1, 3, || {
            Ok(rt.sparse_attention(
                Half::Bf16,
                &s,
                &c,
                scale,
                &qs,
                &ks,
                &vs,
                &scratch.selected,
                &mut os,
            )?)
        })?;
        let total = sel_ms + attn_ms;
        let speedup = flash_ms[&len] / total;
        println!(
            "{:<34} {:>10.3} {:>10.3} {:>10.3} {:>8.2}x",
            format!("seq {len}"),
            sel_ms,
            attn_ms,
            total,
            speedup
        );
        json_sparse.push(format!(
            "{{\"seq\":{len},\"select_ms\":{sel_ms:.4},\"attn_ms\":{attn_ms:.4},\"total_ms\":{total:.4},\"flash_ms\":{:.4},\"speedup\":{speedup:.3}}}",
            flash_ms[&len]
        ));
    }
    println!("(* against the faster flash kernel family at that length)");
    drop((hq, hk, hv));

    println!(
        "\n{:<34} {:>10} {:>10}",
        "bandwidth (bytes read + written)", "ms", "GB/s"
    );
    let (rows, h) = (16384usize, 4096usize);
    let x = st.clone_htod(&vec![0.5f32; rows * h])?;
    let x = {
        let mut xs = st.clone_dtoh(&x)?;
        for (j, v) in xs.iter_mut().enumerate() {
            *v = ((j % 97) as f32 - 48.0) / 17.0;
        }
        st.clone_htod(&xs)?
    };
    let w = st.clone_htod(&vec![1.25f32; h])?;
    let mut o = st.alloc_zeros::<f32>(rows * h)?;
    let ms = time_ms(&rt, 2, 20, || Ok(rt.rms_norm_f32(&x, &w, 1e-6, &mut o)?))?;
    let rms_gbs = (2 * rows * h * 4) as f64 / (ms * 1e-3) / 1e9;
    println!(
        "{:<34} {:>10.3} {:>10.0}",
        format!("rms_norm f32 {rows}x{h}"),
        ms,
        rms_gbs
    );
    let (rrows, rh, rd) = (16384usize, 32usize, 128usize);
    let mut xr = st.clone_htod(&fast_bf16(seed ^ 5, rrows * rh * rd))?;
    let inv: Vec<f32> = (0..rd / 2)
        .map(|i| 500000f32.powf(-(2.0 * i as f32) / rd as f32))
        .collect();
    let dinv = st.clone_htod(&inv)?;
    let ms_r = time_ms(&rt, 2, 20, || {
        Ok(rt.rope_bf16(&mut xr, &dinv, rrows, rh, rd, 1000, true)?)
    })?;
    let rope_gbs = (2 * rrows * rh * rd * 2) as f64 / (ms_r * 1e-3) / 1e9;
    println!(
        "{:<34} {:>10.3} {:>10.0}",
        format!("rope bf16 {rrows}x{rh}x{rd}"),
        ms_r,
        rope_gbs
    );

    let mut j = String::new();
    let _ = write!(
        j,
        "{{\"device\":\"{}\",\"seed\":{seed},\"correct\":{all_ok},\"checks\":[",
        rt.device_name()?
    );
    for (n, (name, err, tol, ok)) in rep.rows.iter().enumerate() {
        let _ = write!(
            j,
            "{}{{\"name\":\"{name}\",\"rel_err\":{},\"tol\":{tol},\"ok\":{ok}}}",
            if n > 0 { "," } else { "" },
            if err.is_finite() {
                format!("{err:e}")
            } else {
                "null".into()
            }
        );
    }
    let _ = write!(
        j,
        "],\"flop_convention\":\"4*head_dim per causal (query, head, key) pair\",\"flash_bf16_d128_h32_kv8\":[{}],\"sparse_top2048\":[{}],\"rms_norm_gbs\":{rms_gbs:.1},\"rope_bf16_gbs\":{rope_gbs:.1}}}",
        json_flash.join(","),
        json_sparse.join(",")
    );
    rep.json = j;
    let path = std::env::var("OUT")
        .map(|o| format!("{o}/gpu_check.json"))
        .unwrap_or_else(|_| "gpu_check.json".into());
    std::fs::write(&path, &rep.json)?;
    println!(
        "\nwrote {path}; correctness {}",
        if all_ok { "PASSED" } else { "FAILED" }
    );
    Ok(all_ok)
}
