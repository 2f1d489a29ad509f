//! The hub and the network as an operator sees them: models, pins, peers,
//! evidence.

use super::*;

pub(crate) fn print_model(m: &ModelInfo) {
    println!("{}@{}  {}", m.name, m.version, m.id);
    println!("  format     {}", m.format);
    println!("  publisher  {}", m.publisher);
    if !m.license.is_empty() {
        println!("  license    {}", m.license);
    }
    for f in &m.files {
        println!("  file       {} {} ({} bytes)", f.role, f.digest, f.size);
    }
    let spec = |s: &vouch_api::JsonSpec| {
        let dims: Vec<String> = s.shape.as_ref().map_or_else(
            || vec!["?".into()],
            |d| {
                d.iter()
                    .map(|d| match d {
                        vouch_api::JsonDim::Fixed(n) => n.to_string(),
                        vouch_api::JsonDim::Symbol(s) => s.clone(),
                    })
                    .collect()
            },
        );
        format!(
            "{} {} [{}]",
            s.name,
            s.dtype.as_deref().unwrap_or("?"),
            dims.join(", ")
        )
    };
    for s in &m.schema.inputs {
        println!("  input      {}", spec(s));
    }
    for s in &m.schema.outputs {
        println!("  output     {}", spec(s));
    }
}
pub(crate) async fn model(client: &Client, cmd: ModelCommand) -> Result<()> {
    match cmd {
        ModelCommand::Push {
            file,
            name,
            version,
            license,
            input_shapes,
            tokenizer,
            provable,
            input_range,
            precision,
        } => {
            let defaults = vouch_proof::circuit::Options::default();
            if !provable
                && (precision.weight_bits, precision.activation_bits)
                    != (defaults.weight_bits, defaults.activation_bits)
            {
                bail!(
                    "--weight-bits and --activation-bits shape a proof's circuit: add --provable"
                );
            }
            let tokenizer = match tokenizer {
                Some(p) => {
                    let bytes =
                        std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?;
                    Some(client.put_blob(bytes).await?)
                }
                None => None,
            };
            let size = std::fs::metadata(&file)
                .with_context(|| format!("reading {}", file.display()))?
                .len();
            eprintln!("pushing {} ({size} bytes) as {name}...", file.display());
            let info = client
                .push_file(
                    &file,
                    &PushParams {
                        name,
                        version,
                        license,
                        input_shapes,
                        tokenizer,
                        provable: provable.then_some(input_range),
                        weight_bits: provable.then_some(precision.weight_bits),
                        activation_bits: provable.then_some(precision.activation_bits),
                    },
                )
                .await?;
            print_model(&info);
        }
        ModelCommand::Circuit {
            file,
            input_range,
            precision,
            run,
            json,
        } => {
            let options = vouch_proof::circuit::Options {
                input_range,
                weight_bits: precision.weight_bits,
                activation_bits: precision.activation_bits,
            };
            circuit(&file, &options, run.as_deref(), json)?
        }
        ModelCommand::Ls { json } => {
            let list = client.list_models().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else if list.models.is_empty() {
                println!("no models; push one with `vouch model push FILE --name NAME`");
            } else {
                println!(
                    "{:<28} {:<8} {:<6} {:>12}  ID",
                    "NAME", "VERSION", "FORMAT", "BYTES"
                );
                for m in &list.models {
                    let size: u64 = m.files.iter().map(|f| f.size).sum();
                    println!(
                        "{:<28} {:<8} {:<6} {:>12}  {}",
                        m.name, m.version, m.format, size, m.id
                    );
                }
            }
        }
        ModelCommand::Show {
            name,
            version,
            json,
        } => {
            let detail = client.show_model(&name, version.as_deref()).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&detail)?);
            } else {
                print_model(&detail.model);
                println!("  versions   {}", detail.versions.join(", "));
            }
        }
        ModelCommand::Pin {
            name,
            version,
            replicas,
            timeout,
        } => pin(client, &name, version.as_deref(), replicas, timeout).await?,
        ModelCommand::Pull { name, version, out } => {
            let detail = client.show_model(&name, version.as_deref()).await?;
            let file = detail
                .model
                .files
                .iter()
                .find(|f| f.role == "model")
                .ok_or_else(|| anyhow!("model {name} has no model file"))?;
            let bytes = client.blob(&file.digest).await?;
            write_atomic(&out, &bytes)?;
            eprintln!(
                "wrote {} ({} bytes, {})",
                out.display(),
                bytes.len(),
                file.digest
            );
        }
        ModelCommand::Rm { name, version } => {
            let gone = client.delete_model(&name, &version).await?;
            println!(
                "deleted {}@{} ({}); its files go at the next `vouch gc` unless another model uses them",
                gone.name, gone.version, gone.id
            );
        }
    }
    Ok(())
}

