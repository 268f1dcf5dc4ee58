//! Chat templates: how a conversation becomes token ids.
//!
//! ChatML models (Qwen, SmolLM) get their turns built here by id; any other
//! model gets the Jinja template its GGUF carries ([`super::chat_jinja`]).
//! Either way every piece of message text goes through
//! [`TextTokenizer::encode_text`], so nothing a user or a document writes can
//! open or close a turn.

use anyhow::{Context, Result};
use serde::Serialize;

use super::config::Arch;
use super::tokenizer::TextTokenizer;

/// Who speaks in a chat turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions before the conversation (the template's default when none is given).
    System,
    /// The person asking (folio sends the document and the question as one user turn).
    User,
    /// The model's own turn: what it generates.
    Assistant,
}

impl Role {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// One turn of a conversation.
#[derive(Debug, Clone, Serialize)]
pub struct ChatMessage {
    /// Who speaks.
    pub role: Role,
    /// What is said, untemplated.
    pub content: String,
}

impl ChatMessage {
    /// A turn of `role` saying `content`.
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
        }
    }
}

/// A model's chat template: how turns are delimited, its default system
/// prompt (ChatML) and the tokens that end an answer.
#[derive(Debug, Clone)]
pub struct ChatTemplate {
    turns: Turns,
    /// Used when a conversation has no system turn (as the models' own templates do).
    pub default_system: &'static str,
    /// Generation stops at any of these.
    pub stop_tokens: Vec<u32>,
}

#[derive(Debug, Clone)]
enum Turns {
    ChatMl {
        im_start: u32,
        im_end: u32,
    },
    /// The GGUF's Jinja source.
    Jinja(String),
}

/// Tokens that end a turn in the templates of the common families.
const END_OF_TURN: &[&str] = &["<|eot_id|>", "<|end|>", "<end_of_turn>", "<|im_end|>"];

impl ChatTemplate {
    /// The template of a loaded model: ChatML when its vocabulary has the
    /// ChatML markers, else the Jinja template in its GGUF.
    pub fn for_model(arch: Arch, tokenizer: &TextTokenizer) -> Result<Self> {
        // The pinned models' ChatML is rendered by hand; any newer family
        // (Qwen3's thinking switch, Phi-3, Gemma 2) by its own template.
        let chatml = matches!(arch, Arch::Llama | Arch::Qwen2) || tokenizer.chat_template.is_none();
        let im_start = tokenizer.token_id("<|im_start|>").filter(|_| chatml);
        let Some(im_start) = im_start else {
            let source = tokenizer.chat_template.clone().context(
                "the model is not ChatML and its GGUF has no chat template \
                 (tokenizer.chat_template): folio cannot tell how to prompt it",
            )?;
            let mut stop_tokens: Vec<u32> = tokenizer.eos_id.into_iter().collect();
            for t in END_OF_TURN {
                stop_tokens.extend(
                    tokenizer
                        .token_id(t)
                        .filter(|id| tokenizer.is_special(*id) && !stop_tokens.contains(id)),
                );
            }
            return Ok(Self {
                turns: Turns::Jinja(source),
                default_system: "",
                stop_tokens,
            });
        };
        let im_end = tokenizer
            .token_id("<|im_end|>")
            .context("vocabulary has no <|im_end|>")?;
        let mut stop_tokens = vec![im_end];
        stop_tokens.extend(tokenizer.eos_id.filter(|id| *id != im_end));
        stop_tokens.extend(
            tokenizer
                .token_id("<|endoftext|>")
                .filter(|id| !stop_tokens.contains(id)),
        );
        let default_system = match arch {
            Arch::Qwen2 => "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.",
            Arch::Llama => "You are a helpful AI assistant named SmolLM, trained by Hugging Face",
            Arch::Qwen3 | Arch::Phi3 | Arch::Gemma2 => "",
        };
        Ok(Self {
            turns: Turns::ChatMl { im_start, im_end },
            default_system,
            stop_tokens,
        })
    }

    /// Token ids of the conversation followed by an open assistant turn.
    pub fn render(&self, tokenizer: &TextTokenizer, messages: &[ChatMessage]) -> Result<Vec<u32>> {
        let (im_start, im_end) = match &self.turns {
            Turns::ChatMl { im_start, im_end } => (*im_start, *im_end),
            Turns::Jinja(source) => return super::chat_jinja::render(source, tokenizer, messages),
        };
        let mut ids = Vec::new();
        let has_system = messages.first().is_some_and(|m| m.role == Role::System);
        let system = ChatMessage::new(Role::System, self.default_system);
        let turns = (!has_system).then_some(&system).into_iter().chain(messages);
        for m in turns {
            ids.push(im_start);
            ids.extend(tokenizer.encode_text(&format!("{}\n{}", m.role.as_str(), m.content))?);
            ids.push(im_end);
            ids.extend(tokenizer.encode_text("\n")?);
        }
        ids.push(im_start);
        ids.extend(tokenizer.encode_text("assistant\n")?);
        Ok(ids)
    }

    /// The ids that delimit turns, which document text must never produce
    /// (ChatML's start and end; a Jinja template's turn ends).
    pub fn control_ids(&self) -> Vec<u32> {
        match &self.turns {
            Turns::ChatMl { im_start, im_end } => vec![*im_start, *im_end],
            Turns::Jinja(_) => self.stop_tokens.clone(),
        }
    }
}

/// The conversation folio sends to answer a question from a document.
pub fn document_qa(document: &str, question: &str) -> Vec<ChatMessage> {
    vec![ChatMessage::new(
        Role::User,
        format!(
            "Read the document and answer the question using only the document. \
             Answer in one short sentence. If the document does not contain the answer, say so.\n\n\
             Document:\n{document}\n\nQuestion: {question}"
        ),
    )]
}

/// What follows an answer, in the model's own turn, so that it quotes the
/// text it read (the quote itself is copy-constrained).
pub const QUOTE_LEAD_IN: &str = "\n\nThe sentence of the document that states this: \"";

/// The conversation that asks the model whether `quote` (the passage it
/// quoted for its answer) answers `question` itself: its probability of
/// "yes" is the answer's answerability. Of the wordings measured on SQuAD
/// v2 (BENCHMARKS.md, "Answerability"), asking about the exact question
/// without the proposed answer separated right answers from the rest best.
pub fn support_check(quote: &str, question: &str) -> Vec<ChatMessage> {
    vec![ChatMessage::new(
        Role::User,
        format!(
            "Text: \"{quote}\"\n\nQuestion: {question}\n\n\
             Does the text answer this exact question? Reply with yes or no."
        ),
    )]
}
