//! How fast a server answers, measured (`folio calibrate --backend openai`,
//! or once on first use) and kept per server and model, so the router
//! prices a remote read as it prices a local one: from measurements.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{CompletionRequest, RemoteServer};
use crate::llm::{GenerateOptions, Model};
use crate::router::ServedRates;

/// The measured rates, with what they were measured on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RatesRecord {
    /// Layout version: a record of another is measured again.
    #[serde(default)]
    pub version: u32,
    /// The server's address.
    pub url: String,
    /// The served model.
    pub model: String,
    /// Seconds since the Unix epoch when measured.
    pub measured_at: u64,
    /// The rates.
    pub rates: ServedRates,
}

/// [`RatesRecord::version`] of this folio.
const RATES_VERSION: u32 = 1;

/// Prompt tokens of the two long probes: long enough that prefill
/// dominates a request's fixed cost, and four times apart, so the growth of
/// attention's share shows; short enough for most servers' contexts.
const LONG_PROBES: [usize; 2] = [512, 2048];
/// Prompt tokens of the short probe (a request's fixed cost).
const SHORT_PROBE: usize = 16;
/// Tokens the generation probe asks for.
const DECODE_PROBE: usize = 64;

/// Where the rates of `url` serving `model` are kept: in
/// `FOLIO_SERVERS_DIR`, default `$FOLIO_HOME/servers`.
pub fn rates_path(url: &str, model: &str) -> PathBuf {
    let digest = Sha256::digest(format!("{url}\n{model}").as_bytes());
    let name: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    let dir = std::env::var_os("FOLIO_SERVERS_DIR")
        .filter(|d| !d.is_empty())
        .map_or_else(
            || folio_corpora::fetch::folio_home().join("servers"),
            PathBuf::from,
        );
    dir.join(format!("{name}.json"))
}

/// The kept rates of this server and model, if measured before.
pub fn cached_rates(server: &RemoteServer) -> Option<RatesRecord> {
    let bytes = std::fs::read(rates_path(&server.info.url, &server.info.model)).ok()?;
    serde_json::from_slice(&bytes)
        .ok()
        .filter(|r: &RatesRecord| r.version == RATES_VERSION)
}

/// Measures the server with `tokenizer`'s tokens of real text: a short
/// and a long prompt (the difference is prefill), and a streamed answer
/// (the time between its first and last piece is generation). Saves them.
pub fn measure(server: &RemoteServer, tokenizer: &Model) -> Result<RatesRecord> {
    let text = folio_corpora::bundled::jargon().text;
    let ids = tokenizer
        .tokenizer
        .encode_text(&text[..200_000.min(text.len())])?;
    let room = server
        .info
        .context
        .unwrap_or(usize::MAX)
        .saturating_sub(DECODE_PROBE + 8)
        .min(ids.len() / 4);
    let [n1, n2] = LONG_PROBES.map(|n| n.min(room));
    if n1 <= 4 * SHORT_PROBE {
        bail!("the server's context ({room} tokens) is too small to measure");
    }
    // Each probe reads other text, from a place of the text chosen anew
    // each time, so no server-side prompt cache (llama.cpp keeps earlier
    // prompts in memory, vLLM caches prefixes) serves it.
    let span = 3 * SHORT_PROBE + n1 + n2;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as usize);
    let ids = &ids[nanos % (ids.len() - span).max(1)..];
    let timed =
        |start: usize, len: usize, max_new_tokens: usize| -> Result<(f64, super::Completion)> {
            let options = GenerateOptions {
                max_new_tokens,
                ..Default::default()
            };
            let t = Instant::now();
            let c = server.complete(
                &CompletionRequest {
                    prompt: &ids[start..start + len],
                    options: &options,
                },
                &mut |_| {},
            )?;
            Ok((t.elapsed().as_secs_f64(), c))
        };
    // A first request wakes the server (and warms its caches) untimed.
    timed(0, SHORT_PROBE, 1)?;
    let (short, _) = timed(SHORT_PROBE, SHORT_PROBE, 1)?;
    let (t1, _) = timed(2 * SHORT_PROBE, n1, 1)?;
    let (t2, _) = timed(2 * SHORT_PROBE + n1, n2, 1)?;
    let (linear, quadratic) = fit_prefill((n1, t1 - short), (n2, t2 - short));
    let prompt_tok_per_s = 1.0 / linear;
    let (_, answer) = timed(2 * SHORT_PROBE + n1 + n2, SHORT_PROBE, DECODE_PROBE)?;
    let generated = answer.completion_tokens.unwrap_or_else(|| {
        tokenizer
            .tokenizer
            .encode_text(&answer.text)
            .map_or(1, |t| t.len())
    });
    let decoding = answer.total_seconds - answer.first_text_seconds;
    if generated < 8 || decoding <= 0.0 {
        bail!(
            "the server answered the generation probe with {generated} tokens; too few to time \
             generation (it stopped early)"
        );
    }
    let record = RatesRecord {
        version: RATES_VERSION,
        url: server.info.url.clone(),
        model: server.info.model.clone(),
        measured_at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        rates: ServedRates {
            prompt_tok_per_s,
            prompt_quadratic_s: quadratic,
            decode_tok_per_s: (generated - 1) as f64 / decoding,
            request_seconds: (short - SHORT_PROBE as f64 * linear).max(0.0),
        },
    };
    let path = rates_path(&record.url, &record.model);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("writing-{}", std::process::id()));
    std::fs::write(&tmp, serde_json::to_vec_pretty(&record)?)?;
    std::fs::rename(&tmp, &path)?;
    Ok(record)
}

/// Seconds per token and per squared token of prefill, `t = a·n + b·n²`,
/// through two measured prompts (their request overhead taken off). A
/// negative `b` (noise, or a server whose attention costs nothing yet at
/// these lengths) is taken as 0 and `a` refitted through the longer one.
fn fit_prefill((n1, t1): (usize, f64), (n2, t2): (usize, f64)) -> (f64, f64) {
    let (n1, n2) = (n1 as f64, n2 as f64);
    let (t1, t2) = (t1.max(1e-6), t2.max(1e-6));
    let b = (t2 / n2 - t1 / n1) / (n2 - n1);
    let a = t1 / n1 - b * n1;
    if n2 > n1 && b > 0.0 && a > 0.0 {
        (a, b)
    } else {
        (t2 / n2, 0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::fit_prefill;

    #[test]
    fn prefill_fits_a_line_and_a_square_through_two_lengths() {
        let t = |n: f64| 2e-3 * n + 1e-7 * n * n;
        let (a, b) = fit_prefill((512, t(512.0)), (2048, t(2048.0)));
        assert!(
            (a - 2e-3).abs() < 1e-12 && (b - 1e-7).abs() < 1e-15,
            "{a} {b}"
        );
        // Per-token time falling with length: no quadratic term.
        let (a, b) = fit_prefill((512, 1.0), (2048, 3.0));
        assert_eq!((a, b), (3.0 / 2048.0, 0.0));
        // A short probe served from a cache: no negative rate.
        let (a, b) = fit_prefill((512, 0.01), (2048, 20.0));
        assert_eq!((a, b), (20.0 / 2048.0, 0.0));
    }
}
