//! Passkey retrieval (Mohtashami & Jaggi 2023), the probe the Position
//! Interpolation and YaRN papers use: a random number hidden at a chosen
//! depth of filler text, asked for at the end. It tests whether a model can
//! still *use* a position, which perplexity alone does not show.

use anyhow::{ensure, Result};
use folio_engine::llm::TextTokenizer;

const INTRO: &str = "There is an important piece of information hidden inside a lot of \
irrelevant text. Find it and memorize it. I will quiz you about it.\n\n";

/// One passkey prompt, as tokens, plus what a correct answer contains.
#[derive(Debug, Clone)]
pub struct PasskeyCase {
    /// Intro, filler with the needle inside, up to the question.
    pub context: Vec<u32>,
    /// The question whose greedy continuation should be the key.
    pub question: Vec<u32>,
    /// The passkey digits a correct answer contains.
    pub key: String,
    /// Token index where the needle starts.
    pub needle_at: usize,
}

impl PasskeyCase {
    /// Whether `answer` names the key.
    pub fn is_found(&self, answer: &str) -> bool {
        answer.contains(&self.key)
    }
}

/// A case of `total` tokens (context + question) over `filler` tokens, the
/// needle at relative `depth` (0 = start, 1 = end) of the filler.
pub fn passkey_case(
    tokenizer: &TextTokenizer,
    filler: &[u32],
    total: usize,
    depth: f64,
    key: u32,
) -> Result<PasskeyCase> {
    let key = key.to_string();
    let intro = tokenizer.encode_text(INTRO)?;
    let needle = tokenizer.encode_text(&format!(
        "\nThe pass key is {key}. Remember it. {key} is the pass key.\n"
    ))?;
    let question = tokenizer.encode_text("\n\nWhat is the pass key? The pass key is")?;
    let fixed = intro.len() + needle.len() + question.len();
    ensure!(
        total > fixed,
        "a passkey case needs more than {fixed} tokens"
    );
    let hay = total - fixed;
    ensure!(
        filler.len() >= hay,
        "{hay} filler tokens needed, {} given",
        filler.len()
    );
    let cut = (hay as f64 * depth.clamp(0.0, 1.0)).round() as usize;
    let mut context = intro;
    context.extend_from_slice(&filler[..cut]);
    let needle_at = context.len();
    context.extend_from_slice(&needle);
    context.extend_from_slice(&filler[cut..hay]);
    Ok(PasskeyCase {
        context,
        question,
        key,
        needle_at,
    })
}
