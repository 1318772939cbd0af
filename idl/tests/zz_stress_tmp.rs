use std::path::Path;
#[test]
fn stress() {
    let base = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sample/sample.tars")).unwrap();
    let common = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sample/common.tars")).unwrap();
    let mut s: u64 = 88172645463325252;
    let mut r = move || { s ^= s << 13; s ^= s >> 7; s ^= s << 17; s };
    let mut ok = 0; let mut n = 0;
    for _ in 0..40000 {
        let mut b = base.clone().into_bytes();
        for _ in 0..(r() % 4 + 1) {
            let i = (r() as usize) % b.len();
            match r() % 4 {
                0 => { b.remove(i); }
                1 => { let c = b"{}<>;:,=[]()\"#/*-0x9eE.fA_ \n"[(r() % 28) as usize]; b.insert(i, c); }
                2 => { b[i] = (r() % 128) as u8; }
                _ => { let j = (r() as usize) % b.len(); let c = b[j]; b.insert(i, c); }
            }
        }
        let Ok(src) = String::from_utf8(b) else { continue };
        n += 1;
        let _ = tars_idl::parse::parse(Path::new("fuzz.tars"), &src);
        if tars_idl::resolve::load_str(&[("sample.tars", &src), ("common.tars", &common)]).is_ok() { ok += 1; }
    }
    eprintln!("ran {n}, ok {ok}");
    // pathological sizes
    let deep = "module m { struct S { 0 require ".to_string() + &"map<".repeat(200000);
    assert!(tars_idl::parse::parse(Path::new("f"), &deep).is_err());
    let many = format!("module m {{ enum E {{ {} }}; }};", (0..50000).map(|i| format!("V{i}")).collect::<Vec<_>>().join(","));
    assert!(tars_idl::resolve::load_str(&[("f", &many)]).is_ok());
}
