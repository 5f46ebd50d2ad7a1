//! The project's shape, checked: the crate graph reads top-down
//! (`protocol ← net ← {feedhandler, subscriber-sdk} ← distributor ← cli`, from `cargo metadata`),
//! the SDK pulls in no command-line crates, and `unsafe` appears only in `net/` and the SDK's C
//! boundary, each block with its `SAFETY:` argument.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn metadata() -> Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(root())
        .args(["metadata", "--format-version", "1", "--offline"])
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Normal (non-dev, non-build) dependencies by package name, from the resolved graph.
fn normal_deps(m: &Value) -> BTreeMap<String, BTreeSet<String>> {
    let names: BTreeMap<&str, &str> = m["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
        .collect();
    let mut g = BTreeMap::new();
    for n in m["resolve"]["nodes"].as_array().unwrap() {
        let deps = n["deps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| {
                d["dep_kinds"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|k| k["kind"].is_null())
            })
            .map(|d| names[d["pkg"].as_str().unwrap()].to_string())
            .collect();
        g.insert(names[n["id"].as_str().unwrap()].to_string(), deps);
    }
    g
}

#[test]
fn the_crate_graph_reads_top_down() {
    let g = normal_deps(&metadata());
    let ours = |p: &str| g[p].iter().filter(|d| d.starts_with("tickcast-")).cloned();
    let allowed: [(&str, &[&str]); 6] = [
        ("tickcast-protocol", &[]),
        ("tickcast-net", &["tickcast-protocol"]),
        (
            "tickcast-feedhandler",
            &["tickcast-protocol", "tickcast-net"],
        ),
        ("tickcast-sdk", &["tickcast-protocol", "tickcast-net"]),
        (
            "tickcast-distributor",
            &[
                "tickcast-protocol",
                "tickcast-net",
                "tickcast-feedhandler",
                "tickcast-sdk",
            ],
        ),
        (
            "tickcast-cli",
            &[
                "tickcast-protocol",
                "tickcast-net",
                "tickcast-feedhandler",
                "tickcast-sdk",
                "tickcast-distributor",
            ],
        ),
    ];
    for (pkg, ok) in allowed {
        for d in ours(pkg) {
            assert!(ok.contains(&d.as_str()), "{pkg} must not depend on {d}");
        }
    }
    // The binaries live in the cli crate only.
    let m = metadata();
    for p in m["packages"].as_array().unwrap() {
        let name = p["name"].as_str().unwrap();
        if !name.starts_with("tickcast-") || name == "tickcast-cli" {
            continue;
        }
        for t in p["targets"].as_array().unwrap() {
            let bin = t["kind"].as_array().unwrap().iter().any(|k| k == "bin");
            assert!(!bin, "{name} has a binary target {}", t["name"]);
        }
    }
}

#[test]
fn the_sdk_pulls_in_no_command_line_crates() {
    let g = normal_deps(&metadata());
    let mut seen = BTreeSet::new();
    let mut todo = vec!["tickcast-sdk".to_string()];
    while let Some(p) = todo.pop() {
        if seen.insert(p.clone()) {
            todo.extend(g.get(&p).into_iter().flatten().cloned());
        }
    }
    for bad in [
        "clap",
        "serde_json",
        "signal-hook",
        "indicatif",
        "tracing-subscriber",
    ] {
        assert!(!seen.contains(bad), "the SDK depends on {bad}");
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn unsafe_only_in_net_and_the_c_boundary_each_with_a_safety_argument() {
    let mut files = Vec::new();
    for c in [
        "protocol",
        "net",
        "feedhandler",
        "subscriber-sdk",
        "distributor",
        "cli",
    ] {
        rust_files(&root().join(c).join("src"), &mut files);
    }
    let mut with_unsafe = BTreeSet::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (i, l) in lines.iter().enumerate() {
            let code = l.split("//").next().unwrap_or("");
            let is_unsafe = ["unsafe {", "unsafe impl", "unsafe extern", "unsafe fn"]
                .iter()
                .any(|t| code.contains(t));
            if !is_unsafe {
                continue;
            }
            let rel = f.strip_prefix(root()).unwrap().display().to_string();
            with_unsafe.insert(rel.clone());
            if code.contains("unsafe {") || code.contains("unsafe impl") {
                let before = &lines[i.saturating_sub(8)..=i];
                assert!(
                    before.iter().any(|b| b.contains("SAFETY:")),
                    "{rel}:{}: unsafe without a SAFETY argument",
                    i + 1
                );
            }
        }
    }
    for f in &with_unsafe {
        assert!(
            f.starts_with("net/src/")
                || f == "subscriber-sdk/src/ffi.rs"
                || f.starts_with("subscriber-sdk/src/ffi/"),
            "unsafe in {f}"
        );
    }
    assert!(with_unsafe.contains("subscriber-sdk/src/ffi.rs"));
    assert!(with_unsafe.iter().any(|f| f.starts_with("net/src/")));
}
