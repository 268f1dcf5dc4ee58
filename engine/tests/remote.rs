//! Answering through a real serving engine: llama.cpp's `llama-server`
//! (`FOLIO_LLAMA_SERVER`, built by `.ci/run`) serving the SmolLM2 GGUF on
//! 127.0.0.1, against folio's own forward pass on the same file.
//!
//! Tolerances: the server runs with an f32 KV cache and exact attention
//! (as folio does); its prompt products use 8-bit activations where folio
//! uses f32 tiles, so the two next-token distributions differ by
//! quantization noise (SmolLM2's top-5 probabilities within 0.08,
//! `llama_cpp.rs`). Greedy answers are therefore compared on questions
//! whose answer is clear, and answerability (a probability) within 0.1.

#[path = "llama_cpp/server.rs"]
#[allow(dead_code)]
mod server;

use std::sync::Arc;
use std::time::Duration;

use folio_engine::answer::{answer_from_text, AnswerOptions, AnswerReport};
use folio_engine::device::Placement;
use folio_engine::llm::{GenerateOptions, Model, SessionOptions};
use folio_engine::models::{ensure_model, find_model, load_model, models_dir, TEST_MODEL};
use folio_engine::remote::{RemoteConfig, RemoteServer, ServerKind};
use server::LlamaServer;

/// The served model's name (`--alias`).
const ALIAS: &str = "smollm2";

const DOCUMENT: &str = "The lighthouse of Varnholm was built in 1887 by the engineer Clara \
    Oudin. Its lamp burned whale oil until 1921, when it was converted to electricity. The \
    keeper's cottage now holds a museum of ship models. Visitors climb 212 steps to the gallery.";

fn start(ctx: usize, dir: &std::path::Path) -> Option<(LlamaServer, Model)> {
    let binary = server::binary()?;
    folio_engine::threads::init(Some(2));
    let path = ensure_model(find_model(TEST_MODEL).unwrap(), &models_dir(), false).unwrap();
    let model = load_model(TEST_MODEL, false).unwrap();
    let server = LlamaServer::start_with(&binary, &path, ctx, dir, &["--alias", ALIAS]);
    Some((server, model))
}

fn config(url: &str, model: &str) -> RemoteConfig {
    RemoteConfig {
        base_url: url.to_string(),
        model: model.to_string(),
        api_key: None,
        timeout: Duration::from_secs(120),
    }
}

fn options(device: Placement, max_new_tokens: usize) -> AnswerOptions {
    AnswerOptions {
        generate: GenerateOptions {
            max_new_tokens,
            ..Default::default()
        },
        session: SessionOptions::default(),
        device,
        ground: true,
        prefix_cache: None,
    }
}

fn ask(model: &Model, device: Placement, question: &str, pieces: &mut Vec<String>) -> AnswerReport {
    let options = AnswerOptions {
        session: SessionOptions::for_model(model),
        ..options(device, 32)
    };
    answer_from_text(
        model,
        "lighthouse",
        DOCUMENT,
        question,
        &options,
        &mut |p| pieces.push(p.to_string()),
    )
    .unwrap()
}

