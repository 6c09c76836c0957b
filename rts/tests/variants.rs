//! Every PixelRTS variant Geometry OS writes, read right: the exact bytes (size and SHA-256 of
//! `expected.json`), the rule that found them, the segments and their hashes, or one clear
//! line for a broken file. Each kind is a file in `assets/rts-variants/` (or
//! `GOS_RTS_VARIANTS`), made from random data for this project.

use gos_rts::{decode, decode_file, hex, variants_dir, Rule};
use serde_json::Value;

#[test]
fn every_variant_decodes_to_its_expected_bytes_by_its_rule() {
    let dir = variants_dir();
    let expected: Value =
        serde_json::from_slice(&std::fs::read(dir.join("expected.json")).unwrap()).unwrap();
    let mut rules = Vec::new();
    for case in expected.as_array().unwrap() {
        let file = case["file"].as_str().unwrap();
        let got = decode_file(&dir.join(file));
        if let Some(error) = case.get("error").and_then(Value::as_str) {
            let e = got.expect_err(file).to_string();
            assert_eq!(e.lines().count(), 1, "{file}: {e}");
            // The expected text names the image's size and, where it states one, the grid.
            let size = error.split_whitespace().find(|w| w.contains('x')).unwrap();
            assert!(e.contains(size), "{file}: {e} (expected: {error})");
            if error.contains("metadata says") {
                assert!(
                    e.contains("512x512 grid its metadata states"),
                    "{file}: {e}"
                );
            }
            continue;
        }
        let rts = got.unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(
            rts.data.len() as u64,
            case["data_size"].as_u64().unwrap(),
            "{file}"
        );
        assert_eq!(hex(&rts.sha256), case["sha256"].as_str().unwrap(), "{file}");
        if let Some(segs) = case.get("segments").and_then(Value::as_object) {
            let got: Vec<(String, u64, u64)> = rts
                .segments
                .iter()
                .map(|s| (s.name.clone(), s.start, s.end))
                .collect();
            for (name, range) in segs {
                let want = (
                    name.clone(),
                    range[0].as_u64().unwrap(),
                    range[1].as_u64().unwrap(),
                );
                assert!(got.contains(&want), "{file}: {want:?} not in {got:?}");
            }
            assert!(
                rts.segments.iter().all(|s| s.verified),
                "{file}: every segment hash checked"
            );
        }
        rules.push((file.to_string(), rts.rule));
    }
    let rule = |f: &str| rules.iter().find(|(n, _)| n == f).map(|(_, r)| *r);
    assert_eq!(rule("segments-no-data-size.rts.png"), Some(Rule::Segments));
    assert_eq!(rule("no-metadata.rts.png"), Some(Rule::NoMetadata));
    assert_eq!(rule("riscv-program.rts.png"), Some(Rule::CodeSize));
    assert_eq!(rule("module.rts.png"), Some(Rule::LinearRgb));
    assert_eq!(rule("zlib-compressed.rts.png"), Some(Rule::Compressed));
    assert_eq!(rule("hybrid-dna-v1.rts.png"), Some(Rule::WholeGrid));
    assert_eq!(rule("logic-itxt.rts.png"), Some(Rule::DataSize));
}

#[test]
fn a_segment_whose_bytes_changed_is_named() {
    let dir = variants_dir();
    let rts = decode_file(&dir.join("segments-no-data-size.rts.png")).unwrap();
    let mut meta: Value = serde_json::from_str(&rts.metadata).unwrap();
    meta["offsets"]["initrd"]["sha256"] = "00".repeat(32).into();
    let e = gos_rts::verify(&rts.pixels, rts.side, &meta.to_string(), &rts.sha256).unwrap_err();
    assert!(e.to_string().contains("segment initrd"), "{e}");
}

/// An RGBA image whose Hilbert-ordered bytes are `data`, with `meta` as its PixelRTS chunk.
fn pixelrts(side: u32, data: &[u8], meta: &str) -> Vec<u8> {
    gos_rts::encode(side, data, meta)
}

