//! A `tokenizers` tokenizer rebuilt from GGUF metadata.
//!
//! None of folio's GGUF files ships a tokenizer.json, so the byte-level BPE is
//! assembled from `tokenizer.ggml.{tokens,merges,token_type,pre}`, and a
//! SentencePiece vocabulary (`tokenizer.ggml.model = llama`) from its pieces
//! and scores ([`super::spm`]). Both are checked against llama.cpp's own
//! tokenizer test cases (`engine/tests/tokenizer.rs`).
//!
//! Invariant: [`TextTokenizer::encode_text`] never yields a control token.
//! Documents and questions are text, so a document that contains
//! `<|im_start|>` is read as the characters `<`, `|`, `im`, … and cannot open a
//! new chat turn. Control tokens enter a prompt only through
//! [`crate::llm::chat`], by id.

use std::collections::HashSet;
use std::sync::OnceLock;

use anyhow::{anyhow, bail, Context, Result};
use candle_core::quantized::gguf_file::{Content, Value};
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::normalizers::unicode::NFC;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::{AddedToken, SplitDelimiterBehavior, Tokenizer};

/// Qwen2's pre-tokenizer split (tokenizer.json of Qwen2.5), with the
/// case-insensitive contractions spelled out as classes.
const QWEN2_SPLIT: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// Llama 3's pre-tokenizer split (llama.cpp's `LLAMA3` pre-type): Qwen2's,
/// with digits in groups of up to three.
const LLAMA3_SPLIT: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// GGUF `tokenizer.ggml.token_type` values (llama.cpp's `llama_token_type`).
const TOKEN_TYPE_CONTROL: u32 = 3;
const TOKEN_TYPE_USER_DEFINED: u32 = 4;

/// The byte range in the encoded text of each token, in token order.
pub type TokenOffsets = Vec<(usize, usize)>;

/// The tokenizer of one model plus the ids of its special tokens.
pub struct TextTokenizer {
    inner: Tokenizer,
    /// `inner` without SentencePiece's space prefix, for message text that
    /// continues a prompt (`None`: no prefix to leave out).
    continued: Option<Tokenizer>,
    /// `inner` and `continued` reading control tokens in their input: only
    /// for a chat template's own text ([`Self::encode_template`]). Made on
    /// first use: ChatML models never need them, and a copy of a 150K-token
    /// vocabulary is not free.
    template_inner: OnceLock<Tokenizer>,
    continued_template: OnceLock<Tokenizer>,
    /// The GGUF's Jinja chat template (`tokenizer.chat_template`), if any.
    pub chat_template: Option<String>,
    special: HashSet<u32>,
    tokens: Vec<String>,
    /// Beginning-of-sequence id (`tokenizer.ggml.bos_token_id`), if declared.
    pub bos_id: Option<u32>,
    /// End-of-sequence id (`tokenizer.ggml.eos_token_id`), a stop token.
    pub eos_id: Option<u32>,
}

