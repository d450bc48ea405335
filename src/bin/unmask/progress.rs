//! The progress bar of long work (`eval` on a book, a long batch): position, rate and ETA on
//! stderr, only when stderr is a terminal. Piped or redirected, nothing is drawn at all.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::out::say;

pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// A bar counting `unit`s, when stderr is a terminal; hidden otherwise.
    pub fn new(unit: &str) -> Progress {
        if !std::io::stderr().is_terminal() {
            return Progress::hidden();
        }
        let style = ProgressStyle::with_template(&format!(
            "{{elapsed_precise}} [{{wide_bar}}] {{pos}}/{{len}} {unit} · {{rate}} · ETA {{eta}}"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key(
            "rate",
            |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.1}/s", state.per_sec());
            },
        )
        .progress_chars("=> ");
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        bar.set_style(style);
        // the clock moves while one long unit runs (a span's fill on a large model)
        bar.enable_steady_tick(std::time::Duration::from_millis(500));
        Progress { bar: Some(bar) }
    }

    pub fn hidden() -> Progress {
        Progress { bar: None }
    }

    pub fn set(&self, done: usize, total: usize) {
        if let Some(b) = &self.bar {
            b.set_length(total as u64);
            b.set_position(done as u64);
        }
    }

    /// A line on stderr above the bar.
    pub fn say(&self, line: &str) {
        match &self.bar {
            Some(b) => b.suspend(|| say(line)),
            None => say(line),
        }
    }

    /// Clears the bar from the terminal.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
