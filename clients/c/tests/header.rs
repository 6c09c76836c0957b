//! The checked-in C header must be what cbindgen generates from the code today.
//! Regenerate with `GOS_BUS_BLESS=1 cargo test -p gos-bus-c --test header`.

#[test]
fn header_is_up_to_date() {
    let dir = env!("CARGO_MANIFEST_DIR");
    let config = cbindgen::Config::from_file(format!("{dir}/cbindgen.toml")).unwrap();
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_crate(dir)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header")
        .write(&mut generated);
    let generated = String::from_utf8(generated).unwrap();
    let path = format!("{dir}/include/gos_bus.h");
    if std::env::var_os("GOS_BUS_BLESS").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "clients/c/include/gos_bus.h is stale: regenerate it with GOS_BUS_BLESS=1 cargo test -p gos-bus-c --test header"
    );
    for name in [
        "gos_ring_open",
        "gos_publisher_loan",
        "gos_subscriber_recv",
        "GOS_TIMEOUT",
    ] {
        assert!(generated.contains(name), "{name} is in the header");
    }
}
