//! The BM25 index: tantivy, one document per chunk (its id as a fast field,
//! its text stemmed for English). Chunk texts themselves live in the corpus
//! store; the index only answers "which chunk ids, with what score".

use std::ops::Bound;
use std::path::Path;

use anyhow::{anyhow, Context, Result};
use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, Occur, Query, RangeQuery, TermQuery};
use tantivy::schema::{
    Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, Value, FAST, INDEXED, STORED,
};
use tantivy::tokenizer::TokenStream;
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

const ID: &str = "chunk_id";
const TEXT: &str = "text";
const TOKENIZER: &str = "en_stem";

/// A tantivy index of chunk texts, searched with BM25.
pub struct Bm25Index {
    index: Index,
    reader: IndexReader,
    writer: Option<IndexWriter>,
    id: Field,
    text: Field,
}

fn schema() -> Schema {
    let mut b = Schema::builder();
    b.add_u64_field(ID, INDEXED | FAST | STORED);
    let indexing = TextFieldIndexing::default()
        .set_tokenizer(TOKENIZER)
        .set_index_option(IndexRecordOption::WithFreqs);
    b.add_text_field(TEXT, TextOptions::default().set_indexing_options(indexing));
    b.build()
}

impl Bm25Index {
    /// Opens the index in `dir`, creating an empty one if there is none.
    pub fn open_or_create(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mmap = tantivy::directory::MmapDirectory::open(dir)
            .map_err(|e| anyhow!("opening {}: {e}", dir.display()))?;
        let index = Index::open_or_create(mmap, schema())
            .map_err(|e| anyhow!("tantivy index in {}: {e}", dir.display()))?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let s = index.schema();
        Ok(Self {
            id: s.get_field(ID)?,
            text: s.get_field(TEXT)?,
            index,
            reader,
            writer: None,
        })
    }

    fn writer(&mut self) -> Result<&mut IndexWriter> {
        if self.writer.is_none() {
            let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
            let w = self
                .index
                .writer_with_num_threads(threads, threads * (32 << 20))
                .map_err(|e| anyhow!("tantivy writer: {e}"))?;
            self.writer = Some(w);
        }
        Ok(self.writer.as_mut().expect("just set"))
    }

    /// Adds a chunk (visible to searches after [`commit`](Self::commit)).
    pub fn add(&mut self, id: u64, text: &str) -> Result<()> {
        let (fid, ftext) = (self.id, self.text);
        let mut doc = TantivyDocument::default();
        doc.add_u64(fid, id);
        doc.add_text(ftext, text);
        self.writer()?.add_document(doc)?;
        Ok(())
    }

    /// Deletes chunks with ids in `[start, end)` (`end: None`: no upper
    /// bound), effective at the next commit.
    pub fn delete_range(&mut self, start: u64, end: Option<u64>) -> Result<()> {
        let f = self.id;
        let upper = end.map_or(Bound::Unbounded, |e| {
            Bound::Excluded(Term::from_field_u64(f, e))
        });
        let q = RangeQuery::new(Bound::Included(Term::from_field_u64(f, start)), upper);
        self.writer()?.delete_query(Box::new(q))?;
        Ok(())
    }

    /// Makes every add and delete so far durable and visible.
    /// Moves searches to the index's last commit (a reader's view of a
    /// writer in another process).
    pub fn reload(&self) -> Result<()> {
        self.reader
            .reload()
            .map_err(|e| anyhow!("reloading the BM25 index: {e}"))
    }

    /// Makes added and deleted chunks durable and visible to searches.
    pub fn commit(&mut self) -> Result<()> {
        if let Some(w) = self.writer.as_mut() {
            w.commit().map_err(|e| anyhow!("tantivy commit: {e}"))?;
        }
        self.reader.reload()?;
        Ok(())
    }

    /// Number of chunks visible to searches.
    pub fn len(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// Whether no chunk is visible.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `k` best chunks for `query` by BM25: (chunk id, score), best first.
    pub fn search(&self, query: &str, k: usize) -> Result<Vec<(u64, f32)>> {
        let mut tokenizer = self
            .index
            .tokenizers()
            .get(TOKENIZER)
            .ok_or_else(|| anyhow!("tokenizer {TOKENIZER} missing"))?;
        let mut stream = tokenizer.token_stream(query);
        let mut terms: Vec<String> = Vec::new();
        while stream.advance() {
            let t = stream.token().text.clone();
            if !terms.contains(&t) {
                terms.push(t);
            }
        }
        if terms.is_empty() || k == 0 {
            return Ok(Vec::new());
        }
        let clauses: Vec<(Occur, Box<dyn Query>)> = terms
            .iter()
            .map(|t| {
                let q = TermQuery::new(
                    Term::from_field_text(self.text, t),
                    IndexRecordOption::WithFreqs,
                );
                (Occur::Should, Box::new(q) as Box<dyn Query>)
            })
            .collect();
        let searcher = self.reader.searcher();
        let hits = searcher.search(&BooleanQuery::new(clauses), &TopDocs::with_limit(k))?;
        let mut out = Vec::with_capacity(hits.len());
        for (score, addr) in hits {
            let doc: TantivyDocument = searcher.doc(addr)?;
            let id = doc
                .get_first(self.id)
                .and_then(|v| v.as_u64())
                .ok_or_else(|| anyhow!("index document without a chunk id"))?;
            out.push((id, score));
        }
        Ok(out)
    }
}
