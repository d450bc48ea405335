//! `unmask eval`: model quality on a text file. Masked-token accuracy and the MDLM perplexity
//! bound; with `--spans`, the fills of spans cut out of sentences, for one setting or several
//! (`--compare`, printed as a Markdown table).

use std::path::{Path, PathBuf};

use unmask::blocking::block_on;
use unmask::diffusion::eval::{evaluate_with, EvalOptions};
use unmask::diffusion::spans::{self, HoleStart, SpanLength, SpanOptions};
use unmask::diffusion::{InfillOptions, Strategy};
use unmask::engine::Engine;
use unmask::{Error, Result};

use crate::device::{self, Device};
use crate::infill::{parse_strategy, strategy_help, strategy_long_help};
use crate::out::{bare, Fail, Out};
use crate::progress::Progress;

// The doc comment of `Command::Eval` (main.rs) is this command's help.
#[derive(clap::Args)]
pub struct Args {
    /// Model folder in Hugging Face layout (default: the embedded default model).
    #[arg(long)]
    model: Option<PathBuf>,
    /// UTF-8 text; paragraphs are separated by blank lines.
    #[arg(long)]
    text: PathBuf,
    /// Fraction of each chunk's tokens masked for the accuracy figure.
    #[arg(long, default_value_t = 0.15)]
    mask_rate: f64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Score fills instead: cut a span of words out of sentences and fill it (one JSON
    /// line: exact match, token and word accuracy, NFE and ms per hole token).
    #[arg(long)]
    spans: bool,
    /// With --spans: words per span.
    #[arg(long, default_value_t = 2, requires = "spans")]
    span_words: usize,
    /// With --spans: spans of whole words making exactly this many tokens, instead.
    #[arg(long, requires = "spans", conflicts_with = "span_words")]
    span_tokens: Option<usize>,
    /// With --spans: write each hole as `[MASK*A-B]`, its length unknown to the sampler,
    /// and report how often the chosen length is the true one (only spans of A to B tokens
    /// are cut; A-B defaults to 1-8, as `[MASK*?]`).
    #[arg(long, value_name = "A-B", num_args = 0..=1, default_missing_value = "1-8", value_parser = parse_range, requires = "spans")]
    unknown_length: Option<(usize, usize)>,
    /// With --unknown-length, on a model that grows holes (DreamOn): where each hole starts,
    /// N tokens or xF times the span's true length (x0.5, x2); default 4, DreamOn's.
    #[arg(long, value_name = "N|xF", requires = "unknown_length")]
    hole_start: Option<HoleStart>,
    /// With --spans: spans to fill (fewer if the text has fewer eligible sentences).
    #[arg(long, default_value_t = 200, requires = "spans")]
    count: usize,
    #[arg(
        long,
        value_parser = parse_strategy,
        requires = "spans",
        help = strategy_help(STRATEGY),
        long_help = strategy_long_help(STRATEGY)
    )]
    strategy: Option<Strategy>,
    /// With --spans: sampling temperature (default: the strategy's, as `infill`).
    #[arg(long, requires = "spans")]
    temperature: Option<f64>,
    /// With --spans: denoising steps (default: as `infill`).
    #[arg(long, requires = "spans")]
    steps: Option<usize>,
    /// With --spans: several settings over the same spans, printed as a table (JSON lines
    /// with --json): comma-separated STRATEGY[@TEMPERATURE][/STEPS], e.g.
    /// `ancestral,top-prob,ancestral@0.7,threshold:0.9`.
    #[arg(long, requires = "spans", conflicts_with_all = ["strategy", "temperature", "steps"])]
    compare: Option<String>,
    /// With --compare: JSON lines instead of the table.
    #[arg(long, requires = "compare")]
    json: bool,
    #[command(flatten)]
    device: Device,
}

