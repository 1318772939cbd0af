//! Compiles the spooled batch's `.tars` file with our own generator.

fn main() {
    println!("cargo:rerun-if-changed=tars");
    if let Err(e) = tars_idl::Config::new().compile(&["tars/Batch.tars"]) {
        panic!("{e}");
    }
}
