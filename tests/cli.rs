//! The built `unmask` binary: `unmask forward` on every fixture folder writes logits (and
//! MDLM log-probs) matching the golden files; failures exit non-zero with one clear line.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use common::*;
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use unmask::batch::read_f32_tensors;

/// Writes the golden batch as a forward input file; ids as I32 when asked, σ when given.
fn write_input(name: &str, path: &Path, ids_as_i32: bool, sigma: Option<&str>) {
    let bytes = std::fs::read(fixture(name).join("golden.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut owned: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    for key in ["input_ids", "attention_mask", "token_type_ids"] {
        if let Ok(t) = st.tensor(key) {
            let (dtype, data) = if key == "input_ids" && ids_as_i32 {
                let v: Vec<u8> = t
                    .data()
                    .chunks_exact(8)
                    .flat_map(|c| (i64::from_le_bytes(c.try_into().unwrap()) as i32).to_le_bytes())
                    .collect();
                (Dtype::I32, v)
            } else {
                (t.dtype(), t.data().to_vec())
            };
            owned.push((key.into(), dtype, t.shape().to_vec(), data));
        }
    }
    if let Some(s) = sigma {
        let t = st.tensor(s).unwrap();
        owned.push((
            "sigma".into(),
            Dtype::F32,
            t.shape().to_vec(),
            t.data().to_vec(),
        ));
    }
    let views: HashMap<String, TensorView> = owned
        .iter()
        .map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    safetensors::serialize_to_file(views, None, path).unwrap();
}

fn run_forward(
    name: &str,
    sigma: Option<&str>,
    ids_as_i32: bool,
) -> HashMap<String, unmask::tensor::Tensor> {
    run_forward_on(name, sigma, ids_as_i32, &["--backend", "cpu"])
}

fn run_forward_on(
    name: &str,
    sigma: Option<&str>,
    ids_as_i32: bool,
    backend: &[&str],
) -> HashMap<String, unmask::tensor::Tensor> {
    let tmp = common::tempdir();
    let (input, output) = (
        tmp.path().join("in.safetensors"),
        tmp.path().join("out.safetensors"),
    );
    write_input(name, &input, ids_as_i32, sigma);
    let out = Command::new(BIN)
        .args(["forward", "--model"])
        .arg(fixture(name))
        .arg("--input")
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .args(backend)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    read_f32_tensors("out", &std::fs::read(&output).unwrap()).unwrap()
}

#[test]
fn forward_command_matches_golden_on_every_fixture() {
    for name in [
        "bert",
        "distilbert",
        "roberta",
        "modernbert",
        "llada",
        "llada_gqa",
        "dream",
    ] {
        let got = run_forward(name, None, name == "llada");
        assert!(!got.contains_key("log_probs"), "{name} has no subs output");
        let (batch, g) = golden(name);
        assert_logits_match(
            &format!("cli {name}"),
            &got["logits"],
            &g["logits"],
            &batch,
            1e-4,
        );
    }
    // the DiT families write their reading too: subs, log-softmax or SEDD's log score
    for (name, k, reading, golden_reading) in [
        ("mdlm_dit", "1", "log_probs", "subs_log_probs"),
        ("mdlm_dit_timecond", "2", "log_probs", "subs_log_probs"),
        ("udlm", "2", "log_probs", "log_probs"),
        ("duo", "1", "log_probs", "log_probs"),
        ("sedd_absorb", "2", "log_score", "log_score"),
        ("sedd_uniform", "2", "log_score", "log_score"),
    ] {
        let got = run_forward(name, Some(&format!("sigma.{k}")), false);
        let (batch, g) = golden(name);
        assert_logits_match(
            &format!("cli {name}"),
            &got["logits"],
            &g[&format!("backbone_logits.{k}")],
            &batch,
            1e-4,
        );
        assert_subs_match(
            &format!("cli {name} {reading}"),
            &got[reading],
            &g[&format!("{golden_reading}.{k}")],
            1e-4,
        );
        assert_eq!(got.len(), 2, "{name}: logits and one reading");
    }
}

fn fails_with(args: &[&str], parts: &[&str]) {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert!(!out.status.success(), "{args:?} succeeded");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "one line on stderr: {err}"
    );
    for p in parts {
        assert!(err.contains(p), "stderr {err:?} lacks {p:?}");
    }
}

