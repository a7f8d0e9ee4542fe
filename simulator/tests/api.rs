//! The Freshdesk API surface: auth, roles, directory, tickets, conversations and validation.

mod common;

use chrono::{Duration, Utc};
use common::TestSim;
use freshdesk_sim::{
    AgentNote, BulkTickets, ConfigUpdate, NewAgent, NewTicket, ADMIN_KEY, AGENT_KEY,
};
use serde_json::{json, Value};

fn ids(list: &Value) -> Vec<u64> {
    list.as_array()
        .expect("a list")
        .iter()
        .map(|t| t["id"].as_u64().expect("an id"))
        .collect()
}

#[tokio::test]
async fn requests_without_a_valid_key_are_refused_as_invalid_credentials() {
    let sim = TestSim::start();
    let expected = json!({"code": "invalid_credentials", "message": "You have to be logged in to perform this action."});

    let anonymous = sim.anonymous().get("/agents/me").await;
    assert_eq!(anonymous.status, 401);
    assert_eq!(anonymous.json(), expected);
    assert!(anonymous.header("X-RateLimit-Remaining").is_some());

    let unknown = sim.api("no-such-key").get("/tickets").await;
    assert_eq!(unknown.status, 401);
    assert_eq!(unknown.json(), expected);
}

#[tokio::test]
async fn agents_me_answers_the_freshdesk_agent_shape() {
    let sim = TestSim::start();
    let me = sim.api(ADMIN_KEY).get("/agents/me").await;
    assert_eq!(me.status, 200);
    let me = me.json();
    assert_eq!(me["id"], 42);
    assert_eq!(me["contact"]["name"], "OpenCX AI");
    assert_eq!(me["contact"]["email"], "ai@acme.test");
    assert_eq!(me["role_ids"], json!([1]));
    assert_eq!(me["type"], "support_agent");
    assert_eq!(me["created_at"], "2024-01-02T09:00:00Z");
}

#[tokio::test]
async fn a_deleted_agents_key_stops_working_and_the_agent_disappears() {
    let sim = TestSim::start();
    let agent = sim
        .control
        .create_agent(&NewAgent {
            name: "Temp Admin".into(),
            email: "temp@acme.test".into(),
            role: Some("admin".into()),
            api_key: Some("temp-key".into()),
            group_ids: None,
        })
        .await
        .unwrap();
    let id = agent["id"].as_u64().unwrap();
    assert_eq!(id, 47);
    assert_eq!(agent["role_ids"], json!([4]));
    assert_eq!(sim.api("temp-key").get("/agents/me").await.status, 200);
    assert_eq!(sim.api("temp-key").get("/roles").await.status, 200);

    sim.control.delete_agent(id).await.unwrap();
    assert_eq!(sim.api("temp-key").get("/agents/me").await.status, 401);
    let gone = sim.api(ADMIN_KEY).get(&format!("/agents/{id}")).await;
    assert_eq!(gone.status, 404);
    assert_eq!(gone.text, "");
}

#[tokio::test]
async fn roles_are_forbidden_to_plain_agents_and_listed_for_everyone_else() {
    let sim = TestSim::start();
    let denied = sim.api(AGENT_KEY).get("/roles").await;
    assert_eq!(denied.status, 403);
    assert_eq!(
        denied.json(),
        json!({"code": "access_denied", "message": "You are not authorized to perform this action."})
    );

    let roles = sim.api(ADMIN_KEY).get("/roles").await.json();
    let names: Vec<&str> = roles
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "Account Administrator",
            "Supervisor",
            "Agent",
            "Administrator"
        ]
    );
    assert_eq!(sim.api("sim-sue-key").get("/roles").await.status, 200);
    assert_eq!(sim.api("sim-bob-key").get("/roles").await.status, 200);
}

