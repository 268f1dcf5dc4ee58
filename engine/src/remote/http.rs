//! HTTP to the server: JSON requests with the API key, retried with backoff
//! when the server cannot be reached or says it is busy (429, 503), and
//! errors that say what the server answered.

use std::io::Read;
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use serde_json::Value;

/// Tries of a request that fails to connect or finds the server busy.
pub const TRIES: u32 = 4;

/// The first wait before a retry; it doubles each time (0.5, 1, 2 s).
const FIRST_BACKOFF: Duration = Duration::from_millis(500);

/// Longest wait a server's `Retry-After` may ask for.
const MOST_BACKOFF: Duration = Duration::from_secs(10);

/// One server's connection settings: where, with which key, how patient.
#[derive(Clone)]
pub struct Http {
    agent: ureq::Agent,
    base: String,
    api_key: Option<String>,
}

impl std::fmt::Debug for Http {
    // The key is never printed, not even in a debug dump.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http")
            .field("base", &self.base)
            .field("api_key", &self.api_key.as_ref().map(|_| "(set)"))
            .finish()
    }
}

/// A response whose body is still to be read (a stream).
pub struct Streaming {
    /// The body, as it arrives.
    pub body: Box<dyn Read + Send>,
}

impl Http {
    /// A client of the server at `base` (`http://host:port`, with or
    /// without a trailing `/v1`); `timeout` bounds connecting and waiting
    /// for a response's first byte.
    pub fn new(base: &str, api_key: Option<String>, timeout: Duration) -> Result<Self> {
        let trimmed = base.trim().trim_end_matches('/');
        let base = trimmed.strip_suffix("/v1").unwrap_or(trimmed).to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            bail!("--base-url {base:?} is not an http:// or https:// address (e.g. http://127.0.0.1:8080)");
        }
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_recv_response(Some(timeout))
            .build()
            .new_agent();
        Ok(Self {
            agent,
            base,
            api_key,
        })
    }

    /// The server's address, as given (without `/v1`).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Whether a key would travel in clear text to another machine: plain
    /// http to a host that is not this one.
    pub fn key_in_clear(&self) -> bool {
        self.api_key.is_some() && self.base.starts_with("http://") && !is_loopback(&self.base)
    }

    /// `GET path`'s JSON body; `Ok(None)` when the server has no such
    /// endpoint (404), so optional endpoints can be probed.
    pub fn get_json(&self, path: &str) -> Result<Option<Value>> {
        let response = self.send(path, None)?;
        read_json(path, response)
    }

    /// `POST path` with `body`; its JSON answer, `Ok(None)` on 404.
    pub fn post_json(&self, path: &str, body: &Value) -> Result<Option<Value>> {
        let response = self.send(path, Some(body))?;
        read_json(path, response)
    }

    /// `POST path` with `body`, the answer's body left to stream; an error
    /// status is an error with the server's message.
    pub fn post_stream(&self, path: &str, body: &Value) -> Result<Streaming> {
        let response = self.send(path, Some(body))?;
        let status = response.status().as_u16();
        if status != 200 {
            return Err(status_error(path, status, response));
        }
        Ok(Streaming {
            body: Box::new(response.into_body().into_reader()),
        })
    }

    /// Sends a request, retrying connection failures and 429/503 answers
    /// with backoff; any other answer is returned as it is.
    fn send(&self, path: &str, body: Option<&Value>) -> Result<ureq::http::Response<ureq::Body>> {
        let url = format!("{}{}", self.base, path);
        let bytes = body.map(serde_json::to_vec).transpose()?;
        let mut wait = FIRST_BACKOFF;
        let mut last = String::new();
        for attempt in 1..=TRIES {
            let result = match &bytes {
                Some(b) => {
                    let mut request = self
                        .agent
                        .post(&url)
                        .header("content-type", "application/json");
                    if let Some(key) = &self.api_key {
                        request = request.header("authorization", format!("Bearer {key}"));
                    }
                    request.send(&b[..])
                }
                None => {
                    let mut request = self.agent.get(&url);
                    if let Some(key) = &self.api_key {
                        request = request.header("authorization", format!("Bearer {key}"));
                    }
                    request.call()
                }
            };
            match result {
                Ok(r) if matches!(r.status().as_u16(), 429 | 503) && attempt < TRIES => {
                    last = format!("it answered {} (busy)", r.status().as_u16());
                    let asked = r
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<f64>().ok())
                        .map(|s| Duration::from_secs_f64(s.clamp(0.0, MOST_BACKOFF.as_secs_f64())));
                    std::thread::sleep(asked.unwrap_or(wait));
                }
                Ok(r) => return Ok(r),
                Err(e) if attempt < TRIES => {
                    last = e.to_string();
                    std::thread::sleep(wait);
                }
                Err(e) => last = e.to_string(),
            }
            wait *= 2;
        }
        Err(anyhow!(
            "the server at {} did not answer {path} after {TRIES} tries ({last}); is it running? \
             Start it, or point --base-url (FOLIO_BASE_URL) at one that is",
            self.base
        ))
    }
}

