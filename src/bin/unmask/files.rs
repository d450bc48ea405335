//! Output files that never destroy an input and are never left half-written.
//!
//! - An output that names a file the run reads is refused before anything is read or written.
//!   Files are compared by identity (device and inode on Unix, the canonical path elsewhere),
//!   so `./model/../model/model.safetensors`, a symbolic link and a hard link are all caught.
//! - Every output is written to a temporary file (or, for `quantize`, folder) beside it, named
//!   `.NAME.PID.unmask-tmp`, and renamed into place once complete: a run that fails or is
//!   interrupted leaves the old file (or no file) where the output goes, never a half-written
//!   one, and two runs writing the same path leave one whole output, never interleaved lines.
//!   A run that fails removes its temporary file; one killed by a signal cannot, and leaves it
//!   beside the output, where it blocks nothing.
//! - An output that exists and is not a regular file (`/dev/full`, a named pipe, `/dev/stdout`)
//!   is written in place: there is no file to leave half-written, and renaming onto it would
//!   replace the device.

use std::path::{Path, PathBuf};

use unmask::{Error, Result};

/// The files a model folder's load (or `quantize`) reads: config, tokenizer files, the weights
/// or the shard index and every shard it names.
pub fn model_inputs(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = [
        "config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "model.safetensors",
        "model.safetensors.index.json",
    ]
    .iter()
    .map(|f| dir.join(f))
    .collect();
    let index = dir.join("model.safetensors.index.json");
    if let Ok(text) = std::fs::read_to_string(&index) {
        if let Ok(shards) = unmask::model::weights::shard_names(&index.display().to_string(), &text)
        {
            files.extend(shards.iter().map(|s| dir.join(s)));
        }
    }
    files
}

#[cfg(unix)]
type Identity = (u64, u64);
#[cfg(not(unix))]
type Identity = PathBuf;

/// What makes a file itself, when it exists.
fn identity(p: &Path) -> Option<Identity> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()))
    }
    #[cfg(not(unix))]
    {
        std::fs::canonicalize(p).ok()
    }
}

/// Whether `a` and `b` are the same existing file (or folder).
pub fn same_file(a: &Path, b: &Path) -> bool {
    matches!((identity(a), identity(b)), (Some(x), Some(y)) if x == y)
}

/// Refuses `output` (given with `flag`) when it is one of `inputs`.
pub fn refuse_inputs(flag: &str, output: &Path, inputs: &[PathBuf]) -> Result<()> {
    if identity(output).is_none() {
        return Ok(());
    }
    let Some(input) = inputs.iter().find(|i| same_file(output, i)) else {
        return Ok(());
    };
    let what = if input.is_dir() { "a folder" } else { "a file" };
    let named = if input.as_path() == output {
        format!("{what} this run reads")
    } else {
        format!("{}, {what} this run reads", input.display())
    };
    Err(Error::file(
        output.display(),
        format!("{flag} names {named}; writing it would destroy it, so give another path"),
    ))
}

/// A sibling of `target` that no other run uses: `.NAME.PID.unmask-tmp`.
fn temp_beside(target: &Path) -> Result<PathBuf> {
    let name = target
        .file_name()
        .ok_or_else(|| Error::file(target.display(), "names no file"))?;
    let tmp = format!(
        ".{}.{}.unmask-tmp",
        name.to_string_lossy(),
        std::process::id()
    );
    Ok(target.with_file_name(tmp))
}

/// Where the output goes once complete: the file a symbolic link points at (so the link
/// stays), or the path itself.
fn resolved(dest: &Path) -> PathBuf {
    std::fs::canonicalize(dest).unwrap_or_else(|_| dest.to_path_buf())
}

/// An output file written beside its destination and renamed into place by [`Staged::commit`];
/// dropped uncommitted, its temporary file is removed.
pub struct Staged {
    dest: PathBuf,
    /// The temporary file, or `None` when the destination is written in place.
    tmp: Option<PathBuf>,
    /// Where the rename goes (the destination, with links followed).
    target: PathBuf,
}

