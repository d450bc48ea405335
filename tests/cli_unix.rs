//! The `unmask` binary as a Unix tool and `eval`'s refusals: a closed stdout ends quietly with
//! exit 141, a full disk is one error line and exit 1, usage errors exit 2, `bench --threads`
//! keeps to its range, piped runs draw no progress bar (a terminal gets one), and `eval`
//! scores a CRLF or CR file as the LF one and refuses what it cannot score.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::{fixture, run_cli as unmask, BIN};
use safetensors::tensor::TensorView;
use safetensors::SafeTensors;

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Runs with stdout already closed by its reader: the first write meets a broken pipe.
fn with_closed_stdout(args: &[&str], stdin: &[u8]) -> Output {
    use std::io::Write;
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let mut pipe = child.stdin.take().unwrap();
    // the child may be gone before it reads its input
    let _ = pipe.write_all(stdin);
    drop(pipe);
    child.wait_with_output().unwrap()
}

/// Runs with stdout on /dev/full: every write fails with ENOSPC.
fn to_dev_full(args: &[&str], stdin: &[u8]) -> Output {
    use std::io::Write;
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(full)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    let _ = pipe.write_all(stdin);
    drop(pipe);
    child.wait_with_output().unwrap()
}

fn assert_quiet_141(what: &str, out: &Output) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(141), "{what}: {err}");
    assert!(
        !err.contains("panicked") && !err.contains("error"),
        "{what}: {err}"
    );
}

fn assert_one_error(what: &str, out: &Output, parts: &[&str]) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{what}: {err}");
    assert!(!err.contains("panicked"), "{what}: {err}");
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 1, "{what}: one error line in {err:?}");
    for p in parts {
        assert!(errors[0].contains(p), "{what}: {:?} lacks {p:?}", errors[0]);
    }
}

struct Text {
    _dir: common::TempDir,
    file: std::path::PathBuf,
}

fn text_file(body: &[u8]) -> Text {
    let dir = common::tempdir();
    let file = dir.path().join("text.txt");
    std::fs::write(&file, body).unwrap();
    Text { _dir: dir, file }
}

const PARAGRAPHS: &str = "the cat sat on the mat.\nthe dog sat too.\n\nthe dog ran to the park. \
                          the river was quiet.\n\n\nand the end.\n";

#[test]
fn a_closed_stdout_ends_quietly_with_141() {
    let bert = fixture("bert");
    let m = path(&bert);
    let args = ["--backend", "cpu", "--model", m];
    let one = [&["infill", "the [MASK] sat ."][..], &args].concat();
    assert_quiet_141("infill", &with_closed_stdout(&one, b""));
    let batch = [&["infill", "-"][..], &args].concat();
    assert_quiet_141(
        "infill -",
        &with_closed_stdout(&batch, b"a [MASK]\nb [MASK]\n"),
    );
    let json = [&["infill", "-", "--json"][..], &args].concat();
    assert_quiet_141("infill - --json", &with_closed_stdout(&json, b"\n"));
    let text = text_file(PARAGRAPHS.as_bytes());
    let eval = [&["eval", "--text", path(&text.file)][..], &args].concat();
    assert_quiet_141("eval", &with_closed_stdout(&eval, b""));
    // the header comes before the model is built
    let bench = [
        "bench",
        "--backend",
        "cpu",
        "--lengths",
        "1",
        "--iters",
        "1",
    ];
    assert_quiet_141("bench", &with_closed_stdout(&bench, b""));
}

#[test]
fn head_1_on_a_long_batch_stops_it_with_141() {
    // far more output than a pipe holds, so the batch is still writing when `head` leaves
    let known = "the quiet river ran by the old mill and the green fields";
    let stdin: String = (0..4000).map(|_| format!("{known} [MASK]\n")).collect();
    let m = fixture("bert");
    let mut child = Command::new(BIN)
        .args(["infill", "-", "--backend", "cpu", "--model", path(&m)])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        use std::io::Write;
        let _ = pipe.write_all(stdin.as_bytes());
    });
    let mut first = String::new();
    {
        use std::io::BufRead;
        let mut r = std::io::BufReader::new(child.stdout.take().unwrap());
        r.read_line(&mut first).unwrap();
    }
    assert!(first.starts_with(known), "{first:?}");
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    assert_quiet_141("infill - | head -1", &out);
}