#[tokio::test]
async fn agents_are_paginated_with_a_link_to_the_next_page() {
    let sim = TestSim::start();
    let api = sim.api(ADMIN_KEY);
    let first = api.get("/agents?per_page=2").await;
    assert_eq!(ids(&first.json()), [42, 43]);
    assert_eq!(
        first.header("Link").unwrap(),
        format!(
            "<http://{}/api/v2/agents?per_page=2&page=2>; rel=\"next\"",
            sim.handle.host()
        )
    );
    let last = api.get("/agents?per_page=2&page=3").await;
    assert_eq!(ids(&last.json()), [46]);
    assert_eq!(last.header("Link"), None);
    assert_eq!(ids(&api.get("/agents").await.json()), [42, 43, 44, 45, 46]);
    assert_eq!(
        api.get("/agents/44").await.json()["contact"]["name"],
        "Alice Human"
    );
    assert_eq!(api.get("/agents/999").await.status, 404);
}

#[tokio::test]
async fn groups_and_ticket_fields_reflect_the_directory() {
    let sim = TestSim::start();
    let api = sim.api(ADMIN_KEY);
    let groups = api.get("/groups").await.json();
    assert_eq!(ids(&groups), [7, 8]);
    assert_eq!(groups[0]["name"], "Support");
    assert_eq!(groups[0]["group_type"], "support_agent_group");

    let created = sim.control.create_group("Escalations").await.unwrap();
    assert_eq!(created["id"], 9);
    sim.control.delete_group(8).await.unwrap();
    assert_eq!(api.get("/groups/8").await.status, 404);
    assert_eq!(ids(&api.get("/groups").await.json()), [7, 9]);

    let fields = api.get("/ticket_fields").await.json();
    let field = |name: &str| {
        fields
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("field {name}"))
    };
    assert_eq!(
        field("cf_opencx_handed_off_1234")["type"],
        "custom_checkbox"
    );
    assert_eq!(
        field("cf_opencx_handed_off_1234")["label"],
        "OpenCX handed off"
    );
    assert_eq!(field("cf_order_number")["type"], "custom_text");
    assert_eq!(field("status")["type"], "default_status");
    assert_eq!(
        field("status")["choices"]["4"],
        json!(["Resolved", "This ticket has been Resolved"])
    );
    assert_eq!(field("status")["choices"]["7"][0], "Waiting on Third Party");
    assert_eq!(
        field("group")["choices"],
        json!({"Support": 7, "Escalations": 9})
    );
    for key in [
        "id",
        "label",
        "position",
        "required_for_closure",
        "default",
        "created_at",
    ] {
        assert!(
            field("subject").get(key).is_some(),
            "ticket field lacks {key}"
        );
    }
}

#[tokio::test]
async fn the_ticket_list_shows_only_the_last_30_days_unless_updated_since_is_given() {
    let sim = TestSim::start();
    let old = Utc::now() - Duration::days(40);
    sim.control
        .create_ticket(&NewTicket {
            created_at: Some(old),
            updated_at: Some(old + Duration::days(1)),
            ..NewTicket::new("Old", "<p>old</p>")
        })
        .await
        .unwrap();
    sim.control
        .create_ticket(&NewTicket::new("Recent", "<p>recent</p>"))
        .await
        .unwrap();
    sim.control
        .create_ticket(&NewTicket::new("Deleted", "x"))
        .await
        .unwrap();
    sim.control.delete_ticket(3).await.unwrap();

    let api = sim.api(ADMIN_KEY);
    let recent = api.get("/tickets").await.json();
    assert_eq!(ids(&recent), [2]);
    assert!(recent[0].get("description").is_none());
    assert!(recent[0].get("description_text").is_none());
    assert_eq!(
        recent[0]["custom_fields"]["cf_opencx_handed_off_1234"],
        false
    );

    let since = (Utc::now() - Duration::days(60)).format("%Y-%m-%dT%H:%M:%SZ");
    let all = api
        .get(&format!("/tickets?updated_since={since}"))
        .await
        .json();
    assert_eq!(ids(&all), [2, 1], "newest created first by default");
    let asc = api
        .get(&format!(
            "/tickets?updated_since={since}&order_by=updated_at&order_type=asc"
        ))
        .await
        .json();
    assert_eq!(ids(&asc), [1, 2]);
    let included = api.get("/tickets?include=description").await.json();
    assert_eq!(included[0]["description_text"], "recent");

    let bad = api.get("/tickets?order_by=subject").await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["errors"][0]["field"], "order_by");
    assert_eq!(api.get("/tickets/3").await.status, 404);
}

