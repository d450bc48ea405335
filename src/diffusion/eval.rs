//! `unmask eval`: model quality on a text file, the yardstick for comparing models.
//!
//! Each paragraph (text between blank lines; `\r\n` and a lone `\r` end lines as `\n` does) is
//! tokenised and cut into chunks that fit the
//! model's context inside its canvas frame. Two forward passes per chunk:
//! - accuracy: a fixed fraction of the chunk's tokens (`mask_rate`, at least one) is masked and
//!   the masked-token top-1 accuracy and cross-entropy are measured;
//! - the MDLM objective: a time t is drawn (low-discrepancy over the chunks, as MDLM trains),
//!   each token is masked with probability t, and the loss is `Σ_masked −log p(x₀) / t`
//!   (the continuous-time NELBO of the log-linear schedule). Its mean per token bounds the
//!   log-likelihood, so `exp` of it bounds the perplexity.
//!
//! Uniform-state models (UDLM, Duo) are scored by their own family's rules: the accuracy pass
//! replaces the chosen tokens with uniform noise instead of the mask (the model cannot tell
//! which tokens were replaced, which is its task), and the objective pass replaces each token
//! with probability 1 − α_t = (1 − ε)·t by a uniform draw over all N ids and sums the closed-form
//! uniform NELBO (`uniform::nelbo_duo`, families-reference §1.7) over every position, reading
//! the model's full log-softmax over the N ids it was trained on. The noise ids are hashes too:
//! id `hash3(seed ^ NOISE, c, i) mod N`.
//!
//! SEDD models are scored by theirs: the accuracy pass corrupts the chosen tokens as their graph
//! does (the mask, or uniform noise) at the σ where a token has moved with probability
//! `mask_rate`, and predicts with the final denoiser (`score::denoiser_row`); the objective pass
//! moves each token with probability 1 − e^{−σ(t)} and sums `g(t)·score_entropy` (`sedd_bound`).
//!
//! The continuous families (Gaussian on embeddings, Analog Bits) are scored by theirs
//! (`eval/continuous.rs`): the accuracy pass replaces the chosen tokens with pure noise in the
//! model's vector space, and the bound is the continuous-time VP diffusion bound (VDM's, as
//! Plaid computes it).
//!
//! The accuracy pass also bins its masked tokens by the top probability (`calibration`, `ece`):
//! what threshold decoding can commit at each threshold, and how often that is right.
//!
//! Predictions are read like the sampler reads them: log-softmax over the allowed tokens (for
//! MDLM this is the subs parameterisation, with the special tokens suppressed as well).
//!
//! The masks come from SplitMix64 hashes of (seed, chunk, position), not from a stream, so that
//! an independent implementation (`train/eval.py`) can mask exactly the same tokens and the two
//! figures can be compared to the digit:
//! - accuracy pass: the `max(1, ⌊R·n + ½⌋)` positions with the smallest `hash3(seed, c, 2i)`;
//! - objective pass: `u0 = hash3(seed, K, 0)/2⁶⁴`, `t_c = ε + (1 − ε)·((u0 + c/K) mod 1)`, and
//!   position i is masked when `hash3(seed, c, 2i + 1)/2⁶⁴ < t_c`.
//!
//! Text that cannot be scored is refused with the reason, never reported as a figure that means
//! nothing: a text with no paragraphs or no tokens; a paragraph holding a token the model never
//! predicts (its special tokens, the mask, `[UNK]` for characters the vocabulary cannot spell),
//! whose log-probability is −∞; a text so short that the objective pass masked none of its
//! tokens; and a model whose scores are not finite (NaN or infinite weights), named by paragraph.

use serde::{Deserialize, Serialize};
use web_time::Instant;

mod continuous;

