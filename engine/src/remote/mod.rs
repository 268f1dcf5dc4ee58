//! Answering through an OpenAI-compatible serving engine (vLLM, SGLang,
//! llama.cpp's server) instead of folio's own forward pass, for models and
//! documents that outgrow this machine.
//!
//! folio still renders the prompt itself, with the served model's tokenizer
//! and chat template from a local GGUF (`--tokenizer`, or the `--model` id
//! when it names one folio has), and sends token ids to `/v1/completions`:
//! the server never parses the document's text, so a chat control token
//! written in a document stays plain text, and folio's token counts are the
//! server's (checked against its `/tokenize` when it has one).
//!
//! Invariant: what the server does not report is never made up. The read's
//! attention kernel, RoPE scaling and KV cache are the server's own and
//! shown as such; its context length is what `/props` (llama.cpp) or
//! `/v1/models` (vLLM's `max_model_len`) says, or unknown.

mod complete;
mod http;
pub mod rates;
mod read;
pub mod sse;

use std::time::Duration;

use anyhow::{bail, Result};
use serde::Serialize;
use serde_json::{json, Value};

pub use complete::{Completion, CompletionRequest};
pub use http::{server_message, Http};
pub use read::answer_remote;

use crate::llm::Model;

/// Where the server is and how to talk to it.
#[derive(Debug, Clone)]
pub struct RemoteConfig {
    /// `http(s)://host:port`, with or without `/v1`.
    pub base_url: String,
    /// The served model's name (what `/v1/models` lists).
    pub model: String,
    /// Sent as a bearer token (from `FOLIO_API_KEY`; never printed).
    pub api_key: Option<String>,
    /// Longest silence of the server: connecting, waiting for the first
    /// byte of an answer, between two streamed events.
    pub timeout: Duration,
}

/// What kind of server answers (what it reports differs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerKind {
    /// llama.cpp's `llama-server` (it has `/props`).
    LlamaCpp,
    /// vLLM (its `/v1/models` carries `max_model_len`).
    Vllm,
    /// Another OpenAI-compatible server.
    OpenAi,
}

impl ServerKind {
    /// The kind in words, for cards.
    pub fn name(self) -> &'static str {
        match self {
            ServerKind::LlamaCpp => "llama.cpp",
            ServerKind::Vllm => "vLLM",
            ServerKind::OpenAi => "OpenAI-compatible",
        }
    }
}

/// What the server told folio about itself when it connected.
#[derive(Debug, Clone, Serialize)]
pub struct ServerInfo {
    /// The address (without `/v1`).
    pub url: String,
    /// The served model folio asks for.
    pub model: String,
    /// Which server it is.
    pub kind: ServerKind,
    /// Tokens the server's context holds per request (`None`: it does not
    /// say).
    pub context: Option<usize>,
    /// Whether the server's `/tokenize` split a probe text exactly as the
    /// local tokenizer does (`None`: it has no `/tokenize`).
    pub tokenizer_checked: Option<bool>,
    /// The read's fields the server decides and does not report (their
    /// values in a remote read's record are placeholders: "server-side",
    /// null, 0).
    pub server_side: Vec<&'static str>,
}

/// [`ServerInfo::server_side`]: what a remote read cannot know.
const SERVER_SIDE: [&str; 5] = [
    "attention",
    "attended_fraction",
    "rope_scaling",
    "kv_dtype",
    "kv_cache_bytes",
];

/// A connected server: its address, what it reported, the HTTP client.
#[derive(Debug)]
pub struct RemoteServer {
    http: Http,
    /// What the server reported when folio connected.
    pub info: ServerInfo,
    /// Its measured speed ([`rates`]), which the router prices reads with.
    pub rates: Option<crate::router::ServedRates>,
}

/// Text whose tokens differ between tokenizers that are not the same:
/// words, digits, punctuation, accents, spaces.
const TOKENIZER_PROBE: &str = "folio checks the tokenizer: Grüße, 12345 tokens — naïve café!\n  ok";

