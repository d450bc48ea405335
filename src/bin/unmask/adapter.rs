//! What the graphics stack prints while a GPU is opened. Drivers and their loaders write to the
//! process's stderr themselves, and not always in our terms: lavapipe's Wayland probe prints
//! `error: XDG_RUNTIME_DIR is invalid or not set in the environment.` and the run goes on, so
//! an `error:` line would stand in the output of a run that exits 0. While the adapter is
//! opened, file descriptor 2 goes to an unlinked temporary file; each distinct line caught is
//! then printed as `warning: GPU adapter: …` (its own `error:` or `warning:` dropped). A panic
//! meanwhile gets its message back on stderr as written.

/// Runs `f` (the GPU's setup) with what the graphics stack prints on stderr passed through as
/// `warning:` lines.
#[cfg(unix)]
pub fn quietly<T>(f: impl FnOnce() -> T) -> T {
    let Some(redirect) = unix::Redirect::start() else {
        return f();
    };
    let value = f();
    for line in redirect.finish() {
        crate::out::say(&format!("warning: GPU adapter: {line}"));
    }
    value
}

/// Elsewhere nothing is caught.
#[cfg(not(unix))]
pub fn quietly<T>(f: impl FnOnce() -> T) -> T {
    f()
}

/// The lines of `text` as warnings: trimmed, without an `error:` or `warning:` of their own,
/// blank ones and repeats left out.
fn lines(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        let mut l = line.trim();
        for prefix in ["error:", "warning:"] {
            if l.len() >= prefix.len() && l[..prefix.len()].eq_ignore_ascii_case(prefix) {
                l = l[prefix.len()..].trim_start();
            }
        }
        if !l.is_empty() && !out.iter().any(|o| o == l) {
            out.push(l.to_string());
        }
    }
    out
}

#[cfg(unix)]
mod unix {
    use std::io::{Read, Seek, Write};
    use std::os::fd::AsRawFd;

    /// Standard error sent to a temporary file until [`Redirect::finish`] (or drop).
    pub struct Redirect {
        /// A duplicate of the real stderr, put back at the end.
        saved: Option<libc::c_int>,
        file: std::fs::File,
    }

    impl Redirect {
        /// `None` when stderr cannot be redirected (no temporary file): then nothing is caught.
        pub fn start() -> Option<Redirect> {
            let path = std::env::temp_dir().join(format!(
                ".unmask-adapter-{}-{:?}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos())
            ));
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)
                .ok()?;
            let _ = std::fs::remove_file(&path);
            let _ = std::io::stderr().flush();
            // SAFETY: plain descriptor calls on descriptors this process owns
            let saved = unsafe { libc::dup(2) };
            if saved < 0 {
                return None;
            }
            if unsafe { libc::dup2(file.as_raw_fd(), 2) } < 0 {
                unsafe { libc::close(saved) };
                return None;
            }
            Some(Redirect {
                saved: Some(saved),
                file,
            })
        }

        fn restore(&mut self) {
            if let Some(saved) = self.saved.take() {
                let _ = std::io::stderr().flush();
                // SAFETY: `saved` is the duplicate made in `start`, closed once here
                unsafe {
                    libc::dup2(saved, 2);
                    libc::close(saved);
                }
            }
        }

        fn caught(&mut self) -> String {
            let mut text = String::new();
            let mut bytes = Vec::new();
            if self.file.rewind().is_ok() && self.file.read_to_end(&mut bytes).is_ok() {
                text = String::from_utf8_lossy(&bytes).into_owned();
            }
            text
        }

        /// Puts stderr back and returns the lines caught, as warnings.
        pub fn finish(mut self) -> Vec<String> {
            self.restore();
            super::lines(&self.caught())
        }
    }

    impl Drop for Redirect {
        fn drop(&mut self) {
            if self.saved.is_some() {
                self.restore();
                // unwinding: what was printed (a panic's message) goes out as it was
                let text = self.caught();
                let _ = std::io::stderr().write_all(text.as_bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn caught_lines_lose_their_own_level_and_repeats() {
        let text = "error: XDG_RUNTIME_DIR is invalid\nerror: XDG_RUNTIME_DIR is invalid\n\n  \
                    WARNING: lavapipe is not a conformant vulkan implementation\nplain\n";
        assert_eq!(
            super::lines(text),
            [
                "XDG_RUNTIME_DIR is invalid",
                "lavapipe is not a conformant vulkan implementation",
                "plain"
            ]
        );
    }
}
