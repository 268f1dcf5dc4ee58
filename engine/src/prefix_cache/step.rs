//! The document prefix of one read: restored from the cache, or prefilled
//! as a forward call of its own (and saved). Every read of a document QA
//! prompt takes this step, with a cache or without, so a read's numbers do
//! not depend on whether a cache was there: a restored read computes
//! exactly what a first read does.

use std::time::Instant;

use anyhow::Result;

use super::{document_prefix_len, PrefixCache, PrefixKey, PrefixReport};
use crate::llm::{Decoder, KvCache, Logits, SessionOptions};

/// What the prefix step left in the decoder.
#[derive(Default)]
pub struct PrefixStep {
    key: Option<PrefixKey>,
    tokens: Vec<u32>,
    /// Prompt tokens already in the decoder's cache.
    pub start: usize,
    /// Seconds prefilling the prefix took (0 when restored).
    pub prefill_seconds: f64,
    /// A copy to keep in memory, for a cache that cannot be cut back.
    snapshot: Option<KvCache>,
    /// What the cache did, when the read had one.
    pub report: Option<PrefixReport>,
}

impl PrefixStep {
    /// Prompt tokens restored rather than prefilled.
    pub fn reused_tokens(&self) -> usize {
        self.report.as_ref().map_or(0, |r| r.reused_tokens)
    }

    /// Leaves the prefix in `cache`'s memory slot (when it keeps one): the
    /// decoder's cache cut back to the prefix, or the copy made before.
    /// Call it while the decoder still holds the read (before a check that
    /// starts a fresh context).
    pub fn keep_in_memory(&self, cache: &PrefixCache, decoder: &mut dyn Decoder<'_>) {
        let (Some(key), true) = (&self.key, cache.keeps_memory()) else {
            return;
        };
        let kept = match &self.snapshot {
            Some(copy) => Some(copy.clone()),
            None => decoder
                .take_kv()
                .filter(|kv| self.start > 0 && kv.len >= self.start)
                .and_then(|mut kv| kv.truncate(self.start).then_some(kv)),
        };
        if let Some(kv) = kept {
            let seconds = self
                .report
                .as_ref()
                .and_then(|r| r.replaced_prefill_seconds)
                .unwrap_or(self.prefill_seconds);
            cache.remember(key, &self.tokens, kv, seconds);
        }
    }
}

/// Puts the document prefix of `prompt` (a QA prompt over `text`, named
/// `id`) into `decoder`: restored from `cache` when it holds it, else
/// prefilled by itself and saved there.
pub fn read_document_prefix(
    cache: Option<&PrefixCache>,
    (id, text): (&str, &str),
    (prompt, total): (&[u32], usize),
    decoder: &mut dyn Decoder<'_>,
    session: &SessionOptions,
) -> Result<PrefixStep> {
    let model = decoder.model();
    let usable = cache.filter(|_| decoder.kv_cache().is_some() && session.eviction.is_none());
    let mut step = PrefixStep {
        report: cache.map(|_| PrefixReport::default()),
        ..Default::default()
    };
    if cache.is_some() && session.eviction.is_some() {
        step.report = Some(PrefixReport {
            notice: Some(
                "not kept for later questions: an evicted cache holds what this read's attention \
                 chose"
                    .into(),
            ),
            ..Default::default()
        });
    } else if let Some(cache) = usable {
        let key = PrefixKey::new(model, session, text, id, total)?;
        let restored = cache.restore(&key, prompt, decoder, total);
        step.start = restored.reused_tokens;
        step.report = Some(restored);
        step.key = Some(key);
    } else if cache.is_some() {
        step.report = Some(PrefixReport {
            notice: Some("the GPU session does not keep its KV cache between questions yet".into()),
            ..Default::default()
        });
    }
    if step.start == 0 {
        let prefix = document_prefix_len(model, text, prompt)?;
        if prefix == 0 {
            return Ok(step);
        }
        decoder.declare_length(total);
        let t = Instant::now();
        decoder.forward(&prompt[..prefix], Logits::Last)?;
        step.prefill_seconds = t.elapsed().as_secs_f64();
        step.start = prefix;
        if let (Some(cache), Some(key), Some(kv)) = (usable, &step.key, decoder.kv_cache()) {
            let saved = cache.save(key, &prompt[..prefix], kv, step.prefill_seconds);
            let earlier = step.report.take().and_then(|r| r.notice);
            step.report = Some(PrefixReport {
                notice: earlier.or(saved.notice.clone()),
                ..saved
            });
        }
    }
    step.tokens = prompt[..step.start].to_vec();
    if let (Some(cache), Some(kv)) = (usable, decoder.kv_cache()) {
        if cache.keeps_memory() && !kv.cuttable() {
            step.snapshot = Some(kv.clone());
        }
    }
    Ok(step)
}
