//! TLS to MySQL: the driver negotiates TLS and verifies the server's certificate against the
//! CA given in the URL (`root_cert_path=`); a server cert from an unknown CA is refused.
#![allow(clippy::unwrap_used)]

use tars_sql::{Store, StoreError};
use tars_testkit::mysql::PrivateMariaDb;

#[test]
fn tls_with_verified_server_certificate() {
    let db = PrivateMariaDb::start().unwrap();
    let ca = db.ca_cert();
    assert!(ca.exists(), "the private MariaDB has no CA at {}", ca.display());
    let store = Store::open(&format!("{}?root_cert_path={}", db.url(), ca.display())).unwrap();
    let rows = store.run_blocking(|s| s.query("SHOW SESSION STATUS LIKE 'Ssl_cipher'", &[])).unwrap();
    let cipher: String = rows[0].get(1).unwrap();
    assert!(!cipher.is_empty(), "the connection is not encrypted");

    // A CA that did not sign the server's certificate: the handshake is refused, typed.
    let other = PrivateMariaDb::start().unwrap();
    let wrong = Store::open(&format!("{}?root_cert_path={}", db.url(), other.ca_cert().display())).unwrap();
    let e = wrong.run_blocking(|s| s.query("SELECT 1", &[])).unwrap_err();
    assert!(matches!(e, StoreError::Unavailable { .. }), "{e:?}");
}
