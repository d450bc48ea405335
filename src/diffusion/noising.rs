//! Noising: the forward *process* of four families of discrete diffusion ("forward" alone means
//! the network's pass in this crate), run on a model's own vocabulary and token embeddings, so
//! a teaching surface can show what each family does to a sentence at a noise level t ∈ [0, 1]:
//!
//! - **Absorbing** (D3PM-absorbing, MDLM): each token becomes the mask with probability
//!   `1 − α_t` (the schedule's move chance).
//! - **Uniform** (D3PM-uniform): each token, with the same probability, is replaced by a token
//!   drawn uniformly from the drawable vocabulary (it may draw itself).
//! - **Gaussian** (Diffusion-LM, DiffuSeq): the token's embedding, scaled to unit RMS, is noised
//!   as `x = √ᾱ·z + √(1−ᾱ)·ε` with the cosine `ᾱ(t) = cos²(πt/2)`, then read back as the token
//!   the forward Gaussian makes most likely: `argmin_v ‖x − √ᾱ·z_v‖²`.
//! - **Bits** (Analog Bits): the id's binary digits as ±1, noised the same way, thresholded at 0
//!   and read back as an id, which may lie past the vocabulary.
//!
//! Every draw comes from one ChaCha8 stream seeded by the caller and the transcendental
//! functions are `libm`'s, so a seed gives the same tokens natively and in wasm (up to exact
//! ties in the Gaussian family's nearest-token search, whose dot products are gemm's).

use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::backend::cpu::matmul::matmul_nt;
use crate::diffusion::schedule::Schedule;
use crate::error::{Error, Result};
use crate::model::Model;
use crate::tensor::Tensor;

/// A family of discrete diffusion, by how its forward process corrupts a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Absorbing,
    Uniform,
    Gaussian,
    Bits,
}

impl Family {
    pub const ALL: [Family; 4] = [
        Family::Absorbing,
        Family::Uniform,
        Family::Gaussian,
        Family::Bits,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Family::Absorbing => "absorbing",
            Family::Uniform => "uniform",
            Family::Gaussian => "gaussian",
            Family::Bits => "bits",
        }
    }

    /// `absorbing`, `uniform`, `gaussian` or `bits`; anything else is an input error that
    /// lists them.
    pub fn parse(name: &str) -> Result<Family> {
        Family::ALL
            .into_iter()
            .find(|f| f.name() == name)
            .ok_or_else(|| {
                Error::input(format!(
                    "family `{name}`: expected 'absorbing', 'uniform', 'gaussian' or 'bits'"
                ))
            })
    }
}

/// One token after the forward process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Noised {
    /// `None`: an Analog-Bits id past the vocabulary, which is no token at all.
    pub id: Option<u32>,
    /// The token is the model's mask.
    pub masked: bool,
    /// The token differs from the original.
    pub changed: bool,
}

/// The continuous families' signal level `ᾱ(t) = cos²(πt/2)`: 1 at t = 0 and exactly 0 at
/// t = 1, where cos(π/2) in floating point is not quite 0.
pub fn alpha_bar(t: f64) -> f64 {
    if t >= 1.0 {
        return 0.0;
    }
    let c = libm::cos(std::f64::consts::FRAC_PI_2 * t.max(0.0));
    c * c
}

/// Tokens a corruption may draw, as the sampler builds them: every row of the embedding matrix
/// the tokenizer knows, except its special tokens and the mask.
pub fn drawable(model: &Model) -> Result<Vec<bool>> {
    let v = model.spec.vocab_size;
    let known = model.tokenizer.as_ref().map_or(v, |t| t.vocab_size());
    let mut allowed: Vec<bool> = (0..v).map(|i| i < known).collect();
    if let Some(tok) = &model.tokenizer {
        for id in tok.special_ids() {
            if (id as usize) < v {
                allowed[id as usize] = false;
            }
        }
    }
    if let Some(m) = model.mask_id()? {
        if (m as usize) < v {
            allowed[m as usize] = false;
        }
    }
    Ok(allowed)
}

