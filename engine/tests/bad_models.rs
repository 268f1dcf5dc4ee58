//! GGUF files folio cannot run are clear errors, never a panic: each case
//! mutates one thing of a small llama GGUF written here with candle's GGUF
//! writer (real tensors in real block types), and a last one checks that
//! the unmutated file loads and runs.

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use folio_engine::llm::{Logits, Model, Session, SessionOptions};

const HIDDEN: usize = 256;
const FFN: usize = 512;

/// A one-layer llama with a 260-token vocabulary (ChatML markers included).
struct Tiny {
    metadata: Vec<(String, Value)>,
    tensors: Vec<(String, QTensor)>,
}

impl Tiny {
    fn new(matrix_type: GgmlDType) -> Self {
        let mut tokens: Vec<Value> = (0..256u32)
            .map(|b| Value::String(format!("t{b}")))
            .collect();
        for special in ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "hello"] {
            tokens.push(Value::String(special.into()));
        }
        let vocab = tokens.len();
        let mut types = vec![Value::I32(1); vocab];
        for t in &mut types[256..259] {
            *t = Value::I32(3);
        }
        let u = |v: usize| Value::U32(v as u32);
        let metadata = vec![
            ("general.architecture".into(), Value::String("llama".into())),
            ("general.name".into(), Value::String("tiny".into())),
            ("llama.block_count".into(), u(1)),
            ("llama.embedding_length".into(), u(HIDDEN)),
            ("llama.feed_forward_length".into(), u(FFN)),
            ("llama.attention.head_count".into(), u(4)),
            ("llama.attention.head_count_kv".into(), u(2)),
            (
                "llama.attention.layer_norm_rms_epsilon".into(),
                Value::F32(1e-5),
            ),
            ("llama.context_length".into(), u(512)),
            ("tokenizer.ggml.model".into(), Value::String("gpt2".into())),
            ("tokenizer.ggml.tokens".into(), Value::Array(tokens)),
            ("tokenizer.ggml.token_type".into(), Value::Array(types)),
            ("tokenizer.ggml.merges".into(), Value::Array(vec![])),
            ("tokenizer.ggml.eos_token_id".into(), u(257)),
        ];
        let matrix = |rows: usize, cols: usize| {
            let t = Tensor::randn(0f32, 0.08, (rows, cols), &Device::Cpu).unwrap();
            QTensor::quantize(&t, matrix_type).unwrap()
        };
        let norm = || {
            let t = Tensor::ones(HIDDEN, candle_core::DType::F32, &Device::Cpu).unwrap();
            QTensor::quantize(&t, GgmlDType::F32).unwrap()
        };
        let (q, kv) = (HIDDEN, HIDDEN / 2);
        let tensors = vec![
            ("token_embd.weight".into(), matrix(vocab, HIDDEN)),
            ("blk.0.attn_norm.weight".into(), norm()),
            ("blk.0.attn_q.weight".into(), matrix(q, HIDDEN)),
            ("blk.0.attn_k.weight".into(), matrix(kv, HIDDEN)),
            ("blk.0.attn_v.weight".into(), matrix(kv, HIDDEN)),
            ("blk.0.attn_output.weight".into(), matrix(HIDDEN, q)),
            ("blk.0.ffn_norm.weight".into(), norm()),
            ("blk.0.ffn_gate.weight".into(), matrix(FFN, HIDDEN)),
            ("blk.0.ffn_up.weight".into(), matrix(FFN, HIDDEN)),
            ("blk.0.ffn_down.weight".into(), matrix(HIDDEN, FFN)),
            ("output_norm.weight".into(), norm()),
        ];
        Self { metadata, tensors }
    }

    fn set(mut self, key: &str, value: Value) -> Self {
        self.metadata.retain(|(k, _)| k != key);
        self.metadata.push((key.into(), value));
        self
    }

    fn write(&self, dir: &tempfile::TempDir, name: &str) -> std::path::PathBuf {
        let path = dir.path().join(name);
        let mut file = std::fs::File::create(&path).unwrap();
        let metadata: Vec<(&str, &Value)> =
            self.metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let tensors: Vec<(&str, &QTensor)> =
            self.tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
        gguf_file::write(&mut file, &metadata, &tensors).unwrap();
        path
    }
}

