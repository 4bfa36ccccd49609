//! The rules of the hub, free of transport and storage: members and roles, TLP audiences,
//! submission validation and the CBM catalogue.

pub mod acks;
pub mod audience;
pub mod budget;
pub mod campaign;
pub mod catalogue;
pub mod clock;
pub mod error;
pub mod kind;
pub mod matrix;
pub mod member;
pub mod principal;
pub mod records;
pub mod rules;
pub mod tlp;
pub mod validate;
pub mod visibility;

pub use error::{FieldError, Invalid};
