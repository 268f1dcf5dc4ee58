//! A GGUF's own chat template (`tokenizer.chat_template`, Jinja), for the
//! models that do not speak ChatML (Llama 2 and 3, Mistral, Phi-3, Gemma).
//!
//! The template is rendered with a marker in place of each message's text;
//! the template's own text between markers is tokenized with its control
//! tokens read (`<s>`, `[INST]` where special, `<|eot_id|>`), and each
//! message's text with [`TextTokenizer::encode_text`]. So a document that
//! contains `</s>` or `<|eot_id|>` stays those characters, as in ChatML
//! prompts, which llama.cpp's render-then-tokenize does not guarantee.

use anyhow::{anyhow, bail, Result};
use minijinja::{context, Environment, Error, ErrorKind, Value};

use super::chat::ChatMessage;
use super::tokenizer::TextTokenizer;

/// Marks the place of message `i` in the rendered template: private-use
/// characters no template writes.
const OPEN: char = '\u{F8F0}';
const CLOSE: char = '\u{F8F1}';

/// Renders `messages` through the Jinja `source`, then an open assistant
/// turn (`add_generation_prompt`), into token ids.
pub(crate) fn render(
    source: &str,
    tokenizer: &TextTokenizer,
    messages: &[ChatMessage],
) -> Result<Vec<u32>> {
    let mut env = Environment::new();
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function("raise_exception", |msg: String| -> Result<Value, Error> {
        Err(Error::new(ErrorKind::InvalidOperation, msg))
    });
    // Llama 3.2's template dates its system turn with today's date, as
    // Hugging Face and llama.cpp render it.
    env.add_function("strftime_now", |format: String| strftime_now(&format));
    env.add_template("chat", source)
        .map_err(|e| anyhow!("the model's chat template does not parse: {e}"))?;
    let marked: Vec<Value> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            Value::from(std::collections::BTreeMap::from([
                ("role", Value::from(m.role.as_str())),
                ("content", Value::from(format!("{OPEN}{i}{CLOSE}"))),
            ]))
        })
        .collect();
    let token = |id: Option<u32>| {
        id.and_then(|i| tokenizer.token(i))
            .unwrap_or_default()
            .to_string()
    };
    let rendered = env
        .get_template("chat")
        .and_then(|t| {
            t.render(context! {
                messages => marked,
                add_generation_prompt => true,
                // Qwen3's templates: answer directly, no <think> block.
                enable_thinking => false,
                // Llama 3.1's system turn: today, as llama.cpp dates it.
                date_string => strftime_now("%d %b %Y"),
                bos_token => token(tokenizer.bos_id),
                eos_token => token(tokenizer.eos_id),
            })
        })
        .map_err(|e| anyhow!("the model's chat template failed: {e}"))?;
    // Pieces in order: the template's text, then a message, and so on. A
    // space that ends the template's text before a message goes with the
    // message (" What" is one token, "▁What" in SentencePiece), as if the
    // prompt had been tokenized whole.
    let mut ids = Vec::new();
    let mut rest = rendered.as_str();
    let mut used = vec![false; messages.len()];
    let mut first = true;
    while let Some(open) = rest.find(OPEN) {
        let template = &rest[..open];
        let kept = template.trim_end_matches(' ');
        if !kept.is_empty() {
            ids.extend(tokenizer.encode_template(kept, first)?);
            first = false;
        }
        let spaces = &template[kept.len()..];
        let after = &rest[open + OPEN.len_utf8()..];
        let close = after
            .find(CLOSE)
            .ok_or_else(|| anyhow!("the chat template cut a message apart"))?;
        let i: usize = after[..close]
            .parse()
            .map_err(|_| anyhow!("the chat template changed a message"))?;
        let m = messages
            .get(i)
            .ok_or_else(|| anyhow!("the chat template invented a message"))?;
        let text = format!("{spaces}{}", m.content);
        if first {
            ids.extend(tokenizer.encode_text(&text)?);
        } else {
            ids.extend(tokenizer.encode_text_continued(&text)?);
        }
        first = false;
        used[i] = true;
        rest = &after[close + CLOSE.len_utf8()..];
    }
    if !rest.is_empty() {
        ids.extend(tokenizer.encode_template(rest, first)?);
    }
    if let Some(i) = used.iter().position(|u| !u) {
        bail!(
            "the model's chat template dropped the {} message",
            messages[i].role.as_str()
        );
    }
    Ok(ids)
}

/// Today's date (UTC) in a `strftime` format: `%d %m %Y %y %b %B %A %a %%`;
/// other specifiers are kept as written.
fn strftime_now(format: &str) -> String {
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400) as i64;
    format_date(days, format)
}

/// `format` for the day `days` after 1970-01-01 (proleptic Gregorian;
/// Howard Hinnant's days-to-civil).
fn format_date(days: i64, format: &str) -> String {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    const WEEKDAYS: [&str; 7] = [
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
        "Monday",
        "Tuesday",
        "Wednesday",
    ];
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let month_name = MONTHS[(month - 1) as usize];
    let weekday = WEEKDAYS[days.rem_euclid(7) as usize];
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('d') => out.push_str(&format!("{day:02}")),
            Some('m') => out.push_str(&format!("{month:02}")),
            Some('Y') => out.push_str(&year.to_string()),
            Some('y') => out.push_str(&format!("{:02}", year.rem_euclid(100))),
            Some('b') => out.push_str(&month_name[..3]),
            Some('B') => out.push_str(month_name),
            Some('A') => out.push_str(weekday),
            Some('a') => out.push_str(&weekday[..3]),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::format_date;

    #[test]
    fn dates_format_as_strftime_does() {
        // 2024-07-26 (Llama 3.1's fallback date) is day 19 930; a Friday.
        assert_eq!(format_date(19_930, "%d %b %Y"), "26 Jul 2024");
        assert_eq!(
            format_date(19_930, "%A %B %d, %y %m %% %q"),
            "Friday July 26, 24 07 % %q"
        );
        assert_eq!(format_date(0, "%Y-%m-%d %a"), "1970-01-01 Thu");
        // A leap day and the turn of a century.
        assert_eq!(format_date(11_016, "%Y-%m-%d"), "2000-02-29");
        assert_eq!(format_date(-1, "%Y-%m-%d"), "1969-12-31");
    }
}
