//! The samplers that may change a hole after it holds a token: uniform-state ancestral and Duo's
//! Ψ-sampler (every hole holds a token from the start; families-reference §1.4–1.5), ReMDM on
//! masked models (committed tokens can be re-masked; §1.5), and SEDD's Euler and analytic steps
//! (§2.4). Known text is never written: the
//! loops only ever touch the free holes, which is the projector of §1.8 (i).

use super::*;
use crate::diffusion::reading::log_score_in_place;
use crate::diffusion::score::{
    self, analytic_row, clamp_normalise, denoiser_row, euler_row, Graph,
};
use crate::diffusion::uniform::{
    psi_mixture, remdm_mixture, remdm_sigma, Component, Prior, RemdmSchedule,
};

/// The last time of the uniform loop: Duo's and UDLM's `generate_samples(eps=1e-5)`.
const T_END: f64 = 1e-5;

impl<'a, D: Denoiser, H: Host + ?Sized> Run<'a, D, H> {
    /// The tokens the uniform noise draws from: the ones a fill may show (every id the model
    /// proposes), so noise never writes a special token into the user's text. UDLM draws over
    /// all `vocab_size` ids; the handful of special ids left out changes the prior by < 0.1%.
    fn noise_ids(&self) -> Vec<u32> {
        (0..self.inf.allowed.len() as u32)
            .filter(|&i| self.inf.allowed[i as usize])
            .collect()
    }

    /// x_θ(id) at temperature 1 over the allowed tokens, for the k-th row of the cached pass:
    /// from the summary when it holds the id (probed or a candidate), else from the row when
    /// it is on the host, else from the device's copy of the row (a whole row read back: the
    /// uniform loop probes what it needs, so it never gets here).
    async fn prob_of(&mut self, k: usize, id: u32) -> Result<f64> {
        let cached = self.cache.as_ref().expect("a pass is cached");
        let s = &cached.summaries.rows[k];
        if let Some(p) = s.prob(id, &self.inf.allowed) {
            return Ok(p);
        }
        let v = self.inf.model.spec.vocab_size;
        let x = match &cached.summaries.logits {
            Some(l) => l[k * v + id as usize],
            None => {
                let lse = s.lse;
                let row = self.inf.denoiser.last_row_logits(k).await?;
                return Ok((row[id as usize] as f64 - lse).exp());
            }
        };
        Ok((x as f64 - s.lse).exp())
    }

    /// Uniform-state sampling (κ = 1: the ancestral posterior; κ < 1: Duo's Ψ-sampler with a
    /// constant κ), then Duo's greedy tail: one more pass whose argmax fills every hole.
    pub(super) async fn uniform(&mut self, kappa: f64) -> Result<()> {
        if self.opts.block_len.is_some() || self.opts.cfg_scale > 0.0 {
            return Err(Error::input(
                "uniform-state sampling revises every hole at every step: it takes no \
                 block-length and no cfg",
            ));
        }
        let free = self.masked.clone();
        if free.is_empty() {
            return Ok(());
        }
        let n = self.inf.model.spec.vocab_size;
        let noise = self.noise_ids();
        let rewrite: HashMap<usize, u32> = self.canvas.rewrite.iter().copied().collect();
        // step 0: the holes start as uniform noise, or as the words a `[[words]]` hole rewrites
        let mut start = Vec::with_capacity(free.len());
        for &pos in &free {
            let id = match rewrite.get(&pos) {
                Some(&id) => id,
                None => noise[self.rng.random_range(0..noise.len())],
            };
            start.push((pos, id, 1.0 / n as f64));
        }
        self.commit(start, 1.0, Vec::new());
        let steps = self.opts.steps.unwrap_or(free.len()).max(1);
        let dt = (1.0 - T_END) / steps as f64;
        let schedule = self.opts.schedule;
        for i in 0..steps {
            let t = 1.0 - i as f64 * dt;
            let s = (t - dt).max(T_END);
            let (alpha_t, alpha_s) = (1.0 - schedule.move_chance(t), 1.0 - schedule.move_chance(s));
            self.step += 1;
            // the prior's draws are made before the pass, so that the pass returns their
            // logits beside the current tokens' and no row has to come back whole
            let prior: Vec<u32> = free
                .iter()
                .map(|_| noise[self.rng.random_range(0..noise.len())])
                .collect();
            self.probes = free
                .iter()
                .zip(&prior)
                .flat_map(|(&pos, &id)| [self.ids[pos], id])
                .collect();
            let props = self.propose_rows(&free, t).await;
            self.probes.clear();
            let props = props?;
            let mut changed = Vec::new();
            for (k, &pos) in free.iter().enumerate() {
                let z = self.ids[pos];
                let p_z = self.prob_of(k, z).await?;
                let mix = psi_mixture(Prior::Uniform, alpha_t, alpha_s, kappa, n, z, p_z);
                let u: f64 = self.rng.random();
                let (id, p) = match mix.pick(u) {
                    Component::Stay => (z, p_z),
                    Component::Model => (props[k].token, props[k].p),
                    Component::Prior => (prior[k], self.prob_of(k, prior[k]).await?),
                };
                if id != z {
                    changed.push((pos, id, p));
                }
            }
            self.commit(changed, t, Vec::new());
        }
        // the greedy tail (Duo's `noise_removal=greedy`): argmax x_θ(· | x, σ(t_end)) everywhere
        self.step += 1;
        let was = self.choice;
        self.choice.temperature = 0.0;
        let props = self.propose_rows(&free, T_END).await;
        self.choice = was;
        let props = props?;
        let changed = free
            .iter()
            .zip(&props)
            .filter(|(&pos, p)| self.ids[pos] != p.token)
            .map(|(&pos, p)| (pos, p.token, p.p))
            .collect();
        self.commit(changed, T_END, Vec::new());
        Ok(())
    }

