//! `unmask eval`: model quality on a text file, the yardstick for comparing models.
//!
//! Each paragraph (text between blank lines) is tokenised and cut into chunks that fit the
//! model's context inside its canvas frame. Two forward passes per chunk:
//! - accuracy: a fixed fraction of the chunk's tokens (`mask_rate`, at least one) is masked and
//!   the masked-token top-1 accuracy and cross-entropy are measured;
//! - the MDLM objective: a time t is drawn (low-discrepancy over the chunks, as MDLM trains),
//!   each token is masked with probability t, and the loss is `Σ_masked −log p(x₀) / t`
//!   (the continuous-time NELBO of the log-linear schedule). Its mean per token bounds the
//!   log-likelihood, so `exp` of it bounds the perplexity.
//!
//! Predictions are read like the sampler reads them: log-softmax over the allowed tokens (for
//! MDLM this is exactly the subs parameterisation).

use rand::seq::index::sample;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use web_time::Instant;

use super::proposal::log_softmax;
use super::Infiller;
use crate::error::{Error, Result};
use crate::text::canvas::frame;

#[derive(Clone, Debug)]
pub struct EvalOptions {
    pub mask_rate: f64,
    pub seed: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct EvalReport {
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
    /// The MDLM NELBO per token (nats), an upper bound on the negative log-likelihood.
    pub nelbo_per_token: f64,
    /// `exp(nelbo_per_token)`: an upper bound on the perplexity.
    pub ppl_bound: f64,
    pub nfe: usize,
    pub seed: u64,
    pub ms: f64,
}

const T_EPS: f64 = 1e-3;

pub fn evaluate(inf: &Infiller, text: &str, opts: &EvalOptions) -> Result<EvalReport> {
    if !(opts.mask_rate > 0.0 && opts.mask_rate <= 1.0) {
        return Err(Error::input(format!(
            "mask rate must be in (0, 1], not {}",
            opts.mask_rate
        )));
    }
    let t0 = Instant::now();
    let model = &inf.model;
    let tok = inf.tokenizer();
    let mask = model.mask_id()?.expect("infillers have a tokenizer");
    let (pre, suf) = frame(tok, model.spec.canvas)?;
    let room = model.spec.max_len.saturating_sub(pre.len() + suf.len());
    if room == 0 {
        return Err(Error::input(
            "the model's context has no room inside its canvas frame",
        ));
    }
    let paragraphs: Vec<&str> = text
        .split("\n\n")
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    let mut chunks: Vec<Vec<u32>> = Vec::new();
    for p in &paragraphs {
        let ids = tok.encode(p, false)?;
        chunks.extend(ids.chunks(room).map(|c| c.to_vec()));
    }
    if chunks.is_empty() {
        return Err(Error::input("the text has no paragraphs to evaluate"));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let u0: f64 = rng.random();
    let k = chunks.len();
    let (mut tokens, mut masked, mut correct, mut nfe) = (0usize, 0usize, 0usize, 0usize);
    let (mut ce, mut nelbo) = (0.0f64, 0.0f64);
    for (ci, chunk) in chunks.iter().enumerate() {
        let n = chunk.len();
        tokens += n;
        let mut canvas: Vec<u32> = pre.iter().chain(chunk).chain(&suf).copied().collect();
        let truth = canvas.clone();
        let off = pre.len();
        // accuracy pass at the fixed rate
        let m = ((opts.mask_rate * n as f64).round() as usize).clamp(1, n);
        let mut rows: Vec<usize> = sample(&mut rng, n, m)
            .into_iter()
            .map(|i| off + i)
            .collect();
        rows.sort_unstable();
        for &r in &rows {
            canvas[r] = mask;
        }
        for (lp, hit) in score_rows(model, inf, &canvas, &truth, &rows)? {
            ce -= lp;
            correct += usize::from(hit);
        }
        nfe += 1;
        masked += m;
        // MDLM objective at a low-discrepancy t
        let t = T_EPS + (1.0 - T_EPS) * ((u0 + ci as f64 / k as f64) % 1.0);
        let mut canvas = truth.clone();
        let rows: Vec<usize> = (off..off + n).filter(|_| rng.random::<f64>() < t).collect();
        if rows.is_empty() {
            continue;
        }
        for &r in &rows {
            canvas[r] = mask;
        }
        let loss: f64 = score_rows(model, inf, &canvas, &truth, &rows)?
            .iter()
            .map(|(lp, _)| -lp)
            .sum();
        nfe += 1;
        nelbo += loss / t;
    }
    let nelbo_per_token = nelbo / tokens as f64;
    Ok(EvalReport {
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
    })
}

/// For each masked row: log p(true token) and whether the argmax is the true token.
fn score_rows(
    model: &crate::model::Model,
    inf: &Infiller,
    canvas: &[u32],
    truth: &[u32],
    rows: &[usize],
) -> Result<Vec<(f64, bool)>> {
    let v = model.spec.vocab_size;
    let logits = model.denoise(canvas, rows, 0.0, inf.backend)?;
    Ok(rows
        .iter()
        .enumerate()
        .map(|(i, &r)| {
            let lp = log_softmax(&logits[i * v..(i + 1) * v], &inf.allowed, 1.0);
            let want = truth[r] as usize;
            let best = (0..v).fold(0, |b, a| if lp[a] > lp[b] { a } else { b });
            (lp[want], best == want)
        })
        .collect())
}
