//! cbm-hub: a gRPC hub over mutual TLS through which national bodies exchange voluntary cyber
//! confidence-building measures (CBMs).
//!
//! Module map, from the wire inwards:
//! - [`pb`]: generated protobuf messages and gRPC stubs of `proto/cbm/v1` (the public contract).
//! - [`service`]: thin tonic handlers. Authenticate the caller from its certificate into a
//!   [`domain::principal::Principal`], validate, call the store, map errors to gRPC codes.
//! - [`tls`]: rustls server and client configurations, the CA bundle and CRLs, chain
//!   verification, certificate identity, reloads and the watch open streams re-check on, the dev
//!   PKI.
//! - [`domain`]: members and roles, TLP audience rules, submission validation, the CBM catalogue.
//!   Pure code: no tonic, no sled.
//! - [`feed`]: subscriptions: filters, the delivery decision per change, replay then live.
//! - [`store`]: the sled layout, the single writer that assigns the gapless feed sequence and
//!   commits changes in groups with one flush, checksummed records, reads; the seal of a clean
//!   stop, the start check of what changed since, and the paced background check.
//! - [`audit`]: the tamper-evident audit log: chain and Merkle hashing, signed checkpoints,
//!   the verifier (also used offline).
//! - [`provenance`]: author signatures (COSE_Sign1 with x5chain) checked at publication, the
//!   hub's receipts with inclusion proofs, and the offline checks of `cbm-hub verify`.
//! - [`limits`]: per-member request quota and subscription cap.
//! - [`stix`]: STIX 2.1 bundles of what a member received (TLP 2.0 markings), and a checker of
//!   the STIX 2.1 rules. Pure mapping: no tonic, no I/O.
//! - [`metrics`]: Prometheus metrics (counted at the service edge, the feed and the store) and
//!   the opt-in `GET /metrics` endpoint.
//! - [`jsonmap`]: reading contract messages from JSON and YAML files (the proto3 JSON mapping,
//!   files of the earlier form).
//! - [`config`]: the validated server configuration, from file, environment and flags.
//! - [`web`]: the read-only web portal on `web.listen`: HTML pages over the same mutual TLS,
//!   reading through the service implementations (same audience decision, same audit).
//! - [`cli`]: the `cbm-hub` subcommands; `main.rs` only parses and dispatches.
#![forbid(unsafe_code)]

pub mod audit;
pub mod bench;
pub mod cli;
pub mod config;
pub mod convert;
pub mod domain;
pub mod feed;
#[doc(hidden)]
pub mod fuzzing;
pub mod jsonmap;
pub mod limits;
pub mod metrics;
pub mod pb;
pub mod provenance;
pub mod service;
pub mod stix;
pub mod store;
pub mod tls;
pub mod web;
