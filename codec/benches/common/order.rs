// The body the codec's benchmarks encode and decode: an order with 3 items and strings.
// Included by codec/benches/codec.rs (timed) and bench/src/bin/echowire-count.rs (counted), so
// both measure the same struct.

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Item<'a> {
    sku: &'a str,
    qty: u32,
    price_cents: u64,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Order<'a> {
    id: u64,
    #[serde(borrow)]
    customer: &'a str,
    #[serde(borrow)]
    items: Vec<Item<'a>>,
    #[serde(borrow)]
    note: Option<&'a str>,
    paid: bool,
}

fn order() -> Order<'static> {
    Order {
        id: 0x1234_5678_9abc,
        customer: "Ada Lovelace",
        items: vec![
            Item {
                sku: "EW-0001",
                qty: 2,
                price_cents: 1999,
            },
            Item {
                sku: "EW-0002",
                qty: 1,
                price_cents: 4500,
            },
            Item {
                sku: "EW-0003",
                qty: 12,
                price_cents: 150,
            },
        ],
        note: Some("leave at the door"),
        paid: true,
    }
}
