//! Read once, ask many: a full read's document prefix, saved and restored,
//! answers a second question exactly as a fresh read does (real models,
//! real Jargon File text); a damaged, truncated or foreign cache file is
//! never used and the answer stays right; the folder keeps its cap; caches
//! sharing a folder (as two processes do) leave it consistent.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use folio_engine::answer::{answer_from_text, AnswerOptions, AnswerReport};
use folio_engine::llm::{
    document_qa, GenerateOptions, Logits, Model, RopeScaling, Session, SessionOptions,
};
use folio_engine::models::{load_model, TEST_MODEL};
use folio_engine::prefix_cache::{PrefixCache, PrefixKey, PrefixReport, DEFAULT_MAX_BYTES};

/// The 0.5B reader the issue names beside the test model.
const READER: &str = "qwen2.5-0.5b";

/// `bytes` of the Jargon File from the entry `from`, cut at a line end.
fn excerpt(from: &str, bytes: usize) -> String {
    let text = folio_corpora::bundled::jargon().text;
    let start = text.find(from).expect("entry in the Jargon File");
    let end = text[..(start + bytes).min(text.len())].rfind('\n').unwrap();
    text[start..end].to_string()
}

fn read(
    model: &Model,
    text: &str,
    question: &str,
    cache: Option<&Arc<PrefixCache>>,
    ground: bool,
) -> AnswerReport {
    let options = AnswerOptions {
        generate: GenerateOptions {
            max_new_tokens: 24,
            ..Default::default()
        },
        session: SessionOptions::for_model(model),
        ground,
        prefix_cache: cache.cloned(),
        ..Default::default()
    };
    answer_from_text(model, "excerpt", text, question, &options, &mut |_| {}).unwrap()
}

/// The answer of a read without a cache.
fn first_read(model: &Model, text: &str, question: &str) -> String {
    read(model, text, question, None, false).answer
}

fn prefix(r: &AnswerReport) -> &PrefixReport {
    r.prefix.as_ref().expect("a read with a cache reports it")
}

fn disk(dir: &Path, max: u64) -> Arc<PrefixCache> {
    Arc::new(PrefixCache::on_disk(dir.to_path_buf(), max))
}

/// The folder's files, sorted.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

/// The saved prefixes in the folder (beside them: the measured rates).
fn cache_files(dir: &Path) -> Vec<PathBuf> {
    files(dir)
        .into_iter()
        .filter(|f| f.extension().is_some_and(|e| e == "kv"))
        .collect()
}

#[test]
fn a_restored_prefix_answers_the_next_question_as_a_fresh_read() {
    let text = excerpt("\n   :hacker: n.", 3_500);
    for id in [TEST_MODEL, READER] {
        let model = load_model(id, false).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let cache = disk(dir.path(), DEFAULT_MAX_BYTES);
        let first = read(&model, &text, "What is a hacker?", Some(&cache), true);
        let saved = prefix(&first);
        assert_eq!((saved.reused_tokens, saved.source), (0, None), "{saved:?}");
        // Everything before the question: most of the prompt.
        assert!(
            saved.saved_tokens * 10 > first.prompt_tokens * 9,
            "{saved:?}"
        );
        assert!(saved.saved_bytes > 0);

        let question = "What does 'hacker' mean when used as a pejorative?";
        let second = read(&model, &text, question, Some(&cache), true);
        let reused = prefix(&second);
        assert_eq!(reused.source, Some("disk"), "{reused:?}");
        assert_eq!(reused.reused_tokens, saved.saved_tokens);
        assert!(reused.notice.is_none(), "{reused:?}");

        // A read without any cache prefills the document part as a call
        // of its own too: the restored read computes exactly what it does.
        let fresh = read(&model, &text, question, None, true);
        assert!(fresh.prefix.is_none());
        assert_eq!(second.answer, fresh.answer, "{id}");
        let (a, b) = (
            second.grounding.as_ref().unwrap(),
            fresh.grounding.as_ref().unwrap(),
        );
        assert_eq!(a.quote, b.quote, "{id}");
        assert_eq!(
            a.answerability.to_bits(),
            b.answerability.to_bits(),
            "{id}: the restored cache is not the one the prefill made"
        );

        if id != TEST_MODEL {
            continue;
        }
        // In memory (the TUI): the second question restores without disk.
        let memory = Arc::new(PrefixCache::in_memory());
        read(&model, &text, "What is a hacker?", Some(&memory), false);
        let again = read(&model, &text, question, Some(&memory), true);
        assert_eq!(prefix(&again).source, Some("memory"));
        assert_eq!(again.answer, second.answer);
        // ...and keeps it for the question after.
        let third = read(&model, &text, "Who is a hacker?", Some(&memory), false);
        assert_eq!(prefix(&third).source, Some("memory"));
    }
}

