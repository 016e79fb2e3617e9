//! The smallest RAUTA plugin: both phases answer CONTINUE, which is the empty output, so a call
//! costs the input copy and its decoding and nothing else. Its µs/call is the SDK's floor.
use rauta_plugin::{Decision, Request};

fn pass(_req: &Request) -> Decision {
    Decision::Continue
}

rauta_plugin::on_request!(pass);
rauta_plugin::on_response!(pass);
