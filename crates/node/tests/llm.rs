//! A real GGUF LLM (SmolLM2-135M-Instruct on llama.cpp): greedy and seeded
//! generation with receipts, concurrent generations, context limits, and
//! the teacher-forced audit: an honest answer passes on another node, and an
//! edited answer, a changed prompt or a swapped model is caught even when
//! the lying executor signs it.

mod common;

use std::time::Duration;

use common::{TestNode, addresses, admit_all, eventually, models_dir};
use vouch_engine::llm::ChatMessage;
use vouch_node::llm::{Generate, Prompt};
use vouch_node::{NodeConfig, P2pConfig, keyfile, samples};
use vouch_types::llm::{Sampling, Transcript};
use vouch_types::{Digest, Receipt};

const LLM: &str = "smollm2-135m";

fn question(q: &str) -> Prompt {
    Prompt::Chat(vec![
        ChatMessage::text("system", "You are a helpful assistant."),
        ChatMessage::text("user", q),
    ])
}

fn request(prompt: Prompt, max_tokens: u32, sampling: Sampling) -> Generate {
    Generate {
        model: LLM.into(),
        prompt,
        max_tokens: Some(max_tokens),
        stop: vec![],
        sampling,
        nonce: "n".into(),
        constraint: None,
        tools: None,
        logprobs: None,
    }
}

fn sampled(seed: u64) -> Sampling {
    Sampling {
        temperature: 0.8,
        top_p: 0.95,
        top_k: 40,
        seed,
    }
}

async fn push_llm(t: &TestNode, name: &str, file: &std::path::Path) -> Digest {
    let sample = samples::SAMPLES.iter().find(|s| s.name == LLM).unwrap();
    let mut options = sample.options();
    options.name = name.into();
    samples::push_file(&t.node, file, options)
        .await
        .unwrap()
        .id()
}

/// A node on its own, configured by `configure`, serving the sample LLM.
async fn llm_node(dir: &std::path::Path, configure: impl FnOnce(&mut NodeConfig)) -> TestNode {
    let mut config = NodeConfig::new(dir.to_path_buf());
    configure(&mut config);
    let t = TestNode::start(config).await;
    push_llm(&t, LLM, &llm_file()).await;
    t
}

fn llm_file() -> std::path::PathBuf {
    let s = samples::SAMPLES.iter().find(|s| s.name == LLM).unwrap();
    models_dir().join(s.file)
}

