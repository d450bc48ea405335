//! Holes that grow and shrink (DreamOn, families-reference §6): a model taught two length
//! moves fills a hole of unknown length once, instead of once per length
//! (`diffusion::lengths`):
//! - a committed `<|expand|>` becomes two masks (the hole grows by one);
//! - a committed end token (`<|endoftext|>`) deletes itself and the masks to its right in its
//!   hole (DreamOn's `pad_eos_to_right` then `delete_eos_token`, kept inside the one hole, so
//!   an end token in one hole never touches another or the known text).
//!
//! One token is committed per step, the most confident of all masked positions (DreamOn's
//! `number_transfer_tokens = 1`, confidence by the strategy's score; DreamOn's is entropy).
//! The moves are allowed per position, as DreamOn's step 3 suppresses `<|expand|>`:
//! - `<|expand|>` while the hole is under its longest length, has expansions left in its budget
//!   (DreamOn's `expand_budget = max_gen_len`: the longest length), and the canvas is under the
//!   model's context;
//! - the end token where deleting it and the masks to its right leaves the hole at least its
//!   shortest length.
//!
//! Everywhere else (known text, holes of a fixed length) both stay suppressed, as every special
//! token is. A hole written `[MASK*?]` starts at DreamOn's `min_gen_len` of 4 and may reach
//! DreamOn's `max_gen_len` of 64; `[MASK*A-B]` keeps to A..B and starts at 4 clamped into it;
//! a start the caller gives (`--hole-start`) is clamped alike. The maths here is pure: the loop
//! that runs the model is `Infiller::fill_growing` (sampler/expand.rs).

use crate::error::{Error, Result};
use crate::model::Growth;
pub use crate::model::EXPAND;
use crate::text::Canvas;

/// Where a hole of unknown length starts: DreamOn's `min_gen_len` (`eval_infill.yaml`).
pub const START: usize = 4;

/// The longest `[MASK*?]` grows to: DreamOn's `max_gen_len`.
pub const OPEN_MAX: usize = 64;

/// One hole of unknown length while it is filled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrowingHole {
    /// Its slot in the canvas.
    pub slot: usize,
    pub min: usize,
    pub max: usize,
    /// Expansions left.
    pub budget: usize,
}

/// The start, shortest and longest length of each hole of unknown length, from the template's
/// `(min, max, open)` (`Template::range_specs`) and the caller's start, if any.
pub fn plan(specs: &[(usize, usize, bool)], start: Option<usize>) -> Vec<(usize, usize, usize)> {
    specs
        .iter()
        .map(|&(min, max, open)| {
            let max = if open { max.max(OPEN_MAX) } else { max };
            (start.unwrap_or(START).clamp(min, max), min, max)
        })
        .collect()
}

/// A change of a hole's length, reported as a trace event after the step that caused it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// The token at `pos` became two masks, at `pos` and `pos + 1`.
    Expand {
        pos: usize,
        hole: usize,
        length: usize,
    },
    /// These positions (before the change, ascending) were removed.
    Delete {
        positions: Vec<usize>,
        hole: usize,
        length: usize,
    },
}

/// A canvas whose holes of unknown length grow and shrink.
#[derive(Clone, Debug)]
pub struct Growing {
    pub canvas: Canvas,
    /// The sampler's canvas: committed tokens and masks.
    pub ids: Vec<u32>,
    pub holes: Vec<GrowingHole>,
    pub growth: Growth,
    /// The model's context: no expansion past it.
    pub max_len: usize,
}

impl Growing {
    /// `slots[k]` is the canvas slot of the k-th hole of unknown length, `plan[k]` its
    /// `(start, min, max)` (its slot already holds `start` masks).
    pub fn new(
        canvas: Canvas,
        slots: &[usize],
        plan: &[(usize, usize, usize)],
        growth: Growth,
        max_len: usize,
    ) -> Result<Growing> {
        let holes = slots
            .iter()
            .zip(plan)
            .map(|(&slot, &(start, min, max))| {
                let g = GrowingHole {
                    slot,
                    min,
                    max,
                    budget: max,
                };
                match canvas.slots.get(slot) {
                    Some(crate::text::canvas::Slot::Hole { range, .. }) if range.len() == start => {
                        Ok(g)
                    }
                    _ => Err(Error::input(format!(
                        "internal: slot {slot} is not a hole of {start} tokens"
                    ))),
                }
            })
            .collect::<Result<_>>()?;
        Ok(Growing {
            ids: canvas.ids.clone(),
            canvas,
            holes,
            growth,
            max_len,
        })
    }

