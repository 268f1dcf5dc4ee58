//! A real llama.cpp server (`llama-server`, built by `.ci/run` from the
//! llama.cpp source PyPI carries) started on 127.0.0.1 for one model, and
//! the two calls the comparisons need: `/tokenize` and `/completion` with
//! `n_probs`. HTTP/1.1 over a plain socket, one request per connection.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The llama-server binary from `FOLIO_LLAMA_SERVER`, or `None` (the test
/// then says it was skipped) unless `FOLIO_REQUIRE_LLAMA_SERVER=1`, as in
/// CI, where its absence fails the test.
pub fn binary() -> Option<PathBuf> {
    let path = std::env::var_os("FOLIO_LLAMA_SERVER").map(PathBuf::from);
    let required = std::env::var("FOLIO_REQUIRE_LLAMA_SERVER").is_ok_and(|v| v == "1");
    match path {
        Some(p) if p.is_file() => Some(p),
        other => {
            assert!(
                !required,
                "FOLIO_REQUIRE_LLAMA_SERVER=1 but FOLIO_LLAMA_SERVER ({other:?}) is not a \
                 llama-server binary; .ci/run builds one"
            );
            eprintln!("skipped: set FOLIO_LLAMA_SERVER to a llama-server binary to compare");
            None
        }
    }
}

/// A running server; killed when dropped.
pub struct LlamaServer {
    child: Child,
    port: u16,
    log: PathBuf,
}

/// One generated position of `/completion`: the token llama.cpp chose and
/// its top candidates, log-probabilities of the raw (pre-sampling) softmax.
#[derive(Debug)]
pub struct Position {
    pub chosen: u32,
    pub top: Vec<(u32, f32)>,
}

impl LlamaServer {
    /// Starts `binary` on `model` with a `ctx`-token context, two threads,
    /// one slot, and waits until `/health` answers.
    pub fn start(binary: &Path, model: &Path, ctx: usize, log_dir: &Path) -> Self {
        Self::start_with(binary, model, ctx, log_dir, &[])
    }

    /// [`start`](Self::start) with more command-line arguments.
    pub fn start_with(
        binary: &Path,
        model: &Path,
        ctx: usize,
        log_dir: &Path,
        extra: &[&str],
    ) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let log = log_dir.join(format!("llama-server-{port}.log"));
        let child = Command::new(binary)
            .args(["-m", &model.display().to_string()])
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["-c", &ctx.to_string(), "-t", "2", "-np", "1", "--no-warmup"])
            // folio's default cache and kernel: f32 keys and values, exact
            // attention (llama.cpp's defaults are an f16 cache and, where it
            // can, its flash kernel).
            .args(["-ctk", "f32", "-ctv", "f32", "-fa", "off"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("server log"))
            .spawn()
            .expect("starting llama-server");
        let mut server = Self { child, port, log };
        server.wait_healthy();
        server
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Kills the server now (as a crash would).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn wait_healthy(&mut self) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(120) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("llama-server exited ({status}):\n{}", self.log_tail());
            }
            if matches!(self.request("GET", "/health", None), Ok((200, _))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("llama-server did not become healthy:\n{}", self.log_tail());
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// `/tokenize` of `text` without BOS, special-token text left as text
    /// (as folio tokenizes documents).
    pub fn tokenize(&self, text: &str) -> Vec<u32> {
        let body = json!({"content": text, "add_special": false, "parse_special": false});
        let reply = self.post("/tokenize", &body);
        reply["tokens"]
            .as_array()
            .expect("tokens")
            .iter()
            .map(|t| t.as_u64().expect("token id") as u32)
            .collect()
    }

    /// `/apply-template`: the prompt text llama.cpp's Jinja renders for
    /// `messages` (`[{"role", "content"}]`), thinking off.
    pub fn apply_template(&self, messages: &Value) -> String {
        let body = json!({
            "messages": messages,
            "chat_template_kwargs": {"enable_thinking": false},
        });
        let reply = self.post("/apply-template", &body);
        reply["prompt"].as_str().expect("prompt").to_string()
    }

    /// Greedy `/completion` of at most `n` tokens after `prompt` (token
    /// ids), to the model's end of turn included, with the top `k`
    /// log-probabilities at each generated position (end-of-turn tokens
    /// keep their probability: `ignore_eos` would remove it).
    pub fn complete(&self, prompt: &[u32], n: usize, k: usize) -> Vec<Position> {
        let body = json!({
            "prompt": prompt,
            "n_predict": n,
            "n_probs": k,
            "temperature": 0.0,
            "cache_prompt": false,
        });
        let reply = self.post("/completion", &body);
        reply["completion_probabilities"]
            .as_array()
            .unwrap_or_else(|| panic!("no completion_probabilities in {reply}"))
            .iter()
            .map(|p| Position {
                chosen: p["id"].as_u64().expect("id") as u32,
                top: p["top_logprobs"]
                    .as_array()
                    .expect("top_logprobs")
                    .iter()
                    .map(|t| {
                        let id = t["id"].as_u64().expect("id") as u32;
                        (id, t["logprob"].as_f64().expect("logprob") as f32)
                    })
                    .collect(),
            })
            .collect()
    }

    fn post(&self, path: &str, body: &Value) -> Value {
        match self.request("POST", path, Some(body)) {
            Ok((200, text)) => serde_json::from_str(&text).expect("a JSON reply"),
            Ok((status, text)) => panic!("{path}: HTTP {status}: {text}"),
            Err(e) => panic!("{path}: {e}\n{}", self.log_tail()),
        }
    }

    /// One request; returns the status and the (de-chunked) body.
    fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> std::io::Result<(u16, String)> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(300)))?;
        let body = body.map(Value::to_string).unwrap_or_default();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw)?;
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let chunked = head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked");
        Ok((
            status,
            if chunked {
                dechunk(rest)
            } else {
                rest.to_string()
            },
        ))
    }
}

/// The body of a chunked transfer encoding.
fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
