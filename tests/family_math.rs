//! The step math of uniform-state diffusion (`diffusion::uniform`: UDLM, Duo, Duo's Ψ-samplers,
//! ReMDM) and of SEDD (`diffusion::score`) against the official functions themselves, run on
//! fixed inputs by `tests/fixtures/family_math/make.py` into `golden.json`. Every number is f64
//! on both sides; a value passes within 1e-9 of the golden, relative to max(1, |golden|).
//! Each section prints its largest error (`cargo test --release --test family_math --
//! --nocapture`).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde_json::Value;
use unmask::diffusion::score::{self, Graph, Noise};
use unmask::diffusion::uniform::{self, KappaMode, NucleusRule, Prior, PsiPhases, RemdmSchedule};

const TOL: f64 = 1e-9;

fn golden() -> &'static Value {
    static G: OnceLock<Value> = OnceLock::new();
    G.get_or_init(|| {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/family_math/golden.json"
        );
        serde_json::from_str(&std::fs::read_to_string(path).expect("golden.json")).unwrap()
    })
}

/// A golden number; null is −∞.
fn num(v: &Value) -> f64 {
    if v.is_null() {
        f64::NEG_INFINITY
    } else {
        v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
    }
}

fn nums(v: &Value) -> Vec<f64> {
    v.as_array().expect("an array").iter().map(num).collect()
}

fn id(v: &Value) -> u32 {
    v.as_u64().expect("an id") as u32
}

fn exp_row(log: &[f64]) -> Vec<f64> {
    log.iter().map(|l| l.exp()).collect()
}

/// The largest error of each section, for the report.
#[derive(Default)]
struct Errors(BTreeMap<&'static str, f64>);

impl Errors {
    fn check(&mut self, what: &'static str, got: f64, want: f64, ctx: &dyn Fn() -> String) {
        let err = (got - want).abs() / want.abs().max(1.0);
        assert!(
            err <= TOL,
            "{what}: {got} vs golden {want} (error {err:e}) at {}",
            ctx()
        );
        let e = self.0.entry(what).or_insert(0.0);
        *e = e.max(err);
    }

    fn rows(&mut self, what: &'static str, got: &[f64], want: &[f64], ctx: &dyn Fn() -> String) {
        assert_eq!(got.len(), want.len(), "{what}: length at {}", ctx());
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            self.check(what, *g, *w, &|| format!("{} [{i}]", ctx()));
        }
    }

    fn report(&self) {
        for (what, e) in &self.0 {
            eprintln!("{what:<28} max error {e:.2e}");
        }
    }
}

/// A mixture written out over the vocabulary.
fn expand(m: &uniform::Mixture, x: &[f64], z: u32, prior: Prior) -> Vec<f64> {
    let n = x.len();
    (0..n)
        .map(|v| {
            let pv = match prior {
                Prior::Uniform => 1.0 / n as f64,
                Prior::Mask(mask) => f64::from(u8::from(v as u32 == mask)),
            };
            m.prob(v as u32 == z, x[v], pv)
        })
        .collect()
}

#[test]
fn schedules_match_the_official_ones() {
    let g = &golden()["schedule"];
    let mut e = Errors::default();
    let ts = nums(&g["t"]);
    let eps = num(&g["eps"]);
    let alpha = nums(&g["duo_loglinear_alpha"]);
    for (i, &t) in ts.iter().enumerate() {
        let ctx = || format!("t = {t}");
        e.check(
            "duo alpha",
            uniform::log_linear_alpha(t, eps),
            alpha[i],
            &ctx,
        );
        e.check(
            "duo dalpha",
            uniform::log_linear_dalpha(eps),
            num(&g["duo_loglinear_dalpha"][i]),
            &ctx,
        );
        e.check(
            "duo t_for_alpha",
            uniform::log_linear_t_for_alpha(alpha[i]),
            num(&g["duo_t_for_alpha"][i]),
            &ctx,
        );
        let ddg = Noise::LogLinear { eps };
        e.check(
            "ddg sigma",
            ddg.sigma(t),
            num(&g["ddg_loglinear_sigma"][i]),
            &ctx,
        );
        e.check(
            "ddg rate",
            ddg.rate(t),
            num(&g["ddg_loglinear_rate"][i]),
            &ctx,
        );
        let geo = &g["sedd_geometric"];
        let noise = Noise::Geometric {
            sigma_min: num(&geo["sigma_min"]),
            sigma_max: num(&geo["sigma_max"]),
        };
        assert_eq!(noise, Noise::GEOMETRIC);
        e.check(
            "sedd geometric sigma",
            noise.sigma(t),
            num(&geo["sigma"][i]),
            &ctx,
        );
        e.check(
            "sedd geometric rate",
            noise.rate(t),
            num(&geo["rate"][i]),
            &ctx,
        );
        let ll = &g["sedd_loglinear"];
        let noise = Noise::LogLinear {
            eps: num(&ll["eps"]),
        };
        assert_eq!(noise, Noise::LOG_LINEAR);
        e.check(
            "sedd loglinear sigma",
            noise.sigma(t),
            num(&ll["sigma"][i]),
            &ctx,
        );
        e.check(
            "sedd loglinear rate",
            noise.rate(t),
            num(&ll["rate"][i]),
            &ctx,
        );
    }
    for (i, s) in nums(&g["duo_sigma_from_alpha"]).into_iter().enumerate() {
        e.check("duo sigma", uniform::sigma_of_alpha(alpha[i]), s, &|| {
            format!("alpha = {}", alpha[i])
        });
    }
    e.report();
}