use super::proposal::log_softmax;
use super::reading::log_score_in_place;
use super::score;
use super::seeded::{hash3, unit};
use super::{Infiller, Schedule};
use crate::backend::Denoiser;
use crate::batch::Row;
use crate::error::{Error, Result};
use crate::text::canvas::frame;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct EvalOptions {
    /// Fraction of each chunk's tokens masked for the accuracy figure.
    pub mask_rate: f64,
    pub seed: u64,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            mask_rate: 0.15,
            seed: 0,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct EvalReport {
    /// The model's family, which decides the corruption and the bound: `absorbing` (the mask,
    /// MDLM's NELBO), `uniform` (uniform noise, the uniform-state NELBO) or `score` (SEDD's
    /// graph, the score-entropy bound).
    pub family: crate::model::Family,
    /// Σ over chunks of the masked tokens' NLL / t (nats), before dividing by `tokens`.
    pub nelbo_sum: f64,
    pub paragraphs: usize,
    pub chunks: usize,
    /// Tokens scored (the frame's special tokens are not counted).
    pub tokens: usize,
    pub mask_rate: f64,
    /// Tokens masked in the accuracy pass.
    pub masked: usize,
    /// Masked-token top-1 accuracy at `mask_rate`.
    pub accuracy: f64,
    /// Mean cross-entropy (nats) of the masked tokens at `mask_rate`.
    pub masked_ce: f64,
    /// The family's NELBO per token (nats), an upper bound on the negative log-likelihood.
    pub nelbo_per_token: f64,
    /// `exp(nelbo_per_token)`: an upper bound on the perplexity.
    pub ppl_bound: f64,
    pub nfe: usize,
    pub seed: u64,
    pub ms: f64,
    /// The accuracy pass's masked tokens binned by the model's top probability (tenths):
    /// how often the top token is right at each confidence. Threshold decoding commits what
    /// clears its threshold, so this says how much it can commit and how well.
    pub calibration: Vec<CalibrationBin>,
    /// Expected calibration error over those bins: Σ (tokens/all)·|accuracy − mean p|.
    pub ece: f64,
}

/// Masked tokens whose top probability lies in `[lo, hi)` (the last bin includes 1).
#[derive(Clone, Debug, Serialize)]
pub struct CalibrationBin {
    pub lo: f64,
    pub hi: f64,
    pub tokens: usize,
    /// Their mean top probability.
    pub mean_p: f64,
    /// How often their top token is the true one.
    pub accuracy: f64,
}

/// Ten bins of (top probability, right) pairs, and the expected calibration error.
pub fn calibration(pairs: &[(f64, bool)]) -> (Vec<CalibrationBin>, f64) {
    let mut sums = [(0usize, 0.0f64, 0usize); 10];
    for &(p, hit) in pairs {
        let b = ((p * 10.0) as usize).min(9);
        sums[b].0 += 1;
        sums[b].1 += p;
        sums[b].2 += usize::from(hit);
    }
    let all = pairs.len().max(1) as f64;
    let mut ece = 0.0;
    let bins = sums
        .iter()
        .enumerate()
        .map(|(b, &(n, p, hits))| {
            let (mean_p, accuracy) = match n {
                0 => (0.0, 0.0),
                n => (p / n as f64, hits as f64 / n as f64),
            };
            ece += n as f64 / all * (accuracy - mean_p).abs();
            CalibrationBin {
                lo: b as f64 / 10.0,
                hi: (b + 1) as f64 / 10.0,
                tokens: n,
                mean_p,
                accuracy,
            }
        })
        .collect();
    (bins, ece)
}

const T_EPS: f64 = 1e-3;

/// Salt of the uniform-noise hashes, so the noise ids do not repeat the position choices.
const NOISE: u64 = 0x05EE_D0F0_015E;

/// The uniform-noise id of position `i` of chunk `c` (accuracy pass: `i` = 2·token; objective
/// pass: 2·token + 1), over `n` ids.
pub fn noise_id(seed: u64, c: usize, i: usize, n: usize) -> u32 {
    (hash3(seed ^ NOISE, c as u64, i as u64) % n as u64) as u32
}

/// Scores `text` (see the module documentation). A time-conditioned model sees, for each pass,
/// σ(t) of the default (log-linear) schedule at that pass's masking level: `mask_rate` for the
/// accuracy pass, the chunk's t for the objective.
pub async fn evaluate<D: Denoiser>(
    inf: &mut Infiller<D>,
    text: &str,
    opts: &EvalOptions,
) -> Result<EvalReport> {
    evaluate_with(inf, text, opts, &mut |_, _| {}).await
}

/// [`evaluate`], calling `progress(tokens scored, tokens in all)` after each chunk (the CLI's
/// progress bar).
pub async fn evaluate_with<D: Denoiser>(
    inf: &mut Infiller<D>,
    text: &str,
    opts: &EvalOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<EvalReport> {
    if !(opts.mask_rate > 0.0 && opts.mask_rate <= 1.0) {
        return Err(Error::input(format!(
            "mask rate must be in (0, 1], not {}",
            opts.mask_rate
        )));
    }
    let t0 = Instant::now();
    let model = &inf.model;
    let tok = inf.tokenizer();
    let mask = inf.mask;
    let (pre, suf) = frame(tok, model.spec.canvas)?;
    let room = model.spec.max_len.saturating_sub(pre.len() + suf.len());
    let timed = model.spec.time_conditioning;
    let family = model.spec.family;
    let sedd = score::of_spec(&model.spec);
    // the corruption is uniform noise for uniform-state models and SEDD's uniform graph
    let uniform = family == crate::model::Family::Uniform
        || matches!(sedd, Some((score::Graph::Uniform, ..)));
    let vocab = model.spec.vocab_size;
    let is_continuous = family.is_continuous();
    let sigma_at = |t: f64| {
        if timed {
            Schedule::default().sigma(t) as f32
        } else {
            0.0
        }
    };
    if room == 0 {
        return Err(Error::input(
            "the model's context has no room inside its canvas frame",
        ));
    }
    let text = newlines_as_lf(text);
    let paragraphs: Vec<&str> = text
        .split("\n\n")
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    if paragraphs.is_empty() {
        return Err(Error::input(
            "the text is empty or only whitespace: nothing to score",
        ));
    }
    // each chunk's tokens and the paragraph (from 1) it comes from
    let mut chunks: Vec<Vec<u32>> = Vec::new();
    let mut origin: Vec<usize> = Vec::new();
    for (pi, p) in paragraphs.iter().enumerate() {
        let ids = tok.encode(p, false)?;
        if let Some(&bad) = ids
            .iter()
            .find(|&&id| inf.allowed.get(id as usize) != Some(&true))
        {
            let name = tok
                .id_to_token(bad)
                .map_or_else(|| format!("id {bad}"), |t| format!("`{t}` (id {bad})"));
            return Err(Error::input(format!(
                "paragraph {}: cannot score the token {name}: the model never predicts it (a \
                 special token, the mask, or the unknown token for characters its vocabulary \
                 cannot spell), so its log-probability is -inf; remove it from the text",
                pi + 1
            )));
        }
        for c in ids.chunks(room) {
            chunks.push(c.to_vec());
            origin.push(pi + 1);
        }
    }
    if chunks.is_empty() {
        return Err(Error::input(format!(
            "the text gives no tokens to score ({} paragraph{}, all dropped by the tokenizer)",
            paragraphs.len(),
            if paragraphs.len() == 1 { "" } else { "s" }
        )));
    }
    let k = chunks.len();
    let total: usize = chunks.iter().map(Vec::len).sum();
    let mut objective_masked = 0usize;
    let u0 = unit(hash3(opts.seed, k as u64, 0));
    let (mut tokens, mut masked, mut correct, mut nfe) = (0usize, 0usize, 0usize, 0usize);
    let (mut ce, mut nelbo) = (0.0f64, 0.0f64);
    let mut confidence = Vec::new();
    for (ci, chunk) in chunks.iter().enumerate() {
        let n = chunk.len();
        tokens += n;
        let mut canvas: Vec<u32> = pre.iter().chain(chunk).chain(&suf).copied().collect();
        let truth = canvas.clone();
        let off = pre.len();
        // accuracy pass at the fixed rate
        let m = ((opts.mask_rate * n as f64 + 0.5).floor() as usize).clamp(1, n);
        let mut order: Vec<(u64, usize)> = (0..n)
            .map(|i| (hash3(opts.seed, ci as u64, 2 * i as u64), i))
            .collect();
        order.sort_unstable();
        let mut rows: Vec<usize> = order[..m].iter().map(|&(_, i)| off + i).collect();
        rows.sort_unstable();
        for &r in &rows {
            // the family's corruption: the mask, or uniform noise for a uniform-state model
            canvas[r] = if uniform {
                noise_id(opts.seed, ci, 2 * (r - off), vocab)
            } else {
                mask
            };
        }
        let at = Place {
            paragraph: origin[ci],
            chunk: ci + 1,
            off,
        };
        let cont = continuous::Chunk {
            truth: &truth,
            off,
            n,
            index: ci,
            seed: opts.seed,
        };
        let scored = match sedd {
            _ if is_continuous => continuous::accuracy(inf, &cont, &rows).await?,
            // σ at which a token has moved with probability `mask_rate`
            Some(s) => {
                let sigma = -(1.0 - opts.mask_rate.min(1.0 - 1e-6)).ln();
                sedd_rows(inf, s, &canvas, sigma, &truth, &rows, &at).await?
            }
            None => score_rows(inf, &canvas, sigma_at(opts.mask_rate), &truth, &rows, &at).await?,
        };
        for (lp, hit, top) in scored {
            ce -= lp;
            correct += usize::from(hit);
            confidence.push((top, hit));
        }
        nfe += 1;
        masked += m;
        // MDLM objective at a low-discrepancy t
        let t = T_EPS + (1.0 - T_EPS) * ((u0 + ci as f64 / k as f64) % 1.0);
        if is_continuous {
            let (loss, passes) = continuous::bound(inf, &cont, t).await?;
            nelbo += loss;
            nfe += passes;
            objective_masked += n;
            progress(tokens, total);
            continue;
        }
        if let Some(s) = sedd {
            let (loss, scored) =
                sedd_bound(inf, s, t, &truth, (ci, off, n), opts.seed, &at).await?;
            nelbo += loss;
            nfe += usize::from(scored > 0);
            objective_masked += scored;
            progress(tokens, total);
            continue;
        }
        if uniform {
            let sched = Schedule::default();
            let alpha_t = 1.0 - sched.move_chance(t);
            let mut canvas = truth.clone();
            for i in 0..n {
                if unit(hash3(opts.seed, ci as u64, 2 * i as u64 + 1)) < 1.0 - alpha_t {
                    canvas[off + i] = noise_id(opts.seed, ci, 2 * i + 1, vocab);
                }
            }
            let rows: Vec<usize> = (off..off + n).collect();
            nelbo += uniform_bound(inf, &canvas, sigma_at(t), &truth, &rows, alpha_t, &at).await?;
            nfe += 1;
            objective_masked += n;
            progress(tokens, total);
            continue;
        }
        let mut canvas = truth.clone();
        let rows: Vec<usize> = (0..n)
            .filter(|&i| unit(hash3(opts.seed, ci as u64, 2 * i as u64 + 1)) < t)
            .map(|i| off + i)
            .collect();
        if rows.is_empty() {
            progress(tokens, total);
            continue;
        }
        for &r in &rows {
            canvas[r] = mask;
        }
        let loss: f64 = score_rows(inf, &canvas, sigma_at(t), &truth, &rows, &at)
            .await?
            .iter()
            .map(|(lp, _, _)| -lp)
            .sum();
        nfe += 1;
        nelbo += loss / t;
        objective_masked += rows.len();
        progress(tokens, total);
    }
    if objective_masked == 0 {
        return Err(Error::input(format!(
            "the text is too short to score: the objective pass corrupts each token with a \
             probability drawn per chunk, and at this seed it corrupted none of the {tokens} \
             tokens, so there is no bound; give more text (or another --seed)"
        )));
    }
    let nelbo_per_token = nelbo / tokens as f64;
    let (calibration, ece) = calibration(&confidence);
    let report = EvalReport {
        family,
        nelbo_sum: nelbo,
        paragraphs: paragraphs.len(),
        chunks: k,
        tokens,
        mask_rate: opts.mask_rate,
        masked,
        accuracy: correct as f64 / masked as f64,
        masked_ce: ce / masked as f64,
        nelbo_per_token,
        ppl_bound: nelbo_per_token.exp(),
        nfe,
        seed: opts.seed,
        ms: t0.elapsed().as_secs_f64() * 1e3,
        calibration,
        ece,
    };
    for (name, x) in [
        ("accuracy", report.accuracy),
        ("masked cross-entropy", report.masked_ce),
        ("NELBO", report.nelbo_per_token),
        ("perplexity bound", report.ppl_bound),
    ] {
        if !x.is_finite() {
            return Err(Error::input(format!(
                "the {name} is {x}, not a finite figure, over {tokens} tokens in {k} chunks"
            )));
        }
    }
    Ok(report)
}

/// `\r\n` and a lone `\r` as `\n`, so a file's paragraphs do not depend on its newlines.
fn newlines_as_lf(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains('\r') {
        text.replace("\r\n", "\n").replace('\r', "\n").into()
    } else {
        text.into()
    }
}

/// Where a chunk is, for the messages: its paragraph and its number (both from 1), and the
/// offset of its first token in the canvas.
struct Place {
    paragraph: usize,
    chunk: usize,
    off: usize,
}

/// The uniform-state NELBO summed over `rows` (every token of a chunk): each row's full
/// log-softmax over the N ids (no token suppressed: the distribution the bound is defined on),
/// the true token, the canvas token and α_t of the log-linear schedule, α'_t = −(1 − ε).
async fn uniform_bound<D: Denoiser>(
    inf: &mut Infiller<D>,
    canvas: &[u32],
    sigma: f32,
    truth: &[u32],
    rows: &[usize],
    alpha_t: f64,
    at: &Place,
) -> Result<f64> {
    let v = inf.model.spec.vocab_size;
    let logits = inf
        .denoiser
        .logits(&Row::plain(canvas, sigma), rows)
        .await?;
    let all = vec![true; v];
    let dalpha = -(1.0 - T_EPS);
    let mut sum = 0.0;
    for (i, &r) in rows.iter().enumerate() {
        let lp = log_softmax(&logits[i * v..(i + 1) * v], &all, 1.0);
        let ell = super::uniform::nelbo_duo(&lp, truth[r], canvas[r], alpha_t, dalpha);
        if !ell.is_finite() {
            return Err(Error::input(format!(
                "paragraph {}: the bound at token {} of chunk {} is {ell}, not finite (are the \
                 model's weights finite?)",
                at.paragraph,
                r - at.off + 1,
                at.chunk
            )));
        }
        sum += ell;
    }
    Ok(sum)
}

/// SEDD's accuracy pass: for each corrupted row, the final denoiser's distribution over the
/// allowed tokens at σ (`score::denoiser_row`, clipped and renormalised as the sampler draws
/// from it): log p(true token), whether its argmax is the true token, and its top probability.
async fn sedd_rows<D: Denoiser>(
    inf: &mut Infiller<D>,
    (graph, _, scale_by_sigma): (score::Graph, score::Noise, bool),
    canvas: &[u32],
    sigma: f64,
    truth: &[u32],
    rows: &[usize],
    at: &Place,
) -> Result<Vec<(f64, bool, f64)>> {
    let v = inf.model.spec.vocab_size;
    let mut logits = inf
        .denoiser
        .logits(&Row::plain(canvas, sigma as f32), rows)
        .await?;
    let (mut ls, mut out) = (vec![0.0f64; v], vec![0.0f64; v]);
    let mut scored = Vec::with_capacity(rows.len());
    for (i, &r) in rows.iter().enumerate() {
        let row = &mut logits[i * v..(i + 1) * v];
        log_score_in_place(row, canvas[r], sigma as f32, scale_by_sigma);
        ls.iter_mut()
            .zip(row.iter())
            .for_each(|(d, &l)| *d = l as f64);
        score::denoiser_row(graph, &ls, canvas[r], sigma, &mut out);
        for (o, &ok) in out.iter_mut().zip(&inf.allowed) {
            if !ok {
                *o = 0.0;
            }
        }
        let want = truth[r] as usize;
        if score::clamp_normalise(&mut out) <= 0.0 || !out[want].is_finite() {
            return Err(not_finite(at, r, "denoising distribution"));
        }
        let best = (0..v).fold(0, |b, a| if out[a] > out[b] { a } else { b });
        scored.push((out[want].ln(), best == want, out[best]));
    }
    Ok(scored)
}

/// SEDD's bound for one chunk at time t: each token moves with probability 1 − e^{−σ(t)} (to the
/// mask, or for the uniform graph to a uniform draw over all ids, itself included, as
/// `graph_lib.py:sample_transition` does), and the loss is `Σ g(t)·score_entropy` over the
/// positions the graph scores (the masked ones for absorb, every one for uniform)
/// (`losses.py:get_loss_fn`; its time integral, estimated one t per chunk, bounds the NLL up to
/// the prior's term, which is below 1e-8 nats per token at σ_max = 20). Returns the loss and the
/// positions scored.
async fn sedd_bound<D: Denoiser>(
    inf: &mut Infiller<D>,
    (graph, noise, scale_by_sigma): (score::Graph, score::Noise, bool),
    t: f64,
    truth: &[u32],
    (ci, off, n): (usize, usize, usize),
    seed: u64,
    at: &Place,
) -> Result<(f64, usize)> {
    let v = inf.model.spec.vocab_size;
    let sigma = noise.sigma(t);
    let moved = -(-sigma).exp_m1();
    let mut canvas = truth.to_vec();
    let mut rows = Vec::new();
    for i in 0..n {
        if unit(hash3(seed, ci as u64, 2 * i as u64 + 1)) < moved {
            canvas[off + i] = match graph {
                score::Graph::Absorb => inf.mask,
                score::Graph::Uniform => noise_id(seed, ci, 2 * i + 1, v),
            };
            if graph == score::Graph::Absorb {
                rows.push(off + i);
            }
        }
    }
    if graph == score::Graph::Uniform {
        rows = (off..off + n).collect();
    }
    if rows.is_empty() {
        return Ok((0.0, 0));
    }
    let mut logits = inf
        .denoiser
        .logits(&Row::plain(&canvas, sigma as f32), &rows)
        .await?;
    let mut ls = vec![0.0f64; v];
    let mut loss = 0.0;
    for (i, &r) in rows.iter().enumerate() {
        let row = &mut logits[i * v..(i + 1) * v];
        log_score_in_place(row, canvas[r], sigma as f32, scale_by_sigma);
        ls.iter_mut()
            .zip(row.iter())
            .for_each(|(d, &l)| *d = l as f64);
        let ell = score::score_entropy_loss(graph, noise, t, &ls, canvas[r], truth[r]);
        if !ell.is_finite() {
            return Err(not_finite(at, r, "score-entropy loss"));
        }
        loss += ell;
    }
    Ok((loss, rows.len()))
}

/// The error of a row whose figure is not a finite number.
fn not_finite(at: &Place, r: usize, what: &str) -> Error {
    Error::input(format!(
        "paragraph {}: the {what} at token {} of chunk {} is not finite (are the model's          weights finite?)",
        at.paragraph,
        r - at.off + 1,
        at.chunk
    ))
}

/// For each masked row: log p(true token), whether the argmax is the true token, and the
/// argmax's probability.
async fn score_rows<D: Denoiser>(
    inf: &mut Infiller<D>,
    canvas: &[u32],
    sigma: f32,
    truth: &[u32],
    rows: &[usize],
    at: &Place,
) -> Result<Vec<(f64, bool, f64)>> {
    let v = inf.model.spec.vocab_size;
    // the output rows that predict these positions (Dream's: one before each)
    let out_rows = inf.model.spec.logit_rows(rows);
    let logits = inf
        .denoiser
        .logits(&Row::plain(canvas, sigma), &out_rows)
        .await?;
    rows.iter()
        .enumerate()
        .map(|(i, &r)| {
            let lp = log_softmax(&logits[i * v..(i + 1) * v], &inf.allowed, 1.0);
            let want = truth[r] as usize;
            if !lp[want].is_finite() {
                return Err(Error::input(format!(
                    "paragraph {}: the model's log-probability of token {} of chunk {} is {}, \
                     not finite (are its weights finite?)",
                    at.paragraph,
                    r - at.off + 1,
                    at.chunk,
                    lp[want]
                )));
            }
            let best = (0..v).fold(0, |b, a| if lp[a] > lp[b] { a } else { b });
            Ok((lp[want], best == want, lp[best].exp()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calibration_bins_count_accuracy_against_confidence() {
        let pairs = [
            (0.05, false),
            (0.15, true),
            (0.95, true),
            (1.0, true),
            (0.92, false),
        ];
        let (bins, ece) = calibration(&pairs);
        assert_eq!(bins.len(), 10);
        assert_eq!(bins.iter().map(|b| b.tokens).sum::<usize>(), 5);
        let top = &bins[9];
        assert_eq!(top.tokens, 3, "1.0 falls in the last bin");
        assert!((top.accuracy - 2.0 / 3.0).abs() < 1e-12);
        assert!((top.mean_p - (0.95 + 1.0 + 0.92) / 3.0).abs() < 1e-12);
        assert_eq!((bins[0].tokens, bins[0].accuracy), (1, 0.0));
        assert_eq!((bins[1].tokens, bins[1].accuracy), (1, 1.0));
        // |0 − 0.05|/5 + |1 − 0.15|/5 + 3/5·|2/3 − 0.9567|
        let want = 0.05 / 5.0 + 0.85 / 5.0 + 0.6 * ((0.95 + 1.0 + 0.92) / 3.0 - 2.0 / 3.0);
        assert!((ece - want).abs() < 1e-12, "{ece} vs {want}");
        assert_eq!(calibration(&[]).1, 0.0);
    }
}
