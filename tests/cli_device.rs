//! `--device` on `train`, `eval` and `export` (issue 15) in the default, CPU-only build: `cpu`
//! works and is what runs without the flag; `wgpu` is refused with what to rebuild, before any
//! file is written; an unknown device or config value names the allowed ones. With
//! `--features wgpu` the same commands run on a GPU: scripts/wgpu_cross_device.sh checks those.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn splitwise(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_splitwise")).current_dir(dir).args(args).output().expect("runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

const SMOKE: &[&str] = &["--set", "logging.progress=never", "--final-report-episodes", "0"];

fn train(dir: &Path, extra: &[&str]) -> Output {
    let config = repo("configs/smoke.toml");
    let mut args = vec!["train", "--config", config.to_str().unwrap()];
    args.extend_from_slice(SMOKE);
    args.extend_from_slice(extra);
    splitwise(dir, &args)
}

#[test]
fn an_unknown_device_names_the_allowed_ones() {
    let dir = tempfile::tempdir().unwrap();
    let out = train(dir.path(), &["--device", "cuda"]);
    assert!(!out.status.success());
    let e = stderr(&out);
    assert!(e.contains("cuda") && e.contains("cpu") && e.contains("wgpu"), "{e}");
    let out = train(dir.path(), &["--set", "training.device=gpu"]);
    assert!(!out.status.success());
    let e = stderr(&out);
    assert!(e.contains("training.device") || e.contains("device"), "{e}");
    assert!(e.contains("gpu") && e.contains("`cpu`") && e.contains("`wgpu`"), "{e}");
    assert!(!dir.path().join("checkpoints").exists(), "nothing is written");
}

#[test]
fn cpu_is_the_default_device_and_says_so_nowhere() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    assert!(train(a.path(), &[]).status.success());
    let out = train(b.path(), &["--device", "cpu"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let run = |d: &Path| d.join("checkpoints/smoke-seed0");
    let config: toml::Table = std::fs::read_to_string(run(b.path()).join("config.toml")).unwrap().parse().unwrap();
    assert!(!config["training"].as_table().unwrap().contains_key("device"), "the default is left out: {config}");
    // Placing on the CPU is bit-identical: the same weights as a run without the flag.
    let weights = |d: &Path| {
        let ckpt = run(d).join("step_256");
        let files = splitwise::checkpoint::load(&ckpt).unwrap();
        splitwise::train::load_agent(&files, &ckpt, None).unwrap().parameter_values()
    };
    assert_eq!(weights(a.path()), weights(b.path()));
}

#[cfg(not(feature = "wgpu"))]
#[test]
fn a_cpu_only_build_refuses_wgpu_with_what_to_rebuild_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    for extra in [&["--device", "wgpu"][..], &["--set", "training.device=\"wgpu\""][..]] {
        let out = train(dir.path(), extra);
        assert!(!out.status.success());
        let e = stderr(&out);
        assert!(
            e.contains("train: cannot use device wgpu (--device, training.device)") && e.contains("--features wgpu"),
            "{e}"
        );
        assert!(!dir.path().join("checkpoints").exists(), "nothing is written");
    }

    // A checkpoint trained on the CPU; eval and export on wgpu are refused the same way.
    assert!(train(dir.path(), &[]).status.success());
    let ckpt = dir.path().join("checkpoints/smoke-seed0");
    let policy = format!("trained=ckpt:{}", ckpt.display());
    let smoke = repo("configs/smoke.toml");
    let out = splitwise(
        dir.path(),
        &[
            "eval",
            "--config",
            smoke.to_str().unwrap(),
            "--policies",
            &policy,
            "--episodes",
            "1",
            "--no-headroom",
            "--out",
            "eval",
            "--device",
            "wgpu",
        ],
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--features wgpu"), "{}", stderr(&out));
    assert!(!dir.path().join("eval").exists());
    let out = splitwise(
        dir.path(),
        &["export", "--checkpoint", ckpt.to_str().unwrap(), "--out", "policy.onnx", "--device", "wgpu"],
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--features wgpu"), "{}", stderr(&out));
    assert!(!dir.path().join("policy.onnx").exists() && !dir.path().join("policy.onnx.json").exists());
}
