//! What each command does.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use vouch_api::{InferRequest, ModelInfo, OutputsFile, PinStatus, to_map};
use vouch_client::{Client, PushParams};
use vouch_node::service::Fault;
use vouch_node::{Node, NodeConfig, P2pConfig};
use vouch_types::llm::Transcript;
use vouch_types::{Digest, Kind, PublicKey, Receipt};

use crate::cli::{
    ChatArgs, Cli, Command, InferArgs, ModelCommand, P2pArgs, ReceiptsCommand, ServeArgs, UpArgs,
    VerifyArgs,
};

pub(crate) async fn run(cli: Cli) -> Result<()> {
    let client = Client::new(&cli.node).with_token(admin_token(&cli));
    match cli.command {
        Command::Up(args) => {
            let data_dir = match &cli.data_dir {
                Some(d) => d.clone(),
                None => default_data_dir()?,
            };
            let models = args
                .models
                .clone()
                .unwrap_or_else(vouch_node::samples::models_dir);
            if args.nodes > 1 {
                return up_network(&args, &data_dir, &models).await;
            }
            serve(
                config(data_dir, args.listen, &args.serve)?,
                &args.serve.p2p,
                Some(models),
            )
            .await
        }
        Command::Node(args) => {
            let data_dir = cli.data_dir.clone().ok_or_else(|| {
                anyhow!(
                    "vouch node needs --data-dir DIR: where its store, key and admin token live"
                )
            })?;
            serve(
                config(data_dir, args.listen, &args.serve)?,
                &args.serve.p2p,
                None,
            )
            .await
        }
        Command::Network { json } => network(&client, json).await,
        Command::Evidence { dispute, out, json } => evidence(&client, dispute, out, json).await,
        Command::VerifyDispute {
            file,
            input,
            admitted,
            replay,
        } => {
            let admitted = admitted
                .iter()
                .map(|k| parse_key(k))
                .collect::<Result<_>>()?;
            verify_dispute(&client, &file, input.as_deref(), &admitted, replay).await
        }
        Command::Model(cmd) => model(&client, cmd).await,
        Command::Infer(args) => infer(&client, args).await,
        Command::Verify(args) => verify(&client, args).await,
        Command::Chat(args) => chat(&client, args).await,
        Command::Receipts(ReceiptsCommand::Show { id }) => {
            let id = Digest::parse_kind(Kind::Receipt, &id).map_err(|e| anyhow!("`{id}`: {e}"))?;
            let receipt = client.receipt(&id).await?;
            receipt
                .verify()
                .context("the node returned a receipt that does not verify")?;
            println!("{}", serde_json::to_string_pretty(&receipt)?);
            Ok(())
        }
    }
}

/// Where `vouch up` keeps its data when no --data-dir is given.
fn default_data_dir() -> Result<PathBuf> {
    Ok(dirs::data_dir()
        .ok_or_else(|| anyhow!("no user data directory on this system; pass --data-dir"))?
        .join("vouch"))
}

/// The admin token to present: --token / $VOUCH_TOKEN, else the token file
/// of a node on this machine (--data-dir, or `vouch up`'s default), read
/// only when --node is a loopback address, so a local node's token is
/// never sent elsewhere.
pub(crate) fn admin_token(cli: &Cli) -> Option<String> {
    if let Some(t) = &cli.token {
        return Some(t.clone());
    }
    if !Client::new(&cli.node).is_loopback() {
        return None;
    }
    let dir = cli.data_dir.clone().or_else(|| default_data_dir().ok())?;
    let text = std::fs::read_to_string(dir.join(vouch_node::config::ADMIN_TOKEN_FILE)).ok()?;
    Some(text.trim().to_string())
}

