//! The canvas: a template turned into token ids, with its holes set to the mask id, the model's
//! special tokens around it, and enough layout to give the user's text back byte for byte.
//!
//! Known text is tokenised piece by piece, so its tokens are exactly the tokens of that text.
//! Spaces just before a hole are left to the hole: `The [MASK]` is tokenised as `The` followed
//! by the hole, whose first token then carries the space (` cat`), as in natural text. The
//! output puts the user's text back verbatim and drops a fill's leading space when the known
//! text already ends with one.

use std::ops::Range;

use super::template::{Piece, Template};
use super::Tokenizer;
use crate::error::{Error, Result};

/// The most bytes of known text a template may carry per token of the model's context, checked
/// before tokenising: ordinary text is 3–6 bytes a token, so a template over `context × 64`
/// bytes cannot fit, and refusing it by size spares tokenising megabytes only to refuse them.
pub const BYTES_PER_TOKEN: usize = 64;

/// How a model's canvas is framed (MDLM: kuleshov-group/mdlm issue #18; LLaDA: its generate.py).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CanvasRule {
    /// `<|endoftext|>` at both ends, as MDLM-OWT was trained.
    EosBothEnds,
    /// The tokenizer's post-processor frame when it adds one (UDLM-LM1B with BERT's tokenizer:
    /// `[CLS] … [SEP]`); else `<|endoftext|>` at both ends where the tokenizer has it (this
    /// project's uniform model, trained framed as the default model is); else no frame.
    PostProcessorElseEos,
    /// The tokenizer's post-processor template (`[CLS] … [SEP]`, `<s> … </s>`).
    PostProcessor,
    /// A beginning-of-text token only, named here (LLaDA's `<|startoftext|>`, Dream's
    /// `<|beginoftext|>`).
    Bos(&'static str),
    /// Beginning- and end-of-text tokens, named here: DreamOn's `[BOS] … [EOS]` (its
    /// `demo/quickstart.py`), a Dream checkpoint whose vocabulary has `<|expand|>`.
    BosEos(&'static str, &'static str),
}

#[derive(Clone, Debug)]
pub enum Slot {
    Known {
        text: String,
    },
    Hole {
        range: Range<usize>,
        /// The known text before this hole ends with whitespace.
        after_space: bool,
        /// For `[[words]]`: the words being rewritten.
        original: Option<String>,
    },
}

/// How a canvas lays out for a view: the user's text verbatim between the holes' canvas
/// positions, in order (the web demo draws its token canvas from it).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Layout {
    /// Canvas length, special tokens included.
    pub tokens: usize,
    pub slots: Vec<LayoutSlot>,
}

/// `{"known": text}` or `{"hole": [start, end], "afterSpace": …, "original": …}`.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum LayoutSlot {
    Known {
        known: String,
    },
    Hole {
        /// Canvas positions `start..end`.
        hole: [usize; 2],
        /// The text before it ends with a space, or it starts the text: a fill's leading space
        /// is not shown (as in [`Canvas::text`]).
        #[serde(rename = "afterSpace")]
        after_space: bool,
        /// For `[[words]]`: the words being rewritten.
        #[serde(skip_serializing_if = "Option::is_none")]
        original: Option<String>,
    },
}

#[derive(Clone, Debug)]
pub struct Canvas {
    pub ids: Vec<u32>,
    /// The positions to fill, in canvas order.
    pub holes: Vec<usize>,
    /// The positions of the user's known text (not the frame's special tokens): the "prompt"
    /// that classifier-free guidance masks out.
    pub known: Vec<usize>,
    pub slots: Vec<Slot>,
    pub mask_id: u32,
    /// `(position, id)` of the words a `[[words]]` hole rewrites, token by token: where a
    /// family starts its holes from tokens rather than the mask (uniform-state), it starts there.
    pub rewrite: Vec<(usize, u32)>,
}

