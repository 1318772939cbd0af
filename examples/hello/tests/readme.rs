//! The README's "Hello, world" section shows this crate: every code block in it appears
//! verbatim in the file it presents, so the two cannot drift apart.

#![allow(clippy::unwrap_used)]

const README: &str = include_str!("../../../README.md");

/// The fenced blocks of the section, in order.
fn blocks() -> Vec<String> {
    let start = README.find("## Hello, world").expect("the README has a Hello, world section");
    let section = &README[start..];
    let end = section[3..].find("\n## ").map_or(section.len(), |i| i + 3);
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in section[..end].lines() {
        match (&mut current, line.starts_with("```")) {
            (None, true) => current = Some(String::new()),
            (Some(block), true) => {
                out.push(std::mem::take(block));
                current = None;
            }
            (Some(block), false) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, false) => {}
        }
    }
    out
}

#[test]
fn every_readme_block_is_in_the_crate() {
    let files = [
        ("tars/Hello.tars", include_str!("../tars/Hello.tars")),
        ("build.rs", include_str!("../build.rs")),
        ("src/lib.rs", include_str!("../src/lib.rs")),
        ("src/main.rs", include_str!("../src/main.rs")),
        ("hello.conf", include_str!("../hello.conf")),
    ];
    let blocks = blocks();
    // The five files, then the shell commands.
    assert_eq!(blocks.len(), files.len() + 1, "{blocks:#?}");
    for ((name, text), block) in files.iter().zip(&blocks) {
        assert!(text.contains(block.as_str()), "the README's {name} is not the crate's:\n{block}");
    }
    assert!(blocks[files.len()].contains("cargo run -p tars-example-hello"), "{}", blocks[files.len()]);
}
