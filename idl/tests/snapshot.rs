//! Pins the generated Rust for `fixtures/sample/*.tars`. On a mismatch the expected file is
//! rewritten when `UPDATE_SNAPSHOTS=1` is set, so the change shows up as a diff to review.

use std::path::Path;

#[test]
fn sample_snapshot() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sample");
    let modules = tars_idl::Config::new().generate(&[dir.join("sample.tars")]).expect("sample compiles");
    let names: Vec<&str> = modules.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["common", "sample"], "included modules come first");
    let mut mismatches = Vec::new();
    for (name, code) in &modules {
        let path = dir.join(format!("{name}.expected.rs"));
        let old = std::fs::read_to_string(&path).unwrap_or_default();
        if old != *code {
            if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
                std::fs::write(&path, code).expect("write snapshot");
            } else {
                mismatches.push(path.display().to_string());
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "generated code differs from {mismatches:?}; rerun with UPDATE_SNAPSHOTS=1 and review the diff"
    );
}

#[test]
fn binary_strings_are_named_parameters_and_members_only() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sample");
    let modules = tars_idl::Config::new()
        .binary_string("Demo.echo.output")
        .generate(&[dir.join("sample.tars")])
        .expect("sample compiles");
    let sample = &modules.iter().find(|(n, _)| n == "sample").expect("sample module").1;
    assert!(sample.contains("output: &mut __tars::codec::BinString"), "servant and proxy out parameter");
    assert!(sample.contains("input: ::std::string::String"), "other strings stay String");
    let err = tars_idl::Config::new().binary_string("Demo.echo.nosuch").generate(&[dir.join("sample.tars")]);
    assert!(matches!(err, Err(tars_idl::IdlError::UnknownBinaryString(p)) if p == "Demo.echo.nosuch"));
    // Struct members, with and without a default, in a map key struct too.
    let modules = tars_idl::Config::new()
        .binary_string("Key.note")
        .binary_string("Everything.label")
        .generate(&[dir.join("sample.tars")])
        .expect("sample compiles");
    let sample = &modules.iter().find(|(n, _)| n == "sample").expect("sample module").1;
    assert!(sample.contains("pub note: __tars::codec::BinString,"), "member");
    assert!(sample.contains("pub label: __tars::codec::BinString,"), "member with a default");
    assert!(sample.contains("label: __tars::codec::BinString::from("), "its default converted");
    assert!(sample.contains("pub zone: ::std::string::String,"), "other members stay String");
    let err = tars_idl::Config::new().binary_string("Key.shard").generate(&[dir.join("sample.tars")]);
    assert!(matches!(err, Err(tars_idl::IdlError::UnknownBinaryString(p)) if p == "Key.shard"));
    // A non-string parameter cannot be one.
    let err = tars_idl::Config::new().binary_string("Demo.lookup.found").generate(&[dir.join("sample.tars")]);
    assert!(err.is_err());
}
