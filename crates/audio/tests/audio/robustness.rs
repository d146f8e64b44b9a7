//! Hostile input: random bytes, cut files and flipped bytes must give an answer or a clean
//! error, never a panic, for every format.

use std::sync::LazyLock;
use std::time::Duration;

use oneflow_audio::generate::synthesize;
use oneflow_audio::{AudioError, AudioFormat, inspect, sniff};
use proptest::prelude::*;

use crate::fixtures::fixture;

/// One short file of each generated format and each encoder fixture, loaded once.
fn samples() -> Vec<(AudioFormat, Vec<u8>)> {
    static SAMPLES: LazyLock<Vec<(AudioFormat, Vec<u8>)>> = LazyLock::new(|| {
        [
            AudioFormat::Wav,
            AudioFormat::Flac,
            AudioFormat::Mp3,
            AudioFormat::Aac,
            AudioFormat::Opus,
        ]
        .into_iter()
        .map(|f| (f, synthesize(f, Duration::from_millis(700), 24_000).unwrap()))
        .chain([
            (AudioFormat::Webm, fixture("tone-1s-live.webm")),
            (AudioFormat::M4a, fixture("tone-1s.m4a")),
            (AudioFormat::Mp3, fixture("tone-1s-vbr-noxing.mp3")),
        ])
        .collect()
    });
    SAMPLES.clone()
}

fn check(bytes: Vec<u8>, hint: Option<AudioFormat>) {
    match inspect(bytes, hint) {
        Ok(info) => assert!(info.duration < Duration::from_secs(3600)),
        Err(e) => assert!(e.is_client_error(), "bytes are the client's: {e}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = sniff(&bytes);
        check(bytes.clone(), None);
        check(bytes, Some(AudioFormat::Pcm));
    }

    #[test]
    fn random_bytes_behind_a_real_signature_never_panic(
        which in 0usize..8,
        keep in 0usize..64,
        tail in proptest::collection::vec(any::<u8>(), 0..4096),
    ) {
        let (_, mut bytes) = samples().swap_remove(which);
        bytes.truncate(keep);
        bytes.extend_from_slice(&tail);
        check(bytes, None);
    }

    #[test]
    fn cut_files_measure_no_more_than_the_whole(which in 0usize..8, cut in 0.0f64..1.0) {
        let (format, bytes) = samples().swap_remove(which);
        let whole = inspect(bytes.clone(), None).unwrap().duration;
        let at = (bytes.len() as f64 * cut) as usize;
        match inspect(bytes[..at].to_vec(), None) {
            Ok(info) => prop_assert!(info.duration <= whole, "{format}: {:?} > {:?}", info.duration, whole),
            Err(e) => prop_assert!(e.is_client_error()),
        }
    }

    #[test]
    fn flipped_bytes_never_panic(which in 0usize..8, at in 0usize..2048, value in any::<u8>()) {
        let (_, mut bytes) = samples().swap_remove(which);
        let at = at % bytes.len();
        bytes[at] = value;
        check(bytes, None);
    }
}

#[test]
fn unknown_bytes_are_unrecognized_not_corrupt() {
    assert!(matches!(
        inspect(b"%PDF-1.7 not audio".to_vec(), None),
        Err(AudioError::Unrecognized)
    ));
    // A name that claims audio changes nothing: bytes decide.
    assert!(matches!(
        inspect(b"%PDF-1.7 not audio".to_vec(), Some(AudioFormat::Mp3)),
        Err(AudioError::Unrecognized)
    ));
}

#[test]
fn a_wav_header_promising_hours_is_measured_by_its_data() {
    let mut bytes = synthesize(AudioFormat::Wav, Duration::from_secs(1), 8_000).unwrap();
    // Claim a 4 GB data chunk; only one second of samples follows.
    bytes[40..44].copy_from_slice(&u32::MAX.to_le_bytes());
    let measured = inspect(bytes, None).unwrap().duration;
    assert!(measured <= Duration::from_millis(1001), "{measured:?}");
}

#[test]
fn a_cut_ogg_opus_is_measured_to_its_last_whole_page() {
    let bytes = synthesize(AudioFormat::Opus, Duration::from_secs(5), 48_000).unwrap();
    let half = inspect(bytes[..bytes.len() / 2].to_vec(), None).unwrap().duration;
    assert!(
        half > Duration::from_secs(1) && half < Duration::from_secs(4),
        "{half:?}"
    );
}

#[test]
fn a_corrupted_ogg_page_is_reported_as_corrupt() {
    let mut bytes = synthesize(AudioFormat::Opus, Duration::from_secs(2), 48_000).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xFF;
    let err = inspect(bytes, None).unwrap_err();
    assert!(
        matches!(
            err,
            AudioError::Corrupt {
                format: AudioFormat::Opus,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("checksum"));
}

#[test]
fn a_pcm_hint_is_trusted_even_when_quiet_samples_look_like_mpeg_sync() {
    // Samples of -1 are FF FF: an MPEG-1 Layer I sync word to a sniffer.
    let mut quiet = Vec::new();
    for _ in 0..24_000 {
        quiet.extend_from_slice(&(-1i16).to_le_bytes());
    }
    let info = inspect(quiet, Some(AudioFormat::Pcm)).unwrap();
    assert_eq!((info.format, info.duration), (AudioFormat::Pcm, Duration::from_secs(1)));
}