/// Loads `path`, expecting an error that contains every one of `words`.
fn refused(path: &std::path::Path, words: &[&str]) {
    let err = match Model::load(path) {
        Ok(_) => panic!("{} loaded", path.display()),
        Err(e) => format!("{e:#}"),
    };
    for w in words {
        assert!(err.contains(w), "expected {w:?} in: {err}");
    }
}

#[test]
fn unusable_gguf_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let arch =
        Tiny::new(GgmlDType::Q8_0).set("general.architecture", Value::String("mamba".into()));
    refused(
        &arch.write(&dir, "arch.gguf"),
        &["mamba", "llama", "qwen2", "qwen3", "phi3", "gemma2"],
    );

    // Mistral Nemo's tokenizer: a split folio does not implement.
    let tekken =
        Tiny::new(GgmlDType::Q8_0).set("tokenizer.ggml.pre", Value::String("tekken".into()));
    refused(
        &tekken.write(&dir, "tekken.gguf"),
        &["'tekken'", "llama-bpe"],
    );

    // Gemma 2 without its post-attention norms.
    let mut gemma =
        Tiny::new(GgmlDType::Q8_0).set("general.architecture", Value::String("gemma2".into()));
    gemma.metadata = gemma
        .metadata
        .into_iter()
        .map(|(k, v)| (k.replacen("llama.", "gemma2.", 1), v))
        .collect();
    refused(
        &gemma.write(&dir, "gemma2.gguf"),
        &["blk.0.post_attention_norm.weight"],
    );

    let q2k = Tiny::new(GgmlDType::Q2K);
    refused(
        &q2k.write(&dir, "q2k.gguf"),
        &["Q2K", "not supported", "Q4_K"],
    );

    let mut missing = Tiny::new(GgmlDType::Q8_0);
    missing
        .tensors
        .retain(|(n, _)| n != "blk.0.ffn_down.weight");
    refused(
        &missing.write(&dir, "missing.gguf"),
        &["blk.0.ffn_down.weight"],
    );

    let heads = Tiny::new(GgmlDType::Q8_0).set("llama.attention.head_count", Value::U32(0));
    refused(&heads.write(&dir, "heads.gguf"), &["0 attention heads"]);

    let kv = Tiny::new(GgmlDType::Q8_0).set("llama.attention.head_count_kv", Value::U32(3));
    refused(&kv.write(&dir, "kv.gguf"), &["KV heads"]);

    let aligned = Tiny::new(GgmlDType::Q8_0).set("general.alignment", Value::U32(0));
    refused(
        &aligned.write(&dir, "alignment.gguf"),
        &["not a readable GGUF"],
    );

    let mut types = Tiny::new(GgmlDType::Q8_0);
    if let Some((_, Value::Array(t))) = types
        .metadata
        .iter_mut()
        .find(|(k, _)| k == "tokenizer.ggml.token_type")
    {
        t.extend([Value::I32(3), Value::I32(3)]);
    }
    refused(&types.write(&dir, "types.gguf"), &["token types"]);

    // A file cut short: its last tensor runs past the end.
    let path = Tiny::new(GgmlDType::Q8_0).write(&dir, "cut.gguf");
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - 4096)
        .unwrap();
    refused(&path, &["runs past the end of the file"]);
}

