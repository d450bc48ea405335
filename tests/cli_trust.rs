//! Issue 21, round two of the hostile-input probe, on the `unmask` binary: no output overwrites
//! a file the run reads or is left half-written, limits hold and say so, and messages name what
//! the user wrote (docs/bad-inputs.md, "Round two").

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::{fixture, BIN};

fn run_cli_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    common::run_cli_with(args, b"", env)
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Exit 1 with one `error:` line holding every part, nothing on stdout, no panic.
fn assert_refused(what: &str, out: &Output, parts: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "{what}: {err}");
    assert!(!err.contains("panicked"), "{what}: {err}");
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 1, "{what}: one error line in {err:?}");
    for p in parts {
        assert!(errors[0].contains(p), "{what}: {:?} lacks {p:?}", errors[0]);
    }
    assert!(out.stdout.is_empty(), "{what}: stdout {:?}", out.stdout);
}

fn assert_ok(what: &str, out: &Output) {
    let err = stderr(out);
    assert!(out.status.success(), "{what}: {err}");
    assert!(
        !err.lines().any(|l| l.starts_with("error")),
        "{what}: an error line with exit 0: {err}"
    );
}

#[test]
fn unmask_memory_parses_or_is_an_error_naming_it() {
    let llada = fixture("llada");
    let folder = [
        "infill",
        "--backend",
        "cpu",
        "--model",
        path(&llada),
        "a [MASK] b",
    ];
    let embedded = ["infill", "--backend", "cpu", "a [MASK] b"];
    for args in [&folder[..], &embedded[..]] {
        for bad in ["lots", "1.2.3G", "-5M", "0", "2 GB B", "1e9"] {
            let out = run_cli_env(args, &[("UNMASK_MEMORY", bad)]);
            assert_refused(bad, &out, &["UNMASK_MEMORY", &format!("`{bad}`")]);
        }
        for good in ["1.5G", "2GiB", "1GB", "512MiB", "4096m"] {
            assert_ok(good, &run_cli_env(args, &[("UNMASK_MEMORY", good)]));
        }
    }
    // the embedded model keeps to the limit as a folder does
    let out = run_cli_env(&embedded, &[("UNMASK_MEMORY", "1M")]);
    assert_refused(
        "embedded at 1M",
        &out,
        &[
            "<embedded default model>",
            "more than this machine's 1.0 MB",
        ],
    );
}

/// A copy of a fixture folder in a fresh temporary folder: `(tmp, model folder)`.
fn model_copy(name: &str) -> (common::TempDir, std::path::PathBuf) {
    let tmp = common::tempdir();
    let dir = tmp.path().join("model");
    std::fs::create_dir(&dir).unwrap();
    for e in std::fs::read_dir(fixture(name)).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
    }
    (tmp, dir)
}

/// The names in a folder that a staged output left behind.
fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("unmask-tmp"))
        .collect()
}

