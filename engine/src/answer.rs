//! Reading a whole document and answering a question about it: the
//! full-context path every other strategy is compared with.

use std::time::Instant;

use anyhow::{bail, Result};
use folio_corpora::{Document, Span};
use serde::Serialize;

use crate::device::Placement;
use crate::grounding::{ground, Grounding};
use crate::llm::{
    document_qa, generate, Decoder, GenerateOptions, Model, ReadStats, RopeScaling, SessionOptions,
    StopReason,
};
use crate::prefix_cache::{read_document_prefix, PrefixCache, PrefixReport, PrefixStep};

/// Seconds spent in each stage of one answer.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StageTimes {
    /// Tokenizing the document and rendering the chat prompt.
    pub tokenize: f64,
    /// Reading the prompt into the model (the first token's logits included).
    pub prefill: f64,
    /// Generating the answer after the first token.
    pub decode: f64,
}

/// An answer with what was read to produce it.
#[derive(Debug, Clone, Serialize)]
pub struct AnswerReport {
    /// The model's name (the GGUF's `general.name`).
    pub model: String,
    /// The id of the document read (or of the assembled context).
    pub document_id: String,
    /// Bytes of the text read.
    pub document_bytes: usize,
    /// Tokens of the document text alone.
    pub document_tokens: usize,
    /// Tokens sent to the model (document, question, instructions, template).
    pub prompt_tokens: usize,
    /// The question as asked.
    pub question: String,
    /// The model's answer, trimmed.
    pub answer: String,
    /// Tokens generated, the stop token excluded.
    pub generated_tokens: usize,
    /// Why generation ended.
    pub stop_reason: StopReason,
    /// Device, attention mode, keys attended, RoPE scaling, KV cache.
    #[serde(flatten)]
    pub read: ReadStats,
    /// Why the read did not run on the device that was asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_note: Option<String>,
    /// The prompt and answer run past the positions the model was trained on.
    pub beyond_trained_range: bool,
    /// Positions the model was trained on.
    pub trained_context: usize,
    /// Seconds per stage.
    pub seconds: StageTimes,
    /// Prompt tokens per second of prefill.
    pub prefill_tok_per_s: f64,
    /// Generated tokens per second after the first.
    pub decode_tok_per_s: f64,
    /// The quote and answerability check, when asked for and the answer
    /// is one (not a refusal, not cancelled).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grounding: Option<Grounding>,
    /// What the prefix cache reused or saved, when the read used one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<PrefixReport>,
}

/// Options of a full-context answer.
#[derive(Clone, Default)]
pub struct AnswerOptions {
    /// Answer length, sampling, stop tokens and cancellation.
    pub generate: GenerateOptions,
    /// Attention, RoPE scaling, KV dtype and chunking of the forward pass.
    pub session: SessionOptions,
    /// Where the model runs (the CPU by default): a GPU placement runs the
    /// read there when it can honour `session`, else on the CPU, saying why.
    pub device: Placement,
    /// After the answer, copy a supporting quote and score answerability
    /// ([`Grounding`]).
    pub ground: bool,
    /// Reuse the document's prompt prefix from here when it was read
    /// before, and save it for the next question (full reads).
    pub prefix_cache: Option<std::sync::Arc<PrefixCache>>,
}

/// Reads all of `document` and answers `question`, streaming the answer's text
/// to `on_text`. Fails, before any compute, when the prompt cannot fit the
/// model's trained context stretched by the chosen RoPE scaling.
pub fn answer_from_document(
    model: &Model,
    document: &Document,
    question: &str,
    options: &AnswerOptions,
    on_text: &mut dyn FnMut(&str),
) -> Result<AnswerReport> {
    answer_from_text(
        model,
        &document.id,
        &document.text,
        question,
        options,
        on_text,
    )
}

/// [`answer_from_document`] over a context that is not one document (the
/// passages a strategy assembled), named `id` in reports and errors.
pub fn answer_from_text(
    model: &Model,
    id: &str,
    text: &str,
    question: &str,
    options: &AnswerOptions,
    on_text: &mut dyn FnMut(&str),
) -> Result<AnswerReport> {
    let whole = [Span {
        start: 0,
        end: text.len(),
    }];
    answer_from_context(model, id, (text, &whole), question, options, on_text)
}

