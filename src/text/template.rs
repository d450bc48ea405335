//! Hole templates: `[MASK]` is one hole, `[MASK*N]` is N holes, `[MASK*?]` and `[MASK*A-B]`
//! are holes of unknown length (filled once per length, see `diffusion::lengths`),
//! `[[some words]]` re-masks the tokens of those words so they are rewritten, `\[` `\]` `\\`
//! are literal characters, and the model's own mask string (`<mask>`, `<|mdm_mask|>` …) is also
//! one hole. Any other `[` is text.

use crate::error::{Error, Result};

/// Upper bound on the holes of one template (one `[MASK*N]` or all of them together), far
/// above any context; the canvas check against the model's context gives the real limit.
pub const MAX_HOLES: usize = 1 << 16;

/// The longest template read at all, in bytes (1 MiB), whatever the model: checked before the
/// template is parsed or tokenised, so a huge file is refused at once. The canvas applies the
/// tighter, per-model bound [`crate::text::canvas::BYTES_PER_TOKEN`] × the context.
pub const MAX_TEMPLATE_BYTES: usize = 1 << 20;

/// The lengths `[MASK*?]` stands for: 1 to 8 tokens (one to about four words).
pub const UNKNOWN_LENGTHS: (usize, usize) = (1, 8);

/// The most fills a template's unknown-length holes may ask for (the product of their ranges):
/// each is a whole fill plus its score, so this bounds the work of one request.
pub const MAX_LENGTH_CANDIDATES: usize = 64;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    /// Known text, kept byte for byte.
    Text(String),
    /// This many masked tokens.
    Holes(usize),
    /// Words whose tokens are masked and regenerated (same token count).
    Rewrite(String),
    /// A hole of unknown length: between `min` and `max` masked tokens, both included; `col`
    /// is the template column where the user wrote it, `written` how (`[MASK*?]`), for
    /// messages.
    Range {
        min: usize,
        max: usize,
        col: usize,
        written: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    pub pieces: Vec<Piece>,
}

fn err(col: usize, msg: impl std::fmt::Display) -> Error {
    Error::template(format!("template column {col}: {msg}"))
}