    fn range(&self, h: usize) -> std::ops::Range<usize> {
        match &self.canvas.slots[self.holes[h].slot] {
            crate::text::canvas::Slot::Hole { range, .. } => range.clone(),
            crate::text::canvas::Slot::Known { .. } => unreachable!("checked in Growing::new"),
        }
    }

    /// Each hole of unknown length's current length, in template order.
    pub fn lengths(&self) -> Vec<usize> {
        (0..self.holes.len()).map(|h| self.range(h).len()).collect()
    }

    /// The hole of unknown length holding `pos`, if any.
    pub fn hole_at(&self, pos: usize) -> Option<usize> {
        (0..self.holes.len()).find(|&h| self.range(h).contains(&pos))
    }

    /// The hole positions still masked, in canvas order.
    pub fn masked(&self) -> Vec<usize> {
        let mask = self.canvas.mask_id;
        self.canvas
            .holes
            .iter()
            .copied()
            .filter(|&p| self.ids[p] == mask)
            .collect()
    }

    /// Allows the length moves that may be committed at masked position `pos` in `allowed`
    /// (every special token already suppressed there), per the module's rules.
    pub fn allow(&self, pos: usize, allowed: &mut [bool]) {
        let Some(h) = self.hole_at(pos) else {
            return;
        };
        let r = self.range(h);
        let hole = &self.holes[h];
        let grow = hole.budget > 0 && r.len() < hole.max && self.ids.len() < self.max_len;
        let mask = self.canvas.mask_id;
        let masks_right = (pos + 1..r.end).filter(|&p| self.ids[p] == mask).count();
        let shrink = r.len() >= hole.min + 1 + masks_right;
        if let Some(a) = allowed.get_mut(self.growth.expand as usize) {
            *a = grow;
        }
        if let Some(a) = allowed.get_mut(self.growth.end as usize) {
            *a = shrink;
        }
    }

