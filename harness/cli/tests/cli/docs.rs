//! The book (`docs/`), the README and the CHANGELOG, kept honest without mdBook.
//!
//! The book is read as Markdown in the repository as often as it is built, so what would
//! break it is checked here, where `cargo test` sees it:
//!
//! * every chapter `docs/src/SUMMARY.md` lists exists, and every page under `docs/src/`
//!   is listed (mdBook would silently leave an unlisted page out);
//! * every relative Markdown link and every `{{#include}}` in the README, the CHANGELOG
//!   and the book points to a file that exists (anchors are not checked);
//! * the README stays a front door of at most [`README_MAX_LINES`] lines;
//! * the reference tables generated from the registries (`docs/src/reference/generated/`:
//!   invariants, coverage marks, faults, incident bugs, clauses, providers, every
//!   command's help, the scenario keys) are what `smsim reference` renders now, and each is
//!   included by a page, so adding to a registry without regenerating fails here;
//! * the hand-written prose keeps up with the registries where it is not generated: a
//!   section per invariant and per command, a row per scenario key the parser accepts,
//!   and the incidents guide's measured table naming every bug;
//! * the provider registry is whole: every provider kind has an engine adapter, a
//!   simulated wire format, a certification profile and a row in the reference, and the
//!   "Add a provider" checklist of `CONTRIBUTING.md` names files that exist.

use smsim_cli::reference::{scenario_keys, GENERATED_DIR, REGENERATE, RUNS_DIR};
use smsim_core::domain::ProviderKind;
use smsim_core::incidents::Bug;
use smsim_sim::invariant::Invariant;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The README is a front door that points into the book, not a manual.
const README_MAX_LINES: usize = 200;

/// The repository's root, without `..` in it, so that messages name files as a reader
/// would look for them.
fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("the repository exists")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// Every Markdown file under `dir`, in name order.
fn markdown_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            files.extend(markdown_under(&path));
        } else if path.extension().is_some_and(|extension| extension == "md") {
            files.push(path);
        }
    }
    files
}

/// The documents whose links are checked: the front door, the changelog, the pointers
/// left where documents used to be, the files the book includes, and the book itself.
fn documents() -> Vec<PathBuf> {
    let root = repository();
    let mut files: Vec<PathBuf> = [
        "README.md",
        "CHANGELOG.md",
        "CONTRIBUTING.md",
        "ARCHITECTURE.md",
        "scenarios/README.md",
        "benches/results/README.md",
        "benches/mutation-survivors.md",
    ]
    .iter()
    .map(|path| root.join(path))
    .collect();
    files.extend(markdown_under(&root.join("docs/src")));
    files
}

/// A link or include target as written, with the line it is on.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    line: usize,
    target: String,
}

/// The relative targets of `markdown`'s inline links, images and reference definitions,
/// outside code blocks and code spans, without their anchors; web addresses and links
/// within the page are left out.
fn relative_links(markdown: &str) -> Vec<Target> {
    let mut targets = Vec::new();
    let mut fence: Option<&str> = None;
    for (index, line) in markdown.lines().enumerate() {
        let trimmed = line.trim_start();
        for marker in ["```", "~~~"] {
            if trimmed.starts_with(marker) {
                fence = match fence {
                    None => Some(marker),
                    Some(open) if open == marker => None,
                    Some(open) => Some(open),
                };
            }
        }
        if fence.is_some() || trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            continue;
        }
        let prose = without_code_spans(line);
        for raw in inline_targets(&prose).into_iter().chain(definition_target(&prose)) {
            if let Some(target) = relative(&raw) {
                targets.push(Target { line: index + 1, target });
            }
        }
    }
    targets
}

/// `line` with every `code span` blanked out.
fn without_code_spans(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut in_code = false;
    for character in line.chars() {
        if character == '`' {
            in_code = !in_code;
            out.push(' ');
        } else {
            out.push(if in_code { ' ' } else { character });
        }
    }
    out
}