#[test]
fn a_full_disk_is_one_error_line_and_exit_1() {
    let bert = fixture("bert");
    let m = path(&bert);
    let args = ["--backend", "cpu", "--model", m];
    let want = ["writing standard output", "No space left on device"];
    let one = [&["infill", "the [MASK] sat ."][..], &args].concat();
    assert_one_error("infill", &to_dev_full(&one, b""), &want);
    let batch = [&["infill", "-"][..], &args].concat();
    assert_one_error("infill -", &to_dev_full(&batch, b"a [MASK]\n\n"), &want);
    let text = text_file(PARAGRAPHS.as_bytes());
    let eval = [&["eval", "--text", path(&text.file)][..], &args].concat();
    assert_one_error("eval", &to_dev_full(&eval, b""), &want);
    let bench = [
        "bench",
        "--backend",
        "cpu",
        "--lengths",
        "1",
        "--iters",
        "1",
    ];
    assert_one_error("bench", &to_dev_full(&bench, b""), &want);
    // files named on the command line: the trace, forward's output
    let trace = [&["infill", "a [MASK]", "--trace", "/dev/full"][..], &args].concat();
    assert_one_error(
        "--trace /dev/full",
        &unmask(&trace, b""),
        &["/dev/full", "No space left on device"],
    );
    let tmp = common::tempdir();
    let input = tmp.path().join("in.safetensors");
    let golden = std::fs::read(bert.join("golden.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&golden).unwrap();
    let ids = st.tensor("input_ids").unwrap();
    safetensors::serialize_to_file([("input_ids", ids)], None, &input).unwrap();
    let forward = [
        "forward",
        "--backend",
        "cpu",
        "--model",
        m,
        "--input",
        path(&input),
        "--output",
        "/dev/full",
    ];
    assert_one_error("forward", &unmask(&forward, b""), &["/dev/full"]);
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["infill"][..],
        &["infill", "a [MASK]", "--steps", "many"],
        &["eval"],
        &["bench", "--threads", "-1"],
        &["frobnicate"],
    ] {
        let out = unmask(args, b"");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).starts_with("error: "));
    }
}

#[test]
fn bench_threads_keep_to_their_range() {
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let max = (4 * cores).min(256).max(cores);
    for n in ["0".to_string(), (max + 1).to_string(), "5000".into()] {
        let out = unmask(&["bench", "--backend", "cpu", "--threads", &n], b"");
        assert_one_error(
            &format!("--threads {n}"),
            &out,
            &[
                &format!("--threads: {n} is outside 1..={max}"),
                "at most 256",
            ],
        );
    }
}

/// Bytes a progress bar or a live view would leave: escapes, carriage returns, bar cells.
fn assert_no_bar(what: &str, stderr: &[u8]) {
    let s = String::from_utf8_lossy(stderr);
    for bad in ["\x1b", "\r", "ETA", "=>", "█", "░"] {
        assert!(!s.contains(bad), "{what}: {bad:?} in piped stderr {s:?}");
    }
}

#[test]
fn piped_runs_draw_no_progress() {
    let m = fixture("mdlm_dit");
    let book: String = (0..60)
        .map(|i| format!("the cat sat on mat {i} .\n\n"))
        .collect();
    let text = text_file(book.as_bytes());
    let out = unmask(
        &[
            "eval",
            "--backend",
            "cpu",
            "--model",
            path(&m),
            "--text",
            path(&text.file),
        ],
        b"",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_no_bar("eval", &out.stderr);
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: String = (0..60)
        .map(|_| "the [MASK] sat on the [MASK] .\n")
        .collect();
    let out = unmask(
        &["infill", "-", "--backend", "cpu", "--model", path(&m)],
        lines.as_bytes(),
    );
    assert!(out.status.success());
    assert_no_bar("infill -", &out.stderr);
    assert_no_bar("infill - stdout", &out.stdout);
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 60);
}

#[test]
fn a_terminal_gets_a_progress_bar_with_rate_and_eta() {
    let m = fixture("mdlm_dit");
    let book: String = (0..200)
        .map(|i| format!("the cat sat on mat {i} .\n\n"))
        .collect();
    let text = text_file(book.as_bytes());
    let args = [
        "eval",
        "--backend",
        "cpu",
        "--model",
        path(&m),
        "--text",
        path(&text.file),
    ];
    let Some(screen) = common::run_on_terminal(&args) else {
        return;
    };
    assert!(
        screen.contains(" tokens · ") && screen.contains("/s · ETA "),
        "no bar on the terminal: {screen:?}"
    );
    // the result is still one JSON line
    let json = screen.lines().last().unwrap();
    let json = &json[json.find('{').unwrap()..];
    let r: serde_json::Value = serde_json::from_str(json.trim_end()).unwrap();
    assert_eq!(r["paragraphs"], 200);
}

fn eval(model: &str, file: &Path, extra: &[&str]) -> Output {
    let m = fixture(model);
    let mut args = vec![
        "eval",
        "--backend",
        "cpu",
        "--model",
        path(&m),
        "--text",
        path(file),
    ];
    args.extend_from_slice(extra);
    unmask(&args, b"")
}

fn report(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    r.as_object_mut().unwrap().remove("ms");
    r
}

#[test]
fn eval_gives_the_same_figures_for_lf_crlf_and_cr_files() {
    for model in ["mdlm_dit", "bert"] {
        let lf = text_file(PARAGRAPHS.as_bytes());
        let want = report(&eval(model, &lf.file, &["--seed", "4"]));
        assert_eq!(want["paragraphs"], 3, "{want}");
        for (name, newline) in [("CRLF", "\r\n"), ("CR", "\r")] {
            let other = text_file(PARAGRAPHS.replace('\n', newline).as_bytes());
            let got = report(&eval(model, &other.file, &["--seed", "4"]));
            assert_eq!(got, want, "{model}: {name} vs LF");
        }
    }
}