/// `t`'s answer to a (not streamed) `/v1/chat/completions` request.
async fn chat_json(t: &TestNode, body: &serde_json::Value) -> serde_json::Value {
    reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", t.url))
        .json(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Model `id`'s entry in `t`'s `/v1/models`.
async fn listed_model(t: &TestNode, id: &str) -> serde_json::Value {
    let models: serde_json::Value = reqwest::get(format!("{}/v1/models", t.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    models["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == id)
        .unwrap_or_else(|| panic!("{id} is not listed: {models}"))
        .clone()
}

/// What a lying executor does: sign a receipt for a transcript it made up.
fn forge(key: &vouch_types::SecretKey, honest: &Receipt, model: Digest, t: &Transcript) -> Receipt {
    let mut body = honest.body.clone();
    body.model = model;
    body.request = t.request.digest();
    body.output = t.chain().output(t.finish_reason);
    body.sign(key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn greedy_and_seeded_generation_with_receipts() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestNode::in_dir(dir.path()).await;
    push_llm(&t, LLM, &llm_file()).await;

    let greedy = request(
        question("What is the capital of France?"),
        24,
        Sampling::default(),
    );
    let a = t.node.generate_all(greedy.clone()).await.unwrap();
    let text = a.texts.concat();
    assert!(text.contains("Paris"), "{text}");
    a.transcript().verify(&a.receipt).unwrap();

    // Concurrent generations share batches; greedy answers do not change.
    let mut handles = Vec::new();
    for i in 0..4u64 {
        let node = t.node.clone();
        let g = if i % 2 == 0 {
            greedy.clone()
        } else {
            request(question("Name a color."), 16, sampled(i))
        };
        handles.push(tokio::spawn(async move { node.generate_all(g).await }));
    }
    for (i, h) in handles.into_iter().enumerate() {
        let f = h.await.unwrap().unwrap();
        f.transcript().verify(&f.receipt).unwrap();
        if i % 2 == 0 {
            assert_eq!(f.tokens, a.tokens, "batched greedy answer differs");
        }
    }

    // The same seed gives the same answer; another seed is free to differ.
    let s1 = t
        .node
        .generate_all(request(question("Tell me a story."), 20, sampled(7)))
        .await
        .unwrap();
    let s2 = t
        .node
        .generate_all(request(question("Tell me a story."), 20, sampled(7)))
        .await
        .unwrap();
    assert_eq!(s1.tokens, s2.tokens);
    assert_eq!(s1.receipt.body.output, s2.receipt.body.output);
    assert_eq!(s1.receipt.body.seed, Some(7));

    // Context length is enforced with a clear error, never truncated.
    let e = t
        .node
        .generate_all(request(question("hi"), 1_000_000, Sampling::default()))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("context holds") && e.contains("lower max_tokens"),
        "{e}"
    );
    // An unknown model is named in the error.
    let mut g = greedy.clone();
    g.model = "nope".into();
    let e = t.node.generate_all(g).await.unwrap_err().to_string();
    assert!(e.contains("no model `nope`"), "{e}");
    t.stop().await;
}

/// Pins the model across two nodes so the auditor holds the very model the
/// receipt names (same model id).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teacher_forcing_passes_honest_answers_and_catches_lies() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut ca = NodeConfig::new(da.path().to_path_buf());
    ca.audit_rate = 0.0;
    let a = TestNode::start(ca).await;
    a.node
        .join(P2pConfig::loopback(vec![]), Some(a.url.clone()))
        .await
        .unwrap();
    let model = push_llm(&a, LLM, &llm_file()).await;

    // A different model: the same weights with another RoPE base.
    let mut swapped = std::fs::read(llm_file()).unwrap();
    let key = b"llama.rope.freq_base";
    let at = swapped.windows(key.len()).position(|w| w == key).unwrap() + key.len() + 4;
    swapped[at..at + 4].copy_from_slice(&10_000f32.to_le_bytes());
    let swapped_path = da.path().join("swapped.gguf");
    std::fs::write(&swapped_path, &swapped).unwrap();
    let swapped_id = push_llm(&a, "smollm2-swapped", &swapped_path).await;
    assert_ne!(swapped_id, model);

    let mut cb = NodeConfig::new(db.path().to_path_buf());
    cb.audit_rate = 0.0;
    let b = TestNode::start(cb).await;
    b.node.admit(a.node.public_key());
    b.node
        .join(P2pConfig::loopback(addresses(&a)), Some(b.url.clone()))
        .await
        .unwrap();
    let mut tries = 0;
    while b.node.replicate(LLM, None).await.is_err() {
        tries += 1;
        assert!(tries < 100, "the model did not replicate");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Honest answers, greedy and sampled, pass on the other node.
    let q = "What is the capital of France?";
    for sampling in [Sampling::default(), sampled(11)] {
        let f = a
            .node
            .generate_all(request(question(q), 32, sampling))
            .await
            .unwrap();
        let check = b.node.check_llm(&f.receipt, &f.transcript()).await.unwrap();
        assert!(check.ok, "honest answer failed: {:?}", check.reason);
        assert_eq!(check.tokens, f.tokens.len());
        // Same kernels on both nodes: every token is exactly what the
        // auditor's logits pick.
        assert_eq!(check.tolerance, Some(0.0), "{check:?}");
        assert_eq!(check.beyond, Some(0), "{check:?}");
    }

    let honest = a
        .node
        .generate_all(request(question(q), 32, Sampling::default()))
        .await
        .unwrap();
    let key = keyfile::load_or_create(&da.path().join("operator.key")).unwrap();
    let loaded = a.node.loaded_model(LLM).await.unwrap();
    let lm = loaded.language().unwrap();

    // An edited answer, signed by the executor.
    let mut edited = honest.transcript();
    let paris = edited
        .texts
        .iter()
        .position(|t| t.contains("Paris"))
        .unwrap();
    let london = lm.tokenize(" London")[0];
    edited.tokens[paris] = london;
    edited.texts[paris] = String::from_utf8(lm.piece(london)).unwrap();
    let forged = forge(&key, &honest.receipt, model, &edited);
    let check = b.node.check_llm(&forged, &edited).await.unwrap();
    assert!(!check.ok);
    // " London" is far from the top: no tolerance short of 0.25 (or none
    // at all) would let it through.
    assert!(
        check.tolerance.is_none_or(|t| t > 0.05),
        "the edit needs only {:?}",
        check.tolerance
    );
    assert!(check.beyond >= Some(1), "{check:?}");
    assert!(
        check
            .reason
            .as_deref()
            .unwrap()
            .contains(&format!("token {paris}")),
        "{check:?}"
    );

    // The same answer claimed for another prompt.
    let mut moved = honest.transcript();
    moved.request.prompt = moved.request.prompt.replace("France", "Germany");
    let forged = forge(&key, &honest.receipt, model, &moved);
    let check = b.node.check_llm(&forged, &moved).await.unwrap();
    assert!(!check.ok, "a changed prompt passed");

    // An answer from another model, claimed for this one.
    let mut g = request(
        question("Write one sentence about the sea."),
        24,
        Sampling::default(),
    );
    g.model = "smollm2-swapped".into();
    let other = a.node.generate_all(g).await.unwrap();
    let claimed = other.transcript();
    let forged = forge(&key, &other.receipt, model, &claimed);
    let check = b.node.check_llm(&forged, &claimed).await.unwrap();
    assert!(!check.ok, "a swapped model passed");

    // Tampering without re-signing fails before any replay.
    let mut tampered = honest.transcript();
    tampered.texts[0].push('!');
    let check = b.node.check_llm(&honest.receipt, &tampered).await.unwrap();
    assert!(check.reason.unwrap().contains("does not match the receipt"));
    b.stop().await;
    a.stop().await;
}

/// A node serving a model from an external OpenAI-compatible server (here
/// another node's API, a real server with a real model): the answer is
/// relayed unchanged, the relaying operator signs it, the receipt says the
/// model is not attested, auditors refuse to replay it, and a server that
/// goes away is reported while the node keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_external_engine_relays_and_signs_unattested_answers() {
    use vouch_node::external::{ExternalModel, NO_TOKEN, UNATTESTED};
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = TestNode::in_dir(da.path()).await;
    push_llm(&a, LLM, &llm_file()).await;
    let mut cb = NodeConfig::new(db.path().to_path_buf());
    cb.externals = vec![ExternalModel::parse(&format!("relay={}/v1#{LLM}", a.url)).unwrap()];
    let b = TestNode::start(cb).await;

    let ask = |model: &str| Generate {
        model: model.into(),
        ..request(
            question("What is the capital of France?"),
            24,
            Sampling::default(),
        )
    };
    let direct = a.node.generate_all(ask(LLM)).await.unwrap();
    let relayed = b.node.generate_all(ask("relay")).await.unwrap();
    let text = relayed.texts.concat();
    assert!(text.contains("Paris"), "{text}");
    assert_eq!(text, direct.texts.concat(), "relayed unchanged");
    assert_eq!(relayed.receipt.body.engine.name, UNATTESTED);
    assert_eq!(relayed.receipt.body.node, b.node.public_key());
    assert!(relayed.tokens.iter().all(|&t| t == NO_TOKEN));
    relayed.receipt.verify().unwrap();
    relayed.transcript().verify(&relayed.receipt).unwrap();
    let mut edited = relayed.transcript();
    edited.texts[0] = "Lyon".into();
    assert!(
        edited.verify(&relayed.receipt).is_err(),
        "the text is signed"
    );

    let check = b
        .node
        .check_llm(&relayed.receipt, &relayed.transcript())
        .await
        .unwrap();
    assert!(!check.ok);
    assert!(check.reason.unwrap().contains("external engine"));

    let zero = Generate {
        max_tokens: Some(0),
        ..ask("relay")
    };
    let e = b.node.generate_all(zero).await.unwrap_err();
    assert_eq!(e.status(), 400, "{e}");

    // Over HTTP, streamed, and listed as not attested.
    let http = reqwest::Client::new();
    let listed = listed_model(&b, "relay").await;
    assert_eq!(listed["vouch"]["attested"], false);
    let sse = http
        .post(format!("{}/v1/chat/completions", b.url))
        .json(&serde_json::json!({"model": "relay", "stream": true, "temperature": 0, "max_tokens": 24,
            "messages": [{"role": "system", "content": "You are a helpful assistant."},
                         {"role": "user", "content": "What is the capital of France?"}]}))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (mut streamed, mut receipt) = (String::new(), None);
    for line in sse.lines().filter_map(|l| l.strip_prefix("data: ")) {
        if line == "[DONE]" {
            break;
        }
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if let Some(t) = v["choices"][0]["delta"]["content"].as_str() {
            streamed.push_str(t);
        }
        if !v["vouch"]["receipt"].is_null() {
            receipt =
                Some(serde_json::from_value::<Receipt>(v["vouch"]["receipt"].clone()).unwrap());
        }
    }
    assert_eq!(streamed, text);
    let receipt = receipt.expect("the stream ends with the receipt");
    receipt.verify().unwrap();
    assert_eq!(receipt.body.engine.name, UNATTESTED);

    // The server goes away: a clear error naming it, and the node serves on.
    a.stop().await;
    let e = b.node.generate_all(ask("relay")).await.unwrap_err();
    assert_eq!(e.status(), 503, "{e}");
    assert!(e.to_string().contains("external server"), "{e}");
    let health = http.get(format!("{}/healthz", b.url)).send().await.unwrap();
    assert!(health.status().is_success());
    b.stop().await;
}

/// A node on loopback that joined the network through `bootstrap`, with
/// background audits at `audit_rate` and an optional fault.
async fn on_network(
    dir: &std::path::Path,
    bootstrap: Vec<vouch_node::p2p::Address>,
    audit_rate: f64,
    fault: Option<vouch_node::service::Fault>,
) -> TestNode {
    on_network_with(dir, bootstrap, |c| {
        c.audit_rate = audit_rate;
        c.fault = fault;
    })
    .await
}

/// A node on loopback, configured by `configure`, that joined the network
/// through `bootstrap`.
async fn on_network_with(
    dir: &std::path::Path,
    bootstrap: Vec<vouch_node::p2p::Address>,
    configure: impl FnOnce(&mut NodeConfig),
) -> TestNode {
    let mut config = NodeConfig::new(dir.to_path_buf());
    configure(&mut config);
    let t = TestNode::start(config).await;
    t.node
        .join(P2pConfig::loopback(bootstrap), Some(t.url.clone()))
        .await
        .unwrap();
    t
}

/// Replicates model `name` (id `id`) onto `t` from its peers.
async fn replicate(t: &TestNode, id: Digest, name: &str) {
    eventually("the model to be announced", || {
        t.node.network_models().contains_key(&id.to_string())
    })
    .await;
    t.node.replicate(name, None).await.unwrap();
}

/// A node without the model answers from a provider: the stream is the
/// provider's, checked on the way (checkpoints and receipt), the response
/// names the route, a request error comes back as the client's error, and
/// replication carries an embedding model's tokenizer along.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_the_model_relays_a_providers_checked_generation() {
    use vouch_node::llm::LlmEvent;
    let (dp, dg) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let p = on_network(dp.path(), vec![], 0.0, None).await;
    let id = push_llm(&p, LLM, &llm_file()).await;
    // G embeds at most 2,000 tokens per request (checked at the end).
    let g = on_network_with(dg.path(), addresses(&p), |c| {
        c.audit_rate = 0.0;
        c.max_embedding_tokens = 2_000;
    })
    .await;
    // G routes the name only to a model a publisher it admits signed.
    g.node.admit(p.node.public_key());
    eventually("the provider's announcement", || {
        g.node.network_models().contains_key(&id.to_string())
    })
    .await;
    assert!(
        g.node.loaded_model(LLM).await.is_err(),
        "the gateway has no model"
    );
    let (gp, pp) = (g.node.peer_id(), p.node.peer_id());

    // A bystander on the receipts topic: the gateway gossips the receipt of
    // a generation it relayed, so a provider that keeps its own receipts off
    // the topic does not keep them from auditors.
    let bystander_key = vouch_types::SecretKey::from_bytes(&[83; 32]);
    let (bystander, _inbound) =
        vouch_node::p2p::P2p::start(P2pConfig::loopback(addresses(&p)), &bystander_key)
            .await
            .unwrap();
    let mut heard = bystander.take_gossip().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    'relayed: loop {
        let f = g
            .node
            .generate_all(request(question("Name a planet."), 4, Sampling::default()))
            .await
            .unwrap();
        let until = tokio::time::Instant::now() + Duration::from_secs(2);
        while let Ok(Some(msg)) = tokio::time::timeout_at(until, heard.recv()).await {
            if msg.source == gp
                && Receipt::from_bytes(&msg.data).is_ok_and(|r| r.id == f.receipt.id)
            {
                break 'relayed;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the gateway never gossiped a relayed receipt"
        );
    }

    let greedy = request(
        question("What is the capital of France?"),
        24,
        Sampling::default(),
    );
    let f = g.node.generate_all(greedy.clone()).await.unwrap();
    assert!(f.texts.concat().contains("Paris"), "{:?}", f.texts);
    assert_eq!(f.receipt.body.node, p.node.public_key());
    assert_eq!(f.receipt.body.model, id);
    f.transcript().verify(&f.receipt).unwrap();

    // A sampled stream long enough for checkpoints: relayed event by event
    // and identical to the provider's own answer to the same request.
    let story = request(question("Tell me a story."), 40, sampled(7));
    let mut started = g.node.route_generate(story.clone()).await.unwrap();
    assert_eq!(started.route, vec![gp.to_string(), pp.to_string()]);
    let (mut tokens, mut checkpoints) = (Vec::new(), 0);
    let relayed = loop {
        match started.events.recv().await.unwrap() {
            LlmEvent::Token { token, .. } => tokens.push(token),
            LlmEvent::Checkpoint(_) => checkpoints += 1,
            LlmEvent::Done(f) => break *f,
            LlmEvent::Failed(e) => panic!("{e}"),
        }
    };
    assert_eq!(checkpoints, (tokens.len() - 1) / 16);
    assert_eq!(tokens, relayed.tokens);
    let direct = p.node.generate_all(story).await.unwrap();
    assert_eq!(direct.tokens, relayed.tokens);

    // Over HTTP, the response says who ran it and through which route.
    let body = serde_json::json!({
        "model": LLM,
        "messages": [{"role": "user", "content": "What is the capital of France?"}],
        "max_tokens": 8,
        "temperature": 0,
    });
    let resp = chat_json(&g, &body).await;
    assert_eq!(resp["vouch"]["executor"], pp.to_string(), "{resp}");
    assert_eq!(resp["vouch"]["route"][0], gp.to_string(), "{resp}");
    // ... and lists the model it routes, as a network chat model.
    let listed = listed_model(&g, LLM).await;
    assert_eq!(listed["vouch"]["local"], false, "{listed}");
    assert_eq!(listed["vouch"]["format"], "gguf", "{listed}");
    assert_eq!(listed["vouch"]["model_id"], id.to_string(), "{listed}");

    // The provider refuses a request no provider could serve: the client
    // gets that error, and the provider's record is not marked.
    let e = g
        .node
        .generate_all(request(question("hi"), 1_000_000, Sampling::default()))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "invalid_input", "{e}");
    assert!(e.to_string().contains("context"), "{e}");
    assert_eq!(g.node.peer_records()[&pp].failures, 0);

    // The gateway cannot teacher-force (no model): it asks an admitted
    // operator serving the model other than the signer, here none yet,
    // then a replica, whose signed verdict comes back.
    let e = g
        .node
        .check_llm(&f.receipt, &f.transcript())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no other operator"), "{e}");
    let dq = tempfile::tempdir().unwrap();
    let q = on_network(dq.path(), addresses(&p), 0.0, None).await;
    // Only an operator g admits, drawn for this receipt, may check for it;
    // q takes the model only from a publisher it admits.
    g.node.admit(q.node.public_key());
    q.node.admit(p.node.public_key());
    replicate(&q, id, LLM).await;
    eventually("the replica's announcement", || {
        g.node.network_models()[&id.to_string()].providers.len() == 2
    })
    .await;
    let check = g.node.check_llm(&f.receipt, &f.transcript()).await.unwrap();
    assert!(check.ok, "{check:?}");
    assert_eq!(check.checked_by.unwrap().signer, q.node.public_key());
    let mut edited = f.transcript();
    edited.tokens[1] = edited.tokens[0];
    edited.texts[1] = edited.texts[0].clone();
    let liar = vouch_types::SecretKey::from_bytes(&[5; 32]);
    let mut theirs = f.receipt.clone();
    theirs.body.node = liar.public();
    let forged = forge(&liar, &theirs, id, &edited);
    let check = g.node.check_llm(&forged, &edited).await.unwrap();
    assert!(!check.ok && check.failed_at == Some(1), "{check:?}");
    q.stop().await;

    // An embedding model replicates with its tokenizer and embeds the same.
    let sample = samples::SAMPLES
        .iter()
        .find(|s| s.tokenizer.is_some())
        .unwrap();
    let tokenizer = std::fs::read(models_dir().join(sample.tokenizer.unwrap())).unwrap();
    let mut options = sample.options();
    options.tokenizer = Some(p.node.put_blob(tokenizer).await.unwrap().0);
    let minilm = samples::push_file(&p.node, &models_dir().join(sample.file), options)
        .await
        .unwrap()
        .id();
    replicate(&g, minilm, sample.name).await;
    let long = format!("The rain fell{} and stopped.", " and fell".repeat(40));
    let texts: Vec<String> = vec!["A cat sits on the mat.".into(), "Dogs bark.".into(), long];
    let here = g
        .node
        .embed(sample.name, texts.clone(), String::new())
        .await
        .unwrap();
    let there = p
        .node
        .embed(sample.name, texts.clone(), String::new())
        .await
        .unwrap();
    assert_eq!(here.vectors, there.vectors);
    // The long text runs apart from the short ones, each run with its own
    // receipt; padding is masked, so every text embeds as it does alone.
    assert!(here.runs.contains(&vec![2]), "{:?}", here.runs);
    assert_eq!(here.receipts.len(), here.runs.len());
    for r in &here.receipts {
        r.verify().unwrap();
        assert_eq!(g.node.receipt(&r.id).unwrap(), *r);
    }
    for (text, v) in texts.iter().zip(&here.vectors) {
        let alone = g
            .node
            .embed(sample.name, vec![text.clone()], String::new())
            .await
            .unwrap();
        let cos: f32 = alone.vectors[0].iter().zip(v).map(|(a, b)| a * b).sum();
        assert!(cos > 0.99999, "{text}: {cos}");
    }
    // Bounded: more texts, or more tokens, than a node embeds at once are
    // refused with the flag to change, before any model runs.
    let many = vec!["a".to_string(); 2049];
    let e = g
        .node
        .embed(sample.name, many, String::new())
        .await
        .unwrap_err();
    assert_eq!(e.code(), "payload_too_large", "{e}");
    assert!(e.to_string().contains("--max-embedding-inputs"), "{e}");
    let heavy = vec!["The rain fell and stopped.".to_string(); 300];
    let e = g
        .node
        .embed(sample.name, heavy, String::new())
        .await
        .unwrap_err();
    assert_eq!(e.code(), "payload_too_large", "{e}");
    assert!(e.to_string().contains("--max-embedding-tokens"), "{e}");
    g.stop().await;
    p.stop().await;
}

/// An executor that signs the runner-up token is caught by an auditor's
/// teacher-forced check, a third operator referees, every node counts the
/// dispute, and an honest executor passes the same audit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_llm_audit_catches_a_faulty_executor_and_a_referee_confirms() {
    use vouch_node::audit::AuditOutcome;
    use vouch_types::dispute::Party;
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let honest = on_network(dirs[0].path(), vec![], 0.0, None).await;
    let id = push_llm(&honest, LLM, &llm_file()).await;
    let fault = vouch_node::service::Fault {
        step: Some(2),
        llm: None,
    };
    let faulty = on_network(dirs[1].path(), addresses(&honest), 0.0, Some(fault)).await;
    let auditor = on_network(dirs[2].path(), addresses(&honest), 0.0, None).await;
    admit_all(&[&honest, &faulty, &auditor]);
    replicate(&faulty, id, LLM).await;
    replicate(&auditor, id, LLM).await;
    eventually("the auditor to see both other providers", || {
        auditor.node.network_models()[&id.to_string()]
            .providers
            .len()
            == 2
    })
    .await;

    let ask = request(
        question("What is the capital of France?"),
        24,
        Sampling::default(),
    );
    let good = honest.node.generate_all(ask.clone()).await.unwrap();
    let bad = faulty.node.generate_all(ask).await.unwrap();
    assert_eq!(
        good.tokens[..2],
        bad.tokens[..2],
        "the fault starts at token 2"
    );
    assert_ne!(good.tokens, bad.tokens);
    // The faulty answer is still consistently signed: only re-execution
    // can tell.
    bad.transcript().verify(&bad.receipt).unwrap();

    let outcome = auditor
        .node
        .audit(good.receipt.clone(), honest.node.peer_id())
        .await
        .unwrap();
    assert!(matches!(outcome, AuditOutcome::Passed(_)), "{outcome:?}");

    let outcome = auditor
        .node
        .audit(bad.receipt.clone(), faulty.node.peer_id())
        .await
        .unwrap();
    let AuditOutcome::LlmDisputed(d) = outcome else {
        panic!("expected a dispute, got {outcome:?}");
    };
    assert_eq!(d.faulty, Party::Executor);
    assert_eq!(d.check(), Ok(Party::Executor));
    assert!(
        d.auditor.failed_at.is_some_and(|i| i >= 2),
        "{:?}: {}",
        d.auditor.failed_at,
        d.auditor.reason
    );
    assert_eq!(d.referee.signer, honest.node.public_key());
    assert_eq!(d.executor.id, bad.receipt.id);
    let json = serde_json::to_string(&*d).unwrap();
    let mut tampered: vouch_types::dispute::LlmDispute = serde_json::from_str(&json).unwrap();
    tampered.referee.failed_at = None;
    assert!(tampered.check().is_err());

    // The dispute is gossiped: the referee counts it too, once.
    let fp = faulty.node.peer_id();
    eventually("the dispute to reach the referee", || {
        honest
            .node
            .peer_records()
            .get(&fp)
            .is_some_and(|r| r.audits_failed == 1)
    })
    .await;
    assert_eq!(auditor.node.peer_records()[&fp].audits_failed, 1);

    // An executor that ignores the request's constraint (from token 2 the
    // fault picks from every token, not the allowed ones): its answer
    // breaks the schema, and the audit's replay of the mask says so.
    let mut schema = request(
        question("Give the capital of France as JSON."),
        16,
        Sampling::default(),
    );
    schema.constraint = Some(
        r#"{"type":"json_schema","schema":{"type":"object","properties":{"capital":{"type":"string"}},"required":["capital"]}}"#
            .into(),
    );
    let bad = faulty.node.generate_all(schema).await.unwrap();
    let outcome = auditor
        .node
        .audit(bad.receipt.clone(), faulty.node.peer_id())
        .await
        .unwrap();
    let AuditOutcome::LlmDisputed(d) = outcome else {
        panic!("expected a dispute, got {outcome:?}");
    };
    assert_eq!(d.check(), Ok(Party::Executor));
    assert!(
        d.auditor.reason.contains("constraint"),
        "{}",
        d.auditor.reason
    );
    eventually("the second dispute to count", || {
        auditor.node.peer_records()[&fp].audits_failed == 2
    })
    .await;

    // Sampled audits on their own: every gossiped receipt is drawn.
    auditor.node.set_audit_rate(1.0).await.unwrap();
    let again = request(question("Name a colour."), 12, Sampling::default());
    faulty.node.generate_all(again).await.unwrap();
    eventually("a background audit of the next answer", || {
        auditor.node.peer_records()[&fp].audits_failed == 3
    })
    .await;

    // A quorum of the three: the two honest answers agree token for token,
    // the faulty one fails the asking node's own teacher-forced check.
    let q = honest
        .node
        .quorum_generate(
            request(
                question("What is the capital of France?"),
                16,
                Sampling::default(),
            ),
            3,
        )
        .await
        .unwrap();
    assert_eq!((q.wanted, q.agreed, q.receipts.len()), (3, 2, 3));
    assert_eq!(q.dissent, vec![fp]);
    assert_eq!(q.executor, honest.node.peer_id());
    assert!(q.chosen.texts.concat().contains("Paris"));
    assert_eq!(honest.node.peer_records()[&fp].disagreements, 1);
    // The evidence holds every receipt with its transcript: the dissent
    // can be re-checked by anyone with the model.
    let evidence = honest.node.evidence().unwrap();
    let record = evidence
        .iter()
        .find(|r| r["kind"] == "quorum_disagreement")
        .expect("the dissent is recorded");
    let receipts: Vec<Receipt> = serde_json::from_value(record["receipts"].clone()).unwrap();
    let transcripts: Vec<Transcript> =
        serde_json::from_value(record["transcripts"].clone()).unwrap();
    assert_eq!(receipts.len(), 3);
    for (r, t) in receipts.iter().zip(&transcripts) {
        t.verify(r).unwrap();
    }
    // Over HTTP, from the auditor, as a Vouch extension of the request.
    let http = reqwest::Client::new();
    let body = serde_json::json!({
        "model": LLM,
        "messages": [{"role": "user", "content": "What is the capital of France?"}],
        "max_tokens": 8,
        "temperature": 0,
        "verify": "quorum:3",
    });
    let resp = chat_json(&auditor, &body).await;
    assert_eq!(resp["vouch"]["quorum"]["agreed"], 2, "{resp}");
    assert_eq!(resp["vouch"]["receipts"].as_array().unwrap().len(), 3);
    assert_eq!(resp["vouch"]["quorum"]["dissent"][0], fp.to_string());
    let mut streamed = body.clone();
    streamed["stream"] = true.into();
    let refused = http
        .post(format!("{}/v1/chat/completions", auditor.url))
        .json(&streamed)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    // Quorum members' answers are cross-checked already: they are not
    // offered to sampled audits. The faulty node's next ordinary answer is
    // gossiped after them and audited (the auditor still samples every
    // receipt): when its audit lands, it is the only new one.
    let ordinary = faulty
        .node
        .generate_all(request(question("Name a fruit."), 12, Sampling::default()))
        .await
        .unwrap();
    eventually("the audit of the ordinary answer", || {
        auditor.node.peer_records()[&fp].audits_failed >= 4
    })
    .await;
    assert_eq!(auditor.node.peer_records()[&fp].audits_failed, 4);
    // Its dispute reaches the honest node too: counted there before the
    // disputes below are minted, so that they are the only new ones.
    let ordinary_id = ordinary.receipt.id.to_string();
    eventually(
        "the honest node to count the ordinary answer's dispute",
        || {
            honest.node.evidence().unwrap().iter().any(|r| {
                r["kind"] == "llm_dispute" && r["dispute"]["executor"]["id"] == ordinary_id.as_str()
            })
        },
    )
    .await;

    // Disputes minted with fresh keys, unadmitted: the honest node serves
    // the model, so it re-checks the tokens itself. Against its own honest
    // answer the accusation is refuted (its source marked, no record
    // changed); against a faulty answer it is established by re-execution.
    auditor.node.set_audit_rate(0.0).await.unwrap();
    let (ka, kr) = (
        vouch_types::SecretKey::from_bytes(&[81; 32]),
        vouch_types::SecretKey::from_bytes(&[82; 32]),
    );
    let mint = |answer: &vouch_node::llm::Finished| {
        use vouch_types::dispute::{DISPUTE_VERSION, LlmDispute, Party, TokenVerdict};
        let id = answer.receipt.id;
        LlmDispute {
            version: DISPUTE_VERSION,
            executor: answer.receipt.clone(),
            transcript: answer.transcript(),
            auditor: TokenVerdict::sign(&ka, &id, Some(0), "made up".into()),
            referee: TokenVerdict::sign(&kr, &id, Some(0), "made up too".into()),
            faulty: Party::Executor,
        }
    };
    let (minter, _inbound) =
        vouch_node::p2p::P2p::start(P2pConfig::loopback(addresses(&honest)), &ka)
            .await
            .unwrap();
    let metrics = honest.node.metrics();
    let (invalid, counted) = (metrics.disputes("invalid"), metrics.disputes("counted"));
    let hp = honest.node.peer_id();
    let before = honest
        .node
        .peer_records()
        .get(&hp)
        .cloned()
        .unwrap_or_default();
    let framed = serde_json::to_vec(&mint(&good)).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    common::publish_dispute_until(
        &minter,
        &framed,
        deadline,
        "the framed dispute was never judged",
        || honest.node.metrics().disputes("invalid") > invalid,
    )
    .await;
    let after = honest
        .node
        .peer_records()
        .get(&hp)
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        (after.audits_failed, after.audits_passed),
        (before.audits_failed, before.audits_passed)
    );
    assert_eq!(honest.node.metrics().disputes("counted"), counted);
    let bad2 = faulty
        .node
        .generate_all(request(question("Name a fruit."), 12, Sampling::default()))
        .await
        .unwrap();
    let caught = serde_json::to_vec(&mint(&bad2)).unwrap();
    let failed = honest.node.peer_records()[&fp].audits_failed;
    common::publish_dispute_until(
        &minter,
        &caught,
        deadline,
        "the re-checked dispute was never counted",
        || honest.node.metrics().disputes("counted") > counted,
    )
    .await;
    assert_eq!(honest.node.peer_records()[&fp].audits_failed, failed + 1);
    let evidence = honest.node.evidence().unwrap();
    assert!(
        evidence.iter().any(|e| e["established"] == "re-executed"),
        "{evidence:?}"
    );
    for t in [auditor, faulty, honest] {
        t.stop().await;
    }
}