/// The destinations of `[text](destination)` on one line.
fn inline_targets(line: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let mut rest = line;
    while let Some(start) = rest.find("](") {
        let after = &rest[start + 2..];
        let Some(end) = after.find(')') else { break };
        targets.push(after[..end].to_owned());
        rest = &after[end + 1..];
    }
    targets
}

/// The destination of a reference definition, `[label]: destination`.
fn definition_target(line: &str) -> Option<String> {
    let rest = line.trim_start().strip_prefix('[')?;
    let (_label, after) = rest.split_once("]:")?;
    Some(after.trim().to_owned())
}

/// `raw` as a path relative to the page, without its title and anchor; `None` for a web
/// address, a mail address or a link within the page.
fn relative(raw: &str) -> Option<String> {
    let destination = raw.trim().trim_start_matches('<');
    let destination = destination.split_whitespace().next().unwrap_or_default().trim_end_matches('>');
    let path = destination.split(['#', '?']).next().unwrap_or_default();
    let external = destination.contains("://") || destination.starts_with("mailto:");
    (!external && !path.is_empty()).then(|| path.to_owned())
}

/// The paths of `markdown`'s mdBook `{{#include PATH}}` and `{{#include PATH:LINES}}`
/// directives, wherever they are (in code blocks too: that is how data is shown).
fn includes(markdown: &str) -> Vec<Target> {
    let mut targets = Vec::new();
    for (index, line) in markdown.lines().enumerate() {
        let mut rest = line;
        while let Some(start) = rest.find("{{#include ") {
            let after = &rest[start + "{{#include ".len()..];
            let Some(end) = after.find("}}") else { break };
            let path = after[..end].trim().split(':').next().unwrap_or_default().to_owned();
            targets.push(Target { line: index + 1, target: path });
            rest = &after[end + 2..];
        }
    }
    targets
}

/// Every target in `targets` of the document at `path` that does not exist, described.
fn missing(path: &Path, targets: Vec<Target>, kind: &str) -> Vec<String> {
    let dir = path.parent().expect("a document is in a directory");
    let root = repository();
    let shown = path.strip_prefix(&root).unwrap_or(path).display().to_string();
    targets
        .into_iter()
        .filter(|target| !dir.join(&target.target).exists())
        .map(|target| format!("{shown}:{}: {kind} `{}` points to nothing", target.line, target.target))
        .collect()
}

/// The chapter files `SUMMARY.md` lists, relative to `docs/src`.
fn summary_chapters() -> Vec<Target> {
    let summary = read(&repository().join("docs/src/SUMMARY.md"));
    let mut chapters = Vec::new();
    for (index, line) in summary.lines().enumerate() {
        for raw in inline_targets(line) {
            chapters.push(Target { line: index + 1, target: raw.trim().to_owned() });
        }
    }
    chapters
}

/// The lines of `page` (under `docs/src`) that fail to mention one of `names`, as `what`.
fn unnamed(page: &str, names: impl IntoIterator<Item = String>, what: &str) -> Vec<String> {
    let text = read(&repository().join("docs/src").join(page));
    names
        .into_iter()
        .filter(|name| !text.contains(name.as_str()))
        .map(|name| format!("docs/src/{page} does not name the {what} {name}"))
        .collect()
}

fn assert_none(problems: Vec<String>, what: &str) {
    assert!(problems.is_empty(), "{what}:\n  {}", problems.join("\n  "));
}

#[test]
fn every_chapter_the_summary_lists_exists_and_every_page_is_listed() {
    let src = repository().join("docs/src");
    let chapters = summary_chapters();
    assert!(chapters.len() >= 10, "SUMMARY.md lists only {} chapters", chapters.len());
    let mut problems = Vec::new();
    for chapter in &chapters {
        if chapter.target.is_empty() {
            problems.push(format!("SUMMARY.md:{}: a draft chapter with no file", chapter.line));
        } else if !src.join(&chapter.target).is_file() {
            problems.push(format!("SUMMARY.md:{}: chapter `{}` does not exist", chapter.line, chapter.target));
        }
    }
    let listed: Vec<PathBuf> = chapters.iter().map(|chapter| src.join(&chapter.target)).collect();
    // The generated tables are not chapters: pages include them (checked below).
    let generated = repository().join(GENERATED_DIR);
    for page in markdown_under(&src) {
        if page.starts_with(&generated) {
            continue;
        }
        if page.file_name().is_some_and(|name| name != "SUMMARY.md") && !listed.contains(&page) {
            let shown = page.strip_prefix(&src).unwrap_or(&page).display().to_string();
            problems.push(format!("{shown} is not listed in SUMMARY.md, so the book leaves it out"));
        }
    }
    assert_none(problems, "the book's summary and its pages disagree");
}

