//! `unmask infill -` (batch mode): one output line per input line, whatever the lines hold
//! (blank, failing, not UTF-8, CRLF); every error names its line; the known text of every
//! template, escapes `\[` `\]` `\\` included, comes back byte for byte as docs/cli.md says.

mod common;

use std::process::{Command, Output};

use common::{fixture, run_cli as unmask, BIN};

fn batch(model: &str, extra: &[&str], stdin: &[u8]) -> Output {
    let m = fixture(model);
    let mut args = vec![
        "infill",
        "-",
        "--backend",
        "cpu",
        "--model",
        m.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    unmask(&args, stdin)
}

/// xorshift64*: the test's own reproducible stream.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Known-text atoms as typed in a template, and as docs/cli.md says they come back: `\[` is
/// `[`, `\]` is `]`, `\\` is `\`, and a backslash before anything else is itself. None ends
/// in a lone backslash or a `[`, which would join with a following `[MASK]`.
const ATOMS: &[(&str, &str)] = &[
    ("the", "the"),
    (" ", " "),
    (" cat", " cat"),
    (".", "."),
    (",", ","),
    (r"\[", "["),
    (r"\]", "]"),
    (r"\\", "\\"),
    (r"\[note\]", "[note]"),
    (r"C:\\Users\\me", r"C:\Users\me"),
    (r"a\b", r"a\b"),
    (r"\n", r"\n"),
    (r"\[MASK\]", "[MASK]"),
    (r"\[\[x\]\]", "[[x]]"),
    ("]", "]"),
    ("end ", "end "),
];

/// One template from the stream and its known text between (and around) the holes.
fn template(rng: &mut Rng) -> (String, Vec<String>) {
    let mut src = String::new();
    let mut known = vec![String::new()];
    let pieces = 1 + rng.below(5);
    let mut holes = 0;
    // short enough for the smallest fixture's context (32 tokens)
    for k in 0..pieces {
        if src.len() > 36 {
            break;
        }
        if k > 0 || rng.below(3) == 0 {
            // a hole, or several
            src.push_str(if rng.below(2) == 0 {
                "[MASK]"
            } else {
                "[MASK*2]"
            });
            known.push(String::new());
            holes += 1;
        }
        for _ in 0..rng.below(3) {
            let (typed, back) = ATOMS[rng.below(ATOMS.len())];
            src.push_str(typed);
            known.last_mut().unwrap().push_str(back);
        }
    }
    if holes == 0 {
        src.push_str("[MASK]");
        known.push(String::new());
    }
    (src, known)
}

/// `out` is `known` in order, with anything between: the first part a prefix, the last a
/// suffix.
fn assert_keeps(template: &str, known: &[String], out: &str) {
    assert!(
        out.starts_with(&known[0]),
        "{template:?} → {out:?}: lost the start {:?}",
        known[0]
    );
    let mut rest = &out[known[0].len()..];
    for k in &known[1..] {
        let at = rest
            .find(k.as_str())
            .unwrap_or_else(|| panic!("{template:?} → {out:?}: lost {k:?}"));
        rest = &rest[at + k.len()..];
    }
    assert!(
        out.ends_with(known.last().unwrap().as_str()),
        "{template:?} → {out:?}: lost the end {:?}",
        known.last()
    );
}

/// What one input line of the property test is.
enum Line {
    Blank(&'static str),
    Bad(&'static str, &'static str),
    Good(String, Vec<String>),
}

fn lines(seed: u64, n: usize) -> Vec<Line> {
    let mut rng = Rng(seed);
    (0..n)
        .map(|_| match rng.below(8) {
            0 => Line::Blank(["", "   ", "\t"][rng.below(3)]),
            1 => [
                Line::Bad("no holes here", "no holes"),
                Line::Bad("a [[never closed", "never closed"),
                Line::Bad("[MASK*0] x", "1 to"),
            ]
            .into_iter()
            .nth(rng.below(3))
            .unwrap(),
            _ => {
                let (t, k) = template(&mut rng);
                Line::Good(t, k)
            }
        })
        .collect()
}

fn stdin_of(lines: &[Line], crlf: bool) -> Vec<u8> {
    let end = if crlf { "\r\n" } else { "\n" };
    let mut s = String::new();
    for l in lines {
        match l {
            Line::Blank(b) => s.push_str(b),
            Line::Bad(t, _) => s.push_str(t),
            Line::Good(t, _) => s.push_str(t),
        }
        s.push_str(end);
    }
    s.into_bytes()
}

#[test]
fn batch_output_lines_align_with_input_lines_and_keep_the_known_text() {
    for (model, seed, crlf) in [
        ("roberta", 1, false),
        ("bert", 2, true),
        ("mdlm_dit", 3, false),
    ] {
        let input = lines(seed, 60);
        let out = batch(model, &["--seed", "5"], &stdin_of(&input, crlf));
        let stdout = String::from_utf8(out.stdout).unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        let got: Vec<&str> = stdout.split('\n').collect();
        assert_eq!(got.last(), Some(&""), "{model}: ends with a newline");
        let got = &got[..got.len() - 1];
        assert_eq!(got.len(), input.len(), "{model}: one line out per line in");
        let mut bad = 0;
        for (i, (l, o)) in input.iter().zip(got).enumerate() {
            let n = i + 1;
            assert!(!o.contains('\r'), "{model}: line {n} {o:?}");
            match l {
                Line::Blank(_) => assert_eq!(*o, "", "{model}: blank line {n}"),
                Line::Bad(t, why) => {
                    bad += 1;
                    assert_eq!(
                        *o, "",
                        "{model}: failed line {n} ({t:?}) gives a blank line"
                    );
                    let report = stderr
                        .lines()
                        .find(|e| e.starts_with(&format!("error: line {n}: ")))
                        .unwrap_or_else(|| panic!("{model}: line {n} not named in {stderr}"));
                    assert!(report.contains(why), "{report:?} lacks {why:?}");
                }
                Line::Good(t, known) => assert_keeps(t, known, o),
            }
        }
        assert!(bad > 0, "the stream has bad lines");
        assert_eq!(stderr.lines().count(), bad, "{model}: {stderr}");
        assert_eq!(out.status.code(), Some(1), "a failed line makes exit 1");
    }
}

#[test]
fn batch_json_has_one_object_per_line_naming_it() {
    let input = lines(7, 30);
    let out = batch("mdlm_dit", &["--json"], &stdin_of(&input, false));
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), input.len());
    for (i, (l, r)) in input.iter().zip(&rows).enumerate() {
        assert_eq!(r["line"], i + 1, "{r}");
        match l {
            Line::Blank(_) => assert_eq!(r["empty"], true, "{r}"),
            Line::Bad(_, why) => {
                assert!(r["error"].as_str().unwrap().contains(why), "{r}")
            }
            Line::Good(t, known) => assert_keeps(t, known, r["text"].as_str().unwrap()),
        }
    }
    // "line" comes first, as docs/cli.md shows
    assert!(stdout.lines().all(|l| l.starts_with("{\"line\":")));
}