    /// ReMDM (max-capped-η) on a masked model: each step re-masks a committed hole with
    /// probability σ = min(η, (1 − α_s)/α_t) and commits a masked one with probability
    /// (α_s − (1 − σ)·α_t)/(1 − α_t), both decided from the same canvas x_t; the last step
    /// (α_s = 1) commits everything left and re-masks nothing.
    pub(super) async fn remdm(&mut self, eta: f64) -> Result<()> {
        if self.opts.block_len.is_some() {
            return Err(Error::input(
                "remdm revises the whole fill at every step: it takes no block-length",
            ));
        }
        let free = self.masked.clone();
        let steps = self.opts.steps.unwrap_or(free.len()).max(1);
        let schedule = self.opts.schedule;
        let mask = self.canvas.mask_id;
        for i in 0..steps {
            let t = 1.0 - i as f64 / steps as f64;
            let s = 1.0 - (i + 1) as f64 / steps as f64;
            let (alpha_t, alpha_s) = (1.0 - schedule.move_chance(t), 1.0 - schedule.move_chance(s));
            let sigma = remdm_sigma(RemdmSchedule::Cap, eta, alpha_t, alpha_s);
            // a masked position commits with the mixture's model weight; a clean one is
            // re-masked with its prior weight, σ
            let q = remdm_mixture(alpha_t, alpha_s, sigma, true)
                .model
                .clamp(0.0, 1.0);
            let remask = remdm_mixture(alpha_t, alpha_s, sigma, false).prior;
            self.step += 1;
            let rows: Vec<usize> = self.masked.clone();
            let props = if rows.is_empty() {
                Vec::new()
            } else {
                self.propose_rows(&rows, t).await?
            };
            let last = i + 1 == steps;
            let mut tokens = Vec::new();
            for (k, &pos) in rows.iter().enumerate() {
                if last || self.rng.random::<f64>() < q {
                    tokens.push((pos, props[k].token, props[k].p));
                }
            }
            let mut remasked = Vec::new();
            for &pos in &free {
                if !rows.contains(&pos) && self.rng.random::<f64>() < remask {
                    remasked.push(pos);
                }
            }
            for &pos in &remasked {
                self.ids[pos] = mask;
                self.masked.push(pos);
            }
            self.masked.sort_unstable();
            if !remasked.is_empty() {
                self.dirty = true;
            }
            self.commit(tokens, t, remasked);
        }
        Ok(())
    }

