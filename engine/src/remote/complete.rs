//! `/v1/completions` with the prompt as token ids: streamed for answers
//! (server-sent events, cancellable), one token with its top log-probs for
//! the yes/no answerability check.

use std::io::BufReader;
use std::time::Instant;

use anyhow::{anyhow, bail, Result};
use serde_json::{json, Value};

use super::sse::{Event, EventReader};
use super::RemoteServer;
use crate::llm::{GenerateOptions, Sampling, StopReason};

/// One completion to ask for.
pub struct CompletionRequest<'a> {
    /// The rendered prompt, as the served model's token ids.
    pub prompt: &'a [u32],
    /// Length, sampling and cancellation (extra stop tokens are local only).
    pub options: &'a GenerateOptions,
}

/// A streamed completion and its timings.
#[derive(Debug, Clone)]
pub struct Completion {
    /// The text generated.
    pub text: String,
    /// Tokens generated: the server's count (`usage`) when it sends one.
    pub completion_tokens: Option<usize>,
    /// Prompt tokens the server counted (`usage`), to check against ours.
    pub prompt_tokens: Option<usize>,
    /// Why it ended.
    pub stop_reason: StopReason,
    /// Seconds from sending the request to the first text.
    pub first_text_seconds: f64,
    /// Seconds from sending to the end of the stream.
    pub total_seconds: f64,
    /// The server's own prefill and generation milliseconds, where it
    /// reports them (llama.cpp's `timings`).
    pub server_ms: Option<(f64, f64)>,
}

impl RemoteServer {
    /// Streams a completion of `request.prompt`, each piece of text to
    /// `on_text` as it arrives. Cancelling (the options' flag, read at every
    /// event) closes the stream and keeps the text so far.
    pub fn complete(
        &self,
        request: &CompletionRequest,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<Completion> {
        let mut body = json!({
            "model": self.info.model,
            "prompt": request.prompt,
            "max_tokens": request.options.max_new_tokens,
            "stream": true,
            "stream_options": {"include_usage": true},
        });
        match request.options.sampling {
            Sampling::Greedy => body["temperature"] = json!(0.0),
            Sampling::TopP {
                temperature,
                top_p,
                seed,
            } => {
                body["temperature"] = json!(temperature);
                body["top_p"] = json!(top_p);
                body["seed"] = json!(seed);
            }
        }
        let t0 = Instant::now();
        let stream = self
            .http()
            .post_stream("/v1/completions", &body)
            .map_err(|e| self.explain(e, request.prompt.len(), request.options.max_new_tokens))?;
        let mut events = EventReader::new(BufReader::new(stream.body));
        let mut done = Completion {
            text: String::new(),
            completion_tokens: None,
            prompt_tokens: None,
            stop_reason: StopReason::Cancelled,
            first_text_seconds: 0.0,
            total_seconds: 0.0,
            server_ms: None,
        };
        let mut finish: Option<String> = None;
        let mut pieces = 0usize;
        let mut cancelled = false;
        loop {
            if request.options.cancelled() {
                // Dropping the reader closes the connection: the server
                // stops generating.
                cancelled = true;
                break;
            }
            let event = events.next_event().map_err(|e| {
                anyhow!(
                    "the server at {} broke off the answer after {pieces} pieces ({e}); \
                     nothing was kept from it",
                    self.info.url
                )
            })?;
            let data = match event {
                Some(Event::Data(d)) => d,
                Some(Event::Done) => break,
                None if finish.is_some() => break,
                None => bail!(
                    "the server at {} closed the stream after {pieces} pieces, before the answer ended",
                    self.info.url
                ),
            };
            let v: Value = serde_json::from_str(&data).map_err(|e| {
                anyhow!("the server streamed something that is not JSON ({e}): {data:.200}")
            })?;
            if let Some(message) = v.get("error") {
                bail!("the server stopped the answer: {}", message_of(message));
            }
            if let Some(choice) = v.pointer("/choices/0") {
                if let Some(text) = choice.get("text").and_then(Value::as_str) {
                    if !text.is_empty() {
                        if done.text.is_empty() {
                            done.first_text_seconds = t0.elapsed().as_secs_f64();
                        }
                        pieces += 1;
                        done.text.push_str(text);
                        on_text(text);
                    }
                }
                if let Some(f) = choice.get("finish_reason").and_then(Value::as_str) {
                    finish = Some(f.to_string());
                }
            }
            if let Some(usage) = v.get("usage").filter(|u| !u.is_null()) {
                done.completion_tokens = count(usage, "completion_tokens");
                done.prompt_tokens = count(usage, "prompt_tokens");
            }
            if let Some(t) = v.get("timings") {
                let ms = |k: &str| t.get(k).and_then(Value::as_f64);
                if let (Some(p), Some(g)) = (ms("prompt_ms"), ms("predicted_ms")) {
                    done.server_ms = Some((p, g));
                }
            }
        }
        done.total_seconds = t0.elapsed().as_secs_f64();
        if done.text.is_empty() {
            done.first_text_seconds = done.total_seconds;
        }
        done.stop_reason = match (cancelled, finish.as_deref()) {
            (true, _) => StopReason::Cancelled,
            (false, Some("length")) => StopReason::MaxTokens,
            (false, _) => StopReason::StopToken,
        };
        Ok(done)
    }

    /// The log-probabilities the server gives the first token after
    /// `prompt`, its `top` most likely (token text → log-probability).
    pub fn first_token_logprobs(&self, prompt: &[u32], top: usize) -> Result<Vec<(String, f64)>> {
        let body = json!({
            "model": self.info.model,
            "prompt": prompt,
            "max_tokens": 1,
            "temperature": 0.0,
            "logprobs": top,
            "n_probs": top,
        });
        let answer = self
            .http()
            .post_json("/v1/completions", &body)
            .map_err(|e| self.explain(e, prompt.len(), 1))?
            .ok_or_else(|| anyhow!("{} has no /v1/completions", self.info.url))?;
        top_logprobs(&answer).ok_or_else(|| {
            anyhow!(
                "the server did not return log-probabilities for the answerability check \
                 (it needs `logprobs` in /v1/completions): {answer:.300}"
            )
        })
    }

    /// An error of a completion call, with what to do when it is about the
    /// prompt's length or the model's name.
    fn explain(&self, e: anyhow::Error, prompt: usize, max_new: usize) -> anyhow::Error {
        let text = format!("{e:#}");
        let lower = text.to_lowercase();
        if lower.contains("context") || lower.contains("too long") || lower.contains("maximum") {
            let holds = self
                .info
                .context
                .map_or("a context of unknown size".to_string(), |n| {
                    format!("{n} tokens")
                });
            return anyhow!(
                "{text}\nThe prompt is {prompt} tokens plus {max_new} for the answer; the server's \
                 context holds {holds}. Start the server with a longer context, or ask with a \
                 strategy that reads less (--strategy rag or compress)."
            );
        }
        if lower.contains("model")
            && (lower.contains("not found") || lower.contains("does not exist"))
        {
            return anyhow!(
                "{text}\nPass the served model's name with --model (see its /v1/models)."
            );
        }
        e
    }
}

fn count(v: &Value, key: &str) -> Option<usize> {
    v.get(key).and_then(Value::as_u64).map(|n| n as usize)
}

fn message_of(v: &Value) -> String {
    v.get("message")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| v.to_string())
}

