//! Command-line arguments.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Vouch: models served with receipts anyone can check.
#[derive(Parser, Debug)]
#[command(name = "vouch", version, about)]
pub(crate) struct Cli {
    /// URL of the node to talk to.
    #[arg(
        long,
        global = true,
        env = "VOUCH_NODE",
        default_value = "http://127.0.0.1:8080"
    )]
    pub(crate) node: String,
    /// The node's admin token, which operator actions need (push, pin,
    /// audits). Default: the `admin-token` file in --data-dir, or in the
    /// default data directory, when --node is on this machine.
    #[arg(long, global = true, env = "VOUCH_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,
    /// Data directory: where `up` and `node` keep their data (`up`: default
    /// the user's data dir, e.g. ~/.local/share/vouch), and where other
    /// commands find that node's admin token.
    #[arg(long, global = true)]
    pub(crate) data_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub(crate) command: Command,
}

impl Cli {
    pub(crate) fn default_log_filter(&self) -> &'static str {
        match self.command {
            // Kademlia warns when a node starts with no peer to bootstrap
            // from, which is how a first node starts.
            Command::Up(_) | Command::Node(_) => "info,tower_http=warn,libp2p_kad=error",
            _ => "warn",
        }
    }
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Run a node on the embedded default: 127.0.0.1:8080, data in the
    /// user's data directory, sample models imported on first run.
    Up(UpArgs),
    /// Run a configurable node.
    Node(NodeArgs),
    /// Push, list, show and fetch models.
    #[command(subcommand)]
    Model(ModelCommand),
    /// Run a model on IN.json and check the receipt.
    Infer(InferArgs),
    /// Ask a language model (on this node or, routed, on the network) and
    /// check the answer's receipt and transcript.
    Chat(ChatArgs),
    /// Check a receipt offline: signature, id, and (given) inputs and outputs.
    Verify(VerifyArgs),
    /// Collect garbage on the node now, and say what was freed (blobs no
    /// model uses, stopped fetches, receipts past their retention).
    Gc,
    /// Print a genesis file (JSON) for a chain whose validators are these
    /// operators, each funded and staked.
    Genesis {
        /// The validators' operator keys (ed25519:HEX).
        #[arg(required = true)]
        operators: Vec<String>,
        /// The chain's name.
        #[arg(long, default_value = "vouch-local")]
        chain_id: String,
        /// Each operator's spendable funds.
        #[arg(long, default_value_t = 1_000_000)]
        funds: u64,
        /// Each operator's stake.
        #[arg(long, default_value_t = 100_000)]
        stake: u64,
    },
    /// The ledger chain the node validates: its status, operators and
    /// accounts.
    #[command(subcommand)]
    Ledger(LedgerCommand),
    /// Move AMOUNT of your balance into your escrow, from which operators
    /// redeem your payment vouchers; signed and waited for as `transfer`.
    Deposit {
        /// How much.
        amount: u64,
        /// The signing key's file (default: the node's operator key).
        #[arg(long)]
        key: Option<PathBuf>,
    },
    /// Bond AMOUNT of your (an operator's) balance as stake.
    Stake {
        /// How much.
        amount: u64,
        /// The signing key's file (default: the node's operator key).
        #[arg(long)]
        key: Option<PathBuf>,
    },
    /// Start unbonding AMOUNT of your stake: it returns to your balance
    /// after the unbonding delay, and can be slashed until then.
    Unstake {
        /// How much.
        amount: u64,
        /// The signing key's file (default: the node's operator key).
        #[arg(long)]
        key: Option<PathBuf>,
    },
    /// File a dispute on the ledger (a proof dispute `vouch verify
    /// --dispute` wrote, or a record `vouch evidence --dispute` saved),
    /// signed with --key (default: the node's operator key in
    /// --data-dir), and wait until a block applies it: the ledger checks
    /// the evidence itself and slashes the executor it convicts.
    Dispute {
        /// The dispute file (JSON).
        file: PathBuf,
        /// The signing key's file (32-byte seed, as `operator.key`).
        #[arg(long)]
        key: Option<PathBuf>,
    },
    /// Move AMOUNT from your account to TO's on the ledger, signed with
    /// --key (default: the node's operator key in --data-dir), and wait
    /// until a block applies it. Prints the transaction id and its outcome.
    Transfer {
        /// The receiving account (ed25519:HEX).
        to: String,
        /// How much.
        amount: u64,
        /// The signing key's file (32-byte seed, as `operator.key`).
        #[arg(long)]
        key: Option<PathBuf>,
    },
    /// Propose parameter changes (and treasury spends) to the ledger's
    /// governance, signed with
    /// --key (default: the node's operator key; a staked operator) and
    /// waited for. Prints the proposal as one JSON line with its "id".
    Propose {
        /// NAME=VALUE (repeatable): e.g. --set audit_rate_ppm=100000
        /// (`vouch ledger params` lists the names).
        #[arg(
            long = "set",
            value_name = "NAME=VALUE",
            required_unless_present_any = ["spend", "allow_release", "retire_release"]
        )]
        set: Vec<String>,
        /// KEY=AMOUNT (repeatable): pay AMOUNT from the treasury to KEY.
        #[arg(long = "spend", value_name = "KEY=AMOUNT")]
        spend: Vec<String>,
        /// VERSION[=DIGEST] (repeatable): allow this software release (its
        /// binary's BLAKE3 digest, if given); once any is allowed, only
        /// allowed releases serve.
        #[arg(long, value_name = "VERSION[=DIGEST]")]
        allow_release: Vec<String>,
        /// VERSION (repeatable): retire this release; nodes stop routing to
        /// peers that run it.
        #[arg(long, value_name = "VERSION")]
        retire_release: Vec<String>,
        /// The signing key's file (default: the node's operator key).
        #[arg(long)]
        key: Option<PathBuf>,
        /// Have the node sign with its operator key (the admin token
        /// authorizes it; no key file needed here).
        #[arg(long, conflicts_with = "key")]
        by_node: bool,
    },
    /// Vote on proposal ID with your bonded stake (a later vote replaces
    /// an earlier one), signed with --key (or by the node, --by-node) and
    /// waited for.
    Vote {
        /// The proposal's id (`vouch ledger proposals`).
        id: u64,
        /// yes or no.
        #[arg(value_parser = ["yes", "no"])]
        choice: String,
        /// The signing key's file (default: the node's operator key).
        #[arg(long)]
        key: Option<PathBuf>,
        /// Have the node sign with its operator key (the admin token
        /// authorizes it; no key file needed here).
        #[arg(long, conflicts_with = "key")]
        by_node: bool,
    },
    /// Fetch receipts a node signed.
    #[command(subcommand)]
    Receipts(ReceiptsCommand),
    /// Show the node's peers: what each serves and the node's record of it.
    Network {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// What happened to one request, as the node knows it: the receipt,
    /// its executor's record on the ledger, who may audit it, the node's
    /// audits of it, disputes naming it, and whether the ledger convicted.
    Trace {
        /// The receipt id (rcpt:...).
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the evidence a node recorded (quorum disagreements, disputes),
    /// or save one dispute to a file for `vouch verify-dispute`.
    Evidence {
        /// Write record N's dispute to --out.
        #[arg(long, requires = "out")]
        dispute: Option<usize>,
        /// Where to write it.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check a dispute file: both receipts, the bisection down to the
    /// disputed step and the signed verdicts offline; then establish the
    /// verdict by admitted parties (--admit) or by re-execution (--replay).
    /// Exits non-zero unless one of them establishes it.
    VerifyDispute {
        /// The dispute file.
        file: PathBuf,
        /// The request file whose inputs both receipts must name.
        #[arg(long)]
        input: Option<PathBuf>,
        /// An operator you admit (ed25519:HEX, repeatable): the verdict is
        /// established when the auditor and the referee are admitted and
        /// the referee is one the dispute's draw picks.
        #[arg(long = "admit", value_name = "KEY")]
        admitted: Vec<String>,
        /// Judge by the ledger of the node (`--node`): the verdict is
        /// established when the auditor and the referee are staked there
        /// and the referee is one the stake-weighted draw, seeded by the
        /// receipt's beacon, picks (as the ledger convicts).
        #[arg(long)]
        ledger: bool,
        /// Re-execute on the node (`--node`): the disputed step (with
        /// --input) or the teacher-forced check of the answer's tokens.
        #[arg(long)]
        replay: bool,
    },
}

/// Options shared by `up` and `node`.
#[derive(Args, Debug, Clone)]
pub(crate) struct ServeArgs {
    /// Largest inference request body in bytes.
    #[arg(long, default_value_t = 64 << 20)]
    pub(crate) max_request_bytes: usize,
    /// Largest model upload in bytes.
    #[arg(long, default_value_t = 4 << 30)]
    pub(crate) max_upload_bytes: u64,
    /// Memory budget for loaded models, in MiB.
    #[arg(long, default_value_t = 2048)]
    pub(crate) cache_mib: usize,
    /// Inferences run at once (default: one per CPU).
    #[arg(long)]
    pub(crate) workers: Option<usize>,
    /// Do not hash each graph step into the receipt's trace commitment.
    #[arg(long)]
    pub(crate) no_trace: bool,
    /// Share (0-1) of other operators' receipts, for models this node
    /// serves, that it re-executes to audit.
    #[arg(long, default_value_t = 0.05)]
    pub(crate) audit_rate: f64,
    /// Seconds this node keeps a request's inputs and outputs for auditors.
    #[arg(long, default_value_t = 600)]
    pub(crate) retention: u64,
    /// Price per inference, in the ledger's smallest unit (announced to
    /// peers and stated in receipts). Where the node runs a ledger chain,
    /// each inference request pays it by voucher (`vouch infer --pay`)
    /// and the price is published on the ledger.
    #[arg(long, default_value_t = 0)]
    pub(crate) price: u64,
    /// Seconds between redemptions of the payment vouchers the node holds
    /// (with a ledger chain and a price).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=86400))]
    pub(crate) redeem_secs: u64,
    /// Largest share (0-1) of routed requests one operator may take while
    /// others can serve them.
    #[arg(long, default_value_t = 0.5)]
    pub(crate) max_share: f64,
    /// Chats each loaded language model generates at once (each costs a
    /// context's KV cache: about 90 MiB per 4096 tokens for SmolLM2-135M);
    /// more wait their turn.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub(crate) llm_slots: u16,
    /// Most tokens (prompt + answer) per chat (the model's training context
    /// when smaller).
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u32).range(16..))]
    pub(crate) llm_context: u32,
    /// CPU threads llama.cpp decodes one token per chat with (0: one fewer
    /// than the cores, at least one: its threads spin while they wait for
    /// each other, and the node's own work needs room). Prompts, audits and
    /// several chats at once use every core.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u16).range(0..=1024))]
    pub(crate) llm_threads: u16,
    /// CPU threads an ONNX inference that runs alone may split its matrix
    /// products over (0: one per core; 1: never split); each model splits
    /// when its lone runs go faster that way. Inferences that overlap run
    /// on one thread each. Outputs and receipts are the same with any
    /// count.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u16).range(0..=1024))]
    pub(crate) onnx_threads: u16,
    /// Tokens llama.cpp computes at once, in generation and in
    /// teacher-forced audits alike. Its kernels' results depend on it, so
    /// the nodes that audit each other must use the same (docs/gpu.md).
    #[arg(long, default_value_t = vouch_node::DEFAULT_LLM_UBATCH, value_parser = clap::value_parser!(u16).range(1..=512))]
    pub(crate) llm_ubatch: u16,
    /// Demonstration only: sign wrong answers, perturbing trace step STEP
    /// (`perturb:STEP`) or the last float step (`perturb`) of ONNX models,
    /// and answering LLM requests with the runner-up token from generated
    /// token STEP (or the first) on, so the network's checks can be
    /// watched catching this node. LLM attacks the audits must catch:
    /// `llm-temperature=T` (sample at T, not the committed temperature),
    /// `llm-seed` (sample with another seed), `llm-edit=K` (K tokens
    /// replaced by the runner-up), `llm-substitute=FILE.gguf` (generate
    /// with another model, signing as the one requested). Beside one of
    /// them, after a comma, or alone: `llm-claim=NAME` (LLM receipts state
    /// accelerator NAME, e.g. CUDA, that the node does not run on, for the
    /// accelerator rule's leniency; pooled audits catch what it hides).
    #[arg(long)]
    pub(crate) fault: Option<String>,
    /// Serve NAME from an external OpenAI-compatible server at URL (its
    /// API base, e.g. http://127.0.0.1:8081/v1), as REMOTE_MODEL there
    /// (default NAME): `NAME=URL[#REMOTE_MODEL]` (repeatable). Receipts sign
    /// the transcript and state that the model is not attested.
    #[arg(long = "external", value_name = "NAME=URL[#REMOTE_MODEL]")]
    pub(crate) externals: Vec<String>,
    /// A host name this node is reached by (repeatable). Requests whose
    /// `Host` is neither an IP address, localhost nor one of these are
    /// refused, so a web page cannot reach the node through a name of its
    /// own (DNS rebinding).
    #[arg(long = "allow-host", value_name = "NAME")]
    pub(crate) allowed_hosts: Vec<String>,
    /// Admit operator KEY (ed25519:HEX, as `vouch network` shows it;
    /// repeatable): only admitted operators form quorums with this node,
    /// referee its audits, or settle disputes it cannot re-execute. Peer
    /// ids are free; admission is not (the ledger will make it stake).
    #[arg(long = "admit", value_name = "KEY")]
    pub(crate) admitted: Vec<String>,
    /// Evidence records (quorum disagreements, disputes) kept; the oldest
    /// go first.
    #[arg(long, default_value_t = 10_000)]
    pub(crate) max_evidence: u64,
    /// Most texts in one embeddings request.
    #[arg(long, default_value_t = 2048)]
    pub(crate) max_embedding_inputs: usize,
    /// Most tokens, all texts together, in one embeddings request.
    #[arg(long, default_value_t = 300_000)]
    pub(crate) max_embedding_tokens: usize,
    /// Seconds an external engine (--external) may go without sending a
    /// byte before its answer fails.
    #[arg(long, default_value_t = 120)]
    pub(crate) external_timeout_secs: u64,
    /// Days receipts (and their trace leaves) are kept; 0 keeps them all.
    #[arg(long, default_value_t = 0)]
    pub(crate) receipt_retention_days: u64,
    /// Generations that may wait for a language model's slots (beyond
    /// them a request is answered 503).
    #[arg(long, default_value_t = 16)]
    pub(crate) llm_queue: usize,
    /// HTTP connections served at once; beyond them a new connection is
    /// answered 503 and closed (keep it under the open-file limit).
    #[arg(long, default_value_t = 256)]
    pub(crate) max_connections: usize,
    /// HTTP connections served at once from any one address (one more is
    /// answered 503; other addresses are still served).
    #[arg(long, default_value_t = 64)]
    pub(crate) max_connections_per_ip: usize,
    /// Seconds a client may take to send a request's headers.
    #[arg(long, default_value_t = 30)]
    pub(crate) header_timeout_secs: u64,
    /// Bytes per second a request body (an upload) must average after its
    /// first ten seconds; 0: no minimum.
    #[arg(long, default_value_t = 1024)]
    pub(crate) min_body_rate: u64,
    /// Seconds a request body (an upload) may go without sending a byte.
    #[arg(long, default_value_t = 60)]
    pub(crate) body_idle_timeout_secs: u64,
    #[command(flatten)]
    pub(crate) p2p: P2pArgs,
}