#[tokio::test]
async fn ticket_pages_beyond_max_pages_are_refused_and_never_linked() {
    let sim = TestSim::start();
    sim.control
        .set_config(&ConfigUpdate {
            max_pages: Some(3),
            ..ConfigUpdate::default()
        })
        .await
        .unwrap();
    sim.control
        .bulk_tickets(&BulkTickets {
            count: 10,
            updated_at_start: Some(Utc::now() - Duration::hours(1)),
            ..BulkTickets::default()
        })
        .await
        .unwrap();
    let api = sim.api(ADMIN_KEY);

    let page2 = api.get("/tickets?per_page=2&page=2").await;
    assert_eq!(ids(&page2.json()), [8, 7]);
    assert_eq!(
        page2.header("Link").unwrap(),
        format!(
            "<http://{}/api/v2/tickets?per_page=2&page=3>; rel=\"next\"",
            sim.handle.host()
        )
    );
    let page3 = api.get("/tickets?per_page=2&page=3").await;
    assert_eq!(ids(&page3.json()), [6, 5]);
    assert_eq!(page3.header("Link"), None, "page 4 would exceed max_pages");

    let page4 = api.get("/tickets?per_page=2&page=4").await;
    assert_eq!(page4.status, 400);
    assert_eq!(
        page4.json(),
        json!({"description": "Validation failed", "errors": [{"field": "page", "message": "You cannot access a page number greater than 3", "code": "invalid_value"}]})
    );

    let too_big = api.get("/tickets?per_page=101").await;
    assert_eq!(too_big.status, 400);
    assert_eq!(too_big.json()["errors"][0]["field"], "per_page");
    assert_eq!(too_big.json()["errors"][0]["code"], "invalid_value");
}

#[tokio::test]
async fn the_link_keeps_the_other_query_parameters() {
    let sim = TestSim::start();
    sim.control
        .bulk_tickets(&BulkTickets {
            count: 3,
            updated_at_start: Some(Utc::now() - Duration::days(90)),
            ..BulkTickets::default()
        })
        .await
        .unwrap();
    let answer = sim
        .api(ADMIN_KEY)
        .get("/tickets?updated_since=2000-01-01T00:00:00Z&order_by=updated_at&order_type=asc&per_page=2")
        .await;
    assert_eq!(ids(&answer.json()), [1, 2]);
    let link = answer.header("Link").unwrap();
    assert!(
        link.contains("updated_since=2000-01-01T00%3A00%3A00Z&order_by=updated_at&order_type=asc&per_page=2&page=2"),
        "{link}"
    );
}

#[tokio::test]
async fn a_ticket_embeds_at_most_ten_conversations_on_request() {
    let sim = TestSim::start();
    let ticket = sim
        .control
        .create_ticket(&NewTicket {
            email: Some("Jane@Example.com".into()),
            name: Some("Jane".into()),
            ..NewTicket::new("Help", "<div>I need <b>help</b> &amp; fast</div>")
        })
        .await
        .unwrap();
    assert_eq!(ticket["id"], 1);
    assert_eq!(ticket["requester_id"], 5001);
    assert_eq!(ticket["description_text"], "I need help & fast");
    for i in 0..12 {
        sim.control
            .customer_reply(1, &format!("message {i}"))
            .await
            .unwrap();
    }
    let api = sim.api(ADMIN_KEY);
    let plain = api.get("/tickets/1").await;
    assert!(plain.json().get("conversations").is_none());
    assert_eq!(plain.header_u64("X-RateLimit-Used-CurrentRequest"), 1);

    let full = api.get("/tickets/1?include=conversations").await;
    assert_eq!(full.header_u64("X-RateLimit-Used-CurrentRequest"), 3);
    let conversations = full.json()["conversations"].as_array().unwrap().clone();
    assert_eq!(conversations.len(), 10);
    assert_eq!(conversations[0]["body"], "message 0");
    assert_eq!(conversations[0]["id"], 9_000_000_001u64);
    assert_eq!(conversations[0]["user_id"], 5001);
    assert_eq!(conversations[0]["incoming"], true);
    assert_eq!(conversations[0]["from_email"], "jane@example.com");

    let everything = sim.control.get_ticket(1).await.unwrap();
    assert_eq!(everything["conversations"].as_array().unwrap().len(), 12);

    let with_requester = api.get("/tickets/1?include=requester").await.json();
    assert_eq!(with_requester["requester"]["name"], "Jane");
    assert_eq!(api.get("/tickets/1?include=bogus").await.status, 400);
}

