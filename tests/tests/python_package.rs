//! The Python package: `pip install ./python` builds it (maturin, abi3), then its pytest suite
//! runs against the real captures and a live `tickcast run` (python/tests).

use std::path::Path;
use std::process::Command;
use tickcast_tests::*;

fn have(module: &str) -> bool {
    Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn pip_install_and_pytest() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    if !(have("pip") && have("pytest") && have("numpy") && have("pandas")) {
        assert!(
            !in_ci(),
            "python3 with pip, pytest, numpy, pandas is required in CI (.ci/run installs them)"
        );
        println!("SKIPPED: python3 with pip, pytest, numpy and pandas is not installed");
        return;
    }
    let install = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .arg(root.join("python"))
        .output()
        .expect("run pip");
    assert!(
        install.status.success(),
        "pip install ./python: {}{}",
        String::from_utf8_lossy(&install.stdout),
        String::from_utf8_lossy(&install.stderr)
    );
    let out = Command::new("python3")
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .arg(root.join("python/tests"))
        .env("TICKCAST_BIN", bin("tickcast"))
        .env("TICKCAST_DATA", data(""))
        .current_dir(std::env::temp_dir())
        .output()
        .expect("run pytest");
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}");
    assert!(
        out.status.success(),
        "pytest: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("passed") && !text.contains("failed"),
        "{text}"
    );
}
