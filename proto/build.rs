//! Generates the RPC envelope (`RequestPacket`, `ResponsePacket`) from `tars/RequestF.tars`
//! with our own IDL compiler, so not even the envelope has a hand-written codec. The
//! generated code names this crate as `crate`.

fn main() {
    println!("cargo:rerun-if-changed=tars");
    if let Err(e) = tars_idl::Config::new().runtime_crate("crate").compile(&["tars/RequestF.tars"]) {
        panic!("{e}");
    }
}
