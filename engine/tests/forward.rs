//! Our forward pass on the real SmolLM2 GGUF.

mod common;

use folio_engine::llm::{generate, perplexity, GenerateOptions, Logits, Session, SessionOptions};

const NORMANDY: &str = "The Normans (Norman: Nourmands; French: Normands; Latin: Normanni) were the people who in the 10th and 11th centuries gave their name to Normandy, a region in France. They were descended from Norse (\"Norman\" comes from \"Norseman\") raiders and pirates from Denmark, Iceland and Norway who, under their leader Rollo, agreed to swear fealty to King Charles III of West Francia.";

const PROSE: &str = "It was a bright cold day in April, and the clocks were striking thirteen. The old man walked slowly down the road towards the village, carrying a basket of apples for his daughter. She had been ill for several weeks, and the doctor said that fresh fruit would help her to recover her strength before the winter came.";

#[test]
fn greedy_decoding_answers_a_squad_question() {
    let model = common::smollm2();
    let prompt = model
        .chat
        .render(
            &model.tokenizer,
            &folio_engine::llm::document_qa(NORMANDY, "In what country is Normandy located?"),
        )
        .unwrap();
    let mut session = Session::new(model, SessionOptions::default());
    let mut streamed = String::new();
    let options = GenerateOptions {
        max_new_tokens: 40,
        ..GenerateOptions::default()
    };
    let generation = generate(&mut session, &prompt, &options, 8192, &mut |piece| {
        streamed.push_str(piece)
    })
    .unwrap();
    assert!(
        generation.text.contains("France"),
        "answer: {:?}",
        generation.text
    );
    assert_eq!(
        streamed, generation.text,
        "the stream must add up to the answer"
    );
}

#[test]
fn perplexity_of_english_prose_is_low_and_shuffling_raises_it() {
    let model = common::smollm2();
    let tokens = model.tokenizer.encode_text(PROSE).unwrap();
    let mut session = Session::new(model, SessionOptions::default());
    let ppl = perplexity(&mut session, &tokens).unwrap();
    // A broken forward pass (wrong RoPE layout, norm, template) gives hundreds or thousands.
    assert!((2.0..40.0).contains(&ppl), "perplexity {ppl}");
    let mut shuffled = tokens.clone();
    shuffled.reverse();
    let ppl_reversed = perplexity(&mut session, &shuffled).unwrap();
    assert!(
        ppl_reversed > 5.0 * ppl,
        "reversed text {ppl_reversed} vs prose {ppl}"
    );
}

#[test]
fn chunked_prefill_and_cached_decoding_match_one_pass() {
    let model = common::smollm2();
    let tokens = model.tokenizer.encode_text(NORMANDY).unwrap();
    // f32 activations: the cache and chunking must not change the math.
    // (With 8-bit activations, attention's float order differs between
    // chunkings, and values near a rounding step of the 8-bit grid then land
    // on either side: the results differ by quantization noise, as in
    // llama.cpp; `quantized_decoding_stays_close_to_f32` bounds that.)
    let exact = SessionOptions {
        quantized_activations: false,
        ..SessionOptions::default()
    };
    let one_pass = {
        let mut s = Session::new(
            model,
            SessionOptions {
                prefill_chunk: 4096,
                ..exact.clone()
            },
        );
        s.forward(&tokens, Logits::All).unwrap()
    };
    let chunked = {
        let mut s = Session::new(
            model,
            SessionOptions {
                prefill_chunk: 7,
                ..exact.clone()
            },
        );
        s.forward(&tokens, Logits::All).unwrap()
    };
    let token_by_token = {
        let mut s = Session::new(model, exact);
        s.forward(&tokens[..tokens.len() - 1], Logits::Last)
            .unwrap();
        s.forward(&tokens[tokens.len() - 1..], Logits::Last)
            .unwrap()
    };
    let vocab = model.config.vocab_size;
    let last = &one_pass[one_pass.len() - vocab..];
    let max_diff = |a: &[f32], b: &[f32]| {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max)
    };
    // Same math in a different summation order: logits (magnitude ~10-30) agree to 1e-3.
    assert!(
        max_diff(&one_pass, &chunked) < 1e-3,
        "chunked prefill differs by {}",
        max_diff(&one_pass, &chunked)
    );
    assert!(
        max_diff(last, &token_by_token) < 1e-3,
        "cached decode differs by {}",
        max_diff(last, &token_by_token)
    );
}

#[test]
fn quantized_decoding_stays_close_to_f32() {
    let model = common::smollm2();
    let tokens = model.tokenizer.encode_text(NORMANDY).unwrap();
    let last_logits = |quantized_activations: bool| {
        let mut s = Session::new(
            model,
            SessionOptions {
                quantized_activations,
                ..SessionOptions::default()
            },
        );
        s.forward(&tokens[..tokens.len() - 1], Logits::Last)
            .unwrap();
        s.forward(&tokens[tokens.len() - 1..], Logits::Last)
            .unwrap()
    };
    let (f32_logits, q_logits) = (last_logits(false), last_logits(true));
    // Quantization noise may swap near-ties (here 14.29 vs 14.25), never move
    // the winner far down the ranking.
    let top3 = |l: &[f32]| {
        let mut ids: Vec<usize> = (0..l.len()).collect();
        ids.sort_by(|a, b| l[*b].total_cmp(&l[*a]));
        ids.truncate(3);
        ids
    };
    let best = |l: &[f32]| folio_engine::llm::sampling::argmax(l) as usize;
    assert!(
        top3(&q_logits).contains(&best(&f32_logits)),
        "{:?} vs {:?}",
        top3(&q_logits),
        top3(&f32_logits)
    );
    assert!(top3(&f32_logits).contains(&best(&q_logits)));
    let range = f32_logits.iter().fold(0f32, |m, x| m.max(x.abs()));
    let max_diff = f32_logits
        .iter()
        .zip(&q_logits)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    // Q8_0 weights plus Q8_0 activations: a few percent of the logit range at most.
    assert!(
        max_diff < 0.05 * range,
        "max diff {max_diff} vs logit range {range}"
    );
}