/// `--trace`, `forward --output` and `quantize OUT` naming a file the run reads are refused,
/// by file identity: the same path, another spelling of it, a hard link, a symbolic link, a
/// shard of a sharded checkpoint. Before, a trace onto the weights the model had memory-mapped
/// truncated them and the run died of SIGBUS.
#[test]
fn an_output_naming_an_input_is_refused_by_identity() {
    let (tmp, dir) = model_copy("mdlm_dit");
    let weights = dir.join("model.safetensors");
    let before = std::fs::read(&weights).unwrap();
    let config = std::fs::read(dir.join("config.json")).unwrap();
    let input = dir.join("golden.safetensors");
    let golden = std::fs::read(&input).unwrap();
    let respelled = tmp.path().join("model/../model/config.json");
    let infill = |trace: &Path| {
        run_cli_env(
            &[
                "infill",
                "--backend",
                "cpu",
                "--model",
                path(&dir),
                "--trace",
                path(trace),
                "a [MASK] b",
            ],
            &[],
        )
    };
    let what = "--trace onto the memory-mapped weights";
    assert_refused(
        what,
        &infill(&weights),
        &["--trace", "a file this run reads"],
    );
    assert_refused("--trace respelled", &infill(&respelled), &["--trace"]);
    #[cfg(unix)]
    {
        let hard = tmp.path().join("hard");
        std::fs::hard_link(&weights, &hard).unwrap();
        assert_refused(
            "--trace onto a hard link",
            &infill(&hard),
            &["hard", "model.safetensors, a file this run reads"],
        );
        let sym = tmp.path().join("sym");
        std::os::unix::fs::symlink(dir.join("tokenizer.json"), &sym).unwrap();
        assert_refused(
            "--trace onto a symbolic link",
            &infill(&sym),
            &["tokenizer.json, a file this run reads"],
        );
    }
    let forward = |output: &Path| {
        run_cli_env(
            &[
                "forward",
                "--backend",
                "cpu",
                "--model",
                path(&dir),
                "--input",
                path(&input),
                "--output",
                path(output),
            ],
            &[],
        )
    };
    assert_refused("--output onto --input", &forward(&input), &["--output"]);
    assert_refused(
        "--output onto the config",
        &forward(&respelled),
        &["--output"],
    );
    assert_refused(
        "--output onto the weights",
        &forward(&weights),
        &["--output"],
    );
    let quantize = |out: &Path| run_cli_env(&["quantize", path(&dir), path(out)], &[]);
    assert_refused(
        "quantize into its own folder",
        &quantize(&dir),
        &["OUT names a folder this run reads"],
    );
    assert_refused(
        "quantize onto the config",
        &quantize(&respelled),
        &["OUT names"],
    );
    // nothing was touched, and nothing was left behind
    assert_eq!(std::fs::read(&weights).unwrap(), before);
    assert_eq!(std::fs::read(dir.join("config.json")).unwrap(), config);
    assert_eq!(std::fs::read(&input).unwrap(), golden);
    assert!(leftovers(&dir).is_empty() && leftovers(tmp.path()).is_empty());

    // a sharded checkpoint: the index and every shard it names are inputs
    let shard = "model-00001-of-00001.safetensors";
    std::fs::rename(&weights, dir.join(shard)).unwrap();
    let bytes = std::fs::read(dir.join(shard)).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let map: serde_json::Map<String, serde_json::Value> = st
        .names()
        .into_iter()
        .map(|n| (n.to_string(), serde_json::Value::from(shard)))
        .collect();
    let index = dir.join("model.safetensors.index.json");
    std::fs::write(&index, serde_json::json!({ "weight_map": map }).to_string()).unwrap();
    let out = infill(&tmp.path().join("ok.jsonl"));
    assert_ok("the sharded copy fills", &out);
    assert_refused("--trace onto a shard", &infill(&dir.join(shard)), &[shard]);
    assert_refused("--trace onto the index", &infill(&index), &["index.json"]);
    assert_eq!(std::fs::read(dir.join(shard)).unwrap(), before);
}

/// Outputs go to a temporary file beside them and are renamed into place: a run that fails
/// removes its temporary file and leaves the old output as it was; one that succeeds leaves
/// only the output. A device (`/dev/null`) is written in place.
#[test]
fn a_failed_run_leaves_no_half_written_output() {
    let (tmp, dir) = model_copy("mdlm_dit");
    let trace = tmp.path().join("trace.jsonl");
    std::fs::write(&trace, "old\n").unwrap();
    let infill = |template: &str, trace: &Path| {
        run_cli_env(
            &[
                "infill",
                "--backend",
                "cpu",
                "--model",
                path(&dir),
                "--trace",
                path(trace),
                template,
            ],
            &[],
        )
    };
    assert_refused(
        "a bad template",
        &infill("a [MASK*0] b", &trace),
        &["column 3"],
    );
    assert_eq!(std::fs::read_to_string(&trace).unwrap(), "old\n");
    assert!(
        leftovers(tmp.path()).is_empty(),
        "{:?}",
        leftovers(tmp.path())
    );
    assert_ok("a good template", &infill("a [MASK] b", &trace));
    let text = std::fs::read_to_string(&trace).unwrap();
    assert!(
        text.lines().last().unwrap().contains("\"done\":true"),
        "{text}"
    );
    assert!(leftovers(tmp.path()).is_empty());
    assert_ok("a device", &infill("a [MASK] b", Path::new("/dev/null")));

    // forward: an input it refuses leaves no output and no temporary file
    let bad = tmp.path().join("bad.safetensors");
    let ids = [1000i64; 4];
    let view = safetensors::tensor::TensorView::new(
        safetensors::Dtype::I64,
        vec![1, 4],
        bytemuck_bytes(&ids),
    )
    .unwrap();
    safetensors::serialize_to_file([("input_ids", view)], None, &bad).unwrap();
    let output = tmp.path().join("logits.safetensors");
    let out = run_cli_env(
        &[
            "forward",
            "--backend",
            "cpu",
            "--model",
            path(&dir),
            "--input",
            path(&bad),
            "--output",
            path(&output),
        ],
        &[],
    );
    assert_refused(
        "forward out of the vocabulary",
        &out,
        &["outside the vocabulary"],
    );
    assert!(!output.exists());
    assert!(leftovers(tmp.path()).is_empty());

    // quantize: a checkpoint it refuses leaves no folder
    let broken = tmp.path().join("broken");
    std::fs::create_dir(&broken).unwrap();
    std::fs::write(broken.join("config.json"), "{").unwrap();
    std::fs::copy(
        dir.join("model.safetensors"),
        broken.join("model.safetensors"),
    )
    .unwrap();
    let q = tmp.path().join("q8");
    let out = run_cli_env(&["quantize", path(&broken), path(&q)], &[]);
    assert_refused("quantize a broken config", &out, &["config.json"]);
    assert!(!q.exists());
    assert!(leftovers(tmp.path()).is_empty());
}

