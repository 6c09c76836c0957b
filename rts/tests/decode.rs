//! The decoder on real files from the Geometry OS encoder, and on malformed ones.

use gos_rts::{decode, decode_file, hex, verify, RtsError};
use proptest::prelude::*;
use std::path::PathBuf;

/// The sample files (`GOS_RTS_FIXTURES`, else the repository's `assets/rts`).
fn fixtures() -> PathBuf {
    let dir = gos_rts::samples_dir();
    assert!(
        dir.join("expected.json").exists(),
        "the PixelRTS fixtures are missing at {} (set GOS_RTS_FIXTURES)",
        dir.display()
    );
    dir
}

#[test]
fn real_fixtures_decode_to_their_expected_sha256() {
    let dir = fixtures();
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let list = expected.as_array().unwrap();
    assert!(list.len() >= 5);
    for e in list {
        let file = dir.join(e["file"].as_str().unwrap());
        let rts = decode_file(&file).unwrap_or_else(|err| panic!("{}: {err}", file.display()));
        assert_eq!(
            rts.data.len() as u64,
            e["data_size"].as_u64().unwrap(),
            "{}",
            file.display()
        );
        assert_eq!(
            hex(&rts.sha256),
            e["sha256"].as_str().unwrap(),
            "{}",
            file.display()
        );
        assert!(rts.hash_verified, "the file's own data_hash was checked");
        assert_eq!(rts.side, 1 << rts.order);
        assert_eq!(rts.pixels.len(), (rts.side * rts.side * 4) as usize);
        assert_eq!(rts.encoding, "RGBA-dense");
    }
}

#[test]
fn decoded_pixels_verify_and_a_changed_byte_does_not() {
    let dir = fixtures();
    for name in ["blob-1000.rts.png", "blob-65536.rts.png"] {
        let rts = decode_file(&dir.join(name)).unwrap();
        verify(&rts.pixels, rts.side, &rts.metadata, &rts.sha256)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        // The first data byte sits at Hilbert index 0 = pixel (0, 0), red.
        let mut damaged = rts.pixels.clone();
        damaged[0] ^= 0x55;
        let e = verify(&damaged, rts.side, &rts.metadata, &rts.sha256).unwrap_err();
        assert!(matches!(e, RtsError::HashMismatch { .. }), "{name}: {e}");
        // A descriptor that states another hash.
        let mut other = rts.sha256;
        other[31] ^= 1;
        let e = verify(&rts.pixels, rts.side, &rts.metadata, &other).unwrap_err();
        assert!(matches!(e, RtsError::HashMismatch { .. }), "{name}: {e}");
        // Pixels that are not the side's.
        let e = verify(&rts.pixels[4..], rts.side, &rts.metadata, &rts.sha256).unwrap_err();
        assert!(matches!(e, RtsError::Png(_)), "{name}: {e}");
        let e = verify(&rts.pixels, 3, &rts.metadata, &rts.sha256).unwrap_err();
        assert!(matches!(e, RtsError::Shape { .. }), "{name}: {e}");
        let e = verify(&rts.pixels, rts.side, "[1]", &rts.sha256).unwrap_err();
        assert!(matches!(e, RtsError::Metadata(_)), "{name}: {e}");
    }
}

#[test]
fn sidecar_is_used_when_the_png_has_no_chunk() {
    let dir = fixtures();
    let rts = decode_file(&dir.join("blob-1000.rts.png")).unwrap();
    // Re-encode the same pixels without the text chunk.
    let png = encode_png(rts.side, rts.side, png::ColorType::Rgba, &rts.pixels, None);
    let sidecar = std::fs::read_to_string(dir.join("blob-1000.rts.png.meta.json")).unwrap();
    let again = decode(&png, Some(&sidecar)).unwrap();
    assert_eq!(again.data, rts.data);
    // Without any metadata: the whole grid, and the rule says so.
    let bare = decode(&png, None).unwrap();
    assert_eq!(bare.rule, gos_rts::Rule::NoMetadata);
    assert_eq!(bare.data.len() as u32, rts.side * rts.side * 4);
    assert!(!bare.hash_verified);
}

