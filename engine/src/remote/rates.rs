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
    /// The server's address.
    pub url: String,
    /// The served model.
    pub model: String,
    /// Seconds since the Unix epoch when measured.
    pub measured_at: u64,
    /// The rates.
    pub rates: ServedRates,
}

/// Prompt tokens of the long probe: long enough that prefill dominates
/// a request's fixed cost, short enough for any server's context.
const LONG_PROBE: usize = 1024;
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
    serde_json::from_slice(&bytes).ok()
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
        .saturating_sub(DECODE_PROBE + 8);
    let long = LONG_PROBE.min(room).min(ids.len());
    if long <= 4 * SHORT_PROBE {
        bail!("the server's context ({room} tokens) is too small to measure");
    }
    // Each probe reads other text, so no server-side prefix cache helps.
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
    let (long_s, _) = timed(2 * SHORT_PROBE, long, 1)?;
    let prompt_tok_per_s = (long - SHORT_PROBE) as f64 / (long_s - short).max(1e-3);
    let (_, answer) = timed(2 * SHORT_PROBE + long, SHORT_PROBE, DECODE_PROBE)?;
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
        url: server.info.url.clone(),
        model: server.info.model.clone(),
        measured_at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        rates: ServedRates {
            prompt_tok_per_s,
            decode_tok_per_s: (generated - 1) as f64 / decoding,
            request_seconds: (short - SHORT_PROBE as f64 / prompt_tok_per_s).max(0.0),
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
