//! The Python client of `clients/python/` for the tests: a virtualenv with its pinned
//! requirements and the modules `generate.py` writes from `proto/`.
use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use serde_json::Value;

use super::process::run_bounded;

const CLIENT_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/clients/python");

/// Runs `cmd` within `limit`; panics unless it succeeds. Returns its stdout.
pub fn run(cmd: &mut Command, limit: Duration) -> String {
    let what = format!("{cmd:?}");
    let r = run_bounded(cmd, limit);
    match r.status {
        Some(s) if s.success() => r.out,
        Some(s) => panic!(
            "{what} failed ({s})\nstdout:\n{}\nstderr:\n{}",
            r.out, r.err
        ),
        None => panic!(
            "{what} still running after {limit:?}\nstdout:\n{}\nstderr:\n{}",
            r.out, r.err
        ),
    }
}

/// The virtualenv with `requirements.txt` installed; its python.
pub fn venv() -> PathBuf {
    venv_with(
        "python-client-venv",
        &Path::new(CLIENT_DIR).join("requirements.txt"),
    )
}

/// The virtualenv `target/tmp/NAME` with `requirements` installed; its python. Rebuilt only
/// when the requirements change.
pub fn venv_with(name: &str, requirements: &Path) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let python = dir.join("bin/python");
    let stamp = dir.join("installed-requirements.txt");
    let wanted = std::fs::read_to_string(requirements).unwrap();
    // The stamp is written last, so an interrupted install is redone from scratch.
    if python.exists() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(&wanted) {
        return python;
    }
    let _ = std::fs::remove_dir_all(&dir);
    let interpreter = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    run(
        Command::new(interpreter).args(["-m", "venv"]).arg(&dir),
        Duration::from_secs(120),
    );
    run(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--no-input",
            ])
            .args(["--timeout", "60", "-r"])
            .arg(requirements),
        Duration::from_secs(600),
    );
    std::fs::write(&stamp, wanted).unwrap();
    python
}

/// The client as a user has it, in `dir/client`: the scripts, then `generate.py` writing cbm/v1
/// beside them from `proto/`.
pub fn client_dir(python: &Path, dir: &Path) -> PathBuf {
    let client = dir.join("client");
    std::fs::create_dir(&client).unwrap();
    for entry in std::fs::read_dir(CLIENT_DIR).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "py") {
            std::fs::copy(&path, client.join(path.file_name().unwrap())).unwrap();
        }
    }
    run(
        Command::new(python)
            .arg(client.join("generate.py"))
            .arg("--proto")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/proto")),
        Duration::from_secs(120),
    );
    assert!(client.join("cbm/v1/feed_pb2_grpc.py").exists());
    client
}

/// A JSON number or, as protobuf's JSON mapping writes 64-bit integers, a string of one.
pub fn number(v: &Value) -> u64 {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or_else(|| panic!("not a number: {v}"))
}