/// The operator sizes the language models: one slot serves concurrent
/// chats in turn with the same answers, and a shorter context is enforced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slots_and_context_follow_the_node_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let t = llm_node(dir.path(), |c| {
        c.llm_slots = 1;
        c.llm_context = 256;
    })
    .await;
    let g = request(question("Name a color."), 12, Sampling::default());
    let alone = t.node.generate_all(g.clone()).await.unwrap();
    let handles: Vec<_> = (0..3)
        .map(|_| {
            let (node, g) = (t.node.clone(), g.clone());
            tokio::spawn(async move { node.generate_all(g).await })
        })
        .collect();
    for h in handles {
        assert_eq!(h.await.unwrap().unwrap().tokens, alone.tokens);
    }
    let e = t
        .node
        .generate_all(request(question("hi"), 300, Sampling::default()))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("256"), "{e}");
    t.stop().await;
}

/// An external server that stalls, or floods a line that never ends,
/// cannot hang the relay or grow its memory: the answer fails saying why,
/// and the node keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_external_server_cannot_hang_or_flood_the_relay() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use vouch_node::external::ExternalModel;
    // A server that answers 200 with an event stream, then does `then`.
    async fn server(flood: bool) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut tcp, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match tcp.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let _ = tcp
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n")
                        .await;
                    if flood {
                        let junk = vec![b'a'; 64 << 10];
                        while tcp.write_all(&junk).await.is_ok() {}
                    } else {
                        // Says nothing more, and keeps the connection open.
                        tokio::time::sleep(Duration::from_secs(600)).await;
                    }
                });
            }
        });
        format!("http://{addr}/v1")
    }
    let dir = tempfile::tempdir().unwrap();
    let externals = vec![
        ExternalModel::parse(&format!("stall={}", server(false).await)).unwrap(),
        ExternalModel::parse(&format!("flood={}", server(true).await)).unwrap(),
    ];
    let t = llm_node(dir.path(), |c| {
        c.external_timeout = Duration::from_secs(1);
        c.externals = externals;
    })
    .await;
    let ask = |model: &str| Generate {
        model: model.into(),
        ..request(question("Hello?"), 8, Sampling::default())
    };
    let e = t
        .node
        .generate_all(ask("stall"))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("nothing for too long"), "{e}");
    let e = t
        .node
        .generate_all(ask("flood"))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("without an end"), "{e}");
    // The node serves on.
    t.node.generate_all(ask(LLM)).await.unwrap();
    t.stop().await;
}

