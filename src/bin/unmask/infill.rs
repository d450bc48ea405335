//! `unmask infill`: one template filled (`infill TEMPLATE`), or one per line of stdin
//! (`infill -`), as text or JSON lines, with the live view on a terminal and every step in the
//! trace file when one is asked for.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use unmask::blocking::block_on;

use unmask::diffusion::{
    Force, InfillOptions, InfillReport, InfillResult, SamplerOptions, Strategy, TraceEvent,
};
use unmask::engine::Engine;
use unmask::{Error, Result};

use crate::animate;
use crate::device::{self, Device};
use crate::files;
use crate::out::{self, bare, Fail, Out};
use crate::progress::Progress;

// The doc comment of `Command::Infill` (main.rs) is this command's help.
#[derive(clap::Args)]
pub struct Args {
    template: String,
    /// Model folder in Hugging Face layout (default: the embedded default model).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Denoising steps (default: one per hole; Mask-Predict: 10 iterations).
    #[arg(long)]
    steps: Option<usize>,
    #[arg(
        long,
        value_parser = parse_strategy,
        help = strategy_help(STRATEGY),
        long_help = strategy_long_help(STRATEGY)
    )]
    strategy: Option<Strategy>,
    /// Sampling temperature for the token choice; 0 = argmax (default: 0, and 1 for ancestral
    /// and first-hitting on MDLM).
    #[arg(long)]
    temperature: Option<f64>,
    /// Keep only the k most likely tokens (0 = all).
    #[arg(long, default_value_t = 0)]
    top_k: usize,
    /// Nucleus sampling: keep the most likely tokens up to this mass.
    #[arg(long, default_value_t = 1.0)]
    top_p: f64,
    /// Noise schedule: loglinear, cosine or linear.
    #[arg(long, default_value = "loglinear", value_parser = |s: &str| s.parse::<unmask::diffusion::ScheduleKind>())]
    schedule: unmask::diffusion::ScheduleKind,
    /// Semi-autoregressive blocks of this many holes, filled left to right.
    #[arg(long)]
    block_length: Option<usize>,
    /// Classifier-free guidance weight (the unconditional pass sees the known text masked).
    #[arg(long, default_value_t = 0.0)]
    cfg: f64,
    /// Fix a hole's token: HOLE=TEXT (holes numbered from 0; TEXT must be one token).
    #[arg(long = "force", value_name = "HOLE=TEXT")]
    forced: Vec<String>,
    /// Run a forward pass every step even when nothing changed.
    #[arg(long)]
    no_cache: bool,
    /// Fast-dLLM's DualCache: while a block of holes is decoded, reuse the rest of the
    /// canvas's keys and values from the block's first pass and compute only the block
    /// (LLaDA, Dream, Qwen3 A2D on the CPU). Fewer FLOPs per step; fills may differ slightly.
    #[arg(long)]
    dual_cache: bool,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Write every step as JSON lines to this file.
    #[arg(long)]
    trace: Option<PathBuf>,
    /// In the trace, also list each committed position's N most likely tokens (at most 16).
    #[arg(long, value_name = "N")]
    candidates: Option<usize>,
    /// With --candidates: also list them for every position a step predicted but left
    /// masked (`pending`), as the web demo's scrubber shows them.
    #[arg(long, requires = "candidates")]
    pending: bool,
    /// On a model that grows holes (DreamOn's `<|expand|>`): the length each `[MASK*?]` or
    /// `[MASK*A-B]` starts at, clamped into its range (default 4, DreamOn's).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=65536))]
    hole_start: Option<u64>,
    /// Print one JSON object per template instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    device: Device,
}