#[test]
fn every_relative_link_and_include_points_to_a_file_that_exists() {
    let documents = documents();
    assert!(documents.len() > 20, "only {} documents found", documents.len());
    let mut problems = Vec::new();
    for path in &documents {
        let markdown = read(path);
        problems.extend(missing(path, relative_links(&markdown), "link"));
        problems.extend(missing(path, includes(&markdown), "include"));
    }
    assert_none(problems, "broken links");
}

#[test]
fn the_readme_stays_a_front_door() {
    let readme = read(&repository().join("README.md"));
    let lines = readme.lines().count();
    assert!(
        lines <= README_MAX_LINES,
        "README.md has {lines} lines; move the detail into docs/ (at most {README_MAX_LINES})"
    );
    // The two commands a newcomer types first, exactly as `.ci/run` and the book give them.
    for command in ["cargo run --release -p smsim -- run scenarios/happy-path.toml", "cargo test --workspace"] {
        assert!(readme.contains(command), "README.md lost `{command}`");
    }
    assert!(
        read(&repository().join(".ci/run")).contains("cargo test --workspace"),
        ".ci/run no longer runs the README's test command"
    );
}

fn smsim(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_smsim")).args(args).output().expect("smsim runs")
}

fn stdout_of(args: &[&str]) -> String {
    let output = smsim(args);
    assert!(output.status.success(), "smsim {args:?}: {output:?}");
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

#[test]
fn the_generated_reference_tables_are_current_and_included() {
    let generated = repository().join(GENERATED_DIR);
    let runs = repository().join(RUNS_DIR);
    let path = |dir: &Path| dir.to_str().expect("a UTF-8 path").to_owned();
    let output = smsim(&["reference", "--check", "--out", &path(&generated), "--runs", &path(&runs)]);
    assert!(
        output.status.success(),
        "the generated reference tables are stale; run `{REGENERATE}` and commit the result:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let book: String = markdown_under(&repository().join("docs/src")).iter().map(|page| read(page)).collect();
    let mut problems = Vec::new();
    for table in markdown_under(&generated) {
        let name = table.file_name().expect("a file name").to_string_lossy().into_owned();
        if !book.contains(&format!("generated/{name}}}}}")) {
            problems.push(format!("no page of the book includes {GENERATED_DIR}/{name}"));
        }
    }
    assert!(markdown_under(&generated).len() >= 8, "{} holds too few tables", generated.display());
    assert_none(problems, "generated tables left out of the book");
}

#[test]
fn the_hand_written_reference_keeps_up_with_the_registries() {
    let mut problems = Vec::new();
    let invariants = Invariant::ALL.iter().map(|invariant| format!("### {}\n", invariant.name()));
    problems.extend(unnamed("reference/invariants.md", invariants, "invariant heading"));
    // Seeds to detection are measured, not generated: the guide's tables name every bug.
    problems.extend(unnamed(
        "guide/incidents.md",
        Bug::ALL.iter().map(|bug| format!("`{}`", bug.name())),
        "incident bug",
    ));
    assert_none(problems, "reference pages are stale");
}

/// The heading of `docs/src/reference/scenario-format.md` under which a section's keys
/// are described, and the prefix its table gives them.
fn scenario_format_heading(section: &str) -> (&'static str, &'static str) {
    match section {
        "top level" => ("## Top level", ""),
        "[engine]" => ("## `[engine]`", ""),
        "[[tenants]]" => ("## `[[tenants]]`", ""),
        "[tenants.contacts]" => ("## `[[tenants]]`", "contacts."),
        "[[traffic_accounts]]" => ("## `[[traffic_accounts]]`", ""),
        "[[campaigns]]" => ("## `[[campaigns]]`", ""),
        "[provider]" => ("## `[provider]`", ""),
        "[faults]" | "[faults.rates]" | "[[faults.events]]" => ("## `[faults]`", ""),
        "[[operator]]" => ("## `[[operator]]`", ""),
        "[expect]" | "[expect.incident]" => ("## `[expect]`", ""),
        other => panic!("scenario section {other} has no heading in scenario-format.md; add it here and there"),
    }
}

/// The scenario format's tables are written by hand (types, defaults, meanings); every
/// key the parser accepts must have a row in its section's table.
#[test]
fn the_scenario_format_describes_every_key_the_parser_accepts() {
    let page = read(&repository().join("docs/src/reference/scenario-format.md"));
    let generated = repository().join(GENERATED_DIR);
    let mut problems = Vec::new();
    for (section, keys) in scenario_keys() {
        let (heading, prefix) = scenario_format_heading(section);
        let Some(start) = page.find(heading) else {
            problems.push(format!("scenario-format.md has no heading `{heading}` for {section}"));
            continue;
        };
        let rest = &page[start + heading.len()..];
        let text = &rest[..rest.find("\n## ").unwrap_or(rest.len())];
        let mut rows = String::new();
        for line in text.lines() {
            if let Some(included) = line.strip_prefix("{{#include generated/").and_then(|rest| rest.strip_suffix("}}"))
            {
                rows.push_str(&read(&generated.join(included)));
            } else if line.starts_with('|') {
                rows.push_str(line);
                rows.push('\n');
            }
        }
        for key in keys {
            // A top-level key that opens a section is described under its own heading.
            let opens_a_section = page.contains(&format!("## `[{key}]`")) || page.contains(&format!("## `[[{key}]]`"));
            if section == "top level" && opens_a_section {
                continue;
            }
            if !rows.contains(&format!("`{prefix}{key}`")) {
                problems
                    .push(format!("scenario-format.md, {heading}: no table row describes {section} `{prefix}{key}`"));
            }
        }
    }
    assert_none(problems, "the scenario format is stale");
}

#[test]
fn the_reference_describes_every_command() {
    let help = stdout_of(&["--help"]);
    let commands: Vec<&str> = help
        .lines()
        .skip_while(|line| !line.starts_with("Commands:"))
        .skip(1)
        .take_while(|line| !line.trim().is_empty())
        .filter_map(|line| line.split_whitespace().next())
        .filter(|command| *command != "help")
        .collect();
    assert!(commands.len() >= 10, "smsim --help listed {} commands:\n{help}", commands.len());
    // Each command has a section of its own, `## smsim NAME` (two may share one heading,
    // `## smsim tenant, smsim account`).
    let page = read(&repository().join("docs/src/reference/cli.md"));
    let described: Vec<&str> =
        page.lines().filter_map(|line| line.strip_prefix("## ")).flat_map(|heading| heading.split(", ")).collect();
    let problems: Vec<String> = commands
        .into_iter()
        .filter(|command| !described.contains(&format!("smsim {command}").as_str()))
        .map(|command| format!("docs/src/reference/cli.md has no section `## smsim {command}`"))
        .collect();
    assert_none(problems, "reference pages are stale");
}

/// The checks above can fail: a broken link, a link in code, an include and a web address
/// are told apart.
#[test]
fn the_link_reader_finds_what_a_reader_would_follow() {
    let markdown = "\
See [the guide](guide/a.md#start) and ![a plot](plot.png \"title\").
[web](https://example.com) [here](#anchor) `[not a link](code.md)`
[ref]: ../other.md
```toml
x = \"[not a link](fenced.md)\"
{{#include data.csv}}
```
";
    let links: Vec<String> = relative_links(markdown).into_iter().map(|target| target.target).collect();
    assert_eq!(links, ["guide/a.md", "plot.png", "../other.md"]);
    let included = includes(markdown);
    assert_eq!(included, [Target { line: 6, target: "data.csv".into() }]);
    let dir = std::env::temp_dir().join(format!("smsim-docs-test-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("guide")).unwrap();
    std::fs::write(dir.join("guide/a.md"), "").unwrap();
    let page = dir.join("page.md");
    let broken = missing(&page, relative_links(markdown), "link");
    assert_eq!(broken.len(), 2, "plot.png and ../other.md are missing: {broken:?}");
    assert!(broken.iter().any(|problem| problem.contains(":1: link `plot.png`")), "{broken:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// One provider registry: every kind has the engine's adapter entry, the simulated
/// provider's wire format and the certification profile, each of its own kind, their files,
/// and a row in the simulated providers' reference.
#[test]
fn every_provider_kind_is_registered_everywhere() {
    let simulated = read(&repository().join("docs/src/reference/simulated-providers.md"));
    let mut problems = Vec::new();
    for kind in ProviderKind::ALL {
        if smsim_core::adapter::provider(kind).kind != kind {
            problems.push(format!("the engine's registry answers `{kind}` with another kind's adapter"));
        }
        if smsim_sim::provider::wire_format(kind).kind != kind {
            problems.push(format!("the simulated provider answers `{kind}` with another kind's wire format"));
        }
        let profile = smsim_certify::profiles::builtin(kind);
        if profile.kind() != kind || profile.name() != kind.as_str() {
            problems.push(format!(
                "the certification profile of `{kind}` is `{}` ({})",
                profile.name(),
                profile.kind()
            ));
        }
        for file in [format!("core/src/adapter/{kind}.rs"), format!("harness/sim/src/provider/{kind}.rs")] {
            if !repository().join(&file).is_file() {
                problems.push(format!("`{kind}` has no {file}"));
            }
        }
        let row = format!("| `{kind}` | `harness/sim/src/provider/{kind}.rs` |");
        if !simulated.contains(&row) {
            problems.push(format!("reference/simulated-providers.md has no row `{row}`"));
        }
    }
    assert_none(problems, "the provider registry is incomplete");
}

/// Whether a code span of CONTRIBUTING.md names a file or directory of the repository.
fn names_a_path(span: &str) -> bool {
    span.contains('/')
        && !span.starts_with('/')
        && !span.contains(char::is_whitespace)
        && !span.contains(['…', '{', '(', ':'])
}

/// The "Add a provider" checklist names only files that exist. A `<kind>` path must exist
/// for every kind; the default kind's files may leave the kind out of their names
/// (`scenarios/happy-path.toml`, `smsim-serve.toml`).
#[test]
fn the_add_a_provider_checklist_names_files_that_exist() {
    let contributing = read(&repository().join("CONTRIBUTING.md"));
    let section = contributing
        .split("### 1. Add a provider")
        .nth(1)
        .and_then(|rest| rest.split("\n### ").next())
        .expect("CONTRIBUTING.md has its \"Add a provider\" checklist");
    let paths: Vec<&str> = section.split('`').skip(1).step_by(2).filter(|span| names_a_path(span)).collect();
    assert!(paths.len() >= 20, "the checklist names only {} paths: {paths:?}", paths.len());
    let exists = |path: &str| repository().join(path).exists();
    let mut problems = Vec::new();
    for path in paths {
        if path.contains("<kind>") {
            for kind in ProviderKind::ALL {
                let named =
                    [path.replace("<kind>", kind.as_str()), path.replace("-<kind>", ""), path.replace("<kind>-", "")];
                if !named.iter().any(|path| exists(path)) {
                    problems.push(format!("`{path}` does not exist for `{kind}`"));
                }
            }
        } else if !exists(path) {
            problems.push(format!("`{path}` does not exist"));
        }
    }
    assert_none(problems, "CONTRIBUTING.md's provider checklist names missing files");
}