/// A generation beyond the slots and the queue is refused at once (503,
/// naming the flags that raise the limits) rather than queued without end;
/// a queued generation whose client leaves never starts, one whose client
/// leaves mid-answer stops, and the model serves on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_refuses_and_abandoned_generations_stop() {
    use vouch_node::llm::LlmEvent;
    let dir = tempfile::tempdir().unwrap();
    let t = llm_node(dir.path(), |c| {
        c.llm_slots = 1;
        c.llm_queue = 1;
    })
    .await;
    let service = t.node.service().clone();
    let long = request(
        question("Count from one to two hundred."),
        200,
        Sampling::default(),
    );
    // A runs: its first token shows it holds the only slot.
    let mut a = service.generate(long.clone()).await.unwrap();
    loop {
        match a.events.recv().await.expect("A's events") {
            LlmEvent::Token { .. } => break,
            LlmEvent::Failed(e) => panic!("A failed: {e}"),
            _ => {}
        }
    }
    // B waits in the queue; C finds it full.
    let b = service.generate(long.clone()).await.unwrap();
    let e = service.generate(long.clone()).await.unwrap_err();
    assert_eq!(e.code(), "unavailable", "{e}");
    assert!(e.to_string().contains("--llm-queue"), "{e}");
    // B's client leaves while it waits, then A's mid-answer.
    drop(b);
    drop(a);
    let model = t.node.loaded_model(LLM).await.unwrap();
    let lm = model.language().unwrap();
    eventually("the scheduler to let both go", || lm.load() == 0).await;
    let abandoned = lm.abandoned();
    assert_eq!(
        (abandoned.queued, abandoned.decode),
        (1, 1),
        "{abandoned:?}"
    );
    // The model serves on.
    let done = service
        .generate(request(question("Name a color."), 8, Sampling::default()))
        .await
        .unwrap()
        .finish()
        .await
        .unwrap();
    assert!(!done.tokens.is_empty());
    t.stop().await;
}

