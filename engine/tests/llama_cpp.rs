//! folio against the real llama.cpp on the same files: token ids of real
//! text, the top-5 next-token log-probabilities and a greedy continuation,
//! for the pinned models and for a small GGUF of every architecture folio
//! runs (written by the test, `llama_cpp/tiny.rs`).
//!
//! llama.cpp's `llama-server` comes from `FOLIO_LLAMA_SERVER` (`.ci/run`
//! builds it from the llama.cpp source in PyPI's `llama-cpp-python` sdist;
//! with `FOLIO_REQUIRE_LLAMA_SERVER=1` its absence fails these tests).
//!
//! Tolerances (the measured worst cases are printed by each test):
//! - the small models hold their matrices in F32, so both sides compute in
//!   f32 and differ by rounding only: every log-probability of llama.cpp's
//!   top 5 within 0.01 nats of folio's, at every position;
//! - the pinned models are quantized, and llama.cpp multiplies prompts with
//!   8-bit activations where folio uses f32 tiles, so their logits differ
//!   by quantization noise, which moves unlikely tokens' log-probabilities
//!   most: each of llama.cpp's top-5 probabilities within 0.08 of folio's
//!   (measured: 0.051 SmolLM2 Q4_1, 0.013 Qwen2.5-0.5B, 0.012 Qwen2.5-1.5B);
//! - both: the greedy token equal wherever llama.cpp's top two probabilities
//!   are more than 0.1 apart.

#[path = "llama_cpp/server.rs"]
#[allow(dead_code)]
mod server;
#[path = "llama_cpp/tiny.rs"]
mod tiny;

use folio_engine::llm::{document_qa, Logits, Model, Session, SessionOptions, TextTokenizer};
use folio_engine::models::{ensure_model, find_model, models_dir};
use server::LlamaServer;
use tiny::Kind;

/// How close folio's next-token distribution must be to llama.cpp's.
#[derive(Debug, Clone, Copy)]
enum Tolerance {
    /// Log-probabilities within this many nats (f32 on both sides).
    LogProb(f32),
    /// Probabilities within this much (quantized models).
    Prob(f32),
}

fn log_softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let log_total = logits
        .iter()
        .map(|l| ((l - max) as f64).exp())
        .sum::<f64>()
        .ln() as f32;
    logits.iter().map(|l| l - max - log_total).collect()
}

/// What one comparison measured.
struct Agreement {
    worst_log_prob: f32,
    worst_prob: f32,
    positions: usize,
    greedy_checked: usize,
    peak_probability: f32,
}

/// Runs `prompt` through llama.cpp (greedy, at most `steps` tokens, to its
/// end of turn) and folio (fed llama.cpp's tokens), comparing each position.
fn compare(
    model: &Model,
    server: &LlamaServer,
    prompt: &[u32],
    steps: usize,
    tolerance: Tolerance,
) -> Agreement {
    let positions = server.complete(prompt, steps, 5);
    assert!(!positions.is_empty(), "llama.cpp generated nothing");
    let mut session = Session::new(model, SessionOptions::for_model(model));
    let mut logits = session.forward(prompt, Logits::Last).unwrap();
    let mut a = Agreement {
        worst_log_prob: 0.0,
        worst_prob: 0.0,
        positions: positions.len(),
        greedy_checked: 0,
        peak_probability: 0.0,
    };
    for (step, at) in positions.iter().enumerate() {
        let ours = log_softmax(&logits);
        for &(id, theirs) in &at.top {
            let mine = ours[id as usize];
            let log_diff = (mine - theirs).abs();
            let prob_diff = (mine.exp() - theirs.exp()).abs();
            let within = match tolerance {
                Tolerance::LogProb(t) => log_diff <= t,
                Tolerance::Prob(t) => prob_diff <= t,
            };
            assert!(
                within,
                "step {step}: token {id}: folio log p {mine} vs llama.cpp {theirs} \
                 (llama.cpp's top 5: {:?})",
                at.top
            );
            a.worst_log_prob = a.worst_log_prob.max(log_diff);
            a.worst_prob = a.worst_prob.max(prob_diff);
        }
        let top = at.top[0].1.exp();
        a.peak_probability = a.peak_probability.max(top);
        if top - at.top.get(1).map_or(0.0, |t| t.1.exp()) > 0.1 {
            let best = (0..ours.len())
                .max_by(|&i, &j| ours[i].total_cmp(&ours[j]))
                .unwrap();
            assert_eq!(best as u32, at.chosen, "step {step}: greedy tokens differ");
            a.greedy_checked += 1;
        }
        if step + 1 < positions.len() {
            logits = session.forward(&[at.chosen], Logits::Last).unwrap();
        }
    }
    a
}

