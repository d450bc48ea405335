//! `unmask eval --spans`: fill quality on the fills people ask for. Sentences of a text file
//! get a span of words cut out and written as a hole of the span's length; the sampler fills
//! it, and the fill is scored against the words that were there.
//!
//! The cases are a pure function of (text, tokenizer, options), so every setting compared on
//! them (`--compare`) and any other implementation fills exactly the same holes:
//! - paragraphs are split at blank lines, sentences after `.`, `!` or `?` followed by
//!   whitespace, and whitespace runs read as one space;
//! - a span is a run of plain words (letters, an apostrophe or hyphen inside allowed) that is
//!   neither a sentence's first word nor its last (so the hole has text on both sides): `words`
//!   of them, or (`--span-tokens`) as many as make exactly that many tokens with the space
//!   before them, the runs ordered by first word, then length;
//! - a sentence is eligible with 6 to 40 words, at most `max_tokens` tokens, and at least one
//!   such run (with unknown lengths `A-B`, also at most `max_tokens` with its span written as
//!   B holes);
//! - sentence j (in file order) is ranked by `hash3(seed, j, 0)`; the `count` smallest eligible
//!   ones are taken; its span is the `hash3(seed, j, 1) mod runs`-th run.
//!
//! Scores per case: exact match of the fill's words, token accuracy (the fill's tokens against
//! the span's own tokens, position by position), word accuracy (words position by position,
//! over the span's words), and the sampler's NFE and time per hole token.
//!
//! With `lengths` (`--unknown-length A-B`) the hole is written `[MASK*A-B]` instead, so the
//! sampler does not know the span's length (`diffusion::lengths`); only spans whose token count
//! lies in the range are eligible. The report adds how often the chosen length is the true
//! one, against two baselines: chance (one over the lengths tried) and always guessing the
//! most common true length of these spans (a prior the sampler is not given); and how often
//! ranking by the total bound would have chosen right. NFE counts every candidate's fill and
//! score.

use serde::Serialize;

use super::lengths::LengthCandidate;
use super::seeded::hash3;
use super::{InfillResult, Infiller, SamplerOptions};
use crate::backend::Denoiser;
use crate::error::{Error, Result};
use crate::text::template::escape;
use crate::text::Tokenizer;

/// How long the spans are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpanLength {
    Words(usize),
    /// Whole words making exactly this many tokens.
    Tokens(usize),
}

#[derive(Clone, Debug)]
pub struct SpanOptions {
    pub length: SpanLength,
    /// Spans to evaluate (fewer when the text has fewer eligible sentences).
    pub count: usize,
    pub seed: u64,
    /// Longest sentence, in tokens, a case may come from (the model's context, less its frame).
    pub max_tokens: usize,
    /// Write the hole as `[MASK*min-max]`, its length unknown to the sampler.
    pub lengths: Option<(usize, usize)>,
    /// With `lengths`, on a model that grows holes: where each hole starts.
    pub start: Option<HoleStart>,
}

/// Where a hole of unknown length starts on a model that grows holes (`diffusion::expand`):
/// a fixed count, or a multiple of each span's true length (at least 1 token).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum HoleStart {
    Tokens(usize),
    Times(f64),
}

impl HoleStart {
    pub fn tokens(self, truth: usize) -> usize {
        match self {
            HoleStart::Tokens(n) => n,
            HoleStart::Times(f) => ((truth as f64 * f).round() as usize).max(1),
        }
    }
}

impl std::fmt::Display for HoleStart {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            HoleStart::Tokens(n) => write!(f, "{n}"),
            HoleStart::Times(x) => write!(f, "x{x}"),
        }
    }
}

impl std::str::FromStr for HoleStart {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<HoleStart, String> {
        let bad = || {
            format!(
                "`{s}` is not a start length: N tokens, or xF times each span's length (x0.5, x2)"
            )
        };
        match s.trim().strip_prefix('x') {
            Some(f) => match f.parse::<f64>() {
                Ok(f) if f > 0.0 && f <= 64.0 => Ok(HoleStart::Times(f)),
                _ => Err(bad()),
            },
            None => match s.trim().parse::<usize>() {
                Ok(n) if (1..=super::expand::OPEN_MAX).contains(&n) => Ok(HoleStart::Tokens(n)),
                _ => Err(bad()),
            },
        }
    }
}

/// One hole to fill: the template and what was cut out of it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SpanCase {
    /// The sentence with the span written as `[MASK*n]` (the rest escaped).
    pub template: String,
    /// The words that were there.
    pub truth: String,
    /// Their tokens, as the hole (which carries the space before it) holds them.
    pub truth_ids: Vec<u32>,
    /// Byte length of the text before the hole, and after it, in the filled sentence.
    left: usize,
    right: usize,
}