/// `vouch gc`: collects garbage on the node and says what it freed.
pub(crate) async fn gc(client: &Client) -> Result<()> {
    let r = client.gc().await?;
    println!(
        "freed {} blob(s) ({} bytes), {} stopped fetch(es) ({} bytes), {} receipt(s)",
        r.blobs, r.blob_bytes, r.partials, r.partial_bytes, r.receipts
    );
    Ok(())
}
/// Pins a model and follows it with a progress bar until the node serves
/// it and `replicas` nodes do.
pub(crate) async fn pin(
    client: &Client,
    name: &str,
    version: Option<&str>,
    replicas: u64,
    timeout: u64,
) -> Result<()> {
    use std::io::Write as _;
    let mut status = client.pin(name, version, replicas).await?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(timeout);
    let interactive = std::io::IsTerminal::is_terminal(&std::io::stderr());
    loop {
        let line = progress_line(&status, replicas);
        if interactive {
            eprint!("\r{line}\x1b[K");
        } else {
            eprintln!("{line}");
        }
        let _ = std::io::stderr().flush();
        if let Some(e) = status.fetch.as_ref().and_then(|f| f.error.as_ref()) {
            if interactive {
                eprintln!();
            }
            bail!("fetching {name} failed: {e}");
        }
        if status.local && status.providers.len() as u64 >= replicas {
            break;
        }
        if std::time::Instant::now() > deadline {
            if interactive {
                eprintln!();
            }
            bail!(
                "gave up after {timeout}s: {} of {replicas} nodes serve {name}; raise --timeout, or start nodes with --accept-pins",
                status.providers.len()
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(if interactive {
            200
        } else {
            1000
        }))
        .await;
        status = client.pin_status(name, version).await?;
    }
    if interactive {
        eprintln!();
    }
    println!(
        "{}@{}  {}  served by {} node(s)",
        status.name,
        status.version,
        status.id,
        status.providers.len()
    );
    Ok(())
}
/// `[#########           ] 12.3/22.9 MB  replicas 1/3`
pub(crate) fn progress_line(s: &PinStatus, replicas: u64) -> String {
    const WIDTH: usize = 30;
    let (done, total) = match &s.fetch {
        Some(f) => (f.done_bytes, f.total_bytes.max(1)),
        None if s.local => (1, 1),
        None => (0, 1),
    };
    let filled = (WIDTH as u64 * done.min(total) / total) as usize;
    let mb = |b: u64| b as f64 / 1e6;
    let loading = s.fetch.as_ref().is_some_and(|f| f.state == "loading");
    format!(
        "{}@{} [{}{}] {:.1}/{:.1} MB{}  replicas {}/{replicas}",
        s.name,
        s.version,
        "#".repeat(filled),
        " ".repeat(WIDTH - filled),
        mb(done.min(total)),
        mb(s.fetch.as_ref().map_or(0, |f| f.total_bytes)),
        if loading { "  loading" } else { "" },
        s.providers.len()
    )
}
pub(crate) async fn network(client: &Client, json: bool) -> Result<()> {
    let nodes = client.network_nodes().await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&nodes)?);
        return Ok(());
    }
    for a in &nodes.listen {
        println!("listening for peers on {a}");
    }
    println!(
        "  {:<52} {:<4} {:>6} {:>6} {:>9} {:>7} {:>4} {:>6}  MODELS",
        "PEER", "CONN", "SHARE", "SERVED", "AUDITS", "DISSENT", "BAD", "FAILED"
    );
    for n in &nodes.nodes {
        let r = &n.record;
        println!(
            "{} {:<52} {:<4} {:>5.1}% {:>6} {:>4}/{:<4} {:>7} {:>4} {:>6}  {}",
            if n.local { "*" } else { " " },
            n.peer,
            if n.connected { "yes" } else { "no" },
            n.share * 100.0,
            r.served,
            r.audits_passed,
            r.audits_failed,
            r.disagreements,
            r.bad_data,
            r.failures,
            n.models.join(", ")
        );
    }
    println!(
        "* this node. AUDITS: passed/failed. {} requests handled here; Nakamoto coefficient of the share served: {}; {} hedged.",
        nodes.requests, nodes.nakamoto_coefficient, nodes.hedged
    );
    Ok(())
}
/// `vouch trace RECEIPT`: the node's trace of one request, as lines or
/// JSON.
pub(crate) async fn trace(client: &Client, id: &str, json: bool) -> Result<()> {
    let t = client
        .get_value(&format!("/v1/receipts/{id}/trace"))
        .await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&t)?);
        return Ok(());
    }
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("unknown").to_string();
    println!("receipt   {id}");
    println!("executor  {}", text(&t["executor"]));
    if let Some(r) = t["receipt"].as_object() {
        println!(
            "model     {}  price {}",
            text(&r["model"]),
            r["price"].as_u64().unwrap_or(0)
        );
    } else {
        println!("          (this node does not hold the receipt; what follows is what it heard)");
    }
    let e = &t["ledger"]["executor"];
    if e.is_object() {
        println!(
            "operator  {}  stake {}  slashed {}  contact {}",
            text(&e["account"]),
            e["stake"],
            e["slashed"],
            if e["contact"].as_str().unwrap_or("").is_empty() {
                "none declared".into()
            } else {
                text(&e["contact"])
            }
        );
    } else if t["ledger"].is_object() {
        println!("operator  not registered on the ledger");
    }
    if let Some(drawn) = t["drawn_auditors"].as_array() {
        let keys: Vec<String> = drawn.iter().map(text).collect();
        println!(
            "auditors  drawn: {}",
            if keys.is_empty() {
                "none".into()
            } else {
                keys.join(", ")
            }
        );
    }
    for note in t["audited_here"].as_array().into_iter().flatten() {
        println!("audit     here: {}", text(note));
    }
    for r in t["evidence"].as_array().into_iter().flatten() {
        let faulty = r["dispute"]["faulty"]
            .as_str()
            .map(|f| format!(": faulty {f}"))
            .unwrap_or_default();
        println!("evidence  {}{faulty}", text(&r["kind"]).replace('_', " "));
    }
    match t["ledger"]["convicted"].as_bool() {
        Some(true) => println!("ledger    convicted: the executor was slashed for this receipt"),
        Some(false) => println!("ledger    no conviction on this receipt"),
        None => println!("ledger    this node runs no chain"),
    }
    Ok(())
}

