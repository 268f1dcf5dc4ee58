//! Turns `--device` into the engine's placement of a model, telling the
//! user (on stderr, before the answer) when the GPU asked for is not used.

use folio_engine::device::{DeviceRequest, Placement};
use folio_engine::llm::Model;

/// Places `model` as `request` asks; a `cuda` request that falls back to
/// the CPU says why (an `auto` one falls back quietly; its cards say so
/// only when a GPU was found).
pub fn place(model: &Model, request: DeviceRequest) -> Placement {
    let placement = Placement::prepare(model, request);
    if let (Some(note), DeviceRequest::Cuda) = (placement.note(), request) {
        eprintln!("folio: {note}");
    }
    placement
}
