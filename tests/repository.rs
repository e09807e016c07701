//! The repository is self-contained and keeps outputs out of git: every Markdown file a
//! comment or document points to exists in the repository, and what `export` writes (the
//! graph and its sidecar) is ignored.

use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if path.is_dir() {
            if !name.starts_with('.') && name != "target" && name != "checkpoints" && name != "runs" {
                files(&path, out);
            }
        } else if ["rs", "toml", "md", "sh", "py"].iter().any(|e| name.ends_with(&format!(".{e}"))) {
            out.push(path);
        }
    }
}

#[test]
fn every_referenced_markdown_file_exists() {
    let root = repo();
    let mut all = Vec::new();
    files(&root, &mut all);
    let mut missing = Vec::new();
    for file in &all {
        let text = std::fs::read_to_string(file).unwrap();
        for word in text.split(|c: char| !(c.is_alphanumeric() || "._/-".contains(c))) {
            let Some(stem) = word.strip_suffix(".md") else { continue };
            // `report.md` is what `splitwise eval` writes, and `runs/` is where the scripts write
            // (git-ignored): outputs a command produces, not documents the repository ships.
            let output = word.ends_with("report.md") || word.starts_with("runs/");
            if stem.is_empty() || word.starts_with("http") || word.contains("//") || output {
                continue;
            }
            let here = file.parent().unwrap().join(word);
            let candidates = [root.join(word), here, root.join("docs").join(word)];
            if !candidates.iter().any(|p| p.is_file()) {
                missing.push(format!("{}: {word}", file.strip_prefix(&root).unwrap().display()));
            }
        }
    }
    assert!(missing.is_empty(), "references to files that are not in the repository:\n{}", missing.join("\n"));
}

#[test]
fn export_outputs_are_git_ignored() {
    let ignore = std::fs::read_to_string(repo().join(".gitignore")).unwrap();
    let lines: Vec<&str> = ignore.lines().map(str::trim).collect();
    for pattern in ["*.onnx", "*.onnx.json", "/checkpoints/*", "/runs/"] {
        assert!(lines.contains(&pattern), ".gitignore lacks {pattern}");
    }
    // When git is at hand, ask it directly.
    let Ok(out) = std::process::Command::new("git")
        .current_dir(repo())
        .args(["check-ignore", "policy.onnx", "policy.onnx.json", "out/policy.actor.onnx"])
        .output()
    else {
        return;
    };
    if out.status.code() == Some(128) {
        return; // not a git checkout
    }
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 3, "{}", String::from_utf8_lossy(&out.stdout));
}
