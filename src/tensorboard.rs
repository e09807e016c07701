//! TensorBoard event-file writer for training scalars (CleanRL/SB3 keys such as
//! `charts/episodic_return` or `losses/policy_loss`, x-axis = global env step).
//!
//! Hand-written rather than the `tensorboard-rs` crate (0.5.9): that crate writes on a background
//! thread (records are lost unless it is flushed/dropped before exit) and depends on protobuf 2.28,
//! which carries RustSec advisory RUSTSEC-2024-0437 (reported by `cargo audit`). The format
//! is small: a TFRecord stream (`tensorflow/core/lib/io/record_writer.cc`) whose records are
//! `Event` protobufs (`tensorflow/core/util/event.proto`) carrying `Summary` scalars
//! (`tensorflow/core/framework/summary.proto`). This writer is synchronous: every record goes
//! through a `BufWriter` on the caller's thread, `flush` pushes it to the OS, and drop flushes
//! on a best-effort basis. `tests/tensorboard_format.rs` reads the files back with an independent
//! parser, and `scripts/check_tensorboard.py` loads them with TensorBoard's `EventAccumulator`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};

/// Written as the first record of every file. TensorBoard's loader only requires the
/// `brain.Event:` prefix; version 2 is what TensorFlow's own `EventsWriter` writes
/// (`tensorflow/core/util/events_writer.cc`, `kVersionPrefix` + `kCurrentVersion`).
pub const FILE_VERSION: &str = "brain.Event:2";

/// Suffix after `events.out.tfevents.<secs>.<host>.<pid>`; TensorBoard discovers any file whose
/// name contains `tfevents`, and the suffix tells people which program wrote it.
pub const FILE_SUFFIX: &str = "splitwise";

/// Name part used when the host name cannot be read (same fallback as the brief's naming rule).
const FALLBACK_HOSTNAME: &str = "localhost";

/// Added to the rotated CRC (`tensorflow/core/lib/hash/crc32c.h`, `kMaskDelta`). Masking keeps a
/// CRC computed over data that itself embeds CRCs from being trivially predictable.
const CRC_MASK_DELTA: u32 = 0xa282_ead8;

/// Protobuf wire types (protobuf encoding guide, "Message Structure").
const WIRE_VARINT: u8 = 0;
const WIRE_FIXED64: u8 = 1;
const WIRE_LEN: u8 = 2;
const WIRE_FIXED32: u8 = 5;

/// Field numbers of `tensorflow.Event` (tensorflow/core/util/event.proto).
const EVENT_WALL_TIME: u32 = 1; // double
const EVENT_STEP: u32 = 2; // int64
const EVENT_FILE_VERSION: u32 = 3; // string (oneof what)
const EVENT_SUMMARY: u32 = 5; // Summary (oneof what)

/// Field numbers of `tensorflow.Summary` and `Summary.Value`
/// (tensorflow/core/framework/summary.proto).
const SUMMARY_VALUE: u32 = 1; // repeated Value
const VALUE_TAG: u32 = 1; // string
const VALUE_SIMPLE_VALUE: u32 = 2; // float (oneof value)

/// Appends TensorBoard scalar events to one `events.out.tfevents.*` file.
pub struct EventWriter {
    path: PathBuf,
    out: BufWriter<File>,
    /// Reused encoding buffer so that `add_scalar` does not allocate once warmed up.
    payload: Vec<u8>,
}

impl EventWriter {
    /// Creates `dir` if missing and a new event file in it named
    /// `events.out.tfevents.<unix_seconds>.<hostname>.<pid>.splitwise` (TensorFlow's naming,
    /// `events_writer.cc`), then writes the `file_version` record. An existing file is never
    /// overwritten: on a name clash (a second writer in the same second and process) a numeric
    /// suffix is appended, which sorts after the first file, as TensorBoard reads them in name order.
    pub fn create(dir: &Path) -> Result<Self> {
        fs::create_dir_all(dir).with_context(|| format!("creating TensorBoard log directory {}", dir.display()))?;
        let wall_time_s = unix_time_s()?;
        // Truncation to whole seconds is intended: the name carries the start second only.
        let base =
            format!("events.out.tfevents.{}.{}.{}.{FILE_SUFFIX}", wall_time_s as u64, hostname(), std::process::id());
        let (path, file) = create_new_file(dir, &base)?;
        let mut writer = Self { path, out: BufWriter::new(file), payload: Vec::with_capacity(128) };
        writer.payload.clear();
        encode_file_version_event(&mut writer.payload, wall_time_s);
        writer.write_payload()?;
        // Make the file recognisable to TensorBoard at once, even if nothing else is logged.
        writer.flush()?;
        Ok(writer)
    }

