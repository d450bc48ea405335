//! Holes that grow and shrink (DreamOn, `diffusion::expand`): the DreamOn fixture loads as a
//! model that grows holes, with DreamOn's frame and Dream's forward; the expand and delete rules
//! run on scripted logits (families-reference §6(g)); and on a real forward the trace's events,
//! replayed on the starting layout, re-index the canvas to exactly the fill returned.

mod common;

use unmask::backend::{Ask, Backend, Denoiser, ForwardOutput, Summaries, VectorOut, VectorStep};
use unmask::batch::{Batch, Row};
use unmask::blocking::block_on;
use unmask::diffusion::{InfillOptions, Infiller, SamplerOptions, TraceEvent};
use unmask::{Error, Result};

const EXPAND: u32 = 445;
const END: u32 = 440;
const MASK: u32 = 444;

/// Logits from a script: at each pass the lowest masked row predicts `script[pass].0` with
/// logit 10 and `script[pass].1` with logit 5; every other row and token is flat.
struct Scripted {
    script: Vec<(u32, u32)>,
    pass: usize,
    v: usize,
    /// every canvas the model was shown
    seen: Vec<Vec<u32>>,
}

impl Denoiser for Scripted {
    fn backend(&self) -> Backend {
        Backend::Cpu
    }
    async fn summaries(
        &mut self,
        _: &Row<'_>,
        _: &[usize],
        _: &Ask<'_>,
        _: &[bool],
        _: f64,
    ) -> Result<Summaries> {
        Err(Error::input("scripted: logits only"))
    }
    async fn last_row_logits(&mut self, _: usize) -> Result<Vec<f32>> {
        Err(Error::input("scripted: logits only"))
    }
    async fn logits(&mut self, row: &Row<'_>, rows: &[usize]) -> Result<Vec<f32>> {
        self.seen.push(row.ids.to_vec());
        let (first, second) = self.script[self.pass.min(self.script.len() - 1)];
        self.pass += 1;
        let mut out = vec![0.0f32; rows.len() * self.v];
        out[first as usize] = 10.0;
        out[second as usize] = 5.0;
        Ok(out)
    }
    async fn forward(&mut self, _: &Batch, _: bool) -> Result<ForwardOutput> {
        Err(Error::input("scripted: logits only"))
    }
    async fn warm_up(&mut self) -> Result<()> {
        Ok(())
    }
    async fn vector_step(&mut self, _: &VectorStep<'_>) -> Result<VectorOut> {
        Err(Error::input("scripted: logits only"))
    }
}

fn scripted(script: &[(u32, u32)]) -> Infiller<Scripted> {
    let model = common::model("dreamon");
    let v = model.spec.vocab_size;
    Infiller::new(
        model,
        Scripted {
            script: script.to_vec(),
            pass: 0,
            v,
            seen: Vec::new(),
        },
    )
    .unwrap()
}

fn fill<D: Denoiser>(
    inf: &mut Infiller<D>,
    template: &str,
    opts: &SamplerOptions,
) -> (unmask::diffusion::InfillResult, Vec<TraceEvent>) {
    let mut events = Vec::new();
    let r = block_on(inf.infill(template, opts, &mut |e| events.push(e.clone())))
        .unwrap_or_else(|e| panic!("{template}: {e}"));
    (r, events)
}

/// Replays a trace on the starting layout: commits write ids, `expand` inserts a mask after
/// its position, `delete` removes its positions. Returns the canvas the events describe.
fn replay(start: &[u32], events: &[TraceEvent]) -> Vec<u32> {
    let mut ids = start.to_vec();
    for e in events {
        match e {
            TraceEvent::Step(s) => {
                for c in &s.committed {
                    assert_eq!(ids[c.pos], MASK, "step {} commits over a non-mask", s.step);
                    ids[c.pos] = c.id;
                }
            }
            TraceEvent::Expand(x) => {
                assert_eq!(ids[x.expand], EXPAND);
                ids[x.expand] = MASK;
                ids.insert(x.expand + 1, MASK);
            }
            TraceEvent::Delete(d) => {
                assert_eq!(ids[d.delete[0]], END);
                for &p in d.delete.iter().rev() {
                    ids.remove(p);
                }
            }
            TraceEvent::Lengths(_) => panic!("a growing fill ranks no lengths"),
            TraceEvent::Done(_) => {}
        }
    }
    ids
}

