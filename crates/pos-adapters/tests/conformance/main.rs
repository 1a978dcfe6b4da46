//! The vendor conformance suite, in the spirit of OpenDAL's behaviour tests: every property a
//! vendor adapter must have whatever the vendor, written once ([`cases`]) and run against
//! every adapter this build has ([`pos_adapters::VENDORS`]), each against its vendor's test
//! double ([`vendor_doubles::start`]). A case the vendor's capabilities rule out is skipped,
//! and said so: the run prints why, and the case shows as `ignored`.
//!
//! A new vendor needs no line here: its entry in `VENDORS` and its double in
//! `vendor_doubles::DOUBLES` are all it takes to get every case.
//!
//! Run one vendor's cases: `cargo test -p pos-gateway-pos-adapters --test conformance -- treez::`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod cases;
mod under;

use libtest_mimic::{Arguments, Trial};

fn main() {
    let args = Arguments::from_args();
    let mut trials = Vec::new();
    let mut skipped = Vec::new();
    for spec in pos_adapters::VENDORS {
        for case in cases::CASES {
            let name = format!("{}::{}", spec.vendor, case.name);
            match case.applies(&spec.capabilities) {
                Ok(()) => trials.push(Trial::test(name, move || {
                    under::run(spec, case.run);
                    Ok(())
                })),
                Err(why) => {
                    skipped.push(format!("{name}: {why}"));
                    trials.push(
                        Trial::test(name, move || {
                            eprintln!("not applicable: {why}");
                            Ok(())
                        })
                        .with_ignored_flag(true),
                    );
                }
            }
        }
    }
    if !skipped.is_empty() && !args.list {
        eprintln!(
            "conformance: {} case(s) skipped by the vendors' capabilities:",
            skipped.len()
        );
        for line in &skipped {
            eprintln!("  {line}");
        }
    }
    libtest_mimic::run(&args, trials).exit();
}
