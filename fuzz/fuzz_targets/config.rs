//! The config parser and validator: any text gives a config or one error line, never a panic,
//! and a config that parses prints back to one that parses to the same.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match distributor::config::Config::parse(text, "fuzz") {
        Ok(cfg) => {
            let printed = cfg.to_toml();
            let again = distributor::config::Config::parse(&printed, "printed")
                .expect("a printed config parses");
            assert_eq!(again, cfg);
            let _ = distributor::config::warnings(&cfg);
        }
        Err(e) => assert!(!e.contains('\n'), "one line: {e}"),
    }
});
