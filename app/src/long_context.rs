//! Turns the long-context flags into the engine's session options.

use anyhow::{bail, Result};
use folio_engine::llm::{AttentionMode, KvDtype, Model, RopeScaling, SessionOptions, SparseConfig};

use crate::cli::{AttentionArg, KvArg, LongContextArgs, RopeArg};

/// The attention mode the flags ask for.
pub fn attention_mode(args: &LongContextArgs) -> Result<AttentionMode> {
    Ok(match args.attention {
        AttentionArg::Dense => AttentionMode::Dense,
        AttentionArg::Flash => AttentionMode::Flash,
        AttentionArg::Sparse => {
            if args.sparse_block == 0 || args.top_k == 0 {
                bail!("--top-k and --sparse-block must be at least 1");
            }
            AttentionMode::Sparse(SparseConfig {
                top_k: args.top_k,
                block: args.sparse_block,
                sinks: args.sinks,
                window: args.window,
            })
        }
    })
}

/// The RoPE scaling the flags ask for, against `model`'s trained context.
pub fn rope_scaling(args: &LongContextArgs, model: &Model) -> Result<RopeScaling> {
    let original = model.config.trained_positions();
    let factor = || -> Result<f32> {
        match args.rope_factor {
            Some(f) => Ok(f),
            None => bail!(
                "--rope {:?} needs --rope-factor S (the context it covers is {original} × S)",
                args.rope
            ),
        }
    };
    let scaling = match args.rope {
        RopeArg::Auto => match args.rope_factor {
            Some(_) => bail!("--rope-factor needs --rope pi|ntk|yarn|dynamic"),
            None => model.config.default_rope_scaling(),
        },
        RopeArg::None => RopeScaling::None,
        RopeArg::Pi => RopeScaling::Linear { factor: factor()? },
        RopeArg::Ntk => RopeScaling::Ntk { factor: factor()? },
        RopeArg::Yarn => RopeScaling::yarn(factor()?, original),
        RopeArg::Dynamic => RopeScaling::Dynamic {
            factor: args.rope_factor.unwrap_or(1.0),
            original_context: original,
        },
    };
    scaling.validate()?;
    Ok(scaling)
}

/// Session options for `model` from the flags.
pub fn session_options(args: &LongContextArgs, model: &Model) -> Result<SessionOptions> {
    if args.prefill_chunk == 0 {
        bail!("--prefill-chunk must be at least 1");
    }
    Ok(SessionOptions {
        attention: attention_mode(args)?.build(),
        rope_scaling: rope_scaling(args, model)?,
        kv_dtype: match args.kv {
            KvArg::F32 => KvDtype::F32,
            KvArg::F16 => KvDtype::F16,
            KvArg::Int8 => KvDtype::Int8,
        },
        prefill_chunk: args.prefill_chunk,
        ..SessionOptions::default()
    })
}
