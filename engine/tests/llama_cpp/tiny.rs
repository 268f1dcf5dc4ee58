//! Small GGUF decoders of each architecture folio runs, written here with
//! candle's GGUF writer: two layers, hidden 256, 4 query and 2 KV heads of
//! 64, F32 tensors (so folio and llama.cpp both compute in f32 and differ by
//! rounding only; block types are compared on the pinned models and against
//! f64 references in `folio-kernels`), weights from a seeded generator,
//! scaled so the next-token distribution is peaked (logits with a spread of
//! a few nats), and a byte-level vocabulary llama.cpp loads.

use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};

pub const HIDDEN: usize = 256;
const FFN: usize = 512;
const HEADS: usize = 4;
const KV_HEADS: usize = 2;
const HEAD_DIM: usize = 64;
const LAYERS: usize = 2;
/// 128 ASCII byte tokens, 128 words, one merge (`ab`), then `<|endoftext|>`,
/// `<|im_start|>`, `<|im_end|>`.
pub const VOCAB: usize = 260;

/// What varies between the test models.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// Llama 3.1-style: per-pair `rope_freqs`, an untied output.
    Llama31,
    /// Qwen2: q/k/v biases, tied output.
    Qwen2,
    /// Qwen3: per-head q/k RMS norms.
    Qwen3,
    /// Phi-3 with LongRoPE factors; `long` makes the original context
    /// shorter than the prompt, so the long factors apply.
    Phi3 { long: bool },
    /// Gemma 2 with caps and a window small enough to bind in a short
    /// prompt.
    Gemma2,
}

/// A seeded generator of values in `[-1, 1)` (xorshift).
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }

    /// `rows × cols` values uniform in `±amp·√3` (standard deviation `amp`).
    fn tensor(&mut self, rows: usize, cols: usize, amp: f32, dtype: GgmlDType) -> QTensor {
        let data: Vec<f32> = (0..rows * cols)
            .map(|_| self.next() * amp * 1.732)
            .collect();
        let shape: Vec<usize> = if rows == 1 {
            vec![cols]
        } else {
            vec![rows, cols]
        };
        let t = Tensor::from_vec(data, shape, &Device::Cpu).unwrap();
        QTensor::quantize(&t, dtype).unwrap()
    }

    /// A norm's weights, around 1.
    fn norm(&mut self, len: usize) -> QTensor {
        let data: Vec<f32> = (0..len).map(|_| 1.0 + 0.3 * self.next()).collect();
        QTensor::quantize(
            &Tensor::from_vec(data, len, &Device::Cpu).unwrap(),
            GgmlDType::F32,
        )
        .unwrap()
    }

    /// RoPE factors, one per rotary pair, between 1 and `max`.
    fn factors(&mut self, max: f32) -> QTensor {
        let pairs = HEAD_DIM / 2;
        let data: Vec<f32> = (0..pairs)
            .map(|i| 1.0 + (max - 1.0) * i as f32 / (pairs - 1) as f32)
            .collect();
        QTensor::quantize(
            &Tensor::from_vec(data, pairs, &Device::Cpu).unwrap(),
            GgmlDType::F32,
        )
        .unwrap()
    }
}

/// GPT-2's byte-level alphabet: the printable bytes stand for themselves,
/// the others for code points from 256 up, in byte order.
fn byte_token(b: u8) -> String {
    let printable = |b: u8| matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
    if printable(b) {
        return char::from(b).to_string();
    }
    let rank = (0..b).filter(|x| !printable(*x)).count() as u32;
    char::from_u32(256 + rank).unwrap().to_string()
}

/// Writes the model of `kind` into `dir` and returns its path.
pub fn write(dir: &Path, kind: Kind) -> PathBuf {
    write_with_template(dir, kind, None)
}

