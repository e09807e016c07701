//! An independent TensorBoard event-file reader for tests: its own bitwise CRC-32C and
//! protobuf parsing, sharing no code with `splitwise::tensorboard`.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};

pub fn crc32c_bitwise(data: &[u8]) -> u32 {
    const POLY_REFLECTED: u32 = 0x82F6_3B78;
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ POLY_REFLECTED } else { crc >> 1 };
        }
    }
    !crc
}

/// TensorFlow's mask (tensorflow/core/lib/hash/crc32c.h): rotate right 15, add 0xa282ead8.
#[expect(
    clippy::manual_rotate,
    reason = "spelled as in crc32c.h, unlike the writer's rotate_right, so the two stay independent"
)]
pub fn mask(crc: u32) -> u32 {
    ((crc >> 15) | (crc << 17)).wrapping_add(0xa282_ead8)
}

#[derive(Debug, PartialEq)]
pub enum RecordError {
    Truncated { offset: usize },
    LengthCrc { offset: usize, stored: u32, computed: u32 },
    DataCrc { offset: usize, stored: u32, computed: u32 },
}

pub fn le_u32(bytes: &[u8]) -> u32 {
    u32::from_le_bytes(bytes.try_into().expect("caller passes exactly 4 bytes"))
}

/// Splits a TFRecord stream into record payloads, verifying both CRCs of every record.
pub fn read_records(bytes: &[u8]) -> Result<Vec<&[u8]>, RecordError> {
    let mut records = Vec::new();
    let mut offset = 0;
    while offset < bytes.len() {
        let header = bytes.get(offset..offset + 12).ok_or(RecordError::Truncated { offset })?;
        let len_bytes = &header[..8];
        let stored = le_u32(&header[8..12]);
        let computed = mask(crc32c_bitwise(len_bytes));
        if stored != computed {
            return Err(RecordError::LengthCrc { offset, stored, computed });
        }
        let len = u64::from_le_bytes(len_bytes.try_into().expect("8 bytes")) as usize;
        let data_start = offset + 12;
        let data = bytes.get(data_start..data_start + len).ok_or(RecordError::Truncated { offset })?;
        let crc_bytes = bytes.get(data_start + len..data_start + len + 4).ok_or(RecordError::Truncated { offset })?;
        let stored = le_u32(crc_bytes);
        let computed = mask(crc32c_bitwise(data));
        if stored != computed {
            return Err(RecordError::DataCrc { offset, stored, computed });
        }
        records.push(data);
        offset = data_start + len + 4;
    }
    Ok(records)
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FieldValue<'a> {
    Varint(u64),
    Fixed64([u8; 8]),
    Bytes(&'a [u8]),
    Fixed32([u8; 4]),
}

pub fn read_varint(bytes: &[u8], pos: &mut usize) -> Result<u64, String> {
    let mut value = 0u64;
    for group in 0..10 {
        let byte = *bytes.get(*pos).ok_or_else(|| format!("varint runs past the end at byte {}", *pos))?;
        *pos += 1;
        value |= u64::from(byte & 0x7f) << (7 * group);
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(format!("varint longer than 10 bytes ending at {}", *pos))
}

pub fn take<'a>(bytes: &'a [u8], pos: &mut usize, n: usize) -> Result<&'a [u8], String> {
    let slice = bytes.get(*pos..*pos + n).ok_or_else(|| format!("{n} bytes wanted at {} of {}", *pos, bytes.len()))?;
    *pos += n;
    Ok(slice)
}

/// All (field number, value) pairs of one protobuf message, in wire order.
pub fn parse_fields(bytes: &[u8]) -> Result<Vec<(u64, FieldValue<'_>)>, String> {
    let mut fields = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let key = read_varint(bytes, &mut pos)?;
        let (number, wire_type) = (key >> 3, key & 7);
        let value = match wire_type {
            0 => FieldValue::Varint(read_varint(bytes, &mut pos)?),
            1 => FieldValue::Fixed64(take(bytes, &mut pos, 8)?.try_into().expect("8 bytes")),
            2 => {
                let len = read_varint(bytes, &mut pos)? as usize;
                FieldValue::Bytes(take(bytes, &mut pos, len)?)
            }
            5 => FieldValue::Fixed32(take(bytes, &mut pos, 4)?.try_into().expect("4 bytes")),
            other => return Err(format!("unsupported wire type {other} for field {number}")),
        };
        fields.push((number, value));
    }
    Ok(fields)
}

#[derive(Debug, Default)]
pub struct ParsedEvent {
    pub wall_time_s: Option<f64>,
    pub step: i64,
    pub file_version: Option<String>,
    /// (tag, simple_value bits) per Summary.Value.
    pub scalars: Vec<(String, f32)>,
}

/// Decodes the subset of `tensorflow.Event` the writer produces, rejecting any other field so
/// that stray bytes would fail the test (field numbers: event.proto, summary.proto).
pub fn parse_event(bytes: &[u8]) -> Result<ParsedEvent, String> {
    let mut event = ParsedEvent::default();
    for (number, value) in parse_fields(bytes)? {
        match (number, value) {
            (1, FieldValue::Fixed64(raw)) => event.wall_time_s = Some(f64::from_le_bytes(raw)),
            (2, FieldValue::Varint(raw)) => event.step = raw as i64,
            (3, FieldValue::Bytes(raw)) => {
                let text = String::from_utf8(raw.to_vec()).map_err(|e| e.to_string())?;
                event.file_version = Some(text);
            }
            (5, FieldValue::Bytes(summary)) => {
                for (number, value) in parse_fields(summary)? {
                    let FieldValue::Bytes(value_msg) = value else {
                        return Err(format!("Summary field {number}: {value:?}"));
                    };
                    if number != 1 {
                        return Err(format!("unexpected Summary field {number}"));
                    }
                    event.scalars.push(parse_summary_value(value_msg)?);
                }
            }
            other => return Err(format!("unexpected Event field {other:?}")),
        }
    }
    Ok(event)
}

pub fn parse_summary_value(bytes: &[u8]) -> Result<(String, f32), String> {
    let mut tag = None;
    let mut simple_value = None;
    for (number, value) in parse_fields(bytes)? {
        match (number, value) {
            (1, FieldValue::Bytes(raw)) => {
                tag = Some(String::from_utf8(raw.to_vec()).map_err(|e| e.to_string())?);
            }
            (2, FieldValue::Fixed32(raw)) => simple_value = Some(f32::from_le_bytes(raw)),
            other => return Err(format!("unexpected Summary.Value field {other:?}")),
        }
    }
    match (tag, simple_value) {
        (Some(tag), Some(value)) => Ok((tag, value)),
        other => Err(format!("Summary.Value without tag or simple_value: {other:?}")),
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

pub fn only_event_file(dir: &Path) -> PathBuf {
    let files: Vec<PathBuf> =
        fs::read_dir(dir).expect("log dir exists").map(|entry| entry.expect("readable dir entry").path()).collect();
    assert_eq!(files.len(), 1, "expected one event file, found {files:?}");
    files.into_iter().next().expect("one file")
}

pub fn read_events(path: &Path) -> Vec<ParsedEvent> {
    let bytes = fs::read(path).expect("event file readable");
    read_records(&bytes)
        .expect("every record's framing and CRCs are valid")
        .into_iter()
        .enumerate()
        .map(|(i, record)| parse_event(record).unwrap_or_else(|e| panic!("record {i} is not an Event: {e}")))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------