impl RemoteServer {
    /// Connects: checks the server answers and serves `config.model`, reads
    /// its context length, and checks its tokenizer against `tokenizer`'s
    /// (the local GGUF whose template renders the prompts). Each failure is
    /// an error that says what to do.
    pub fn connect(config: &RemoteConfig, tokenizer: &Model) -> Result<Self> {
        let http = Http::new(&config.base_url, config.api_key.clone(), config.timeout)?;
        if http.key_in_clear() {
            log::warn!(
                "FOLIO_API_KEY goes to {} over plain http, readable on the network: use https",
                http.base()
            );
        }
        let models = http.get_json("/v1/models")?.ok_or_else(|| {
            anyhow::anyhow!(
                "{} has no /v1/models: is it an OpenAI-compatible server (vLLM, SGLang, llama.cpp's llama-server)?",
                http.base()
            )
        })?;
        let served: Vec<&Value> = models
            .get("data")
            .and_then(Value::as_array)
            .map(|d| d.iter().collect())
            .unwrap_or_default();
        let ids: Vec<&str> = served
            .iter()
            .filter_map(|m| m.get("id").and_then(Value::as_str))
            .collect();
        let Some(entry) = served
            .iter()
            .find(|m| m.get("id").and_then(Value::as_str) == Some(&config.model))
        else {
            bail!(
                "the server at {} does not serve a model named '{}'; it serves: {}. Pass one of them with --model",
                http.base(),
                config.model,
                if ids.is_empty() { "(none listed)".to_string() } else { ids.join(", ") }
            );
        };
        let max_model_len = entry
            .get("max_model_len")
            .and_then(Value::as_u64)
            .map(|n| n as usize);
        let props = match max_model_len {
            Some(_) => None,
            None => http.get_json("/props").ok().flatten(),
        };
        let (kind, context) = match (max_model_len, &props) {
            (Some(n), _) => (ServerKind::Vllm, Some(n)),
            (None, Some(p)) => (
                ServerKind::LlamaCpp,
                p.pointer("/default_generation_settings/n_ctx")
                    .or_else(|| p.get("n_ctx"))
                    .and_then(Value::as_u64)
                    .map(|n| n as usize),
            ),
            (None, None) => (ServerKind::OpenAi, None),
        };
        let mut server = Self {
            rates: None,
            http,
            info: ServerInfo {
                url: String::new(),
                model: config.model.clone(),
                kind,
                context,
                tokenizer_checked: None,
                server_side: SERVER_SIDE.to_vec(),
            },
        };
        server.info.url = server.http.base().to_string();
        server.info.tokenizer_checked = server.check_tokenizer(tokenizer)?;
        Ok(server)
    }

    /// The server's token ids of `text` (no special tokens added, none
    /// parsed), from its `/tokenize`; `None` when it has none.
    pub fn tokenize(&self, text: &str) -> Result<Option<Vec<u32>>> {
        let body = match self.info.kind {
            ServerKind::LlamaCpp => {
                json!({"content": text, "add_special": false, "parse_special": false})
            }
            _ => json!({"model": self.info.model, "prompt": text, "add_special_tokens": false}),
        };
        let Some(answer) = self.http.post_json("/tokenize", &body)? else {
            return Ok(None);
        };
        let tokens = answer
            .get("tokens")
            .and_then(Value::as_array)
            .ok_or_else(|| anyhow::anyhow!("/tokenize answered without tokens: {answer}"))?;
        Ok(Some(
            tokens
                .iter()
                .filter_map(|t| t.as_u64().or_else(|| t.get("id").and_then(Value::as_u64)))
                .map(|t| t as u32)
                .collect(),
        ))
    }

    /// Whether the server splits [`TOKENIZER_PROBE`] as `model` does; an
    /// error when it does not (the prompts folio renders would be wrong).
    fn check_tokenizer(&self, model: &Model) -> Result<Option<bool>> {
        let Ok(Some(theirs)) = self.tokenize(TOKENIZER_PROBE) else {
            return Ok(None);
        };
        let ours = model.tokenizer.encode_text(TOKENIZER_PROBE)?;
        if theirs != ours {
            bail!(
                "the server's model '{}' does not tokenize text as the local tokenizer '{}' does \
                 (a probe text gave {} tokens there, {} here): name the served model's GGUF with --tokenizer",
                self.info.model,
                model.config.name,
                theirs.len(),
                ours.len()
            );
        }
        Ok(Some(true))
    }

    /// The HTTP client (for the completion calls).
    pub(crate) fn http(&self) -> &Http {
        &self.http
    }
}