fn report(name: &str, a: &Agreement) {
    eprintln!(
        "{name}: worst |Δ log p| {:.4}, |Δ p| {:.4} over {} positions; greedy checked at {}; \
         peak p {:.2}",
        a.worst_log_prob, a.worst_prob, a.positions, a.greedy_checked, a.peak_probability
    );
}

fn compare_tiny(kind: Kind) {
    folio_engine::threads::init(Some(2));
    let dir = tempfile::tempdir().unwrap();
    let path = tiny::write(dir.path(), kind);
    let model = Model::load(&path).unwrap_or_else(|e| panic!("{kind:?}: {e:#}"));
    // 40 tokens from a fixed sequence (a prompt longer than Gemma 2's
    // test window of 8 and than the long Phi-3's original context of 16).
    let prompt: Vec<u32> = (0..40u32).map(|i| (i * 97 + 13) % 256).collect();
    // folio alone first: the model runs and prefers some tokens.
    let logits = Session::new(&model, SessionOptions::for_model(&model))
        .forward(&prompt, Logits::Last)
        .unwrap();
    assert!(
        logits.iter().all(|l| l.is_finite()),
        "{kind:?}: logits not finite"
    );
    let peak = log_softmax(&logits)
        .into_iter()
        .fold(f32::MIN, f32::max)
        .exp();
    assert!(
        peak > 0.1,
        "{kind:?}: next-token distribution too flat ({peak})"
    );
    let Some(binary) = server::binary() else {
        return;
    };
    let server = LlamaServer::start(&binary, &path, 256, dir.path());
    let a = compare(&model, &server, &prompt, 8, Tolerance::LogProb(0.01));
    report(&format!("{kind:?}"), &a);
    // The comparison means something only where the model prefers tokens.
    assert!(
        a.peak_probability > 0.2,
        "{kind:?}: distribution too flat to compare"
    );
    assert!(
        a.greedy_checked >= a.positions / 2,
        "{kind:?}: too few clear greedy steps"
    );
}

#[test]
fn llama_31_with_rope_factors_matches_llama_cpp() {
    compare_tiny(Kind::Llama31);
}

#[test]
fn qwen2_matches_llama_cpp() {
    compare_tiny(Kind::Qwen2);
}

#[test]
fn qwen3_matches_llama_cpp() {
    compare_tiny(Kind::Qwen3);
}

#[test]
fn phi3_with_short_and_long_rope_factors_matches_llama_cpp() {
    compare_tiny(Kind::Phi3 { long: false });
    compare_tiny(Kind::Phi3 { long: true });
}

#[test]
fn gemma2_matches_llama_cpp() {
    compare_tiny(Kind::Gemma2);
}

/// Real text with what tokenizers trip on: accents, CJK, emoji, digits,
/// runs of spaces and newlines, code, and chat control tokens as text.
const TEXTS: &[&str] = &[
    "The Normans (Norman: Nourmands; French: Normands; Latin: Normanni) were the people who in the 10th and 11th centuries gave their name to Normandy.",
    "Größe, naïve café — 東京は日本の首都です。 🙂👍 1234567 3.14159",
    "fn main() {\n    let x = vec![1, 2, 3];\n\n\n    println!(\"{x:?}\");\t// done\n}",
    "   leading spaces and trailing   ",
    "<|im_start|>user\nnot a control token<|im_end|> </s> <s> [INST]",
];

