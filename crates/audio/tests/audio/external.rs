//! Cross-checks against ffmpeg/ffprobe when they are installed (`apt-get install ffmpeg`).
//! They are an independent implementation of every format here; the core tests do not need
//! them, so without them these tests print a notice and pass.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use oneflow_audio::generate::synthesize;
use oneflow_audio::{AudioFormat, duration, inspect};

fn tool(name: &str) -> bool {
    let found = Command::new(name)
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("notice: `{name}` is not installed; skipping the cross-check against it");
    }
    found
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("oneflow-audio-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// ffprobe's idea of the container duration, in seconds; `None` when it has none (live WebM).
fn ffprobe_duration(path: &PathBuf) -> Option<f64> {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "default=nw=1:nk=1",
        ])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// Decodes the whole file with ffmpeg; returns its complaints (empty when clean) and the
/// number of decoded samples.
fn ffmpeg_decode(path: &PathBuf) -> (String, u64) {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-v", "error", "-i"])
        .arg(path)
        .args(["-f", "s16le", "-ac", "1", "-"])
        .output()
        .unwrap();
    (
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.stdout.len() as u64 / 2,
    )
}

#[test]
fn ffmpeg_decodes_every_generated_format_cleanly() {
    if !tool("ffmpeg") || !tool("ffprobe") {
        return;
    }
    let wanted = Duration::from_millis(2500);
    for (format, rate) in [
        (AudioFormat::Wav, 24_000),
        (AudioFormat::Flac, 44_100),
        (AudioFormat::Mp3, 24_000),
        (AudioFormat::Mp3, 44_100),
        (AudioFormat::Aac, 24_000),
        (AudioFormat::Opus, 24_000),
    ] {
        let bytes = synthesize(format, wanted, rate).unwrap();
        let path = scratch(&format!("generated-{rate}.{}", format.extension()));
        std::fs::write(&path, &bytes).unwrap();
        let (complaints, samples) = ffmpeg_decode(&path);
        assert!(
            complaints.is_empty(),
            "{format}@{rate}: ffmpeg complained: {complaints}"
        );
        // ffmpeg resamples Opus to 48 kHz; everything else keeps its rate.
        let out_rate = if format == AudioFormat::Opus {
            48_000.0
        } else {
            f64::from(rate)
        };
        let decoded = samples as f64 / out_rate;
        // Lossless formats and Opus (pre-skip and end trim applied) decode exactly; MP3 and
        // AAC to within one frame.
        let frame = match format {
            AudioFormat::Mp3 if rate >= 32_000 => 1152.0 / f64::from(rate),
            AudioFormat::Mp3 => 576.0 / f64::from(rate),
            AudioFormat::Aac => 1024.0 / f64::from(rate),
            _ => 0.0,
        };
        assert!(
            (decoded - 2.5).abs() <= frame + 1e-6,
            "{format}@{rate}: ffmpeg decoded {decoded} s, tolerance {frame} s"
        );
        if format != AudioFormat::Aac {
            // ADTS has no duration field; ffprobe estimates it from the bit rate.
            let probed = ffprobe_duration(&path).expect("ffprobe reports a duration");
            assert!((probed - 2.5).abs() < 0.1, "{format}@{rate}: ffprobe says {probed} s");
        }
    }
}

/// Encodes a 3.2 s tone with ffmpeg into `name` and returns the bytes.
fn ffmpeg_encode(name: &str, args: &[&str]) -> Option<Vec<u8>> {
    let path = scratch(name);
    let status = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=300:duration=3.2",
        ])
        .args(args)
        .arg(&path)
        .status()
        .ok()?;
    if !status.success() {
        eprintln!("notice: this ffmpeg cannot write {name} ({args:?}); skipping it");
        return None;
    }
    std::fs::read(&path).ok()
}

#[test]
fn durations_of_real_encoder_output_match_ffprobe() {
    if !tool("ffmpeg") || !tool("ffprobe") {
        return;
    }
    let cases: &[(&str, &[&str], AudioFormat)] = &[
        ("cbr.mp3", &["-c:a", "libmp3lame", "-b:a", "64k"], AudioFormat::Mp3),
        // VBR without a Xing header: the bit rate of the first frame says nothing.
        (
            "vbr-noxing.mp3",
            &["-c:a", "libmp3lame", "-q:a", "2", "-write_xing", "0"],
            AudioFormat::Mp3,
        ),
        ("tone.m4a", &["-c:a", "aac", "-b:a", "64k"], AudioFormat::M4a),
        ("tone.flac", &["-c:a", "flac"], AudioFormat::Flac),
        ("tone.wav", &["-c:a", "pcm_s16le", "-ar", "16000"], AudioFormat::Wav),
        ("tone.ogg", &["-c:a", "libvorbis"], AudioFormat::Ogg),
        ("tone.opus", &["-c:a", "libopus", "-b:a", "24k"], AudioFormat::Opus),
        ("tone.webm", &["-c:a", "libopus", "-b:a", "24k"], AudioFormat::Webm),
        (
            "live.webm",
            &["-c:a", "libopus", "-live", "1", "-cluster_time_limit", "500"],
            AudioFormat::Webm,
        ),
        ("tone.aac", &["-c:a", "aac", "-f", "adts"], AudioFormat::Aac),
    ];
    for (name, args, expected) in cases {
        let Some(bytes) = ffmpeg_encode(name, args) else {
            continue;
        };
        let info = inspect(bytes, None).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(info.format, *expected, "{name}");
        let ours = info.duration.as_secs_f64();
        eprintln!("{name}: {ours:.4} s, {:?}, {:?} Hz", info.codec, info.sample_rate);
        // Every encoder pads to whole frames; a frame is at most ~64 ms at these rates.
        assert!((ours - 3.2).abs() < 0.07, "{name}: measured {ours} s, encoded 3.2 s");
        // ffprobe estimates ADTS and Xing-less VBR MP3 from the first frame's bit rate.
        if *expected != AudioFormat::Aac && *name != "vbr-noxing.mp3" {
            let Some(probed) = ffprobe_duration(&scratch(name)) else {
                continue;
            };
            assert!(
                (ours - probed).abs() < 0.07,
                "{name}: measured {ours} s, ffprobe {probed} s"
            );
        }
    }
}

#[test]
fn sox_reads_generated_wav_and_flac() {
    if !tool("soxi") {
        return;
    }
    for format in [AudioFormat::Wav, AudioFormat::Flac] {
        let bytes = synthesize(format, Duration::from_millis(1200), 22_050).unwrap();
        let path = scratch(&format!("sox.{}", format.extension()));
        std::fs::write(&path, &bytes).unwrap();
        let out = Command::new("soxi").arg("-D").arg(&path).output().unwrap();
        let seconds: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        assert!((seconds - 1.2).abs() < 0.001, "{format}: soxi says {seconds}");
        assert_eq!(duration(bytes, None).unwrap(), Duration::from_millis(1200));
    }
}