fn config(data_dir: PathBuf, listen: std::net::SocketAddr, s: &ServeArgs) -> Result<NodeConfig> {
    let mut c = NodeConfig::new(data_dir);
    c.listen = listen;
    c.max_request_bytes = s.max_request_bytes;
    c.max_upload_bytes = s.max_upload_bytes;
    c.cache_bytes = s.cache_mib << 20;
    if let Some(w) = s.workers {
        c.workers = w.max(1);
    }
    c.trace = !s.no_trace;
    c.accept_pins = s.p2p.accept_pins;
    c.price = s.price;
    if !(0.0..=1.0).contains(&s.max_share) {
        bail!("--max-share {} must be between 0 and 1", s.max_share);
    }
    c.max_share = s.max_share;
    if !(0.0..=1.0).contains(&s.audit_rate) {
        bail!("--audit-rate {} must be between 0 and 1", s.audit_rate);
    }
    c.audit_rate = s.audit_rate;
    c.retention = std::time::Duration::from_secs(s.retention);
    c.fault = s.fault.as_deref().map(parse_fault).transpose()?;
    c.llm_slots = usize::from(s.llm_slots);
    c.llm_context = s.llm_context as usize;
    c.llm_ubatch = usize::from(s.llm_ubatch);
    c.allowed_hosts = s.allowed_hosts.clone();
    c.max_evidence = s.max_evidence;
    c.max_embedding_inputs = s.max_embedding_inputs.max(1);
    c.max_embedding_tokens = s.max_embedding_tokens.max(1);
    c.admitted = s
        .admitted
        .iter()
        .map(|k| {
            k.parse::<PublicKey>()
                .map_err(|e| anyhow!("--admit {k}: {e}; give an operator key as ed25519:HEX"))
        })
        .collect::<Result<_>>()?;
    c.externals = s
        .externals
        .iter()
        .map(|e| vouch_node::external::ExternalModel::parse(e).map_err(anyhow::Error::msg))
        .collect::<Result<_, _>>()?;
    Ok(c)
}

/// `perturb` or `perturb:STEP`.
fn parse_fault(s: &str) -> Result<Fault> {
    match s.split_once(':') {
        None if s == "perturb" => Ok(Fault { step: None }),
        Some(("perturb", step)) => {
            Ok(Fault {
                step: Some(step.parse().map_err(|_| {
                    anyhow!("--fault perturb:{step}: the step must be a trace index")
                })?),
            })
        }
        _ => bail!("--fault {s}: use `perturb` or `perturb:STEP`"),
    }
}

/// The p2p configuration the flags describe.
fn p2p_config(args: &P2pArgs) -> Result<P2pConfig> {
    let listen = args.p2p_listen.parse().map_err(|e| {
        anyhow!(
            "--p2p-listen {}: {e}; use a multiaddr like /ip4/0.0.0.0/tcp/4001",
            args.p2p_listen
        )
    })?;
    let bootstrap = args
        .bootstrap
        .iter()
        .map(|b| {
            b.parse().map_err(|e| {
                anyhow!("--bootstrap {b}: {e}; use a multiaddr like /ip4/10.0.0.1/tcp/4001/p2p/12D3Koo...")
            })
        })
        .collect::<Result<_>>()?;
    Ok(P2pConfig::new(listen, bootstrap))
}

/// Fetches each `--serve` model from peers as soon as one announces it.
fn serve_from_peers(node: &Arc<Node>, models: &[String]) {
    for spec in models {
        let (name, version) = match spec.split_once('@') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (spec.clone(), None),
        };
        let node = node.clone();
        tokio::spawn(async move {
            // Announcements take a moment to arrive: say so only if the
            // model is still not there after a few tries.
            for attempt in 1u32.. {
                match node.replicate(&name, version.as_deref()).await {
                    Ok(id) => {
                        tracing::info!(model = %name, %id, "serving model fetched from peers");
                        return;
                    }
                    Err(e) => {
                        if attempt == 5 {
                            tracing::warn!(model = %name, error = %e, "cannot fetch the model yet; still trying");
                        }
                        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                    }
                }
            }
        });
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: draining in-flight requests");
}

