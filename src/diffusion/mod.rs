//! The diffusion side: how a denoiser's output is read as a distribution over clean tokens
//! (`subs`), and — with the infill issue — noise schedules, unmasking strategies, the sampler
//! loop and the step trace.

pub mod subs;
