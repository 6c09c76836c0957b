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
    // The image data's zlib header made invalid.
    let idat = bytes.windows(4).position(|w| w == b"IDAT").unwrap() + 4;
    bytes[idat] = 0xff;
    bytes[idat + 1] = 0xff;
    assert!(gos_rts::logic::extract(&bytes).is_err());
}