#[test]
fn a_small_k_quant_model_loads_and_its_8_bit_path_tracks_f32() {
    let dir = tempfile::tempdir().unwrap();
    for dtype in [
        GgmlDType::Q4K,
        GgmlDType::Q6K,
        GgmlDType::Q8_0,
        GgmlDType::F16,
    ] {
        let path = Tiny::new(dtype).write(&dir, &format!("{dtype:?}.gguf"));
        let model = Model::load(&path).unwrap();
        let tokens: Vec<u32> = (0..40).map(|i| (i * 37 % 256) as u32).collect();
        // The prompt through folio's int8 kernels (not the default f32 tiles).
        let run = |quantized_activations: bool| {
            let options = SessionOptions {
                quantized_activations,
                int8_prefill: true,
                ..SessionOptions::default()
            };
            Session::new(&model, options)
                .forward(&tokens, Logits::All)
                .unwrap()
        };
        let (fast, exact) = (run(true), run(false));
        assert!(fast.iter().all(|v| v.is_finite()));
        let scale = exact.iter().fold(0f32, |m, v| m.max(v.abs()));
        let worst = fast
            .iter()
            .zip(&exact)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        // 8-bit activations through one layer (weights of std 0.08, so the
        // attention is not chaotic): within 5% of the largest logit
        // (measured 1.4-2.3 %).
        assert!(
            worst <= 0.05 * scale,
            "{dtype:?}: 8-bit logits differ by {worst} (scale {scale})"
        );
        assert!(
            worst > 0.0 || dtype == GgmlDType::F16,
            "{dtype:?}: the 8-bit path must be the one measured"
        );
    }
}

#[global_allocator]
static HEAP: folio_corpora::peak_alloc::PeakAlloc = folio_corpora::peak_alloc::PeakAlloc::new();

/// Bounded-time fuzzing of the GGUF reader: 1 500 mutated copies of the
/// small model (mutations favour the header and metadata at the start).
/// Each loads or is an error; none panics, and none makes the loader hold
/// more than 64 MiB of heap beyond 64 times the file (a count or length in
/// the metadata that claims more must not be believed).
#[test]
fn mutated_gguf_headers_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read(Tiny::new(GgmlDType::Q8_0).write(&dir, "good.gguf")).unwrap();
    let path = dir.path().join("mutated.gguf");
    let mut m = folio_corpora::mutate::Mutator::new(18);
    let mut loaded = 0;
    for round in 0..1500 {
        let bytes = m.mutate(&good);
        std::fs::write(&path, &bytes).unwrap();
        HEAP.reset_peak();
        let before = HEAP.live();
        let result = std::panic::catch_unwind(|| Model::load(&path).map(|_| ()));
        let peak = HEAP.peak().saturating_sub(before);
        assert!(result.is_ok(), "round {round}: loading panicked");
        assert!(
            peak <= (64 << 20) + 64 * bytes.len(),
            "round {round}: {peak} bytes of heap for a {} byte file",
            bytes.len()
        );
        loaded += usize::from(matches!(result, Ok(Ok(()))));
    }
    eprintln!("{loaded} of 1500 mutated files loaded");
}

/// Llama 3.1-style RoPE frequency factors are applied (their numerics are
/// held to llama.cpp in `llama_cpp.rs`); factors of the wrong count, or
/// that are not positive numbers, are refused by name.
#[test]
fn unusable_rope_frequency_factors_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let with_factors = |values: Vec<f32>, name: &str| {
        let mut tiny = Tiny::new(GgmlDType::Q8_0);
        let n = values.len();
        let factors = Tensor::from_vec(values, n, &Device::Cpu).unwrap();
        tiny.tensors.push((
            "rope_freqs.weight".into(),
            QTensor::quantize(&factors, GgmlDType::F32).unwrap(),
        ));
        tiny.write(&dir, name)
    };
    // 4 heads of 64: 32 rotary pairs.
    let good = with_factors((0..32).map(|i| 1.0 + i as f32 / 4.0).collect(), "good.gguf");
    let model = Model::load(&good).unwrap();
    assert!(model.weights.rope_factors.fixed.is_some());
    refused(
        &with_factors(vec![1.0; 31], "short.gguf"),
        &["rope_freqs.weight", "31 values, expected 32"],
    );
    let mut zero = vec![1.0; 32];
    zero[5] = 0.0;
    refused(
        &with_factors(zero, "zero.gguf"),
        &["rope_freqs.weight", "not a positive number"],
    );
}