impl TextTokenizer {
    /// Builds the tokenizer from GGUF metadata; fails on non-BPE vocabularies.
    pub fn from_gguf(content: &Content) -> Result<Self> {
        let md = &content.metadata;
        let kind = str_value(md.get("tokenizer.ggml.model")).unwrap_or_default();
        if kind != "gpt2" && kind != "llama" {
            bail!(
                "unsupported tokenizer '{kind}': folio builds byte-level BPE (gpt2) and \
                 SentencePiece (llama) tokenizers"
            );
        }
        let tokens =
            string_array(md.get("tokenizer.ggml.tokens")).context("tokenizer.ggml.tokens")?;
        let types = match md.get("tokenizer.ggml.token_type") {
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| v.to_i32().map(|x| x as u32).unwrap_or(1))
                .collect(),
            _ => vec![1; tokens.len()],
        };
        if types.len() != tokens.len() {
            bail!(
                "the GGUF's tokenizer is inconsistent: {} token types for {} tokens",
                types.len(),
                tokens.len()
            );
        }
        // SentencePiece puts a space before the text; a piece that continues
        // a prompt (a message after a template's text) gets none, so a
        // second tokenizer without the prefix is kept for those.
        let (base, continued) = if kind == "llama" {
            let scores: Vec<f32> = match md.get("tokenizer.ggml.scores") {
                Some(Value::Array(a)) => a.iter().map(|v| v.to_f32().unwrap_or(0.0)).collect(),
                _ => bail!("a SentencePiece GGUF without tokenizer.ggml.scores"),
            };
            let unk = md
                .get("tokenizer.ggml.unknown_token_id")
                .and_then(|v| v.to_u32().ok())
                .and_then(|i| tokens.get(i as usize))
                .map(String::as_str);
            let space_prefix = md
                .get("tokenizer.ggml.add_space_prefix")
                .and_then(|v| v.to_bool().ok())
                .unwrap_or(true);
            let base = super::spm::tokenizer(&tokens, &scores, &types, unk, space_prefix)?;
            let continued = space_prefix
                .then(|| super::spm::tokenizer(&tokens, &scores, &types, unk, false))
                .transpose()?;
            (base, continued)
        } else {
            (byte_level_bpe(md, &tokens)?, None)
        };
        let mut special = HashSet::new();
        let mut added = Vec::new();
        for (id, ty) in types.iter().enumerate() {
            if *ty == TOKEN_TYPE_CONTROL || *ty == TOKEN_TYPE_USER_DEFINED {
                special.insert(id as u32);
                added.push(AddedToken::from(tokens[id].clone(), true));
            }
        }
        // Text must never turn into control tokens: special tokens are matched
        // as plain text by every encode call, except on a template's own text.
        let finish = |mut t: Tokenizer| -> Result<Tokenizer> {
            t.add_special_tokens(added.clone())
                .map_err(|e| anyhow!("special tokens: {e}"))?;
            t.set_encode_special_tokens(true);
            Ok(t)
        };
        let id = |key: &str| md.get(key).and_then(|v| v.to_u32().ok());
        Ok(Self {
            inner: finish(base)?,
            continued: continued.map(finish).transpose()?,
            template_inner: OnceLock::new(),
            continued_template: OnceLock::new(),
            chat_template: str_value(md.get("tokenizer.chat_template")),
            special,
            tokens,
            bos_id: id("tokenizer.ggml.bos_token_id"),
            eos_id: id("tokenizer.ggml.eos_token_id"),
        })
    }

    /// Encodes document or user text; the result never contains a special id.
    pub fn encode_text(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .inner
            .encode_fast(text, false)
            .map_err(|e| anyhow!("tokenize: {e}"))?;
        let ids = enc.get_ids().to_vec();
        debug_assert!(ids.iter().all(|id| !self.special.contains(id)));
        Ok(ids)
    }

    /// Encodes message text that continues a prompt (after a chat template's
    /// own text): as [`Self::encode_text`], without SentencePiece's leading
    /// space.
    pub(crate) fn encode_text_continued(&self, text: &str) -> Result<Vec<u32>> {
        let Some(text_tokenizer) = &self.continued else {
            return self.encode_text(text);
        };
        let ids = text_tokenizer
            .encode_fast(text, false)
            .map_err(|e| anyhow!("tokenize: {e}"))?
            .get_ids()
            .to_vec();
        debug_assert!(ids.iter().all(|id| !self.special.contains(id)));
        Ok(ids)
    }

    /// Encodes like [`Self::encode_text`] and also returns each token's byte
    /// range in `text`, so callers that score tokens (prompt compression) can
    /// map scores back to the words of the source. Ranges of byte-level
    /// tokens inside one multi-byte character cover the whole character.
    pub fn encode_with_offsets(&self, text: &str) -> Result<(Vec<u32>, TokenOffsets)> {
        let enc = self
            .inner
            .encode(text, false)
            .map_err(|e| anyhow!("tokenize: {e}"))?;
        let ids = enc.get_ids().to_vec();
        debug_assert!(ids.iter().all(|id| !self.special.contains(id)));
        Ok((ids, enc.get_offsets().to_vec()))
    }

    /// Encodes a chat template's own text (`<s>[INST]`, `<|start_header_id|>`),
    /// reading the control tokens it spells. Never call it on message or
    /// document text: that is what [`Self::encode_text`] is for.
    /// `first`: the text starts the prompt (SentencePiece puts its space
    /// before it).
    pub(crate) fn encode_template(&self, text: &str, first: bool) -> Result<Vec<u32>> {
        let reading_special = |t: &Tokenizer| {
            let mut t = t.clone();
            t.set_encode_special_tokens(false);
            t
        };
        let tokenizer = match &self.continued {
            Some(c) if !first => self.continued_template.get_or_init(|| reading_special(c)),
            _ => self
                .template_inner
                .get_or_init(|| reading_special(&self.inner)),
        };
        Ok(tokenizer
            .encode(text, false)
            .map_err(|e| anyhow!("tokenize: {e}"))?
            .get_ids()
            .to_vec())
    }

    /// Decodes ids to text, dropping special tokens.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.inner
            .decode(ids, true)
            .map_err(|e| anyhow!("detokenize: {e}"))
    }

    /// Id of a token spelled exactly as in the vocabulary (e.g. `<|im_end|>`).
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.tokens
            .iter()
            .position(|t| t == token)
            .map(|i| i as u32)
    }

    /// The vocabulary string of an id.
    pub fn token(&self, id: u32) -> Option<&str> {
        self.tokens.get(id as usize).map(String::as_str)
    }

    /// Whether `id` is a control or user-defined token.
    pub fn is_special(&self, id: u32) -> bool {
        self.special.contains(&id)
    }

    /// Tokens in the vocabulary.
    pub fn vocab_size(&self) -> usize {
        self.tokens.len()
    }
}