    /// SEDD (`sedd@0605786da5:sampling.py:get_pc_sampler`): `steps` Euler or analytic steps from
    /// t = 1 to ε = 1e-5 on the model's log score at σ(t), then the final denoiser at σ(ε).
    /// The step distributions need every entry of a row (the uniform graph's staggered score
    /// is clipped entry by entry), so each step reads the hole rows' logits whole. Known text is
    /// never written (the projector of `run_sample_cond.py`). Draws are restricted to the
    /// tokens a fill may show (and the mask, for the absorb graph's "stay masked").
    pub(super) async fn sedd(&mut self, analytic: bool) -> Result<()> {
        let spec = &self.inf.model.spec;
        let (graph, noise, scale_by_sigma) =
            score::of_spec(spec).expect("family_fits admits only score models");
        if self.opts.block_len.is_some() || self.opts.cfg_scale > 0.0 {
            return Err(Error::input(
                "the SEDD samplers revise every hole at every step: they take no block-length \
                 and no cfg",
            ));
        }
        let free = self.masked.clone();
        if free.is_empty() {
            return Ok(());
        }
        let v = spec.vocab_size;
        let mask = self.canvas.mask_id;
        // which ids a draw may land on
        let mut drawable = self.inf.allowed.clone();
        if graph == Graph::Absorb {
            drawable[v - 1] = true;
        }
        if graph == Graph::Uniform {
            let noise_ids = self.noise_ids();
            let mut start = Vec::with_capacity(free.len());
            for &pos in &free {
                let id = noise_ids[self.rng.random_range(0..noise_ids.len())];
                start.push((pos, id, 1.0 / v as f64));
            }
            self.masked.clear();
            self.commit(start, 1.0, Vec::new());
        }
        let steps = self.opts.steps.unwrap_or(free.len()).max(1);
        let dt = (1.0 - T_END) / steps as f64;
        // one pair of f64 rows for every position and step, not an allocation per row
        let (mut out, mut ls) = (vec![0.0f64; v], vec![0.0f64; v]);
        for i in 0..=steps {
            let last = i == steps;
            let t = if last { T_END } else { 1.0 - i as f64 * dt };
            let sigma = noise.sigma(t);
            self.host.before_pass().await?;
            self.step += 1;
            let mut logits = self
                .inf
                .denoiser
                .logits(&Row::plain(&self.ids, sigma as f32), &free)
                .await?;
            self.nfe += 1;
            let mut changed = Vec::new();
            for (k, &pos) in free.iter().enumerate() {
                let x = self.ids[pos];
                let row = &mut logits[k * v..(k + 1) * v];
                log_score_in_place(row, x, sigma as f32, scale_by_sigma);
                ls.iter_mut()
                    .zip(row.iter())
                    .for_each(|(d, &l)| *d = l as f64);
                if ls.iter().any(|l| l.is_nan()) {
                    return Err(Error::NonFinite {
                        step: self.step,
                        row: pos,
                    });
                }
                if last {
                    denoiser_row(graph, &ls, x, sigma, &mut out);
                } else if analytic {
                    let dsigma = sigma - noise.sigma(t - dt);
                    analytic_row(graph, &ls, x, dsigma, &mut out);
                } else {
                    euler_row(graph, &ls, x, dt, noise.rate(t), &mut out);
                }
                for (o, &ok) in out.iter_mut().zip(&drawable) {
                    if !ok {
                        *o = 0.0;
                    }
                }
                if clamp_normalise(&mut out) <= 0.0 {
                    continue; // nothing drawable has weight: the position stays
                }
                let u: f64 = self.rng.random();
                let mut acc = 0.0;
                let mut id = x;
                for (y, &p) in out.iter().enumerate() {
                    acc += p;
                    if p > 0.0 && u < acc {
                        id = y as u32;
                        break;
                    }
                }
                if id != x {
                    changed.push((pos, id, out[id as usize]));
                }
            }
            // the absorb graph commits a position when it leaves the mask
            for &(pos, id, _) in &changed {
                if id != mask {
                    self.masked.retain(|&m| m != pos);
                }
            }
            self.commit(changed, t, Vec::new());
        }
        Ok(())
    }
}
