//! Compiles the test servants' `.tars` files with our own generator.

fn main() {
    let files = ["tars/Interop.tars", "tars/Echo.tars"];
    println!("cargo:rerun-if-changed=tars");
    if let Err(e) = tars_idl::Config::new().compile(&files) {
        panic!("{e}");
    }
}
