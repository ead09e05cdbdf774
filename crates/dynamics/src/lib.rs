//! bae-dynamics: feature-set entropy dynamics of language models, and the `bae`
//! command-line tool. The measurement code arrives with the entropy stages; for now
//! this crate holds the CLI, which hosts models through bae-lm.
#![deny(missing_docs)]