fn bytemuck_bytes(v: &[i64]) -> &[u8] {
    // SAFETY: i64 has no padding and any byte is a valid u8
    unsafe { std::slice::from_raw_parts(v.as_ptr().cast(), std::mem::size_of_val(v)) }
}

/// A `quantize` killed while it writes (here by the file-size limit, SIGXFSZ) leaves no
/// half-written model at OUT: the next run into the same OUT succeeds and reads back. Before,
/// the half-written folder was there and the next run refused it as not empty.
#[cfg(unix)]
#[test]
fn an_interrupted_quantize_leaves_no_half_written_model() {
    let (tmp, dir) = model_copy("mdlm_dit");
    let q = tmp.path().join("q8");
    let script = format!(
        "ulimit -f 16; exec '{BIN}' quantize '{}' '{}'",
        path(&dir),
        path(&q)
    );
    let out = Command::new("bash").args(["-c", &script]).output().unwrap();
    assert!(
        !out.status.success(),
        "the limit did not stop it: {}",
        stderr(&out)
    );
    assert!(!q.exists(), "a half-written model at OUT");
    let out = run_cli_env(&["quantize", path(&dir), path(&q)], &[]);
    assert_ok("quantize again", &out);
    let out = run_cli_env(
        &[
            "infill",
            "--backend",
            "cpu",
            "--model",
            path(&q),
            "a [MASK] b",
        ],
        &[],
    );
    assert_ok("the quantised model", &out);
    // a finished OUT is not written again; an empty folder is still taken
    let out = run_cli_env(&["quantize", path(&dir), path(&q)], &[]);
    assert_refused("quantize into a full OUT", &out, &["not an empty folder"]);
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert_ok(
        "quantize into an empty folder",
        &run_cli_env(&["quantize", path(&dir), path(&empty)], &[]),
    );
    assert!(empty.join("model.safetensors").is_file());
    assert!(leftovers(tmp.path()).iter().all(|n| n.starts_with(".q8.")));
}

/// A trace line without its timing, which differs from run to run.
fn untimed(line: &str) -> serde_json::Value {
    let mut v: serde_json::Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
    if let Some(o) = v.as_object_mut() {
        o.remove("ms");
    }
    v
}

