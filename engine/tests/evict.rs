//! KV eviction on the real SmolLM2 GGUF: the cache keeps its budget through
//! prefill and decoding, a budget larger than the prompt changes nothing,
//! and SnapKV keeps a needle the question asks about.

use folio_engine::answer::{answer_from_text, AnswerOptions, AnswerReport};
use folio_engine::llm::{
    Eviction, EvictionPolicy, GenerateOptions, Logits, Model, Session, SessionOptions, StopReason,
};
use folio_engine::models::{load_model, TEST_MODEL};

/// About 1,500 tokens of the Jargon File with one fact in the middle.
fn haystack() -> String {
    let text = folio_corpora::bundled::jargon().text;
    let start = text.find("\n   :hacker: n.").unwrap();
    let body = &text[start..start + 6_000];
    let cut = body[..3_000].rfind('\n').unwrap();
    format!(
        "{}\nThe secret launch code of the archive is 4817.\n{}",
        &body[..cut],
        &body[cut..]
    )
}

fn read(model: &Model, eviction: Option<Eviction>) -> AnswerReport {
    let options = AnswerOptions {
        generate: GenerateOptions {
            max_new_tokens: 16,
            ..Default::default()
        },
        session: SessionOptions {
            eviction,
            prefill_chunk: 256,
            ..SessionOptions::for_model(model)
        },
        ..Default::default()
    };
    let question = "What is the secret launch code of the archive?";
    answer_from_text(
        model,
        "haystack",
        &haystack(),
        question,
        &options,
        &mut |_| {},
    )
    .unwrap()
}

fn policy(name: &str, budget: usize) -> Option<Eviction> {
    Some(Eviction {
        policy: EvictionPolicy::parse(name).unwrap(),
        budget,
    })
}

#[test]
fn every_policy_keeps_its_budget_on_a_real_read() {
    let model = load_model(TEST_MODEL, false).unwrap();
    let full = read(&model, None);
    assert!(
        full.answer.contains("4817"),
        "the full read must find it: {}",
        full.answer
    );
    let row_bytes = full.read.kv_cache_bytes / (full.prompt_tokens + full.generated_tokens);
    let mut snap_answer = String::new();
    for name in ["streaming", "h2o", "snapkv"] {
        let r = read(&model, policy(name, 256));
        if name == "snapkv" {
            snap_answer = r.answer.clone();
        }
        let e = r.read.eviction.as_ref().expect("the card reports eviction");
        // A length-capped answer's last token is sampled, not read.
        let capped = usize::from(r.stop_reason == StopReason::MaxTokens);
        let read_positions = r.prompt_tokens + r.generated_tokens - capped;
        assert_eq!(e.read_positions, read_positions, "{name}");
        match name {
            // Evicting during prefill and decoding: never more than the
            // budget plus one prefill chunk, and the budget at the end.
            "streaming" | "h2o" => {
                assert_eq!(e.kept_positions, 256, "{name}");
                assert!(
                    e.peak_cache_bytes <= (256 + 256) * row_bytes,
                    "{name}: {e:?}"
                );
            }
            // Once the prompt is read: the budget, then the answer's tokens.
            _ => assert_eq!(
                e.kept_positions,
                256 + read_positions - r.prompt_tokens,
                "{name}"
            ),
        }
        assert!(
            r.read.kv_cache_bytes < full.read.kv_cache_bytes / 4,
            "{name}"
        );
    }
    // The question's own attention picks the fact out of the middle.
    assert!(
        snap_answer.contains("4817"),
        "snapkv lost the needle: {snap_answer}"
    );
}

#[test]
fn a_budget_the_prompt_never_reaches_changes_nothing() {
    let model = load_model(TEST_MODEL, false).unwrap();
    let tokens = model.tokenizer.encode_text(&haystack()).unwrap();
    let plain = {
        let mut s = Session::new(&model, SessionOptions::for_model(&model));
        s.forward(&tokens, Logits::Last).unwrap()
    };
    for name in ["streaming", "h2o", "snapkv"] {
        let options = SessionOptions {
            eviction: policy(name, tokens.len() + 10),
            ..SessionOptions::for_model(&model)
        };
        let mut s = Session::new(&model, options);
        assert_eq!(s.forward(&tokens, Logits::Last).unwrap(), plain, "{name}");
        assert_eq!(s.eviction_stats.evictions, 0, "{name}");
    }
}
