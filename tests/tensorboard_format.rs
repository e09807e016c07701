//! Reads event files written by `splitwise::tensorboard::EventWriter` back with an independent
//! reader and checks them byte for byte: TFRecord framing, both masked CRC-32C values of every
//! record, the `file_version` record, and every scalar's tag, step and float value.
//!
//! The reader shares no code with the writer on purpose: its CRC-32C is a bitwise
//! implementation of the Castagnoli polynomial (reflected 0x82F63B78, RFC 3720 appendix B.4)
//! rather than the `crc32c` crate, and its protobuf parser is written from the encoding guide.
//! A shared helper would let one bug hide itself on both sides.
//!
//! Set `SPLITWISE_KEEP_TB_DIR=/some/dir` to keep a copy of the event file written by
//! `scalars_round_trip_exactly`, e.g. to load it with `scripts/check_tensorboard.py /some/dir`.

use std::fs;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use splitwise::tensorboard::EventWriter;

mod common;
use common::tfevents::*;

// ---------------------------------------------------------------------------------------------
// Independent reader
// ---------------------------------------------------------------------------------------------

/// Bitwise CRC-32C: reflected input/output, init and final XOR 0xFFFFFFFF.
fn now_s() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("test machine clock after 1970").as_secs_f64()
}

#[test]
fn reader_crc_matches_published_check_value() {
    // CRC-32C check value of "123456789" (RFC 3720 B.4, CRC catalogue "CRC-32/ISCSI").
    assert_eq!(crc32c_bitwise(b"123456789"), 0xE306_9283);
    // 32 zero bytes: RFC 3720 B.4 lists 0x8A9136AA (stored there byte-reversed as aa 36 91 8a).
    assert_eq!(crc32c_bitwise(&[0u8; 32]), 0x8A91_36AA);
    // 32 bytes of 0xFF: RFC 3720 B.4 lists 0x62A8AB43.
    assert_eq!(crc32c_bitwise(&[0xFFu8; 32]), 0x62A8_AB43);
}

#[test]
fn scalars_round_trip_exactly() {
    let root = tempfile::tempdir().expect("temp dir");
    // A nested, not yet existing directory: the writer must create it.
    let log_dir = root.path().join("runs").join("ppo_seed1");
    let before_s = now_s();

    // (tag, value, step): CleanRL keys, negative and signed-zero values, extremes of f32, a value
    // that is not representable in f32 (rounded on write), and steps beyond 2^32.
    let mut expected: Vec<(String, f64, u64)> = vec![
        ("charts/episodic_return".into(), -123.456, 0),
        ("charts/sps".into(), 98_765.0, 1),
        ("losses/policy_loss".into(), -0.0, 2),
        ("losses/value_loss".into(), 0.1, 2048),
        ("losses/approx_kl".into(), 1e-12, (1u64 << 32) + 7),
        ("losses/entropy".into(), f64::from(f32::MAX), 1u64 << 40),
        ("losses/explained_variance".into(), -f64::from(f32::MIN_POSITIVE), 5_000_000_000),
        ("env/latency_p95_s".into(), f64::INFINITY, i64::MAX as u64),
        ("env/backlog".into(), f64::NEG_INFINITY, 3),
        ("charts/episodic_return".into(), 42.0, 4096),
    ];
    // Many tags, including multi-byte UTF-8 and a tag long enough to need a 2-byte length varint.
    for i in 0..60u64 {
        expected.push((format!("env/metric_{i:02}"), i as f64 * -1.25, i * 1_000_003));
    }
    expected.push(("env/énergie_j".into(), 3.5, 77));
    expected.push((format!("long/{}", "x".repeat(200)), 7.0, 78));

    let path = {
        let mut writer = EventWriter::create(&log_dir).expect("writer created");
        for (tag, value, step) in &expected {
            writer.add_scalar(tag, *value, *step).expect("scalar written");
        }
        writer.flush().expect("flushed");
        writer.path().to_owned()
    };
    let after_s = now_s();

    assert_eq!(only_event_file(&log_dir), path);
    let events = read_events(&path);
    assert_eq!(events.len(), 1 + expected.len(), "file_version + one record per scalar");

    // Clock sanity only: wall times lie between the instants read before and after writing,
    // with 1 s slack in case the system clock is stepped meanwhile.
    for (i, event) in events.iter().enumerate() {
        let wall_time_s = event.wall_time_s.expect("every event carries wall_time");
        assert!(
            wall_time_s >= before_s - 1.0 && wall_time_s <= after_s + 1.0,
            "record {i}: wall_time {wall_time_s} outside [{before_s}, {after_s}]"
        );
    }

    let header = &events[0];
    assert_eq!(header.file_version.as_deref(), Some("brain.Event:2"));
    assert_eq!(header.step, 0);
    assert!(header.scalars.is_empty());

    // File name: events.out.tfevents.<secs>.<host>.<pid>.splitwise, where <secs> is the whole
    // second of the file_version record's wall time.
    let name = path.file_name().expect("file name").to_string_lossy().into_owned();
    let rest = name.strip_prefix("events.out.tfevents.").unwrap_or_else(|| panic!("name {name}"));
    let rest = rest.strip_suffix(".splitwise").unwrap_or_else(|| panic!("name {name}"));
    let (secs, rest) = rest.split_once('.').expect("seconds field");
    let pid_suffix = format!(".{}", std::process::id());
    let host = rest.strip_suffix(&pid_suffix).unwrap_or_else(|| panic!("name {name} lacks pid"));
    assert!(!host.is_empty() && !host.contains('/'), "host part {host:?}");
    assert_eq!(secs.parse::<u64>().expect("numeric seconds"), header.wall_time_s.expect("wall time") as u64);

    for (i, ((tag, value, step), event)) in expected.iter().zip(&events[1..]).enumerate() {
        assert_eq!(event.file_version, None, "scalar record {i}");
        assert_eq!(event.step, *step as i64, "scalar record {i} ({tag})");
        assert_eq!(event.scalars.len(), 1, "scalar record {i}");
        let (read_tag, read_value) = &event.scalars[0];
        assert_eq!(read_tag, tag, "scalar record {i}");
        // Bit-exact: the stored float is the f64 rounded to nearest f32 (IEEE 754 conversion),
        // which also keeps the sign of -0.0.
        assert_eq!(
            read_value.to_bits(),
            (*value as f32).to_bits(),
            "scalar record {i} ({tag}): read {read_value}, wrote {value}"
        );
    }
    // The values really went through f32: 0.1 has no exact f32, so the stored value differs
    // from the f64 that was passed in (f32 0.1 = 0.100000001490116...).
    assert_eq!(events[4].scalars[0].1, 0.1f32);
    assert_ne!(f64::from(events[4].scalars[0].1), 0.1);
    assert_eq!(events[2].scalars[0].1, 98_765.0);

    if let Some(keep) = std::env::var_os("SPLITWISE_KEEP_TB_DIR") {
        let keep = PathBuf::from(keep);
        fs::create_dir_all(&keep).expect("keep dir");
        fs::copy(&path, keep.join(path.file_name().expect("name"))).expect("copy kept");
    }
}

