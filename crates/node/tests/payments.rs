//! Paying for requests by voucher, against a real node with a real
//! one-validator chain: what a client pays, what a hostile client tries
//! (no voucher, a replayed one, one for another operator, a forged
//! signature, one spent twice at once, more than its escrow), a failed
//! request's refund, and the redemption that settles exactly what the node
//! took, split between the operator, the auditors' pool and the treasury.

mod common;

use std::time::Duration;

use common::TestNode;
use vouch_api::{InferRequest, JsonTensor};
use vouch_client::{Client, ClientError};
use vouch_node::NodeConfig;
use vouch_node::ledger::{ChainSettings, Genesis, Offer, Params, Tx, TxBody, Voucher};
use vouch_types::{SecretKey, Tensor};

const PRICE: u64 = 100;

fn iris_request(rows: usize, width: usize) -> InferRequest {
    let data: Vec<f32> = (0..rows * width)
        .map(|i| [5.1, 3.5, 1.4, 0.2][i % 4])
        .collect();
    let mut inputs = std::collections::BTreeMap::new();
    inputs.insert(
        "float_input".to_string(),
        JsonTensor(Tensor::from_f32(vec![rows as u64, width as u64], &data).unwrap()),
    );
    InferRequest {
        inputs,
        nonce: Some("n".into()),
        verify: None,
    }
}

/// A node charging [`PRICE`], serving iris, validating a chain of its own
/// on which `client` holds 10,000.
async fn paid_node(dir: &std::path::Path, client: &SecretKey) -> TestNode {
    let mut config = NodeConfig::new(dir.to_path_buf());
    config.price = PRICE;
    let t = TestNode::start(config).await;
    let operator = t.node.public_key();
    t.node
        .start_chain(ChainSettings {
            genesis: Genesis {
                chain_id: "payments-test".into(),
                params: Params::default(),
                accounts: vec![(operator, 1_000_000), (client.public(), 10_000)],
                operators: vec![(operator, 100_000, Offer::default())],
            },
            listen: "127.0.0.1:0".parse().unwrap(),
            bootstrap: vec![],
            leader_timeout: Duration::from_secs(1),
            empty_block_interval: Duration::from_millis(200),
            // Redeemed by hand below, so that the test says when.
            redeem_interval: Duration::from_secs(3600),
            own: false,
        })
        .unwrap();
    common::push_iris(&t).await;
    t
}

