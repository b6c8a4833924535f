//! `pip install sluice`: maturin builds a wheel of the binary (its `bin`
//! bindings, as ruff and uv ship: pyproject.toml), a fresh virtual
//! environment installs it from the file alone, and the `sluice` it puts on
//! the environment's PATH, and `python -m sluice`, run
//! pipelines/quickstart.toml.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

const MATURIN: &str = "maturin==1.16.0";

/// maturin from PyPI in a virtual environment under target/ (made once);
/// None only where there is no Python.
fn maturin() -> Option<PathBuf> {
    let venv = repo().join("target/py-maturin");
    let bin = venv.join("bin/maturin");
    let ready = venv.join(".sluice-ready");
    if std::fs::read_to_string(&ready).is_ok_and(|have| have == MATURIN) {
        return Some(bin);
    }
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("!!! SKIPPED: no python3 here; the wheel test did not run");
        return None;
    }
    let _ = std::fs::remove_dir_all(&venv);
    venv_with(&venv, &[MATURIN]);
    std::fs::write(&ready, MATURIN).unwrap();
    Some(bin)
}

fn venv_with(venv: &Path, packages: &[&str]) {
    let ok = Command::new("python3")
        .args(["-m", "venv"])
        .arg(venv)
        .status()
        .unwrap()
        .success();
    assert!(ok, "python3 -m venv failed");
    if packages.is_empty() {
        return;
    }
    let ok = Command::new(venv.join("bin/pip"))
        .args(["install", "-q"])
        .args(packages)
        .status()
        .unwrap()
        .success();
    assert!(ok, "pip install {packages:?} failed (network to PyPI?)");
}

#[test]
fn pip_installs_the_wheel_and_its_sluice_runs_a_pipeline() {
    let Some(maturin) = maturin() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let wheels = tmp.path().join("wheels");
    // The test profile's build (what `cargo test` made): the wheel holds
    // the same binary a release wheel does, less optimised.
    let mut build = Command::new(&maturin);
    build
        .args(["build", "--locked", "--profile", "dev", "--out"])
        .arg(&wheels)
        .current_dir(repo());
    // Without the variables `cargo test` sets for a test (CARGO_PKG_NAME,
    // CARGO_MANIFEST_DIR, …): some build scripts (ring's) rerun when they
    // change, and the dependencies above them would be rebuilt for the
    // wheel, then again for the next `cargo test`.
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        let set_for_tests = [
            "CARGO_PKG_",
            "CARGO_MANIFEST_",
            "CARGO_BIN_",
            "CARGO_CRATE_",
            "CARGO_PRIMARY_PACKAGE",
            "CARGO_TARGET_TMPDIR",
            "CARGO_RUSTC_CURRENT_DIR",
        ];
        if set_for_tests.iter().any(|p| k.starts_with(p)) || k == "LD_LIBRARY_PATH" {
            build.env_remove(k.as_ref());
        }
    }
    let o = build.output().unwrap();
    assert!(
        o.status.success(),
        "maturin build failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let wheel: Vec<PathBuf> = std::fs::read_dir(&wheels)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "whl"))
        .collect();
    assert_eq!(wheel.len(), 1, "{wheel:?}");
    let name = wheel[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with(&format!("sluice-{}-py3-none-", env!("CARGO_PKG_VERSION"))),
        "{name}"
    );

    // A fresh environment, the wheel file alone (no index).
    let venv = tmp.path().join("venv");
    venv_with(&venv, &[]);
    let ok = Command::new(venv.join("bin/pip"))
        .args(["install", "-q", "--no-index"])
        .arg(&wheel[0])
        .status()
        .unwrap()
        .success();
    assert!(ok, "pip install {name} failed");
    let sluice = venv.join("bin/sluice");
    assert!(sluice.exists(), "pip put no sluice in the venv's bin/");

    // The quickstart, into a folder of the test's.
    let out = tmp.path().join("quickstart");
    let spec = std::fs::read_to_string(repo().join("pipelines/quickstart.toml"))
        .unwrap()
        .replace("dir = \"out/quickstart\"", &format!("dir = {out:?}"));
    assert!(spec.contains(out.to_str().unwrap()));
    let spec = write_spec(tmp.path(), "quickstart.toml", &spec);
    let o = Command::new(&sluice)
        .args(["run", spec.to_str().unwrap(), "-q"])
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stats = stats_json(&out);
    assert!(stats["kept"]["docs"].as_u64().unwrap() > 1000, "{stats}");

    // `python -m sluice` finds the same binary.
    let o = Command::new(venv.join("bin/python"))
        .args(["-m", "sluice", "ops"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("gopher_quality"));
}
