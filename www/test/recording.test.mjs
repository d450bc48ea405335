// The demo's Recording (www/app/recording.js) on hand-written step events, in Node (no browser):
// a growing hole's `expand` and `delete` events re-index the canvas, every cell keeps its id,
// and each step's positions are read as the canvas was before its length move. Run by
// scripts/test-www.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Recording, moveLayout } from "../app/recording.js";

// [BOS] "Once" | hole of 4 at 2..6 | " sat." [EOS]: 9 positions
const LAYOUT = { tokens: 9, slots: [{ known: "Once " }, { hole: [2, 6], afterSpace: true }, { known: " sat." }] };
const step = (step, committed, masked, extra = {}) => ({ step, t: 1, nfe: step, committed: committed.map(([pos, text]) => ({ pos, id: 1, text, p: 0.5 })), masked, ...extra });

/** The text of a state: the known text, and each hole's cells in canvas order (as Canvas::text). */
function textOf(rec, k) {
  const layout = rec.layoutAt(k);
  const order = rec.order(k);
  const state = rec.state(k);
  return layout.slots
    .map((s) => {
      if ("known" in s) return s.known;
      const fill = order.slice(...s.hole).map((cell) => state.get(cell)?.text ?? "▢").join("");
      return s.afterSpace ? fill.replace(/^ +/, "") : fill;
    })
    .join("");
}

test("moveLayout: an expansion lengthens its hole and shifts the later ones; a deletion shortens it", () => {
  const two = { tokens: 12, slots: [{ known: "a" }, { hole: [2, 5], afterSpace: false }, { known: "b" }, { hole: [7, 9], afterSpace: true }, { known: "c" }] };
  assert.deepEqual(moveLayout(two, { expand: 4 }), {
    tokens: 13,
    slots: [{ known: "a" }, { hole: [2, 6], afterSpace: false }, { known: "b" }, { hole: [8, 10], afterSpace: true }, { known: "c" }],
  });
  // a position in the second hole: the first stays
  assert.deepEqual(moveLayout(two, { expand: 7 }).slots.filter((s) => "hole" in s).map((s) => s.hole), [
    [2, 5],
    [7, 10],
  ]);
  assert.deepEqual(moveLayout(two, { delete: [3, 4] }), {
    tokens: 10,
    slots: [{ known: "a" }, { hole: [2, 3], afterSpace: false }, { known: "b" }, { hole: [5, 7], afterSpace: true }, { known: "c" }],
  });
  // the input is left as it was
  assert.deepEqual(two.slots[1].hole, [2, 5]);
});