pub(crate) async fn evidence(
    client: &Client,
    dispute: Option<usize>,
    out: Option<PathBuf>,
    json: bool,
) -> Result<()> {
    let records = client.evidence().await?;
    if let (Some(n), Some(out)) = (dispute, out) {
        let record = records.get(n).ok_or_else(|| {
            anyhow!(
                "there are {} evidence records; N must be below that",
                records.len()
            )
        })?;
        if record["kind"] != "dispute" && record["kind"] != "llm_dispute" {
            bail!("record {n} is a {}, not a dispute", record["kind"]);
        }
        write_atomic(
            &out,
            serde_json::to_string_pretty(&record["dispute"])?.as_bytes(),
        )?;
        eprintln!(
            "wrote dispute {n} to {}; check it with `vouch verify-dispute {}`",
            out.display(),
            out.display()
        );
        return Ok(());
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&records)?);
        return Ok(());
    }
    if records.is_empty() {
        println!("no evidence recorded");
    }
    for (i, r) in records.iter().enumerate() {
        match r["kind"].as_str() {
            Some("dispute") => {
                let d = &r["dispute"];
                let faulty = d["faulty"].as_str().unwrap_or("?");
                let who = &d[faulty]["node"];
                println!(
                    "{i:>3}  dispute   model {}  step {} ({})  faulty {faulty} {}",
                    d["executor"]["model"].as_str().unwrap_or("?"),
                    d["step"],
                    d["step_name"].as_str().unwrap_or("?"),
                    who.as_str().unwrap_or("?")
                );
            }
            Some("llm_dispute") => {
                let d = &r["dispute"];
                let faulty = d["faulty"].as_str().unwrap_or("?");
                let who = match faulty {
                    "executor" => &d["executor"]["node"],
                    _ => &d["auditor"]["signer"],
                };
                println!(
                    "{i:>3}  llm dispute  model {}  token {}  faulty {faulty} {}",
                    d["executor"]["model"].as_str().unwrap_or("?"),
                    d["auditor"]["failed_at"],
                    who.as_str().unwrap_or("?")
                );
            }
            Some(kind) => println!(
                "{i:>3}  {kind}  model {}  {} receipts",
                r["model"].as_str().unwrap_or("?"),
                r["receipts"].as_array().map_or(0, Vec::len)
            ),
            None => println!("{i:>3}  (unknown record)"),
        }
    }
    Ok(())
}