#[test]
fn the_posterior_matches_ddg_and_duo() {
    let mut e = Errors::default();
    for (k, c) in golden()["posterior"].as_array().unwrap().iter().enumerate() {
        let v = c["v"].as_u64().unwrap() as usize;
        let z = id(&c["z"]);
        let (at, as_) = (num(&c["alpha_t"]), num(&c["alpha_s"]));
        let x = if c["log_x"].is_null() {
            let mut x = vec![0.0; v];
            x[id(&c["x0"]) as usize] = 1.0;
            x
        } else {
            exp_row(&nums(&c["log_x"]))
        };
        let ctx = || format!("posterior case {k} (v={v}, z={z}, α_t={at}, α_s={as_})");
        let mut out = vec![0.0; v];
        uniform::posterior_row(&x, z, at, as_, &mut out);
        e.rows("posterior_row vs ddg", &out, &nums(&c["ddg"]), &ctx);
        e.rows("posterior_row vs duo", &out, &nums(&c["duo"]), &ctx);
        let m = uniform::posterior_mixture(at, as_, v, x[z as usize]);
        let got = expand(&m, &x, z, Prior::Uniform);
        e.rows("posterior_mixture vs ddg", &got, &nums(&c["ddg"]), &ctx);
    }
    e.report();
}

#[test]
fn the_nucleus_matches_duo() {
    let mut e = Errors::default();
    for (k, c) in golden()["nucleus_duo"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let x = exp_row(&nums(&c["log_x"]));
        let mut out = vec![0.0; x.len()];
        uniform::nucleus_row(&x, num(&c["p"]), NucleusRule::Duo, &mut out);
        let want = exp_row(&nums(&c["filtered_log"]));
        e.rows("nucleus_row (duo)", &out, &want, &|| {
            format!("nucleus case {k}")
        });
    }
    e.report();
}

#[test]
fn psi_steps_match_duo() {
    let mut e = Errors::default();
    for (k, c) in golden()["psi"].as_array().unwrap().iter().enumerate() {
        let v = c["v"].as_u64().unwrap() as usize;
        let z = id(&c["z"]);
        let prior = match c["prior"].as_str().unwrap() {
            "uniform" => Prior::Uniform,
            _ => Prior::Mask(id(&c["mask"])),
        };
        let (t, dt) = (num(&c["t"]), num(&c["dt"]));
        let (at, as_) = (num(&c["alpha_t"]), num(&c["alpha_s"]));
        let kappa = num(&c["kappa"]);
        let ctx = || format!("psi case {k} ({prior:?}, v={v}, z={z}, t={t}, κ={kappa})");
        e.check("psi alpha_t", uniform::log_linear_alpha(t, 1e-3), at, &ctx);
        e.check(
            "psi alpha_s",
            uniform::log_linear_alpha(t - dt, 1e-3),
            as_,
            &ctx,
        );
        let mut x = exp_row(&nums(&c["log_x"]));
        let p = num(&c["p_nucleus"]);
        if p < 1.0 {
            let mut f = vec![0.0; v];
            uniform::nucleus_row(&x, p, NucleusRule::Duo, &mut f);
            x = f;
        }
        let want = nums(&c["q"]);
        let mut out = vec![0.0; v];
        uniform::psi_row(prior, &x, z, at, as_, kappa, &mut out);
        e.rows("psi_row", &out, &want, &ctx);
        let m = uniform::psi_mixture(prior, at, as_, kappa, v, z, x[z as usize]);
        assert!(m.weights().iter().all(|w| *w >= 0.0), "{m:?} at {}", ctx());
        e.rows("psi_mixture", &expand(&m, &x, z, prior), &want, &ctx);
    }
    e.report();
}