#[test]
fn forward_command_errors_are_one_clear_line() {
    let tmp = common::tempdir();
    let model = fixture("mdlm_dit");
    let model = model.to_str().unwrap();
    let out = tmp.path().join("o.safetensors");
    let out = out.to_str().unwrap();
    fails_with(
        &[
            "forward",
            "--model",
            model,
            "--input",
            "/nonexistent/in.safetensors",
            "--output",
            out,
        ],
        &["error:", "/nonexistent/in.safetensors"],
    );
    fails_with(
        &[
            "forward",
            "--model",
            "/nonexistent/m",
            "--input",
            "x",
            "--output",
            out,
        ],
        &["error:", "/nonexistent/m"],
    );
    // an input without input_ids
    let bad = tmp.path().join("bad.safetensors");
    let data = [0u8; 4];
    let v = TensorView::new(Dtype::F32, vec![1], &data).unwrap();
    safetensors::serialize_to_file([("sigma", v)], None, &bad).unwrap();
    fails_with(
        &[
            "forward",
            "--model",
            model,
            "--input",
            bad.to_str().unwrap(),
            "--output",
            out,
        ],
        &["bad.safetensors", "input_ids", "missing"],
    );
    assert!(!Path::new(out).exists(), "no output on failure");
}

#[test]
fn infill_command_prints_the_text_and_writes_a_trace_that_adds_up() {
    let tmp = common::tempdir();
    let trace = tmp.path().join("trace.jsonl");
    let model = fixture("mdlm_dit");
    let template = "the cat [MASK*3] on the [MASK] .";
    let out = run_cli(
        &[
            "infill",
            template,
            "--model",
            model.to_str().unwrap(),
            "--seed",
            "7",
            "--trace",
            trace.to_str().unwrap(),
        ],
        b"",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    // not a terminal: only the result, which keeps the known text
    assert_eq!(stdout.lines().count(), 1, "{stdout:?}");
    let text = stdout.trim_end_matches('\n');
    assert!(
        text.starts_with("the cat ") && text.ends_with(" ."),
        "{text:?}"
    );
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&trace)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (done, steps) = lines.split_last().unwrap();
    assert_eq!(done["done"], true);
    assert_eq!(done["text"], text);
    assert_eq!(done["steps"].as_u64().unwrap() as usize, steps.len());
    let committed: usize = steps
        .iter()
        .map(|s| s["committed"].as_array().unwrap().len())
        .sum();
    assert_eq!(committed, 4, "every hole committed once");
    for (i, s) in steps.iter().enumerate() {
        assert_eq!(s["step"].as_u64().unwrap() as usize, i + 1);
        for key in ["t", "nfe", "masked"] {
            assert!(s[key].is_number(), "{key} in {s}");
        }
        for c in s["committed"].as_array().unwrap() {
            assert!(
                c["pos"].is_u64() && c["id"].is_u64() && c["text"].is_string() && c["p"].is_f64(),
                "{c}"
            );
        }
    }
    assert_eq!(steps.last().unwrap()["masked"], 0);
    // the same seed gives the same text
    let again = run_cli(
        &[
            "infill",
            template,
            "--model",
            model.to_str().unwrap(),
            "--seed",
            "7",
        ],
        b"",
    );
    assert_eq!(String::from_utf8(again.stdout).unwrap(), stdout);
}