pub fn run(a: Args, out: &mut Out) -> std::result::Result<(), Fail> {
    let mut inf = device::attach(device::load_model(a.model.as_deref(), a.device)?, a.device)?;
    let text = &a.text;
    let body = std::fs::read_to_string(text).map_err(|e| Error::io(text.display(), e))?;
    if a.spans {
        let settings = match &a.compare {
            Some(list) => list
                .split(',')
                .enumerate()
                .map(|(i, s)| {
                    let entry = format!("--compare entry {} `{}`", i + 1, s.trim());
                    let setting = parse_setting(s.trim())
                        .map_err(|e| Error::input(format!("{entry}: {}", bare(&e))))?;
                    Ok((Some(entry), setting))
                })
                .collect::<Result<Vec<_>>>()?,
            None => vec![(None, (a.strategy, a.temperature, a.steps))],
        };
        let max_tokens = inf.model.spec.max_len.saturating_sub(2);
        return eval_spans(
            &mut inf,
            text,
            &body,
            &SpanOptions {
                length: match a.span_tokens {
                    Some(n) => SpanLength::Tokens(n),
                    None => SpanLength::Words(a.span_words),
                },
                count: a.count,
                seed: a.seed,
                max_tokens,
                lengths: a.unknown_length,
                start: a.hole_start,
            },
            &settings,
            a.compare.is_some() && !a.json,
            out,
        );
    }
    let bar = Progress::new("tokens");
    let report = block_on(evaluate_with(
        &mut inf,
        &body,
        &EvalOptions {
            mask_rate: a.mask_rate,
            seed: a.seed,
        },
        &mut |done, total| bar.set(done, total),
    ))
    .map_err(|e| match e {
        // what is wrong with the text, named with its file
        Error::Input(m) => Error::file(text.display(), m),
        e => e,
    })?;
    bar.finish();
    out.json(&report)
}

/// What `--strategy` is, before the list of strategies.
const STRATEGY: &str = "With --spans: the unmasking strategy (default: the model's)";

/// One setting of `eval --compare`: `STRATEGY[@TEMPERATURE][/STEPS]`.
type Setting = (Option<Strategy>, Option<f64>, Option<usize>);

fn parse_setting(s: &str) -> Result<Setting> {
    if s.is_empty() {
        return Err(Error::input(
            "is empty; give STRATEGY[@TEMPERATURE][/STEPS]",
        ));
    }
    let bad = Error::input;
    let (rest, steps) = match s.split_once('/') {
        Some((r, n)) => (
            r,
            Some(
                n.parse::<usize>()
                    .map_err(|_| bad(format!("steps `{n}` is not a count")))?,
            ),
        ),
        None => (s, None),
    };
    let (name, temp) = match rest.split_once('@') {
        Some((n, t)) => (
            n,
            Some(
                t.parse::<f64>()
                    .map_err(|_| bad(format!("temperature `{t}` is not a number")))?,
            ),
        ),
        None => (rest, None),
    };
    let strategy = name.parse::<Strategy>().map_err(bad)?;
    Ok((Some(strategy), temp, steps))
}

/// `A-B` for `--unknown-length`: the lengths a hole may take, as `[MASK*A-B]` writes them
/// (`?` is 1-8, as in a template), within the template's bounds: 1 <= A <= B <= the most holes
/// a template may ask for, and at most as many lengths as a template's holes may try.
fn parse_range(s: &str) -> std::result::Result<(usize, usize), String> {
    use unmask::text::template::{MAX_HOLES, MAX_LENGTH_CANDIDATES, UNKNOWN_LENGTHS};
    let s = s.trim();
    if s == "?" {
        return Ok(UNKNOWN_LENGTHS);
    }
    let not_a_range = || format!("`{s}` is not a range of lengths like 1-8");
    let (a, b) = s.split_once('-').ok_or_else(not_a_range)?;
    let length = |n: &str| n.trim().parse::<usize>().map_err(|_| not_a_range());
    let (min, max) = (length(a)?, length(b)?);
    if min == 0 || min > max || max > MAX_HOLES {
        return Err(format!(
            "`{s}` must give lengths from A to B with 1 <= A <= B <= {MAX_HOLES}"
        ));
    }
    let lengths = max - min + 1;
    if lengths > MAX_LENGTH_CANDIDATES {
        return Err(format!(
            "`{s}` is {lengths} lengths, one fill each; at most {MAX_LENGTH_CANDIDATES}: narrow it, like 1-8"
        ));
    }
    Ok((min, max))
}