#[test]
fn batch_of_good_lines_exits_0_and_an_empty_batch_prints_nothing() {
    let out = batch("bert", &[], b"the [MASK] sat .\n\na [MASK] b");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let got: Vec<&str> = stdout.lines().collect();
    assert_eq!(got.len(), 3, "{stdout:?}");
    assert!(got[0].starts_with("the ") && got[1].is_empty() && got[2].starts_with("a "));
    let out = batch("bert", &[], b"");
    assert!(out.status.success());
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
}

#[test]
fn force_errors_in_a_batch_name_their_line() {
    // hole 1 exists on line 2 only
    let out = batch(
        "bert",
        &["--force", "1=the"],
        b"a [MASK] b\n[MASK] x [MASK]\nc [MASK]\n",
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    let errors: Vec<&str> = stderr.lines().collect();
    assert_eq!(errors.len(), 2, "{stderr}");
    assert!(errors[0].starts_with("error: line 1: ") && errors[0].contains("hole 1"));
    assert!(errors[1].starts_with("error: line 3: ") && errors[1].contains("hole 1"));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let got: Vec<&str> = stdout.lines().collect();
    assert_eq!(got.len(), 3);
    assert!(got[0].is_empty() && got[1].contains(" x ") && got[2].is_empty());
}

#[test]
fn a_line_that_is_not_utf8_fails_alone() {
    let out = batch("bert", &[], b"a [MASK] b\n\xff\xfe [MASK]\nc [MASK]\n");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        stderr.trim_end(),
        "error: line 2: not UTF-8 (byte 1 of the line)"
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let got: Vec<&str> = stdout.lines().collect();
    assert_eq!(got.len(), 3);
    assert!(got[0].starts_with("a ") && got[1].is_empty() && got[2].starts_with("c "));
}

#[test]
fn a_single_template_keeps_escapes_as_the_readme_says() {
    let m = fixture("roberta");
    let out = unmask(
        &[
            "infill",
            r"path C:\\tmp\\x [MASK] \[1\] a\b",
            "--backend",
            "cpu",
            "--model",
            m.to_str().unwrap(),
        ],
        b"",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let text = text.strip_suffix('\n').unwrap();
    assert!(text.starts_with(r"path C:\tmp\x "), "{text:?}");
    assert!(text.ends_with(r" [1] a\b"), "{text:?}");
}

#[test]
fn model_errors_and_huge_lines_fail_their_line_only() {
    // a template over 1 MiB is refused before it is parsed, as its own line's error
    let mut stdin = b"a [MASK] b\n".to_vec();
    stdin.extend(std::iter::repeat_n(b'x', (1 << 20) + 1));
    stdin.extend(b" [MASK]\nc [MASK]\n");
    let out = batch("bert", &[], &stdin);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: line 2: ") && stderr.contains("1 MiB"),
        "{stderr}"
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let got: Vec<&str> = stdout.lines().collect();
    assert_eq!(got.len(), 3);
    assert!(got[0].starts_with("a ") && got[1].is_empty() && got[2].starts_with("c "));

    // a checkpoint whose scores are NaN: every line fails with its number, none is filled
    let dir = common::tempdir();
    let src = fixture("bert");
    for f in ["config.json", "tokenizer.json"] {
        std::fs::copy(src.join(f), dir.path().join(f)).unwrap();
    }
    let bytes = std::fs::read(src.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let v = st.tensor("cls.predictions.bias").unwrap().shape()[0];
    let nan: Vec<u8> = (0..v).flat_map(|_| f32::NAN.to_le_bytes()).collect();
    let mut views: std::collections::HashMap<String, safetensors::tensor::TensorView> =
        st.tensors().into_iter().collect();
    views.insert(
        "cls.predictions.bias".into(),
        safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![v], &nan).unwrap(),
    );
    safetensors::serialize_to_file(views, None, &dir.path().join("model.safetensors")).unwrap();
    let m = dir.path().to_str().unwrap();
    let out = unmask(
        &["infill", "-", "--backend", "cpu", "--model", m, "--json"],
        b"a [MASK] b\n\nc [MASK*2]\n",
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    let errors: Vec<&str> = stderr.lines().collect();
    assert_eq!(errors.len(), 2, "{stderr}");
    for (e, n) in errors.iter().zip([1, 3]) {
        assert!(
            e.starts_with(&format!("error: line {n}: ")) && e.contains("non-finite"),
            "{e}"
        );
    }
    let rows: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 3);
    assert!(rows[0]["error"].as_str().unwrap().contains("non-finite"));
    assert_eq!(rows[1]["empty"], true);
    assert!(rows[2]["text"].is_null() && rows[2]["line"] == 3);
}

#[test]
fn unreadable_stdin_stops_the_batch_with_one_line() {
    // a directory: open works, read fails
    let out = Command::new(BIN)
        .args(["infill", "-", "--backend", "cpu", "--model"])
        .arg(fixture("bert"))
        .stdin(std::fs::File::open("/").unwrap())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: <stdin>: "), "{stderr}");
    assert!(out.stdout.is_empty());
}