/// Peer-to-peer options shared by `up` and `node`.
#[derive(Args, Debug, Clone)]
pub(crate) struct P2pArgs {
    /// libp2p address to listen on for peers, e.g. /ip4/0.0.0.0/tcp/4001.
    #[arg(long, default_value = "/ip4/127.0.0.1/tcp/0")]
    pub(crate) p2p_listen: String,
    /// A peer to join through, ending in /p2p/<peer id> (repeatable).
    #[arg(long)]
    pub(crate) bootstrap: Vec<String>,
    /// Serve this model (NAME or NAME@VERSION) even if this node lacks it:
    /// fetch it from peers once one announces it (repeatable).
    #[arg(long = "serve")]
    pub(crate) serve_models: Vec<String>,
    /// Fetch and serve models when a peer asks (`vouch model pin --replicas`).
    #[arg(long)]
    pub(crate) accept_pins: bool,
    /// Connections peers may open to this node at once; beyond them a new
    /// one is refused.
    #[arg(long, default_value_t = 256)]
    pub(crate) max_peers: u32,
}

#[derive(Args, Debug)]
pub(crate) struct UpArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub(crate) listen: SocketAddr,
    /// Where the sample models are (default: $VOUCH_MODELS or ~/.cache/vouch/models).
    #[arg(long, env = "VOUCH_MODELS")]
    pub(crate) models: Option<PathBuf>,
    /// Run a local network of this many nodes, each a process of its own
    /// (kill one like a machine) with its own operator key and data under
    /// DIR/node-I, on consecutive ports from --listen (0: any free ones);
    /// their operators are the funded, staked validators of one ledger
    /// chain (genesis in DIR/genesis.json), and the sample models are
    /// replicated to all of them.
    #[arg(long, default_value_t = 1)]
    pub(crate) nodes: u16,
    /// Set by `vouch up --nodes N` for the processes it starts: run member
    /// I of the local network, its validators listening on these ports and
    /// node 0's peer-to-peer transport on this one.
    #[arg(long, hide = true, requires_all = ["member_chain_ports", "member_p2p_port"])]
    pub(crate) member: Option<u16>,
    #[arg(long, hide = true, value_delimiter = ',')]
    pub(crate) member_chain_ports: Vec<u16>,
    #[arg(long, hide = true)]
    pub(crate) member_p2p_port: Option<u16>,
    /// With --nodes and --fault: which node (0-based) runs the fault
    /// (default: the last).
    #[arg(long)]
    pub(crate) fault_node: Option<u16>,
    /// Where the ledger chain's validator listens (one node: a chain of its
    /// own, with its operator funded, staked and validating).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub(crate) chain_listen: SocketAddr,
    /// Seconds between empty blocks when no transaction waits.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub(crate) chain_block_secs: u64,
    #[command(flatten)]
    pub(crate) serve: ServeArgs,
}

