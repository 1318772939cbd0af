//! Compiles every framework `.tars` file with our own generator.

fn main() {
    let dir = std::path::Path::new("tars");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("protocol/tars exists")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "tars"))
        .collect();
    files.sort();
    println!("cargo:rerun-if-changed=tars");
    // tarsnode puts encoded results in this string (getStateInfo: ServerStateInfo + string).
    if let Err(e) = tars_idl::Config::new().binary_string("AdminReg.reportResult.result").compile(&files) {
        // The message carries file:line:column; fail the build with it.
        panic!("{e}");
    }
}