/// folio prefills a prompt's document part and its question as two calls,
/// with a cache or without. Against a prefill of the whole prompt in one
/// call (as llama.cpp does it) that differs only by rounding: the question's
/// rows are a short call of their own instead of the end of the last prompt
/// chunk, so the flash kernel splits their keys across threads and sums the
/// partial softmaxes in another order. The 0.5B reader's huge activations
/// amplify that to 0.26-0.33 in its logits (measured with the split 8 to
/// 400 tokens before the end; 0 when the split falls on a chunk boundary);
/// SmolLM2 moves by 3e-5. The next token is the same.
#[test]
fn a_restored_prefix_differs_from_a_one_pass_prefill_only_by_rounding() {
    let text = excerpt("\n   :hacker: n.", 5_000);
    for id in [TEST_MODEL, READER] {
        let model = load_model(id, false).unwrap();
        let options = SessionOptions::for_model(&model);
        let prompt = model
            .chat
            .render(&model.tokenizer, &document_qa(&text, "Who are hackers?"))
            .unwrap();
        let n = folio_engine::prefix_cache::document_prefix_len(&model, &text, &prompt).unwrap();
        let total = prompt.len() + 8;
        let mut whole = Session::new(&model, options.clone());
        whole.declare_length(total);
        let one_pass = whole.forward(&prompt, Logits::Last).unwrap();

        let mut first = Session::new(&model, options.clone());
        first.declare_length(total);
        first.forward(&prompt[..n], Logits::Last).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let cache = PrefixCache::on_disk(dir.path().to_path_buf(), DEFAULT_MAX_BYTES);
        let key = PrefixKey::new(&model, &options, &text, "t", total).unwrap();
        assert!(cache
            .save(&key, &prompt[..n], &first.cache, 1.0)
            .notice
            .is_none());
        let split = first.forward(&prompt[n..], Logits::Last).unwrap();

        let mut restored = Session::new(&model, options.clone());
        assert_eq!(
            cache
                .restore(&key, &prompt, &mut restored, total)
                .reused_tokens,
            n
        );
        let after = restored.forward(&prompt[n..], Logits::Last).unwrap();
        assert_eq!(after, split, "{id}: the disk round trip changed the cache");

        let argmax = |l: &[f32]| {
            l.iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .unwrap()
                .0
        };
        let diff = one_pass
            .iter()
            .zip(&after)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        // Logits span tens (the 0.5B's reach ~30).
        assert!(diff < 0.5, "{id}: logits moved by {diff}");
        assert_eq!(argmax(&one_pass), argmax(&after), "{id}");
        eprintln!("{id}: restored vs one pass, max |Δlogit| = {diff:.2e}");
    }
}