/// The first generated token's top log-probabilities, in either shape
/// servers answer `/v1/completions` with: OpenAI's legacy
/// `logprobs.top_logprobs[0]` (an object token → logprob) or the newer
/// `logprobs.content[0].top_logprobs` (a list of `{token, logprob}`).
pub fn top_logprobs(answer: &Value) -> Option<Vec<(String, f64)>> {
    let logprobs = answer.pointer("/choices/0/logprobs")?;
    if let Some(first) = logprobs
        .pointer("/top_logprobs/0")
        .and_then(Value::as_object)
    {
        return Some(
            first
                .iter()
                .filter_map(|(t, lp)| Some((t.clone(), lp.as_f64()?)))
                .collect(),
        );
    }
    let list = logprobs
        .pointer("/content/0/top_logprobs")
        .and_then(Value::as_array)?;
    Some(
        list.iter()
            .filter_map(|e| {
                Some((
                    e.get("token")?.as_str()?.to_string(),
                    e.get("logprob")?.as_f64()?,
                ))
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_top_logprobs_in_both_shapes() {
        let legacy = json!({"choices": [{"text": "Yes", "logprobs": {"tokens": ["Yes"],
            "top_logprobs": [{"Yes": -0.1, " No": -2.5}]}}]});
        let mut got = top_logprobs(&legacy).unwrap();
        got.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            got,
            vec![(" No".to_string(), -2.5), ("Yes".to_string(), -0.1)]
        );
        let content = json!({"choices": [{"text": "no", "logprobs": {"content": [{"token": "no",
            "logprob": -0.3, "top_logprobs": [{"token": "no", "logprob": -0.3},
            {"token": "yes", "logprob": -1.4}]}]}}]});
        assert_eq!(
            top_logprobs(&content).unwrap(),
            vec![("no".to_string(), -0.3), ("yes".to_string(), -1.4)]
        );
        assert!(top_logprobs(&json!({"choices": [{"text": "x"}]})).is_none());
    }
}