/// What the forward process needs of a model: its vocabulary, mask and token embeddings, the
/// schedule, and the squared norms of the rescaled embeddings (one pass over the matrix, made
/// once here so each Gaussian corruption costs one product with it).
pub struct NoisingContext {
    /// The absorbing and uniform families' schedule (MDLM's log-linear by default).
    pub schedule: Schedule,
    embeddings: Arc<Tensor>,
    mask: Option<u32>,
    /// Ids a uniform or Gaussian corruption may produce, ascending.
    drawable: Vec<u32>,
    /// `1 / r`, r the RMS of all the embedding matrix's entries: `z_v = E[v] / r` puts every
    /// model's embeddings on the unit scale the Gaussian's noise is measured in.
    inv_rms: f32,
    /// `‖z_v‖²` for every row.
    norms: Vec<f32>,
}

impl NoisingContext {
    /// `embeddings` is `[vocab, hidden]`; `allowed[v]` says whether token v may be drawn (one
    /// entry per row).
    pub fn new(embeddings: Arc<Tensor>, mask: Option<u32>, allowed: &[bool]) -> Result<Self> {
        if embeddings.shape.len() != 2 {
            return Err(Error::input(format!(
                "token embeddings of shape {:?}: expected [vocab, hidden]",
                embeddings.shape
            )));
        }
        let (vocab, hidden) = (embeddings.shape[0], embeddings.shape[1]);
        if allowed.len() != vocab {
            return Err(Error::input(format!(
                "{} drawable flags for a vocabulary of {vocab}",
                allowed.len()
            )));
        }
        if vocab > u32::MAX as usize {
            return Err(Error::input(format!("a vocabulary of {vocab} ids")));
        }
        if let Some(m) = mask.filter(|&m| m as usize >= vocab) {
            return Err(Error::input(format!(
                "mask id {m} is outside the vocabulary (size {vocab})"
            )));
        }
        let drawable: Vec<u32> = (0..vocab as u32).filter(|&v| allowed[v as usize]).collect();
        if drawable.is_empty() {
            return Err(Error::input(
                "the model's vocabulary has no ordinary tokens to draw",
            ));
        }
        let row_sums: Vec<f64> = if hidden == 0 {
            vec![0.0; vocab]
        } else {
            embeddings
                .data
                .chunks_exact(hidden)
                .map(|row| row.iter().map(|&x| f64::from(x) * f64::from(x)).sum())
                .collect()
        };
        let total: f64 = row_sums.iter().sum();
        let rms = (total / (vocab * hidden).max(1) as f64).sqrt();
        // an all-zero matrix has no scale to remove; every token then ties in the search
        let inv = if rms > 0.0 && rms.is_finite() {
            1.0 / rms
        } else {
            1.0
        };
        let norms = row_sums.iter().map(|&s| (s * inv * inv) as f32).collect();
        Ok(NoisingContext {
            schedule: Schedule::default(),
            embeddings,
            mask,
            drawable,
            inv_rms: inv as f32,
            norms,
        })
    }

    /// From a loaded model: its token embeddings, its mask and the tokens the sampler may
    /// propose.
    pub fn from_model(model: &Model) -> Result<Self> {
        NoisingContext::new(
            model.plan()?.embeddings.tokens.as_tensor(),
            model.mask_id()?,
            &drawable(model)?,
        )
    }

    pub fn vocab(&self) -> usize {
        self.embeddings.shape[0]
    }

    pub fn mask(&self) -> Option<u32> {
        self.mask
    }

    /// How far the family's forward process has gone at t: the move chance `1 − α_t` for the
    /// discrete families, `1 − ᾱ(t)` for the continuous ones.
    pub fn noise(&self, family: Family, t: f64) -> f64 {
        match family {
            Family::Absorbing | Family::Uniform => self.schedule.move_chance(t),
            Family::Gaussian | Family::Bits => 1.0 - alpha_bar(t),
        }
    }

