//! The command pages in docs/commands/ carry each command's `--help` verbatim between
//! markers, so the reference cannot drift from the flags: this test fails when one
//! differs, and `BAE_WRITE_DOCS=1` rewrites them from the binary.

use std::path::Path;

use super::{assert_ok, bae_env, stdout};

const BEGIN: &str = "<!-- bae-help: ";
const END: &str = "<!-- /bae-help -->";

/// Each page and the commands whose help it carries.
const PAGES: &[(&str, &[&str])] = &[
    ("run.md", &["run"]),
    ("inspect-and-models.md", &["inspect", "hidden-states", "generate"]),
    ("harvest.md", &["harvest"]),
    ("store.md", &["store stats"]),
    ("train.md", &["train"]),
    ("entropy.md", &["entropy"]),
    ("icl.md", &["icl"]),
    ("fidelity.md", &["fidelity"]),
    ("features.md", &["features"]),
    ("compare.md", &["compare"]),
    ("plot.md", &["plot"]),
    ("gpu-check.md", &["gpu-check"]),
    ("bench.md", &["bench forward", "bench entropy", "bench synthetic-bits", "bench train"]),
];

/// `bae COMMAND --help`, at a fixed width so the pages do not depend on a terminal.
fn help(command: &str) -> String {
    let mut args: Vec<&str> = command.split_whitespace().collect();
    args.push("--help");
    let out = bae_env(&args, &[("COLUMNS", "100")]);
    assert_ok(&out);
    stdout(&out)
}

/// The page with every help block replaced by the binary's, each command's block
/// appended under "Every flag" when the page has none yet.
fn regenerated(page: &str, commands: &[&str]) -> String {
    let mut text = page.to_string();
    for command in commands {
        let block = format!("{BEGIN}{command} -->\n```text\n{}```\n{END}", help(command));
        let marker = format!("{BEGIN}{command} -->");
        match text.find(&marker) {
            Some(start) => {
                let end = text[start..].find(END).map(|e| start + e + END.len()).expect("closed help block");
                text.replace_range(start..end, &block);
            }
            None => {
                if !text.contains("\n## Every flag\n") {
                    text.push_str("\n## Every flag\n\nGenerated from `bae --help`; the binary's help is the authority.\n");
                }
                text.push_str(&format!("\n`bae {command}`:\n\n{block}\n"));
            }
        }
    }
    text
}

#[test]
fn every_command_page_carries_its_commands_current_help() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/commands");
    let write = std::env::var_os("BAE_WRITE_DOCS").is_some();
    let mut stale = Vec::new();
    for (page, commands) in PAGES {
        let path = dir.join(page);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let fresh = regenerated(&text, commands);
        if fresh != text {
            if write {
                std::fs::write(&path, &fresh).unwrap();
            } else {
                stale.push(page.to_string());
            }
        }
    }
    assert!(
        stale.is_empty(),
        "docs/commands/{{{}}} differ from the binary's --help; run BAE_WRITE_DOCS=1 cargo test -p bae-dynamics --test cli docs",
        stale.join(",")
    );
}

#[test]
fn every_command_has_a_page() {
    let listed: Vec<&str> =
        PAGES.iter().flat_map(|(_, c)| c.iter().map(|c| c.split(' ').next().unwrap())).collect();
    let top = help("");
    let commands = top
        .split("Commands:")
        .nth(1)
        .expect("a command list")
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help");
    for command in commands {
        assert!(listed.contains(&command), "bae {command} has no page in docs/commands/");
    }
}