impl Staged {
    /// Claims a temporary file beside `dest`, with the permissions of the file it replaces.
    pub fn new(dest: &Path) -> Result<(Staged, std::fs::File)> {
        match std::fs::metadata(dest) {
            Ok(m) if m.is_dir() => {
                Err(Error::file(dest.display(), "is a folder; give a file path"))
            }
            Ok(m) if !m.is_file() => {
                let file = std::fs::File::create(dest).map_err(|e| Error::io(dest.display(), e))?;
                let staged = Staged {
                    dest: dest.to_path_buf(),
                    tmp: None,
                    target: dest.to_path_buf(),
                };
                Ok((staged, file))
            }
            existing => {
                let target = resolved(dest);
                let tmp = temp_beside(&target)?;
                let file = std::fs::File::create_new(&tmp).map_err(|e| {
                    Error::file(
                        dest.display(),
                        format!(
                            "cannot create a temporary file beside it ({}): {e}",
                            tmp.display()
                        ),
                    )
                })?;
                let staged = Staged {
                    dest: dest.to_path_buf(),
                    tmp: Some(tmp),
                    target,
                };
                if let Ok(m) = existing {
                    // a rename would otherwise change the mode the user gave the file
                    let _ = file.set_permissions(m.permissions());
                }
                Ok((staged, file))
            }
        }
    }

    /// The file to write: the temporary one, or the destination itself.
    pub fn path(&self) -> &Path {
        self.tmp.as_deref().unwrap_or(&self.dest)
    }

    /// The destination as the user gave it (for messages).
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// Moves the finished file into place. The caller has flushed and closed it.
    pub fn commit(mut self) -> Result<()> {
        if let Some(tmp) = self.tmp.take() {
            if let Err(e) = std::fs::rename(&tmp, &self.target) {
                let _ = std::fs::remove_file(&tmp);
                return Err(Error::file(
                    self.dest.display(),
                    format!("cannot move the finished file into place: {e}"),
                ));
            }
        }
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if let Some(tmp) = self.tmp.take() {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

/// An output folder built beside its destination and renamed into place by
/// [`StagedDir::commit`]; dropped uncommitted, the temporary folder and all in it are removed.
pub struct StagedDir {
    dest: PathBuf,
    tmp: Option<PathBuf>,
}

impl StagedDir {
    /// Refuses a destination that exists and is not an empty folder, then claims an empty
    /// temporary folder beside it.
    pub fn new(dest: &Path) -> Result<StagedDir> {
        if dest.exists() && std::fs::read_dir(dest).map_or(true, |mut d| d.next().is_some()) {
            return Err(Error::file(
                dest.display(),
                "already exists and is not an empty folder; give a new one",
            ));
        }
        let tmp = temp_beside(&resolved(dest))?;
        std::fs::create_dir(&tmp).map_err(|e| {
            Error::file(
                dest.display(),
                format!(
                    "cannot create a temporary folder beside it ({}): {e}",
                    tmp.display()
                ),
            )
        })?;
        Ok(StagedDir {
            dest: dest.to_path_buf(),
            tmp: Some(tmp),
        })
    }

    /// The folder to write into.
    pub fn path(&self) -> &Path {
        self.tmp
            .as_deref()
            .expect("a staged folder until committed")
    }

    /// Moves the finished folder into place (over an empty folder, if one is there).
    pub fn commit(mut self) -> Result<()> {
        let tmp = self.tmp.take().expect("a staged folder until committed");
        let target = resolved(&self.dest);
        let mut moved = std::fs::rename(&tmp, &target);
        if moved.is_err() && target.is_dir() {
            // where a rename cannot replace an empty folder (Windows), remove it first
            if std::fs::remove_dir(&target).is_ok() {
                moved = std::fs::rename(&tmp, &target);
            }
        }
        if let Err(e) = moved {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(Error::file(
                self.dest.display(),
                format!("cannot move the finished folder into place: {e}"),
            ));
        }
        Ok(())
    }
}

impl Drop for StagedDir {
    fn drop(&mut self) {
        if let Some(tmp) = self.tmp.take() {
            let _ = std::fs::remove_dir_all(tmp);
        }
    }
}