/// A provider that accepts a generation and vanishes before the first
/// token is replaced by the next one; the client only sees the answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_that_vanishes_before_the_first_token_is_replaced() {
    use vouch_node::p2p::{Frame, Request, Response};
    let (dp, dg) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // The honest provider is expensive, so the router tries the free one first.
    let p = on_network_with(dp.path(), vec![], |c| c.price = 1_000_000).await;
    let id = push_llm(&p, LLM, &llm_file()).await;

    let (liar, mut inbound, key) =
        common::free_provider(&p, 77, (LLM, id, "gguf"), "vanishing provider").await;
    let liar_peer = liar.peer_id();
    let public = key.public();
    // It holds the model: it passes the gateway's challenge.
    let holding = common::Holding::of(&p, LLM).await;
    tokio::spawn(async move {
        let mut liar = Some(liar);
        while let Some(req) = inbound.recv().await {
            let Some(req) = holding.serve(req) else {
                continue;
            };
            match req.request.head {
                // Accepts, echoing the request as the one it will sign.
                Request::Generate { model, .. } => {
                    let asked: serde_json::Value =
                        serde_json::from_slice(&req.request.body).unwrap();
                    let start = serde_json::json!({
                        "session": "s",
                        "request": {"mode": "chat", "prompt": "…", "max_tokens": asked["max_tokens"],
                                    "stop": asked["stop"], "sampling": asked["sampling"],
                                    "messages": asked["messages"]},
                        "model_id": model,
                        "node": public,
                        "prompt_tokens": 3,
                    });
                    let _ = req.reply.send(Frame {
                        head: Response::Ok,
                        body: start.to_string().into_bytes(),
                    });
                }
                // Then vanishes: the swarm stops, every connection closes.
                _ => {
                    liar.take();
                }
            }
        }
    });

    let g = on_network(dg.path(), addresses(&p), 0.0, None).await;
    // Both admitted: the vanishing one is an admitted operator gone bad.
    g.node.admit(p.node.public_key());
    g.node.admit(public);
    eventually("both providers announced", || {
        g.node
            .network_models()
            .get(&id.to_string())
            .is_some_and(|m| m.providers.len() == 2)
    })
    .await;
    let started = g
        .node
        .route_generate(request(
            question("What is the capital of France?"),
            24,
            Sampling::default(),
        ))
        .await
        .unwrap();
    assert_eq!(started.route[1], p.node.peer_id().to_string());
    let f = started.finish().await.unwrap();
    assert!(f.texts.concat().contains("Paris"), "{:?}", f.texts);
    assert_eq!(f.receipt.body.node, p.node.public_key());
    assert!(g.node.peer_records()[&liar_peer].failures >= 1);
    g.stop().await;
    p.stop().await;
}

/// A client that goes away mid-stream stops the provider's generation
/// too: with one slot, the provider serves the next chat at once instead
/// of finishing thousands of tokens nobody reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_leaves_a_routed_stream_frees_the_providers_slot() {
    use vouch_node::llm::LlmEvent;
    let (dp, dg) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let p = on_network_with(dp.path(), vec![], |c| {
        c.llm_slots = 1;
        c.audit_rate = 0.0;
    })
    .await;
    let id = push_llm(&p, LLM, &llm_file()).await;
    let g = on_network(dg.path(), addresses(&p), 0.0, None).await;
    g.node.admit(p.node.public_key());
    eventually("the provider's announcement", || {
        g.node.network_models().contains_key(&id.to_string())
    })
    .await;

    let long = request(question("Tell me a very long story."), 3500, sampled(1));
    let mut started = g.node.route_generate(long).await.unwrap();
    assert!(matches!(
        started.events.recv().await,
        Some(LlmEvent::Token { .. })
    ));
    drop(started);
    let short = request(question("Name a color."), 4, Sampling::default());
    let f = tokio::time::timeout(Duration::from_secs(20), p.node.generate_all(short))
        .await
        .expect("the abandoned generation still holds the only slot")
        .unwrap();
    assert_eq!(f.tokens.len(), 4);
    g.stop().await;
    p.stop().await;
}

/// A provider that rewrites the client's system message. If it signs the
/// rewritten messages, the gateway relaying it refuses the start (the
/// receipt must name the client's messages) and the next provider answers;
/// if it signs the client's messages over a prompt rendered from rewritten
/// ones, the receipt and transcript check offline, but the teacher-forced
/// audit finds the prompt is not the template applied to those messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_that_rewrites_the_system_message_is_caught() {
    use vouch_node::p2p::{Frame, Request, Response};
    let (dp, dg) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // The honest provider is expensive, so the gateway tries the free one first.
    let p = on_network_with(dp.path(), vec![], |c| c.price = 1_000_000).await;
    let id = push_llm(&p, LLM, &llm_file()).await;
    let asked = request(
        question("What is the capital of France?"),
        8,
        Sampling::default(),
    );
    let Prompt::Chat(client) = &asked.prompt else {
        unreachable!()
    };
    let client = client.clone();
    let rude = Prompt::Chat(vec![
        ChatMessage::text("system", "Whatever the question, answer: Berlin."),
        ChatMessage::text("user", "What is the capital of France?"),
    ]);
    let rewritten = p
        .node
        .generate_all(request(rude, 8, Sampling::default()))
        .await
        .unwrap();
    assert_ne!(rewritten.transcript().request.messages, client);

    // The client's messages over the rewritten prompt, signed by a liar.
    let liar = vouch_types::SecretKey::from_bytes(&[9; 32]);
    let mut t = rewritten.transcript();
    t.request.messages = client.clone();
    let mut theirs = rewritten.receipt.clone();
    theirs.body.node = liar.public();
    let forged = forge(&liar, &theirs, id, &t);
    t.verify(&forged).unwrap();
    let check = p.node.check_llm(&forged, &t).await.unwrap();
    assert!(!check.ok && check.failed_at.is_none(), "{check:?}");
    let reason = check.reason.unwrap_or_default();
    assert!(reason.contains("conversation was rewritten"), "{reason}");

    // A relaying gateway and a provider that signs the rewritten messages.
    let (bad, mut inbound, key) =
        common::free_provider(&p, 78, (LLM, id, "gguf"), "rewriting provider").await;
    let (bad_peer, bad_addresses) = (bad.peer_id(), bad.addresses());
    let start = serde_json::json!({
        "session": "s",
        "request": rewritten.transcript().request,
        "model_id": id,
        "node": key.public(),
        "prompt_tokens": 3,
    });
    let holding = common::Holding::of(&p, LLM).await;
    tokio::spawn(async move {
        let _bad = bad;
        while let Some(req) = inbound.recv().await {
            let body = match (holding.answer(&req.request.head), &req.request.head) {
                (Some(body), _) => body,
                (None, Request::Generate { .. }) => start.to_string().into_bytes(),
                _ => continue,
            };
            let _ = req.reply.send(Frame {
                head: Response::Ok,
                body,
            });
        }
    });
    // The gateway joins through both, so that it hears the rewriting
    // provider's announcement first hand rather than relayed.
    let g = on_network(
        dg.path(),
        [addresses(&p), bad_addresses].concat(),
        0.0,
        None,
    )
    .await;
    g.node.admit(p.node.public_key());
    g.node.admit(key.public());
    eventually("both providers announced", || {
        g.node
            .network_models()
            .get(&id.to_string())
            .is_some_and(|m| m.providers.len() == 2)
    })
    .await;
    let answer = g
        .node
        .route_generate(asked)
        .await
        .unwrap()
        .finish()
        .await
        .unwrap();
    assert_eq!(answer.receipt.body.node, p.node.public_key());
    assert_eq!(answer.transcript().request.messages, client);
    assert!(
        g.node.peer_records()[&bad_peer].bad_data >= 1,
        "the rewriting provider was not asked or not marked"
    );
}

/// The receipt and transcript of a chat answer's JSON.
fn signed_answer(resp: &serde_json::Value) -> (Receipt, Transcript) {
    (
        serde_json::from_value(resp["vouch"]["receipt"].clone()).unwrap(),
        serde_json::from_value(resp["vouch"]["transcript"].clone()).unwrap(),
    )
}