#[test]
fn infill_command_reads_templates_from_stdin_and_prints_json() {
    let model = fixture("bert");
    let out = run_cli(
        &[
            "infill",
            "-",
            "--model",
            model.to_str().unwrap(),
            "--json",
            "--strategy",
            "threshold:0.3",
        ],
        "the [MASK] sat .\n\nthe river [MASK*2] .\na [[quiet]] dog\n".as_bytes(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 4, "one object per line, the blank one included");
    assert_eq!(rows[1], serde_json::json!({"line": 2, "empty": true}));
    let filled = [&rows[0], &rows[2], &rows[3]];
    assert_eq!(
        filled
            .iter()
            .map(|r| r["holes"].as_u64().unwrap())
            .collect::<Vec<_>>()[..2],
        [1, 2]
    );
    assert!(
        rows[3]["text"].as_str().unwrap().starts_with("a ")
            && rows[3]["text"].as_str().unwrap().ends_with(" dog")
    );
    assert!(filled.iter().all(|r| r["strategy"] == "threshold:0.3"));
    assert_eq!(rows[3]["line"], 4);
    // a bad line names itself
    fails_with_stdin(
        &[
            "infill",
            "--backend",
            "cpu",
            "-",
            "--model",
            model.to_str().unwrap(),
        ],
        "ok [MASK]\nbad [[x\n",
        &["line 2", "never closed"],
    );
}

fn fails_with_stdin(args: &[&str], stdin: &str, parts: &[&str]) {
    let out = run_cli(args, stdin.as_bytes());
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    for p in parts {
        assert!(err.contains(p), "{err:?} lacks {p:?}");
    }
}

#[test]
fn infill_command_errors() {
    let model = fixture("mdlm_dit");
    let m = model.to_str().unwrap();
    fails_with(
        &[
            "infill",
            "--backend",
            "cpu",
            "the [MASK*99] .",
            "--model",
            m,
        ],
        &["context is 32", "model_length"],
    );
    fails_with(
        &[
            "infill",
            "--backend",
            "cpu",
            "nothing to fill",
            "--model",
            m,
        ],
        &["no holes"],
    );
    // argument errors come from clap, with its usage hint after the message
    let out = run_cli(
        &["infill", "a [MASK]", "--model", m, "--strategy", "greedy"],
        b"",
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("unknown strategy `greedy`; one of: ancestral"));
    fails_with(
        &[
            "infill",
            "--backend",
            "cpu",
            "a [MASK]",
            "--model",
            m,
            "--force",
            "0=the cat",
        ],
        &["force 0=the cat", "not one"],
    );
}

#[test]
fn eval_command_reports_accuracy_and_the_perplexity_bound() {
    let tmp = common::tempdir();
    let text = tmp.path().join("text.txt");
    std::fs::write(
        &text,
        "the cat sat on the mat.\n\nthe dog ran to the park. the river was quiet.\n\n\n",
    )
    .unwrap();
    let model = fixture("mdlm_dit");
    let args = [
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--text",
        text.to_str().unwrap(),
        "--seed",
        "3",
    ];
    let out = run_cli(&args, b"");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["paragraphs"], 2);
    let tokens = r["tokens"].as_u64().unwrap();
    assert!(tokens > 20, "{r}");
    let acc = r["accuracy"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&acc));
    let ppl = r["ppl_bound"].as_f64().unwrap();
    assert!(ppl.is_finite() && ppl > 1.0, "{r}");
    assert!((r["nelbo_per_token"].as_f64().unwrap().exp() - ppl).abs() < 1e-9 * ppl);
    // reproducible from its seed
    let again: serde_json::Value = serde_json::from_slice(&run_cli(&args, b"").stdout).unwrap();
    assert_eq!(r["nelbo_per_token"], again["nelbo_per_token"]);
    assert_eq!(r["accuracy"], again["accuracy"]);
}

#[cfg(feature = "default-model")]
#[test]
fn eval_spans_reports_fill_quality_and_compares_settings() {
    let tmp = common::tempdir();
    let text = tmp.path().join("text.txt");
    std::fs::write(
        &text,
        "Peter Rabbit ran as fast as he could go under the gate. The old gray goose sat by \
         the pond all day long.\n\nThe little girl was so tired that she began to cry softly.\n",
    )
    .unwrap();
    let path = text.to_str().unwrap();
    let base = ["eval", "--backend", "cpu", "--text", path, "--spans"];
    let out = run_cli(&base, b"");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["spans"], 3, "{r}");
    assert_eq!(r["span_words"], 2);
    assert!(r["span_tokens"].is_null());
    for key in ["exact", "token_accuracy", "word_accuracy"] {
        assert!(
            (0.0..=1.0).contains(&r[key].as_f64().unwrap()),
            "{key}: {r}"
        );
    }
    let nfe = r["nfe_per_hole"].as_f64().unwrap();
    assert!(nfe > 0.0 && nfe <= 1.0, "{r}");
    // the table: one row per setting, in order
    let mut args = base.to_vec();
    args.extend(["--compare", "top-prob,ancestral@0.5/3"]);
    let out = run_cli(&args, b"");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<&str> = table
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| strategy"))
        .collect();
    assert_eq!(rows.len(), 2, "{table}");
    assert!(rows[0].starts_with("| top-prob | 0 | default |"), "{table}");
    assert!(rows[1].starts_with("| ancestral | 0.5 | 3 |"), "{table}");
    // a bad setting is named
    let mut args = base.to_vec();
    args.extend(["--compare", "top-prob,ancestral@hot"]);
    let out = run_cli(&args, b"");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("ancestral@hot") && err.contains("temperature"),
        "{err}"
    );
}