/// A JSON body, `None` for 404, else an error with the server's message.
fn read_json(path: &str, response: ureq::http::Response<ureq::Body>) -> Result<Option<Value>> {
    let status = response.status().as_u16();
    if status == 404 {
        return Ok(None);
    }
    if status != 200 {
        return Err(status_error(path, status, response));
    }
    let mut text = String::new();
    response
        .into_body()
        .into_reader()
        .read_to_string(&mut text)?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| anyhow!("{path} answered with something that is not JSON ({e})"))
}

/// An error status as an error naming the server's own message.
fn status_error(
    path: &str,
    status: u16,
    response: ureq::http::Response<ureq::Body>,
) -> anyhow::Error {
    let mut text = String::new();
    let _ = response
        .into_body()
        .into_reader()
        .take(64 * 1024)
        .read_to_string(&mut text);
    let message = server_message(&text).unwrap_or_else(|| text.trim().chars().take(500).collect());
    let hint = match status {
        401 | 403 => ": set FOLIO_API_KEY to a key this server accepts",
        _ => "",
    };
    anyhow!("the server answered {path} with {status}: {message}{hint}")
}

/// The `error.message` (or `message`, or `detail`) of an error body.
pub fn server_message(body: &str) -> Option<String> {
    let v: Value = serde_json::from_str(body).ok()?;
    let m = v
        .pointer("/error/message")
        .or_else(|| v.get("message"))
        .or_else(|| v.get("detail"))
        .or_else(|| v.get("error"))?;
    Some(match m {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

/// Whether `url`'s host is this machine.
fn is_loopback(url: &str) -> bool {
    let rest = url.split("://").nth(1).unwrap_or(url);
    let host_port = rest.split('/').next().unwrap_or(rest);
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or(v6)
    } else {
        host_port.rsplit_once(':').map_or(host_port, |(h, _)| h)
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_over_plain_http_is_flagged_only_off_this_machine() {
        let t = Duration::from_secs(1);
        let key = || Some("k".to_string());
        for (url, flagged) in [
            ("http://127.0.0.1:8080", false),
            ("http://localhost:8080/v1", false),
            ("http://[::1]:8080", false),
            ("http://10.0.0.5:8000", true),
            ("http://gpu-box:8000/v1/", true),
            ("https://gpu-box", false),
        ] {
            let http = Http::new(url, key(), t).unwrap();
            assert_eq!(http.key_in_clear(), flagged, "{url}");
        }
        assert!(!Http::new("http://10.0.0.5", None, t)
            .unwrap()
            .key_in_clear());
        assert_eq!(
            Http::new("http://h:1/v1/", None, t).unwrap().base(),
            "http://h:1"
        );
        assert!(Http::new("h:1", None, t).is_err());
    }

    #[test]
    fn reads_the_message_of_each_servers_error_shape() {
        let cases = [
            (
                r#"{"error":{"message":"ctx too big","code":400}}"#,
                "ctx too big",
            ),
            (
                r#"{"message":"The model `x` does not exist."}"#,
                "The model `x` does not exist.",
            ),
            (r#"{"detail":"Not Found"}"#, "Not Found"),
        ];
        for (body, message) in cases {
            assert_eq!(server_message(body).as_deref(), Some(message));
        }
        assert_eq!(server_message("<html>"), None);
    }
}