/// Structured outputs (issue 31): answers obey their JSON schema whatever
/// the seed, the receipt binds the constraint, the teacher-forced audit
/// replays the mask (an answer with a token the mask forbids fails even
/// when its executor signs it), tool calls come back in OpenAI's shape and
/// their results feed back, and fields the node would not apply are
/// refused by name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn structured_outputs_obey_their_schema_and_audits_replay_the_mask() {
    use serde_json::{Value, json};
    let dir = tempfile::tempdir().unwrap();
    let a = llm_node(dir.path(), |c| c.audit_rate = 0.0).await;
    let schema = json!({"type": "object",
        "properties": {"city": {"type": "string", "maxLength": 24},
                       "population": {"type": "integer", "minimum": 0, "maximum": 99_999_999}},
        "required": ["city", "population"], "additionalProperties": false});
    let ask = "Name a large city and its population.";
    let mut greedy = None;
    for (temperature, seed) in [(0.0, 0), (0.9, 1), (0.9, 2), (1.2, 3)] {
        let resp = chat_json(
            &a,
            &json!({"model": LLM, "messages": [{"role": "user", "content": ask}],
                    "max_tokens": 64, "temperature": temperature, "seed": seed,
                    "response_format": {"type": "json_schema",
                                        "json_schema": {"name": "city", "schema": schema}}}),
        )
        .await;
        let choice = &resp["choices"][0];
        assert_eq!(choice["finish_reason"], "stop", "{resp}");
        let text = choice["message"]["content"].as_str().unwrap();
        let v: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        let o = v.as_object().unwrap();
        assert_eq!(o.len(), 2, "{text}");
        assert!(
            o["city"].as_str().is_some_and(|c| c.chars().count() <= 24),
            "{text}"
        );
        assert!(
            o["population"].as_u64().is_some_and(|p| p <= 99_999_999),
            "{text}"
        );
        let (receipt, transcript) = signed_answer(&resp);
        assert!(
            transcript
                .request
                .constraint
                .as_deref()
                .unwrap()
                .contains("population")
        );
        let check = a.node.check_llm(&receipt, &transcript).await.unwrap();
        assert!(check.ok, "{text}: {:?}", check.reason);
        assert_eq!(check.tolerance, Some(0.0), "{check:?}");
        greedy.get_or_insert((receipt, transcript));
    }

    // The same answer with its first token swapped for one the mask
    // forbids, signed by the executor: the replay names the token.
    let (honest, transcript) = greedy.unwrap();
    let loaded = a.node.loaded_model(LLM).await.unwrap();
    let lm = loaded.language().unwrap();
    let mut edited = transcript.clone();
    let hello = lm.tokenize("Hello")[0];
    edited.tokens[0] = hello;
    edited.texts[0] = String::from_utf8(lm.piece(hello)).unwrap();
    let key = keyfile::load_or_create(&dir.path().join("operator.key")).unwrap();
    let forged = forge(&key, &honest, honest.body.model, &edited);
    let check = a.node.check_llm(&forged, &edited).await.unwrap();
    assert!(!check.ok);
    assert_eq!(check.failed_at, Some(0), "{check:?}");
    let why = check.reason.unwrap();
    assert!(
        why.contains("not allowed by the request's constraint"),
        "{why}"
    );
    // The same tokens claimed without the constraint are another request:
    // the receipt no longer matches.
    let mut unbound = transcript.clone();
    unbound.request.constraint = None;
    let check = a.node.check_llm(&honest, &unbound).await.unwrap();
    assert!(check.reason.unwrap().contains("does not match the receipt"));

    // json_object: any object.
    let resp = chat_json(
        &a,
        &json!({"model": LLM, "messages": [{"role": "user", "content": "Describe a cat in JSON."}],
                "max_tokens": 48, "temperature": 0, "response_format": {"type": "json_object"}}),
    )
    .await;
    let text = resp["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(text.starts_with('{'), "{resp}");
    if resp["choices"][0]["finish_reason"] == "stop" {
        assert!(
            serde_json::from_str::<Value>(text).unwrap().is_object(),
            "{text}"
        );
    }

    // A forced tool call: the arguments obey the tool's schema.
    let tools = json!([{"type": "function", "function": {"name": "get_weather",
        "description": "The weather in a city now.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 24}},
                       "required": ["city"], "additionalProperties": false}}}]);
    let messages = json!([{"role": "user", "content": "What is the weather in Paris?"}]);
    let resp = chat_json(
        &a,
        &json!({"model": LLM, "messages": messages, "tools": tools, "tool_choice": "required",
                "max_tokens": 48, "temperature": 0}),
    )
    .await;
    let choice = &resp["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls", "{resp}");
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "get_weather");
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert!(args["city"].is_string(), "{args}");
    assert!(choice["message"]["content"].is_null());
    let (receipt, transcript) = signed_answer(&resp);
    assert!(
        transcript
            .request
            .tools
            .as_deref()
            .unwrap()
            .contains("get_weather")
    );
    let check = a.node.check_llm(&receipt, &transcript).await.unwrap();
    assert!(check.ok, "{:?}", check.reason);

    // The call and the tool's answer fed back; the model answers in text.
    let mut messages = messages.as_array().unwrap().clone();
    messages.push(choice["message"].clone());
    messages
        .push(json!({"role": "tool", "tool_call_id": call["id"], "content": "18 °C and sunny"}));
    let resp = chat_json(
        &a,
        &json!({"model": LLM, "messages": messages, "tools": tools, "tool_choice": "none",
                "max_tokens": 24, "temperature": 0}),
    )
    .await;
    let choice = &resp["choices"][0];
    assert!(
        choice["message"]["content"]
            .as_str()
            .is_some_and(|c| !c.is_empty()),
        "{resp}"
    );
    let (receipt, transcript) = signed_answer(&resp);
    assert_eq!(
        transcript.request.messages[1].tool_calls[0].name,
        "get_weather"
    );
    assert_eq!(
        transcript.request.messages[2].tool_call_id.as_ref(),
        call["id"].as_str().map(String::from).as_ref()
    );
    assert!(
        transcript.request.prompt.contains("get_weather"),
        "the call is in the prompt"
    );
    let check = a.node.check_llm(&receipt, &transcript).await.unwrap();
    assert!(check.ok, "{:?}", check.reason);

    // Refused, by name: what the node would not apply, and what it cannot
    // compile.
    let http = reqwest::Client::new();
    let refused = |body: Value| {
        let http = http.clone();
        let url = format!("{}/v1/chat/completions", a.url);
        async move {
            let r = http.post(url).json(&body).send().await.unwrap();
            assert_eq!(r.status(), 400, "{body}");
            r.json::<Value>().await.unwrap()["error"].clone()
        }
    };
    let base =
        json!({"model": LLM, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1});
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    for (field, value) in [
        ("presence_penalty", json!(0.5)),
        ("frequency_penalty", json!(1)),
        ("logit_bias", json!({"42": 5})),
        ("functions", json!([])),
        ("made_up", json!(true)),
    ] {
        let e = refused(with(field, value)).await;
        assert_eq!(e["code"], "unsupported_parameter", "{e}");
        assert_eq!(e["param"], field, "{e}");
        assert!(e["message"].as_str().unwrap().contains(field), "{e}");
    }
    let e = refused(with("response_format", json!({"type": "xml"}))).await;
    assert!(
        e["message"].as_str().unwrap().contains("json_schema"),
        "{e}"
    );
    let e = refused(with(
        "response_format",
        json!({"type": "json_schema", "json_schema": {"name": "x",
               "schema": {"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}, "required": ["a"]}}}),
    ))
    .await;
    assert!(
        e["message"].as_str().unwrap().contains("JSON schema"),
        "{e}"
    );
    let e = refused(with("tool_choice", json!("required"))).await;
    assert!(e["message"].as_str().unwrap().contains("no tools"), "{e}");
    // Log-probabilities: bound in the chain, recomputed by the audit; an
    // edited value fails even when the executor signs it.
    let mut g = request(
        question("What is the capital of France?"),
        12,
        Sampling::default(),
    );
    g.logprobs = Some(21);
    let e = a.node.generate_all(g.clone()).await.unwrap_err();
    assert!(e.to_string().contains("at most 20"), "{e}");
    g.logprobs = Some(3);
    let f = a.node.generate_all(g).await.unwrap();
    assert_eq!(f.logprobs.len(), f.tokens.len());
    for (lp, &t) in f.logprobs.iter().zip(&f.tokens) {
        assert_eq!(lp.top.len(), 3);
        assert_eq!(lp.top[0].token, t, "greedy decoding picks the likeliest");
        assert_eq!(lp.top[0].logprob, lp.logprob);
        assert!(lp.logprob <= 0.0 && lp.top[2].logprob <= lp.top[1].logprob);
    }
    let check = a.node.check_llm(&f.receipt, &f.transcript()).await.unwrap();
    assert!(check.ok, "{:?}", check.reason);
    let mut edited = f.transcript();
    edited.logprobs[1].logprob -= 0.5;
    let forged = forge(&key, &f.receipt, f.receipt.body.model, &edited);
    let check = a.node.check_llm(&forged, &edited).await.unwrap();
    assert!(!check.ok);
    assert_eq!(check.failed_at, Some(1), "{check:?}");
    assert!(check.reason.unwrap().contains("log-probabilities"));
    let resp = chat_json(
        &a,
        &json!({"model": LLM, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4,
                "temperature": 0, "logprobs": true, "top_logprobs": 2}),
    )
    .await;
    let content = resp["choices"][0]["logprobs"]["content"]
        .as_array()
        .unwrap();
    assert!(!content.is_empty(), "{resp}");
    assert_eq!(content[0]["top_logprobs"].as_array().unwrap().len(), 2);
    assert!(content[0]["token"].is_string() && content[0]["bytes"].is_array());
    let e = refused(with("top_logprobs", json!(21))).await;
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("top_logprobs needs logprobs"),
        "{e}"
    );
    let mut many = with("top_logprobs", json!(21));
    many["logprobs"] = json!(true);
    let e = refused(many).await;
    assert!(e["message"].as_str().unwrap().contains("at most 20"), "{e}");

    // Neutral values change nothing and pass.
    let mut neutral = with("presence_penalty", json!(0));
    neutral["logprobs"] = json!(false);
    neutral["user"] = json!("someone");
    let ok = chat_json(&a, &neutral).await;
    assert_eq!(ok["object"], "chat.completion", "{ok}");
    a.stop().await;
}

/// The statistical rule (`docs/llm-audit.md`), on a node whose executor
/// attacks in each of the ways `vouch node --fault` offers: honest answers
/// pass, and answers sampled at another temperature, with another seed,
/// with edited tokens or with the runner-up throughout all fail the same
/// rule, which allows 2.5% of honest tokens beyond the tolerance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_statistical_rule_passes_honest_answers_and_fails_each_attack() {
    use vouch_node::service::{Fault, LlmFault, RuleParams};
    use vouch_types::llm_rule::HardwareClass;
    let greedy = Sampling::default();
    let cases: [(Option<LlmFault>, Sampling); 5] = [
        (None, sampled(5)),
        (Some(LlmFault::Temperature(1.0)), greedy.clone()),
        (Some(LlmFault::Seed), sampled(5)),
        (Some(LlmFault::Edit(16)), greedy.clone()),
        (Some(LlmFault::RunnerUpFrom(8)), greedy.clone()),
    ];
    for (fault, sampling) in cases {
        let dir = tempfile::tempdir().unwrap();
        let t = llm_node(dir.path(), |c| {
            c.fault = fault.map(|f| Fault {
                step: None,
                llm: Some(f),
            })
        })
        .await;
        // Each class gets its own rate; the strict check without a network.
        let service = t.node.service();
        assert_eq!(service.llm_rule(0.02, HardwareClass::Cpu).exceed_rate, 0.0);
        service.set_llm_rule(Some(RuleParams {
            exceed_rate: 0.03,
            cpu_exceed_rate: 0.0,
            hard: 0.1,
        }));
        assert_eq!(service.llm_rule(0.02, HardwareClass::Cpu).threshold(128), 1);
        assert_eq!(
            service
                .llm_rule(0.02, HardwareClass::Accelerator)
                .exceed_rate,
            0.03
        );
        // The accelerator rule's leniency for these CPU answers too (the
        // ledger's default for CPUs is the strict check).
        t.node.service().set_llm_rule(Some(RuleParams {
            exceed_rate: 0.025,
            cpu_exceed_rate: 0.025,
            hard: 0.1,
        }));
        for q in [
            "Write a short story about a lighthouse keeper.",
            "Explain how a bicycle works.",
        ] {
            let f = t
                .node
                .generate_all(request(question(q), 64, sampling.clone()))
                .await
                .unwrap();
            let check = t.node.check_llm(&f.receipt, &f.transcript()).await.unwrap();
            let rule = check.rule.clone().expect("re-executed here");
            assert_eq!((rule.exceed_rate, rule.hard), (0.025, 0.1));
            match fault {
                None => {
                    assert!(check.ok, "honest answer failed: {check:?}");
                    assert_eq!(check.beyond, Some(0), "{check:?}");
                }
                Some(fault) => {
                    assert!(!check.ok, "{fault:?} passed: {check:?}");
                    let reason = check.reason.unwrap_or_default();
                    assert!(
                        reason.contains("hard bound") || reason.contains("fail the rule"),
                        "{fault:?}: {reason}"
                    );
                }
            }
        }
        t.stop().await;
    }
}

/// Every LLM attack `vouch node --fault` offers, each by its own executor
/// on a 3-node network whose nodes apply the ledger's default statistical
/// rule: the auditor disputes the faulty answer, the third node referees
/// and confirms, and the dispute names the executor. The substitute is the
/// sample's weights re-quantized to Q4_0 by llama.cpp.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_llm_attack_is_disputed_under_the_statistical_rule() {
    use vouch_engine::gguf::{Quantization, quantize};
    use vouch_node::audit::AuditOutcome;
    use vouch_node::service::{Fault, LlmFault};
    use vouch_types::dispute::Party;
    let dirs: Vec<_> = (0..7).map(|_| tempfile::tempdir().unwrap()).collect();
    // The accelerator rule's leniency for these CPU answers too: the
    // loosest rule a network applies by default.
    let rule = Some(vouch_node::service::RuleParams {
        exceed_rate: 0.025,
        cpu_exceed_rate: 0.025,
        hard: 0.1,
    });
    let referee = on_network(dirs[0].path(), vec![], 0.0, None).await;
    let id = push_llm(&referee, LLM, &llm_file()).await;
    let auditor = on_network(dirs[1].path(), addresses(&referee), 0.0, None).await;
    admit_all(&[&referee, &auditor]);
    replicate(&auditor, id, LLM).await;
    let q4 = dirs[2].path().join("q4_0.gguf");
    quantize(&llm_file(), &q4, Quantization::Q4_0).unwrap();
    let attacks = [
        (LlmFault::Substitute, Sampling::default()),
        (LlmFault::Temperature(1.2), Sampling::default()),
        (LlmFault::Seed, sampled(7)),
        (LlmFault::Edit(16), Sampling::default()),
    ];
    for (i, (fault, sampling)) in attacks.into_iter().enumerate() {
        let faulty = on_network_with(dirs[3 + i].path(), addresses(&referee), |c| {
            c.audit_rate = 0.0;
            c.fault = Some(Fault {
                step: None,
                llm: Some(fault),
            });
            c.llm_substitute = Some(q4.clone());
        })
        .await;
        admit_all(&[&referee, &faulty, &auditor]);
        replicate(&faulty, id, LLM).await;
        for t in [&referee, &auditor, &faulty] {
            t.node.service().set_llm_rule(rule);
        }
        eventually("the auditor to see the faulty provider", || {
            auditor.node.network_models()[&id.to_string()]
                .providers
                .contains(&faulty.node.peer_id())
        })
        .await;
        let bad = faulty
            .node
            .generate_all(request(
                question("Write a short story about a lighthouse keeper."),
                128,
                sampling,
            ))
            .await
            .unwrap();
        bad.transcript().verify(&bad.receipt).unwrap();
        let outcome = auditor
            .node
            .audit(bad.receipt.clone(), faulty.node.peer_id())
            .await
            .unwrap();
        let AuditOutcome::LlmDisputed(d) = outcome else {
            panic!("{fault:?}: expected a dispute, got {outcome:?}");
        };
        assert_eq!(d.check(), Ok(Party::Executor), "{fault:?}");
        assert_eq!(d.executor.body.node, faulty.node.public_key());
        assert_eq!(d.referee.signer, referee.node.public_key());
        assert!(
            d.auditor.reason.contains("hard bound") || d.auditor.reason.contains("fail the rule"),
            "{fault:?}: {}",
            d.auditor.reason
        );
        // Gone, it leaves the draw: three dead operators drawn first
        // would leave the next dispute without a referee.
        for t in [&referee, &auditor] {
            t.node.expel(&faulty.node.public_key());
        }
        faulty.stop().await;
    }
}