const MIN_WORDS: usize = 6;
const MAX_WORDS: usize = 40;

fn is_word(w: &str) -> bool {
    let inner = |c: char| c == '\'' || c == '-';
    w.chars().all(|c| c.is_alphabetic() || inner(c))
        && w.starts_with(char::is_alphabetic)
        && w.ends_with(char::is_alphabetic)
}

/// Sentences of `text` in order, whitespace runs read as one space.
pub fn sentences(text: &str) -> Vec<String> {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut out = Vec::new();
    for para in text.split("\n\n") {
        let words: Vec<&str> = para.split_whitespace().collect();
        let mut cur: Vec<&str> = Vec::new();
        for w in words {
            cur.push(w);
            let end = w.trim_end_matches(['"', '\'', ')', '”', '’']);
            if end.ends_with(['.', '!', '?']) {
                out.push(cur.join(" "));
                cur.clear();
            }
        }
        if !cur.is_empty() {
            out.push(cur.join(" "));
        }
    }
    out
}

/// The seeded cases of `text` (see the module documentation); an error when there are none.
pub fn pick(text: &str, tok: &Tokenizer, opts: &SpanOptions) -> Result<Vec<SpanCase>> {
    let (SpanLength::Words(n) | SpanLength::Tokens(n)) = opts.length;
    if n == 0 {
        return Err(Error::input("spans need a length of at least 1"));
    }
    if opts.count == 0 {
        return Err(Error::input("the span count must be at least 1"));
    }
    let mut ranked: Vec<(u64, usize, Vec<String>)> = Vec::new();
    for (j, s) in sentences(text).into_iter().enumerate() {
        let words: Vec<String> = s.split(' ').map(str::to_string).collect();
        if (MIN_WORDS..=MAX_WORDS).contains(&words.len()) {
            ranked.push((hash3(opts.seed, j as u64, 0), j, words));
        }
    }
    ranked.sort_by_key(|r| r.0);
    // runs `(first word, words)`, found only for the sentences reached in rank order
    let runs = |words: &[String]| -> Result<Vec<(usize, usize)>> {
        let plain = |a: usize, l: usize| words[a..a + l].iter().all(|w| is_word(w));
        let inner = words.len() - 1; // runs end before the last word
        let mut out = Vec::new();
        match opts.length {
            SpanLength::Words(l) => {
                out.extend(
                    (1..inner.saturating_sub(l).saturating_add(1))
                        .filter(|&a| plain(a, l))
                        .map(|a| (a, l)),
                );
            }
            SpanLength::Tokens(t) => {
                for a in 1..inner {
                    for l in 1..=t.min(inner - a) {
                        if !plain(a, l) {
                            break;
                        }
                        let ids = tok.encode(&format!(" {}", words[a..a + l].join(" ")), false)?;
                        if ids.len() == t {
                            out.push((a, l));
                        }
                        if ids.len() >= t {
                            break;
                        }
                    }
                }
            }
        }
        Ok(out)
    };
    let mut cases = Vec::new();
    for (_, j, words) in ranked {
        if cases.len() == opts.count {
            break;
        }
        let runs = runs(&words)?;
        if runs.is_empty() {
            continue;
        }
        let (a, l) = runs[(hash3(opts.seed, j as u64, 1) % runs.len() as u64) as usize];
        let sentence_tokens = tok.encode(&words.join(" "), false)?.len();
        if sentence_tokens > opts.max_tokens {
            continue;
        }
        let (left, span, right) = (
            words[..a].join(" ") + " ",
            words[a..a + l].join(" "),
            String::from(" ") + &words[a + l..].join(" "),
        );
        let truth_ids = tok.encode(&format!(" {span}"), false)?;
        let hole = match opts.lengths {
            Some((a, b)) if (a..=b).contains(&truth_ids.len()) => {
                // laid out at its longest length the sentence must fit as well
                let known =
                    tok.encode(left.trim_end(), false)?.len() + tok.encode(&right, false)?.len();
                if known + b > opts.max_tokens {
                    continue;
                }
                format!("{a}-{b}")
            }
            Some(_) => continue,
            None => truth_ids.len().to_string(),
        };
        let template = format!("{}[MASK*{hole}]{}", escape(&left), escape(&right));
        cases.push(SpanCase {
            template,
            truth: span,
            truth_ids,
            left: left.len(),
            right: right.len(),
        });
    }
    if cases.is_empty() {
        return Err(Error::input(format!(
            "no sentence of {MIN_WORDS} to {MAX_WORDS} words (and at most {} tokens) has a run of {} inside it to cut out{}",
            opts.max_tokens,
            match opts.length {
                SpanLength::Words(n) => format!("{n} plain words"),
                SpanLength::Tokens(n) => format!("plain words making {n} tokens"),
            },
            match opts.lengths {
                Some((a, b)) => format!(" whose token count is {a} to {b}"),
                None => String::new(),
            }
        )));
    }
    Ok(cases)
}

