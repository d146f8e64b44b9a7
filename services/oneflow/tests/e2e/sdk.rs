//! The official `openai` Python SDK, unchanged, against the one-process mode.
//! Needs `python3` with `openai` installed (`.ci/run` installs it); elsewhere
//! it skips with a notice, under CI=true it fails instead.
use std::process::Command;

#[tokio::test]
async fn the_official_openai_python_sdk_works_unchanged() {
    let has_sdk = Command::new("python3")
        .args(["-c", "import openai"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_sdk {
        assert!(
            !oneflow_test_support::in_ci(),
            "python3 with the openai package is required under CI=true"
        );
        eprintln!("NOTICE: skipping: python3 -m pip install openai to run the SDK test");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_arg = format!("data_dir={}", data.display());
    let svc = oneflow_test_support::spawn("oneflow", &["--listen", "127.0.0.1:0", "--set", &data_arg], &[]).await;
    let key = std::fs::read_to_string(data.join("admin.key"))
        .unwrap()
        .trim()
        .to_owned();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/openai_sdk.py");
    let out = tokio::process::Command::new("python3")
        .args([script, &svc.url(), &key])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "SDK run failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("openai sdk: ok"));
}