    /// The event file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one scalar. `value` is stored as the `float` `simple_value` (TensorBoard's scalar
    /// type), so it is rounded to f32. `step` is the global env step; protobuf's `int64` holds
    /// steps up to `i64::MAX`.
    pub fn add_scalar(&mut self, tag: &str, value: f64, step: u64) -> Result<()> {
        let Ok(step) = i64::try_from(step) else {
            bail!(
                "TensorBoard step {step} for tag {tag:?} exceeds the int64 maximum {} (event.proto `int64 step`)",
                i64::MAX
            );
        };
        let wall_time_s = unix_time_s()?;
        self.payload.clear();
        encode_scalar_event(&mut self.payload, wall_time_s, step, tag, value as f32);
        self.write_payload().with_context(|| format!("writing scalar {tag:?} at step {step}"))
    }

    /// Pushes buffered records to the operating system.
    pub fn flush(&mut self) -> Result<()> {
        self.out.flush().with_context(|| format!("flushing TensorBoard event file {}", self.path.display()))
    }

    /// Flushes and syncs the file: the events so far survive a crash or power loss.
    pub fn sync(&mut self) -> Result<()> {
        self.flush()?;
        self.out
            .get_ref()
            .sync_data()
            .with_context(|| format!("syncing TensorBoard event file {}", self.path.display()))
    }

    fn write_payload(&mut self) -> Result<()> {
        write_record(&mut self.out, &self.payload)
            .with_context(|| format!("writing TensorBoard event file {}", self.path.display()))
    }
}

impl Drop for EventWriter {
    fn drop(&mut self) {
        // Best effort: a drop cannot report errors; callers that care call `flush` first.
        let _ = self.out.flush();
    }
}

fn unix_time_s() -> Result<f64> {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs_f64())
        .context("system clock is before the Unix epoch; TensorBoard wall_time would be negative")
}

/// Host name for the file name, without pulling in a crate: Linux exposes it in procfs, shells
/// export `HOSTNAME`; anything else gets the fallback. Characters that are unsafe in a file
/// name are replaced so the name stays one path component.
fn hostname() -> String {
    let raw = fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| FALLBACK_HOSTNAME.to_owned());
    raw.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_' { c } else { '_' }).collect()
}

fn create_new_file(dir: &Path, base: &str) -> Result<(PathBuf, File)> {
    // A handful of attempts is plenty: a clash needs the same second and the same process id.
    const MAX_ATTEMPTS: u32 = 100;
    for attempt in 0..MAX_ATTEMPTS {
        let name = if attempt == 0 { base.to_owned() } else { format!("{base}.{attempt}") };
        let path = dir.join(name);
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(file) => return Ok((path, file)),
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(err) => {
                return Err(err).with_context(|| format!("creating TensorBoard event file {}", path.display()));
            }
        }
    }
    bail!(
        "creating TensorBoard event file in {}: {base} and {MAX_ATTEMPTS} numbered variants already exist",
        dir.display()
    )
}

/// Name prefix of the temporary file [`purge_after`] rewrites into.
const PURGE_TMP_PREFIX: &str = ".purge-tmp-";