/// A pre-tokenizer that splits by `pattern` (the model's own regex), then
/// maps bytes to byte-level symbols without a split of its own.
fn regex_then_bytes(pattern: &str) -> Result<PreTokenizerWrapper> {
    let split = Split::new(
        SplitPattern::Regex(pattern.into()),
        SplitDelimiterBehavior::Isolated,
        false,
    )
    .map_err(|e| anyhow!("{e}"))?;
    Ok(sequence(vec![
        split.into(),
        ByteLevel::new(false, false, false).into(),
    ]))
}

fn sequence(steps: Vec<PreTokenizerWrapper>) -> PreTokenizerWrapper {
    Sequence::new(steps).into()
}

fn str_value(v: Option<&Value>) -> Option<String> {
    match v {
        Some(Value::String(s)) => Some(s.clone()),
        _ => None,
    }
}

fn string_array(v: Option<&Value>) -> Result<Vec<String>> {
    match v {
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => Ok(s.clone()),
                other => bail!("expected a string, got {other:?}"),
            })
            .collect(),
        _ => bail!("missing or not an array"),
    }
}

/// Decodes a growing list of ids into text pieces for streaming, holding back
/// bytes until they form complete UTF-8 characters.
pub struct StreamDecoder {
    ids: Vec<u32>,
    emitted: usize,
}

impl StreamDecoder {
    /// A decoder that has emitted nothing yet.
    pub fn new() -> Self {
        Self {
            ids: Vec::new(),
            emitted: 0,
        }
    }

    /// Adds one id; returns the newly completed text, if any.
    pub fn push(&mut self, tokenizer: &TextTokenizer, id: u32) -> Result<Option<String>> {
        self.ids.push(id);
        let text = tokenizer.decode(&self.ids)?;
        if text.len() <= self.emitted || text.ends_with('\u{FFFD}') {
            return Ok(None);
        }
        // Byte-level decoding of a longer prefix keeps earlier text as it was,
        // so `emitted` stays a char boundary; `get` guards it anyway.
        let piece = text.get(self.emitted..).map(str::to_string);
        self.emitted = text.len();
        Ok(piece)
    }
}

impl Default for StreamDecoder {
    fn default() -> Self {
        Self::new()
    }
}

/// The byte-level BPE (GPT-2 style) of a `gpt2` GGUF vocabulary, with the
/// pre-tokenizer its `tokenizer.ggml.pre` names.
fn byte_level_bpe(
    md: &std::collections::HashMap<String, Value>,
    tokens: &[String],
) -> Result<Tokenizer> {
    let merges = string_array(md.get("tokenizer.ggml.merges"))
        .context("tokenizer.ggml.merges")?
        .into_iter()
        .map(|m| {
            m.split_once(' ')
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .ok_or_else(|| anyhow!("bad merge '{m}'"))
        })
        .collect::<Result<Vec<_>>>()?;
    let vocab: Vocab = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), i as u32))
        .collect();
    let pre = str_value(md.get("tokenizer.ggml.pre")).unwrap_or_else(|| "default".into());
    // Llama 3 takes a whole pre-token that is in the vocabulary as it is,
    // before any merge (its tokenizer.json's `ignore_merges`; llama.cpp
    // does the same): " Việt" is one token no merge sequence reaches.
    let llama3 = matches!(pre.as_str(), "llama-bpe" | "llama3");
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .ignore_merges(llama3)
        .build()
        .map_err(|e| anyhow!("BPE: {e}"))?;
    let mut inner = Tokenizer::new(bpe);
    match pre.as_str() {
        // Qwen2/2.5/3 and the models that reuse their tokenizer.
        "qwen2" | "deepseek-r1-qwen" | "megrez" => {
            inner
                .with_normalizer(Some(NFC))
                .map_err(|e| anyhow!("{e}"))?;
            inner.with_pre_tokenizer(Some(regex_then_bytes(QWEN2_SPLIT)?));
        }
        "llama-bpe" | "llama3" => {
            inner.with_pre_tokenizer(Some(regex_then_bytes(LLAMA3_SPLIT)?));
        }
        // SmolLM: digits one by one, then GPT-2's byte-level split.
        "smollm" => {
            inner.with_pre_tokenizer(Some(sequence(vec![
                Digits::new(true).into(),
                ByteLevel::new(false, true, true).into(),
            ])));
        }
        // GPT-2's own split (also what files without the key get).
        "default" | "gpt-2" | "phi-2" => {
            inner.with_pre_tokenizer(Some(sequence(vec![
                ByteLevel::new(false, true, true).into()
            ])));
        }
        // Another split would run but cut text differently from the
        // model's training: wrong tokens, never an error. Refused instead.
        other => bail!(
            "the GGUF's tokenizer splits text the '{other}' way (tokenizer.ggml.pre), which \
             folio does not implement; it runs the gpt-2, qwen2, llama-bpe (Llama 3) and smollm \
             byte-level BPEs and SentencePiece vocabularies"
        ),
    }
    inner.with_decoder(Some(ByteLevelDecoder::default()));
    Ok(inner)
}