/// `unmask forward --backend gpu` against the golden files (f32 weights for parity; atol and
/// rtol 1e-3). Under CI=true this must run on the installed software Vulkan.
#[test]
fn forward_command_on_the_gpu_matches_golden() {
    // probe for an adapter with the cheapest GPU run there is
    let tmp = common::tempdir();
    let input = tmp.path().join("in.safetensors");
    write_input("bert", &input, false, None);
    let out_path = tmp.path().join("out.safetensors");
    let probe = Command::new(BIN)
        .args(["forward", "--backend", "gpu", "--model"])
        .arg(fixture("bert"))
        .arg("--input")
        .arg(&input)
        .arg("--output")
        .arg(&out_path)
        .output()
        .unwrap();
    if !probe.status.success() {
        let why = String::from_utf8_lossy(&probe.stderr);
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "CI=true but no GPU: {why}"
        );
        eprintln!("skipping: no GPU adapter ({})", why.trim());
        return;
    }
    for (name, key, sigma) in [
        ("bert", "logits", None),
        ("distilbert", "logits", None),
        ("roberta", "logits", None),
        ("modernbert", "logits", None),
        ("llada", "logits", None),
        ("llada_gqa", "logits", None),
        ("dream", "logits", None),
        ("mdlm_dit", "backbone_logits.1", Some("sigma.1")),
        ("mdlm_dit_timecond", "backbone_logits.2", Some("sigma.2")),
    ] {
        let got = run_forward_on(
            name,
            sigma,
            false,
            &["--backend", "gpu", "--weights", "f32"],
        );
        let (batch, g) = golden(name);
        let want = &g[key];
        let e = scaled_err(&got["logits"], want, &batch);
        assert!(e <= 1.0, "{name}: outside atol/rtol 1e-3 ({e})");
        assert_logits_match(
            &format!("cli gpu {name}"),
            &got["logits"],
            want,
            &batch,
            1e-2,
        );
    }
}

/// `--strategy`'s help is built from `Strategy::ALL`, the one list of strategies: `--help`
/// gives each one's usage and help, `-h` each usage, for `infill` and `eval` alike.
#[test]
fn strategy_help_lists_every_strategy() {
    use unmask::diffusion::Strategy;
    for command in ["infill", "eval"] {
        let help = |flag: &str| {
            let out = Command::new(BIN).args([command, flag]).output().unwrap();
            assert!(out.status.success(), "{command} {flag}");
            String::from_utf8(out.stdout).unwrap()
        };
        let (long, short) = (help("--help"), help("-h"));
        for s in Strategy::ALL {
            let line = long
                .lines()
                .find(|l| l.trim_start().starts_with(&format!("{} ", s.usage)))
                .unwrap_or_else(|| panic!("{command} --help lacks `{}`:\n{long}", s.name));
            assert!(line.ends_with(s.help), "{command} --help: {line:?}");
            assert!(short.contains(s.usage), "{command} -h lacks `{}`", s.usage);
        }
    }
}

#[test]
fn bench_rejects_an_absurd_thread_count() {
    // before the fix, 5000 threads were created
    fails_with(
        &["bench", "--threads", "5000", "--backend", "cpu"],
        &["--threads", "5000", "is outside 1..="],
    );
    fails_with(
        &["bench", "--threads", "0", "--backend", "cpu"],
        &["--threads", "0"],
    );
}