    /// Writes `id` at masked position `pos` and applies its length move, if it is one.
    pub fn commit(&mut self, pos: usize, id: u32) -> Option<Change> {
        self.ids[pos] = id;
        let h = self.hole_at(pos)?;
        if id == self.growth.expand {
            self.ids[pos] = self.canvas.mask_id;
            self.canvas.insert_hole_after(&mut self.ids, pos);
            self.holes[h].budget -= 1;
            return Some(Change::Expand {
                pos,
                hole: h,
                length: self.range(h).len(),
            });
        }
        if id == self.growth.end {
            let mask = self.canvas.mask_id;
            let r = self.range(h);
            let positions: Vec<usize> = std::iter::once(pos)
                .chain((pos + 1..r.end).filter(|&p| self.ids[p] == mask))
                .collect();
            self.canvas.remove_hole_positions(&mut self.ids, &positions);
            return Some(Change::Delete {
                positions,
                hole: h,
                length: self.range(h).len(),
            });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::canvas::Slot;

    const MASK: u32 = 9;
    const EXP: u32 = 7;
    const END: u32 = 8;

    /// `[k] <hole> [k] [MASK*2] [k]`, the first hole of unknown length: ids 1 (known), masks.
    fn growing(start: usize, min: usize, max: usize) -> Growing {
        let mut ids = vec![1u32];
        let h1 = 1..1 + start;
        ids.extend(std::iter::repeat_n(MASK, start));
        ids.push(1);
        let h2 = ids.len()..ids.len() + 2;
        ids.extend([MASK, MASK]);
        ids.push(1);
        let mut holes: Vec<usize> = h1.clone().collect();
        holes.extend(h2.clone());
        let canvas = Canvas {
            known: vec![0, h1.end, h2.end],
            holes,
            slots: vec![
                Slot::Known { text: "a".into() },
                Slot::Hole {
                    range: h1,
                    after_space: false,
                    original: None,
                },
                Slot::Known { text: "b".into() },
                Slot::Hole {
                    range: h2,
                    after_space: false,
                    original: None,
                },
                Slot::Known { text: "c".into() },
            ],
            ids,
            mask_id: MASK,
            rewrite: Vec::new(),
        };
        let growth = Growth {
            expand: EXP,
            end: END,
        };
        Growing::new(canvas, &[1], &[(start, min, max)], growth, 32).unwrap()
    }

    fn allowed(g: &Growing, pos: usize) -> (bool, bool) {
        let mut a = vec![false; 10];
        g.allow(pos, &mut a);
        (a[EXP as usize], a[END as usize])
    }

    /// The canvas stays consistent: holes are exactly the hole slots' positions, known
    /// positions are the rest, and the two id copies agree outside the holes.
    fn consistent(g: &Growing) {
        let mut in_slots = Vec::new();
        for s in &g.canvas.slots {
            if let Slot::Hole { range, .. } = s {
                in_slots.extend(range.clone());
            }
        }
        assert_eq!(g.canvas.holes, in_slots);
        assert_eq!(g.ids.len(), g.canvas.ids.len());
        for &k in &g.canvas.known {
            assert_eq!(g.ids[k], 1, "known text moved: {:?}", g.ids);
        }
        assert_eq!(g.canvas.known.len() + in_slots.len(), g.ids.len());
    }

    #[test]
    fn plan_reads_open_holes_wider_and_clamps_the_start() {
        assert_eq!(
            plan(&[(1, 8, true), (2, 3, false), (5, 9, false)], None),
            vec![(4, 1, 64), (3, 2, 3), (5, 5, 9)]
        );
        assert_eq!(plan(&[(1, 8, false)], Some(12)), vec![(8, 1, 8)]);
    }

    #[test]
    fn expand_becomes_two_masks_and_shifts_what_follows() {
        let mut g = growing(3, 1, 5);
        consistent(&g);
        assert_eq!(allowed(&g, 2), (true, true));
        let c = g.commit(2, EXP);
        assert_eq!(
            c,
            Some(Change::Expand {
                pos: 2,
                hole: 0,
                length: 4
            })
        );
        consistent(&g);
        assert_eq!(g.lengths(), vec![4]);
        assert_eq!(g.masked(), vec![1, 2, 3, 4, 6, 7]);
        assert_eq!(g.holes[0].budget, 4);
        // the fixed hole moved right and still holds its two masks
        assert!(matches!(&g.canvas.slots[3], Slot::Hole { range, .. } if *range == (6..8)));
    }

    #[test]
    fn expand_stops_at_the_longest_length_and_the_budget() {
        let mut g = growing(4, 1, 5);
        assert!(allowed(&g, 1).0);
        g.commit(1, EXP);
        assert_eq!(g.lengths(), vec![5]);
        assert!(!allowed(&g, 1).0, "at its longest");
        let mut g = growing(2, 1, 64);
        g.holes[0].budget = 0;
        assert!(!allowed(&g, 1).0, "no budget left");
        let mut g = growing(2, 1, 64);
        g.max_len = g.ids.len();
        assert!(!allowed(&g, 1).0, "the context is full");
    }

    #[test]
    fn end_deletes_itself_and_the_masks_to_its_right_in_its_hole_only() {
        let mut g = growing(5, 1, 8);
        g.commit(4, 42); // a committed word right of the end token stays
        let c = g.commit(2, END);
        assert_eq!(
            c,
            Some(Change::Delete {
                positions: vec![2, 3, 5],
                hole: 0,
                length: 2
            })
        );
        consistent(&g);
        assert_eq!(g.ids[..4], [1, MASK, 42, 1]);
        // the fixed hole is untouched: two masks
        assert_eq!(g.masked(), vec![1, 4, 5]);
    }

    #[test]
    fn end_is_refused_where_the_hole_would_fall_under_its_shortest_length() {
        let g = growing(4, 2, 8);
        // deleting at 3 removes 3 and 4: 2 left, allowed; at 2 removes three: 1 left, refused
        assert_eq!(allowed(&g, 3), (true, true));
        assert_eq!(allowed(&g, 2), (true, false));
        // the fixed hole never grows or shrinks
        assert_eq!(allowed(&g, 6), (false, false));
    }
}