async fn serve(config: NodeConfig, p2p: &P2pArgs, samples: Option<PathBuf>) -> Result<()> {
    let p2p_config = p2p_config(p2p)?;
    let listen = config.listen;
    let data_dir = config.data_dir.clone();
    let node: Arc<Node> = Node::open(config)?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| {
            format!("cannot listen on {listen}; pick another address with --listen")
        })?;
    let addr = listener.local_addr()?;
    if let Some(dir) = samples {
        let imported = vouch_node::samples::import(&node, &dir).await;
        if !imported.is_empty() {
            tracing::info!(models = ?imported, "imported sample models");
        }
    }
    node.join(p2p_config, Some(format!("http://{addr}")))
        .await
        .context("joining the network; check --p2p-listen and --bootstrap")?;
    let peers_at: Vec<String> = node
        .p2p()
        .map(|p| p.addresses().iter().map(|a| a.to_string()).collect())
        .unwrap_or_default();
    serve_from_peers(&node, &p2p.serve_models);
    tracing::info!(
        p2p = ?peers_at,
        url = %format!("http://{addr}"),
        node = %node.public_key(),
        data = %data_dir.display(),
        "vouch node listening"
    );
    eprintln!(
        "vouch node {} listening on http://{addr} (data in {})",
        node.public_key(),
        data_dir.display()
    );
    for a in &peers_at {
        eprintln!("  peers can join with --bootstrap {a}");
    }
    print_token_hint(&data_dir);
    vouch_node::serve(node, listener, shutdown_signal()).await?;
    Ok(())
}

/// `vouch up --nodes N`: N nodes in this process with distinct operator
/// keys, joined on loopback, the samples imported by the first and
/// replicated to the others.
async fn up_network(args: &UpArgs, data_dir: &Path, models: &Path) -> Result<()> {
    let n = args.nodes;
    let fault_node = args.fault_node.unwrap_or(n - 1);
    if fault_node >= n {
        bail!(
            "--fault-node {fault_node}: there are only {n} nodes (0 to {})",
            n - 1
        );
    }
    std::fs::create_dir_all(data_dir).with_context(|| {
        format!(
            "creating {}; pass a writable --data-dir",
            data_dir.display()
        )
    })?;
    // One admin token for the whole local network, in DIR itself, where
    // the CLI looks for it.
    let token = vouch_node::keyfile::load_or_create_token(
        &data_dir.join(vouch_node::config::ADMIN_TOKEN_FILE),
    )?;
    // The local network's operators admit one another: their keys are made
    // (or read) before any node opens.
    let keys: Vec<PublicKey> = (0..n)
        .map(|i| {
            let dir = data_dir.join(format!("node-{i}"));
            std::fs::create_dir_all(&dir)?;
            Ok(vouch_node::keyfile::load_or_create(&dir.join("operator.key"))?.public())
        })
        .collect::<Result<_>>()?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut bootstrap = p2p_config(&args.serve.p2p)?.bootstrap;
    let mut tasks = Vec::new();
    let mut first: Option<(Arc<Node>, String)> = None;
    for i in 0..n {
        let port = match args.listen.port() {
            0 => 0,
            p => p
                .checked_add(i)
                .ok_or_else(|| anyhow!("--listen port too high for {n} nodes"))?,
        };
        let listen = std::net::SocketAddr::new(args.listen.ip(), port);
        let mut c = config(data_dir.join(format!("node-{i}")), listen, &args.serve)?;
        c.accept_pins = true;
        c.admin_token = Some(token.clone());
        c.admitted.extend(keys.iter().copied());
        if i != fault_node {
            c.fault = None;
        }
        let faulty = c.fault.is_some();
        let node = Node::open(c)?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}; pick another --listen"))?;
        let url = format!("http://{}", listener.local_addr()?);
        node.join(P2pConfig::loopback(bootstrap.clone()), Some(url.clone()))
            .await?;
        if i == 0 {
            bootstrap = node.p2p().map(|p| p.addresses()).unwrap_or_default();
            let imported = vouch_node::samples::import(&node, models).await;
            if !imported.is_empty() {
                tracing::info!(models = ?imported, "imported sample models");
            }
            first = Some((node.clone(), url.clone()));
        } else {
            let names: Vec<String> = vouch_node::samples::SAMPLES
                .iter()
                .map(|s| s.name.to_string())
                .collect();
            serve_from_peers(&node, &names);
        }
        eprintln!(
            "node {i}: {url}  operator {}{}",
            node.public_key(),
            if faulty {
                "  (FAULTY: signs wrong answers)"
            } else {
                ""
            }
        );
        let mut stopped = stopped.clone();
        tasks.push(tokio::spawn(vouch_node::serve(
            node,
            listener,
            async move {
                let _ = stopped.changed().await;
            },
        )));
    }
    print_token_hint(data_dir);
    if let Some((_, url)) = &first {
        eprintln!(
            "{n} nodes up. Try: vouch chat smollm2-135m \"What is the capital of France?\" --verify quorum:{q} --node {url}; vouch infer iris --input in.json --verify quorum:{q} --node {url}; vouch network --node {url}; vouch evidence --node {url}",
            q = n.min(3)
        );
    }
    shutdown_signal().await;
    let _ = stop.send(true);
    for t in tasks {
        t.await??;
    }
    Ok(())
}