/// Token ids of one piece of known text, without special tokens.
fn encode(tok: &Tokenizer, text: &str) -> Result<Vec<u32>> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    tok.encode(text, false)
}

/// The special tokens the post-processor puts before and after a text.
fn post_processor_frame(tok: &Tokenizer) -> Result<(Vec<u32>, Vec<u32>)> {
    let full = tok.encode("a", true)?;
    let bare = tok.encode("a", false)?;
    let at = (0..=full.len().saturating_sub(bare.len()))
        .find(|&i| full[i..].starts_with(&bare))
        .ok_or_else(|| Error::Tokenizer {
            path: tok.path().to_string(),
            msg: "its post-processor does not keep the text's tokens together".into(),
        })?;
    Ok((full[..at].to_vec(), full[at + bare.len()..].to_vec()))
}

fn special(tok: &Tokenizer, token: &str, why: &str) -> Result<u32> {
    tok.token_to_id(token).ok_or_else(|| Error::Tokenizer {
        path: tok.path().to_string(),
        msg: format!("has no `{token}` token, which {why}"),
    })
}

/// The special tokens a model's canvas starts and ends with.
pub fn frame(tok: &Tokenizer, rule: CanvasRule) -> Result<(Vec<u32>, Vec<u32>)> {
    Ok(match rule {
        CanvasRule::EosBothEnds => {
            let eos = special(tok, "<|endoftext|>", "frames an MDLM canvas")?;
            (vec![eos], vec![eos])
        }
        CanvasRule::Bos(bos) => (
            vec![special(tok, bos, "starts this model's canvas")?],
            vec![],
        ),
        CanvasRule::BosEos(bos, eos) => (
            vec![special(tok, bos, "starts this model's canvas")?],
            vec![special(tok, eos, "ends this model's canvas")?],
        ),
        CanvasRule::PostProcessor => post_processor_frame(tok)?,
        CanvasRule::PostProcessorElseEos => {
            let (pre, suf) = post_processor_frame(tok)?;
            match tok.token_to_id("<|endoftext|>") {
                Some(eos) if pre.is_empty() && suf.is_empty() => (vec![eos], vec![eos]),
                _ => (pre, suf),
            }
        }
    })
}

