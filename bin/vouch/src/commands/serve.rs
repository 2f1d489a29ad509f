//! Running nodes: `vouch node` and `vouch up` (one node, or a local
//! network of N).

use super::*;

pub(crate) fn config(
    data_dir: PathBuf,
    listen: std::net::SocketAddr,
    s: &ServeArgs,
) -> Result<NodeConfig> {
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
    if let Some(faults) = s.fault.as_deref() {
        let (fault, substitute, claim) = parse_faults(faults)?;
        c.fault = fault;
        c.llm_claim = claim;
        if let Some(file) = substitute {
            if !file.is_file() {
                bail!("--fault llm-substitute={}: no such file", file.display());
            }
            c.llm_substitute = Some(file);
        }
    }
    c.llm_slots = usize::from(s.llm_slots);
    c.llm_context = s.llm_context as usize;
    c.llm_threads = usize::from(s.llm_threads);
    c.onnx_threads = usize::from(s.onnx_threads);
    c.llm_ubatch = usize::from(s.llm_ubatch);
    c.allowed_hosts = s.allowed_hosts.clone();
    c.max_evidence = s.max_evidence;
    c.max_embedding_inputs = s.max_embedding_inputs.max(1);
    c.max_embedding_tokens = s.max_embedding_tokens.max(1);
    c.max_connections = s.max_connections.max(1);
    c.max_connections_per_ip = s.max_connections_per_ip.max(1);
    c.llm_queue = s.llm_queue;
    c.external_timeout = std::time::Duration::from_secs(s.external_timeout_secs.max(1));
    c.receipt_retention = (s.receipt_retention_days > 0)
        .then(|| std::time::Duration::from_secs(s.receipt_retention_days * 86_400));
    c.header_timeout = std::time::Duration::from_secs(s.header_timeout_secs.max(1));
    c.body_idle_timeout = std::time::Duration::from_secs(s.body_idle_timeout_secs.max(1));
    c.min_body_rate = s.min_body_rate;
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
/// `--fault`: faults separated by commas, at most one that changes
/// answers, and `llm-claim=NAME` (state an accelerator in LLM receipts);
/// returns the fault, the substitute's file and the claimed accelerator.
pub(crate) fn parse_faults(
    s: &str,
) -> Result<(Option<Fault>, Option<std::path::PathBuf>, Option<String>)> {
    let (mut fault, mut substitute, mut claim) = (None, None, None);
    for part in s.split(',') {
        if let Some(name) = part.strip_prefix("llm-claim=") {
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric()) {
                bail!(
                    "--fault llm-claim={name}: name an accelerator backend in letters and digits, e.g. CUDA"
                );
            }
            claim = Some(name.to_string());
            continue;
        }
        if fault.is_some() {
            bail!(
                "--fault {s}: at most one fault that changes answers (and llm-claim=NAME beside it)"
            );
        }
        fault = Some(parse_fault(part)?);
        if let Some(file) = part.strip_prefix("llm-substitute=") {
            substitute = Some(std::path::PathBuf::from(file));
        }
    }
    Ok((fault, substitute, claim))
}

