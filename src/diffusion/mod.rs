//! The diffusion side: how a denoiser's output is read as a distribution over clean tokens
//! (`subs`, `reading`, `proposal`), noise schedules, unmasking strategies, the sampler loop and
//! its trace, (`noising`) the noising process of four diffusion families on a model's
//! vocabulary, and the step math of other families as pure f64 functions: uniform-state
//! (`uniform`: UDLM, Duo, Duo's Ψ-samplers, ReMDM), score-entropy (`score`: SEDD) and the
//! continuous families (`continuous`: Gaussian on embeddings, Analog Bits).

pub mod continuous;
pub mod eval;
pub mod expand;
pub mod lengths;
pub mod noising;
pub mod options;
pub mod proposal;
pub mod reading;
pub mod sampler;
pub mod schedule;
pub mod score;
pub mod seeded;
pub mod spans;
pub mod strategy;
pub mod subs;
pub mod trace;
pub mod uniform;

pub use options::{Force, InfillOptions, InfillReport};
pub use proposal::TokenChoice;
pub use sampler::{Host, InfillResult, Infiller, SamplerOptions};
pub use schedule::{Schedule, ScheduleKind};
pub use strategy::Strategy;
pub use trace::TraceEvent;