/// [`write`], with `tokenizer.chat_template` set to `template`.
pub fn write_with_template(dir: &Path, kind: Kind, template: Option<&str>) -> PathBuf {
    let arch = match kind {
        Kind::Llama31 => "llama",
        Kind::Qwen2 => "qwen2",
        Kind::Qwen3 => "qwen3",
        Kind::Phi3 { .. } => "phi3",
        Kind::Gemma2 => "gemma2",
    };
    // ASCII bytes as GPT-2 spells them ('\n' must be there for llama.cpp);
    // the other 128 ids as ASCII words: llama.cpp's server drops the
    // probabilities of generated tokens that leave incomplete UTF-8.
    let mut tokens: Vec<Value> = (0..=255u8)
        .map(|b| match b {
            0..=127 => Value::String(byte_token(b)),
            _ => Value::String(format!("w{b}")),
        })
        .collect();
    tokens.push(Value::String("ab".into()));
    for special in ["<|endoftext|>", "<|im_start|>", "<|im_end|>"] {
        tokens.push(Value::String(special.into()));
    }
    let mut types = vec![Value::I32(1); 257];
    types.extend([Value::I32(3), Value::I32(3), Value::I32(3)]);
    let u = |v: usize| Value::U32(v as u32);
    let key = |k: &str| format!("{arch}.{k}");
    let mut metadata: Vec<(String, Value)> = vec![
        ("general.architecture".into(), Value::String(arch.into())),
        // Not the family's name: llama.cpp sets token attributes by name
        // ("phi3" expects `</s>`).
        ("general.name".into(), Value::String("tiny decoder".into())),
        (key("block_count"), u(LAYERS)),
        (key("context_length"), u(4096)),
        (key("embedding_length"), u(HIDDEN)),
        (key("feed_forward_length"), u(FFN)),
        (key("attention.head_count"), u(HEADS)),
        (key("attention.head_count_kv"), u(KV_HEADS)),
        (key("attention.layer_norm_rms_epsilon"), Value::F32(1e-6)),
        (key("rope.dimension_count"), u(HEAD_DIM)),
        ("tokenizer.ggml.model".into(), Value::String("gpt2".into())),
        ("tokenizer.ggml.pre".into(), Value::String("gpt-2".into())),
        ("tokenizer.ggml.tokens".into(), Value::Array(tokens)),
        ("tokenizer.ggml.token_type".into(), Value::Array(types)),
        // An empty array has no element type llama.cpp accepts.
        (
            "tokenizer.ggml.merges".into(),
            Value::Array(vec![Value::String("a b".into())]),
        ),
        ("tokenizer.ggml.bos_token_id".into(), u(257)),
        ("tokenizer.ggml.eos_token_id".into(), u(259)),
        ("tokenizer.ggml.add_bos_token".into(), Value::Bool(false)),
    ];
    let theta = match kind {
        Kind::Llama31 => 500_000.0,
        Kind::Qwen2 | Kind::Qwen3 => 1_000_000.0,
        _ => 10_000.0,
    };
    metadata.push((key("rope.freq_base"), Value::F32(theta)));
    let mut noise = Noise(0x9E37_79B9_7F4A_7C15 ^ arch.len() as u64);
    let (q_dim, kv_dim) = (HEADS * HEAD_DIM, KV_HEADS * HEAD_DIM);
    // Projections of std 0.08 keep attention away from one-hot; the
    // output (or tied embedding) of std 0.2 spreads logits over a few nats.
    let w = 0.08;
    let mut tensors: Vec<(String, QTensor)> = vec![(
        "token_embd.weight".into(),
        noise.tensor(VOCAB, HIDDEN, 0.2, GgmlDType::F32),
    )];
    for i in 0..LAYERS {
        let p = |s: &str| format!("blk.{i}.{s}");
        tensors.push((p("attn_norm.weight"), noise.norm(HIDDEN)));
        if matches!(kind, Kind::Phi3 { .. }) {
            let fused = noise.tensor(q_dim + 2 * kv_dim, HIDDEN, w, GgmlDType::F32);
            tensors.push((p("attn_qkv.weight"), fused));
        } else {
            tensors.push((
                p("attn_q.weight"),
                noise.tensor(q_dim, HIDDEN, w, GgmlDType::F32),
            ));
            tensors.push((
                p("attn_k.weight"),
                noise.tensor(kv_dim, HIDDEN, w, GgmlDType::F32),
            ));
            tensors.push((
                p("attn_v.weight"),
                noise.tensor(kv_dim, HIDDEN, w, GgmlDType::F32),
            ));
        }
        if kind == Kind::Qwen2 {
            for (name, len) in [
                ("attn_q.bias", q_dim),
                ("attn_k.bias", kv_dim),
                ("attn_v.bias", kv_dim),
            ] {
                tensors.push((p(name), noise.tensor(1, len, 0.3, GgmlDType::F32)));
            }
        }
        if kind == Kind::Qwen3 {
            tensors.push((p("attn_q_norm.weight"), noise.norm(HEAD_DIM)));
            tensors.push((p("attn_k_norm.weight"), noise.norm(HEAD_DIM)));
        }
        tensors.push((
            p("attn_output.weight"),
            noise.tensor(HIDDEN, q_dim, w, GgmlDType::F32),
        ));
        tensors.push((p("ffn_norm.weight"), noise.norm(HIDDEN)));
        if matches!(kind, Kind::Phi3 { .. }) {
            tensors.push((
                p("ffn_up.weight"),
                noise.tensor(2 * FFN, HIDDEN, w, GgmlDType::F32),
            ));
        } else {
            tensors.push((
                p("ffn_gate.weight"),
                noise.tensor(FFN, HIDDEN, w, GgmlDType::F32),
            ));
            tensors.push((
                p("ffn_up.weight"),
                noise.tensor(FFN, HIDDEN, w, GgmlDType::F32),
            ));
        }
        tensors.push((
            p("ffn_down.weight"),
            noise.tensor(HIDDEN, FFN, w, GgmlDType::F32),
        ));
        if kind == Kind::Gemma2 {
            tensors.push((p("post_attention_norm.weight"), noise.norm(HIDDEN)));
            tensors.push((p("post_ffw_norm.weight"), noise.norm(HIDDEN)));
        }
    }
    tensors.push(("output_norm.weight".into(), noise.norm(HIDDEN)));
    match kind {
        Kind::Llama31 => {
            tensors.push((
                "output.weight".into(),
                noise.tensor(VOCAB, HIDDEN, 0.2, GgmlDType::F32),
            ));
            tensors.push(("rope_freqs.weight".into(), noise.factors(8.0)));
        }
        Kind::Phi3 { long } => {
            tensors.push((
                "output.weight".into(),
                noise.tensor(VOCAB, HIDDEN, 0.2, GgmlDType::F32),
            ));
            tensors.push(("rope_factors_short.weight".into(), noise.factors(1.5)));
            tensors.push(("rope_factors_long.weight".into(), noise.factors(6.0)));
            let original = if long { 16 } else { 1024 };
            metadata.push((key("rope.scaling.original_context_length"), u(original)));
            metadata.push((key("rope.scaling.attn_factor"), Value::F32(1.19)));
        }
        Kind::Gemma2 => {
            metadata.push((key("attention.sliding_window"), u(8)));
            metadata.push((key("attn_logit_softcapping"), Value::F32(3.0)));
            metadata.push((key("final_logit_softcapping"), Value::F32(12.0)));
        }
        Kind::Qwen2 | Kind::Qwen3 => {}
    }
    if let Some(t) = template {
        metadata.push(("tokenizer.chat_template".into(), Value::String(t.into())));
    }
    let name = format!("{kind:?}.gguf").replace([' ', '{', '}', ':'], "");
    let path = dir.join(name);
    let mut file = std::fs::File::create(&path).unwrap();
    let md: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let ts: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    gguf_file::write(&mut file, &md, &ts).unwrap();
    path
}
