//! SentencePiece BPE vocabularies (GGUF `tokenizer.ggml.model = "llama"`:
//! Llama 2, Mistral, Phi-3 and their kin) as a `tokenizers` BPE.
//!
//! A SentencePiece GGUF holds pieces and scores, no merges. llama.cpp's
//! tokenizer repeatedly joins the adjacent pair whose concatenation is a
//! piece with the highest score; a BPE whose merges are every split `a + b`
//! of every piece, ranked by that piece's score, makes the same choices
//! (Hugging Face converts SentencePiece models the same way). Spaces become
//! `▁`, one is put before the text, and characters no piece covers fall back
//! to their UTF-8 bytes (`<0x41>`).

use anyhow::{anyhow, Result};
use tokenizers::decoders::byte_fallback::ByteFallback;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::decoders::sequence::Sequence as DecoderSequence;
use tokenizers::decoders::strip::Strip;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::normalizers::{Prepend, Replace, Sequence as NormalizerSequence};
use tokenizers::Tokenizer;

/// SentencePiece's word-boundary mark, standing for a space.
const SPACE: &str = "\u{2581}";

/// GGUF token types a merge may produce (normal pieces; not control,
/// unknown or byte tokens).
const NORMAL: u32 = 1;

/// The tokenizer of a SentencePiece vocabulary: `tokens` with their
/// `scores` and GGUF `types`; `unk` names the unknown piece.
pub(crate) fn tokenizer(
    tokens: &[String],
    scores: &[f32],
    types: &[u32],
    unk: Option<&str>,
    space_prefix: bool,
) -> Result<Tokenizer> {
    let vocab: Vocab = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), i as u32))
        .collect();
    let merges = merges_by_score(tokens, scores, types, &vocab);
    let mut builder = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .byte_fallback(true)
        .fuse_unk(true);
    if let Some(unk) = unk {
        builder = builder.unk_token(unk.to_string());
    }
    let bpe = builder
        .build()
        .map_err(|e| anyhow!("SentencePiece BPE: {e}"))?;
    let mut inner = Tokenizer::new(bpe);
    let replace = Replace::new(" ", SPACE).map_err(|e| anyhow!("{e}"))?;
    let normalizer = if space_prefix {
        NormalizerSequence::new(vec![Prepend::new(SPACE.into()).into(), replace.into()])
    } else {
        NormalizerSequence::new(vec![replace.into()])
    };
    inner
        .with_normalizer(Some(normalizer))
        .map_err(|e| anyhow!("{e}"))?;
    let back = tokenizers::decoders::DecoderWrapper::Replace(
        Replace::new(SPACE, " ").map_err(|e| anyhow!("{e}"))?,
    );
    inner.with_decoder(Some(DecoderSequence::new(vec![
        back,
        ByteFallback::new().into(),
        Fuse::new().into(),
        Strip::new(' ', usize::from(space_prefix), 0).into(),
    ])));
    Ok(inner)
}

/// Every split of every normal piece into two pieces, ordered by the
/// piece's score (highest first, then by id for a stable order).
fn merges_by_score(
    tokens: &[String],
    scores: &[f32],
    types: &[u32],
    vocab: &Vocab,
) -> Vec<(String, String)> {
    let mut ranked: Vec<(f32, u32, String, String)> = Vec::new();
    for (id, piece) in tokens.iter().enumerate() {
        if types.get(id).copied().unwrap_or(NORMAL) != NORMAL || piece.chars().count() < 2 {
            continue;
        }
        let score = scores.get(id).copied().unwrap_or(0.0);
        for (cut, _) in piece.char_indices().skip(1) {
            let (a, b) = piece.split_at(cut);
            if vocab.contains_key(a) && vocab.contains_key(b) {
                ranked.push((score, id as u32, a.to_string(), b.to_string()));
            }
        }
    }
    ranked.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)));
    ranked.into_iter().map(|(_, _, a, b)| (a, b)).collect()
}
