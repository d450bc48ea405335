//! The live view of `unmask infill` on a terminal: the template with its holes as placeholders,
//! each committed token appearing in place at its step, coloured by the model's confidence
//! (green ≥ 0.7, yellow ≥ 0.3, red below; the newest in bold), and a progress line.

use std::io::Write;

use unmask::diffusion::trace::TraceEvent;
use unmask::text::canvas::{Canvas, Slot};
use unmask::text::Tokenizer;

const PLACEHOLDER: &str = "░";

pub struct Animation<'a> {
    /// its own copy: a hole that grows or shrinks re-indexes it
    canvas: Canvas,
    tok: &'a Tokenizer,
    ids: Vec<u32>,
    /// confidence of each committed hole position
    conf: Vec<Option<f64>>,
    newest: Vec<usize>,
    lines_drawn: usize,
    start: web_time::Instant,
    committed: usize,
}

impl<'a> Animation<'a> {
    pub fn new(canvas: Canvas, tok: &'a Tokenizer) -> Animation<'a> {
        let mut a = Animation {
            ids: canvas.ids.clone(),
            conf: vec![None; canvas.ids.len()],
            canvas,
            tok,
            newest: Vec::new(),
            lines_drawn: 0,
            start: web_time::Instant::now(),
            committed: 0,
        };
        a.draw("starting…");
        a
    }

    pub fn event(&mut self, e: &TraceEvent) {
        match e {
            // only fills of one canvas are animated (fill_one)
            TraceEvent::Lengths(_) => {}
            TraceEvent::Step(s) => {
                self.newest.clear();
                for &p in &s.remasked {
                    self.ids[p] = self.canvas.mask_id;
                    self.conf[p] = None;
                }
                for c in &s.committed {
                    self.ids[c.pos] = c.id;
                    self.conf[c.pos] = Some(c.p);
                    self.newest.push(c.pos);
                }
                self.committed += s.committed.len();
                let secs = self.start.elapsed().as_secs_f64().max(1e-9);
                let status = format!(
                    "step {} · NFE {} · {} masked · {:.1} tokens/s",
                    s.step,
                    s.nfe,
                    s.masked,
                    self.committed as f64 / secs
                );
                self.draw(&status);
            }
            TraceEvent::Expand(e) => {
                self.canvas.insert_hole_after(&mut self.ids, e.expand);
                self.conf[e.expand] = None;
                self.conf.insert(e.expand + 1, None);
                self.newest.clear();
                self.draw(&format!(
                    "step {} · hole {} grew to {}",
                    e.step,
                    e.hole + 1,
                    e.length
                ));
            }
            TraceEvent::Delete(d) => {
                self.canvas.remove_hole_positions(&mut self.ids, &d.delete);
                for &p in d.delete.iter().rev() {
                    self.conf.remove(p);
                }
                self.newest.clear();
                self.draw(&format!(
                    "step {} · hole {} shrank to {}",
                    d.step,
                    d.hole + 1,
                    d.length
                ));
            }
            TraceEvent::Done(d) => {
                self.newest.clear();
                let status = format!("done · {} steps · NFE {} · {:.0} ms", d.steps, d.nfe, d.ms);
                self.draw(&status);
            }
        }
    }

    fn render(&self) -> String {
        let mut out = String::new();
        for (k, slot) in self.canvas.slots.iter().enumerate() {
            match slot {
                Slot::Known { text } => out.push_str(text),
                Slot::Hole {
                    range, after_space, ..
                } => {
                    for pos in range.clone() {
                        let piece = match self.conf[pos] {
                            None => format!("\x1b[2m{PLACEHOLDER}\x1b[0m"),
                            Some(p) => {
                                let mut text = self.canvas.token_text(&self.ids, pos, self.tok);
                                if pos == range.start && (*after_space || k == 0) {
                                    text = text.trim_start_matches(' ').to_string();
                                }
                                let colour = if p >= 0.7 {
                                    32
                                } else if p >= 0.3 {
                                    33
                                } else {
                                    31
                                };
                                let bold = if self.newest.contains(&pos) { "1;" } else { "" };
                                format!("\x1b[{bold}{colour}m{text}\x1b[0m")
                            }
                        };
                        out.push_str(&piece);
                    }
                }
            }
        }
        out
    }

    fn draw(&mut self, status: &str) {
        let width = terminal_size::terminal_size()
            .map_or(80, |(w, _)| w.0 as usize)
            .max(1);
        let text = self.render();
        let mut stdout = std::io::stdout().lock();
        if self.lines_drawn > 0 {
            // back to the first line of the previous frame, then clear below
            let _ = write!(stdout, "\r\x1b[{}A\x1b[J", self.lines_drawn);
        }
        let _ = writeln!(stdout, "{text}");
        let _ = write!(stdout, "\x1b[2m{status}\x1b[0m");
        let _ = stdout.flush();
        // lines the text took, counting wraps; the status line is the last one
        let plain = strip_ansi(&text);
        self.lines_drawn = plain
            .split('\n')
            .map(|l| l.chars().count().max(1).div_ceil(width))
            .sum::<usize>();
    }

    /// Ends the last frame's status line; the one write whose error counts (a terminal that
    /// went away), where the frames' own are ignored.
    pub fn finish(self) -> std::io::Result<()> {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout)?;
        stdout.flush()
    }
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_escape = false;
    for c in s.chars() {
        match (in_escape, c) {
            (false, '\x1b') => in_escape = true,
            (true, 'm') => in_escape = false,
            (true, _) => {}
            (false, c) => out.push(c),
        }
    }
    out
}