#[test]
fn the_dreamon_fixture_grows_holes_with_dreams_frame_and_forward() {
    let on = common::model("dreamon");
    let g = on
        .growth()
        .expect("<|expand|> in the tokenizer makes a growing model");
    assert_eq!((g.expand, g.end), (EXPAND, END));
    let inf = unmask::engine::cpu_infiller(on).unwrap();
    let c = inf.canvas("a [MASK*2] b").unwrap();
    // DreamOn's prompt: [BOS] … [EOS] (Dream's own canvas has no end token)
    assert_eq!((c.ids[0], *c.ids.last().unwrap()), (443, END));
    let dream = common::model("dream");
    assert!(dream.growth().is_none());
    let plain = unmask::engine::cpu_infiller(dream).unwrap();
    assert_ne!(
        *plain.canvas("a [MASK*2] b").unwrap().ids.last().unwrap(),
        END
    );
    // the same weights through the same forward: Dream's parity (tests/parity.rs) holds
    let (batch, _) = common::golden("dream");
    let a = common::cpu_forward(&common::model("dreamon"), &batch, false).unwrap();
    let b = common::cpu_forward(&common::model("dream"), &batch, false).unwrap();
    assert_eq!(a.out.logits.data, b.out.logits.data);
}

#[test]
fn expand_and_delete_follow_the_script_and_keep_the_known_text() {
    // "one" ? "two" [2] "three": 65, 66, 67 are ordinary tokens of the fixture's BPE
    let script = [
        (EXPAND, 65), // grows the hole to 5
        (EXPAND, 65), // to 6
        (65, 66),     // a word at the hole's first position
        (END, 66),    // deletes itself and the 4 masks after it: length 1
        (END, 66),    // the fixed hole cannot shrink: its second choice, 66
        (EXPAND, 67), // nor grow: 67
    ];
    let mut inf = scripted(&script);
    let opts = InfillOptions::default().resolve(&inf.model).unwrap();
    let template = "one [MASK*?] two [MASK*2] three";
    let start = inf
        .growing(&inf.template(template).unwrap(), &opts)
        .unwrap();
    assert_eq!(start.lengths(), vec![4]);
    let (r, events) = fill(&mut inf, template, &opts);
    assert_eq!(r.hole_lengths, vec![1]);
    assert_eq!((r.steps, r.nfe), (6, 6));
    let kinds: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            TraceEvent::Expand(_) => Some("expand"),
            TraceEvent::Delete(_) => Some("delete"),
            _ => None,
        })
        .collect();
    assert_eq!(kinds, ["expand", "expand", "delete"]);
    let del = events
        .iter()
        .find_map(|e| match e {
            TraceEvent::Delete(d) => Some(d.clone()),
            _ => None,
        })
        .unwrap();
    let p0 = start.canvas.holes[0];
    assert_eq!(del.delete, (p0 + 1..p0 + 6).collect::<Vec<_>>());
    assert_eq!((del.length, del.masked), (1, 2));
    assert_eq!(replay(&start.ids, &events), r.ids);
    assert!(r.text.starts_with("one ") && r.text.contains(" two ") && r.text.ends_with(" three"));
    let tok = inf.tokenizer();
    let words: Vec<String> = [65u32, 66, 67]
        .iter()
        .map(|&t| tok.decode(&[t], false).unwrap())
        .collect();
    for w in &words {
        assert!(r.text.contains(w.trim()), "{:?} lacks {w:?}", r.text);
    }
    // every pass saw the canvas the trace describes so far, frame and known text unchanged
    let seen = &inf.denoiser.seen;
    assert_eq!(seen.len(), 6);
    assert_eq!(seen[2].len(), start.ids.len() + 2);
    assert_eq!(seen[4].len(), start.ids.len() - 3);
    for s in seen {
        assert_eq!(s[..p0], start.ids[..p0]);
        assert_eq!(s.last(), start.ids.last());
    }
}