pub fn run(a: Args, out: &mut Out) -> std::result::Result<(), Fail> {
    if let Some(t) = &a.trace {
        let inputs = a
            .model
            .as_deref()
            .map(files::model_inputs)
            .unwrap_or_default();
        files::refuse_inputs("--trace", t, &inputs)?;
    }
    let mut inf = device::attach(device::load_model(a.model.as_deref(), a.device)?, a.device)?;
    let request = InfillOptions {
        strategy: a.strategy,
        steps: a.steps,
        temperature: a.temperature,
        top_k: a.top_k,
        top_p: a.top_p,
        schedule: a.schedule,
        block_length: a.block_length,
        cfg: a.cfg,
        force: a
            .forced
            .iter()
            .map(|f| f.parse::<Force>())
            .collect::<Result<_>>()?,
        cache: !a.no_cache,
        dual_cache: a.dual_cache,
        seed: a.seed,
        candidates: a.candidates,
        pending: a.pending,
        hole_start: a.hole_start.map(|n| n as usize),
    };
    let opts = request.resolve(&inf.model)?;
    if a.template == "-" {
        batch(&mut inf, &opts, a.trace, a.json, out)
    } else {
        infill(&mut inf, &a.template, &opts, a.trace, a.json, out)
    }
}

/// What `--strategy` is, before the list of strategies.
const STRATEGY: &str =
    "Unmasking strategy (default: top-prob, the best fills measured by `eval --spans`)";

/// `--strategy`'s parser (the library's, which takes aliases and `threshold:TAU`).
pub fn parse_strategy(s: &str) -> std::result::Result<Strategy, String> {
    s.parse()
}

/// `--strategy`'s help for `-h`: `lead`, then the strategies as written on the command line,
/// from the one list of them ([`Strategy::ALL`]).
pub fn strategy_help(lead: &str) -> String {
    format!("{lead}: {}", Strategy::names())
}

/// `--strategy`'s help for `--help`: `lead`, then a line for each strategy of
/// [`Strategy::ALL`], its usage and its help.
pub fn strategy_long_help(lead: &str) -> String {
    let width = Strategy::ALL
        .iter()
        .map(|s| s.usage.len())
        .max()
        .unwrap_or(0);
    let mut help = format!("{lead}:");
    for s in Strategy::ALL {
        help.push_str(&format!("\n  {:width$}  {}", s.usage, s.help));
    }
    help
}

/// The trace file, when asked for: every step of every template as JSON lines, written beside
/// the path given and moved into place when the run ends (`files::Staged`).
struct Trace {
    staged: files::Staged,
    file: std::io::BufWriter<std::fs::File>,
}

impl Trace {
    fn create(path: Option<PathBuf>) -> Result<Option<Trace>> {
        path.map(|path| {
            let (staged, file) = files::Staged::new(&path)?;
            Ok(Trace {
                staged,
                file: std::io::BufWriter::new(file),
            })
        })
        .transpose()
    }

    /// The path given, for messages.
    fn path(&self) -> &Path {
        self.staged.dest()
    }

    fn finish(trace: Option<Trace>) -> Result<()> {
        if let Some(t) = trace {
            let dest = t.path().display().to_string();
            let file = t
                .file
                .into_inner()
                .map_err(|e| Error::io(&dest, e.into_error()))?;
            if t.staged.path() != t.staged.dest() {
                // on the disk before the rename makes it the trace (not for a device)
                file.sync_all().map_err(|e| Error::io(&dest, e))?;
            }
            drop(file);
            t.staged.commit()?;
        }
        Ok(())
    }
}

/// How one template turned out, when it did.
enum Filled {
    /// To print, as text or JSON.
    Done(InfillResult),
    /// Drawn on the terminal already.
    Animated,
}

/// One line of a batch's `--json` output: `"line":N` first, then what became of the line.
#[derive(Serialize)]
struct BatchLine<'a> {
    line: usize,
    #[serde(flatten)]
    outcome: Outcome<'a>,
}

/// What became of a batch line.
#[derive(Serialize)]
#[serde(untagged)]
enum Outcome<'a> {
    /// A blank line: `"empty":true`.
    Empty { empty: bool },
    /// The result, as `infill --json` prints it.
    Filled(InfillReport<'a>),
    /// The line's error: `"error":"…"`.
    Failed { error: String },
}