impl Canvas {
    /// Builds the canvas; `max_len`/`max_field` give the model's context for the error message.
    pub fn build(
        template: &Template,
        tok: &Tokenizer,
        rule: CanvasRule,
        mask_id: u32,
        max_len: usize,
        max_field: &str,
    ) -> Result<Canvas> {
        let context = |what: String| {
            Error::template(format!(
                "{what}, but the model's context is {max_len} tokens (config.json `{max_field}`)"
            ))
        };
        if !template.ranges().is_empty() {
            // one canvas has one length: the sampler lays out one per length (diffusion::lengths)
            return Err(Error::template(
                "a hole of unknown length (`[MASK*?]`, `[MASK*A-B]`) has no single canvas: fill \
                 the template (infill), which tries each length, instead of laying it out",
            ));
        }
        // Sizes first, before anything is tokenised or allocated: the holes are counted, the
        // known text is bounded by bytes (BYTES_PER_TOKEN per token of context).
        let (holes_asked, text_bytes) =
            template
                .pieces
                .iter()
                .fold((0usize, 0usize), |(h, b), p| match p {
                    Piece::Text(t) => (h, b.saturating_add(t.len())),
                    Piece::Holes(n) => (h.saturating_add(*n), b),
                    Piece::Rewrite(w) => (h, b.saturating_add(w.len())),
                    Piece::Range { max, .. } => (h.saturating_add(*max), b),
                });
        if holes_asked > max_len {
            return Err(context(format!(
                "the template asks for {holes_asked} holes"
            )));
        }
        let byte_cap = max_len.saturating_mul(BYTES_PER_TOKEN);
        if text_bytes > byte_cap {
            return Err(context(format!(
                "the template's text is {text_bytes} bytes, more than the {byte_cap} ({BYTES_PER_TOKEN} a token) the context can hold"
            )));
        }
        let (prefix, suffix) = frame(tok, rule)?;
        if holes_asked + prefix.len() + suffix.len() > max_len {
            return Err(context(format!(
                "the template needs at least {} tokens ({holes_asked} holes and the model's {} special tokens)",
                holes_asked + prefix.len() + suffix.len(),
                prefix.len() + suffix.len()
            )));
        }
        let mut ids = prefix;
        let mut holes = Vec::new();
        let mut rewrite = Vec::new();
        let mut known = Vec::new();
        let mut slots = Vec::new();
        let pieces = &template.pieces;
        // whitespace held back from the previous known text, for the next hole to carry
        let mut carried = String::new();
        for (k, piece) in pieces.iter().enumerate() {
            match piece {
                Piece::Text(text) => {
                    let next_is_hole = pieces
                        .get(k + 1)
                        .is_some_and(|p| !matches!(p, Piece::Text(_)));
                    let body = if next_is_hole {
                        text.trim_end_matches(' ')
                    } else {
                        text.as_str()
                    };
                    carried = text[body.len()..].to_string();
                    let start = ids.len();
                    ids.extend(encode(tok, body)?);
                    known.extend(start..ids.len());
                    slots.push(Slot::Known { text: text.clone() });
                }
                Piece::Holes(n) => {
                    let start = ids.len();
                    ids.extend(std::iter::repeat_n(mask_id, *n));
                    holes.extend(start..ids.len());
                    slots.push(Slot::Hole {
                        range: start..ids.len(),
                        after_space: !carried.is_empty() || ends_with_space(&slots),
                        original: None,
                    });
                    carried.clear();
                }
                Piece::Range { .. } => unreachable!("refused above"),
                Piece::Rewrite(words) => {
                    // same token count as the words would have in place, space included
                    let words_ids = encode(tok, &format!("{carried}{words}"))?;
                    let n = words_ids.len().max(1);
                    let start = ids.len();
                    rewrite.extend((start..).zip(words_ids));
                    ids.extend(std::iter::repeat_n(mask_id, n));
                    holes.extend(start..ids.len());
                    slots.push(Slot::Hole {
                        range: start..ids.len(),
                        after_space: !carried.is_empty() || ends_with_space(&slots),
                        original: Some(words.clone()),
                    });
                    carried.clear();
                }
            }
            if ids.len() > max_len {
                break; // refused below; no need to tokenise the rest
            }
        }
        ids.extend(suffix);
        if ids.len() > max_len {
            return Err(Error::template(format!(
                "the template needs {} tokens (with the model's special tokens) but the model's context is {} (config.json `{max_field}`)",
                ids.len(),
                max_len
            )));
        }
        Ok(Canvas {
            rewrite,
            ids,
            holes,
            known,
            slots,
            mask_id,
        })
    }

    pub fn layout(&self) -> Layout {
        let slots = self
            .slots
            .iter()
            .enumerate()
            .map(|(k, slot)| match slot {
                Slot::Known { text } => LayoutSlot::Known {
                    known: text.clone(),
                },
                Slot::Hole {
                    range,
                    after_space,
                    original,
                } => LayoutSlot::Hole {
                    hole: [range.start, range.end],
                    after_space: *after_space || k == 0,
                    original: original.clone(),
                },
            })
            .collect();
        Layout {
            tokens: self.ids.len(),
            slots,
        }
    }

    /// The filled text: known text verbatim, each hole decoded in context.
    pub fn text(&self, ids: &[u32], tok: &Tokenizer) -> Result<String> {
        let mut out = String::new();
        for (k, slot) in self.slots.iter().enumerate() {
            match slot {
                Slot::Known { text } => out.push_str(text),
                Slot::Hole {
                    range, after_space, ..
                } => {
                    let mut fill = self.span_text(ids, range.clone(), tok)?;
                    if *after_space || k == 0 {
                        fill = fill.trim_start_matches(' ').to_string();
                    }
                    out.push_str(&fill);
                }
            }
        }
        Ok(out)
    }

