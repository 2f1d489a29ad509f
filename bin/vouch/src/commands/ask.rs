//! Asking and checking: `vouch infer`, `vouch chat`, `vouch verify`.

use super::*;

/// Checks that `receipt` names the model asked for: the id given with
/// `--model-id`, else the one the node registers under that name (when it
/// holds it), and says which it compared; a routed answer's model is
/// named so the user can pin it with `--model-id`.
pub(crate) async fn check_model(
    client: &Client,
    receipt: &Receipt,
    (name, version): (&str, Option<&str>),
    want: Option<&str>,
) -> Result<()> {
    let got = receipt.body.model;
    let which = version.map_or(name.to_string(), |v| format!("{name}@{v}"));
    if let Some(want) = want {
        let want =
            Digest::parse_kind(Kind::Model, want).map_err(|e| anyhow!("--model-id {want}: {e}"))?;
        if got != want {
            bail!(
                "the receipt names model {got}, not {want} (--model-id): the answer is not from the model asked for"
            );
        }
        eprintln!("model {got}: the one asked for (--model-id)");
        return Ok(());
    }
    match client.show_model(name, version).await {
        Ok(detail) if detail.model.id == got => eprintln!(
            "model {got}: {}@{} as the node registers it (publisher {})",
            detail.model.name, detail.model.version, detail.model.publisher
        ),
        Ok(detail) => bail!(
            "the receipt names model {got}, but {which} on the node is {}: the answer is not from the model asked for",
            detail.model.id
        ),
        Err(_) => eprintln!(
            "model {got}: routed, so the node does not hold {which} itself; pass --model-id {got} to require exactly this model"
        ),
    }
    Ok(())
}
/// `client`, paying with `--pay`'s key where given.
fn paying(client: &Client, pay: &PayArgs) -> Result<Client> {
    let Some(file) = &pay.pay else {
        return Ok(client.clone());
    };
    let key = vouch_node::keyfile::load(file)
        .with_context(|| format!("reading the paying key {}", file.display()))?;
    Ok(client
        .clone()
        .with_payer(key, pay.max_price)
        .paying_ahead(pay.pay_ahead))
}

