//! One read through the server: the prompt rendered here (the local
//! tokenizer and chat template), the answer streamed from there, and the
//! answer's support checked through the server's log-probabilities.

use std::time::Instant;

use anyhow::{bail, Result};
use folio_corpora::Span;

use super::{CompletionRequest, RemoteServer};
use crate::answer::{AnswerOptions, AnswerReport, StageTimes};
use crate::grounding::{Grounding, QUOTE_CANDIDATES};
use crate::llm::{document_qa, support_check, Model, ReadStats, RopeScaling, StopReason};

/// Top log-probabilities asked for the yes/no check's first token.
const CHECK_TOP: usize = 20;

/// [`crate::answer::answer_from_context`] on `server`: `model` is the
/// local GGUF whose tokenizer and template render the prompt (its weights
/// are not read). The answer's quote is the sentence of the text read that
/// shares most words with the question and answer (a server gives no
/// constrained decoding); its answerability is the server model's
/// probability of "yes" to the same check an in-process read asks.
pub fn answer_remote(
    server: &RemoteServer,
    model: &Model,
    id: &str,
    (text, quotable): (&str, &[Span]),
    question: &str,
    options: &AnswerOptions,
    on_text: &mut dyn FnMut(&str),
) -> Result<AnswerReport> {
    let t0 = Instant::now();
    let document_tokens = model.tokenizer.encode_text(text)?.len();
    let prompt = model
        .chat
        .render(&model.tokenizer, &document_qa(text, question))?;
    let tokenize = t0.elapsed().as_secs_f64();
    let needed = prompt.len() + options.generate.max_new_tokens;
    if let Some(context) = server.info.context.filter(|&c| needed > c) {
        bail!(
            "'{id}' is {document_tokens} tokens; with the question and room for the answer the prompt \
             needs {needed}, but the server's context holds {context} ({} at {}). Start the server \
             with a longer context, or ask about a smaller part (--strategy rag or compress).",
            server.info.kind.name(),
            server.info.url
        );
    }
    let completion = server.complete(
        &CompletionRequest {
            prompt: &prompt,
            options: &options.generate,
        },
        on_text,
    )?;
    if let Some(counted) = completion.prompt_tokens.filter(|&n| n != prompt.len()) {
        log::warn!(
            "the server counted {counted} prompt tokens where folio sent {}: its tokens or \
             template may differ from the local tokenizer's",
            prompt.len()
        );
    }
    let answer = completion.text.trim().to_string();
    let generated_tokens = match completion.completion_tokens {
        Some(n) => n,
        None => model.tokenizer.encode_text(&completion.text)?.len(),
    };
    let grounding = if options.ground
        && !crate::ask::says_not_found(&answer)
        && completion.stop_reason != StopReason::Cancelled
    {
        Some(ground_remote(
            server,
            model,
            (text, quotable),
            (question, &answer),
        )?)
    } else {
        None
    };
    let trained = model.config.trained_positions();
    let prefill = completion.first_text_seconds;
    let decode = (completion.total_seconds - prefill).max(0.0);
    Ok(AnswerReport {
        model: server.info.model.clone(),
        document_id: id.to_string(),
        document_bytes: text.len(),
        document_tokens,
        prompt_tokens: prompt.len(),
        question: question.to_string(),
        answer,
        generated_tokens,
        stop_reason: completion.stop_reason,
        read: ReadStats {
            device: "server",
            attention: "server-side",
            attended_fraction: f64::NAN,
            rope_scaling: RopeScaling::None,
            kv_dtype: "server-side",
            kv_cache_bytes: 0,
            eviction: None,
            server: Some(server.info.clone()),
        },
        device_note: ignored_settings(model, options),
        beyond_trained_range: false,
        trained_context: server.info.context.unwrap_or(trained),
        seconds: StageTimes {
            tokenize,
            prefill,
            decode,
        },
        prefill_tok_per_s: prompt.len() as f64 / prefill.max(1e-9),
        decode_tok_per_s: generated_tokens.saturating_sub(1) as f64 / decode.max(1e-9),
        grounding,
        prefix: None,
    })
}

/// The settings of folio's own forward pass a read asked for but a server
/// does not take (it reads with its own kernels and cache), in words.
fn ignored_settings(model: &Model, options: &AnswerOptions) -> Option<String> {
    let asked = &options.session;
    let default = crate::llm::SessionOptions::for_model(model);
    let mut ignored = Vec::new();
    if asked.attention.name() != default.attention.name() {
        ignored.push("--attention");
    }
    if asked.rope_scaling != default.rope_scaling {
        ignored.push("--rope");
    }
    if asked.kv_dtype != default.kv_dtype {
        ignored.push("--kv");
    }
    if asked.eviction.is_some() {
        ignored.push("--kv-evict");
    }
    (!ignored.is_empty()).then(|| {
        format!(
            "{} set folio's own forward pass; the server read with its own settings",
            ignored.join(", ")
        )
    })
}

/// The quote (the closest sentence by word overlap) and the server model's
/// answerability of it.
fn ground_remote(
    server: &RemoteServer,
    model: &Model,
    (text, quotable): (&str, &[Span]),
    (question, answer): (&str, &str),
) -> Result<Grounding> {
    let t = Instant::now();
    let best = crate::ask::quote_candidates(text, quotable, question, answer, QUOTE_CANDIDATES)
        .into_iter()
        .next();
    let quote = best.map(|s| (s.start, s.end));
    let quote_text = quote.map_or("", |(a, b)| &text[a..b]).to_string();
    let answerability = match quote {
        Some(_) => {
            let check = model
                .chat
                .render(&model.tokenizer, &support_check(&quote_text, question))?;
            yes_share(&server.first_token_logprobs(&check, CHECK_TOP)?)
        }
        None => 0.0,
    };
    Ok(Grounding {
        quote,
        quote_text,
        answerability,
        answer_logprob: f64::NAN,
        seconds: t.elapsed().as_secs_f64(),
        quote_by_overlap: true,
    })
}

/// P(yes) / (P(yes) + P(no)) over the first token's top log-probabilities,
/// every spelling counted (`yes`, ` Yes`, `YES`…), as the in-process check
/// does over the whole vocabulary; 0.5 when neither is among them.
pub fn yes_share(top: &[(String, f64)]) -> f64 {
    let mass = |word: &str| -> f64 {
        top.iter()
            .filter(|(t, _)| t.trim().eq_ignore_ascii_case(word))
            .map(|(_, lp)| lp.exp())
            .sum()
    };
    let (y, n) = (mass("yes"), mass("no"));
    if y + n > 0.0 {
        y / (y + n)
    } else {
        0.5
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yes_share_counts_every_spelling() {
        let top = |v: &[(&str, f64)]| -> Vec<(String, f64)> {
            v.iter().map(|(t, l)| (t.to_string(), *l)).collect()
        };
        let p = yes_share(&top(&[
            ("Yes", (0.6f64).ln()),
            (" yes", (0.1f64).ln()),
            ("No", (0.3f64).ln()),
            ("Maybe", -1.0),
        ]));
        assert!((p - 0.7).abs() < 1e-12, "{p}");
        assert_eq!(yes_share(&top(&[("The", -0.1)])), 0.5);
        assert_eq!(yes_share(&top(&[(" NO", -0.1)])), 0.0);
    }
}
