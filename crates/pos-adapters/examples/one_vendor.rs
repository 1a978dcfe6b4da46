//! Another service using one vendor adapter on its own, as the crate docs show: open a Treez
//! store from its config, create a customer, find them by phone, change their notes. Here the
//! store's `base_url` points at the Treez test double, so it runs anywhere:
//!
//! `cargo run -p pos-gateway-pos-adapters --example one_vendor`
//!
//! A service of yours would depend on `pos-adapters` with `default-features = false,
//! features = ["treez"]` and give the store's real config instead.

use domain::{
    CreateKey, CustomerForm, CustomerPatch, CustomerQuery, Input, NewCustomer, PosError, Store,
    StoreId, Vendor,
};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let double = vendor_doubles::treez::TreezDouble::start()?;
    let store = Store {
        id: StoreId(1),
        name: "Main St".into(),
        vendor: Vendor::Treez,
        // `dispensary`, `client_id`, `api_key` and `base_url`: see docs/vendors/treez.md.
        config: double.store_config().into(),
    };
    let treez = pos_adapters::connect(&store)?;
    println!("{:?} can: {:?}", treez.vendor(), treez.capabilities());

    let form = CustomerForm {
        first_name: Input::Text("Ann".into()),
        last_name: Input::Text("Lee".into()),
        birthday: Input::Text("1990-02-03".into()),
        phone: Input::Text("(555) 123-4567".into()),
        ..CustomerForm::default()
    };
    let today = chrono::Utc::now().date_naive();
    let ann = NewCustomer::parse(&form, today).map_err(|errors| format!("{errors:?}"))?;
    let created = treez
        .create(&ann, &CreateKey::derive(&["one_vendor example", "ann"]))
        .await?;
    println!("created {} at Treez", created.customer_id.as_str());

    let query = CustomerQuery {
        phone_digits: Some("5551234567".into()),
        limit: 10,
        ..CustomerQuery::default()
    };
    for customer in treez.find(&query).await?.customers {
        println!(
            "found {} {} ({})",
            customer.first_name.as_str(),
            customer.last_name.as_str(),
            customer.customer_id.as_str()
        );
    }

    let patch = CustomerPatch {
        notes: Some(Some("prefers edibles".into())),
        ..CustomerPatch::default()
    };
    let updated = treez.update(&created.customer_id, &patch).await?;
    println!("notes now: {:?}", updated.notes);

    // Errors are the domain's: a vendor that is down is `Unavailable`, never a panic.
    double.fail(
        vendor_doubles::Op::Get,
        vendor_doubles::Fault::Status(503),
        5,
    );
    match treez.get(&created.customer_id).await {
        Err(PosError::Unavailable { message, .. }) => println!("Treez down: {message}"),
        other => println!("unexpected: {other:?}"),
    }
    Ok(())
}