    /// Bits per id in the Analog-Bits family: `⌈log₂ vocab⌉`.
    pub fn bits(&self) -> u32 {
        let v = self.vocab();
        if v <= 1 {
            0
        } else {
            usize::BITS - (v - 1).leading_zeros()
        }
    }
}

/// The most tokens [`corrupt`] noises at once: pages of text, far more than a teaching view
/// shows, and a bound on the Gaussian family's nearest-token search (`tokens × vocabulary`
/// dot products). Every surface (the JS `corrupt`, any library caller) gets it.
pub const MAX_CORRUPT_TOKENS: usize = 4096;

/// The most bytes of text a surface should tokenise for [`corrupt`] (
/// [`MAX_CORRUPT_TOKENS`] × [`BYTES_PER_TOKEN`](crate::text::canvas::BYTES_PER_TOKEN)), checked
/// by [`check_text`] before tokenising, as a template's known text is.
pub const MAX_CORRUPT_BYTES: usize = MAX_CORRUPT_TOKENS * crate::text::canvas::BYTES_PER_TOKEN;

/// Refuses a text too long for [`corrupt`] by its size, before it is tokenised.
pub fn check_text(text: &str) -> Result<()> {
    if text.len() > MAX_CORRUPT_BYTES {
        return Err(Error::input(format!(
            "the text to corrupt is {} bytes; the most is {MAX_CORRUPT_BYTES} ({MAX_CORRUPT_TOKENS} tokens)",
            text.len()
        )));
    }
    Ok(())
}

/// A noise level must be a number in [0, 1]; the error names `t`.
pub fn check_t(t: f64) -> Result<()> {
    if !t.is_finite() || !(0.0..=1.0).contains(&t) {
        return Err(Error::input(format!(
            "t = {t}: expected a noise level in [0, 1]"
        )));
    }
    Ok(())
}

/// Runs `family`'s forward process on `ids` to time t ∈ [0, 1]. The same inputs and seed give
/// the same tokens.
pub fn corrupt(
    family: Family,
    ids: &[u32],
    t: f64,
    seed: u64,
    ctx: &NoisingContext,
) -> Result<Vec<Noised>> {
    check_t(t)?;
    if ids.len() > MAX_CORRUPT_TOKENS {
        return Err(Error::input(format!(
            "the text to corrupt is {} tokens; the most is {MAX_CORRUPT_TOKENS}",
            ids.len()
        )));
    }
    forward_process(family, ids, t, seed, ctx)
}