/// Removes, from every event file in `dir`, the events logged after `last_step`, and a torn
/// last record: what a run killed after its last checkpoint left and will log again once
/// resumed from it. TensorFlow's writers do this with `purge_step` (a `SessionLog.START` that
/// tells TensorBoard to drop later events); rewriting the files instead keeps them correct for
/// every reader. Each changed file is rewritten aside, synced and renamed over the old one.
/// Returns how many events were removed.
pub fn purge_after(dir: &Path, last_step: u64) -> Result<usize> {
    let mut removed = 0;
    if !dir.is_dir() {
        return Ok(0);
    }
    let mut paths: Vec<PathBuf> = fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("events.out.tfevents.")))
        .collect();
    paths.sort();
    // A rewrite killed before its rename leaves only its hidden temporary file.
    for entry in fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?.flatten() {
        if entry.file_name().to_string_lossy().starts_with(PURGE_TMP_PREFIX) {
            fs::remove_file(entry.path()).with_context(|| format!("cannot delete {}", entry.path().display()))?;
        }
    }
    for path in paths {
        let bytes = fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let mut kept = Vec::with_capacity(bytes.len());
        let mut dropped = 0;
        let mut pos = 0;
        while let Some((record, next)) = next_record(&bytes, pos) {
            // An event without a step field has step 0 (protobuf default): the file_version.
            let step = event_step(record).unwrap_or(0);
            if step <= last_step {
                kept.extend_from_slice(&bytes[pos..next]);
            } else {
                dropped += 1;
            }
            pos = next;
        }
        let torn = pos < bytes.len();
        if dropped == 0 && !torn {
            continue;
        }
        // Not named `*tfevents*`, so TensorBoard never reads a half-written rewrite.
        let tmp = dir.join(format!("{PURGE_TMP_PREFIX}{}", std::process::id()));
        let mut f = File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        f.write_all(&kept).with_context(|| format!("cannot write {}", tmp.display()))?;
        f.sync_all().with_context(|| format!("cannot sync {}", tmp.display()))?;
        fs::rename(&tmp, &path).with_context(|| format!("cannot replace {}", path.display()))?;
        removed += dropped;
    }
    Ok(removed)
}

/// The record starting at `pos` and where the next one starts, if it is complete and both of
/// its CRCs check.
fn next_record(bytes: &[u8], pos: usize) -> Option<(&[u8], usize)> {
    let len_bytes = bytes.get(pos..pos + 8)?;
    let len_crc = u32::from_le_bytes(bytes.get(pos + 8..pos + 12)?.try_into().ok()?);
    if masked_crc32c(len_bytes) != len_crc {
        return None;
    }
    let len = usize::try_from(u64::from_le_bytes(len_bytes.try_into().ok()?)).ok()?;
    let start = pos + 12;
    let end = start.checked_add(len)?;
    let data = bytes.get(start..end)?;
    let data_crc = u32::from_le_bytes(bytes.get(end..end + 4)?.try_into().ok()?);
    (masked_crc32c(data) == data_crc).then_some((data, end + 4))
}

/// The `step` field of an encoded `Event`, if present.
fn event_step(event: &[u8]) -> Option<u64> {
    let mut pos = 0;
    while pos < event.len() {
        let key = get_varint(event, &mut pos)?;
        let (field, wire) = (key >> 3, (key & 7) as u8);
        match wire {
            WIRE_VARINT => {
                let v = get_varint(event, &mut pos)?;
                if field == u64::from(EVENT_STEP) {
                    return Some(v);
                }
            }
            WIRE_FIXED64 => pos += 8,
            WIRE_FIXED32 => pos += 4,
            WIRE_LEN => pos += usize::try_from(get_varint(event, &mut pos)?).ok()?,
            _ => return None,
        }
    }
    None
}

