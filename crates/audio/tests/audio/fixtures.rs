//! Files written by real encoders (see `tests/fixtures/README.md`), measured without any
//! external tool.

use std::time::Duration;

use oneflow_audio::{AudioFormat, Codec, inspect};

pub(crate) fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn assert_between(actual: Duration, low_ms: u64, high_ms: u64) {
    assert!(
        actual >= Duration::from_millis(low_ms) && actual <= Duration::from_millis(high_ms),
        "{actual:?} not in {low_ms}..={high_ms} ms"
    );
}

#[test]
fn browser_style_live_webm_is_measured_from_its_blocks() {
    let info = inspect(fixture("tone-1s-live.webm"), Some(AudioFormat::Mp3)).unwrap();
    assert_eq!((info.format, info.codec), (AudioFormat::Webm, Codec::Opus));
    assert_eq!(info.sample_rate, Some(48_000));
    // One second of tone, rounded up to 20 ms Opus packets.
    assert_between(info.duration, 1000, 1020);
}

#[test]
fn vbr_mp3_without_xing_is_counted_frame_by_frame() {
    let info = inspect(fixture("tone-1s-vbr-noxing.mp3"), None).unwrap();
    assert_eq!((info.format, info.codec), (AudioFormat::Mp3, Codec::Mp3));
    assert_eq!(info.sample_rate, Some(22_050));
    // LAME adds its delay and pads to whole 576-sample frames; ffprobe, going by the first
    // frame's bit rate, says 1.066 s, which is wrong.
    assert_between(info.duration, 1000, 1080);
}

#[test]
fn m4a_is_measured_from_its_sample_table() {
    let info = inspect(fixture("tone-1s.m4a"), None).unwrap();
    assert_eq!((info.format, info.codec), (AudioFormat::M4a, Codec::Aac));
    assert_eq!(info.sample_rate, Some(16_000));
    // The AAC encoder's 1024-sample priming counts, as for the providers.
    assert_between(info.duration, 1000, 1130);
}
