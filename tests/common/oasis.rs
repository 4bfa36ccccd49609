//! The OASIS stix2-validator (PyPI), strict, over STIX output of the tests.
use std::{path::Path, process::Command};

use serde_json::Value;

/// The OASIS stix2-validator over the files and bundles, strict, with references enforced.
/// Skipped with a note when no venv or pip install is possible (offline machine).
pub fn validate(dir: &Path, files: &[&Path], bundles: &[Value]) {
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("stix-venv");
    let validator = venv.join("bin/stix2_validator");
    if !validator.exists() {
        let made = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .is_ok_and(|s| s.success())
            && Command::new(venv.join("bin/pip"))
                .args(["install", "--quiet", "stix2-validator"])
                .status()
                .is_ok_and(|s| s.success());
        if !made || !validator.exists() {
            eprintln!(
                "NOTE: stix2-validator could not be installed with pip; only the built-in checker ran"
            );
            return;
        }
    }
    let mut args: Vec<std::path::PathBuf> = files.iter().map(|f| f.to_path_buf()).collect();
    for (i, b) in bundles.iter().enumerate() {
        let f = dir.join(format!("feed-{i}.json"));
        std::fs::write(&f, b.to_string()).unwrap();
        args.push(f);
    }
    // Disabled, all "SHOULD"s the brief decides otherwise: 103 (ids SHOULD be UUIDv4; ours are
    // v5, deterministic), 218 (report_types outside the suggested vocabulary; it is open), 302
    // (an external URL without a hash: the hub does not fetch linked documents).
    let out = Command::new(&validator)
        .args(["--strict", "--enforce-refs", "-d", "103,218,302"])
        .args(&args)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "stix2-validator: {report}");
    assert_eq!(
        report.matches("STIX JSON: Valid").count(),
        args.len(),
        "{report}"
    );
}