/// A checkpoint with a tensor no builder reads loads (as transformers tolerates it), and the
/// CLI says so on stderr, naming the tensor, while stdout carries only the fill.
#[test]
fn load_warnings_are_printed_on_stderr() {
    let tmp = common::tempdir();
    let dir = tmp.path().join("bert");
    std::fs::create_dir(&dir).unwrap();
    for f in ["config.json", "tokenizer.json"] {
        std::fs::copy(fixture("bert").join(f), dir.join(f)).unwrap();
    }
    let bytes = std::fs::read(fixture("bert").join("model.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let extra = [0u8; 8];
    let mut views: HashMap<String, TensorView> = st.tensors().into_iter().collect();
    views.insert(
        "bert.pooler.dense.weight".into(),
        TensorView::new(Dtype::F32, vec![2], &extra).unwrap(),
    );
    safetensors::serialize_to_file(views, None, &dir.join("model.safetensors")).unwrap();

    let out = run_cli(
        &[
            "infill",
            "--model",
            dir.to_str().unwrap(),
            "--seed",
            "1",
            "the cat [MASK] .",
        ],
        b"",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "stderr: {stderr}");
    assert!(
        stderr.contains("warning:") && stderr.contains("`bert.pooler.dense.weight`"),
        "stderr: {stderr}"
    );
    assert!(!stdout.contains("warning"), "stdout: {stdout}");
    assert!(stdout.starts_with("the cat "), "stdout: {stdout}");
}

/// A model the machine's memory cannot hold is refused before its weights are read, with the
/// figures; `UNMASK_MEMORY` stands in for a small machine.
#[test]
fn a_model_larger_than_memory_is_refused_before_loading() {
    let model = fixture("llada");
    let run = |limit: &str| {
        Command::new(BIN)
            .env("UNMASK_MEMORY", limit)
            .args(["infill", "--model", model.to_str().unwrap(), "a [MASK] b"])
            .output()
            .unwrap()
    };
    let out = run("1M");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(out.stdout.is_empty());
    for part in [
        model.to_str().unwrap(),
        "f32 weights",
        "more than this machine's 1.0 MB of memory",
    ] {
        assert!(stderr.contains(part), "{part:?} not in {stderr}");
    }
    let out = run("256M");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `--attention`: Qwen3 A2D runs as loaded (full), as BD3LM with `block:N`, or as BD3LM from a
/// path naming `bd3lm` (with a warning saying so, which `full` overrides); other models refuse
/// it, and `block:0` is refused by the parser.
#[test]
fn attention_option_for_qwen3_a2d() {
    let a2d = fixture("a2d_qwen3");
    let a2d = a2d.to_str().unwrap();
    let t = "The cat[MASK*3] on the mat,[MASK*6] quiet.";
    let full = run_cli(&["infill", "--backend", "cpu", "--model", a2d, t], b"");
    let blocks = run_cli(
        &[
            "infill",
            "--backend",
            "cpu",
            "--model",
            a2d,
            "--attention",
            "block:4",
            t,
        ],
        b"",
    );
    assert!(full.status.success() && blocks.status.success());
    assert_ne!(full.stdout, blocks.stdout, "block:4 changed nothing");
    let tmp = tempdir();
    let named = tmp.path().join("Qwen3-0.6B-diffusion-bd3lm-v0.1");
    std::fs::create_dir(&named).unwrap();
    for f in ["config.json", "model.safetensors", "tokenizer.json"] {
        std::fs::copy(fixture("a2d_qwen3").join(f), named.join(f)).unwrap();
    }
    let out = run_cli(
        &[
            "infill",
            "--backend",
            "cpu",
            "--model",
            named.to_str().unwrap(),
            t,
        ],
        b"",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && err.contains("taken as a BD3LM checkpoint"),
        "{err}"
    );
    let out = run_cli(
        &[
            "infill",
            "--backend",
            "cpu",
            "--attention",
            "full",
            "--model",
            named.to_str().unwrap(),
            t,
        ],
        b"",
    );
    assert_eq!(
        out.stdout, full.stdout,
        "--attention full overrides the name"
    );
    let out = run_cli(&["infill", "--attention", "block:4", "a [MASK] b"], b"");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("a2d-qwen3"), "{err}");
    let out = run_cli(&["infill", "--attention", "block:0", "a [MASK] b"], b"");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("block:N"), "{err}");
}

/// `quantize --format q4` writes a folder whose forward pass is exactly the one `--weights q4`
/// (or its other spelling, `q4_0`) computes on the original model, and not the f32 one.
#[test]
fn quantize_to_q4_reads_back_as_weights_q4() {
    let tmp = common::tempdir();
    let q4 = tmp.path().join("q4");
    let out = Command::new(BIN)
        .arg("quantize")
        .arg(fixture("llada"))
        .arg(&q4)
        .args(["--format", "q4"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("tensors quantised to q4_0"),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let input = tmp.path().join("in.safetensors");
    write_input("llada", &input, false, None);
    let logits = |model: &Path, weights: &[&str]| {
        let output = tmp.path().join("out.safetensors");
        let out = Command::new(BIN)
            .args(["forward", "--backend", "cpu", "--model"])
            .arg(model)
            .arg("--input")
            .arg(&input)
            .arg("--output")
            .arg(&output)
            .args(weights)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{weights:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut t = read_f32_tensors("out", &std::fs::read(&output).unwrap()).unwrap();
        t.remove("logits").expect("logits written").data
    };
    let from_file = logits(&q4, &[]);
    for spelling in ["q4", "q4_0"] {
        let at_load = logits(&fixture("llada"), &["--weights", spelling]);
        assert!(from_file == at_load, "--weights {spelling}");
    }
    assert!(from_file != logits(&fixture("llada"), &["--weights", "f32"]));
}