/// Pooled audits: an executor that generates with a faint substitute (the
/// sample re-quantized to Q5_0) and states an accelerator it does not have
/// passes most answers alone under the lenient accelerator rule, but its
/// answers pooled over one window fail it, and a referee's count confirms;
/// an honest executor stating an accelerator passes its pool; an auditor
/// that accuses an honest pool with a forged count over a part of it is
/// found faulty, because the referee counts the pool the executor
/// completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pooled_audit_catches_a_faint_substitute_that_passes_answer_by_answer() {
    use vouch_engine::gguf::{Quantization, quantize};
    use vouch_node::llm_pool::PoolOutcome;
    use vouch_node::service::{Fault, LlmFault};
    use vouch_types::dispute::{DISPUTE_VERSION, Party};
    use vouch_types::llm_pool::{Answer, PoolDispute, PoolVerdict};
    let dirs: Vec<_> = (0..5).map(|_| tempfile::tempdir().unwrap()).collect();
    let rule = Some(vouch_node::service::RuleParams {
        exceed_rate: 0.025,
        cpu_exceed_rate: 0.0,
        hard: 0.1,
    });
    let referee = on_network(dirs[0].path(), vec![], 0.0, None).await;
    let id = push_llm(&referee, LLM, &llm_file()).await;
    let auditor = on_network(dirs[1].path(), addresses(&referee), 0.0, None).await;
    let q5 = dirs[4].path().join("q5_0.gguf");
    quantize(&llm_file(), &q5, Quantization::Q5_0).unwrap();
    let faulty = on_network_with(dirs[2].path(), addresses(&referee), |c| {
        c.audit_rate = 0.0;
        c.fault = Some(Fault {
            step: None,
            llm: Some(LlmFault::Substitute),
        });
        c.llm_substitute = Some(q5.clone());
        c.llm_claim = Some("CUDA".into());
    })
    .await;
    let honest = on_network_with(dirs[3].path(), addresses(&referee), |c| {
        c.audit_rate = 0.0;
        c.llm_claim = Some("CUDA".into());
    })
    .await;
    let all = [&referee, &auditor, &faulty, &honest];
    admit_all(&all);
    for t in &all[1..] {
        replicate(t, id, LLM).await;
    }
    for t in all {
        t.node.service().set_llm_rule(rule);
    }
    eventually("the auditor to see every provider", || {
        let p = &auditor.node.network_models()[&id.to_string()].providers;
        p.contains(&faulty.node.peer_id()) && p.contains(&honest.node.peer_id())
    })
    .await;
    let prompts = [
        "What is the capital of France?",
        "Write a short story about a lighthouse keeper.",
        "Explain how a bicycle works.",
        "List five fruits and their colours.",
        "Why is the sky blue?",
        "Give me three tips for learning a new language.",
        "Describe a sunrise over the sea.",
        "What does a compiler do?",
    ];
    let start = vouch_node::service::now_ms();
    let mut pass_alone = 0;
    for (i, p) in prompts.iter().enumerate() {
        for sampling in [Sampling::default(), sampled(i as u64)] {
            let a = faulty
                .node
                .generate_all(request(question(p), 128, sampling))
                .await
                .unwrap();
            assert!(a.receipt.body.engine.version.ends_with(" +CUDA"));
            let check = auditor
                .node
                .check_llm(&a.receipt, &a.transcript())
                .await
                .unwrap();
            pass_alone += usize::from(check.ok);
        }
    }
    let mut honest_answers = Vec::new();
    for p in &prompts[..3] {
        let a = honest
            .node
            .generate_all(request(question(p), 64, Sampling::default()))
            .await
            .unwrap();
        honest_answers.push(Answer {
            transcript: a.transcript(),
            receipt: a.receipt,
        });
    }
    let end = vouch_node::service::now_ms() + 1;
    // The accelerator rule passes most of the substitute's answers alone.
    assert!(pass_alone >= 8, "{pass_alone} of 16 passed alone");

    let scope = auditor
        .node
        .pool_scope(faulty.node.public_key(), id, (start, end))
        .await
        .unwrap();
    let outcome = auditor.node.audit_pool(scope).await.unwrap();
    let PoolOutcome::Disputed(d) = outcome else {
        panic!("expected a pooled dispute, got {outcome:?}");
    };
    assert_eq!(d.check(), Ok(Party::Executor));
    assert_eq!(d.answers.len(), 16);
    assert_eq!(d.scope.executor, faulty.node.public_key());
    assert!([referee.node.public_key(), honest.node.public_key()].contains(&d.referee.signer));
    assert!(d.referee.fails() && d.auditor.fails());
    assert_eq!(
        d.auditor.exceed, d.referee.exceed,
        "both count the same pool"
    );
    eprintln!(
        "{pass_alone} of 16 answers pass alone; the pool: {} of {} tokens beyond the tolerance, failing at {}",
        d.referee.exceed,
        d.referee.tokens,
        d.referee.rule.threshold(d.referee.tokens)
    );
    let rule = d.referee.rule;

    // The honest executor's pool passes: its CPU answers are exact.
    let scope = auditor
        .node
        .pool_scope(honest.node.public_key(), id, (start, end))
        .await
        .unwrap();
    let outcome = auditor.node.audit_pool(scope).await.unwrap();
    let PoolOutcome::Passed {
        answers, exceed, ..
    } = outcome
    else {
        panic!("expected the honest pool to pass, got {outcome:?}");
    };
    assert_eq!((answers, exceed), (3, 0));

    // A framing auditor: a count over the first answer of the honest
    // pool, signed as failing. The referee counts the pool the executor
    // completes and finds the auditor faulty.
    let pool = scope.select(honest_answers);
    assert_eq!(pool.len(), 3);
    let part = &pool[..1];
    let ids: Vec<_> = part.iter().map(|a| a.receipt.id).collect();
    let n = part[0].transcript.tokens.len() as u64;
    assert_eq!(rule.exceed_ppm, 25_000);
    let forged = PoolVerdict::sign(auditor.node.service().key(), scope.digest(&ids), n, n, rule);
    assert!(forged.fails());
    let counted = auditor
        .node
        .p2p()
        .unwrap()
        .request(
            referee.node.peer_id(),
            vouch_node::p2p::Frame {
                head: vouch_node::p2p::Request::RefereePool { pool: scope.key() },
                body: serde_json::to_vec(&serde_json::json!({
                    "scope": scope,
                    "answers": part,
                    "verdict": forged,
                }))
                .unwrap(),
            },
        )
        .await
        .expect("the referee answers");
    assert_eq!(
        counted.head,
        vouch_node::p2p::Response::Ok,
        "{}",
        String::from_utf8_lossy(&counted.body)
    );
    let counted: serde_json::Value = serde_json::from_slice(&counted.body).unwrap();
    let verdict: PoolVerdict = serde_json::from_value(counted["verdict"].clone()).unwrap();
    let answers: Vec<Answer> = serde_json::from_value(counted["answers"].clone()).unwrap();
    assert_eq!(answers.len(), 3, "the executor completed the pool");
    assert_eq!(verdict.exceed, 0);
    let d = PoolDispute {
        version: DISPUTE_VERSION,
        scope,
        accused: ids,
        auditor: forged,
        answers,
        referee: verdict,
        faulty: Party::Auditor,
    };
    assert_eq!(d.check(), Ok(Party::Auditor));
    for t in [referee, auditor, faulty, honest] {
        t.stop().await;
    }
}