#[derive(Args, Debug)]
pub(crate) struct NodeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub(crate) listen: SocketAddr,
    /// Validate the ledger chain this genesis file starts (`vouch
    /// genesis` writes one); this node's operator must be among its staked
    /// operators.
    #[arg(long, requires = "chain_listen")]
    pub(crate) genesis: Option<PathBuf>,
    /// Where this node's validator listens (with --genesis).
    #[arg(long)]
    pub(crate) chain_listen: Option<SocketAddr>,
    /// A validator to dial first: OPERATOR_KEY@HOST:PORT (repeatable).
    #[arg(long)]
    pub(crate) chain_bootstrap: Vec<String>,
    /// Seconds between empty blocks when no transaction waits (with
    /// --genesis; `vouch up` uses 5).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub(crate) chain_block_secs: u64,
    #[command(flatten)]
    pub(crate) serve: ServeArgs,
}

#[derive(Subcommand, Debug)]
pub(crate) enum LedgerCommand {
    /// Chain id, height, state root, validators and supply, as JSON.
    Status,
    /// Registered operators: stake, unbonding, slashed, offer, as JSON.
    Operators,
    /// One account's balance, escrow and next nonce, as JSON.
    Account {
        /// The account's key (ed25519:HEX).
        key: String,
    },
    /// The parameters in force, as JSON.
    Params,
    /// Fees settled and their split, what each operator earned, and how
    /// concentrated fees, stake and validator power are, as JSON.
    Economics,
    /// Every governance proposal: its changes, votes, tally and status,
    /// as JSON.
    Proposals,
    /// Convictions not yet final (their held stake, appeal, panel and
    /// votes) and the last ones settled (final, upheld, overturned,
    /// undecided), as JSON.
    Disputes,
    /// One block: its digest, parent, time and transactions (signer, kind,
    /// outcome), as JSON.
    Block {
        /// Its height.
        height: u64,
    },
}