#[test]
fn records_reach_disk_when_writer_is_dropped_without_flush() {
    let dir = tempfile::tempdir().expect("temp dir");
    {
        let mut writer = EventWriter::create(dir.path()).expect("writer created");
        for step in 0..100u64 {
            writer.add_scalar("charts/sps", step as f64, step * 512).expect("scalar written");
        }
        // No explicit flush: Drop must push the BufWriter contents.
    }
    let events = read_events(&only_event_file(dir.path()));
    assert_eq!(events.len(), 101);
    let last = events.last().expect("records");
    assert_eq!(last.step, 99 * 512);
    assert_eq!(last.scalars, [("charts/sps".to_owned(), 99.0f32)]);
}

#[test]
fn reader_detects_corrupted_bytes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = {
        let mut writer = EventWriter::create(dir.path()).expect("writer created");
        writer.add_scalar("charts/episodic_return", 1.0, 10).expect("written");
        writer.add_scalar("losses/value_loss", 2.0, 20).expect("written");
        writer.flush().expect("flushed");
        writer.path().to_owned()
    };
    let good = fs::read(&path).expect("readable");
    let records = read_records(&good).expect("uncorrupted file reads");
    assert_eq!(records.len(), 3);
    // Offset of the second record: first record = 8 len + 4 crc + payload + 4 crc.
    let second = 12 + records[0].len() + 4;

    // A flipped bit inside the second record's payload: data CRC mismatch at that record.
    let mut bad = good.clone();
    bad[second + 12 + 5] ^= 0x01;
    assert!(
        matches!(read_records(&bad), Err(RecordError::DataCrc { offset, .. }) if offset == second),
        "{:?}",
        read_records(&bad)
    );

    // A flipped bit in the length: caught by the length CRC before the length is trusted.
    let mut bad = good.clone();
    bad[second] ^= 0x02;
    assert!(
        matches!(read_records(&bad), Err(RecordError::LengthCrc { offset, .. }) if offset == second),
        "{:?}",
        read_records(&bad)
    );

    // A flipped bit in the stored data CRC of the first record.
    let mut bad = good.clone();
    bad[12 + records[0].len()] ^= 0x80;
    assert!(matches!(read_records(&bad), Err(RecordError::DataCrc { offset: 0, .. })));

    // A cut-off file is reported as truncated, not read as fewer records.
    let cut = &good[..good.len() - 2];
    assert!(matches!(read_records(cut), Err(RecordError::Truncated { .. })));
}
