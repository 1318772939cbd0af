//! Compiles `tars/Hello.tars` into `$OUT_DIR` (module `TestApp`).

fn main() {
    if let Err(e) = tars_idl::Config::new().compile(&["tars/Hello.tars"]) {
        // The message carries file:line:column; fail the build with it.
        panic!("{e}");
    }
}