/// The JSON of one result: the result, and the strategy and seed that made it.
fn report<'a>(result: &'a InfillResult, opts: &SamplerOptions) -> InfillReport<'a> {
    InfillReport {
        result,
        strategy: opts.strategy,
        seed: opts.seed,
        gflops: None,
    }
}

/// FLOPs the backend has run so far.
fn flops_run(inf: &Engine) -> Option<f64> {
    Some(inf.denoiser.flops())
}

/// Fills one template, writing its steps to the trace and, on a terminal, animating them.
fn fill_one(
    inf: &mut Engine,
    template: &str,
    opts: &SamplerOptions,
    trace: &mut Option<Trace>,
    animate: bool,
) -> std::result::Result<Filled, Fail> {
    let parsed = inf.template(template)?;
    // holes of unknown length are filled once per length, with no single canvas to animate,
    // unless the model grows them: then the animation starts from the growing canvas
    let canvas = match parsed.ranges().is_empty() {
        true => Some(inf.canvas_of(&parsed)?),
        false => None,
    };
    let shown = match (&canvas, inf.model.growth()) {
        (Some(c), _) => Some(c.clone()),
        (None, Some(_)) if animate => Some(inf.growing(&parsed, opts)?.canvas),
        (None, _) => None,
    };
    let tok = inf.tokenizer().clone();
    let mut anim = shown
        .filter(|_| animate)
        .map(|c| animate::Animation::new(c, &tok));
    let mut io_error = None;
    let mut on_event = |e: &TraceEvent| {
        if let Some(t) = trace.as_mut() {
            if let Err(err) = writeln!(t.file, "{}", e.to_json()) {
                io_error.get_or_insert(err);
            }
        }
        if let Some(a) = anim.as_mut() {
            a.event(e);
        }
    };
    let result = match &canvas {
        Some(c) => block_on(inf.run(c, opts, &mut on_event)),
        None => block_on(inf.infill(template, opts, &mut on_event)),
    };
    if let Some(err) = io_error {
        // the trace is not this template's fault: it ends the run, batch or not
        let path = trace.as_ref().expect("a trace file").path().display();
        return Err(Fail::Fatal(Error::io(path, err)));
    }
    let result = result?;
    Ok(match anim {
        Some(a) => {
            a.finish().map_err(out::write_error)?;
            Filled::Animated
        }
        None => Filled::Done(result),
    })
}

/// `unmask infill TEMPLATE`: one template, its result on stdout.
fn infill(
    inf: &mut Engine,
    template: &str,
    opts: &SamplerOptions,
    trace: Option<PathBuf>,
    json: bool,
    out: &mut Out,
) -> std::result::Result<(), Fail> {
    let mut trace = Trace::create(trace)?;
    let animate = !json && std::io::stdout().is_terminal();
    let before = flops_run(inf);
    match fill_one(inf, template, opts, &mut trace, animate)? {
        Filled::Done(r) if json => {
            let gflops = before.zip(flops_run(inf)).map(|(a, b)| (b - a) / 1e9);
            out.json(&InfillReport {
                gflops,
                ..report(&r, opts)
            })?
        }
        Filled::Done(r) => out.line(&r.text)?,
        Filled::Animated => {}
    }
    Ok(Trace::finish(trace)?)
}