#[tokio::test]
async fn conversations_are_listed_oldest_first_page_by_page() {
    let sim = TestSim::start();
    sim.control
        .create_ticket(&NewTicket::new("Thread", "start"))
        .await
        .unwrap();
    for i in 0..5 {
        sim.control
            .customer_reply(1, &format!("m{i}"))
            .await
            .unwrap();
    }
    let api = sim.api(ADMIN_KEY);
    let first = api.get("/tickets/1/conversations?per_page=2").await;
    let bodies = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|c| c["body"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(bodies(&first.json()), ["m0", "m1"]);
    assert!(first
        .header("Link")
        .unwrap()
        .ends_with("/api/v2/tickets/1/conversations?per_page=2&page=2>; rel=\"next\""));
    let last = api.get("/tickets/1/conversations?per_page=2&page=3").await;
    assert_eq!(bodies(&last.json()), ["m4"]);
    assert_eq!(last.header("Link"), None);
    assert_eq!(api.get("/tickets/2/conversations").await.status, 404);
}

#[tokio::test]
async fn replies_and_notes_are_posted_as_the_authenticated_agent() {
    let sim = TestSim::start();
    sim.control
        .create_ticket(&NewTicket::new("Q", "q"))
        .await
        .unwrap();
    let api = sim.api(ADMIN_KEY);
    let before = sim.control.get_ticket(1).await.unwrap()["updated_at"].clone();

    let reply = api
        .post(
            "/tickets/1/reply",
            &json!({"body": "<p>Hello&nbsp;there</p>"}),
        )
        .await;
    assert_eq!(reply.status, 201);
    let reply = reply.json();
    assert_eq!(reply["user_id"], 42);
    assert_eq!(reply["source"], 0);
    assert_eq!(reply["incoming"], false);
    assert_eq!(reply["private"], false);
    assert_eq!(reply["body_text"], "Hello there");
    assert_eq!(reply["ticket_id"], 1);

    let note = api
        .post("/tickets/1/notes", &json!({"body": "internal"}))
        .await
        .json();
    assert_eq!(
        (note["source"].clone(), note["private"].clone()),
        (json!(2), json!(true))
    );
    let public = api
        .post(
            "/tickets/1/notes",
            &json!({"body": "fyi", "private": false, "incoming": true}),
        )
        .await
        .json();
    assert_eq!(public["private"], false);
    assert_eq!(public["incoming"], true);
    assert!(public["id"].as_u64() > note["id"].as_u64());

    let missing = api.post("/tickets/1/reply", &json!({})).await;
    assert_eq!(missing.status, 400);
    assert_eq!(missing.json()["errors"][0]["field"], "body");
    assert_eq!(missing.json()["errors"][0]["code"], "missing_field");
    let unknown = api
        .post("/tickets/1/notes", &json!({"body": "x", "colour": "red"}))
        .await;
    assert_eq!(unknown.json()["errors"][0]["code"], "invalid_field");
    assert_eq!(
        api.post("/tickets/99/reply", &json!({"body": "x"}))
            .await
            .status,
        404
    );

    let after = sim.control.get_ticket(1).await.unwrap();
    assert_eq!(after["conversations"].as_array().unwrap().len(), 3);
    assert!(after["updated_at"].as_str() >= before.as_str());
}

#[tokio::test]
async fn an_agent_note_keeps_incoming_true_like_freshdesk() {
    let sim = TestSim::start();
    sim.control
        .create_ticket(&NewTicket::new("Q", "q"))
        .await
        .unwrap();
    let note = sim
        .control
        .agent_note(1, &AgentNote::private(44, "draft").incoming(true))
        .await
        .unwrap();
    assert_eq!(note["incoming"], true);
    assert_eq!(note["private"], true);
    assert_eq!(note["user_id"], 44);
    let listed = sim
        .api(ADMIN_KEY)
        .get("/tickets/1/conversations")
        .await
        .json();
    assert_eq!(listed[0]["incoming"], true);
}

#[tokio::test]
async fn ticket_updates_are_validated_like_freshdesk() {
    let sim = TestSim::start();
    sim.control
        .create_ticket(&NewTicket::new("Q", "q"))
        .await
        .unwrap();
    sim.control
        .create_agent(&NewAgent {
            name: "Gone".into(),
            email: "gone@acme.test".into(),
            ..NewAgent::default()
        })
        .await
        .unwrap();
    sim.control.delete_agent(47).await.unwrap();
    let api = sim.api(ADMIN_KEY);
    let error_of = |body: Value| body["errors"][0].clone();

    let cases = [
        (
            json!({"responder_id": 999}),
            "responder_id",
            "invalid_value",
        ),
        (json!({"responder_id": 47}), "responder_id", "invalid_value"),
        (json!({"group_id": 99}), "group_id", "invalid_value"),
        (json!({"status": 9}), "status", "invalid_value"),
        (json!({"priority": 5}), "priority", "invalid_value"),
        (
            json!({"custom_fields": {"cf_nope": 1}}),
            "cf_nope",
            "invalid_field",
        ),
        (
            json!({"custom_fields": {"cf_opencx_handed_off_1234": "yes"}}),
            "cf_opencx_handed_off_1234",
            "datatype_mismatch",
        ),
        (json!({"colour": "red"}), "colour", "invalid_field"),
        (json!({"tags": "a,b"}), "tags", "datatype_mismatch"),
    ];
    for (body, field, code) in cases {
        let answer = api.put("/tickets/1", &body).await;
        assert_eq!(answer.status, 400, "{body}");
        let json = answer.json();
        assert_eq!(json["description"], "Validation failed");
        let error = error_of(json);
        assert_eq!(
            (error["field"].as_str(), error["code"].as_str()),
            (Some(field), Some(code)),
            "{body}"
        );
    }
    let several = api
        .put("/tickets/1", &json!({"responder_id": 999, "group_id": 99}))
        .await
        .json();
    assert_eq!(several["errors"].as_array().unwrap().len(), 2);
    let message = api
        .put("/tickets/1", &json!({"responder_id": 999}))
        .await
        .json();
    assert_eq!(
        message["errors"][0]["message"],
        "There is no agent matching the given responder_id"
    );

    let unchanged = sim.control.get_ticket(1).await.unwrap();
    assert_eq!(unchanged["responder_id"], Value::Null);

    let updated = api
        .put(
            "/tickets/1",
            &json!({"responder_id": 44, "group_id": 7, "status": 3, "priority": 2, "tags": ["a", "b"],
                    "custom_fields": {"cf_order_number": "A-1"}, "type": "Question", "subject": "New"}),
        )
        .await;
    assert_eq!(updated.status, 200);
    let updated = updated.json();
    assert_eq!(updated["responder_id"], 44);
    assert_eq!(updated["group_id"], 7);
    assert_eq!(updated["status"], 3);
    assert_eq!(updated["type"], "Question");
    assert_eq!(
        updated["custom_fields"],
        json!({"cf_opencx_handed_off_1234": false, "cf_order_number": "A-1"})
    );

    let handoff = api
        .put("/tickets/1", &json!({"responder_id": null, "status": 2, "tags": ["c"], "custom_fields": {"cf_opencx_handed_off_1234": true}}))
        .await
        .json();
    assert_eq!(handoff["responder_id"], Value::Null);
    assert_eq!(handoff["group_id"], 7);
    assert_eq!(handoff["tags"], json!(["c"]));
    assert_eq!(
        handoff["custom_fields"],
        json!({"cf_opencx_handed_off_1234": true, "cf_order_number": "A-1"})
    );

    let empty = api.send(reqwest::Method::PUT, "/tickets/1", None).await;
    assert_eq!(empty.status, 200, "an empty body changes nothing");
    assert_eq!(
        api.put("/tickets/42", &json!({"status": 2})).await.status,
        404
    );
}

#[tokio::test]
async fn unknown_routes_answer_404_with_an_empty_body() {
    let sim = TestSim::start();
    let api = sim.api(ADMIN_KEY);
    for path in [
        "/nope",
        "/tickets/abc",
        "/tickets/1/whatever",
        "/agents/1/2/3",
    ] {
        let answer = api.get(path).await;
        assert_eq!(answer.status, 404, "{path}");
        assert_eq!(answer.text, "", "{path}");
        assert!(answer.header("X-RateLimit-Total").is_some());
    }
    let wrong_method = api.send(reqwest::Method::DELETE, "/tickets", None).await;
    assert_eq!(wrong_method.status, 405);
}

#[tokio::test]
async fn post_tickets_creates_a_tagged_ticket_and_its_requester_contact() {
    let sim = TestSim::start();
    let api = sim.api(ADMIN_KEY);
    let created = api
        .post(
            "/tickets",
            &json!({
                "email": "selftest@example.invalid",
                "subject": "A test",
                "description": "<p>What this is.</p>",
                "status": 2,
                "priority": 1,
                "tags": ["ticketsync-self-test"]
            }),
        )
        .await;
    assert_eq!(created.status, 201);
    assert!(created.header("X-RateLimit-Remaining").is_some());
    let ticket = created.json();
    let id = ticket["id"].as_u64().unwrap();
    assert_eq!(ticket["subject"], "A test");
    assert_eq!(ticket["description_text"], "What this is.");
    assert_eq!(ticket["tags"], json!(["ticketsync-self-test"]));
    assert_eq!(ticket["status"], 2);
    assert_eq!(ticket["source"], 2);

    let read = api.get(&format!("/tickets/{id}")).await.json();
    assert_eq!(read["requester_id"], ticket["requester_id"]);
    let again = api
        .post(
            "/tickets",
            &json!({"email": "SELFTEST@example.invalid", "subject": "B", "description": "b"}),
        )
        .await
        .json();
    assert_eq!(again["requester_id"], ticket["requester_id"]);
}

#[tokio::test]
async fn post_tickets_reports_every_missing_or_bad_field_and_creates_nothing() {
    let sim = TestSim::start();
    let api = sim.api(ADMIN_KEY);
    let refused = api
        .post(
            "/tickets",
            &json!({"status": 99, "source": 4, "colour": "red"}),
        )
        .await;
    assert_eq!(refused.status, 400);
    let body = refused.json();
    assert_eq!(body["description"], "Validation failed");
    let mut fields: Vec<(String, String)> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["field"].as_str().unwrap().to_string(),
                e["code"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    fields.sort();
    let expected = [
        ("colour", "invalid_field"),
        ("description", "missing_field"),
        ("requester_id", "missing_field"),
        ("source", "invalid_value"),
        ("status", "invalid_value"),
        ("subject", "missing_field"),
    ];
    assert_eq!(
        fields,
        expected
            .iter()
            .map(|(f, c)| (f.to_string(), c.to_string()))
            .collect::<Vec<_>>()
    );
    let bad_email = api
        .post(
            "/tickets",
            &json!({"email": "not an email", "subject": "x", "description": "y"}),
        )
        .await;
    assert_eq!(bad_email.status, 400);
    assert_eq!(bad_email.json()["errors"][0]["field"], "email");
    assert_eq!(sim.control.tickets().await.unwrap().len(), 0);
}

#[tokio::test]
async fn a_deleted_ticket_is_gone_from_every_read() {
    let sim = TestSim::start();
    let api = sim.api(ADMIN_KEY);
    let id = api
        .post(
            "/tickets",
            &json!({"email": "a@example.com", "subject": "x", "description": "y"}),
        )
        .await
        .json()["id"]
        .as_u64()
        .unwrap();
    let deleted = api
        .send(reqwest::Method::DELETE, &format!("/tickets/{id}"), None)
        .await;
    assert_eq!(deleted.status, 204);
    assert_eq!(deleted.text, "");
    assert_eq!(api.get(&format!("/tickets/{id}")).await.status, 404);
    assert_eq!(
        api.get(&format!("/tickets/{id}/conversations"))
            .await
            .status,
        404
    );
    assert_eq!(
        api.send(reqwest::Method::DELETE, &format!("/tickets/{id}"), None)
            .await
            .status,
        404
    );
    assert_eq!(api.get("/tickets").await.json(), json!([]));
}