/// The figures of one setting over the cases (one JSON line of `unmask eval --spans`).
#[derive(Clone, Debug, Serialize)]
pub struct SpanReport {
    pub strategy: String,
    pub temperature: f64,
    /// `None`: the strategy's default.
    pub steps: Option<usize>,
    /// Words per span, or (`span_tokens`) tokens per span.
    pub span_words: Option<usize>,
    pub span_tokens: Option<usize>,
    pub spans: usize,
    /// Fills whose words are exactly the span's.
    pub exact: f64,
    pub token_accuracy: f64,
    pub word_accuracy: f64,
    pub nfe_per_hole: f64,
    pub ms_per_hole: f64,
    /// Hole tokens over all spans.
    pub hole_tokens: usize,
    pub seed: u64,
    /// With unknown lengths: the range tried, as `A-B`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub length_range: Option<String>,
    /// With unknown lengths: how often the chosen length is the span's true token count.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub length_right: Option<f64>,
    /// The same, had the fills been ranked by their total bound instead of per token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub length_right_by_total: Option<f64>,
    /// Chance: the mean over spans of one over the lengths tried.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub length_chance: Option<f64>,
    /// How often always guessing the spans' most common true length would be right.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub length_most_common: Option<f64>,
    /// On a model that grows holes: where each hole started (`4`, `x0.5` …), and the mean
    /// final length over the mean true length.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hole_start: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub length_ratio: Option<f64>,
}

/// Passes a fill's progress between its candidate lengths on to `evaluate`'s callback.
struct Tally<'p> {
    progress: &'p mut dyn FnMut(usize, usize),
    /// Fills of the cases before this one, and of all of them.
    before: usize,
    total: usize,
}

impl super::sampler::Host for Tally<'_> {
    fn event(&mut self, _event: &super::TraceEvent) {}

    fn tried(&mut self, done: usize, _total: usize) {
        (self.progress)(self.before + done, self.total);
    }
}