#[test]
fn a_hole_stops_growing_at_its_longest_length_and_shrinking_at_its_shortest() {
    // [MASK*2-3] starts at 3 (4 clamped): expand is suppressed at once, so 65 is taken
    let mut inf = scripted(&[(EXPAND, 65)]);
    let opts = InfillOptions::default().resolve(&inf.model).unwrap();
    let (r, events) = fill(&mut inf, "x [MASK*2-3] y", &opts);
    assert_eq!(r.hole_lengths, vec![3]);
    assert!(events.iter().all(|e| !matches!(e, TraceEvent::Expand(_))));
    // the end token is scripted at the lowest masked position every pass: at the first it
    // would delete all 3 (leaving 0 < 2) and at the second 2 (leaving 1): both suppressed, so
    // 65 goes there; at the third it deletes only itself, leaving 2
    let mut inf = scripted(&[(END, 65)]);
    let (r, events) = fill(&mut inf, "x [MASK*2-3] y", &opts);
    assert_eq!(r.hole_lengths, vec![2]);
    let dels: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            TraceEvent::Delete(d) => Some(d.delete.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(dels.len(), 1);
    assert!(
        r.text.starts_with("x ") && r.text.ends_with(" y"),
        "{}",
        r.text
    );
}

#[test]
fn a_start_length_is_clamped_into_the_range_and_options_that_do_not_apply_are_refused() {
    let mut inf = scripted(&[(65, 66)]);
    let opts = InfillOptions {
        hole_start: Some(7),
        ..Default::default()
    }
    .resolve(&inf.model)
    .unwrap();
    let (r, _) = fill(&mut inf, "x [MASK*1-5] y", &opts);
    assert_eq!(r.hole_lengths, vec![5]);
    for (request, needle) in [
        (
            InfillOptions {
                strategy: Some("ancestral".parse().unwrap()),
                ..Default::default()
            },
            "strategy `ancestral`",
        ),
        (
            InfillOptions {
                steps: Some(4),
                ..Default::default()
            },
            "step count",
        ),
    ] {
        let o = request.resolve(&inf.model).unwrap();
        let e = block_on(inf.infill("x [MASK*?] y", &o, &mut |_| {})).unwrap_err();
        assert!(e.to_string().contains(needle), "{e}");
        assert!(e.to_string().contains("DreamOn"), "{e}");
    }
    assert!(InfillOptions {
        hole_start: Some(0),
        ..Default::default()
    }
    .resolve(&inf.model)
    .is_err());
}

#[test]
fn a_real_forward_replays_to_the_fill_returned() {
    let mut inf = common::cpu_infiller("dreamon");
    for (seed, temperature) in [(0u64, 0.0), (1, 1.0), (2, 1.0), (3, 1.0)] {
        let opts = InfillOptions {
            seed,
            temperature: Some(temperature),
            ..Default::default()
        }
        .resolve(&inf.model)
        .unwrap();
        let template = "The [MASK*?] sat on [MASK*1-6] mat.";
        let start = inf
            .growing(&inf.template(template).unwrap(), &opts)
            .unwrap();
        let (r, events) = fill(&mut inf, template, &opts);
        assert_eq!(replay(&start.ids, &events), r.ids, "seed {seed}");
        assert_eq!(r.hole_lengths.len(), 2);
        assert!(r.hole_lengths[0] >= 1 && r.hole_lengths[0] <= 64);
        assert!(r.hole_lengths[1] >= 1 && r.hole_lengths[1] <= 6);
        assert!(
            r.text.starts_with("The") && r.text.ends_with(" mat."),
            "{}",
            r.text
        );
        assert!(!r.ids.contains(&MASK) && !r.ids[1..r.ids.len() - 1].contains(&EXPAND));
    }
}