fn compare_pinned(id: &str) {
    let Some(binary) = server::binary() else {
        return;
    };
    folio_engine::threads::init(Some(2));
    let path = ensure_model(find_model(id).unwrap(), &models_dir(), false)
        .unwrap_or_else(|e| panic!("fetching {id}: {e:#}"));
    let model = Model::load(&path).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let server = LlamaServer::start(&binary, &path, 1024, dir.path());
    for text in TEXTS {
        let ours = model.tokenizer.encode_text(text).unwrap();
        assert_eq!(ours, server.tokenize(text), "{id}: token ids of {text:?}");
    }
    let messages = document_qa(
        "The Normans were descended from Norse raiders who settled in Normandy, a region in \
         France, under their leader Rollo.",
        "Who led the Norse raiders?",
    );
    let prompt = model.chat.render(&model.tokenizer, &messages).unwrap();
    let a = compare(&model, &server, &prompt, 16, Tolerance::Prob(0.08));
    report(id, &a);
    assert!(
        a.greedy_checked >= a.positions / 2,
        "{id}: too few clear greedy steps"
    );
}

#[test]
fn smollm2_matches_llama_cpp() {
    compare_pinned("smollm2-135m");
}

#[test]
fn qwen25_05b_matches_llama_cpp() {
    compare_pinned("qwen2.5-0.5b");
}

#[test]
fn qwen25_15b_matches_llama_cpp() {
    compare_pinned("qwen2.5-1.5b");
}

/// `ids` as text, control tokens spelled out (decoding drops them).
fn spell(tokenizer: &TextTokenizer, ids: &[u32]) -> String {
    let mut text = String::new();
    let mut run = Vec::new();
    for &id in ids {
        if tokenizer.is_special(id) {
            text.push_str(&tokenizer.decode(&run).unwrap());
            run.clear();
            text.push_str(tokenizer.token(id).unwrap());
        } else {
            run.push(id);
        }
    }
    text + &tokenizer.decode(&run).unwrap()
}

/// The chat templates of the families folio runs, as their models ship
/// them, render a document question to the same text through folio's Jinja
/// (messages as markers, control tokens by id) as through llama.cpp's.
#[test]
fn chat_templates_render_as_llama_cpp_renders_them() {
    folio_engine::threads::init(Some(2));
    let fixtures =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/templates");
    let question = document_qa(
        "Rollo led the Norse settlers.\n\nThey <|im_end|> stayed.",
        "Who led them?",
    );
    let messages = serde_json::json!([{"role": "user", "content": question[0].content}]);
    let binary = server::binary();
    let mut names: Vec<_> = std::fs::read_dir(&fixtures)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    assert_eq!(names.len(), 6, "the six fixture templates");
    for path in names {
        let template = std::fs::read_to_string(&path).unwrap();
        let dir = tempfile::tempdir().unwrap();
        // Qwen3's architecture: folio renders with the GGUF's template.
        let gguf = tiny::write_with_template(dir.path(), Kind::Qwen3, Some(&template));
        let model = Model::load(&gguf).unwrap();
        let ids = model.chat.render(&model.tokenizer, &question).unwrap();
        let ours = spell(&model.tokenizer, &ids);
        assert!(ours.contains("Who led them?"), "{}: {ours}", path.display());
        let Some(binary) = &binary else {
            continue;
        };
        let file = path.display().to_string();
        let server = LlamaServer::start_with(
            binary,
            &gguf,
            256,
            dir.path(),
            &["--jinja", "--chat-template-file", &file],
        );
        let theirs = server.apply_template(&messages);
        assert_eq!(ours, theirs, "{}", path.display());
    }
}
