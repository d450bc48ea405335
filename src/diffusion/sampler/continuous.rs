//! The continuous families' loop (families-reference §3.2(f), §3.6, §4): every hole starts as
//! N(0, I) noise in the model's vector space, each step is one pass over the whole canvas
//! (self-conditioned on the last estimate) and a DDIM or DDPM update, and the known positions
//! are set back to their clean vectors after every update (Diffusion-LM's infill loop,
//! DiffuSeq's `sample_seq2seq`), so the user's text never changes. Each step reports the holes
//! whose readout token changed; the last pass's readout is the fill (Plaid's final argmax,
//! Analog Bits' last x̂0 thresholded).

use super::*;
use crate::backend::VectorStep;
use crate::batch::VectorInput;
use crate::diffusion::continuous::{self, DEFAULT_STEPS};

impl<'a, D: Denoiser, H: Host + ?Sized> Run<'a, D, H> {
    /// `round`: the fraction of last steps whose x̂0 is rounded to its token's vector.
    pub(super) async fn continuous(&mut self, ancestral: bool, round: f64) -> Result<()> {
        if self.opts.block_len.is_some() || self.opts.cfg_scale > 0.0 {
            return Err(Error::input(
                "a continuous sampler moves every hole at every step: it takes no block-length \
                 and no cfg",
            ));
        }
        let spec = self.inf.model.spec.clone();
        let vs = spec
            .vectors
            .clone()
            .ok_or_else(|| Error::input("a continuous strategy on a model that reads token ids"))?;
        let noise_sched = spec
            .noise
            .ok_or_else(|| Error::input("a continuous model without a noise schedule"))?;
        let free = self.masked.clone();
        if free.is_empty() {
            return Ok(());
        }
        let (len, w) = (self.ids.len(), vs.width);
        let mut known = vec![true; len];
        for &p in &free {
            known[p] = false;
        }
        let mut clean = vec![0.0f32; len * w];
        for (p, c) in clean.chunks_mut(w).enumerate() {
            if known[p] {
                vs.clean(self.ids[p], c);
            }
        }
        // the holes start as noise; known positions hold their clean vectors throughout
        let mut z = clean.clone();
        for &p in &free {
            for v in &mut z[p * w..(p + 1) * w] {
                *v = continuous::normal(&mut self.rng);
            }
        }
        let mut x_sc = vec![0.0f32; len * w];
        let steps = self.opts.steps.unwrap_or(DEFAULT_STEPS).max(1);
        let mut noise = Vec::new();
        let mut input = Vec::with_capacity(len * 2 * w);
        let mut prior = Vec::new();
        let mut first = true;
        for i in 0..steps {
            let (t, s) = continuous::step_times(i, steps);
            let (lt, ls) = (noise_sched.levels(t), noise_sched.levels(s));
            continuous::network_input(spec.family, w, lt, &z, &x_sc, &mut input, &mut prior);
            let coefs = if ancestral {
                continuous::ddpm(lt, ls)
            } else {
                continuous::ddim(lt, ls)
            };
            noise.clear();
            if coefs.noise != 0.0 {
                // drawn for every position in canvas order, so a seed gives one run whatever
                // the backend
                noise.extend((0..len * w).map(|_| continuous::normal(&mut self.rng)));
            }
            self.step += 1;
            self.host.before_pass().await?;
            self.nfe += 1;
            let step = VectorStep {
                row: Row {
                    ids: &self.ids,
                    key_mask: None,
                    token_types: None,
                    sigma: lt.gamma as f32,
                    vectors: Some(VectorInput {
                        input: &input,
                        prior: &prior,
                    }),
                },
                z: &z,
                noise: &noise,
                known: &known,
                clean: &clean,
                z_coef: coefs.z as f32,
                x0_coef: coefs.x0 as f32,
                noise_coef: coefs.noise as f32,
                round: i as f64 >= steps as f64 * (1.0 - round) && round > 0.0,
                allowed: &self.inf.allowed,
            };
            let out = self.inf.denoiser.vector_step(&step).await?;
            let changed: Vec<(usize, u32, f64)> = free
                .iter()
                .filter(|&&p| first || out.tokens[p] != self.ids[p])
                .map(|&p| (p, out.tokens[p], out.p[p] as f64))
                .collect();
            first = false;
            self.commit(changed, t, Vec::new());
            x_sc = out.x0;
            z = out.z;
        }
        Ok(())
    }
}
