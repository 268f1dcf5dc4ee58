//! `folio ask` end to end in the engine: real models (Qwen2.5-0.5B answers,
//! SmolLM2 scores for the compressor), real documents (the bundled Jargon
//! File), a real index (tantivy + fastembed + the HNSW vector index).

use std::path::{Path, PathBuf};

use folio_corpora::bundled::{jargon, jargon_entries};
use folio_engine::ask::{AskOptions, Asker, Corpus, Models};
use folio_engine::calibrate::{cached_profile, measure};
use folio_engine::llm::Model;
use folio_engine::models::{load_model, TEST_MODEL};
use folio_engine::router::{Budget, DeviceProfile, ModelLimits, Strategy};

fn profile() -> DeviceProfile {
    match cached_profile().unwrap() {
        Some(p) => p,
        None => measure(None, &mut |_| {}).unwrap(),
    }
}

/// The answering model of these tests: Qwen2.5-0.5B, whose whole-read span
/// was measured (the routes below depend on it) and which answers in a
/// third of the default reader's time.
const ANSWERER: &str = "qwen2.5-0.5b";

fn models() -> (Model, Model) {
    (
        load_model(ANSWERER, false).unwrap(),
        load_model(TEST_MODEL, false).unwrap(),
    )
}

/// Jargon File entries from "flush" to "fry" (~37 KB, ~9K tokens) in three
/// files: over SmolLM2's context, inside Qwen's.
fn jargon_corpus(dir: &Path) -> Vec<PathBuf> {
    let text = jargon().text;
    let cut = |a: &str, b: &str| {
        let s = jargon_entries(a, b).unwrap();
        text[s.start..s.end].to_string()
    };
    let files = [
        ("f-flush.txt", cut("flush", "fork")),
        ("f-fork.txt", cut("fork", "frog")),
        ("f-frog.txt", cut("frog", "fry")),
    ];
    files
        .iter()
        .map(|(name, body)| {
            let p = dir.join(name);
            std::fs::write(&p, body).unwrap();
            p
        })
        .collect()
}

fn options(budget: Budget) -> AskOptions {
    AskOptions {
        budget,
        ..Default::default()
    }
}

#[test]
fn a_small_document_is_read_whole_with_verified_evidence() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(
        &path,
        "Meeting notes. The launch of the Aurora probe moved to 14 March 2031 because the heat \
         shield failed a test. The team lead is Dana Ortiz.",
    )
    .unwrap();
    let (answerer, scorer) = models();
    // The pinned default model carries its measured whole-read span (the
    // router's table is keyed by the GGUF's name), the scorer its context.
    assert_eq!(ModelLimits::of(&answerer).whole_read_tokens, 1024);
    let smol = ModelLimits::of(&scorer);
    assert_eq!(smol.whole_read_tokens, smol.trained_context);
    let mut corpus = Corpus::open(&[path], false).unwrap();
    let models = Models::cpu(&answerer, Some(&scorer));
    let profile = profile();
    let a = Asker::new(&mut corpus, models, &profile, options(Budget::default()))
        .ask("When is the Aurora launch?", &mut |_| {})
        .unwrap();
    let t = &a.trade_offs;
    assert!(
        matches!(t.plan.strategy, Strategy::Full { .. }),
        "{:?}",
        t.plan.strategy
    );
    assert!(a.answer.contains("March"), "{}", a.answer);
    assert_eq!(t.coverage.read_fraction, 1.0);
    assert!(!t.read.beyond_trained_range);
    let e = t.support.evidence.first().expect("evidence");
    assert!(e.verified && e.text.contains("14 March 2031"), "{e:?}");
    assert!(t
        .cost
        .stages
        .iter()
        .any(|s| s.stage == "prefill" && s.measured_s > 0.0));
}

#[test]
fn lookup_goes_through_retrieval_and_cites_its_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let files = jargon_corpus(dir.path());
    let (answerer, scorer) = models();
    let mut corpus = Corpus::open(&[dir.path().to_path_buf()], false).unwrap();
    assert_eq!(corpus.docs.len(), files.len());
    let models = Models::cpu(&answerer, Some(&scorer));
    // A token budget under the corpus' size rules out the full read.
    let budget = Budget {
        context_tokens: Some(2048),
        ..Default::default()
    };
    let profile = profile();
    let a = Asker::new(&mut corpus, models, &profile, options(budget))
        .ask("What is a fork bomb also called?", &mut |_| {})
        .unwrap();
    let t = &a.trade_offs;
    assert!(
        matches!(t.plan.strategy, Strategy::Rag { .. }),
        "{:?}",
        t.plan.strategy
    );
    assert!(t.coverage.tokens_sent <= 2048, "{}", t.coverage.tokens_sent);
    assert!(
        t.coverage.read_fraction < 0.5,
        "{}",
        t.coverage.read_fraction
    );
    assert!(
        a.answer.to_lowercase().contains("fork bunny"),
        "{}",
        a.answer
    );
    assert!(!t.coverage.chunks.is_empty());
    let e = t.support.evidence.first().expect("evidence");
    assert!(e.verified, "{e:?}");
    assert!(e.path.ends_with("f-fork.txt"), "{e:?}");
    // The evidence sits at its offsets in the file on disk.
    let on_disk = std::fs::read_to_string(&e.path).unwrap();
    assert_eq!(&on_disk[e.span.start..e.span.end], e.text);
    assert!(t.cost.stages.iter().any(|s| s.stage == "retrieve"));
}

#[test]
fn retrieval_that_finds_nothing_escalates_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    jargon_corpus(dir.path());
    let (answerer, scorer) = models();
    let mut corpus = Corpus::open(&[dir.path().to_path_buf()], false).unwrap();
    let models = Models::cpu(&answerer, Some(&scorer));
    let budget = Budget {
        context_tokens: Some(4096),
        ..Default::default()
    };
    let profile = profile();
    let a = Asker::new(&mut corpus, models, &profile, options(budget))
        .ask(
            "What is the boiling point of ethanol according to the document?",
            &mut |_| {},
        )
        .unwrap();
    let t = &a.trade_offs;
    let f = t
        .plan
        .fallback
        .as_ref()
        .expect("a fallback after retrieval found nothing");
    assert!(matches!(f.from, Strategy::Rag { .. }), "{f:?}");
    assert!(matches!(f.to, Some(Strategy::Compress { .. })), "{f:?}");
    assert!(matches!(t.plan.strategy, Strategy::Compress { .. }));
    // The small model invents an answer rather than saying it is not there;
    // none of its words occur in the retrieved text, which is what flagged it.
    assert!(
        f.reason.contains("not supported") || f.reason.contains("do not hold"),
        "{f:?}"
    );
    // Whatever the wider read answers, an unflagged answer must be grounded
    // (a quote copied from the text read, or evidence verified at its
    // offsets); a flagged one cites nothing.
    if t.support.not_found {
        assert!(t.support.evidence.is_empty());
    } else if let Some(score) = t.support.answerability {
        assert!(score >= t.support.min_confidence, "{score}");
        let q = t.support.quote.as_ref().expect("a kept answer's quote");
        assert!(q.verified, "{q:?}");
    } else {
        assert!(
            t.support.word_overlap >= folio_engine::ask::MIN_SUPPORT,
            "{}",
            t.support.word_overlap
        );
        assert!(
            t.support.evidence.iter().all(|e| e.verified),
            "{:?}",
            t.support.evidence
        );
    }
    assert!(t.coverage.dropped_spans > 0);
}