/// One fault that changes answers: `perturb`, `perturb:STEP` or an LLM
/// attack.
pub(crate) fn parse_fault(s: &str) -> Result<Fault> {
    use vouch_node::service::LlmFault;
    let llm = |f| {
        Ok(Fault {
            step: None,
            llm: Some(f),
        })
    };
    let usage = "use `perturb`, `perturb:STEP`, `llm-temperature=T`, `llm-seed`, `llm-edit=K` or `llm-substitute=FILE.gguf`, and `llm-claim=NAME` beside one of them or alone";
    match s.split_once([':', '=']) {
        None if s == "perturb" => Ok(Fault::default()),
        None if s == "llm-seed" => llm(LlmFault::Seed),
        Some(("perturb", step)) => {
            Ok(Fault {
                step: Some(step.parse().map_err(|_| {
                    anyhow!("--fault perturb:{step}: the step must be a trace index")
                })?),
                llm: None,
            })
        }
        Some(("llm-temperature", t)) => match t.parse::<f64>() {
            Ok(t) if (0.0..=2.0).contains(&t) => llm(LlmFault::Temperature(t)),
            _ => bail!("--fault llm-temperature={t}: the temperature must be between 0 and 2"),
        },
        Some(("llm-substitute", _)) => llm(LlmFault::Substitute),
        Some(("llm-edit", k)) => match k.parse::<u32>() {
            Ok(k) if k > 0 => llm(LlmFault::Edit(k)),
            _ => bail!(
                "--fault llm-edit={k}: the count of edited tokens must be a whole number above 0"
            ),
        },
        _ => bail!("--fault {s}: {usage}"),
    }
}
/// The p2p configuration the flags describe.
pub(crate) fn p2p_config(args: &P2pArgs) -> Result<P2pConfig> {
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
    let mut config = P2pConfig::new(listen, bootstrap);
    config.max_incoming = args.max_peers.max(1);
    Ok(config)
}
/// Fetches each `--serve` model from peers as soon as one announces it.
pub(crate) fn serve_from_peers(node: &Arc<Node>, models: &[String]) {
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
pub(crate) async fn shutdown_signal() {
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
/// How a node takes part in a ledger chain.
pub(crate) struct ChainStart {
    /// The chain's genesis; `None`: a chain of the node's own
    /// (`solo_genesis`).
    pub(crate) genesis: Option<vouch_node::ledger::Genesis>,
    /// Where its validator listens.
    pub(crate) listen: std::net::SocketAddr,
    /// Validators to dial first.
    pub(crate) bootstrap: Vec<(PublicKey, std::net::SocketAddr)>,
    /// Between empty blocks.
    pub(crate) empty_block_interval: std::time::Duration,
    /// Between redemptions of the vouchers the node holds.
    pub(crate) redeem_interval: std::time::Duration,
}

pub(crate) async fn serve(
    config: NodeConfig,
    p2p_config: P2pConfig,
    serve_models: &[String],
    samples: Option<PathBuf>,
    chain: Option<ChainStart>,
) -> Result<()> {
    serve_until(
        config,
        p2p_config,
        serve_models,
        samples,
        chain,
        None,
        shutdown_signal(),
    )
    .await
}

/// [`serve`] until `until`; `member`: this node's index in a local network
/// (`vouch up --nodes N`), which it names when it says where it listens.
pub(crate) async fn serve_until(
    config: NodeConfig,
    p2p_config: P2pConfig,
    serve_models: &[String],
    samples: Option<PathBuf>,
    chain: Option<ChainStart>,
    member: Option<u16>,
    until: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let listen = config.listen;
    let data_dir = config.data_dir.clone();
    let node: Arc<Node> = Node::open(config)?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| {
            format!("cannot listen on {listen}; pick another address with --listen")
        })?;
    let addr = listener.local_addr()?;
    if let Some(chain) = chain {
        let own = chain.genesis.is_none();
        let genesis = chain
            .genesis
            .unwrap_or_else(|| vouch_node::ledger::solo_genesis(node.public_key()));
        node.start_chain(vouch_node::ledger::ChainSettings {
            genesis,
            listen: chain.listen,
            bootstrap: chain.bootstrap,
            leader_timeout: std::time::Duration::from_secs(1),
            empty_block_interval: chain.empty_block_interval,
            redeem_interval: chain.redeem_interval,
            own,
        })
        .context("starting the ledger chain")?;
    }
    if let Some(dir) = samples {
        let mut imported = vouch_node::samples::import(&node, &dir).await;
        imported.extend(vouch_node::samples::import_provable(&node, &dir).await);
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
    serve_from_peers(&node, serve_models);
    if let Some(i) = member {
        say(&format!(
            "node {i}: http://{addr}  operator {}{}",
            node.public_key(),
            if node.config().fault.is_some() {
                "  (FAULTY: signs wrong answers)"
            } else {
                ""
            }
        ));
    }
    tracing::info!(
        p2p = ?peers_at,
        url = %format!("http://{addr}"),
        node = %node.public_key(),
        data = %data_dir.display(),
        "vouch node listening"
    );
    say(&format!(
        "vouch node {} listening on http://{addr} (data in {})",
        node.public_key(),
        data_dir.display()
    ));
    for a in &peers_at {
        say(&format!("  peers can join with --bootstrap {a}"));
    }
    if member.is_none() {
        print_token_hint(&data_dir);
    }
    vouch_node::serve(node, listener, until).await?;
    Ok(())
}
/// `vouch up --nodes N`: N `vouch up --member I` processes, started here
/// and stopped with this one. Each is a node with its own operator key and
/// data under DIR/node-I and a validator of one chain whose genesis funds
/// and stakes every operator; node 0 imports the samples and the others
/// replicate them from it. A member whose process is killed leaves the
/// others running, as a machine would.
pub(crate) async fn up_network(args: &UpArgs, data_dir: &Path) -> Result<()> {
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
    vouch_node::keyfile::load_or_create_token(
        &data_dir.join(vouch_node::config::ADMIN_TOKEN_FILE),
    )?;
    let keys = local_keys(data_dir, n)?;
    let genesis_file = data_dir.join("genesis.json");
    let genesis = local_genesis(&keys, args.serve.audit_rate);
    match std::fs::read_to_string(&genesis_file) {
        Ok(text) if vouch_node::ledger::genesis_from_json(&text).is_ok_and(|g| g == genesis) => {}
        _ => std::fs::write(&genesis_file, vouch_node::ledger::genesis_to_json(&genesis))
            .with_context(|| format!("writing {}", genesis_file.display()))?,
    }
    // The validators' ports and node 0's peer-to-peer port are named in
    // the members' flags, so they are chosen here.
    let ports = vouch_node::ledger::local_ports(usize::from(n) + 1)
        .context("choosing ports for the local network")?;
    let (chain_ports, p2p_port) = ports.split_at(n as usize);
    let chain_ports = chain_ports
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let exe = std::env::current_exe().context("finding the vouch binary to start the nodes")?;
    let mut members = Vec::new();
    for i in 0..n {
        // A member stops when its stdin closes: when this process stops,
        // however it stops.
        let child = tokio::process::Command::new(&exe)
            .args(std::env::args_os().skip(1))
            .args(["--member", &i.to_string()])
            .args(["--member-chain-ports", &chain_ports])
            .args(["--member-p2p-port", &p2p_port[0].to_string()])
            .stdin(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting node {i}"))?;
        say(&format!(
            "node {i}: process {}",
            child.id().unwrap_or_default()
        ));
        members.push(child);
        if i == 0 {
            // The others join through node 0: wait until it listens.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
            while tokio::net::TcpStream::connect(("127.0.0.1", p2p_port[0]))
                .await
                .is_err()
            {
                if let Ok(Some(status)) = members[0].try_wait() {
                    bail!("node 0 exited ({status}) before it joined; see its log above");
                }
                if std::time::Instant::now() > deadline {
                    bail!("node 0 did not open its peer-to-peer port within 5 minutes");
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
    print_token_hint(data_dir);
    let node0 = match args.listen.port() {
        0 => "NODE0_URL".to_string(),
        p => format!("http://{}:{p}", args.listen.ip()),
    };
    say(&format!(
        "{n} nodes up (each its own process: kill one to see the others go on). Try: vouch chat smollm2-135m \"What is the capital of France?\" --verify quorum:{q} --node {node0}; vouch infer iris --input in.json --verify quorum:{q} --node {node0}; vouch network --node {node0}; vouch ledger operators --node {node0}",
        q = n.min(3)
    ));
    let mut running: Vec<(u16, tokio::process::Child)> = (0..n).zip(members).collect();
    let stop = shutdown_signal();
    tokio::pin!(stop);
    while !running.is_empty() {
        tokio::select! {
            () = &mut stop => break,
            () = tokio::time::sleep(std::time::Duration::from_millis(500)) => {
                running.retain_mut(|(i, child)| match child.try_wait() {
                    Ok(Some(status)) => {
                        say(&format!("node {i} exited ({status}); the others go on"));
                        false
                    }
                    _ => true,
                });
            }
        }
    }
    // Closing each member's stdin stops it gracefully.
    for (_, child) in &mut running {
        drop(child.stdin.take());
    }
    for (i, mut child) in running {
        match tokio::time::timeout(std::time::Duration::from_secs(30), child.wait()).await {
            Ok(_) => {}
            Err(_) => {
                say(&format!("node {i} did not stop within 30 s: killing it"));
                let _ = child.kill().await;
            }
        }
    }
    Ok(())
}

/// The operator keys of a local network's N nodes, made (or read) in
/// DIR/node-I/operator.key.
fn local_keys(data_dir: &Path, n: u16) -> Result<Vec<PublicKey>> {
    (0..n)
        .map(|i| {
            let dir = data_dir.join(format!("node-{i}"));
            std::fs::create_dir_all(&dir)?;
            Ok(vouch_node::keyfile::load_or_create(&dir.join("operator.key"))?.public())
        })
        .collect()
}

/// A local network's chain: every operator funded and staked as `vouch
/// up`'s own, named after the first, auditing at `--audit-rate`, with
/// votes of 15 blocks.
fn local_genesis(keys: &[PublicKey], audit_rate: f64) -> vouch_node::ledger::Genesis {
    use vouch_node::ledger::{Offer, SOLO_FUNDS, SOLO_STAKE};
    let mut g = vouch_node::ledger::solo_genesis(keys[0]);
    g.params.audit_rate_ppm = (audit_rate * 1e6).round() as u64;
    // Several operators each cast their vote, on machines that are busy
    // serving: 6 blocks was too short for the last of three votes to land
    // on a loaded 2-core machine (the explorer's end-to-end test once saw
    // it refused as late).
    g.params.voting_period = 15;
    g.chain_id = format!("vouch-local-net-{}", hex::encode(&keys[0].as_bytes()[..8]));
    g.accounts = keys.iter().map(|k| (*k, SOLO_FUNDS)).collect();
    g.operators = keys
        .iter()
        .map(|k| (*k, SOLO_STAKE, Offer::default()))
        .collect();
    g
}

/// `vouch up --nodes N --member I`: node I of the local network
/// [`up_network`] started, until its stdin closes or it is signalled.
pub(crate) async fn up_member(args: &UpArgs, data_dir: &Path, models: &Path, i: u16) -> Result<()> {
    let n = args.nodes;
    let fault_node = args.fault_node.unwrap_or(n - 1);
    let keys = local_keys(data_dir, n)?;
    let genesis = read_genesis(&data_dir.join("genesis.json"))?;
    let chain_port = |j: usize| -> Result<std::net::SocketAddr> {
        let port = args
            .member_chain_ports
            .get(j)
            .ok_or_else(|| anyhow!("--member-chain-ports names no port for node {j}"))?;
        Ok(std::net::SocketAddr::from(([127, 0, 0, 1], *port)))
    };
    let p2p_port = args.member_p2p_port.unwrap_or_default();
    let port = match args.listen.port() {
        0 => 0,
        p => p
            .checked_add(i)
            .ok_or_else(|| anyhow!("--listen port too high for {n} nodes"))?,
    };
    let mut c = config(
        data_dir.join(format!("node-{i}")),
        std::net::SocketAddr::new(args.listen.ip(), port),
        &args.serve,
    )?;
    c.accept_pins = true;
    c.admin_token = Some(vouch_node::keyfile::load_or_create_token(
        &data_dir.join(vouch_node::config::ADMIN_TOKEN_FILE),
    )?);
    if i != fault_node {
        c.fault = None;
    }
    let p2p = if i == 0 {
        P2pConfig::new(
            format!("/ip4/127.0.0.1/tcp/{p2p_port}").parse()?,
            Vec::new(),
        )
    } else {
        let first = vouch_node::p2p::peer_id_of(&keys[0]);
        P2pConfig::loopback(vec![
            format!("/ip4/127.0.0.1/tcp/{p2p_port}/p2p/{first}").parse()?,
        ])
    };
    let serve_models: Vec<String> = if i == 0 {
        Vec::new()
    } else {
        vouch_node::samples::SAMPLES
            .iter()
            .map(|s| s.name.to_string())
            .collect()
    };
    let chain = ChainStart {
        genesis: Some(genesis),
        listen: chain_port(i as usize)?,
        bootstrap: if i == 0 {
            Vec::new()
        } else {
            vec![(keys[0], chain_port(0)?)]
        },
        empty_block_interval: std::time::Duration::from_secs(args.chain_block_secs),
        redeem_interval: std::time::Duration::from_secs(args.serve.redeem_secs),
    };
    // Stop when the parent closes stdin (it stopped, or was killed). Read
    // on a thread of its own: a blocking read on the runtime's pool would
    // hold up its shutdown after a signal.
    let (gone, parent_gone) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
        let _ = gone.send(());
    });
    let until = async move {
        tokio::select! {
            _ = parent_gone => {},
            () = shutdown_signal() => {},
        }
    };
    serve_until(
        c,
        p2p,
        &serve_models,
        (i == 0).then(|| models.to_path_buf()),
        Some(chain),
        Some(i),
        until,
    )
    .await
}
/// Writes `line` and a newline to stderr in one write: the members of a
/// local network share their parent's stderr, and a line written in
/// pieces would interleave with theirs.
fn say(line: &str) {
    use std::io::Write;
    let _ = std::io::stderr()
        .lock()
        .write_all(format!("{line}\n").as_bytes());
}

/// Says where the admin token is and how the CLI finds it.
pub(crate) fn print_token_hint(data_dir: &Path) {
    let file = data_dir.join(vouch_node::config::ADMIN_TOKEN_FILE);
    let how = if default_data_dir().is_ok_and(|d| d == data_dir) {
        "the vouch CLI on this machine reads it by itself".to_string()
    } else {
        format!(
            "the vouch CLI reads it with --data-dir {}",
            data_dir.display()
        )
    };
    say(&format!(
        "  operator actions (push, pin, audits) need the admin token in {}: {how}; elsewhere set VOUCH_TOKEN",
        file.display()
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_combine_one_answer_changing_fault_with_an_accelerator_claim() {
        use vouch_node::service::LlmFault;
        let (fault, file, claim) =
            parse_faults("llm-substitute=/m/q5.gguf,llm-claim=CUDA").unwrap();
        assert_eq!(fault.and_then(|f| f.llm), Some(LlmFault::Substitute));
        assert_eq!(file, Some(std::path::PathBuf::from("/m/q5.gguf")));
        assert_eq!(claim.as_deref(), Some("CUDA"));
        let (fault, file, claim) = parse_faults("llm-claim=Vulkan").unwrap();
        assert_eq!(
            (fault, file, claim.as_deref()),
            (None, None, Some("Vulkan"))
        );
        let (fault, _, claim) = parse_faults("perturb:3").unwrap();
        assert_eq!((fault.and_then(|f| f.step), claim), (Some(3), None));
        for (bad, says) in [
            ("llm-seed,llm-edit=2", "at most one fault"),
            ("llm-claim=", "letters and digits"),
            ("llm-claim=CU DA", "letters and digits"),
            ("llm-claim=CUDA,nonsense", "use `perturb`"),
        ] {
            let e = parse_faults(bad).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
