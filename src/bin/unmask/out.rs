//! Standard output and standard error, without a panic: every line of output is written with
//! its error checked, and every way a run ends maps to the exit status the README documents.

use std::io::Write;
use std::process::ExitCode;

use unmask::Error;

/// The exit status when the reader of standard output went away (`| head -1`): 128 + SIGPIPE,
/// what the shell reports for a program that SIGPIPE ended.
pub const BROKEN_PIPE: u8 = 141;

/// How a run that did not succeed ends.
pub enum Fail {
    /// An error: `error: …` on stderr, exit 1. In batch mode, this line's error: the batch
    /// reports it with the line number and goes on.
    Error(Error),
    /// An error that ends a batch at once (the trace file or stdout cannot be written).
    Fatal(Error),
    /// Standard output was closed by its reader: nothing more to say, exit 141.
    BrokenPipe,
    /// Errors were reported on stderr already (the failed lines of a batch): exit 1.
    Reported,
}

impl From<Error> for Fail {
    fn from(e: Error) -> Fail {
        Fail::Error(e)
    }
}

/// A failed write to standard output: a broken pipe, or an error line (a full disk).
pub fn write_error(e: std::io::Error) -> Fail {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        Fail::BrokenPipe
    } else {
        Fail::Fatal(Error::io("writing standard output", e))
    }
}

/// Standard output, one checked line at a time.
pub struct Out {
    w: std::io::Stdout,
}

impl Out {
    pub fn stdout() -> Out {
        Out {
            w: std::io::stdout(),
        }
    }

    pub fn line(&mut self, s: &str) -> Result<(), Fail> {
        writeln!(self.w, "{s}").map_err(write_error)
    }

    /// One JSON object on a line.
    pub fn json<T: serde::Serialize>(&mut self, value: &T) -> Result<(), Fail> {
        let s = serde_json::to_string(value)
            .map_err(|e| Fail::Error(Error::input(format!("cannot write the JSON: {e}"))))?;
        self.line(&s)
    }

    pub fn flush(&mut self) -> Result<(), Fail> {
        self.w.flush().map_err(write_error)
    }
}

/// A line on stderr; if stderr itself cannot be written there is no one to tell.
pub fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// The exit status of a run, after its last words on stderr.
pub fn exit(ended: Result<(), Fail>) -> ExitCode {
    match ended {
        Ok(()) => ExitCode::SUCCESS,
        Err(Fail::BrokenPipe) => ExitCode::from(BROKEN_PIPE),
        Err(Fail::Reported) => ExitCode::FAILURE,
        Err(Fail::Error(e) | Fail::Fatal(e)) => {
            say(&format!("error: {e}"));
            ExitCode::FAILURE
        }
    }
}

/// The message of `e` without the `input: ` its Display starts with for input errors, so a
/// prefix such as a line number or a file can go before it.
pub fn bare(e: &Error) -> String {
    match e {
        Error::Input(m) | Error::Template(m) => m.clone(),
        e => e.to_string(),
    }
}
