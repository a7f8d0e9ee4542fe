//! Arbitrary bytes as a webhook body (`WebhookHint::try_from`) and as the settings body
//! (`SaveRequest`): neither may panic, and an accepted webhook body must be a JSON object
//! whose `ticketId` is the accepted, positive id.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use ticketsync::connect::SaveRequest;
use ticketsync::http::webhook::WebhookHint;

fuzz_target!(|data: &[u8]| {
    if let Ok(hint) = WebhookHint::try_from(data) {
        let id = hint.ticket_id.0;
        assert!(id > 0, "ticket id 0 accepted");
        assert!(hint.triggered_event.chars().count() <= 200);
        let value: Value = serde_json::from_slice(data).expect("an accepted body is JSON");
        match value
            .get("ticketId")
            .expect("an accepted body has ticketId")
        {
            Value::Number(n) => assert_eq!(n.as_u64(), Some(id)),
            Value::String(s) => {
                let digits = s.trim();
                assert!(!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()));
                assert_eq!(digits.parse::<u64>().ok(), Some(id));
            }
            other => panic!("ticketId of the wrong type accepted: {other}"),
        }
    }
    let _ = serde_json::from_slice::<SaveRequest>(data);
});
