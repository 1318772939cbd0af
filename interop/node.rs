//! Runs `interop/vectors.js` for the interop tests of several crates (each includes this file
//! with `#[path]`), failing loudly when Node or the pinned npm packages are missing.

use std::path::Path;
use std::process::Command;

/// The `interop/` folder.
pub(crate) const INTEROP_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../interop");

/// Runs vectors.js and returns what it printed: a JSON object of `case name -> hex bytes`.
pub(crate) fn run_vectors() -> Vec<u8> {
    const SETUP: &str = "run `npm ci --prefix interop` from the workspace root (needs Node.js and npm)";
    let dir = Path::new(INTEROP_DIR);
    for pkg in ["@tars/stream", "@tars/rpc"] {
        let manifest = dir.join("node_modules").join(pkg).join("package.json");
        assert!(manifest.exists(), "Node interop: {} is missing: {SETUP}", manifest.display());
    }
    let out = match Command::new("node").arg("vectors.js").current_dir(dir).output() {
        Ok(out) => out,
        Err(e) => panic!("Node interop: cannot run `node` ({e}): install Node.js, then {SETUP}"),
    };
    assert!(
        out.status.success(),
        "Node interop: `node interop/vectors.js` failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Decodes one `name -> hex` pair, naming the case on failure.
pub(crate) fn case_bytes(name: &str, hex: Option<&str>) -> (String, Vec<u8>) {
    let hex = hex.unwrap_or_else(|| panic!("case {name}: value is not a string"));
    let bytes = hex::decode(hex).unwrap_or_else(|e| panic!("case {name}: bad hex: {e}"));
    (name.to_owned(), bytes)
}