/// How many bits a proof circuit's integers keep: fewer make a smaller
/// circuit (faster proofs) and a wider stated error bound.
#[derive(Args, Debug, Clone, Copy)]
pub(crate) struct Precision {
    /// Bits the circuit's integer weights keep, per layer.
    #[arg(long, value_name = "BITS", default_value_t = vouch_proof::circuit::WEIGHT_BITS)]
    pub(crate) weight_bits: u32,
    /// Bits activations keep after each Relu.
    #[arg(long, value_name = "BITS", default_value_t = vouch_proof::circuit::ACTIVATION_BITS)]
    pub(crate) activation_bits: u32,
}

#[derive(Subcommand, Debug)]
pub(crate) enum ModelCommand {
    /// Upload a model file; the node checks it can run it first.
    Push {
        /// The model file (.onnx).
        file: PathBuf,
        /// Hub name.
        #[arg(long)]
        name: String,
        /// Version (default: the next integer).
        #[arg(long)]
        version: Option<String>,
        /// License identifier.
        #[arg(long)]
        license: Option<String>,
        /// Override a declared input shape: NAME=DIM,DIM (repeatable).
        #[arg(long = "input-shape")]
        input_shapes: Vec<String>,
        /// The model's tokenizer.json (embedding models), uploaded with it.
        #[arg(long)]
        tokenizer: Option<PathBuf>,
        /// Make the model provable (`--verify proof`): the node compiles it
        /// to a circuit, refusing it with the operators a proof does not
        /// cover, and names the circuit in its manifest.
        #[arg(long)]
        provable: bool,
        /// With --provable: the largest input magnitude the circuit accepts
        /// (smaller: a smaller circuit and a tighter error bound).
        #[arg(long, value_name = "R", default_value_t = vouch_proof::circuit::INPUT_RANGE, requires = "provable")]
        input_range: f64,
        #[command(flatten)]
        precision: Precision,
    },
    /// Compile a model file to its proof circuit here, without a node: say
    /// whether it is provable (or which operators it lacks), the circuit's
    /// size and error bound; with --run, the circuit's outputs for inputs.
    Circuit {
        /// The model file (.onnx).
        file: PathBuf,
        /// The largest input magnitude the circuit accepts.
        #[arg(long, value_name = "R", default_value_t = vouch_proof::circuit::INPUT_RANGE)]
        input_range: f64,
        #[command(flatten)]
        precision: Precision,
        /// A request file; its input's first dimension may hold several
        /// inputs of the circuit's shape, each run in turn. Prints
        /// {"outputs": ...} (stacked the same way).
        #[arg(long, value_name = "REQUEST")]
        run: Option<PathBuf>,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List models.
    Ls {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one model.
    Show {
        /// Model name.
        name: String,
        /// Version (default: newest).
        #[arg(long)]
        version: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Pin a model: the node fetches it from peers if it lacks it (verified
    /// chunk by chunk) and asks peers until REPLICAS nodes serve it.
    Pin {
        /// Model name.
        name: String,
        /// Version (default: newest).
        #[arg(long)]
        version: Option<String>,
        /// Nodes that should serve it, this one included.
        #[arg(long, default_value_t = 1)]
        replicas: u64,
        /// Give up waiting after this many seconds.
        #[arg(long, default_value_t = 600)]
        timeout: u64,
    },
    /// Download a model file, checked against its digest.
    Pull {
        /// Model name.
        name: String,
        /// Version (default: newest).
        #[arg(long)]
        version: Option<String>,
        /// Where to write it.
        #[arg(long, short)]
        out: PathBuf,
    },
    /// Delete a model version from the node (its files go at the next
    /// `vouch gc` unless another model uses them).
    Rm {
        /// Model name.
        name: String,
        /// The version to delete.
        #[arg(long)]
        version: String,
    },
}

#[derive(Args, Debug)]
pub(crate) struct InferArgs {
    /// Model name.
    pub(crate) name: String,
    /// Request file: {"inputs": {NAME: {"dtype", "shape", "data"}}}.
    #[arg(long)]
    pub(crate) input: PathBuf,
    /// Write {"outputs": ...} here (default: stdout).
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
    /// Write the receipt here.
    #[arg(long)]
    pub(crate) receipt: Option<PathBuf>,
    /// Model version (default: newest).
    #[arg(long)]
    pub(crate) version: Option<String>,
    /// Nonce to bind into the receipt (default: random).
    #[arg(long)]
    pub(crate) nonce: Option<String>,
    /// Require the receipt to be signed by this key (ed25519:HEX).
    #[arg(long)]
    pub(crate) expect_node: Option<String>,
    /// Require the receipt to name exactly this model (model:HEX); by
    /// default it must name the model the node registers under the name.
    #[arg(long)]
    pub(crate) model_id: Option<String>,
    /// Verification level: receipt (default), audit, quorum:N (N
    /// distinct operators run it; a majority must agree), or proof (a
    /// provable model's answer comes with a proof, checked here).
    #[arg(long)]
    pub(crate) verify: Option<String>,
    /// With --verify proof: write the proof here (for `vouch verify --proof`).
    #[arg(long)]
    pub(crate) proof: Option<PathBuf>,
    /// With --verify proof: write the circuit file the proof was checked
    /// against here (for `vouch verify --circuit`).
    #[arg(long)]
    pub(crate) circuit: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) pay: PayArgs,
}

/// Paying a node that charges for inference.
#[derive(Args, Debug)]
pub(crate) struct PayArgs {
    /// Pay the node's price with a voucher signed by the key in this file
    /// (its escrow on the ledger must cover it: `vouch deposit`).
    #[arg(long, value_name = "KEY_FILE")]
    pub(crate) pay: Option<PathBuf>,
    /// With --pay: refuse to pay more than this per request.
    #[arg(long, requires = "pay")]
    pub(crate) max_price: Option<u64>,
    /// With --pay: each voucher pays this many requests ahead, sent again
    /// (by later commands too) until they are spent: one signature per N
    /// requests; the node keeps what is paid ahead if you stop.
    #[arg(long, requires = "pay", default_value_t = 1, value_name = "N")]
    pub(crate) pay_ahead: u64,
}

#[derive(Args, Debug)]
pub(crate) struct VerifyArgs {
    /// The receipt file; or a chat/completion response (or its `vouch`
    /// object), whose transcript is then checked too.
    pub(crate) receipt: PathBuf,
    /// The request file whose inputs the receipt must name.
    #[arg(long)]
    pub(crate) input: Option<PathBuf>,
    /// The outputs file whose outputs the receipt must name.
    #[arg(long)]
    pub(crate) output: Option<PathBuf>,
    /// Require this signer (ed25519:HEX).
    #[arg(long)]
    pub(crate) node_key: Option<String>,
    /// For a chat or completion answer: also re-check every token by
    /// teacher forcing on the node (`--node`), with the model the receipt
    /// names.
    #[arg(long)]
    pub(crate) replay: bool,
    /// Require the receipt to name the model the node (`--node`) registers
    /// under NAME (or NAME@VERSION).
    #[arg(long, value_name = "NAME[@VERSION]")]
    pub(crate) model: Option<String>,
    /// Require the receipt to name exactly this model (model:HEX).
    #[arg(long)]
    pub(crate) model_id: Option<String>,
    /// Also require the signer to be a key of an operator registered on the
    /// ledger chain the node at URL validates (its current key or an
    /// earlier one).
    #[arg(long, value_name = "URL")]
    pub(crate) ledger: Option<String>,
    /// A proof of the answer (as `vouch infer --proof FILE` writes it),
    /// checked offline with --input, --output and --circuit.
    #[arg(long)]
    pub(crate) proof: Option<PathBuf>,
    /// The circuit file the model's manifest names, for --proof.
    #[arg(long)]
    pub(crate) circuit: Option<PathBuf>,
    /// When the proof fails on what the executor signed (its proof, or
    /// outputs the proof does not state): write the evidence to FILE, for
    /// `vouch dispute FILE` to file on the ledger.
    #[arg(long, value_name = "FILE", requires = "proof")]
    pub(crate) dispute: Option<PathBuf>,
    /// Once it checks: report the receipt to the node (`--node`), which
    /// gossips it to the network's auditors (for an answer an executor
    /// gave you directly, which it may not have gossiped itself).
    #[arg(long)]
    pub(crate) report: bool,
}

#[derive(Args, Debug)]
pub(crate) struct ChatArgs {
    /// The model's name.
    pub(crate) model: String,
    /// The user's message.
    pub(crate) message: String,
    /// A system message before it.
    #[arg(long)]
    pub(crate) system: Option<String>,
    /// Most tokens to generate.
    #[arg(long, default_value_t = 256)]
    pub(crate) max_tokens: u32,
    /// Sampling temperature (0: greedy).
    #[arg(long, default_value_t = 0.0)]
    pub(crate) temperature: f64,
    /// The sampler's seed (random when absent and sampling).
    #[arg(long)]
    pub(crate) seed: Option<u64>,
    /// Save the whole response (answer, receipt, transcript) here, for
    /// `vouch verify FILE [--replay]`.
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
    /// `receipt` (default) or `quorum:N`: N operators generate it and a
    /// majority must agree.
    #[arg(long)]
    pub(crate) verify: Option<String>,
    /// Require the receipt to name exactly this model (model:HEX); by
    /// default it must name the model the node registers under the name.
    #[arg(long)]
    pub(crate) model_id: Option<String>,
    /// A JSON schema file the answer must match: decoding is constrained to
    /// it, and the receipt must bind it.
    #[arg(long, value_name = "FILE")]
    pub(crate) json_schema: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) pay: PayArgs,
}

#[derive(Subcommand, Debug)]
pub(crate) enum ReceiptsCommand {
    /// Fetch one receipt by id and check it.
    Show {
        /// rcpt:<hex>
        id: String,
    },
}