impl Template {
    /// Parses `src`; `model_mask` is the model's own mask string, if it has one.
    pub fn parse(src: &str, model_mask: Option<&str>) -> Result<Template> {
        if src.len() > MAX_TEMPLATE_BYTES {
            return Err(Error::template(format!(
                "the template is {} bytes; the most unmask reads is {MAX_TEMPLATE_BYTES} bytes (1 MiB)",
                src.len()
            )));
        }
        if src.trim().is_empty() {
            return Err(Error::template("template is empty"));
        }
        let mut total = 0usize;
        let mut pieces: Vec<Piece> = Vec::new();
        let mut text = String::new();
        let flush = |text: &mut String, pieces: &mut Vec<Piece>| {
            if !text.is_empty() {
                pieces.push(Piece::Text(std::mem::take(text)));
            }
        };
        let chars: Vec<(usize, char)> = src.char_indices().collect();
        let mut i = 0;
        while i < chars.len() {
            let (byte, c) = chars[i];
            let col = i + 1;
            let rest = &src[byte..];
            if c == '\\' {
                match chars.get(i + 1).map(|p| p.1) {
                    Some(e @ ('[' | ']' | '\\')) => {
                        text.push(e);
                        i += 2;
                    }
                    _ => {
                        text.push('\\');
                        i += 1;
                    }
                }
                continue;
            }
            if let Some(inner) = rest.strip_prefix("[[") {
                let Some(end) = inner.find("]]") else {
                    return Err(err(col, "`[[` is never closed by `]]`"));
                };
                let words = &inner[..end];
                if words.trim().is_empty() {
                    return Err(err(col, "`[[ ]]` holds no words to rewrite"));
                }
                if words.contains("[[") {
                    return Err(err(col, "`[[` cannot be nested"));
                }
                flush(&mut text, &mut pieces);
                pieces.push(Piece::Rewrite(words.to_string()));
                i += 2 + words.chars().count() + 2;
                continue;
            }
            if rest.starts_with("[MASK*") {
                let Some(end) = rest.find(']') else {
                    return Err(err(col, "`[MASK*` is never closed by `]`"));
                };
                let count = &rest[6..end];
                let digits = count.trim();
                if digits == "?" || digits.contains('-') {
                    let (min, max) = range(digits).map_err(|m| err(col, m))?;
                    total = total.saturating_add(max);
                    if total > MAX_HOLES {
                        return Err(err(
                            col,
                            format!("the template asks for up to {total} holes so far; at most {MAX_HOLES} in all"),
                        ));
                    }
                    flush(&mut text, &mut pieces);
                    pieces.push(Piece::Range {
                        min,
                        max,
                        col,
                        written: rest[..=end].to_string(),
                    });
                    i += rest[..=end].chars().count();
                    continue;
                }
                let n: usize = match digits.parse() {
                    Ok(n) => n,
                    // all digits but too many for a usize: the range error below
                    Err(_) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
                        usize::MAX
                    }
                    Err(_) => {
                        return Err(err(
                            col,
                            format!(
                                "`[MASK*{count}]` needs a whole number of holes, like `[MASK*3]`"
                            ),
                        ))
                    }
                };
                if n == 0 || n > MAX_HOLES {
                    return Err(err(
                        col,
                        format!("`[MASK*{digits}]` must ask for 1 to {MAX_HOLES} holes"),
                    ));
                }
                total += n;
                if total > MAX_HOLES {
                    return Err(err(
                        col,
                        format!("the template asks for {total} holes so far; at most {MAX_HOLES} in all"),
                    ));
                }
                flush(&mut text, &mut pieces);
                push_holes(&mut pieces, n);
                i += rest[..=end].chars().count();
                continue;
            }
            let own = model_mask.filter(|m| !m.is_empty() && rest.starts_with(*m));
            let matched = if rest.starts_with("[MASK]") {
                Some("[MASK]")
            } else {
                own
            };
            if let Some(m) = matched {
                total += 1;
                if total > MAX_HOLES {
                    return Err(err(
                        col,
                        format!("the template asks for {total} holes so far; at most {MAX_HOLES} in all"),
                    ));
                }
                flush(&mut text, &mut pieces);
                push_holes(&mut pieces, 1);
                i += m.chars().count();
                continue;
            }
            text.push(c);
            i += 1;
        }
        flush(&mut text, &mut pieces);
        if !pieces.iter().any(|p| !matches!(p, Piece::Text(_))) {
            return Err(Error::template(
                "template has no holes: write [MASK], [MASK*N] or [[words to rewrite]] where text should be filled",
            ));
        }
        Ok(Template { pieces })
    }

    /// The `(min, max)` of each hole of unknown length, in template order.
    pub fn ranges(&self) -> Vec<(usize, usize)> {
        self.pieces
            .iter()
            .filter_map(|p| match *p {
                Piece::Range { min, max, .. } => Some((min, max)),
                _ => None,
            })
            .collect()
    }

    /// Each hole of unknown length as the user wrote it, for messages: "`[MASK*?]` at column
    /// 5", in template order.
    pub fn range_names(&self) -> Vec<String> {
        self.pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Range { col, written, .. } => Some(format!("`{written}` at column {col}")),
                _ => None,
            })
            .collect()
    }

    /// This template with its k-th hole of unknown length made `lengths[k]` holes.
    pub fn with_lengths(&self, lengths: &[usize]) -> Template {
        let mut k = 0;
        let mut pieces = Vec::with_capacity(self.pieces.len());
        for p in &self.pieces {
            match p {
                Piece::Range { .. } => {
                    push_holes(&mut pieces, lengths[k]);
                    k += 1;
                }
                Piece::Holes(n) => push_holes(&mut pieces, *n),
                other => pieces.push(other.clone()),
            }
        }
        Template { pieces }
    }
}

impl Template {
    /// This template with its k-th hole of unknown length made `lengths[k]` holes, each kept as
    /// a piece of its own (never merged with a neighbouring `[MASK*N]`), and the index of that
    /// piece, which is also its slot in the canvas: a hole that grows and shrinks
    /// (`diffusion::expand`) needs its own slot.
    pub fn with_lengths_apart(&self, lengths: &[usize]) -> (Template, Vec<usize>) {
        let mut k = 0;
        let mut at = Vec::with_capacity(lengths.len());
        let mut pieces = Vec::with_capacity(self.pieces.len());
        for p in &self.pieces {
            match p {
                Piece::Range { .. } => {
                    at.push(pieces.len());
                    pieces.push(Piece::Holes(lengths[k]));
                    k += 1;
                }
                Piece::Holes(n)
                    if matches!(pieces.last(), Some(Piece::Holes(_)))
                        && !at.contains(&(pieces.len() - 1)) =>
                {
                    push_holes(&mut pieces, *n)
                }
                other => pieces.push(other.clone()),
            }
        }
        (Template { pieces }, at)
    }

