//! Server-sent events, as OpenAI-compatible servers stream completions:
//! `data: {json}` lines, events separated by a blank line, `data: [DONE]`
//! at the end. Only what those servers send is read: `data` fields (joined
//! by newlines when an event has several), comments (`:`) and other
//! fields ignored.

use std::io::BufRead;

/// One event's payload.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// A `data` payload (JSON for these servers).
    Data(String),
    /// `data: [DONE]`: the stream is complete.
    Done,
}

/// Reads events from a byte stream, one at a time, as they arrive.
pub struct EventReader<R> {
    reader: R,
    line: String,
}

impl<R: BufRead> EventReader<R> {
    /// Events of `reader`.
    pub fn new(reader: R) -> Self {
        Self {
            reader,
            line: String::new(),
        }
    }

    /// The next event; `None` when the stream ended (cleanly or not: the
    /// caller knows whether it saw [`Event::Done`]).
    pub fn next_event(&mut self) -> std::io::Result<Option<Event>> {
        let mut data: Option<String> = None;
        loop {
            self.line.clear();
            if self.reader.read_line(&mut self.line)? == 0 {
                // A last event without its blank line still counts.
                return Ok(data.map(finish));
            }
            let line = self.line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                match data.take() {
                    Some(d) => return Ok(Some(finish(d))),
                    None => continue,
                }
            }
            if let Some(value) = line.strip_prefix("data:") {
                let value = value.strip_prefix(' ').unwrap_or(value);
                match &mut data {
                    Some(d) => {
                        d.push('\n');
                        d.push_str(value);
                    }
                    None => data = Some(value.to_string()),
                }
            }
        }
    }
}

fn finish(data: String) -> Event {
    if data.trim() == "[DONE]" {
        Event::Done
    } else {
        Event::Data(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(stream: &str) -> Vec<Event> {
        let mut reader = EventReader::new(stream.as_bytes());
        std::iter::from_fn(|| reader.next_event().unwrap()).collect()
    }

    #[test]
    fn reads_data_events_as_servers_send_them() {
        let stream = ": ping\n\ndata: {\"a\":1}\n\ndata:{\"b\":2}\r\n\r\nevent: x\ndata: one\ndata: two\n\ndata: [DONE]\n\n";
        assert_eq!(
            events(stream),
            vec![
                Event::Data("{\"a\":1}".into()),
                Event::Data("{\"b\":2}".into()),
                Event::Data("one\ntwo".into()),
                Event::Done,
            ]
        );
    }

    #[test]
    fn a_stream_cut_short_ends_without_done() {
        assert_eq!(
            events("data: {\"a\":1}\n\ndata: {\"b\""),
            vec![
                Event::Data("{\"a\":1}".into()),
                Event::Data("{\"b\"".into())
            ]
        );
        assert!(events("").is_empty());
    }
}