fn get_varint(bytes: &[u8], pos: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for group in 0..10 {
        let byte = *bytes.get(*pos)?;
        *pos += 1;
        value |= u64::from(byte & 0x7f) << (7 * group);
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// TFRecord framing (`record_writer.cc`): `u64 len LE | u32 masked_crc(len) | data |
/// u32 masked_crc(data)`, all little-endian.
fn write_record(out: &mut impl Write, data: &[u8]) -> io::Result<()> {
    let len_bytes = (data.len() as u64).to_le_bytes();
    out.write_all(&len_bytes)?;
    out.write_all(&masked_crc32c(&len_bytes).to_le_bytes())?;
    out.write_all(data)?;
    out.write_all(&masked_crc32c(data).to_le_bytes())
}

/// CRC-32C (Castagnoli) masked as in `tensorflow/core/lib/hash/crc32c.h` `Mask`: rotate right
/// by 15 bits, then add the mask delta.
fn masked_crc32c(data: &[u8]) -> u32 {
    mask_crc(crc32c::crc32c(data))
}

fn mask_crc(crc: u32) -> u32 {
    crc.rotate_right(15).wrapping_add(CRC_MASK_DELTA)
}

/// Base-128 varint, least significant group first (protobuf encoding guide, "Base 128 Varints").
fn put_varint(buf: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        buf.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    buf.push(value as u8);
}

fn varint_len(value: u64) -> usize {
    // One byte per started group of 7 bits; zero still takes one byte.
    let bits = 64 - value.leading_zeros() as usize;
    bits.div_ceil(7).max(1)
}

fn put_key(buf: &mut Vec<u8>, field: u32, wire_type: u8) {
    put_varint(buf, (u64::from(field) << 3) | u64::from(wire_type));
}

fn put_len_prefix(buf: &mut Vec<u8>, field: u32, len: usize) {
    put_key(buf, field, WIRE_LEN);
    put_varint(buf, len as u64);
}

fn put_wall_time(buf: &mut Vec<u8>, wall_time_s: f64) {
    put_key(buf, EVENT_WALL_TIME, WIRE_FIXED64);
    buf.extend_from_slice(&wall_time_s.to_le_bytes());
}

/// Field keys used here are all single-byte (field number < 16), which the length arithmetic
/// in `encode_scalar_event` relies on.
const KEY_LEN: usize = 1;

fn encode_file_version_event(buf: &mut Vec<u8>, wall_time_s: f64) {
    put_wall_time(buf, wall_time_s);
    put_len_prefix(buf, EVENT_FILE_VERSION, FILE_VERSION.len());
    buf.extend_from_slice(FILE_VERSION.as_bytes());
}

fn encode_scalar_event(buf: &mut Vec<u8>, wall_time_s: f64, step: i64, tag: &str, value: f32) {
    // Nested lengths are computed up front so the message is written in one pass without
    // temporary buffers: Value = tag + simple_value, Summary = one Value.
    let value_len = KEY_LEN + varint_len(tag.len() as u64) + tag.len() + KEY_LEN + 4;
    let summary_len = KEY_LEN + varint_len(value_len as u64) + value_len;

    put_wall_time(buf, wall_time_s);
    put_key(buf, EVENT_STEP, WIRE_VARINT);
    // int64 is encoded as the two's-complement bit pattern; steps here are never negative.
    put_varint(buf, step as u64);
    put_len_prefix(buf, EVENT_SUMMARY, summary_len);
    put_len_prefix(buf, SUMMARY_VALUE, value_len);
    put_len_prefix(buf, VALUE_TAG, tag.len());
    buf.extend_from_slice(tag.as_bytes());
    put_key(buf, VALUE_SIMPLE_VALUE, WIRE_FIXED32);
    buf.extend_from_slice(&value.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(value: u64) -> Vec<u8> {
        let mut buf = Vec::new();
        put_varint(&mut buf, value);
        buf
    }

    #[test]
    fn varint_matches_protobuf_guide_examples() {
        // Protobuf encoding guide: 1 -> 01, 150 -> 96 01 (150 = 0b1_0010110: low group 0x16 with
        // the continuation bit = 0x96, then 1).
        assert_eq!(varint(0), [0x00]);
        assert_eq!(varint(1), [0x01]);
        assert_eq!(varint(127), [0x7f]);
        assert_eq!(varint(128), [0x80, 0x01]);
        assert_eq!(varint(150), [0x96, 0x01]);
        assert_eq!(varint(300), [0xac, 0x02]);
        // 2^32 = bit 32 set: groups of 7 bits -> four zero groups with continuation, then
        // 2^(32-28) = 16 = 0x10.
        assert_eq!(varint(1 << 32), [0x80, 0x80, 0x80, 0x80, 0x10]);
        // u64::MAX: 64 bits -> nine full groups (0xff) and a final group holding bit 63 (0x01).
        let mut max = vec![0xff; 9];
        max.push(0x01);
        assert_eq!(varint(u64::MAX), max);
    }

    #[test]
    fn varint_len_agrees_with_encoder() {
        for value in [0, 1, 127, 128, 16_383, 16_384, 1 << 32, i64::MAX as u64, u64::MAX] {
            assert_eq!(varint_len(value), varint(value).len(), "value {value}");
        }
    }

    #[test]
    fn masked_crc_of_check_string() {
        // CRC-32C check value for "123456789" is 0xE3069283 (RFC 3720 appendix B.4 /
        // the CRC catalogue). Masking by hand:
        //   rotate right 15: (0xE3069283 >> 15) | (0xE3069283 << 17) mod 2^32
        //     0xE3069283 >> 15 = 0x0001C60D
        //     0xE3069283 << 17 = 0x25060000 (low 15 bits of 0x...9283 shifted: 0x1283 << 17)
        //     rotated = 0x2507C60D
        //   + 0xA282EAD8 = 0xC78AB0E5 (no carry out of bit 31).
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(mask_crc(0xE306_9283), 0xC78A_B0E5);
        assert_eq!(masked_crc32c(b"123456789"), 0xC78A_B0E5);
        // Empty input: CRC 0, so the masked value is the delta itself.
        assert_eq!(masked_crc32c(b""), CRC_MASK_DELTA);
    }

    #[test]
    fn scalar_event_bytes_match_hand_encoding() {
        let mut buf = Vec::new();
        encode_scalar_event(&mut buf, 1.5, 300, "a/b", -2.0);
        let mut expected = vec![0x09]; // field 1, fixed64
        expected.extend_from_slice(&1.5f64.to_le_bytes());
        expected.extend_from_slice(&[0x10, 0xac, 0x02]); // field 2 varint, 300
        // Value = 0a 03 'a/b' 15 <f32> = 2 + 3 + 1 + 4 = 10 bytes; Summary = 0a 0a <Value> = 12.
        expected.extend_from_slice(&[0x2a, 12, 0x0a, 10, 0x0a, 3, b'a', b'/', b'b', 0x15]);
        expected.extend_from_slice(&(-2.0f32).to_le_bytes());
        assert_eq!(buf, expected);
    }

    #[test]
    fn record_framing_carries_length_and_both_crcs() {
        let mut out = Vec::new();
        write_record(&mut out, b"xyz").unwrap();
        assert_eq!(out.len(), 8 + 4 + 3 + 4);
        assert_eq!(&out[..8], &3u64.to_le_bytes());
        assert_eq!(&out[8..12], &masked_crc32c(&3u64.to_le_bytes()).to_le_bytes());
        assert_eq!(&out[12..15], b"xyz");
        assert_eq!(&out[15..], &masked_crc32c(b"xyz").to_le_bytes());
    }

    #[test]
    fn step_beyond_int64_is_an_error_naming_the_tag() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = EventWriter::create(dir.path()).unwrap();
        let err = writer.add_scalar("charts/sps", 1.0, u64::MAX).unwrap_err();
        let message = format!("{err:#}");
        assert!(message.contains("charts/sps"), "{message}");
        assert!(message.contains("int64"), "{message}");
    }

    #[test]
    fn second_writer_in_same_directory_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let first = EventWriter::create(dir.path()).unwrap();
        let second = EventWriter::create(dir.path()).unwrap();
        assert_ne!(first.path(), second.path());
        let name = first.path().file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with("events.out.tfevents."), "{name}");
        assert!(name.contains(&format!(".{}.", std::process::id())), "{name}");
    }

    #[test]
    fn purge_after_drops_later_steps_and_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = {
            let mut w = EventWriter::create(dir.path()).unwrap();
            for step in [64u64, 128, 192, 256] {
                w.add_scalar("a", step as f64, step).unwrap();
                w.add_scalar("b", 1.0, step).unwrap();
            }
            w.flush().unwrap();
            w.path().to_path_buf()
        };
        // A kill mid-write leaves half a record at the end.
        let mut bytes = fs::read(&path).unwrap();
        let mut extra = Vec::new();
        encode_scalar_event(&mut extra, 0.0, 300, "a", 1.0);
        let mut framed = Vec::new();
        write_record(&mut framed, &extra).unwrap();
        bytes.extend_from_slice(&framed[..framed.len() / 2]);
        fs::write(&path, &bytes).unwrap();
        assert_eq!(purge_after(dir.path(), 128).unwrap(), 4);
        let bytes = fs::read(&path).unwrap();
        let mut steps = Vec::new();
        let mut pos = 0;
        while let Some((record, next)) = next_record(&bytes, pos) {
            steps.push(event_step(record).unwrap_or(0));
            pos = next;
        }
        assert_eq!(pos, bytes.len(), "no torn record left");
        assert_eq!(steps, vec![0, 64, 64, 128, 128], "file_version, then steps <= 128");
        assert_eq!(purge_after(dir.path(), 128).unwrap(), 0, "idempotent");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file left");
    }
}