/// `vouch model circuit`: compiles here, reports, and runs the circuit.
fn circuit(
    file: &Path,
    options: &vouch_proof::circuit::Options,
    run: Option<&Path>,
    json: bool,
) -> Result<()> {
    use vouch_proof::circuit::{Circuit, Layer};
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let circuit = Circuit::compile(&bytes, options)
        .map_err(|e| anyhow!("{} is not provable: {e}", file.display()))?;
    if let Some(request) = run {
        let req: InferRequest = read_json(request, "request ({\"inputs\": {...}})")?;
        let inputs = to_map(req.inputs);
        let name = &circuit.input.name;
        let t = inputs
            .get(name)
            .ok_or_else(|| anyhow!("the request holds no input `{name}`"))?;
        let per = circuit.input_len();
        let values: Vec<f32> = t.to_f64_vec().into_iter().map(|v| v as f32).collect();
        let rest = &circuit.input.shape[1..];
        if t.shape().len() != circuit.input.shape.len() || &t.shape()[1..] != rest {
            bail!(
                "input `{name}` has shape {:?}; the circuit takes [N, {}]",
                t.shape(),
                rest.iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        let mut out = Vec::with_capacity(values.len() / per.max(1) * circuit.output_len());
        for row in values.chunks(per) {
            let x = circuit.quantize_input(row)?;
            out.extend(circuit.dequantize(&circuit.evaluate(&x)?));
        }
        let mut shape = circuit.output.shape.clone();
        shape[0] = (values.len() / per.max(1)) as u64;
        let mut map = vouch_types::TensorMap::new();
        map.insert(
            circuit.output.name.clone(),
            vouch_types::Tensor::from_f32(shape, &out)?,
        );
        println!(
            "{}",
            serde_json::to_string(&OutputsFile {
                outputs: vouch_api::from_map(map)
            })?
        );
        return Ok(());
    }
    let constraints = circuit.constraints()?;
    let layers: Vec<&str> = circuit.layers.iter().map(Layer::kind).collect();
    if json {
        println!(
            "{}",
            serde_json::json!({
                "provable": true,
                "input": circuit.input,
                "output": circuit.output,
                "input_range": circuit.input_range,
                "weight_bits": circuit.weight_bits,
                "activation_bits": circuit.activation_bits,
                "layers": layers,
                "constraints": constraints,
                "error_bound": circuit.error_bound,
                "circuit_bytes": circuit.encode().len(),
            })
        );
    } else {
        println!(
            "{} is provable: {} ({} constraints); inputs within ±{}; outputs within {:.3e} of the float model",
            file.display(),
            layers.join(" → "),
            constraints,
            circuit.input_range,
            circuit.error_bound
        );
    }
    Ok(())
}