/// Signs `body` as `key` at its next nonce, submits it to `t`'s chain and
/// waits for its block; the ledger must accept it.
async fn apply(t: &TestNode, key: &SecretKey, body: TxBody) {
    let chain = t.node.chain().unwrap();
    let (chain_id, nonce) =
        chain.read(|l| (l.chain_id().to_string(), l.account(&key.public()).nonce));
    let id = chain
        .submit(Tx::sign(&chain_id, key, nonce, body).encode())
        .unwrap();
    for _ in 0..600 {
        if let Some((_, outcome)) = chain.outcome(&id) {
            return outcome.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("transaction {id} was not in a block within 30 s");
}

/// `POST /v1/infer/iris` of a `rows` × `width` input with `voucher` as the
/// header: the status, and the error's code and message, if any.
async fn raw_infer(
    t: &TestNode,
    voucher: Option<&str>,
    (rows, width): (usize, usize),
) -> (u16, String, String) {
    let mut req = reqwest::Client::new()
        .post(format!("{}/v1/infer/iris", t.url))
        .json(&iris_request(rows, width));
    if let Some(v) = voucher {
        req = req.header("vouch-voucher", v);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let body: serde_json::Value = resp.json().await.unwrap();
    (
        status,
        body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

/// [`raw_infer`] of one iris row with `voucher`, which must be refused as
/// 402 `payment_required`: the message.
async fn payment_required(t: &TestNode, voucher: Option<&str>) -> String {
    let (status, code_, message) = raw_infer(t, voucher, (1, 4)).await;
    assert_eq!(
        (status, code_.as_str()),
        (402, "payment_required"),
        "{voucher:?}: {message}"
    );
    message
}

fn code(e: ClientError) -> String {
    match e {
        ClientError::Api { code, .. } => code,
        other => panic!("not an API error: {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_pays_by_voucher_hostile_vouchers_are_refused_and_the_operator_redeems_exactly_what_it_took()
 {
    let dir = tempfile::tempdir().unwrap();
    let client_key = SecretKey::from_bytes(&[7; 32]);
    let t = paid_node(dir.path(), &client_key).await;
    let operator = t.node.public_key();
    let chain = t.node.chain().unwrap().clone();
    let chain_id = chain.read(|l| l.chain_id().to_string());
    let ledger_account = |key| chain.read(|l| l.account(&key));
    // The node published its price on the ledger.
    let mut published = false;
    for _ in 0..200 {
        published = chain.read(|l| l.operators()[&operator].offer.price) == PRICE;
        if published {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(published, "the node did not publish its price");

    // No voucher: 402, saying what to send.
    let message = payment_required(&t, None).await;
    assert!(
        message.contains("Vouch-Voucher") && message.contains("100"),
        "{message}"
    );
    // A client with no escrow: its voucher is refused as unfunded.
    let payer = Client::new(&t.url).with_payer(client_key.clone(), None);
    let err = payer
        .infer("iris", None, &iris_request(1, 4))
        .await
        .unwrap_err();
    assert_eq!(code(err), "insufficient_funds");

    apply(&t, &client_key, TxBody::Deposit { amount: 250 }).await;
    // Two paid requests; each receipt names the price it charged.
    for _ in 0..2 {
        let answer = payer
            .infer("iris", None, &iris_request(1, 4))
            .await
            .unwrap();
        assert_eq!(answer.receipt.body.price, PRICE);
        answer.receipt.verify().unwrap();
    }
    let state = payer.payment_state(&client_key.public()).await.unwrap();
    assert_eq!(
        (state.price, state.redeemed, state.escrow, state.next),
        (PRICE, 0, 250, 300)
    );
    assert_eq!(state.held.as_ref().unwrap().cumulative, 200);

    // The same voucher again, one for another operator, one whose
    // signature is not the client's, one that pays nothing new.
    let replayed = Voucher::sign(&chain_id, &client_key, &operator, 200).to_header();
    let other_operator = SecretKey::from_bytes(&[9; 32]).public();
    let elsewhere = Voucher::sign(&chain_id, &client_key, &other_operator, 300).to_header();
    let other_chain = Voucher::sign("another-chain", &client_key, &operator, 300).to_header();
    let mut forged = Voucher::sign(&chain_id, &SecretKey::from_bytes(&[8; 32]), &operator, 300);
    forged.client = client_key.public();
    for (voucher, want) in [
        (replayed.as_str(), "at least 300"),
        (elsewhere.as_str(), "does not verify"),
        (other_chain.as_str(), "does not verify"),
        (&forged.to_header(), "does not verify"),
        ("ed25519:00 1 2", "a voucher is"),
    ] {
        let message = payment_required(&t, Some(voucher)).await;
        assert!(message.contains(want), "{voucher}: {message}");
    }
    // Beyond the escrow: 300 owed, 250 held.
    let err = payer
        .infer("iris", None, &iris_request(1, 4))
        .await
        .unwrap_err();
    assert_eq!(code(err), "insufficient_funds");

    // A request that fails after paying gets its payment back: the same
    // voucher then pays a good request.
    apply(&t, &client_key, TxBody::Deposit { amount: 1_000 }).await;
    let v300 = Voucher::sign(&chain_id, &client_key, &operator, 300).to_header();
    let (status, code_, _) = raw_infer(&t, Some(&v300), (1, 3)).await;
    assert_eq!((status, code_.as_str()), (400, "invalid_input"));
    assert_eq!(
        payer
            .payment_state(&client_key.public())
            .await
            .unwrap()
            .held
            .unwrap()
            .cumulative,
        200,
        "the failed request's voucher was kept"
    );
    // Spent twice at once: exactly one of eight concurrent requests with
    // the same voucher is served.
    let tries = (0..8).map(|_| raw_infer(&t, Some(&v300), (1, 4)));
    let results = futures_util::future::join_all(tries).await;
    let served = results.iter().filter(|(s, _, _)| *s == 200).count();
    assert_eq!(served, 1, "{results:?}");
    assert!(
        results
            .iter()
            .all(|(s, c, _)| *s == 200 || (*s == 402 && c == "payment_required")),
        "{results:?}"
    );

    // Redemption takes exactly the 300 the node took from the client's
    // escrow, once: the operator keeps it less the auditors' pool's and the
    // treasury's shares (5% each by default), which hold the rest.
    let before = ledger_account(operator).balance;
    assert_eq!(t.node.redeem_vouchers().await.unwrap(), 1);
    assert_eq!(ledger_account(operator).balance, before + 270);
    assert_eq!(
        chain.read(|l| (l.auditors_pool(), l.treasury(), l.fees())),
        (15, 15, 300)
    );
    assert_eq!(ledger_account(client_key.public()).escrow, 1_250 - 300);
    assert_eq!(
        chain.read(|l| l.redeemed(&client_key.public(), &operator)),
        300
    );
    assert_eq!(t.node.redeem_vouchers().await.unwrap(), 0);
    assert_eq!(ledger_account(operator).balance, before + 270);
    // The client, learning afresh, pays on from what was settled.
    let fresh = Client::new(&t.url).with_payer(client_key.clone(), None);
    fresh
        .infer("iris", None, &iris_request(1, 4))
        .await
        .unwrap();
    let state = fresh.payment_state(&client_key.public()).await.unwrap();
    assert_eq!((state.redeemed, state.next), (300, 500));
    // The vouchers are kept in the store for a restart.
    assert_eq!(t.node.redeem_vouchers().await.unwrap(), 1);
    let stored = t.node.store().vouchers().unwrap();
    assert_eq!(stored.len(), 1);
    assert!(String::from_utf8_lossy(&stored[0]).contains(" 400 "));
    // A client that caps the price refuses to pay this node.
    let capped = Client::new(&t.url).with_payer(client_key.clone(), Some(PRICE - 1));
    let err = capped
        .infer("iris", None, &iris_request(1, 4))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("over the limit"), "{err}");
    t.stop().await;
}

/// A client that pays four requests ahead signs one voucher per four
/// requests and sends it again until they are spent: the node checks its
/// signature once and counts what each request spends. The same voucher
/// beyond its amount is refused, by hand or replayed; redemption settles
/// the whole voucher, and a client learning afresh goes on from what was
/// spent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_pays_requests_ahead_with_one_voucher_until_they_are_spent() {
    let dir = tempfile::tempdir().unwrap();
    let key = SecretKey::from_bytes(&[11; 32]);
    let t = paid_node(dir.path(), &key).await;
    let operator = t.node.public_key();
    let chain = t.node.chain().unwrap().clone();
    let chain_id = chain.read(|l| l.chain_id().to_string());
    for _ in 0..200 {
        if chain.read(|l| l.operators()[&operator].offer.price) == PRICE {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    apply(&t, &key, TxBody::Deposit { amount: 10_000 }).await;
    let payer = Client::new(&t.url)
        .with_payer(key.clone(), None)
        .paying_ahead(4);
    for _ in 0..6 {
        let answer = payer
            .infer("iris", None, &iris_request(1, 4))
            .await
            .unwrap();
        assert_eq!(answer.receipt.body.price, PRICE);
    }
    // Two vouchers (400, then 800) paid six requests.
    let state = payer.payment_state(&key.public()).await.unwrap();
    assert_eq!(state.held.as_ref().unwrap().cumulative, 800);
    assert_eq!(state.next, 700);
    // The first voucher again: spent already.
    let first = Voucher::sign(&chain_id, &key, &operator, 400).to_header();
    let message = payment_required(&t, Some(&first)).await;
    assert!(message.contains("at least 700"), "{message}");
    // Redeemed before it is spent, the held one still pays what is left of
    // it, and then nothing.
    assert_eq!(t.node.redeem_vouchers().await.unwrap(), 1);
    assert_eq!(chain.read(|l| l.redeemed(&key.public(), &operator)), 800);
    let state = payer.payment_state(&key.public()).await.unwrap();
    assert_eq!((state.redeemed, state.next), (800, 700));
    // A smaller voucher that still covers the next request (750, below
    // the 800 settled) pays it, and the larger one stays held.
    let smaller = Voucher::sign(&chain_id, &key, &operator, 750).to_header();
    let (status, _, message) = raw_infer(&t, Some(&smaller), (1, 4)).await;
    assert_eq!(status, 200, "{message}");
    let state = payer.payment_state(&key.public()).await.unwrap();
    assert_eq!((state.held.unwrap().cumulative, state.next), (800, 800));
    let second = Voucher::sign(&chain_id, &key, &operator, 800).to_header();
    let (status, ..) = raw_infer(&t, Some(&second), (1, 4)).await;
    assert_eq!(status, 200);
    let message = payment_required(&t, Some(&second)).await;
    assert!(message.contains("at least 900"), "{message}");
    assert_eq!(t.node.redeem_vouchers().await.unwrap(), 0);
    // Learning afresh, a client pays on from what was spent.
    let fresh = Client::new(&t.url)
        .with_payer(key.clone(), None)
        .paying_ahead(4);
    fresh
        .infer("iris", None, &iris_request(1, 4))
        .await
        .unwrap();
    let state = fresh.payment_state(&key.public()).await.unwrap();
    assert_eq!(state.held.as_ref().unwrap().cumulative, 1_200);
    assert_eq!(state.next, 1_000);
    t.stop().await;
}

/// A node that presents a voucher the client did not sign, to make it
/// sign a larger one, is refused by the client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_refuses_a_held_voucher_it_did_not_sign() {
    use axum::routing::get;
    let client_key = SecretKey::from_bytes(&[7; 32]);
    let operator = SecretKey::from_bytes(&[1; 32]).public();
    let mut lie = Voucher::sign("c", &SecretKey::from_bytes(&[8; 32]), &operator, 1_000_000);
    lie.client = client_key.public();
    let body = serde_json::json!({
        "chain_id": "c", "operator": operator, "price": 1, "escrow": 10_000_000u64,
        "redeemed": 0, "next": 1_000_001,
        "held": {"client": lie.client, "cumulative": lie.cumulative,
                 "signature": hex::encode(lie.signature.to_bytes())},
    });
    let app = axum::Router::new().route(
        "/v1/payments/{client}",
        get(move || {
            let body = body.clone();
            async move { axum::Json(body) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let payer = Client::new(&url).with_payer(client_key, None);
    let err = payer
        .infer("iris", None, &iris_request(1, 4))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("did not sign"), "{err}");
}

/// A node that routes a request to a paid operator pays it: it signs a
/// voucher of its own for the operator's price on top of what it promised
/// before (asked of the operator the first time), from its escrow. Without
/// escrow the operator refuses the payment, and the gateway says what its
/// operator must do; with escrow every routed request is paid, and the
/// operator redeems exactly what the gateway promised.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_pays_the_operator_it_routes_to_from_its_own_escrow() {
    const ROUTED: u64 = 7;
    let (_dirs, [gateway, provider], keys) = two_validators(
        "routed-payments",
        [61, 62],
        Params::default(),
        vec![],
        [0, ROUTED],
    )
    .await;
    let (g_key, p_key) = (keys[0].public(), keys[1].public());
    common::push_iris(&provider).await;
    // The provider's price reaches the ledger, and the gateway hears of it.
    let chain = gateway.node.chain().unwrap().clone();
    for _ in 0..600 {
        let priced = chain.read(|l| l.operators()[&p_key].offer.price == ROUTED);
        let heard = gateway
            .node
            .network_models()
            .values()
            .any(|m| m.providers.contains(&provider.node.peer_id()));
        if priced && heard {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // No escrow: the provider refuses the gateway's voucher.
    let err = gateway
        .client
        .infer("iris", None, &iris_request(1, 4))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("refused this node's payment")
            && err.contains("insufficient_funds")
            && err.contains("vouch deposit"),
        "{err}"
    );
    // With escrow, each routed request is paid.
    apply(&gateway, &keys[0], TxBody::Deposit { amount: 1_000 }).await;
    // The provider checks the escrow on its own copy of the ledger, which
    // may apply the block a moment after the gateway's.
    let provider_chain = provider.node.chain().unwrap().clone();
    common::eventually("the provider seeing the gateway's deposit", || {
        provider_chain.read(|l| l.account(&g_key).escrow) == 1_000
    })
    .await;
    for _ in 0..3 {
        let answer = gateway
            .client
            .infer("iris", None, &iris_request(1, 4))
            .await
            .unwrap();
        assert_eq!(answer.receipt.body.node, p_key);
        assert_eq!(answer.receipt.body.price, ROUTED);
    }
    let state = provider.node.payment_state(&g_key).unwrap();
    assert_eq!(state.held.as_ref().map(|h| h.cumulative), Some(3 * ROUTED));
    assert_eq!(provider.node.redeem_vouchers().await.unwrap(), 1);
    chain_settles(&gateway, &g_key, &p_key, 3 * ROUTED).await;
    gateway.node.chain().unwrap().read(|l| {
        assert_eq!(l.account(&g_key).escrow, 1_000 - 3 * ROUTED);
    });
    provider.stop().await;
    gateway.stop().await;
}

/// Two staked validators of one chain (`chain_id`, `params`), operator
/// keys from the bytes `seeds`, each with 1,000,000 and 100,000 of stake,
/// beside `accounts`; node `i` charges `prices[i]`, and the second joins
/// the first. Their data directories, the nodes and their keys.
async fn two_validators(
    chain_id: &str,
    seeds: [u8; 2],
    params: Params,
    accounts: Vec<(vouch_types::PublicKey, u64)>,
    prices: [u64; 2],
) -> (Vec<tempfile::TempDir>, [TestNode; 2], [SecretKey; 2]) {
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let keys = seeds.map(|b| SecretKey::from_bytes(&[b; 32]));
    for (dir, key) in dirs.iter().zip(&keys) {
        std::fs::write(dir.path().join("operator.key"), hex::encode(key.to_bytes())).unwrap();
    }
    let genesis = Genesis {
        chain_id: chain_id.into(),
        params,
        accounts: keys
            .iter()
            .map(|k| (k.public(), 1_000_000))
            .chain(accounts)
            .collect(),
        operators: keys
            .iter()
            .map(|k| (k.public(), 100_000, Offer::default()))
            .collect(),
    };
    let ports = vouch_node::ledger::local_ports(2).unwrap();
    let start = |i: usize, bootstrap| {
        common::validator(
            dirs[i].path(),
            &genesis,
            (&ports, i),
            move |c| c.price = prices[i],
            bootstrap,
        )
    };
    let first = start(0, vec![]).await;
    let second = start(1, common::addresses(&first)).await;
    (dirs, [first, second], keys)
}

/// Waits until `t`'s ledger shows `client` settled `amount` with
/// `operator`.
async fn chain_settles(
    t: &TestNode,
    client: &vouch_types::PublicKey,
    operator: &vouch_types::PublicKey,
    amount: u64,
) {
    let chain = t.node.chain().unwrap();
    for _ in 0..600 {
        if chain.read(|l| l.redeemed(client, operator)) == amount {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "the ledger settled {} of {amount}",
        chain.read(|l| l.redeemed(client, operator))
    );
}

/// The auditors' pool pays for audits performed: an executor charging
/// [`PRICE`] answers paid requests, the one other operator serving the
/// model is drawn to audit each (the audit rate is 1 here), re-runs it,
/// and files its signed report once the executor has redeemed: the pool
/// pays it `audit_pay_bp` of the price for each, out of the executor's
/// credit, and the ledger records who audited whom.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_auditors_pool_pays_the_drawn_auditor_for_each_audit_that_passed() {
    use common::eventually;
    const REQUESTS: u64 = 3;
    let client = SecretKey::from_bytes(&[73; 32]);
    let params = Params {
        audit_rate_ppm: 1_000_000,
        // Half of each payment to the pool, 30% of the price an audit:
        // every audit here is paid in full.
        fee_auditors_bp: 5_000,
        audit_pay_bp: 3_000,
        ..Params::default()
    };
    let (_dirs, [executor, auditor], keys) = two_validators(
        "audit-pay",
        [71, 72],
        params.clone(),
        vec![(client.public(), 10_000)],
        [PRICE, 0],
    )
    .await;
    let (e_key, a_key) = (keys[0].public(), keys[1].public());
    let iris = common::push_iris(&executor).await.id;
    common::replicate_from_peers(&auditor, "iris", &iris).await;
    // Both declare the model on the ledger, the executor its price.
    let chain = auditor.node.chain().unwrap().clone();
    eventually("both operators declaring iris and the price", || {
        chain.read(|l| {
            [e_key, a_key].iter().all(|k| l.declares(k, &iris))
                && l.operators()[&e_key].offer.price == PRICE
        })
    })
    .await;
    apply(&executor, &client, TxBody::Deposit { amount: 5_000 }).await;
    let payer = Client::new(&executor.url).with_payer(client.clone(), None);
    for _ in 0..REQUESTS {
        let answer = payer
            .infer("iris", None, &iris_request(1, 4))
            .await
            .unwrap();
        assert_eq!(answer.receipt.body.price, PRICE);
        // As a client would, so that the audit need not wait for the
        // gossip mesh to form.
        auditor
            .client
            .report_receipt(&answer.receipt)
            .await
            .unwrap();
    }
    // Audited (after each receipt's beacon block), reports waiting for the
    // executor's credit.
    eventually("three audits passed and waiting", || {
        auditor.node.waiting_audit_reports() == REQUESTS as usize
    })
    .await;
    assert_eq!(chain.read(|l| l.operators()[&a_key].audits.performed), 0);
    let before = chain.read(|l| l.account(&a_key).balance);
    assert_eq!(executor.node.redeem_vouchers().await.unwrap(), 1);
    eventually("the pool paying each audit", || {
        chain.read(|l| l.operators()[&a_key].audits.performed) == REQUESTS
    })
    .await;
    let pay = PRICE * params.audit_pay_bp / 10_000;
    chain.read(|l| {
        assert_eq!(l.account(&a_key).balance, before + REQUESTS * pay);
        assert_eq!(l.operators()[&a_key].audits.earned, REQUESTS * pay);
        assert_eq!(l.operators()[&e_key].audits.passed, REQUESTS);
        let credited = REQUESTS * PRICE * params.fee_auditors_bp / 10_000;
        assert_eq!(l.audit_credit(&e_key), credited - REQUESTS * pay);
        assert_eq!(l.auditors_pool(), credited - REQUESTS * pay);
    });
    assert_eq!(auditor.node.waiting_audit_reports(), 0);
    // The record, as anyone reads it.
    let ops: serde_json::Value = reqwest::get(format!("{}/v1/ledger/operators", executor.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let a = ops
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["account"] == a_key.to_string())
        .unwrap();
    assert_eq!(a["audits"]["performed"], REQUESTS);
    assert_eq!(a["models"][0], iris.to_string());
    auditor.stop().await;
    executor.stop().await;
}
