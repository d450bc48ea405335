//! The step trace (design brief §3): one event per denoising step and a last `done` event. The
//! CLI writes them as JSON lines (`--trace`); the library hands them to a callback.

use serde::Serialize;

/// One of a position's most likely tokens when it was committed (the teaching views' bars).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Candidate {
    pub id: u32,
    /// The token's text in context.
    pub text: String,
    /// Its probability under the model (not temperature-scaled).
    pub p: f64,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Commit {
    /// Canvas position.
    pub pos: usize,
    pub id: u32,
    /// The token's text in context.
    pub text: String,
    /// The model's probability of this token when it was chosen (not temperature-scaled).
    pub p: f64,
    /// With `candidates` > 0: the position's most likely tokens at that step, descending.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub top: Vec<Candidate>,
}

/// A position the step predicted but left masked, with its most likely tokens at that step.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Pending {
    pub pos: usize,
    pub top: Vec<Candidate>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct StepEvent {
    pub step: usize,
    /// Diffusion time the model saw at this step (1 = all masked).
    pub t: f64,
    /// Forward passes so far.
    pub nfe: usize,
    pub committed: Vec<Commit>,
    /// Holes still masked after this step.
    pub masked: usize,
    /// Mask-Predict only: positions re-masked before this step's prediction.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub remasked: Vec<usize>,
    /// With `pending`: the positions this step predicted but left masked, in canvas order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<Pending>,
    /// Block diffusion (a model with block-causal attention, BD3LM): the block of canvas
    /// positions this step decodes, `{"start": a, "end": b}` (b exclusive; the model's blocks
    /// of N positions from position 0, the last one cut at the canvas's end). Absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub block: Option<BlockSpan>,
}

/// The canvas positions `start..end` of one block of a block-diffusion model.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
pub struct BlockSpan {
    pub start: usize,
    pub end: usize,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct DoneEvent {
    pub done: bool,
    pub text: String,
    pub steps: usize,
    pub nfe: usize,
    pub ms: f64,
}

/// A hole grew (DreamOn's expand, `diffusion::expand`): `{"expand": pos, …}`, after the step
/// that committed `<|expand|>` at `pos`. That position and a new one at `pos + 1` are masks;
/// every later position moved one to the right.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ExpandEvent {
    pub expand: usize,
    pub step: usize,
    /// Which hole of unknown length (template order, from 0).
    pub hole: usize,
    /// Its length now.
    pub length: usize,
    /// Holes still masked.
    pub masked: usize,
}

/// A hole shrank (DreamOn's delete): `{"delete": [positions], …}`, after the step that committed
/// the end token at the first of them. The positions (canvas positions before the change,
/// ascending) are gone; every later position moved left by the number removed before it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct DeleteEvent {
    pub delete: Vec<usize>,
    pub step: usize,
    pub hole: usize,
    pub length: usize,
    pub masked: usize,
}

/// One line of the trace. Serialised untagged: a step event is `{"step": …}`, the last event
/// `{"done": true, …}` (design brief §3); a template with holes of unknown length has a
/// `{"lengths": […]}` line before it, or, on a model that grows holes, `{"expand": …}` and
/// `{"delete": …}` lines after the steps that change a hole's length; the CLI's `--trace`, the library's callback and the
/// JS `onStep` carry the same fields.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum TraceEvent {
    Step(StepEvent),
    /// Holes of unknown length: every fill tried and its score, just before `done`.
    Lengths(super::lengths::LengthsEvent),
    Expand(ExpandEvent),
    Delete(DeleteEvent),
    Done(DoneEvent),
}

impl TraceEvent {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("trace events serialise")
    }
}