#[test]
fn eval_refuses_text_it_cannot_score_and_says_why() {
    for (body, parts) in [
        (&b""[..], &["text.txt", "empty or only whitespace"][..]),
        (b"\n  \r\n\t\n\n", &["text.txt", "empty or only whitespace"]),
        (
            b"the cat sat .\n\nthe [SEP] sat .",
            &["text.txt: paragraph 2", "`[SEP]`", "never predicts"],
        ),
        (
            b"[CLS] [SEP]",
            &["paragraph 1", "`[CLS]`", "never predicts"],
        ),
        (b"the [MASK] sat .", &["paragraph 1", "`[MASK]`"]),
        // characters the vocabulary cannot spell become the unknown token
        (
            "the cat \u{1F600} sat".as_bytes(),
            &["paragraph 1", "`[UNK]`"],
        ),
        (b"the cat \xff sat", &["text.txt", "UTF-8"]),
    ] {
        let text = text_file(body);
        let out = eval("bert", &text.file, &[]);
        assert_one_error(&format!("{body:?}"), &out, parts);
        assert!(out.stdout.is_empty(), "{body:?}: no figures");
    }
    let missing = Path::new("/nonexistent/book.txt");
    assert_one_error(
        "missing file",
        &eval("bert", missing, &[]),
        &["/nonexistent/book.txt"],
    );
    let text = text_file(PARAGRAPHS.as_bytes());
    for rate in ["0", "1.5", "NaN", "-0.1", "inf"] {
        assert_one_error(
            &format!("--mask-rate {rate}"),
            &eval("bert", &text.file, &[&format!("--mask-rate={rate}")]),
            &["mask rate must be in (0, 1]"],
        );
    }
}

#[test]
fn eval_refuses_a_text_too_short_for_its_objective() {
    use unmask::diffusion::seeded::hash3;
    let unit = |h: u64| h as f64 / 18_446_744_073_709_551_616.0;
    let body = "cat";
    let tok = unmask::text::Tokenizer::from_file(&fixture("bert").join("tokenizer.json")).unwrap();
    let n = tok.encode(body, false).unwrap().len() as u64;
    // a seed at which the one chunk's objective pass masks none of its tokens
    let seed = (0..10_000u64)
        .find(|&s| {
            let t = 1e-3 + (1.0 - 1e-3) * unit(hash3(s, 1, 0));
            (0..n).all(|i| unit(hash3(s, 0, 2 * i + 1)) >= t)
        })
        .unwrap();
    let text = text_file(body.as_bytes());
    let out = eval("bert", &text.file, &["--seed", &seed.to_string()]);
    assert_one_error("too short", &out, &["too short to score", "corrupted none"]);
    assert!(out.stdout.is_empty());
}

/// A copy of the bert fixture whose output bias is `bias(i)` for token i.
fn bert_with_bias(bias: impl Fn(usize) -> f32) -> common::TempDir {
    let dir = common::tempdir();
    let src = fixture("bert");
    for f in ["config.json", "tokenizer.json"] {
        std::fs::copy(src.join(f), dir.path().join(f)).unwrap();
    }
    let bytes = std::fs::read(src.join("model.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let v = st.tensor("cls.predictions.bias").unwrap().shape()[0];
    let new_bias: Vec<u8> = (0..v).flat_map(|i| bias(i).to_le_bytes()).collect();
    let mut views: HashMap<String, TensorView> = st.tensors().into_iter().collect();
    views.insert(
        "cls.predictions.bias".into(),
        TensorView::new(safetensors::Dtype::F32, vec![v], &new_bias).unwrap(),
    );
    safetensors::serialize_to_file(views, None, &dir.path().join("model.safetensors")).unwrap();
    dir
}

#[test]
fn eval_with_non_finite_scores_is_an_error_never_null() {
    let text = text_file(PARAGRAPHS.as_bytes());
    for (what, bias) in [
        ("NaN", &(|_| f32::NAN) as &dyn Fn(usize) -> f32),
        ("+inf on one token", &|i| {
            if i == 10 {
                f32::INFINITY
            } else {
                0.0
            }
        }),
    ] {
        let model = bert_with_bias(bias);
        let out = unmask(
            &[
                "eval",
                "--backend",
                "cpu",
                "--model",
                path(model.path()),
                "--text",
                path(&text.file),
            ],
            b"",
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{what}: {err}");
        assert!(out.stdout.is_empty(), "{what}: no figures, no null");
        assert_eq!(err.trim_end().lines().count(), 1, "{what}: {err}");
        // refused at load (non-finite weights) or named by paragraph when scored
        assert!(
            err.contains("paragraph 1") && err.contains("not finite")
                || err.contains("finite") && err.contains("model.safetensors"),
            "{what}: {err}"
        );
    }
}
