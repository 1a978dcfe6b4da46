//! A vendor's test double on loopback, for trying a vendor store by hand (the demo is on the
//! built-in `local` POS): seeds customers, writes a store config that reaches the double, and
//! serves until Ctrl-C.
//!
//! ```sh
//! cargo run -p pos-gateway --example vendor_double -- cova 500 200ms > cova.json &
//! pos-gateway store add --name "Cova shop" --vendor cova --config cova.json
//! pos-gateway catalog add --store 2 --id cova-kiosk
//! pos-gateway sync --catalog cova-kiosk      # a progress bar, 500 customers, 200 ms a call
//! ```
//!
//! Arguments: the vendor (any of `vendor_doubles::DOUBLES`), how many customers to seed
//! (default 100), and a latency per call (default none).
#![allow(clippy::print_stdout)]

use std::time::Duration;

use vendor_doubles::SeedCustomer;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let vendor = args.next().unwrap_or_else(|| "treez".to_owned());
    let count: u32 = args.next().map(|n| n.parse()).transpose()?.unwrap_or(100);
    let latency = args
        .next()
        .map(|l| humantime::parse_duration(&l))
        .transpose()?
        .unwrap_or(Duration::ZERO);
    let names: Vec<&str> = vendor_doubles::DOUBLES.iter().map(|(n, _)| *n).collect();
    let double = vendor_doubles::start(&vendor)
        .ok_or_else(|| format!("no double for {vendor}; there are: {}", names.join(", ")))??;
    for n in 1..=count {
        double.seed_customer(&SeedCustomer::numbered(n));
    }
    double.double().set_latency(latency);
    println!("{}", double.store_config());
    eprintln!(
        "{vendor} double on {} with {count} customers; Ctrl-C stops it",
        double.double().url()
    );
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