#[test]
fn a_damaged_or_foreign_cache_file_is_never_used() {
    let model = load_model(TEST_MODEL, false).unwrap();
    let text = excerpt("\n   :hacker: n.", 3_000);
    let other_text = excerpt("\n   :kluge:", 3_000);
    let question = "What is a hacker?";
    let fresh = first_read(&model, &text, question);
    let dir = tempfile::tempdir().unwrap();
    let cache = disk(dir.path(), DEFAULT_MAX_BYTES);
    read(&model, &text, question, Some(&cache), false);
    let files = cache_files(dir.path());
    assert_eq!(files.len(), 1, "{files:?}");
    let file = files[0].clone();
    let good = std::fs::read(&file).unwrap();

    let damaged: [(&str, Vec<u8>); 3] = [
        ("one byte changed", {
            let mut b = good.clone();
            let middle = b.len() / 2;
            b[middle] ^= 0x40;
            b
        }),
        ("truncated", good[..good.len() - 100].to_vec()),
        ("a byte added", [good.as_slice(), &[0]].concat()),
    ];
    for (what, bytes) in damaged {
        std::fs::write(&file, bytes).unwrap();
        let r = read(&model, &text, question, Some(&cache), false);
        let p = prefix(&r);
        assert_eq!(p.reused_tokens, 0, "{what}: {p:?}");
        let notice = p.notice.as_deref().unwrap_or_default();
        assert!(notice.contains("discarded"), "{what}: {notice}");
        assert_eq!(r.answer, fresh, "{what}");
        // The read saved a good one again, which the next read uses.
        let r = read(&model, &text, question, Some(&cache), false);
        assert_eq!(prefix(&r).source, Some("disk"), "{what}");
        assert_eq!(r.answer, fresh, "{what}");
    }

    // Another document's cache under this document's name.
    let other_fresh = first_read(&model, &other_text, question);
    read(&model, &other_text, question, Some(&cache), false);
    let other_file = cache_files(dir.path())
        .into_iter()
        .find(|f| *f != file)
        .unwrap();
    std::fs::copy(&file, &other_file).unwrap();
    let r = read(&model, &other_text, question, Some(&cache), false);
    let p = prefix(&r);
    assert_eq!(p.reused_tokens, 0, "{p:?}");
    assert!(
        p.notice
            .as_deref()
            .unwrap_or_default()
            .contains("other settings"),
        "{p:?}"
    );
    assert_eq!(r.answer, other_fresh);

    // Another model's cache under this model's name.
    let reader = load_model(READER, false).unwrap();
    let reader_fresh = first_read(&reader, &text, question);
    read(&reader, &text, question, Some(&cache), false);
    let reader_file = cache_files(dir.path())
        .into_iter()
        .find(|f| *f != file && *f != other_file)
        .unwrap();
    std::fs::copy(&file, &reader_file).unwrap();
    let r = read(&reader, &text, question, Some(&cache), false);
    assert_eq!(prefix(&r).reused_tokens, 0);
    assert_eq!(r.answer, reader_fresh);

    // Another RoPE setting: the cache made without scaling is not reused.
    let stretched = AnswerOptions {
        generate: GenerateOptions {
            max_new_tokens: 24,
            ..Default::default()
        },
        session: SessionOptions {
            rope_scaling: RopeScaling::Linear { factor: 2.0 },
            ..SessionOptions::for_model(&model)
        },
        prefix_cache: Some(cache.clone()),
        ..Default::default()
    };
    let r = answer_from_text(&model, "excerpt", &text, question, &stretched, &mut |_| {}).unwrap();
    assert_eq!(prefix(&r).reused_tokens, 0);
}

#[test]
fn the_cache_folder_keeps_its_cap_least_recently_used_out_first() {
    let model = load_model(TEST_MODEL, false).unwrap();
    let (a, b) = (
        excerpt("\n   :hacker: n.", 3_000),
        excerpt("\n   :kluge:", 3_000),
    );
    let question = "What is it?";
    let probe = tempfile::tempdir().unwrap();
    let size = prefix(&read(
        &model,
        &a,
        question,
        Some(&disk(probe.path(), DEFAULT_MAX_BYTES)),
        false,
    ))
    .saved_bytes;

    // Room for one and a half: the second document's prefix pushes out the first.
    let cap = size * 3 / 2;
    let dir = tempfile::tempdir().unwrap();
    let cache = disk(dir.path(), cap);
    read(&model, &a, question, Some(&cache), false);
    read(&model, &b, question, Some(&cache), false);
    let files = cache_files(dir.path());
    assert_eq!(files.len(), 1, "{files:?}");
    let total: u64 = files.iter().map(|f| f.metadata().unwrap().len()).sum();
    assert!(total <= cap, "{total} > {cap}");
    assert_eq!(
        prefix(&read(&model, &b, question, Some(&cache), false)).source,
        Some("disk")
    );
    assert_eq!(
        prefix(&read(&model, &a, question, Some(&cache), false)).reused_tokens,
        0
    );

    // A prefix larger than the whole cap is not written at all.
    let small = tempfile::tempdir().unwrap();
    let r = read(
        &model,
        &a,
        question,
        Some(&disk(small.path(), size / 2)),
        false,
    );
    let p = prefix(&r);
    assert_eq!(p.saved_bytes, 0);
    assert!(
        p.notice
            .as_deref()
            .unwrap_or_default()
            .contains("--kv-cache-max"),
        "{p:?}"
    );
    assert!(cache_files(small.path()).is_empty());
}

