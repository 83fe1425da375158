//! The local-directory backend: a file is written to a hidden temporary name
//! (`.NAME.inprogress`), then fsynced, renamed to its final name and its directory fsynced.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;

use crate::config::SinkConfig;
use crate::sink::{parse_file_name, Rolling, SourceKey, Storage};
use crate::{io_err, Result};

/// Parquet files in a local directory (see the module docs of [`crate::sink`]).
pub type ParquetDirSink = Rolling<LocalDir>;

impl ParquetDirSink {
    /// A sink writing under the local directory `config.output_dir` (created if missing;
    /// a `file://` URL is taken as its path).
    pub fn local(config: &SinkConfig) -> Result<Self> {
        Rolling::new(config, LocalDir::new(local_path(config))?)
    }
}

/// The local path of `config.output_dir`: the path itself, or the path of a `file://` URL.
pub fn local_path(config: &SinkConfig) -> PathBuf {
    match config
        .output_dir
        .to_str()
        .and_then(|s| s.strip_prefix("file://"))
    {
        Some(p) => PathBuf::from(p),
        None => config.output_dir.clone(),
    }
}

/// A local directory of files.
pub struct LocalDir {
    root: PathBuf,
}

impl LocalDir {
    /// The directory `root` (created if missing).
    pub fn new(root: PathBuf) -> Result<Self> {
        std::fs::create_dir_all(&root).map_err(|e| io_err(&root, e))?;
        Ok(Self { root })
    }
}

/// An open local file: written at its temporary path, renamed at commit.
pub struct LocalOut {
    file: File,
    tmp: PathBuf,
    dest: PathBuf,
}

impl Write for LocalOut {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl Storage for LocalDir {
    type Out = LocalOut;

    fn create(&mut self, dir: &str, name: &str) -> Result<LocalOut> {
        let dir_path = if dir.is_empty() {
            self.root.clone()
        } else {
            self.root.join(dir)
        };
        std::fs::create_dir_all(&dir_path).map_err(|e| io_err(&dir_path, e))?;
        let tmp = dir_path.join(format!(".{name}.inprogress"));
        let dest = dir_path.join(name);
        let file = File::create(&tmp).map_err(|e| io_err(&tmp, e))?;
        Ok(LocalOut { file, tmp, dest })
    }

    fn commit(&mut self, out: LocalOut) -> Result<String> {
        let LocalOut {
            mut file,
            tmp,
            dest,
        } = out;
        file.flush()
            .and_then(|_| file.sync_all())
            .map_err(|e| io_err(&tmp, e))?;
        drop(file);
        std::fs::rename(&tmp, &dest).map_err(|e| io_err(&dest, e))?;
        if let Some(dir) = dest.parent() {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| io_err(dir, e))?;
        }
        Ok(dest.display().to_string())
    }

    fn discard_after(&mut self, source: &SourceKey, committed: i64) -> Result<usize> {
        let mut removed = 0;
        let mut stack = vec![self.root.clone()];
        while let Some(dir) = stack.pop() {
            let entries = match std::fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err(&dir, e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| io_err(&dir, e))?;
                let path = entry.path();
                let ft = entry.file_type().map_err(|e| io_err(&path, e))?;
                if ft.is_dir() {
                    stack.push(path);
                    continue;
                }
                let name = entry.file_name().to_string_lossy().into_owned();
                if let Some((topic, partition, first, temp)) = parse_file_name(&name) {
                    if topic == source.topic
                        && partition == source.partition
                        && (temp || first >= committed)
                    {
                        std::fs::remove_file(&path).map_err(|e| io_err(&path, e))?;
                        removed += 1;
                    }
                }
            }
        }
        Ok(removed)
    }

    fn describe(&self) -> String {
        self.root.display().to_string()
    }
}