    /// Text of `ids[range]` as it reads after the tokens before it: decoding with one token of
    /// left context lets WordPiece join `##` pieces and place spaces as it would in the sentence.
    fn span_text(&self, ids: &[u32], range: Range<usize>, tok: &Tokenizer) -> Result<String> {
        let content: Vec<u32> = ids[range.clone()]
            .iter()
            .copied()
            .filter(|&t| t != self.mask_id)
            .collect();
        if content.is_empty() {
            return Ok(String::new());
        }
        if let Some(&left) = ids[..range.start].last().filter(|&&t| t != self.mask_id) {
            let head = tok.decode(&[left], false)?;
            let mut with = vec![left];
            with.extend(&content);
            let both = tok.decode(&with, false)?;
            if let Some(rest) = both.strip_prefix(&head) {
                return Ok(rest.to_string());
            }
        }
        tok.decode(&content, false)
    }

    /// Grows the hole holding `pos` by one masked position, inserted at `pos + 1`; every later
    /// position moves one to the right (a committed `<|expand|>` becomes two masks:
    /// `diffusion::expand`). `ids` is the sampler's copy of the canvas, re-indexed alike.
    pub fn insert_hole_after(&mut self, ids: &mut Vec<u32>, pos: usize) {
        let at = pos + 1;
        ids.insert(at, self.mask_id);
        self.ids.insert(at, self.mask_id);
        let shift = |p: &mut usize| {
            if *p >= at {
                *p += 1
            }
        };
        for slot in &mut self.slots {
            if let Slot::Hole { range, .. } = slot {
                if range.start <= pos && pos < range.end {
                    range.end += 1;
                } else if range.start >= at {
                    range.start += 1;
                    range.end += 1;
                }
            }
        }
        self.holes.iter_mut().for_each(shift);
        let k = self.holes.partition_point(|&h| h < at);
        self.holes.insert(k, at);
        self.known.iter_mut().for_each(shift);
        self.rewrite.iter_mut().for_each(|(p, _)| shift(p));
    }

    /// Removes hole positions `gone` (ascending, each in a hole); every later position moves
    /// left by the number removed before it (a committed end token deletes itself and the
    /// masks to its right in its hole: `diffusion::expand`). `ids` is re-indexed alike.
    pub fn remove_hole_positions(&mut self, ids: &mut Vec<u32>, gone: &[usize]) {
        debug_assert!(gone.windows(2).all(|w| w[0] < w[1]));
        let before = |p: usize| gone.partition_point(|&g| g < p);
        for &g in gone.iter().rev() {
            ids.remove(g);
            self.ids.remove(g);
        }
        for slot in &mut self.slots {
            if let Slot::Hole { range, .. } = slot {
                let len = range.len() - gone.iter().filter(|g| range.contains(g)).count();
                range.start -= before(range.start);
                range.end = range.start + len;
            }
        }
        self.holes.retain(|h| gone.binary_search(h).is_err());
        self.holes.iter_mut().for_each(|p| *p -= before(*p));
        self.known.iter_mut().for_each(|p| *p -= before(*p));
        self.rewrite.retain(|(p, _)| gone.binary_search(p).is_err());
        self.rewrite.iter_mut().for_each(|(p, _)| *p -= before(*p));
    }

    /// The text of the single token at `pos`, read in context (for the trace and the animation).
    pub fn token_text(&self, ids: &[u32], pos: usize, tok: &Tokenizer) -> String {
        self.span_text(ids, pos..pos + 1, tok).unwrap_or_default()
    }
}

fn ends_with_space(slots: &[Slot]) -> bool {
    matches!(slots.last(), Some(Slot::Known { text }) if text.ends_with(char::is_whitespace))
}