/// Two runs given the same `--trace` at once leave one whole trace: every line is JSON and
/// the file is one run's trace. Before, both truncated the file and wrote into it at their
/// own offsets.
#[test]
fn two_runs_on_one_trace_leave_one_whole_trace() {
    let (tmp, dir) = model_copy("mdlm_dit");
    let lines = |animal: &str| -> String {
        (0..400)
            .map(|i| format!("the {animal} [MASK*3] on mat {i} [MASK] .\n"))
            .collect()
    };
    // stdin is read whole before the trace is opened: the runs are started, then fed, so
    // that both write their traces at once
    let spawn = |trace: &Path| {
        Command::new(BIN)
            .args(["infill", "-", "--backend", "cpu", "--model"])
            .arg(&dir)
            .arg("--trace")
            .arg(trace)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let feed = |child: &mut std::process::Child, animal: &str| {
        use std::io::Write;
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(lines(animal).as_bytes()).unwrap();
    };
    let trace_of = |file: &Path| -> Vec<serde_json::Value> {
        std::fs::read_to_string(file)
            .unwrap()
            .lines()
            .map(untimed)
            .collect()
    };
    // each run alone, for reference
    let alone: Vec<Vec<serde_json::Value>> = ["cat", "dog"]
        .iter()
        .map(|animal| {
            let t = tmp.path().join(format!("alone-{animal}.jsonl"));
            let mut child = spawn(&t);
            feed(&mut child, animal);
            assert!(child.wait().unwrap().success());
            trace_of(&t)
        })
        .collect();
    assert_ne!(
        alone[0], alone[1],
        "the templates must give different traces"
    );
    let shared = tmp.path().join("shared.jsonl");
    let (mut a, mut b) = (spawn(&shared), spawn(&shared));
    feed(&mut a, "cat");
    feed(&mut b, "dog");
    for c in [a, b] {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let got = trace_of(&shared);
    assert!(
        got == alone[0] || got == alone[1],
        "the shared trace is neither run's ({} lines; {} and {} alone)",
        got.len(),
        alone[0].len(),
        alone[1].len()
    );
    assert!(leftovers(tmp.path()).is_empty());
}

/// A forward input of `rows` canvases of `len` token ids (id 1 everywhere).
fn forward_input(file: &Path, rows: usize, len: usize) {
    let ids = vec![1i64; rows * len];
    let view = safetensors::tensor::TensorView::new(
        safetensors::Dtype::I64,
        vec![rows, len],
        bytemuck_bytes(&ids),
    )
    .unwrap();
    safetensors::serialize_to_file([("input_ids", view)], None, file).unwrap();
}

/// `forward` takes at most 1024 canvases, read from the header before any id; and a batch
/// whose logits the machine's memory cannot hold is refused before they are computed.
#[test]
fn forward_batches_keep_to_their_bounds() {
    let tmp = common::tempdir();
    let m = fixture("mdlm_dit");
    let output = tmp.path().join("out.safetensors");
    let forward = |input: &Path, env: &[(&str, &str)]| {
        run_cli_env(
            &[
                "forward",
                "--backend",
                "cpu",
                "--model",
                path(&m),
                "--input",
                path(input),
                "--output",
                path(&output),
            ],
            env,
        )
    };
    let big = tmp.path().join("big.safetensors");
    forward_input(&big, 1025, 2);
    assert_refused(
        "1025 rows",
        &forward(&big, &[]),
        &["big.safetensors", "input_ids", "1025 rows", "at most 1024"],
    );
    let most = tmp.path().join("most.safetensors");
    forward_input(&most, 1024, 32);
    // 1024 x 32 tokens x 98 entries x 4 bytes, logits and log-probs: 25.7 MB
    assert_refused(
        "logits past UNMASK_MEMORY",
        &forward(&most, &[("UNMASK_MEMORY", "20M")]),
        &[
            "most.safetensors",
            "1024 x 32 tokens",
            "25.7 MB",
            "split the batch",
        ],
    );
    assert!(!output.exists());
    assert_ok("1024 rows", &forward(&most, &[]));
    assert!(output.is_file());
}

/// `bench --iters` is 1 to 10000, refused before the model is built. Before, 0 ran once
/// unannounced and a huge count died allocating its list of times.
#[test]
fn bench_iters_keep_to_their_range() {
    for n in ["0", "10001", "18446744073709551615"] {
        let out = run_cli_env(&["bench", "--backend", "cpu", "--iters", n], &[]);
        assert_refused(n, &out, &[&format!("--iters: {n} is outside 1..=10000")]);
    }
}

fn heldout() -> std::path::PathBuf {
    fixture("heldout-sample.txt")
}

/// `eval --spans --unknown-length` on a terminal: the bar counts fills (one per length tried),
/// moving between the lengths of a span, with rate and ETA; piped, nothing is drawn.
#[test]
fn unknown_length_evals_show_progress_per_fill_on_a_terminal() {
    let (m, text) = (fixture("mdlm_dit"), heldout());
    let args = [
        "eval",
        "--backend",
        "cpu",
        "--model",
        path(&m),
        "--text",
        path(&text),
        "--spans",
        "--unknown-length",
        "1-4",
        "--count",
        "5",
    ];
    let piped = run_cli_env(&args, &[]);
    assert_ok("piped", &piped);
    assert!(piped.stderr.is_empty(), "piped stderr: {}", stderr(&piped));
    let Some(screen) = common::run_on_terminal(&args) else {
        return;
    };
    // 5 spans x 4 lengths; a position between two spans' ends shows it moves within a span
    assert!(
        screen.contains("/20 fills · ") && screen.contains("/s · ETA "),
        "no bar counting fills: {screen:?}"
    );
    assert!(screen.contains(" 2/20 fills"), "{screen:?}");
    let json = screen.lines().last().unwrap();
    let r: serde_json::Value = serde_json::from_str(json[json.find('{').unwrap()..].trim_end())
        .unwrap_or_else(|e| panic!("{json:?}: {e}"));
    assert_eq!(r["spans"], 5);
}

/// `eval --spans --unknown-length` on a model of a short context (32 tokens) cuts only spans
/// whose sentence fits with its hole at the longest length. Before, the eval stopped at the
/// first long one with a context error.
#[test]
fn unknown_length_evals_pick_sentences_that_fit_every_length() {
    let m = fixture("mdlm_dit");
    let out = run_cli_env(
        &[
            "eval",
            "--backend",
            "cpu",
            "--model",
            path(&m),
            "--text",
            path(&heldout()),
            "--spans",
            "--unknown-length",
            "--count",
            "40",
        ],
        &[],
    );
    assert_ok("1-8 on a 32-token model", &out);
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["length_range"], "1-8");
    assert!(r["spans"].as_u64().unwrap() > 0, "{r}");
}

fn infill_json(template: &str, extra: &[&str]) -> Output {
    let m = fixture("mdlm_dit");
    let mut args = vec!["infill", "--backend", "cpu", "--json", "--model", path(&m)];
    args.extend(extra);
    args.push(template);
    run_cli_env(&args, &[])
}

fn json_of(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stderr(out)))
}