/// [`answer_from_text`] where only the `quotable` byte ranges of `text`
/// (its document runs, not the headers between them) may be quoted.
pub fn answer_from_context(
    model: &Model,
    id: &str,
    (text, quotable): (&str, &[Span]),
    question: &str,
    options: &AnswerOptions,
    on_text: &mut dyn FnMut(&str),
) -> Result<AnswerReport> {
    if let Some(server) = options.device.server() {
        return crate::remote::answer_remote(
            server,
            model,
            id,
            (text, quotable),
            question,
            options,
            on_text,
        );
    }
    let t0 = Instant::now();
    let document_tokens = model.tokenizer.encode_text(text)?.len();
    let prompt = model
        .chat
        .render(&model.tokenizer, &document_qa(text, question))?;
    let tokenize = t0.elapsed().as_secs_f64();
    let trained = model.config.trained_positions();
    let scaling = options.session.rope_scaling;
    scaling.validate()?;
    let limit = scaling.covered_context(trained);
    let needed = prompt.len() + options.generate.max_new_tokens;
    if needed > limit {
        let factor = needed.div_ceil(trained);
        let hint = if scaling == RopeScaling::None {
            format!(
                "run it beyond the trained range with `--rope yarn --rope-factor {factor}` \
                 (positional range only: the model was never trained on such lengths), or "
            )
        } else {
            format!("raise --rope-factor to {factor}, or ")
        };
        bail!(
            "'{}' is {} tokens; with the question and room for the answer the prompt needs {needed}, \
             but {} reads at most {limit} tokens with RoPE scaling '{}'. To read it whole, {hint}\
             ask about a smaller part of the document.",
            id,
            document_tokens,
            model.config.name,
            scaling.name(),
        );
    }
    let (mut decoder, device_note) = options.device.decoder(model, &options.session)?;
    let prefix = if options.generate.cancelled() {
        PrefixStep::default()
    } else {
        read_document_prefix(
            options.prefix_cache.as_deref(),
            (id, text),
            (&prompt, needed),
            decoder.as_mut(),
            &options.session,
        )?
    };
    let mut generation = generate(
        decoder.as_mut(),
        &prompt[prefix.start..],
        &options.generate,
        limit,
        on_text,
    )?;
    // The prefill covers the whole prompt but what was restored.
    generation.prefill_seconds += prefix.prefill_seconds;
    generation.prompt_tokens = prompt.len() - prefix.reused_tokens();
    let read = decoder.read_stats();
    let beyond_trained_range = decoder.position() > trained;
    let answer = generation.text.trim().to_string();
    // The read's cache is whole until the answerability check resets it:
    // the prefix is kept in memory from it then (or now, without a check).
    let mut kept = false;
    let mut keep = |d: &mut dyn Decoder<'_>| {
        if let (Some(cache), false) = (&options.prefix_cache, kept) {
            prefix.keep_in_memory(cache, d);
        }
        kept = true;
    };
    let grounding = if options.ground
        && !crate::ask::says_not_found(&answer)
        && generation.stop_reason != StopReason::Cancelled
    {
        Some(ground(
            decoder.as_mut(),
            (&prompt, &generation),
            (text, quotable),
            (question, &answer),
            limit,
            &mut keep,
        )?)
    } else {
        None
    };
    keep(decoder.as_mut());
    Ok(AnswerReport {
        model: model.config.name.clone(),
        document_id: id.to_string(),
        document_bytes: text.len(),
        document_tokens,
        prompt_tokens: prompt.len(),
        question: question.to_string(),
        answer,
        generated_tokens: generation.tokens.len(),
        stop_reason: generation.stop_reason,
        read,
        device_note,
        beyond_trained_range,
        trained_context: trained,
        seconds: StageTimes {
            tokenize,
            prefill: generation.prefill_seconds,
            decode: generation.decode_seconds,
        },
        prefill_tok_per_s: generation.prefill_tok_per_s(),
        decode_tok_per_s: generation.decode_tok_per_s(),
        grounding,
        prefix: prefix.report,
    })
}
