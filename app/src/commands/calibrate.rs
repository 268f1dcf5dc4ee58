//! `folio calibrate`: measures the device profile the router's cost model
//! predicts from, and caches it in $FOLIO_HOME (one file per build kind).

use std::time::Instant;

use anyhow::Result;
use folio_engine::calibrate::{cached_profile, profile_path};
use folio_engine::router::DeviceProfile;

use crate::cli::{convert, BackendArg, CalibrateArgs};
use crate::output::{human_bytes, print_json};

/// Runs `folio calibrate`.
pub fn run(args: CalibrateArgs) -> Result<()> {
    if args.backend.backend == BackendArg::Openai {
        return calibrate_server(&args);
    }
    let profile = match (args.show, cached_profile()?) {
        (true, Some(p)) => p,
        _ => calibrate(!args.no_embed, !args.json)?,
    };
    if args.json {
        return print_json(&profile);
    }
    print_profile(&profile);
    Ok(())
}

/// `folio calibrate --backend openai`: measures the server's prompt and
/// generation speed for the served model and keeps it for the router.
fn calibrate_server(args: &CalibrateArgs) -> Result<()> {
    let Some(model) = &args.model else {
        anyhow::bail!("name the served model to measure: folio calibrate --backend openai --base-url URL --model NAME");
    };
    let (tokenizer, server) = convert::connect_server(model, &args.backend, !args.json)?;
    let server = &server;
    let record = folio_engine::remote::rates::measure(server, &tokenizer)?;
    if args.json {
        return print_json(&serde_json::json!({"server": server.info, "measured": record}));
    }
    let r = record.rates;
    println!(
        "{} at {}, model {}: prompt {:.0} tok/s, generation {:.1} tok/s, {:.2} s per request; \
         context {}",
        server.info.kind.name(),
        server.info.url,
        server.info.model,
        r.prompt_tok_per_s,
        r.decode_tok_per_s,
        r.request_seconds,
        server
            .info
            .context
            .map_or("not reported".into(), |n| format!("{n} tokens"))
    );
    println!(
        "saved {}",
        folio_engine::remote::rates::rates_path(&record.url, &record.model).display()
    );
    Ok(())
}

/// The cached profile, or a fresh measurement announced on stderr when
/// `verbose` (`engine::calibrate::ensure_profile`).
pub fn ensure_profile(verbose: bool) -> Result<DeviceProfile> {
    match cached_profile()? {
        Some(p) => Ok(p),
        None => {
            if verbose {
                eprintln!("folio: measuring this machine once for the router (`folio calibrate` re-runs it)");
            }
            calibrate(true, verbose)
        }
    }
}

fn calibrate(embed: bool, verbose: bool) -> Result<DeviceProfile> {
    let start = Instant::now();
    let mut log = |step: &str| {
        if verbose {
            eprintln!("  measuring {step} …");
        }
    };
    let (profile, path) = folio_engine::calibrate::calibrate(embed, verbose, &mut log)?;
    if verbose {
        eprintln!(
            "  done in {:.1} s; saved {}",
            start.elapsed().as_secs_f64(),
            path.display()
        );
    }
    Ok(profile)
}

fn print_profile(p: &DeviceProfile) {
    println!("device profile ({})", profile_path().display());
    println!("  cpu                 {} ({} threads)", p.cpu, p.threads);
    println!(
        "  matrix products     {:.1} GFLOP/s (f32, prefill)",
        p.matmul_gflops
    );
    println!(
        "  int8 K-quant        {:.1} GFLOP/s (prefill of K-quant matrices)",
        p.int8_matmul_gflops
    );
    println!(
        "  decoding weights    {:.1} GB/s (Q8_0 matrix-vector)",
        p.decode_gbps
    );
    println!(
        "  flash attention     {:.1} GFLOP/s (prefill)",
        p.flash_gflops
    );
    println!(
        "  sparse attention    {:.1} GFLOP/s (attended pairs, indexer included)",
        p.sparse_gflops
    );
    println!(
        "  decode attention    {:.1} GFLOP/s",
        p.decode_attention_gflops
    );
    match p.embed_chunks_per_s {
        Some(r) => println!("  embedding           {r:.0} chunks/s"),
        None => println!("  embedding           not measured"),
    }
    println!(
        "  memory              {} total, {} available when measured",
        human_bytes(p.memory_total_bytes),
        human_bytes(p.memory_available_bytes)
    );
}
