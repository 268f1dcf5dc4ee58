//! A GGUF's own chat template (`tokenizer.chat_template`, Jinja), for the
//! models that do not speak ChatML (Llama 2 and 3, Mistral, Phi-3, Gemma).
//!
//! The template is rendered with a marker in place of each message's text;
//! the template's own text between markers is tokenized with its control
//! tokens read (`<s>`, `[INST]` where special, `<|eot_id|>`), and each
//! message's text with [`TextTokenizer::encode_text`]. So a document that
//! contains `</s>` or `<|eot_id|>` stays those characters, as in ChatML
//! prompts, which llama.cpp's render-then-tokenize does not guarantee.

use anyhow::{anyhow, bail, Result};
use minijinja::{context, Environment, Error, ErrorKind, Value};

use super::chat::ChatMessage;
use super::tokenizer::TextTokenizer;

/// Marks the place of message `i` in the rendered template: private-use
/// characters no template writes.
const OPEN: char = '\u{F8F0}';
const CLOSE: char = '\u{F8F1}';

/// Renders `messages` through the Jinja `source`, then an open assistant
/// turn (`add_generation_prompt`), into token ids.
pub(crate) fn render(
    source: &str,
    tokenizer: &TextTokenizer,
    messages: &[ChatMessage],
) -> Result<Vec<u32>> {
    let mut env = Environment::new();
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function("raise_exception", |msg: String| -> Result<Value, Error> {
        Err(Error::new(ErrorKind::InvalidOperation, msg))
    });
    env.add_template("chat", source)
        .map_err(|e| anyhow!("the model's chat template does not parse: {e}"))?;
    let marked: Vec<Value> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            Value::from(std::collections::BTreeMap::from([
                ("role", Value::from(m.role.as_str())),
                ("content", Value::from(format!("{OPEN}{i}{CLOSE}"))),
            ]))
        })
        .collect();
    let token = |id: Option<u32>| {
        id.and_then(|i| tokenizer.token(i))
            .unwrap_or_default()
            .to_string()
    };
    let rendered = env
        .get_template("chat")
        .and_then(|t| {
            t.render(context! {
                messages => marked,
                add_generation_prompt => true,
                // Qwen3's templates: answer directly, no <think> block.
                enable_thinking => false,
                bos_token => token(tokenizer.bos_id),
                eos_token => token(tokenizer.eos_id),
            })
        })
        .map_err(|e| anyhow!("the model's chat template failed: {e}"))?;
    // Pieces in order: the template's text, then a message, and so on. A
    // space that ends the template's text before a message goes with the
    // message (" What" is one token, "▁What" in SentencePiece), as if the
    // prompt had been tokenized whole.
    let mut ids = Vec::new();
    let mut rest = rendered.as_str();
    let mut used = vec![false; messages.len()];
    let mut first = true;
    while let Some(open) = rest.find(OPEN) {
        let template = &rest[..open];
        let kept = template.trim_end_matches(' ');
        if !kept.is_empty() {
            ids.extend(tokenizer.encode_template(kept, first)?);
            first = false;
        }
        let spaces = &template[kept.len()..];
        let after = &rest[open + OPEN.len_utf8()..];
        let close = after
            .find(CLOSE)
            .ok_or_else(|| anyhow!("the chat template cut a message apart"))?;
        let i: usize = after[..close]
            .parse()
            .map_err(|_| anyhow!("the chat template changed a message"))?;
        let m = messages
            .get(i)
            .ok_or_else(|| anyhow!("the chat template invented a message"))?;
        let text = format!("{spaces}{}", m.content);
        if first {
            ids.extend(tokenizer.encode_text(&text)?);
        } else {
            ids.extend(tokenizer.encode_text_continued(&text)?);
        }
        first = false;
        used[i] = true;
        rest = &after[close + CLOSE.len_utf8()..];
    }
    if !rest.is_empty() {
        ids.extend(tokenizer.encode_template(rest, first)?);
    }
    if let Some(i) = used.iter().position(|u| !u) {
        bail!(
            "the model's chat template dropped the {} message",
            messages[i].role.as_str()
        );
    }
    Ok(ids)
}