/// `eval --spans`: each setting over the same spans, as JSON lines or one table.
fn eval_spans(
    inf: &mut Engine,
    path: &Path,
    body: &str,
    opts: &SpanOptions,
    settings: &[(Option<String>, Setting)],
    table: bool,
    out: &mut Out,
) -> std::result::Result<(), Fail> {
    let named = |e: Error| match e {
        Error::Input(m) => Error::file(path.display(), m),
        e => e,
    };
    let cases = spans::pick(body, inf.tokenizer(), opts).map_err(named)?;
    // a value out of range, or one the spans' holes do not suit, is named with its entry
    let entry_error = |entry: &Option<String>, e: Error| match (entry, e) {
        (Some(entry), e @ (Error::Input(_) | Error::Template(_))) => {
            Error::input(format!("{entry}: {}", bare(&e)))
        }
        (_, e) => e,
    };
    let mut samplers = Vec::new();
    for (entry, (strategy, temperature, steps)) in settings {
        let sampler = InfillOptions {
            strategy: *strategy,
            temperature: *temperature,
            steps: *steps,
            seed: opts.seed,
            ..InfillOptions::default()
        }
        .resolve(&inf.model)
        .map_err(|e| entry_error(entry, e))?;
        samplers.push((entry, sampler));
    }
    let mut rows = Vec::new();
    for (entry, sampler) in samplers {
        // with unknown lengths each span is a fill per length: the bar counts those
        let bar = Progress::new(match opts.lengths {
            Some(_) => "fills",
            None => "spans",
        });
        let report = block_on(spans::evaluate(
            inf,
            &cases,
            &sampler,
            opts.length,
            opts.start,
            &mut |done, total| bar.set(done, total),
        ))
        .map_err(|e| entry_error(entry, e))?;
        bar.finish();
        if table {
            rows.push(report);
        } else {
            out.json(&report)?;
        }
    }
    if table {
        let length = match opts.length {
            SpanLength::Words(n) => format!("{n} words"),
            SpanLength::Tokens(n) => format!("{n} tokens"),
        };
        out.line(&format!(
            "{} spans of {length} from {} (seed {})",
            cases.len(),
            path.display(),
            opts.seed
        ))?;
        let unknown = opts.lengths.is_some();
        out.line(&format!(
            "| strategy | temperature | steps | exact | token acc. | word acc. | NFE / hole | ms / hole |{}",
            if unknown { " true length wins (chance; most common length) |" } else { "" }
        ))?;
        out.line(&format!(
            "|---|---|---|---|---|---|---|---|{}",
            if unknown { "---|" } else { "" }
        ))?;
        for r in &rows {
            let wins = match (r.length_right, r.length_chance, r.length_most_common) {
                (Some(w), Some(c), Some(m)) => {
                    format!(
                        " {:.1}% ({:.1}%; {:.1}%) |",
                        100.0 * w,
                        100.0 * c,
                        100.0 * m
                    )
                }
                _ => String::new(),
            };
            out.line(&format!(
                "| {} | {} | {} | {:.1}% | {:.1}% | {:.1}% | {:.2} | {:.1} |{wins}",
                r.strategy,
                r.temperature,
                r.steps.map_or("default".into(), |n| n.to_string()),
                100.0 * r.exact,
                100.0 * r.token_accuracy,
                100.0 * r.word_accuracy,
                r.nfe_per_hole,
                r.ms_per_hole
            ))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_read_directly_with_clear_errors() {
        assert_eq!(parse_range("1-8"), Ok((1, 8)));
        assert_eq!(parse_range(" 2 - 5 "), Ok((2, 5)));
        assert_eq!(parse_range("3-3"), Ok((3, 3)));
        assert_eq!(parse_range("?"), Ok((1, 8)));
        for bad in ["", "5", "a-b", "1-", "-3", "1-2-3", "1..8", "-1-4"] {
            let e = parse_range(bad).unwrap_err();
            assert!(
                e.contains("is not a range of lengths like 1-8"),
                "{bad}: {e}"
            );
            assert!(
                !e.contains("MASK"),
                "{bad}: no template in the message: {e}"
            );
        }
        for bad in ["0-3", "5-2", "1-70000"] {
            let e = parse_range(bad).unwrap_err();
            assert!(e.contains("1 <= A <= B <= 65536"), "{bad}: {e}");
        }
        assert_eq!(parse_range("1-64"), Ok((1, 64)));
        let e = parse_range("1-65").unwrap_err();
        assert!(e.contains("65 lengths") && e.contains("at most 64"), "{e}");
    }
}