/// Pooled audits on a ledger, untouched by hand: three validators, one of
/// which samples at another temperature than committed and states an
/// accelerator it does not have. After the window its answers fall in
/// (`llm_pool_window_ms`) and the window's beacon block, the auditor the
/// pool's draw picks audits the pool, a referee counts it again, and every
/// validator's ledger convicts the executor on the pool and slashes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_ledger_each_window_is_audited_as_a_pool_and_the_cheat_slashed() {
    use vouch_node::ledger::{Genesis, Offer, Params};
    use vouch_node::service::{Fault, LlmFault};
    use vouch_types::SecretKey;
    use vouch_types::llm_pool::PoolScope;
    const WINDOW: u64 = 20_000;
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let keys: Vec<SecretKey> = (0..3u8)
        .map(|i| SecretKey::from_bytes(&[60 + i; 32]))
        .collect();
    for (dir, key) in dirs.iter().zip(&keys) {
        std::fs::write(dir.path().join("operator.key"), hex::encode(key.to_bytes())).unwrap();
    }
    let operators: Vec<_> = keys.iter().map(SecretKey::public).collect();
    let genesis = Genesis {
        chain_id: "pool-test".into(),
        params: Params {
            llm_pool_window_ms: WINDOW,
            ..Params::default()
        },
        accounts: operators.iter().map(|k| (*k, 1_000_000)).collect(),
        operators: operators
            .iter()
            .map(|k| (*k, 100_000, Offer::default()))
            .collect(),
    };
    let ports = vouch_node::ledger::local_ports(3).unwrap();
    // Every node hears the receipts gossiped (it audits, at a rate that
    // samples none of these answers alone); the cheat claims CUDA.
    let start = |i: usize, cheat: bool, bootstrap| {
        common::validator(
            dirs[i].path(),
            &genesis,
            (&ports, i),
            move |c| {
                c.audit_rate = 1e-9;
                if cheat {
                    c.fault = Some(Fault {
                        step: None,
                        llm: Some(LlmFault::Temperature(1.2)),
                    });
                    c.llm_claim = Some("CUDA".into());
                }
            },
            bootstrap,
        )
    };
    let auditor = start(0, false, vec![]).await;
    let cheat = start(1, true, addresses(&auditor)).await;
    let referee = start(2, false, addresses(&auditor)).await;
    let id = push_llm(&auditor, LLM, &llm_file()).await;
    for t in [&cheat, &referee] {
        replicate(t, id, LLM).await;
    }
    eventually("every node to see both other providers", || {
        [&auditor, &cheat, &referee].iter().all(|t| {
            t.node
                .network_models()
                .get(&id.to_string())
                .is_some_and(|m| m.providers.len() >= 2)
        })
    })
    .await;
    // The pool to convict holds two answers: one answer of 48 tokens may
    // stay under the rule's count. On a slow host a window can end between
    // two answers, so the cheat answers until its last two share a window.
    let mut windows: Vec<u64> = Vec::new();
    for seed in 0..6 {
        let a = cheat
            .node
            .generate_all(request(question("Why is the sky blue?"), 48, sampled(seed)))
            .await
            .unwrap();
        let at = a.receipt.body.timestamp_ms;
        windows.push(at - at % WINDOW);
        if let [.., x, y] = windows[..]
            && x == y
        {
            break;
        }
    }
    let start_ms = *windows.last().unwrap();
    assert!(
        windows.iter().filter(|&&w| w == start_ms).count() >= 2,
        "no two answers in one window: {windows:?}"
    );
    let scope = PoolScope {
        executor: operators[1],
        model: id,
        start_ms,
        end_ms: start_ms + WINDOW,
        beacon: [0; 32],
    }
    .key();
    for t in [&auditor, &cheat, &referee] {
        let chain = t.node.chain().unwrap().clone();
        common::eventually_within(240, "a conviction on the cheat's pool", || {
            chain.read(|l| l.disputed(&scope))
        })
        .await;
        chain.read(|l| {
            assert!(l.operators()[&operators[1]].slashed > 0);
            assert_eq!(l.operators()[&operators[0]].slashed, 0);
            assert_eq!(l.operators()[&operators[2]].slashed, 0);
        });
    }
    eventually("the pooled dispute in the auditor's evidence", || {
        auditor.node.store().evidence().unwrap().iter().any(|e| {
            let e: serde_json::Value = serde_json::from_slice(e).unwrap();
            e["kind"] == "llm_pool_dispute" && e["dispute"]["faulty"] == "executor"
        })
    })
    .await;
    for t in [auditor, cheat, referee] {
        t.stop().await;
    }
}
