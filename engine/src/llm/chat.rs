//! Chat templates: how a conversation becomes token ids.
//!
//! Both supported families use ChatML. Control tokens are inserted by id and
//! every piece of text goes through [`TextTokenizer::encode_text`], so nothing a
//! user or a document writes can open or close a turn.

use anyhow::{Context, Result};
use serde::Serialize;

use super::config::{Arch, ModelConfig};
use super::tokenizer::TextTokenizer;

/// Who speaks in a chat turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    fn as_str(self) -> &'static str {
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
    pub role: Role,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
        }
    }
}

/// A model's ChatML template: its turn delimiters, default system prompt and
/// the tokens that end an answer.
#[derive(Debug, Clone)]
pub struct ChatTemplate {
    im_start: u32,
    im_end: u32,
    /// Used when a conversation has no system turn (as the models' own templates do).
    pub default_system: &'static str,
    /// Generation stops at any of these.
    pub stop_tokens: Vec<u32>,
}

impl ChatTemplate {
    /// The template of a loaded model (both families use ChatML).
    pub fn for_model(config: &ModelConfig, tokenizer: &TextTokenizer) -> Result<Self> {
        let im_start = tokenizer
            .token_id("<|im_start|>")
            .context("vocabulary has no <|im_start|>: not a ChatML model")?;
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
        let default_system = match config.arch {
            Arch::Qwen2 => "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.",
            Arch::Llama => "You are a helpful AI assistant named SmolLM, trained by Hugging Face",
        };
        Ok(Self {
            im_start,
            im_end,
            default_system,
            stop_tokens,
        })
    }

    /// Token ids of the conversation followed by an open assistant turn.
    pub fn render(&self, tokenizer: &TextTokenizer, messages: &[ChatMessage]) -> Result<Vec<u32>> {
        let mut ids = Vec::new();
        let has_system = messages.first().is_some_and(|m| m.role == Role::System);
        let system = ChatMessage::new(Role::System, self.default_system);
        let turns = (!has_system).then_some(&system).into_iter().chain(messages);
        for m in turns {
            ids.push(self.im_start);
            ids.extend(tokenizer.encode_text(&format!("{}\n{}", m.role.as_str(), m.content))?);
            ids.push(self.im_end);
            ids.extend(tokenizer.encode_text("\n")?);
        }
        ids.push(self.im_start);
        ids.extend(tokenizer.encode_text("assistant\n")?);
        Ok(ids)
    }

    /// The ids that delimit turns, which document text must never produce.
    pub fn control_ids(&self) -> [u32; 2] {
        [self.im_start, self.im_end]
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
