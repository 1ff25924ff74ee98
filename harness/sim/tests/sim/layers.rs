//! The simulator's modules form layers (`docs/src/design/architecture.md`, "Layers"): a
//! module uses only modules of the layers above it, so the module graph has no cycle.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The layers, the one every module may use first, as the architecture page lists them.
const LAYERS: [&[&str]; 9] = [
    &["clock", "coverage", "exchange", "fault", "faulty_store", "invariant", "net", "trace"],
    &["scenario"],
    &["driver", "provider"],
    &["oracle"],
    &["world"],
    &["timeline", "shrink"],
    &["run"],
    &["report", "sweep"],
    &["check"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// The crate's modules `source` names through `crate::` paths.
fn used_modules(source: &str) -> BTreeSet<String> {
    source
        .match_indices("crate::")
        .map(|(at, prefix)| {
            let rest = &source[at + prefix.len()..];
            rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect::<String>()
        })
        .filter(|name| !name.is_empty())
        .collect()
}

/// Every source file with the module it belongs to (a submodule's file belongs to its
/// parent: `provider/live.rs` is `provider`).
fn module_files(source_dir: &Path) -> Vec<(String, PathBuf)> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(source_dir).expect("src is readable") {
        let path = entry.expect("src entry").path();
        let name = path.file_stem().and_then(|stem| stem.to_str()).expect("UTF-8 names").to_owned();
        if path.is_dir() {
            for inner in std::fs::read_dir(&path).expect("submodule directory is readable") {
                files.push((name.clone(), inner.expect("submodule entry").path()));
            }
        } else if name != "lib" {
            files.push((name, path));
        }
    }
    files.sort();
    files
}

#[test]
fn the_sim_modules_form_the_documented_layers() {
    let source_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut problems = Vec::new();
    let files = module_files(&source_dir);
    let modules: BTreeSet<&str> = files.iter().map(|(module, _)| module.as_str()).collect();
    for module in &modules {
        if layer_of(module).is_none() {
            problems.push(format!("module `{module}` is in no layer: place it in LAYERS and the architecture page"));
        }
    }
    for listed in LAYERS.iter().flat_map(|layer| layer.iter()) {
        if !modules.contains(listed) {
            problems.push(format!("LAYERS lists `{listed}`, which is no module"));
        }
    }
    for (module, path) in &files {
        let Some(layer) = layer_of(module) else { continue };
        let source = std::fs::read_to_string(path).expect("source is readable");
        for used in used_modules(&source) {
            match layer_of(&used) {
                Some(used_layer) if used == *module || used_layer < layer => {}
                _ => problems.push(format!("{} (layer {layer}) uses `crate::{used}`", path.display())),
            }
        }
    }
    assert!(problems.is_empty(), "the module layers are broken:\n{}", problems.join("\n"));
}