#[test]
fn answers_through_the_server_stream_and_agree_with_the_local_read() {
    let dir = tempfile::tempdir().unwrap();
    let Some((llama, model)) = start(2048, dir.path()) else {
        return;
    };
    let server = RemoteServer::connect(&config(&llama.url(), ALIAS), &model).unwrap();
    assert_eq!(server.info.kind, ServerKind::LlamaCpp);
    assert_eq!(server.info.context, Some(2048), "{:?}", server.info);
    assert_eq!(server.info.tokenizer_checked, Some(true));
    let remote = Placement::remote(Arc::new(server));
    for question in [
        "Who built the lighthouse of Varnholm?",
        "When was the lighthouse of Varnholm built?",
    ] {
        let mut streamed = Vec::new();
        let there = ask(&model, remote.clone(), question, &mut streamed);
        let here = ask(&model, Placement::cpu(), question, &mut Vec::new());
        eprintln!(
            "{question}\n  server: {}\n  folio:  {}",
            there.answer, here.answer
        );
        assert!(
            streamed.len() > 1,
            "the answer arrives in pieces: {streamed:?}"
        );
        assert_eq!(streamed.concat().trim(), there.answer);
        assert_eq!(there.answer, here.answer, "greedy answers differ");
        assert_eq!(there.prompt_tokens, here.prompt_tokens);
        let info = there
            .read
            .server
            .as_ref()
            .expect("the read names its server");
        assert_eq!(info.model, ALIAS);
        assert_eq!(there.read.attention, "server-side");
        // The same check, scored by each side's model.
        let (a, b) = (there.grounding.unwrap(), here.grounding.unwrap());
        assert!(a.quote_by_overlap && !b.quote_by_overlap);
        let quote = a.quote.unwrap();
        assert_eq!(&DOCUMENT[quote.0..quote.1], a.quote_text);
        eprintln!(
            "  answerability: server {:.3}, folio {:.3} (quotes {})",
            a.answerability,
            b.answerability,
            if a.quote == b.quote {
                "the same"
            } else {
                "differ"
            }
        );
        if a.quote == b.quote {
            assert!(
                (a.answerability - b.answerability).abs() < 0.1,
                "answerability {} there, {} here",
                a.answerability,
                b.answerability
            );
        }
    }
}

#[test]
fn a_wrong_model_a_short_context_a_dead_server_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let Some((mut llama, model)) = start(512, dir.path()) else {
        return;
    };
    let e = RemoteServer::connect(&config(&llama.url(), "gpt-9"), &model).unwrap_err();
    let e = format!("{e:#}");
    assert!(
        e.contains("'gpt-9'") && e.contains(ALIAS) && e.contains("--model"),
        "{e}"
    );

    // A prompt the server's context cannot hold is refused before it is sent.
    let server = Arc::new(RemoteServer::connect(&config(&llama.url(), ALIAS), &model).unwrap());
    let long = DOCUMENT.repeat(12);
    let options = options(Placement::remote(server.clone()), 32);
    let e = answer_from_text(
        &model,
        "long",
        &long,
        "Who built it?",
        &options,
        &mut |_| {},
    )
    .unwrap_err();
    let e = format!("{e:#}");
    assert!(
        e.contains("context holds 512") && e.contains("--strategy rag"),
        "{e}"
    );

    // Killed mid-answer: an error, never a cut answer taken as whole.
    let mut pieces = 0;
    let options = AnswerOptions {
        ground: false,
        ..self::options(Placement::remote(server), 200)
    };
    let e = answer_from_text(
        &model,
        "lighthouse",
        DOCUMENT,
        "Write a long story about the lighthouse keeper.",
        &options,
        &mut |_| {
            pieces += 1;
            if pieces == 2 {
                llama.kill();
            }
        },
    )
    .unwrap_err();
    let e = format!("{e:#}");
    assert!(
        e.contains("broke off") || e.contains("closed the stream"),
        "{e}"
    );

    // Nobody listening: retried, then an error that says what to do.
    let e = RemoteServer::connect(&config(&llama.url(), ALIAS), &model).unwrap_err();
    let e = format!("{e:#}");
    assert!(
        e.contains("is it running") && e.contains("--base-url"),
        "{e}"
    );
}

#[test]
fn a_tokenizer_that_is_not_the_served_models_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let Some((llama, _)) = start(512, dir.path()) else {
        return;
    };
    let other = load_model("qwen2.5-0.5b", false).unwrap();
    let e = RemoteServer::connect(&config(&llama.url(), ALIAS), &other).unwrap_err();
    let e = format!("{e:#}");
    assert!(e.contains("--tokenizer"), "{e}");
}