#[test]
fn kappas_and_time_profiles_match_duo() {
    let g = golden();
    let mut e = Errors::default();
    let alphas = |ts: &[f64]| -> Vec<f64> {
        ts.iter()
            .map(|&t| uniform::log_linear_alpha(t, 1e-3))
            .collect()
    };
    for c in g["kappa_modes"].as_array().unwrap() {
        let name = c["mode"].as_str().unwrap();
        let mode: KappaMode = name.parse().unwrap();
        let got = mode.kappas(&alphas(&nums(&c["timesteps"])));
        e.rows("_mode_to_psi_kappas", &got, &nums(&c["kappas"]), &|| {
            name.to_string()
        });
    }
    for c in g["psi_runs"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let phases = PsiPhases {
            high: c["high_mode"].as_str().unwrap().parse().unwrap(),
            middle: c["middle_mode"].as_str().unwrap().parse().unwrap(),
            low: c["low_mode"].as_str().unwrap().parse().unwrap(),
            high_frac: num(&c["high_frac"]),
            middle_frac: num(&c["middle_frac"]),
        };
        let ts = uniform::time_profile(
            c["profile"].as_str().unwrap().parse().unwrap(),
            phases.high_frac,
            phases.middle_frac,
            num(&c["eps"]),
            c["steps"].as_u64().unwrap() as usize,
            uniform::log_linear_t_for_alpha,
        );
        e.rows(
            "_get_sampling_time_profile",
            &ts,
            &nums(&c["timesteps"]),
            &|| name.to_string(),
        );
        let k = uniform::psi_kappas(&phases, &alphas(&ts)).expect("kappas");
        e.rows("_get_kappas", &k, &nums(&c["kappas"]), &|| name.to_string());
    }
    e.report();
}

#[test]
fn remdm_steps_match_remdm_and_psi() {
    let mut e = Errors::default();
    let (mut same, mut clipped) = (0, 0);
    for (k, c) in golden()["remdm"].as_array().unwrap().iter().enumerate() {
        let v = c["v"].as_u64().unwrap() as usize;
        let (z, mask) = (id(&c["z"]), id(&c["mask"]));
        let (t, dt, eta) = (num(&c["t"]), num(&c["dt"]), num(&c["eta"]));
        let schedule = match c["sampler"].as_str().unwrap() {
            "remdm-cap" => RemdmSchedule::Cap,
            _ => RemdmSchedule::Rescale,
        };
        // ReMDM's loop: α = 1 − t
        let (at, as_) = (1.0 - t, 1.0 - (t - dt));
        let sigma = uniform::remdm_sigma(schedule, eta, at, as_);
        let ctx = || format!("remdm case {k} ({schedule:?}, v={v}, z={z}, t={t}, η={eta})");
        let mut x = exp_row(&nums(&c["log_x"]));
        let p = num(&c["p_nucleus"]);
        if p < 1.0 {
            let mut f = vec![0.0; v];
            uniform::nucleus_row(&x, p, NucleusRule::Remdm, &mut f);
            x = f;
        }
        let want = nums(&c["q"]);
        let mut out = vec![0.0; v];
        uniform::remdm_row(&x, z, mask, at, as_, sigma, &mut out);
        e.rows("remdm_row", &out, &want, &ctx);
        let m = uniform::remdm_mixture(at, as_, sigma, z == mask);
        e.rows(
            "remdm_mixture",
            &expand(&m, &x, z, Prior::Mask(mask)),
            &want,
            &ctx,
        );
        // Duo's Ψ with the mask prior at κ = 1 − σ/(1−α_s) is the same step, as long as
        // σ ≤ 1 − α_s; above, Duo clips κ at 0 and re-masks only 1 − α_s (ReMDM's cap allows
        // σ up to (1−α_s)/α_t)
        let kappa = uniform::remdm_kappa(sigma, as_);
        uniform::psi_row(Prior::Mask(mask), &x, z, at, as_, kappa, &mut out);
        if sigma <= 1.0 - as_ {
            e.rows("psi_row (mask) vs remdm", &out, &want, &ctx);
            same += 1;
        } else {
            assert_eq!(kappa, 0.0);
            let diff = out
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .sum::<f64>();
            assert!(diff > 1e-6, "{}", ctx());
            clipped += 1;
        }
    }
    eprintln!("Ψ = ReMDM in {same} cases; κ clipped (σ > 1 − α_s) in {clipped}");
    assert!(same >= 8 && clipped >= 4);
    e.report();
}

