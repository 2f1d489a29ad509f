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
    c.fault = s.fault.as_deref().map(parse_fault).transpose()?;
    c.llm_slots = usize::from(s.llm_slots);
    c.llm_context = s.llm_context as usize;
    c.llm_threads = usize::from(s.llm_threads);
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
/// `perturb` or `perturb:STEP`.
pub(crate) fn parse_fault(s: &str) -> Result<Fault> {
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
    p2p: &P2pArgs,
    samples: Option<PathBuf>,
    chain: Option<ChainStart>,
) -> Result<()> {
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
    if let Some(chain) = chain {
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
        })
        .context("starting the ledger chain")?;
    }
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
pub(crate) async fn up_network(args: &UpArgs, data_dir: &Path, models: &Path) -> Result<()> {
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
    eprintln!(
        "  operator actions (push, pin, audits) need the admin token in {}: {how}; elsewhere set VOUCH_TOKEN",
        file.display()
    );
}
