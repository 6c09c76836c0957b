//! Hybrid DNA read from every carrier Geometry OS writes, checked against the fixtures'
//! `expected.json` (`logic`: the source each file carries).

use gos_rts::logic::extract_file;
use gos_rts::variants_dir;
use serde_json::Value;

#[test]
fn every_variant_that_carries_logic_yields_exactly_its_source() {
    let dir = variants_dir();
    let expected: Value =
        serde_json::from_slice(&std::fs::read(dir.join("expected.json")).unwrap()).unwrap();
    let mut carriers = Vec::new();
    for case in expected.as_array().unwrap() {
        let file = case["file"].as_str().unwrap();
        let got = extract_file(&dir.join(file));
        match case.get("logic").and_then(Value::as_str) {
            Some(want) => {
                let logic = got
                    .unwrap()
                    .unwrap_or_else(|| panic!("{file}: no logic found"));
                assert_eq!(logic.code, want, "{file}");
                assert_eq!(logic.language, "python", "{file}");
                carriers.push(logic.carrier);
            }
            // Files without logic carry none (or are not PNG files a decoder takes).
            None => assert!(
                !matches!(got, Ok(Some(_))),
                "{file}: logic where there is none"
            ),
        }
    }
    carriers.sort();
    assert_eq!(
        carriers,
        [
            "Hybrid-DNA-v1",
            "RTS_Logic iTXt",
            "RTS_Logic tEXt",
            "RTS_Logic zTXt"
        ]
    );
}

#[test]
fn a_damaged_png_is_an_error_not_a_panic() {
    let dir = variants_dir();
    let mut bytes = std::fs::read(dir.join("logic-itxt.rts.png")).unwrap();
    for cut in [0, 8, 30, bytes.len() / 2] {
        assert!(
            gos_rts::logic::extract(&bytes[..cut]).is_err(),
            "cut at {cut}"
        );
    }
    // A header whose CRC does not match.
    let ihdr = bytes.windows(4).position(|w| w == b"IHDR").unwrap() + 4;
    bytes[ihdr] ^= 0xff;
    assert!(gos_rts::logic::extract(&bytes).is_err());
}

/// A PNG chunk: length, type, data, CRC.
fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut c = (data.len() as u32).to_be_bytes().to_vec();
    c.extend_from_slice(kind);
    c.extend_from_slice(data);
    let mut h = crc32fast::Hasher::new();
    h.update(kind);
    h.update(data);
    c.extend_from_slice(&h.finalize().to_be_bytes());
    c
}

#[test]
fn a_header_that_claims_a_huge_image_allocates_nothing() {
    // 2^28 x (2^31 - 1) RGBA with one empty IDAT, then the logic: a decoder that allocated the
    // claimed frame would abort the process.
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&(1u32 << 28).to_be_bytes());
    ihdr.extend_from_slice(&(i32::MAX as u32).to_be_bytes());
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(chunk(b"IHDR", &ihdr));
    png.extend(chunk(b"tEXt", b"RTS_Logic\0print(1)"));
    png.extend(chunk(b"IEND", b""));
    match gos_rts::logic::extract(&png) {
        Ok(Some(l)) => assert_eq!(l.code, "print(1)"),
        Ok(None) => panic!("the logic before the image was lost"),
        Err(e) => assert!(e.to_string().contains("PNG"), "{e}"),
    }
}

#[test]
fn many_compressed_chunks_are_not_all_inflated() {
    // 200 zTXt chunks of a megabyte of zeros each (a few KiB on disk): only the keywords that
    // can carry logic are inflated, the first of each.
    let zeros = miniz_oxide::deflate::compress_to_vec_zlib(&vec![0u8; 1 << 20], 9);
    let dir = variants_dir();
    let base = std::fs::read(dir.join("logic-json.rts.png")).unwrap();
    let iend = base.len() - 12;
    let mut png = base[..iend].to_vec();
    for i in 0..200 {
        let mut data = format!("junk{i}\0\0").into_bytes();
        data.extend_from_slice(&zeros);
        png.extend(chunk(b"zTXt", &data));
    }
    png.extend_from_slice(&base[iend..]);
    let logic = gos_rts::logic::extract(&png).unwrap().unwrap();
    assert_eq!(logic.carrier, "RTS_Logic tEXt");
}