    /// Refuses a template whose holes of unknown length ask the bound ranking
    /// (`diffusion::lengths`) for more than [`MAX_LENGTH_CANDIDATES`] fills, naming the hole
    /// where the product of their ranges passes it. A model that grows holes fills them once,
    /// so only the ranking checks this.
    pub fn check_fills(&self) -> Result<()> {
        let mut fills = 1usize;
        for p in &self.pieces {
            if let Piece::Range { min, max, col, .. } = p {
                fills = fills.saturating_mul(max - min + 1);
                if fills > MAX_LENGTH_CANDIDATES {
                    return Err(err(
                        *col,
                        format!(
                            "the holes of unknown length so far ask for {fills} fills, one per combination \
                             of their lengths; at most {MAX_LENGTH_CANDIDATES}: narrow a range, like `[MASK*1-4]`"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Each hole of unknown length as `(min, max, open)`: `open` when written `[MASK*?]`,
    /// whose range a model that grows holes reads wider ([`crate::diffusion::expand`]).
    pub fn range_specs(&self) -> Vec<(usize, usize, bool)> {
        self.pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Range {
                    min, max, written, ..
                } => Some((*min, *max, written.ends_with("*?]"))),
                _ => None,
            })
            .collect()
    }
}

/// `?` or `A-B` inside `[MASK*…]`.
fn range(spec: &str) -> std::result::Result<(usize, usize), String> {
    if spec == "?" {
        return Ok(UNKNOWN_LENGTHS);
    }
    let bad = || {
        format!(
            "`[MASK*{spec}]` needs a range of lengths like `[MASK*1-6]`, or `[MASK*?]` for 1 to 8"
        )
    };
    let (a, b) = spec.split_once('-').ok_or_else(bad)?;
    let num = |s: &str| s.trim().parse::<usize>().map_err(|_| bad());
    let (min, max) = (num(a)?, num(b)?);
    if min == 0 || min > max || max > MAX_HOLES {
        return Err(format!(
            "`[MASK*{spec}]` must give lengths from A to B with 1 <= A <= B <= {MAX_HOLES}"
        ));
    }
    Ok((min, max))
}

/// `text` written as template text that parses back to exactly `text`: every `\\`, `[` and
/// `]` gets a backslash. (A lone backslash is already literal; escaping all of them keeps the
/// rule simple.) The model's own mask string has no escape: it is always a hole.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '[' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn push_holes(pieces: &mut Vec<Piece>, n: usize) {
    if let Some(Piece::Holes(k)) = pieces.last_mut() {
        *k += n;
    } else {
        pieces.push(Piece::Holes(n));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Piece::*;

    fn parse(s: &str) -> Vec<Piece> {
        Template::parse(s, Some("<mask>")).unwrap().pieces
    }

    #[test]
    fn holes_rewrites_and_escapes() {
        assert_eq!(
            parse("The [MASK*3] sat on the [MASK]."),
            vec![
                Text("The ".into()),
                Holes(3),
                Text(" sat on the ".into()),
                Holes(1),
                Text(".".into())
            ]
        );
        assert_eq!(
            parse("a [[big red]] dog"),
            vec![
                Text("a ".into()),
                Rewrite("big red".into()),
                Text(" dog".into())
            ]
        );
        assert_eq!(
            parse(r"\[MASK] is literal [MASK]"),
            vec![Text("[MASK] is literal ".into()), Holes(1)]
        );
        assert_eq!(
            parse("see [1] and <mask><mask>"),
            vec![Text("see [1] and ".into()), Holes(2)]
        );
        assert_eq!(parse(r"x\\[MASK]"), vec![Text("x\\".into()), Holes(1)]);
        assert_eq!(parse("é [MASK*2]"), vec![Text("é ".into()), Holes(2)]);
    }

    #[test]
    fn backslashes_and_brackets() {
        // a lone backslash is literal: Windows paths need no escaping…
        assert_eq!(
            parse(r"C:\Users\me\x.txt [MASK]"),
            vec![Text(r"C:\Users\me\x.txt ".into()), Holes(1)]
        );
        // …except before `[`, `]` or `\`, and at the very end it stays
        assert_eq!(parse(r"[MASK] a\"), vec![Holes(1), Text(r" a\".into())]);
        assert_eq!(
            parse(r"\\srv [MASK]"),
            vec![Text(r"\srv ".into()), Holes(1)]
        );
        assert_eq!(parse(r"dir\\[MASK]"), vec![Text(r"dir\".into()), Holes(1)]);
        assert_eq!(
            parse(r"a\]b\[c [MASK]"),
            vec![Text("a]b[c ".into()), Holes(1)]
        );
        assert_eq!(parse("x] [y [MASK]"), vec![Text("x] [y ".into()), Holes(1)]);
        assert_eq!(
            parse("[mask] [MASK]"),
            vec![Text("[mask] ".into()), Holes(1)]
        );
        assert_eq!(parse("[MASK* 2 ]"), vec![Holes(2)]);
        // inside `[[ ]]` the words are taken as written, up to the first `]]`
        assert_eq!(parse(r"[[a\b \[x]]"), vec![Rewrite(r"a\b \[x".into())]);
        assert_eq!(
            parse("[[a [MASK]]]"),
            vec![Rewrite("a [MASK".into()), Text("]".into())]
        );
        // the model's own mask string is always a hole
        assert_eq!(parse(r"\<mask>"), vec![Text("\\".into()), Holes(1)]);
        for known in [
            r"C:\dir\",
            r"\\srv\share",
            "a [b] c",
            r"\[MASK]",
            "]]",
            r"\",
            "[[x]]",
        ] {
            let t = format!("{}[MASK]{}", escape(known), escape(known));
            assert_eq!(
                parse(&t),
                vec![Text(known.into()), Holes(1), Text(known.into())],
                "{t}"
            );
        }
    }

    #[test]
    fn holes_of_unknown_length() {
        let t = Template::parse("a [MASK*?] b [MASK*2-3][MASK] c", None).unwrap();
        assert_eq!(
            t.pieces,
            vec![
                Text("a ".into()),
                Range {
                    min: 1,
                    max: 8,
                    col: 3,
                    written: "[MASK*?]".into()
                },
                Text(" b ".into()),
                Range {
                    min: 2,
                    max: 3,
                    col: 14,
                    written: "[MASK*2-3]".into()
                },
                Holes(1),
                Text(" c".into())
            ]
        );
        assert_eq!(t.ranges(), vec![(1, 8), (2, 3)]);
        assert_eq!(
            t.range_names(),
            ["`[MASK*?]` at column 3", "`[MASK*2-3]` at column 14"]
        );
        assert_eq!(
            t.with_lengths(&[4, 2]).pieces,
            vec![
                Text("a ".into()),
                Holes(4),
                Text(" b ".into()),
                Holes(3),
                Text(" c".into())
            ]
        );
        assert_eq!(
            parse("[MASK* 1 - 6 ]"),
            vec![Range {
                min: 1,
                max: 6,
                col: 1,
                written: "[MASK* 1 - 6 ]".into()
            }]
        );
        let e = |s: &str| Template::parse(s, None).unwrap_err().to_string();
        assert!(
            e("x [MASK*3-1]").contains("column 3"),
            "{}",
            e("x [MASK*3-1]")
        );
        assert!(e("[MASK*0-2]").contains("1 <= A <= B"));
        assert!(e("[MASK*a-b]").contains("range of lengths"));
        let fills = |s: &str| {
            Template::parse(s, None)
                .unwrap()
                .check_fills()
                .unwrap_err()
                .to_string()
        };
        assert!(fills("[MASK*?][MASK*?][MASK*?]").contains("512 fills"));
        assert!(fills("[MASK*?][MASK*?][MASK*?]").contains("column 17"));
        assert!(e("[MASK*1-100000]").contains("1 <= A <= B <= 65536"));
    }

    #[test]
    fn growing_holes_keep_their_own_pieces() {
        let t = Template::parse("a [MASK*?][MASK*2] b [MASK*1-3]", None).unwrap();
        let (g, at) = t.with_lengths_apart(&[4, 2]);
        assert_eq!(
            g.pieces,
            vec![
                Text("a ".into()),
                Holes(4),
                Holes(2),
                Text(" b ".into()),
                Holes(2)
            ]
        );
        assert_eq!(at, vec![1, 4]);
        assert_eq!(t.range_specs(), vec![(1, 8, true), (1, 3, false)]);
    }

    #[test]
    fn errors_name_the_column() {
        let e = |s: &str| Template::parse(s, None).unwrap_err().to_string();
        assert!(e("ab [[never closed").contains("column 4: `[[` is never closed"));
        assert!(e("[MASK*x]").contains("column 1: `[MASK*x]` needs a whole number"));
        assert!(e("ok [MASK*0]").contains("column 4"));
        assert!(e("ok [MASK*99999999]").contains("1 to 65536"));
        assert!(e("[MASK*3").contains("never closed by `]`"));
        assert!(e("[[ ]]").contains("no words"));
        assert!(e("no holes here").contains("no holes"));
        assert!(e("  ").contains("empty"));
    }
}