/// Tried lengths of an unknown-length fill, from its `--json`.
fn tried(r: &serde_json::Value) -> Vec<u64> {
    r["lengths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["lengths"][0].as_u64().unwrap())
        .collect()
}

/// `--block-length` with holes of unknown length is checked per candidate length: a step count
/// is split evenly over each length's blocks, the lengths it cannot be split over are left out,
/// and one that suits no length is refused naming the user's steps, block length and range.
/// Without `--steps` each block takes one step per hole, so `[MASK*5] --block-length 3` (blocks
/// of 3 and 2) works. Before, it was refused with `5 steps cannot be split evenly over 2
/// blocks of 3 holes`, steps the user never gave.
#[test]
fn block_lengths_are_checked_per_candidate_length() {
    let out = infill_json("The [MASK*5] sat.", &["--block-length", "3"]);
    assert_ok("[MASK*5] in blocks of 3", &out);
    assert_eq!(json_of(&out)["steps"], 5);
    let out = infill_json("The [MASK*1-4] sat.", &["--block-length", "2"]);
    assert_ok("[MASK*1-4] in blocks of 2", &out);
    assert_eq!(tried(&json_of(&out)), [1, 2, 3, 4]);
    // 3 steps split over one block (lengths 1, 2), not over two (3, 4)
    let out = infill_json(
        "The [MASK*1-4] sat.",
        &["--block-length", "2", "--steps", "3"],
    );
    assert_ok("3 steps", &out);
    assert_eq!(tried(&json_of(&out)), [1, 2]);
    let out = infill_json(
        "The [MASK*3-4] sat.",
        &["--block-length", "2", "--steps", "3"],
    );
    assert_refused(
        "3 steps for 3 or 4 holes in blocks of 2",
        &out,
        &[
            "steps 3 with block length 2 suit no length of `[MASK*3-4]` at column 5",
            "at 3 tokens, 3 steps cannot be split evenly over 2 blocks (block length 2 over 3 holes)",
        ],
    );
    // a step count past the per-hole cap of every length
    let out = infill_json("The [MASK*1-2] sat.", &["--steps", "129"]);
    assert_refused(
        "129 steps",
        &out,
        &[
            "steps 129 suit no length of `[MASK*1-2]` at column 5",
            "not 129",
        ],
    );
    let out = infill_json(
        "The [MASK*5] sat.",
        &["--block-length", "3", "--steps", "5"],
    );
    assert_refused(
        "5 steps in blocks of 3",
        &out,
        &["5 steps cannot be split evenly over 2 blocks (block length 3 over 5 holes)"],
    );
}

/// A fill of unknown length that overflows the context names the range as written, its column,
/// the lengths at fault and, for one range, the lengths that fit; it is found before any
/// length is filled. Before: `the template needs 33 tokens …` with no range named.
#[test]
fn context_overflows_name_the_length_and_range_at_fault() {
    let out = infill_json("The [MASK*2-30] sat.", &[]);
    assert_refused(
        "[MASK*2-30] in 32 tokens",
        &out,
        &[
            "with `[MASK*2-30]` at column 5 at 27 tokens",
            "context is 32",
            "it fits at 2 to 26 here",
        ],
    );
    let long = "The [MASK*?] sat on the mat with the dog and the hat and the bat and a cat and \
                the fat rat on a [MASK*1-2]";
    let out = infill_json(long, &[]);
    assert_refused(
        "two ranges",
        &out,
        &["`[MASK*?]` at column 5 at 1 token and `[MASK*1-2]` at column 97 at 1 token"],
    );
}

/// `eval --compare` errors name the entry, by its number and as written: values that parse but
/// are out of range (checked before any span is filled), empty entries, and a step count the
/// spans' holes do not suit. Before, a temperature or step count out of range was refused
/// without naming which entry held it.
#[test]
fn compare_errors_name_the_entry() {
    let (m, text) = (fixture("mdlm_dit"), heldout());
    let eval = |compare: &str, extra: &[&str]| {
        let mut args = vec![
            "eval",
            "--backend",
            "cpu",
            "--model",
            path(&m),
            "--text",
            path(&text),
            "--spans",
            "--count",
            "3",
            "--compare",
            compare,
        ];
        args.extend(extra);
        run_cli_env(&args, &[])
    };
    for (compare, parts) in [
        (
            "top-prob,top-prob@1e9",
            &["--compare entry 2 `top-prob@1e9`: temperature must be"][..],
        ),
        (
            "ancestral/0",
            &["--compare entry 1 `ancestral/0`: steps must be between 1"],
        ),
        ("top-prob,,ancestral", &["--compare entry 2 ``: is empty"]),
        ("top-prob, ", &["--compare entry 2 ``: is empty"]),
        (
            "margin,bogus@1",
            &["--compare entry 2 `bogus@1`: unknown strategy `bogus`"],
        ),
        (
            "ancestral@hot",
            &["--compare entry 1 `ancestral@hot`: temperature `hot`"],
        ),
        (
            "top-prob/x",
            &["--compare entry 1 `top-prob/x`: steps `x` is not a count"],
        ),
    ] {
        assert_refused(compare, &eval(compare, &[]), parts);
    }
    // one-token spans: 65 steps are past the 64 a hole may take
    let out = eval("top-prob,top-prob/65", &["--span-tokens", "1"]);
    assert_refused(
        "65 steps for one-token holes",
        &out,
        &["--compare entry 2 `top-prob/65`: steps must be between 1 and 64"],
    );
}

/// An `error:` line on stderr always comes with a non-zero exit: what the graphics stack prints
/// while the GPU is opened (lavapipe's `error: XDG_RUNTIME_DIR is invalid or not set in the
/// environment.` when the variable is unset) is passed through as `warning: GPU adapter: …`.
/// Before, that `error:` line stood in the output of runs that exited 0.
#[test]
fn adapter_messages_are_warnings_and_errors_mean_failure() {
    let (m, text) = (fixture("mdlm_dit"), heldout());
    let input = m.join("golden.safetensors");
    let tmp = common::tempdir();
    let output = tmp.path().join("out.safetensors");
    let runs: [&[&str]; 4] = [
        &[
            "infill",
            "--backend",
            "gpu",
            "--model",
            path(&m),
            "a [MASK] b",
        ],
        &[
            "infill",
            "--backend",
            "auto",
            "--model",
            path(&m),
            "a [MASK] b",
        ],
        &[
            "forward",
            "--backend",
            "gpu",
            "--model",
            path(&m),
            "--input",
            path(&input),
            "--output",
            path(&output),
        ],
        &[
            "eval",
            "--backend",
            "gpu",
            "--model",
            path(&m),
            "--text",
            path(&text),
            "--spans",
            "--count",
            "2",
        ],
    ];
    for args in runs {
        let mut c = Command::new(BIN);
        c.args(args).env_remove("XDG_RUNTIME_DIR");
        if std::env::var_os("WGPU_BACKEND").is_none() {
            c.env("WGPU_BACKEND", "vulkan");
        }
        let out = c.output().unwrap();
        let err = stderr(&out);
        if !out.status.success() && err.contains("no adapter found") {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI must have a software Vulkan adapter: {err}"
            );
            eprintln!("skipping {}: no GPU adapter here", args[0]);
            continue;
        }
        assert_ok(&args.join(" "), &out);
        for line in err.lines().filter(|l| l.contains("XDG_RUNTIME_DIR")) {
            assert!(
                line.starts_with("warning: GPU adapter: "),
                "{line:?} in {err}"
            );
        }
    }
}
