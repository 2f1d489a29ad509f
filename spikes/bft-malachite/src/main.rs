//! Spike (issue 25), build cost only: links Malachite's channel-based
//! application interface and its configuration, so that a cold build of
//! this crate measures what the engine adds before any binding code. A
//! validator needs, beyond this, a `Context` (height, address, value and
//! value id, vote, proposal, proposal part, validator set, signing scheme),
//! codecs for the wire and for sync, and the application loop handling
//! every `AppMsg` (see spikes/README.md).

fn main() {
    println!(
        "{}",
        std::any::type_name::<arc_malachitebft_config::ConsensusConfig>()
    );
    let _ = arc_malachitebft_app_channel::app::types::core::Round::Nil;
}