pub(crate) async fn infer(client: &Client, args: InferArgs) -> Result<()> {
    let client = &paying(client, &args.pay)?;
    let mut request: InferRequest = read_json(&args.input, "request ({\"inputs\": {...}})")?;
    let nonce = args
        .nonce
        .or(request.nonce.take())
        .unwrap_or_else(random_nonce);
    request.nonce = Some(nonce.clone());
    if args.verify.is_some() {
        request.verify = args.verify.clone();
    }
    let response = client
        .infer(&args.name, args.version.as_deref(), &request)
        .await?;
    let receipt = &response.receipt;
    // Check what came back before trusting it: signature, inputs, outputs, nonce.
    receipt
        .verify()
        .context("the node's receipt does not verify")?;
    check_fresh_if_direct(client, receipt).await?;
    receipt
        .verify_inputs(&to_map(request.inputs.clone()))
        .context("the receipt names other inputs")?;
    receipt
        .verify_outputs(&to_map(response.outputs.clone()))
        .context("the receipt names other outputs than the ones returned")?;
    if receipt.body.nonce != nonce {
        bail!(
            "the receipt carries nonce `{}`, not ours (`{nonce}`): it was not made for this request",
            receipt.body.nonce
        );
    }
    if let Some(k) = &args.expect_node {
        let want = parse_key(k)?;
        if receipt.body.node != want {
            bail!("the receipt is signed by {}, not {want}", receipt.body.node);
        }
    }
    check_model(
        client,
        receipt,
        (&args.name, args.version.as_deref()),
        args.model_id.as_deref(),
    )
    .await?;
    // A quorum's other receipts: each must verify and name these inputs.
    let inputs = to_map(request.inputs.clone());
    for other in &response.receipts {
        other
            .verify()
            .with_context(|| format!("quorum receipt {} does not verify", other.id))?;
        other
            .verify_inputs(&inputs)
            .with_context(|| format!("quorum receipt {} names other inputs", other.id))?;
        if other.body.model != receipt.body.model || other.body.nonce != nonce {
            bail!(
                "quorum receipt {} is for another model or request",
                other.id
            );
        }
    }
    if let Some(q) = &response.quorum {
        eprintln!(
            "quorum: {} of {} operators agreed{}",
            q.agreed,
            q.wanted,
            if q.dissent.is_empty() {
                String::new()
            } else {
                format!(
                    "; dissent from {}",
                    q.dissent
                        .iter()
                        .map(|d| d.operator.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        );
    }
    if let Some(e) = &response.executed_by {
        eprintln!(
            "executed by {} (route {})",
            e.peer,
            response.route.join(" -> ")
        );
    }
    // A proof is checked here, with the circuit the model's manifest names.
    match (&response.proof, args.verify.as_deref()) {
        (Some(bundle), _) => {
            let circuit = client
                .blob(&bundle.circuit)
                .await
                .context("fetching the circuit the proof is checked against")?;
            let outputs = to_map(response.outputs.clone());
            let started = std::time::Instant::now();
            let (vk, key) = verifying_key(&circuit)?;
            let checked =
                vouch_proof::check(receipt, bundle, &circuit, &inputs, &outputs, Some(&vk))
                    .context("the node's proof")?;
            eprintln!(
                "proof verified in {} ms ({key}): the outputs are model {}'s circuit applied to the inputs (within {:.1e} of the float model)",
                started.elapsed().as_millis(),
                checked.manifest.name,
                checked.circuit.error_bound
            );
            if let Some(p) = &args.proof {
                write_atomic(p, serde_json::to_string_pretty(bundle)?.as_bytes())?;
            }
            if let Some(p) = &args.circuit {
                write_atomic(p, &circuit)?;
            }
        }
        (None, Some("proof")) => bail!("the node answered without the proof asked for"),
        (None, _) if args.proof.is_some() || args.circuit.is_some() => {
            bail!("--proof and --circuit need --verify proof")
        }
        (None, _) => {}
    }
    let outputs = serde_json::to_string_pretty(&OutputsFile {
        outputs: response.outputs,
    })?;
    match &args.out {
        Some(p) => write_atomic(p, outputs.as_bytes())?,
        None => println!("{outputs}"),
    }
    if let Some(p) = &args.receipt {
        write_atomic(p, serde_json::to_string_pretty(receipt)?.as_bytes())?;
    }
    eprintln!(
        "receipt {} verified: signed by {}",
        receipt.id, receipt.body.node
    );
    Ok(())
}
/// `vouch chat`: one chat turn, its receipt and transcript checked here
/// before the answer is printed.
pub(crate) async fn chat(client: &Client, args: ChatArgs) -> Result<()> {
    let client = &paying(client, &args.pay)?;
    let mut messages = Vec::new();
    if let Some(system) = &args.system {
        messages.push(serde_json::json!({"role": "system", "content": system}));
    }
    messages.push(serde_json::json!({"role": "user", "content": args.message}));
    let mut body = serde_json::json!({
        "model": args.model,
        "messages": messages,
        "max_tokens": args.max_tokens,
        "temperature": args.temperature,
    });
    if let Some(seed) = args.seed {
        body["seed"] = seed.into();
    }
    if let Some(verify) = &args.verify {
        body["verify"] = verify.as_str().into();
    }
    let constraint = match &args.json_schema {
        Some(file) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading {}", file.display()))?;
            let schema: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", file.display()))?;
            body["response_format"] = serde_json::json!({"type": "json_schema",
                "json_schema": {"name": "answer", "schema": schema}});
            Some(serde_json::json!({"type": "json_schema", "schema": schema}))
        }
        None => None,
    };
    let resp: serde_json::Value = client.post_paid("/v1/chat/completions", &[], &body).await?;
    let receipt: Receipt = serde_json::from_value(resp["vouch"]["receipt"].clone())
        .context("the answer carries no valid receipt")?;
    let transcript: Transcript = serde_json::from_value(resp["vouch"]["transcript"].clone())
        .context("the answer carries no valid transcript")?;
    transcript
        .verify(&receipt)
        .map_err(|e| anyhow!("the answer does not match its receipt: {e}"))?;
    check_fresh_if_direct(client, &receipt).await?;
    // The receipt binds the messages the model answered: ours, exactly
    // (a provider that rewrote an instruction signs other ones), and the
    // sampling we asked for.
    let sent: Vec<(String, String)> = messages
        .iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap_or_default().to_string(),
                m["content"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let signed: Vec<(String, String)> = transcript
        .request
        .messages
        .iter()
        .map(|m| (m.role.clone(), m.content.clone()))
        .collect();
    if signed != sent {
        bail!(
            "the receipt signs other messages than the ones sent: {signed:?}; the answer is not to our conversation"
        );
    }
    // And the schema we asked for, when we did.
    let bound = transcript
        .request
        .constraint
        .as_deref()
        .map(serde_json::from_str::<serde_json::Value>)
        .transpose()
        .context("the receipt binds a constraint that is not JSON")?;
    if bound != constraint {
        bail!("the receipt binds another constraint than the schema sent: {bound:?}");
    }
    if transcript.request.sampling.temperature != args.temperature
        || args
            .seed
            .is_some_and(|s| s != transcript.request.sampling.seed)
    {
        bail!(
            "the receipt signs other sampling than asked: {:?}",
            transcript.request.sampling
        );
    }
    let text = resp
        .pointer("/choices/0/message/content")
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    if text != transcript.text() {
        bail!("the answer's text is not the text its receipt signs");
    }
    check_model(
        client,
        &receipt,
        (&args.model, None),
        args.model_id.as_deref(),
    )
    .await?;
    if let Some(out) = &args.out {
        write_atomic(out, serde_json::to_string_pretty(&resp)?.as_bytes())?;
    }
    println!("{text}");
    if let Some(q) = resp["vouch"].get("quorum") {
        let dissent: Vec<&str> = q["dissent"]
            .as_array()
            .map(|d| d.iter().filter_map(|p| p.as_str()).collect())
            .unwrap_or_default();
        eprintln!(
            "quorum: {} of {} operators agreed{}",
            q["agreed"],
            q["wanted"],
            if dissent.is_empty() {
                String::new()
            } else {
                format!("; dissent from peer {}", dissent.join(", "))
            }
        );
    }
    eprintln!(
        "receipt {} verified: signed by {} (peer {}), model {}{}",
        receipt.id,
        receipt.body.node,
        resp["vouch"]["executor"].as_str().unwrap_or("?"),
        receipt.body.model,
        if vouch_node::external::is_unattested(&receipt.body.engine) {
            " NOT ATTESTED (external engine)"
        } else {
            ""
        }
    );
    Ok(())
}
pub(crate) async fn verify(client: &Client, args: VerifyArgs) -> Result<()> {
    let value: serde_json::Value = read_json(&args.receipt, "receipt")?;
    let holder = value.get("vouch").unwrap_or(&value);
    let (receipt, transcript): (Receipt, Option<Transcript>) = match holder.get("receipt") {
        Some(r) => (
            serde_json::from_value(r.clone()).context("the `receipt` is not a valid receipt")?,
            match holder.get("transcript") {
                Some(t) => Some(
                    serde_json::from_value(t.clone())
                        .context("the `transcript` is not a valid transcript")?,
                ),
                None => None,
            },
        ),
        None => (
            serde_json::from_value(value.clone())
                .with_context(|| format!("{} is not a valid receipt", args.receipt.display()))?,
            None,
        ),
    };
    receipt.verify()?;
    let mut checked = vec!["signature and id"];
    if let Some(t) = &transcript {
        t.verify(&receipt).map_err(|e| anyhow!(e))?;
        checked.push("transcript (request, seed, tokens, text)");
        if let Some(message) = value.pointer("/choices/0/message") {
            // A chat's message (its content, or the tool calls read from
            // the answer's JSON) is derived from the text the receipt signs.
            let (derived, _) =
                vouch_api::chat::assistant_message(&t.request, &t.text(), t.finish_reason);
            for field in ["content", "tool_calls"] {
                let null = serde_json::Value::Null;
                if message.get(field).unwrap_or(&null) != derived.get(field).unwrap_or(&null) {
                    bail!("the answer's {field} is not what the text the receipt signs gives");
                }
            }
            if derived.get("tool_calls").is_some() {
                checked.push("tool calls (read from the signed text)");
            }
        } else if let Some(text) = value.pointer("/choices/0/text").and_then(|v| v.as_str())
            && text != t.text()
        {
            bail!("the answer's text is not the text the receipt signs");
        }
    }
    if args.replay {
        let t = transcript.as_ref().ok_or_else(|| {
            anyhow!("--replay needs a chat or completion response with its transcript")
        })?;
        let check: serde_json::Value = client
            .post_json(
                "/v1/audit/llm",
                &serde_json::json!({"receipt": receipt, "transcript": t}),
            )
            .await?;
        if check["ok"] != serde_json::Value::Bool(true) {
            bail!(
                "teacher-forced replay failed: {}",
                check["reason"].as_str().unwrap_or("no reason given")
            );
        }
        checked.push("every token by teacher forcing");
        if let Some(by) = check["checked_by"]["signer"].as_str() {
            eprintln!(
                "the node does not serve the model: operator {by} ran the teacher-forced check and signed its verdict"
            );
        }
    }
    if args.model.is_some() || args.model_id.is_some() {
        let (name, version) = match args.model.as_deref().map(|m| m.split_once('@')) {
            Some(Some((n, v))) => (n, Some(v)),
            Some(None) => (args.model.as_deref().unwrap_or_default(), None),
            None => ("", None),
        };
        check_model(client, &receipt, (name, version), args.model_id.as_deref()).await?;
        checked.push("model");
    }
    if let Some(k) = &args.node_key {
        let want = parse_key(k)?;
        if receipt.body.node != want {
            bail!("the receipt is signed by {}, not {want}", receipt.body.node);
        }
        checked.push("signer");
    }
    if let Some(url) = &args.ledger {
        let ledger = Client::new(url);
        let chain = ledger.ledger_status().await?["chain_id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let operators = ledger.ledger_operators().await?;
        let signer = receipt.body.node.to_string();
        let found = operators.as_array().into_iter().flatten().find_map(|op| {
            op["keys"].as_array()?.iter().find_map(|k| {
                (k["key"].as_str() == Some(signer.as_str()))
                    .then(|| (op["account"].clone(), k["from_height"].clone()))
            })
        });
        let Some((account, from)) = found else {
            bail!(
                "the receipt's signer {signer} is not a key of any operator registered on chain `{chain}` ({url})"
            );
        };
        eprintln!(
            "the signer is a key of operator {} on chain `{chain}` (signing from height {from})",
            account.as_str().unwrap_or_default()
        );
        checked.push("registered operator");
    }
    if let Some(p) = &args.input {
        let req: InferRequest = read_json(p, "request ({\"inputs\": {...}})")?;
        receipt.verify_inputs(&to_map(req.inputs))?;
        checked.push("inputs");
    }
    if let Some(p) = &args.output {
        let out: OutputsFile = read_json(p, "outputs file ({\"outputs\": {...}})")?;
        receipt.verify_outputs(&to_map(out.outputs))?;
        checked.push("outputs");
    }
    if let Some(p) = &args.proof {
        let (Some(input), Some(output), Some(circuit)) = (&args.input, &args.output, &args.circuit)
        else {
            bail!(
                "checking a proof needs --input, --output and --circuit (the circuit file the model's manifest names: `vouch infer --verify proof --circuit FILE` writes it)"
            );
        };
        let bundle: vouch_proof::Bundle =
            read_json(p, "proof (as `vouch infer --proof FILE` writes it)")?;
        let req: InferRequest = read_json(input, "request")?;
        let out: OutputsFile = read_json(output, "outputs file")?;
        let circuit =
            std::fs::read(circuit).with_context(|| format!("reading {}", circuit.display()))?;
        let started = std::time::Instant::now();
        let (vk, key) = verifying_key(&circuit)?;
        let (inputs, outputs) = (to_map(req.inputs), to_map(out.outputs));
        let c = match vouch_proof::check(&receipt, &bundle, &circuit, &inputs, &outputs, Some(&vk))
        {
            Ok(c) => c,
            Err(e) => match &args.dispute {
                None => return Err(e.into()),
                Some(path) => {
                    let d = vouch_proof::ProofDispute::new(
                        receipt.clone(),
                        bundle,
                        circuit,
                        &inputs,
                        &outputs,
                    );
                    if let Err(why) = d.check() {
                        bail!("{e} (no dispute written: {why})");
                    }
                    std::fs::write(path, serde_json::to_vec(&d)?)
                        .with_context(|| format!("writing {}", path.display()))?;
                    bail!(
                        "{e}: the evidence against {} is in {}; `vouch dispute {}` files it on the ledger",
                        receipt.body.node,
                        path.display(),
                        path.display()
                    );
                }
            },
        };
        eprintln!(
            "checked a proof in {} ms ({key}; no model file, no node): the outputs are model {}@{}'s circuit applied to the inputs, within {:.1e} of the float model",
            started.elapsed().as_millis(),
            c.manifest.name,
            c.manifest.version,
            c.circuit.error_bound
        );
        checked.push("proof");
    }
    println!(
        "ok: {} ({}) by {} for {}",
        receipt.id,
        checked.join(", "),
        receipt.body.node,
        receipt.body.model
    );
    if vouch_node::external::is_unattested(&receipt.body.engine) {
        println!(
            "note: NOT ATTESTED: the operator vouches for this transcript, but the model ran on an external server ({}); nothing proves which model that was",
            receipt.body.engine.version
        );
    }
    if args.report {
        let r = client.report_receipt(&receipt).await?;
        println!(
            "reported to {}: {}{}",
            client.base(),
            if r.gossiped {
                "gossiped to the network's auditors"
            } else {
                "reported there before"
            },
            if r.audited_here {
                "; that node audits it"
            } else {
                ""
            }
        );
    }
    Ok(())
}

/// Where verifying keys this machine derived are kept: `$VOUCH_KEYS`, or
/// `keys` in the user's cache directory.
fn keys_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("VOUCH_KEYS") {
        return Some(PathBuf::from(d));
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(cache.join("vouch/keys"))
}

/// The verifying key of circuit file `bytes`, and how it was had: read
/// back from the key this machine derived from the same circuit before
/// (named by the circuit's digest), or derived now from the circuit
/// alone and kept. A kept key that does not read (another version wrote
/// it, the disk mangled it) is derived again; one that cannot be kept
/// only costs the next check the derivation.
fn verifying_key(bytes: &[u8]) -> Result<(vouch_proof::VerifyingKey, String)> {
    let started = std::time::Instant::now();
    let path = keys_dir().map(|d| {
        d.join(format!(
            "{}.vk",
            vouch_proof::bundle::circuit_digest(bytes).to_hex()
        ))
    });
    if let Some(kept) = path.as_ref().and_then(|p| std::fs::read(p).ok())
        && let Ok(vk) = vouch_proof::VerifyingKey::from_bytes(&kept)
    {
        let took = started.elapsed().as_millis();
        return Ok((vk, format!("the circuit's key read back in {took} ms")));
    }
    let circuit = vouch_proof::Circuit::decode(bytes).context("the circuit file")?;
    let vk = vouch_proof::VerifyingKey::derive(&circuit).context("deriving the circuit's key")?;
    let took = started.elapsed().as_millis();
    let kept = path.and_then(|p| {
        std::fs::create_dir_all(p.parent()?).ok()?;
        let tmp = p.with_extension(format!("{}.partial", std::process::id()));
        let written = std::fs::write(&tmp, vk.to_bytes()).and_then(|()| std::fs::rename(&tmp, &p));
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
            return None;
        }
        Some(p)
    });
    let how = match kept {
        Some(p) => format!(
            "the circuit's key derived in {took} ms, kept in {}",
            p.display()
        ),
        None => format!("the circuit's key derived in {took} ms"),
    };
    Ok((vk, how))
}