test("a growing hole: cells keep their ids through expand and delete, and the text replays", () => {
  const rec = new Recording(LAYOUT, { seed: 1 });
  assert.deepEqual(rec.order(0), [0, 1, 2, 3, 4, 5, 6, 7, 8]);

  // step 1 commits <|expand|> at 2: its frame waits for the expand event (a new cell gets the
  // next id, 9)
  rec.push(step(1, [[2, "<|expand|>"]], 3));
  assert.equal(rec.length, 0, "a step whose length move has not come is no frame yet");
  rec.push({ expand: 2, step: 1, hole: 0, length: 5, masked: 5 });
  assert.equal(rec.length, 1);
  assert.deepEqual(rec.order(1), [0, 1, 2, 9, 3, 4, 5, 6, 7, 8], "a new cell (9) after the one that took <|expand|>");
  assert.deepEqual(rec.layoutAt(1).slots[1].hole, [2, 7]);
  assert.equal(rec.layoutAt(1).tokens, 10);
  assert.equal(rec.state(1).has(2), false, "the cell that took <|expand|> is masked again");
  assert.deepEqual(rec.moveAt(1), { kind: "expand", cell: 2, added: 9, hole: 0, length: 5 });
  assert.deepEqual([...rec.freshAt(1)], [2]);
  assert.equal(rec.candidatesAt(2, 1).kind, "committed");
  assert.equal(rec.candidatesAt(9, 0).kind, "absent", "the new cell is not on the canvas before the step that made it");

  // step 2 commits " little" at 3 (the new cell)
  rec.push(step(2, [[3, " little"]], 4));
  assert.equal(rec.length, 2);
  assert.equal(rec.state(2).get(9).text, " little");
  assert.equal(rec.positionOf(9, 2), 3);

  // step 3 commits the end token at 5 (cell 4): it and the masks to its right in the hole (6:
  // cell 5) go; the known text after moves left by 2
  rec.push(step(3, [[5, "<|endoftext|>"]], 2));
  assert.equal(rec.length, 2);
  rec.push({ delete: [5, 6], step: 3, hole: 0, length: 3, masked: 2 });
  assert.equal(rec.length, 3);
  assert.deepEqual(rec.order(3), [0, 1, 2, 9, 3, 6, 7, 8]);
  assert.deepEqual(rec.layoutAt(3), { tokens: 8, slots: [{ known: "Once " }, { hole: [2, 5], afterSpace: true }, { known: " sat." }] });
  assert.deepEqual(rec.moveAt(3), { kind: "delete", cells: [4, 5], hole: 0, length: 3 });
  assert.equal(rec.positionOf(4, 3), -1);
  assert.equal(rec.candidatesAt(4, 3).kind, "committed", "the end token's cell, at the step that deleted it");
  assert.equal(rec.candidatesAt(4, 3).text, "<|endoftext|>");

  // the last two: positions as the canvas has them now
  rec.push(step(4, [[2, " a"]], 1, { pending: [{ pos: 4, top: [{ id: 3, text: " cat", p: 0.9 }] }] }));
  assert.equal(rec.candidatesAt(3, 4).kind, "pending", "a pending position is read through the order");
  rec.push(step(5, [[4, " cat"]], 0));
  rec.push({ done: true, text: "Once a little cat sat.", steps: 5, nfe: 5, ms: 1 });
  assert.equal(rec.length, 5);
  assert.equal(textOf(rec, 5), "Once a little cat sat.");
  assert.equal(textOf(rec, 0), "Once ▢▢▢▢ sat.", "scrubbed back: the starting canvas");
  assert.equal(textOf(rec, 3), "Once ▢ little▢ sat.");
  assert.ok(rec.moved);
  assert.equal(rec.isFinal(5), true);
});

test("a fill without length moves: cells are positions, as before", () => {
  const rec = new Recording(LAYOUT);
  rec.push(step(1, [[3, " b"], [2, " a"]], 2));
  rec.push(step(2, [[4, " c"], [5, " d"]], 0));
  assert.equal(rec.length, 2);
  assert.equal(rec.order(2), rec.order(0), "the one order throughout");
  assert.equal(rec.layoutAt(2), LAYOUT);
  assert.equal(rec.moveAt(1), null);
  assert.equal(rec.moved, false);
  assert.deepEqual([...rec.freshAt(2)].sort(), [4, 5]);
  assert.equal(textOf(rec, 2), "Once a b c d sat.");
});

test("block diffusion: the block of each frame, and the model's block length from the events", () => {
  // 70 positions in blocks of 32: holes at 2..6 and 40..42, the last block cut at 70
  const layout = { tokens: 70, slots: [{ known: "a" }, { hole: [2, 6], afterSpace: false }, { known: "b" }, { hole: [40, 42], afterSpace: true }, { known: "c" }] };
  const first = { start: 0, end: 32 };
  const second = { start: 32, end: 64 };
  const rec = new Recording(layout);
  assert.equal(rec.blockAt(0), null, "no steps yet: no block");
  rec.push(step(1, [[3, "x"]], 5, { block: first }));
  rec.push(step(2, [[2, "y"], [4, "z"], [5, "w"]], 2, { block: first }));
  rec.push(step(3, [[40, "v"], [41, "u"]], 0, { block: second }));
  rec.push({ done: true, text: "", steps: 3, nfe: 3, ms: 1 });
  assert.equal(rec.blockLength, 32);
  assert.deepEqual([0, 1, 2, 3, 9].map((k) => rec.blockAt(k)), [first, first, first, second, second]);
  // a model without blocks: no block anywhere, and none known
  const plain = new Recording(layout);
  plain.push(step(1, [[3, "x"]], 5));
  assert.deepEqual([plain.blockLength, plain.blockAt(1)], [null, null]);
  // the page may know N before any event (its preset's attention), and a cut block does not shrink it
  const given = new Recording(layout, {}, "absorbing", 32);
  given.push(step(1, [[65, "x"]], 0, { block: { start: 64, end: 70 } }));
  assert.equal(given.blockLength, 32);
});
