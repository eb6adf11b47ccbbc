//! The PostgreSQL store over TLS, against a real server that takes TCP connections over TLS
//! only: `sslmode` and `sslrootcert` in the store URL mean what they mean to libpq.

use cordon_store::{BankName, NewBank, Store, StoreLocation};
use cordon_testkit::{CERTIFIED_USER, PostgresServer};

/// Opens the store at `url` plus `query`: the error's text when it cannot.
fn open(url: &str, query: &str) -> Result<Store, String> {
    let location = StoreLocation::parse(&format!("{url}{query}")).map_err(|e| e.to_string())?;
    Store::open_at(&location).map_err(|e| e.to_string())
}

#[test]
fn the_store_url_says_how_the_server_certificate_is_checked() {
    let server = PostgresServer::start_tls();
    let tls = server.tls().unwrap();
    let by_address = server.new_database("tls");
    let by_name = by_address.replace("127.0.0.1", "localhost");
    let (authority, stranger) = (tls.authority.display(), tls.stranger.display());

    // Encrypted without checking (libpq's default `prefer`, and `require`).
    let mut store = open(&by_address, "").unwrap();
    store
        .create_bank(&BankName::new("TVEC").unwrap(), NewBank::default())
        .unwrap();
    open(&by_address, "?sslmode=require").unwrap();
    // The server takes no plain connection: so every one above was over TLS.
    let plain = open(&by_address, "?sslmode=disable").err().unwrap();
    assert!(plain.contains("no encryption"), "{plain}");

    // The server's certificate names `localhost`, signed by `authority`.
    let full = format!("?sslmode=verify-full&sslrootcert={authority}");
    assert!(open(&by_name, &full).unwrap().banks().unwrap().len() == 1);
    // A node's other connections (its LISTEN, its leader's lock) are made the same way.
    let mut listener = cordon_store::connect_postgres(&format!("{by_name}{full}")).unwrap();
    listener.batch_execute("LISTEN cordon_changes").unwrap();
    open(
        &by_address,
        &format!("?sslmode=verify-ca&sslrootcert={authority}"),
    )
    .unwrap();
    open(&by_address, &format!("?sslmode=require&sslrootcert={authority}")).unwrap();
    let wrong_host = open(&by_address, &full).err().unwrap();
    assert!(wrong_host.contains("certificate verify failed"), "{wrong_host}");
    for refused in [
        format!("?sslmode=verify-full&sslrootcert={stranger}"),
        format!("?sslmode=require&sslrootcert={stranger}"),
        // The system's authorities do not know the test's.
        "?sslmode=verify-full".to_string(),
    ] {
        let error = open(&by_name, &refused).err().unwrap();
        assert!(error.contains("certificate verify failed"), "{refused}: {error}");
    }

    // A user the server asks for a client certificate: refused without one, let in with
    // the one the authority signed for that name; a key others can read is not used.
    let certified = by_name.replace("cordon@", &format!("{CERTIFIED_USER}@"));
    let without = open(&certified, &full).err().unwrap();
    assert!(
        without.contains("requires a valid client certificate"),
        "{without}"
    );
    let (certificate, key) = (tls.client_certificate.display(), tls.client_key.display());
    let with = format!("{full}&sslcert={certificate}&sslkey={key}");
    assert_eq!(open(&certified, &with).unwrap().banks().unwrap().len(), 1);
    let exposed = tls.client_key.with_file_name("exposed.key");
    std::fs::copy(&tls.client_key, &exposed).unwrap();
    std::fs::set_permissions(&exposed, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let error = open(
        &certified,
        &format!("{full}&sslcert={certificate}&sslkey={}", exposed.display()),
    )
    .err()
    .unwrap();
    assert!(error.contains("chmod 600"), "{error}");

    // Passwords stay out of what is said about the URL, wherever the URL holds them.
    let port = server.port();
    for (url, query) in [
        (
            format!("postgres://cordon:s3cret@127.0.0.1:{port}/tls"),
            "?sslmode=bogus",
        ),
        (
            format!("postgres://cordon:s3cret@127.0.0.1:{port}/tls"),
            "?sslmode=disable",
        ),
        (
            format!("postgres://cordon:s3/cr?t@127.0.0.1:{port}/tls"),
            "?sslmode=disable",
        ),
        (
            format!("postgres://cordon@127.0.0.1:{port}/tls"),
            "?password=s3cret&sslmode=disable",
        ),
    ] {
        let error = open(&url, query).err().unwrap();
        assert!(error.contains("127.0.0.1") && !error.contains("s3"), "{error}");
    }
}