/// Fills every case with `opts` (its seed mixed with each case's index, so cases differ but
/// reruns agree) and scores the fills. `progress(done, total)` counts fills: one per case, or
/// with unknown lengths one per length tried, and it moves after each, so a long run shows.
pub async fn evaluate<D: Denoiser>(
    inf: &mut Infiller<D>,
    cases: &[SpanCase],
    opts: &SamplerOptions,
    length: SpanLength,
    start: Option<HoleStart>,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<SpanReport> {
    let growing = inf.model.growth().is_some();
    let (mut grown, mut truth_len) = (0usize, 0usize);
    let (mut exact, mut tok_ok, mut word_ok, mut tokens, mut nfe, mut ms) =
        (0usize, 0usize, 0usize, 0usize, 0usize, 0.0f64);
    let mut truth_words = 0usize;
    let (mut right, mut right_by_total, mut chance) = (0usize, 0usize, 0.0f64);
    let mut true_lengths = std::collections::HashMap::new();
    let mut range = None;
    let mut done = 0;
    let mut total = cases.len();
    for (i, case) in cases.iter().enumerate() {
        let mut o = opts.clone();
        o.seed = hash3(opts.seed, i as u64, 2);
        let template = inf.template(&case.template)?;
        let unknown = !template.ranges().is_empty();
        if let Some(&(a, b)) = template.ranges().first() {
            range = Some(format!("{a}-{b}"));
        }
        let canvas = inf.canvas_of(&template.with_lengths(&[case.truth_ids.len()]))?;
        if canvas.holes.len() != case.truth_ids.len() {
            // the model's own mask string in the text is a hole too (it has no escape)
            return Err(Error::input(format!(
                "the sentence of span {} holds the model's mask text, so it cannot be scored: {}",
                i + 1,
                case.template
            )));
        }
        let (r, canvas) = if unknown && growing {
            // one fill whose hole finds its own length
            let (a, b) = template.ranges()[0];
            o.hole_start = start.map(|s| s.tokens(case.truth_ids.len()));
            let r = inf.infill_with(&case.template, &o, &mut |_: &_| {}).await?;
            let chosen = r.hole_lengths[0];
            right += usize::from(chosen == case.truth_ids.len());
            chance += 1.0 / (b - a + 1) as f64;
            *true_lengths.entry(case.truth_ids.len()).or_insert(0usize) += 1;
            grown += chosen;
            truth_len += case.truth_ids.len();
            let canvas = inf.canvas_of(&template.with_lengths(&[chosen]))?;
            (r, canvas)
        } else if unknown {
            let (a, b) = template.ranges()[0];
            total = cases.len() * (b - a + 1);
            let mut tally = Tally {
                progress: &mut *progress,
                before: done,
                total,
            };
            let r = inf.infill_with(&case.template, &o, &mut tally).await?;
            let pick = |key: &dyn Fn(&LengthCandidate) -> f64| {
                r.lengths
                    .iter()
                    .fold(None, |b: Option<&LengthCandidate>, c| match b {
                        Some(b) if key(b) <= key(c) => Some(b),
                        _ => Some(c),
                    })
                    .map(|c| c.lengths[0])
            };
            let truth = Some(case.truth_ids.len());
            // the engine's own choice, and what the total bound would have chosen
            let chosen = r.lengths.iter().find(|c| c.chosen).map(|c| c.lengths[0]);
            right += usize::from(chosen == truth);
            right_by_total += usize::from(pick(&|c| c.nats) == truth);
            chance += 1.0 / r.lengths.len() as f64;
            *true_lengths.entry(case.truth_ids.len()).or_insert(0usize) += 1;
            let chosen = chosen.expect("a fill of unknown length marks its choice");
            let canvas = inf.canvas_of(&template.with_lengths(&[chosen]))?;
            (r, canvas)
        } else {
            (inf.run(&canvas, &o, &mut |_| {}).await?, canvas)
        };
        let s = score(case, &canvas.holes, &r);
        exact += usize::from(s.exact);
        tok_ok += s.tokens_right;
        word_ok += s.words_right;
        truth_words += s.words;
        tokens += case.truth_ids.len();
        nfe += r.nfe;
        ms += r.ms;
        done = total / cases.len() * (i + 1);
        progress(done, total);
    }
    let n = cases.len().max(1) as f64;
    let per = tokens.max(1) as f64;
    Ok(SpanReport {
        strategy: opts.strategy.to_string(),
        temperature: opts.choice.temperature,
        steps: opts.steps,
        span_words: match length {
            SpanLength::Words(n) => Some(n),
            SpanLength::Tokens(_) => None,
        },
        span_tokens: match length {
            SpanLength::Tokens(n) => Some(n),
            SpanLength::Words(_) => None,
        },
        spans: cases.len(),
        exact: exact as f64 / n,
        token_accuracy: tok_ok as f64 / per,
        word_accuracy: word_ok as f64 / truth_words.max(1) as f64,
        nfe_per_hole: nfe as f64 / per,
        ms_per_hole: ms / per,
        hole_tokens: tokens,
        seed: opts.seed,
        length_right: range.as_ref().map(|_| right as f64 / n),
        length_right_by_total: range
            .as_ref()
            .filter(|_| !growing)
            .map(|_| right_by_total as f64 / n),
        length_chance: range.as_ref().map(|_| chance / n),
        length_most_common: range
            .as_ref()
            .map(|_| true_lengths.values().copied().max().unwrap_or(0) as f64 / n),
        hole_start: range
            .as_ref()
            .filter(|_| growing)
            .map(|_| start.map_or(super::expand::START.to_string(), |s| s.to_string())),
        length_ratio: range
            .as_ref()
            .filter(|_| growing)
            .map(|_| grown as f64 / truth_len.max(1) as f64),
        length_range: range,
    })
}

/// How one fill of a case scored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaseScore {
    /// The fill's words are the span's.
    pub exact: bool,
    /// Hole tokens equal to the span's token at their position.
    pub tokens_right: usize,
    /// The span's words matched by the fill's word at the same position.
    pub words_right: usize,
    /// The span's words.
    pub words: usize,
}

/// Scores `r`, a fill of `case` whose hole tokens sit at canvas positions `holes`.
pub fn score(case: &SpanCase, holes: &[usize], r: &InfillResult) -> CaseScore {
    let fill = r
        .text
        .get(case.left..r.text.len().saturating_sub(case.right))
        .unwrap_or("")
        .trim();
    let got: Vec<&str> = fill.split_whitespace().collect();
    let want: Vec<&str> = case.truth.split(' ').collect();
    CaseScore {
        exact: got == want,
        tokens_right: holes
            .iter()
            .zip(&case.truth_ids)
            .filter(|(&p, &t)| r.ids.get(p) == Some(&t))
            .count(),
        words_right: want.iter().zip(&got).filter(|(a, b)| a == b).count(),
        words: want.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_split_at_their_ends_and_paragraphs() {
        let s = sentences("One two.  Three\nfour!\n\n\"Five?\" six");
        assert_eq!(s, ["One two.", "Three four!", "\"Five?\"", "six"]);
    }

    #[test]
    fn words_are_letters_with_inner_apostrophes() {
        assert!(is_word("don't"));
        assert!(is_word("well-known"));
        assert!(!is_word("said,"));
        assert!(!is_word("'tis"));
        assert!(!is_word("42"));
    }
}
