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
    // tarsnode puts encoded results in this string (getStateInfo: ServerStateInfo + string);
    // C++ servers log and report text in whatever encoding they use (GBK is common), which a
    // `String` would refuse, losing the whole call.
    let mut config = tars_idl::Config::new();
    for binary in
        ["AdminReg.reportResult.result", "Log.logger.buffer", "Log.loggerbyInfo.buffer", "ReportInfo.sMessage"]
    {
        config.binary_string(binary);
    }
    if let Err(e) = config.compile(&files) {
        // The message carries file:line:column; fail the build with it.
        panic!("{e}");
    }
}