/// `unmask infill -`: one template per line of stdin, one output line per input line, in
/// order. A blank line (empty or only whitespace) gives a blank line, or with `--json`
/// `{"line":N,"empty":true}`. A line that fails is reported on stderr as `error: line N: …`
/// and gives a blank line, or `{"line":N,"error":"…"}`; the batch goes on and the exit status
/// is 1. Each JSON result starts with its `"line":N`. In text output a line break inside a
/// result (one the model wrote into a fill) is printed as a space. Lines end at `\n` or
/// `\r\n`; a line that is not UTF-8 fails alone. What ends the batch at once: stdin unreadable, the trace file or
/// stdout unwritable.
fn batch(
    inf: &mut Engine,
    opts: &SamplerOptions,
    trace: Option<PathBuf>,
    json: bool,
    out: &mut Out,
) -> std::result::Result<(), Fail> {
    let mut lines: Vec<Vec<u8>> = Vec::new();
    let mut stdin = std::io::stdin().lock();
    loop {
        let mut line = Vec::new();
        let n = stdin
            .read_until(b'\n', &mut line)
            .map_err(|e| Error::io("<stdin>", e))?;
        if n == 0 {
            break;
        }
        if line.last() == Some(&b'\n') {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
        }
        lines.push(line);
    }
    let mut trace = Trace::create(trace)?;
    let animate = !json && std::io::stdout().is_terminal();
    // the live view already shows progress on a terminal's stdout
    let bar = if animate || lines.len() < 2 {
        Progress::hidden()
    } else {
        Progress::new("lines")
    };
    let mut failed = 0usize;
    for (i, bytes) in lines.iter().enumerate() {
        let n = i + 1;
        let outcome = match std::str::from_utf8(bytes) {
            Err(e) => Err(Fail::Error(Error::input(format!(
                "not UTF-8 (byte {} of the line)",
                e.valid_up_to() + 1
            )))),
            Ok(t) if t.trim().is_empty() => Ok(None),
            Ok(t) => {
                let before = flops_run(inf);
                fill_one(inf, t, opts, &mut trace, animate)
                    .map(|f| Some((f, before.zip(flops_run(inf)).map(|(a, b)| (b - a) / 1e9))))
            }
        };
        let line = |outcome| BatchLine { line: n, outcome };
        match outcome {
            Ok(None) if json => out.json(&line(Outcome::Empty { empty: true }))?,
            Ok(None) => out.line("")?,
            Ok(Some((Filled::Done(r), gflops))) if json => {
                out.json(&line(Outcome::Filled(InfillReport {
                    gflops,
                    ..report(&r, opts)
                })))?
            }
            // a line break the model wrote into a fill would split the line in two
            Ok(Some((Filled::Done(r), _))) => out.line(&r.text.replace(['\n', '\r'], " "))?,
            Ok(Some((Filled::Animated, _))) => {}
            Err(Fail::Error(e)) => {
                failed += 1;
                let msg = bare(&e);
                bar.say(&format!("error: line {n}: {msg}"));
                if json {
                    out.json(&line(Outcome::Failed { error: msg }))?;
                } else {
                    out.line("")?;
                }
            }
            Err(fatal) => return Err(fatal),
        }
        bar.set(n, lines.len());
    }
    bar.finish();
    Trace::finish(trace)?;
    if failed > 0 {
        return Err(Fail::Reported);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A batch line is `"line":N` and then, byte for byte, what the line's own JSON would be:
    /// the result as `infill --json` prints it, `"empty":true`, or `"error":"…"`.
    #[test]
    fn batch_lines_put_the_line_first_and_add_nothing_else() {
        let result = InfillResult {
            text: "a \"quoted\"\nfill".into(),
            ids: vec![1, 2],
            holes: 2,
            steps: 1,
            nfe: 1,
            ms: 0.5,
            lengths: Vec::new(),
            hole_lengths: Vec::new(),
        };
        let report = InfillReport {
            result: &result,
            strategy: Strategy::Threshold(0.9),
            seed: 7,
            gflops: None,
        };
        let alone = serde_json::to_string(&report).unwrap();
        let json = |line, outcome| serde_json::to_string(&BatchLine { line, outcome }).unwrap();
        assert_eq!(
            json(3, Outcome::Filled(report)),
            format!("{{\"line\":3,{}", &alone[1..])
        );
        assert_eq!(
            alone,
            r#"{"text":"a \"quoted\"\nfill","holes":2,"steps":1,"nfe":1,"ms":0.5,"strategy":"threshold:0.9","seed":7}"#
        );
        assert_eq!(
            json(2, Outcome::Empty { empty: true }),
            r#"{"line":2,"empty":true}"#
        );
        assert_eq!(
            json(
                4,
                Outcome::Failed {
                    error: "template column 5: `[MASK*0]` \"x\"\n".into()
                }
            ),
            r#"{"line":4,"error":"template column 5: `[MASK*0]` \"x\"\n"}"#
        );
    }
}