#[test]
fn the_nelbo_matches_ddg_and_duo() {
    let mut e = Errors::default();
    for (k, c) in golden()["nelbo"].as_array().unwrap().iter().enumerate() {
        let lx = nums(&c["log_x"]);
        let (x0, z, t) = (id(&c["x0"]), id(&c["z"]), num(&c["t"]));
        let ctx = || format!("nelbo case {k} (v={}, t={t}, x0={x0}, z={z})", lx.len());
        // ddg evaluates the bound at α = 1 − t, α' = −1
        let sum = uniform::nelbo_sum(&lx, x0, z, 1.0 - t, -1.0);
        e.check("nelbo_sum vs ddg", sum, num(&c["ddg"]), &ctx);
        e.check(
            "nelbo_duo vs duo at ddg's α",
            uniform::nelbo_duo(&lx, x0, z, 1.0 - t, -1.0),
            num(&c["duo_at_ddg_alpha"]),
            &ctx,
        );
        let (at, da) = (num(&c["duo_alpha_t"]), num(&c["duo_dalpha_t"]));
        e.check(
            "duo alpha",
            uniform::log_linear_alpha(t, uniform::LOG_LINEAR_EPS),
            at,
            &ctx,
        );
        let duo = uniform::nelbo_duo(&lx, x0, z, at, da);
        e.check("nelbo_duo vs duo", duo, num(&c["duo"]), &ctx);
        e.check(
            "nelbo_sum vs nelbo_duo",
            uniform::nelbo_sum(&lx, x0, z, at, da),
            duo,
            &ctx,
        );
    }
    e.report();
}

#[test]
fn sedd_steps_and_loss_match_sedd() {
    let mut e = Errors::default();
    let cases = golden()["sedd"].as_array().unwrap();
    let mut loss_groups: Vec<(f64, f64)> = Vec::new(); // (golden sum, ours)
    for (k, c) in cases.iter().enumerate() {
        let graph = match c["graph"].as_str().unwrap() {
            "absorb" => Graph::Absorb,
            _ => Graph::Uniform,
        };
        let noise = match c["noise"].as_str().unwrap() {
            "geometric" => Noise::GEOMETRIC,
            _ => Noise::LOG_LINEAR,
        };
        let ls = nums(&c["log_score"]);
        let dim = ls.len();
        let (x, x0) = (id(&c["x"]), id(&c["x0"]));
        let (t, dt, eps) = (num(&c["t"]), num(&c["dt"]), num(&c["eps"]));
        let ctx = || format!("sedd case {k} ({graph:?}, {noise:?}, dim={dim}, t={t}, x={x})");
        let (sigma, rate) = (num(&c["sigma"]), num(&c["rate"]));
        e.check("sedd sigma(t)", noise.sigma(t), sigma, &ctx);
        e.check("sedd rate(t)", noise.rate(t), rate, &ctx);
        e.check(
            "sedd sigma(t - dt)",
            noise.sigma(t - dt),
            num(&c["sigma_s"]),
            &ctx,
        );
        e.check(
            "sedd sigma(eps)",
            noise.sigma(eps),
            num(&c["sigma_eps"]),
            &ctx,
        );
        let mut out = vec![0.0; dim];
        score::euler_row(graph, &ls, x, dt, rate, &mut out);
        e.rows("euler_row", &out, &nums(&c["euler"]), &ctx);
        score::analytic_row(graph, &ls, x, sigma - num(&c["sigma_s"]), &mut out);
        e.rows("analytic_row", &out, &nums(&c["analytic"]), &ctx);
        score::denoiser_row(graph, &ls, x, num(&c["sigma_eps"]), &mut out);
        let want = nums(&c["denoiser"]);
        if graph == Graph::Absorb {
            // the code drops the mask column
            assert_eq!(want.len(), dim - 1);
            assert_eq!(out[dim - 1], 0.0);
            e.rows("denoiser_row", &out[..dim - 1], &want, &ctx);
        } else {
            e.rows("denoiser_row", &out, &want, &ctx);
        }
        let se = score::score_entropy(graph, &ls, sigma, x, x0);
        e.check("score_entropy", se, num(&c["score_entropy"]), &ctx);
        let loss = score::score_entropy_loss(graph, noise, t, &ls, x, x0);
        if !c["loss_sum"].is_null() {
            loss_groups.push((num(&c["loss_sum"]), 0.0));
        }
        loss_groups
            .last_mut()
            .expect("a group starts with its sum")
            .1 += loss;
    }
    for (k, (want, got)) in loss_groups.into_iter().enumerate() {
        e.check("loss_fn (g·Σ score_entropy)", got, want, &|| {
            format!("sedd loss group {k}")
        });
    }
    e.report();
}

/// The golden was made from the pinned commits.
#[test]
fn golden_names_its_sources() {
    let s = &golden()["sources"];
    for (alias, commit) in [
        ("ddg", "edb0f8c28b"),
        ("duo", "7c9b498f5b"),
        ("remdm", "f830d659fb"),
        ("sedd", "0605786da5"),
    ] {
        assert!(
            s[alias]["commit"].as_str().unwrap().starts_with(commit),
            "{alias}"
        );
    }
}