/// Says where the admin token is and how the CLI finds it.
fn print_token_hint(data_dir: &Path) {
    let file = data_dir.join(vouch_node::config::ADMIN_TOKEN_FILE);
    let how = if default_data_dir().is_ok_and(|d| d == data_dir) {
        "the vouch CLI on this machine reads it by itself".to_string()
    } else {
        format!(
            "the vouch CLI reads it with --data-dir {}",
            data_dir.display()
        )
    };
    eprintln!(
        "  operator actions (push, pin, audits) need the admin token in {}: {how}; elsewhere set VOUCH_TOKEN",
        file.display()
    );
}

fn print_model(m: &ModelInfo) {
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

async fn model(client: &Client, cmd: ModelCommand) -> Result<()> {
    match cmd {
        ModelCommand::Push {
            file,
            name,
            version,
            license,
            input_shapes,
            tokenizer,
        } => {
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
                    },
                )
                .await?;
            print_model(&info);
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
    }
    Ok(())
}

/// Pins a model and follows it with a progress bar until the node serves
/// it and `replicas` nodes do.
async fn pin(
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
fn progress_line(s: &PinStatus, replicas: u64) -> String {
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

async fn network(client: &Client, json: bool) -> Result<()> {
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

async fn evidence(
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

async fn verify_dispute(
    client: &Client,
    file: &Path,
    input: Option<&Path>,
    admitted: &std::collections::BTreeSet<PublicKey>,
    replay: bool,
) -> Result<()> {
    use vouch_types::dispute::Party;
    let value: serde_json::Value = read_json(file, "dispute (JSON)")?;
    if value.get("transcript").is_some() {
        return verify_llm_dispute(client, file, value, admitted, replay).await;
    }
    let dispute: vouch_types::dispute::Dispute = serde_json::from_value(value)
        .with_context(|| format!("{} is not a valid dispute", file.display()))?;
    let inputs = match input {
        Some(p) => {
            let req: InferRequest = read_json(p, "request ({\"inputs\": {...}})")?;
            Some(to_map(req.inputs))
        }
        None => None,
    };
    let faulty = dispute
        .check(inputs.as_ref())
        .context("the dispute does not check out")?;
    let (bad, good) = match faulty {
        Party::Executor => (&dispute.executor, &dispute.auditor),
        Party::Auditor => (&dispute.auditor, &dispute.executor),
    };
    println!(
        "the dispute checks: at step {}{} the {faulty:?} {} computed a leaf the referee {} does not; {} agreed with the referee",
        dispute.step,
        dispute
            .step_name
            .as_ref()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default(),
        bad.body.node,
        dispute.verdict.referee,
        good.body.node
    );
    if replay {
        let inputs = inputs
            .ok_or_else(|| anyhow!("--replay re-runs the model: give the request with --input"))?;
        let leaf = rerun_step(client, &dispute.executor, &inputs, dispute.step).await?;
        let found = if leaf == dispute.auditor_descent.leaf {
            Party::Executor
        } else if leaf == dispute.executor_descent.leaf {
            Party::Auditor
        } else {
            bail!(
                "re-executed on {}, step {}'s leaf matches neither party",
                client.base(),
                dispute.step
            )
        };
        if found != faulty {
            bail!(
                "re-executed on {}: the {found:?} is faulty, not the {faulty:?} the referee names",
                client.base()
            );
        }
        println!(
            "established by re-execution on {}: the {faulty:?} is faulty",
            client.base()
        );
        return Ok(());
    }
    establish_by_parties(dispute.check_parties(admitted), admitted, faulty)
}

/// Says that admitted parties establish a dispute against `faulty`, or
/// why they do not.
fn establish_by_parties(
    parties: Result<(), vouch_types::dispute::DisputeError>,
    admitted: &std::collections::BTreeSet<PublicKey>,
    faulty: vouch_types::dispute::Party,
) -> Result<()> {
    parties.map_err(|e| {
        let how = if admitted.is_empty() {
            "name the operators you admit with --admit KEY (`vouch network` lists them)".to_string()
        } else {
            e.to_string()
        };
        anyhow!(
            "the dispute checks offline, but nothing here establishes its verdict: anyone can mint an auditor's and a referee's keys. {how}, or re-execute it on a node that serves the model with --replay"
        )
    })?;
    println!(
        "dispute verified: established by admitted parties (the auditor and the drawn referee are operators you admit); the {faulty:?} is faulty"
    );
    Ok(())
}

/// Runs the disputed receipt's model on `inputs` on the node and returns
/// the leaf its trace commits at `step`.
async fn rerun_step(
    client: &Client,
    disputed: &Receipt,
    inputs: &vouch_types::TensorMap,
    step: u64,
) -> Result<Digest> {
    let model = disputed.body.model;
    let listed = client.list_models().await?;
    let m = listed
        .models
        .iter()
        .find(|m| m.id == model)
        .ok_or_else(|| {
            anyhow!(
                "the node at {} does not hold model {model}; pin it there first (vouch model pin)",
                client.base()
            )
        })?;
    let request = InferRequest {
        inputs: vouch_api::from_map(inputs.clone()),
        nonce: Some("verify-dispute".into()),
        verify: None,
    };
    let answer = client.infer(&m.name, Some(&m.version), &request).await?;
    let receipt = answer.receipt;
    receipt
        .verify()
        .context("the node's receipt does not verify")?;
    receipt
        .verify_inputs(inputs)
        .context("the node ran other inputs")?;
    if receipt.body.model != model || receipt.body.engine != disputed.body.engine {
        bail!(
            "the node ran {} on {} {}, not {model} on {} {}: the traces cannot be compared",
            receipt.body.model,
            receipt.body.engine.name,
            receipt.body.engine.version,
            disputed.body.engine.name,
            disputed.body.engine.version
        );
    }
    let entry = client.trace_entry(&receipt.id, step).await?;
    if !vouch_types::merkle::verify(
        &receipt.body.trace.root,
        receipt.body.trace.len,
        step,
        &entry.leaf,
        &entry.path,
    ) {
        bail!("the node revealed a trace leaf that is not in its receipt's trace");
    }
    Ok(entry.leaf)
}

/// A dispute over a generated answer: everything but the teacher-forced
/// check itself is re-checked here; --replay runs the check on the node.
async fn verify_llm_dispute(
    client: &Client,
    file: &Path,
    value: serde_json::Value,
    admitted: &std::collections::BTreeSet<PublicKey>,
    replay: bool,
) -> Result<()> {
    use vouch_types::dispute::Party;
    let d: vouch_types::dispute::LlmDispute = serde_json::from_value(value)
        .with_context(|| format!("{} is not a valid LLM dispute", file.display()))?;
    let faulty = d.check().context("the dispute does not check out")?;
    let at = d.auditor.failed_at.unwrap_or_default();
    match faulty {
        Party::Executor => println!(
            "the dispute checks: the executor {} signed an answer whose token {at} fails the teacher-forced check of auditor {} and of referee {} ({})",
            d.executor.body.node, d.auditor.signer, d.referee.signer, d.referee.reason
        ),
        Party::Auditor => println!(
            "the dispute checks: auditor {} rejected token {at} of {}'s answer, but referee {} found every token passes",
            d.auditor.signer, d.executor.body.node, d.referee.signer
        ),
    }
    if replay {
        let check: serde_json::Value = client
            .post_json(
                "/v1/audit/llm",
                &serde_json::json!({"receipt": d.executor, "transcript": d.transcript}),
            )
            .await?;
        let found = match (check["ok"].as_bool(), check["failed_at"].as_u64()) {
            (Some(true), _) => Party::Auditor,
            (_, Some(_)) => Party::Executor,
            _ => bail!(
                "the node could not check the tokens: {}",
                check["reason"].as_str().unwrap_or("no reason given")
            ),
        };
        if found != faulty {
            bail!(
                "re-checked on {}: the {found:?} is faulty, not the {faulty:?} the referee names",
                client.base()
            );
        }
        let by = check["checked_by"]["signer"]
            .as_str()
            .map(|s| format!(" (by operator {s}, which it asked)"))
            .unwrap_or_default();
        println!(
            "established by re-execution on {}{by}: the {faulty:?} is faulty",
            client.base()
        );
        return Ok(());
    }
    establish_by_parties(d.check_parties(admitted), admitted, faulty)
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("vouch-partial");
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path, what: &str) -> Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not a valid {what}", path.display()))
}

fn random_nonce() -> String {
    let mut b = [0u8; 16];
    if getrandom::fill(&mut b).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        b[..16].copy_from_slice(&t.as_nanos().to_le_bytes());
    }
    hex::encode(b)
}

fn parse_key(s: &str) -> Result<PublicKey> {
    s.parse().map_err(|e| anyhow!("`{s}`: {e}"))
}

/// Checks that `receipt` names the model asked for: the id given with
/// `--model-id`, else the one the node registers under that name (when it
/// holds it), and says which it compared; a routed answer's model is
/// named so the user can pin it with `--model-id`.
async fn check_model(
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

async fn infer(client: &Client, args: InferArgs) -> Result<()> {
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
async fn chat(client: &Client, args: ChatArgs) -> Result<()> {
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
    let resp: serde_json::Value = client.post_json("/v1/chat/completions", &body).await?;
    let receipt: Receipt = serde_json::from_value(resp["vouch"]["receipt"].clone())
        .context("the answer carries no valid receipt")?;
    let transcript: Transcript = serde_json::from_value(resp["vouch"]["transcript"].clone())
        .context("the answer carries no valid transcript")?;
    transcript
        .verify(&receipt)
        .map_err(|e| anyhow!("the answer does not match its receipt: {e}"))?;
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

async fn verify(client: &Client, args: VerifyArgs) -> Result<()> {
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
        if let Some(text) = value
            .pointer("/choices/0/message/content")
            .or_else(|| value.pointer("/choices/0/text"))
            .and_then(|v| v.as_str())
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
    if let Some(k) = &args.node_key {
        let want = parse_key(k)?;
        if receipt.body.node != want {
            bail!("the receipt is signed by {}, not {want}", receipt.body.node);
        }
        checked.push("signer");
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