fn encode_png(w: u32, h: u32, color: png::ColorType, pixels: &[u8], meta: Option<&str>) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(color);
        enc.set_depth(png::BitDepth::Eight);
        if let Some(m) = meta {
            enc.add_text_chunk("PixelRTS".into(), format!("PixelRTS{m}"))
                .unwrap();
        }
        let mut writer = enc.write_header().unwrap();
        writer.write_image_data(pixels).unwrap();
    }
    out
}

fn meta(data_size: u64, extra: &str) -> String {
    format!(
        r#"{{"format":"PixelRTS-2.0","encoding":{{"type":"RGBA-dense"}},"data_size":{data_size}{extra}}}"#
    )
}

#[test]
fn malformed_files_are_clear_errors() {
    let rgba = vec![7u8; 4 * 4 * 4];
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"not a png at all".to_vec(), "not a valid PNG"),
        (
            encode_png(
                4,
                4,
                png::ColorType::Rgb,
                &[1u8; 4 * 4 * 3],
                Some(&meta(4, "")),
            ),
            "needs 8-bit RGBA",
        ),
        (
            encode_png(
                4,
                2,
                png::ColorType::Rgba,
                &[1u8; 4 * 2 * 4],
                Some(&meta(4, "")),
            ),
            "power of two",
        ),
        (
            encode_png(
                3,
                3,
                png::ColorType::Rgba,
                &[1u8; 3 * 3 * 4],
                Some(&meta(4, "")),
            ),
            "power of two",
        ),
        (
            encode_png(4, 4, png::ColorType::Rgba, &rgba, Some(&meta(65, ""))),
            "data_size 65 is larger than the 64 bytes",
        ),
        (
            encode_png(4, 4, png::ColorType::Rgba, &rgba, Some("{not json")),
            "malformed PixelRTS metadata",
        ),
        (
            encode_png(
                4,
                4,
                png::ColorType::Rgba,
                &rgba,
                Some(&meta(8, r#","data_hash":"00""#)),
            ),
            "SHA-256 mismatch",
        ),
        (
            encode_png(
                4,
                4,
                png::ColorType::Rgba,
                &rgba,
                Some(&meta(8, r#","compression":{"type":"zstd"}"#)),
            ),
            "compressed data needs `encoded_size`",
        ),
        (
            encode_png(
                4,
                4,
                png::ColorType::Rgba,
                &rgba,
                Some(r#"{"format":"PixelRTS-2.0","grid_size":8,"data_size":4}"#),
            ),
            "not the 8x8 grid its metadata states",
        ),
    ];
    for (bytes, needle) in cases {
        let e = decode(&bytes, None).expect_err(needle).to_string();
        assert!(e.contains(needle), "{needle:?} not in {e:?}");
    }
    // A good synthetic file decodes.
    let ok = decode(
        &encode_png(4, 4, png::ColorType::Rgba, &rgba, Some(&meta(10, ""))),
        None,
    )
    .unwrap();
    assert_eq!(ok.data, vec![7u8; 10]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// Random bytes: an error, never a panic.
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let _ = decode(&bytes, None);
    }

    /// A real file with random bytes changed: an error or a decode, never a panic.
    #[test]
    fn mutated_fixture_never_panics(at in any::<prop::sample::Index>(), value in any::<u8>(), meta in any::<bool>()) {
        let dir = fixtures();
        let mut bytes = std::fs::read(dir.join("blob-1000.rts.png")).unwrap();
        let i = at.index(bytes.len());
        bytes[i] = value;
        let sidecar = std::fs::read_to_string(dir.join("blob-1000.rts.png.meta.json")).unwrap();
        let _ = decode(&bytes, meta.then_some(sidecar.as_str()));
    }

    /// Random metadata in a valid image: an error or a decode, never a panic.
    #[test]
    fn random_metadata_never_panics(size in any::<u64>(), hash in "[0-9a-f]{0,64}", enc in "(RGBA-dense|RGBA-code|x)") {
        let m = format!(r#"{{"encoding":{{"type":"{enc}"}},"data_size":{size},"data_hash":"{hash}","original_data_b64":"QUJD"}}"#);
        let png = encode_png(4, 4, png::ColorType::Rgba, &[9u8; 64], Some(&m));
        let _ = decode(&png, None);
    }
}