/// Separate caches over one folder share nothing but the files, as two
/// folio processes do: writers and readers at once never see a half-written
/// file, every restore holds exactly what was saved, and the folder ends
/// with only whole cache files.
#[test]
fn caches_sharing_a_folder_stay_consistent() {
    let model = load_model(TEST_MODEL, false).unwrap();
    let options = SessionOptions::for_model(&model);
    let texts: Vec<String> = ["\n   :hacker: n.", "\n   :kluge:", "\n   :foo:"]
        .iter()
        .map(|e| excerpt(e, 1_500))
        .collect();
    // Per text: the key, the prompt, its prefix cache, and the logits of
    // the first question token read after that prefix.
    let cases: Vec<_> = texts
        .iter()
        .map(|text| {
            let prompt = model
                .chat
                .render(&model.tokenizer, &document_qa(text, "Why?"))
                .unwrap();
            let n = folio_engine::prefix_cache::document_prefix_len(&model, text, &prompt).unwrap();
            let total = prompt.len() + 8;
            let key = PrefixKey::new(&model, &options, text, "t", total).unwrap();
            let mut s = Session::new(&model, options.clone());
            s.declare_length(total);
            s.forward(&prompt[..n], Logits::Last).unwrap();
            let cache = s.cache.clone();
            let next = s.forward(&prompt[n..n + 1], Logits::Last).unwrap();
            (key, prompt, n, total, cache, next)
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let cap = cases.iter().map(|c| c.4.bytes() as u64).sum::<u64>() * 2;
    std::thread::scope(|scope| {
        for worker in 0..4 {
            let (cases, dir, model, options) = (&cases, dir.path(), &model, &options);
            scope.spawn(move || {
                let cache = PrefixCache::on_disk(dir.to_path_buf(), cap);
                for round in 0..12 {
                    let (key, prompt, n, total, kv, next) = &cases[(worker + round) % cases.len()];
                    if (worker + round) % 2 == 0 {
                        let saved = cache.save(key, &prompt[..*n], kv, 1.0);
                        assert!(saved.notice.is_none(), "{saved:?}");
                    } else {
                        let mut s = Session::new(model, options.clone());
                        let got = cache.restore(key, prompt, &mut s, *total);
                        assert!(got.notice.is_none(), "{got:?}");
                        if got.reused_tokens > 0 {
                            assert_eq!(got.reused_tokens, *n);
                            let logits = s.forward(&prompt[*n..*n + 1], Logits::Last).unwrap();
                            assert_eq!(&logits, next, "a restore read other values");
                        }
                    }
                }
            });
        }
    });
    let left = cache_files(dir.path());
    assert!(!left.is_empty());
    // Nothing half-written is left: only prefixes and the rates file.
    let others: Vec<PathBuf> = files(dir.path())
        .into_iter()
        .filter(|f| !left.contains(f) && !f.ends_with("rates.json"))
        .collect();
    assert!(others.is_empty(), "{others:?}");
    let listed = PrefixCache::on_disk(dir.path().to_path_buf(), cap)
        .list()
        .unwrap();
    assert_eq!(listed.len(), left.len(), "{left:?}");
    assert!(listed.iter().all(|e| e.unreadable.is_none()), "{listed:?}");
}