#[test]
fn zstandard_is_read_by_its_magic_and_sizes_are_checked() {
    let data: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();
    let z =
        ruzstd::encoding::compress_to_vec(&data[..], ruzstd::encoding::CompressionLevel::Fastest);
    let hash = hex(&<sha2::Sha256 as sha2::Digest>::digest(&data));
    // Geometry OS's encoder writes Zstandard; the type may say zstd, or nothing useful.
    for kind in ["zstd", "zlib"] {
        let meta = format!(
            r#"{{"grid_size":32,"data_size":{},"encoded_size":{},"data_hash":"{hash}","compression":{{"type":"{kind}"}}}}"#,
            data.len(),
            z.len()
        );
        let rts = decode(&pixelrts(32, &z, &meta), None).unwrap();
        assert_eq!(rts.data, data, "{kind}");
        assert_eq!(
            (rts.rule, rts.verified.clone()),
            (Rule::Compressed, vec!["data_hash".to_string()])
        );
    }
    // A stated size the stream does not inflate to is one clear line.
    let meta = format!(
        r#"{{"data_size":{},"encoded_size":{},"compression":{{"type":"zstd"}}}}"#,
        data.len() + 1,
        z.len()
    );
    let e = decode(&pixelrts(32, &z, &meta), None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("inflates to 5000 bytes, but data_size says 5001"),
        "{e}"
    );
    // An unknown codec is named.
    let meta = r#"{"data_size":4,"encoded_size":4,"compression":{"type":"lzma"}}"#;
    let e = decode(&pixelrts(32, b"abcd", meta), None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("lzma"), "{e}");
}

#[test]
fn sidecars_are_looked_for_in_the_documented_order() {
    let names: Vec<String> = gos_rts::sidecars(std::path::Path::new("/a/module.rts.png"))
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    assert_eq!(
        names,
        [
            "/a/module.rts.png.meta.json",
            "/a/module.rts.meta.json",
            "/a/module.rts.rts.meta.json"
        ]
    );
}

#[test]
fn hostile_metadata_is_refused_before_any_work() {
    let z = ruzstd::encoding::compress_to_vec(
        &[0u8; 64][..],
        ruzstd::encoding::CompressionLevel::Fastest,
    );
    // A stated size past what any PixelRTS image holds: refused before inflating.
    let meta = format!(
        r#"{{"data_size":{},"encoded_size":{},"compression":{{"type":"zstd"}}}}"#,
        gos_rts::MAX_INFLATED + 1,
        z.len()
    );
    let e = decode(&pixelrts(16, &z, &meta), None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("more than the"), "{e}");
    // More segments than a file may list.
    let many: Vec<String> = (0..=gos_rts::MAX_SEGMENTS)
        .map(|i| format!(r#""s{i}":{{"start":0,"end":4}}"#))
        .collect();
    let meta = format!(r#"{{"offsets":{{{}}}}}"#, many.join(","));
    let e = decode(&pixelrts(16, b"abcd", &meta), None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("segments, more than"), "{e}");
    // A size past the grid names its key.
    let e = decode(&pixelrts(4, b"abcd", r#"{"code_size":100000}"#), None)
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("code_size 100000 is larger"), "{e}");
}

#[test]
fn no_compression_spelled_any_way_is_no_compression_and_empty_segments_prove_nothing() {
    for c in [
        "null",
        "false",
        r#""none""#,
        r#"{"type":"raw"}"#,
        r#"{"type":""}"#,
    ] {
        let meta = format!(r#"{{"data_size":4,"compression":{c}}}"#);
        let rts = decode(&pixelrts(4, b"abcd", &meta), None).unwrap();
        assert_eq!(
            (rts.rule, &rts.data[..]),
            (Rule::DataSize, &b"abcd"[..]),
            "{c}"
        );
    }
    let empty = hex(&<sha2::Sha256 as sha2::Digest>::digest(b""));
    let meta =
        format!(r#"{{"data_size":4,"offsets":{{"e":{{"start":0,"end":0,"sha256":"{empty}"}}}}}}"#);
    let rts = decode(&pixelrts(4, b"abcd", &meta), None).unwrap();
    assert!(!rts.hash_verified && !rts.segments[0].verified);
}