/// [`corrupt`] without its size bound.
fn forward_process(
    family: Family,
    ids: &[u32],
    t: f64,
    seed: u64,
    ctx: &NoisingContext,
) -> Result<Vec<Noised>> {
    let vocab = ctx.vocab();
    if let Some(i) = ids.iter().position(|&id| id as usize >= vocab) {
        return Err(Error::input(format!(
            "ids[{i}] = {} is outside the vocabulary (size {vocab})",
            ids[i]
        )));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let noised = |orig: u32, id: Option<u32>| Noised {
        id,
        masked: id.is_some() && id == ctx.mask,
        changed: id != Some(orig),
    };
    Ok(match family {
        Family::Absorbing => {
            let mask = ctx
                .mask
                .ok_or_else(|| Error::input("absorbing diffusion needs the model's mask token"))?;
            let p = ctx.schedule.move_chance(t);
            ids.iter()
                .map(|&id| {
                    let hit = rng.random::<f64>() < p;
                    noised(id, Some(if hit { mask } else { id }))
                })
                .collect()
        }
        Family::Uniform => {
            let p = ctx.schedule.move_chance(t);
            ids.iter()
                .map(|&id| {
                    let to = if rng.random::<f64>() < p {
                        ctx.drawable[rng.random_range(0..ctx.drawable.len())]
                    } else {
                        id
                    };
                    noised(id, Some(to))
                })
                .collect()
        }
        Family::Bits => {
            let a = alpha_bar(t);
            let (s, sd) = (libm::sqrt(a), libm::sqrt(1.0 - a));
            let bits = ctx.bits();
            let mut normal = Normal::default();
            ids.iter()
                .map(|&id| {
                    let mut out: u64 = 0;
                    for i in 0..bits {
                        let b = if (id >> i) & 1 == 1 { 1.0 } else { -1.0 };
                        if s * b + sd * normal.sample(&mut rng) > 0.0 {
                            out |= 1 << i;
                        }
                    }
                    let to = (out < vocab as u64).then_some(out as u32);
                    noised(id, to)
                })
                .collect()
        }
        Family::Gaussian => gaussian(ids, t, &mut rng, ctx)
            .into_iter()
            .zip(ids)
            .map(|(to, &id)| noised(id, Some(to)))
            .collect(),
    })
}

/// Rows of the score matrix computed at once: a long text costs `ROWS × vocab` floats at a time,
/// not `len × vocab`.
const ROWS: usize = 64;

fn gaussian(ids: &[u32], t: f64, rng: &mut ChaCha8Rng, ctx: &NoisingContext) -> Vec<u32> {
    let a = alpha_bar(t);
    if a >= 1.0 {
        // x is the token's own rescaled embedding, at distance 0 from itself: it wins, and
        // the original is kept over any other row that coincides with it
        return ids.to_vec();
    }
    if a <= 0.0 {
        // x is pure noise and every token is equally far from √ᾱ·z_v = 0
        return ids
            .iter()
            .map(|_| ctx.drawable[rng.random_range(0..ctx.drawable.len())])
            .collect();
    }
    let (s, sd) = (libm::sqrt(a), libm::sqrt(1.0 - a));
    let e = &ctx.embeddings;
    let (vocab, hidden) = (e.shape[0], e.shape[1]);
    let mut normal = Normal::default();
    let mut out = Vec::with_capacity(ids.len());
    let mut scores = vec![0.0f32; ROWS.min(ids.len()) * vocab];
    for chunk in ids.chunks(ROWS) {
        let x: Vec<f32> = chunk
            .iter()
            .flat_map(|&id| {
                let row = &e.data[id as usize * hidden..][..hidden];
                row.iter()
                    .map(|&v| {
                        let z = f64::from(v) * f64::from(ctx.inv_rms);
                        (s * z + sd * normal.sample(rng)) as f32
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        let scores = &mut scores[..chunk.len() * vocab];
        // x · E[v] for every v at once: the cost of one LM-head product, which gemm's SIMD
        // kernels make affordable for a 50k × 768 vocabulary in wasm
        matmul_nt(
            &x,
            chunk.len(),
            hidden,
            &e.data,
            vocab,
            scores,
            false,
            parallelism(),
        );
        // ‖x − √ᾱ z_v‖² = ‖x‖² − 2√ᾱ x·z_v + ᾱ‖z_v‖²; ‖x‖² is the same for every v and the
        // rest divided by √ᾱ > 0 keeps the order: minimise √ᾱ‖z_v‖² − 2 x·E[v] / r
        let (sf, two_inv) = (s as f32, 2.0 * ctx.inv_rms);
        for row in scores.chunks_exact(vocab) {
            let mut best = (f32::INFINITY, ctx.drawable[0]);
            for &v in &ctx.drawable {
                let d = sf * ctx.norms[v as usize] - two_inv * row[v as usize];
                if d < best.0 {
                    best = (d, v);
                }
            }
            out.push(best.1);
        }
    }
    out
}

/// The Gaussian search's product is small; in the single-threaded wasm build and on a page's
/// main thread (where a blocking wait on a pool is forbidden) it runs on the calling thread.
fn parallelism() -> gemm_common::Parallelism {
    #[cfg(target_arch = "wasm32")]
    {
        gemm_common::Parallelism::None
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        crate::backend::cpu::matmul::parallelism()
    }
}

/// Standard normal draws by Box–Muller, both values of each pair used.
#[derive(Default)]
struct Normal {
    spare: Option<f64>,
}

impl Normal {
    fn sample(&mut self, rng: &mut ChaCha8Rng) -> f64 {
        if let Some(z) = self.spare.take() {
            return z;
        }
        // u1 ∈ (0, 1], so its log is finite
        let u1 = 1.0 - rng.random::<f64>();
        let u2 = rng.random::<f64>();
        let r = libm::sqrt(-2.0 * libm::log(u1));
        let theta = 2.0 * std::f64::consts::PI * u2;
        self.spare = Some(r * libm::sin(theta));
        r * libm::cos(theta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The forward process without the size bound: the statistical tests draw 20000 tokens.
    fn corrupt(
        family: Family,
        ids: &[u32],
        t: f64,
        seed: u64,
        ctx: &NoisingContext,
    ) -> Result<Vec<Noised>> {
        check_t(t)?;
        forward_process(family, ids, t, seed, ctx)
    }

    #[test]
    fn corrupt_keeps_to_its_size_bound() {
        let corrupt = super::corrupt;
        let ctx = context(40, 8, 1);
        let ids = vec![5u32; MAX_CORRUPT_TOKENS];
        for f in Family::ALL {
            assert_eq!(corrupt(f, &ids, 0.5, 1, &ctx).unwrap().len(), ids.len());
            let e = corrupt(f, &[ids.as_slice(), &[5]].concat(), 0.5, 1, &ctx)
                .unwrap_err()
                .to_string();
            assert!(e.contains("4097 tokens") && e.contains("4096"), "{e}");
        }
        assert!(check_text(&"a".repeat(MAX_CORRUPT_BYTES)).is_ok());
        let e = check_text(&"a".repeat(MAX_CORRUPT_BYTES + 1)).unwrap_err();
        assert!(e.to_string().contains("262145 bytes"), "{e}");
    }

    /// A random `[vocab, hidden]` embedding matrix on an arbitrary scale (the search must not
    /// depend on it), the last id the mask and id 0 a special token.
    fn context(vocab: usize, hidden: usize, seed: u64) -> NoisingContext {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let data = (0..vocab * hidden)
            .map(|_| rng.random_range(-0.05f32..0.05))
            .collect();
        let e = Arc::new(Tensor::new(vec![vocab, hidden], data));
        let allowed: Vec<bool> = (0..vocab).map(|v| v != 0 && v != vocab - 1).collect();
        NoisingContext::new(e, Some(vocab as u32 - 1), &allowed).unwrap()
    }

    fn sentence(n: usize, vocab: usize, seed: u64) -> Vec<u32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n)
            .map(|_| rng.random_range(1..vocab as u32 - 1))
            .collect()
    }

    fn fraction(out: &[Noised], f: impl Fn(&Noised) -> bool) -> f64 {
        out.iter().filter(|n| f(n)).count() as f64 / out.len() as f64
    }

    #[test]
    fn families_parse_by_name() {
        for f in Family::ALL {
            assert_eq!(Family::parse(f.name()).unwrap(), f);
        }
        let e = Family::parse("gauss").unwrap_err().to_string();
        assert!(e.contains("gauss") && e.contains("'bits'"), "{e}");
    }

    #[test]
    fn nothing_changes_at_t_zero() {
        let ctx = context(300, 24, 1);
        let ids = sentence(500, 300, 2);
        for f in Family::ALL {
            let out = corrupt(f, &ids, 0.0, 9, &ctx).unwrap();
            for (n, &id) in out.iter().zip(&ids) {
                assert_eq!(n.id, Some(id), "{f:?}");
                assert!(!n.changed && !n.masked, "{f:?}");
            }
        }
    }

    #[test]
    fn gaussian_search_finds_each_token_itself_without_noise() {
        // a t so small that the noise is far below the gap between embeddings: the search
        // itself (not the t = 0 shortcut) must find every token
        let ctx = context(300, 24, 1);
        let ids: Vec<u32> = (1..299).collect();
        let out = corrupt(Family::Gaussian, &ids, 1e-6, 3, &ctx).unwrap();
        for (n, &id) in out.iter().zip(&ids) {
            assert_eq!(n.id, Some(id));
        }
    }

    #[test]
    fn bits_round_trip_at_t_zero() {
        // 300 ids need 9 bits; every id, special and mask included
        let ctx = context(300, 4, 1);
        assert_eq!(ctx.bits(), 9);
        let ids: Vec<u32> = (0..300).collect();
        let out = corrupt(Family::Bits, &ids, 0.0, 5, &ctx).unwrap();
        let back: Vec<u32> = out.iter().map(|n| n.id.unwrap()).collect();
        assert_eq!(back, ids);
        assert_eq!(context(256, 2, 1).bits(), 8);
        assert_eq!(context(257, 2, 1).bits(), 9);
    }

    #[test]
    fn absorbing_masks_the_move_chance() {
        let ctx = context(50, 4, 1);
        let ids = sentence(20_000, 50, 2);
        let out = corrupt(Family::Absorbing, &ids, 0.5, 7, &ctx).unwrap();
        let want = ctx.schedule.move_chance(0.5);
        let got = fraction(&out, |n| n.masked);
        assert!((got - want).abs() < 0.02, "{got} vs {want}");
        assert!(out.iter().all(|n| n.masked == n.changed));
        // MDLM's log-linear schedule leaves ε = 1e-3 of the tokens clean at t = 1
        let out = corrupt(Family::Absorbing, &ids, 1.0, 7, &ctx).unwrap();
        let got = fraction(&out, |n| n.masked);
        assert!((got - 0.999).abs() < 0.002, "{got}");
    }

    #[test]
    fn absorbing_masks_everything_at_t_one_without_eps() {
        let mut ctx = context(50, 4, 1);
        ctx.schedule = Schedule::LogLinear { eps: 0.0 };
        let ids = sentence(20_000, 50, 2);
        let out = corrupt(Family::Absorbing, &ids, 1.0, 7, &ctx).unwrap();
        assert!(out.iter().all(|n| n.masked && n.id == Some(49)));
    }

    #[test]
    fn uniform_draws_ordinary_tokens_and_may_draw_itself() {
        // 8 ids, 6 drawable (not 0, not the mask 7)
        let ctx = context(8, 4, 1);
        let ids = sentence(20_000, 8, 2);
        let out = corrupt(Family::Uniform, &ids, 1.0, 7, &ctx).unwrap();
        assert!(out
            .iter()
            .all(|n| !n.masked && (1..7).contains(&n.id.unwrap())));
        let want = ctx.schedule.move_chance(1.0) * (1.0 - 1.0 / 6.0);
        let got = fraction(&out, |n| n.changed);
        assert!((got - want).abs() < 0.02, "{got} vs {want}");
        let out = corrupt(Family::Uniform, &ids, 0.5, 7, &ctx).unwrap();
        let want = ctx.schedule.move_chance(0.5) * (1.0 - 1.0 / 6.0);
        let got = fraction(&out, |n| n.changed);
        assert!((got - want).abs() < 0.02, "{got} vs {want}");
    }

    #[test]
    fn a_seed_fixes_the_draw() {
        let ctx = context(300, 24, 1);
        let ids = sentence(200, 300, 2);
        for f in Family::ALL {
            let a = corrupt(f, &ids, 0.6, 11, &ctx).unwrap();
            assert_eq!(a, corrupt(f, &ids, 0.6, 11, &ctx).unwrap(), "{f:?}");
            assert_ne!(a, corrupt(f, &ids, 0.6, 12, &ctx).unwrap(), "{f:?}");
        }
    }

    #[test]
    fn gaussian_changes_more_tokens_as_t_grows() {
        // 64 tokens in 4 dimensions lie close enough that a little noise already moves some
        let ctx = context(64, 4, 1);
        let ids = sentence(5000, 64, 2);
        let mut prev = 0.0;
        for t in [0.1, 0.3, 0.5, 0.7, 0.9, 1.0] {
            let out = corrupt(Family::Gaussian, &ids, t, 4, &ctx).unwrap();
            assert!(out.iter().all(|n| (1..63).contains(&n.id.unwrap())));
            let got = fraction(&out, |n| n.changed);
            assert!(got > prev, "t = {t}: {got} after {prev}");
            prev = got;
        }
        // at t = 1 the token is uniform over the 62 drawable ids
        assert!((prev - 61.0 / 62.0).abs() < 0.02, "{prev}");
    }

    #[test]
    fn gaussian_is_the_nearest_token_by_brute_force() {
        // the expanded-distance search against ‖x − √ᾱ z_v‖² computed directly from the same
        // noise: redraw x with the stream the search used
        let ctx = context(40, 8, 3);
        let ids = sentence(100, 40, 4);
        let t = 0.6;
        let got = corrupt(Family::Gaussian, &ids, t, 21, &ctx).unwrap();
        let (a, hidden) = (alpha_bar(t), 8);
        let (s, sd) = (a.sqrt(), (1.0 - a).sqrt());
        let mut rng = ChaCha8Rng::seed_from_u64(21);
        let mut normal = Normal::default();
        let z = |v: u32, j: usize| {
            f64::from(ctx.embeddings.data[v as usize * hidden + j]) * f64::from(ctx.inv_rms)
        };
        for (n, &id) in got.iter().zip(&ids) {
            let x: Vec<f64> = (0..hidden)
                .map(|j| (s * z(id, j) + sd * normal.sample(&mut rng)) as f32 as f64)
                .collect();
            let dist = |v: u32| -> f64 { (0..hidden).map(|j| (x[j] - s * z(v, j)).powi(2)).sum() };
            let best = ctx
                .drawable
                .iter()
                .copied()
                .min_by(|&p, &q| dist(p).total_cmp(&dist(q)))
                .unwrap();
            let got = n.id.unwrap();
            assert!(
                got == best || (dist(got) - dist(best)).abs() < 1e-4,
                "{got} ({}) vs {best} ({})",
                dist(got),
                dist(best)
            );
        }
    }

    #[test]
    fn bits_past_the_vocabulary_are_no_token() {
        // 300 ids in 9 bits: at t = 1 every pattern is equally likely, 212/512 of them invalid
        let ctx = context(300, 4, 1);
        let ids = sentence(20_000, 300, 2);
        let out = corrupt(Family::Bits, &ids, 1.0, 3, &ctx).unwrap();
        let none = fraction(&out, |n| n.id.is_none());
        assert!((none - 212.0 / 512.0).abs() < 0.02, "{none}");
        assert!(out.iter().filter(|n| n.id.is_none()).all(|n| n.changed));
        let mut prev = 0.0;
        for t in [0.2, 0.5, 0.8] {
            let out = corrupt(Family::Bits, &ids, t, 3, &ctx).unwrap();
            let got = fraction(&out, |n| n.changed);
            assert!(got > prev, "t = {t}: {got} after {prev}");
            prev = got;
        }
    }

    #[test]
    fn bad_input_is_an_error_naming_it() {
        let ctx = context(30, 4, 1);
        for t in [-0.1, 1.5, f64::NAN, f64::INFINITY] {
            let e = corrupt(Family::Uniform, &[1, 2], t, 0, &ctx).unwrap_err();
            assert!(matches!(e, Error::Input(_)), "{e}");
            assert!(e.to_string().contains("t = "), "{e}");
        }
        let e = corrupt(Family::Bits, &[1, 30], 0.5, 0, &ctx).unwrap_err();
        assert!(e.to_string().contains("ids[1] = 30"), "{e}");
        assert!(corrupt(Family::Gaussian, &[], 0.5, 0, &ctx)
            .unwrap()
            .is_empty());
    }
}
