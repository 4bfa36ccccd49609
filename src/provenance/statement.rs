//! What a signed withdrawal says. A withdrawal has no content to sign, so the publisher signs
//! this statement: the submission, the revision the withdrawal produces (so that a signature
//! cannot be replayed against another state), and the reason readers are shown.

/// The exact bytes a withdrawal signature covers.
pub fn withdrawal(id: &str, revision: u32, reason: &str) -> Vec<u8> {
    format!("cbm-hub withdrawal v1\n{id}\n{revision}\nwithdrawn\n{reason}\n").into_bytes()
}

/// The change a publication or revision signature is for, carried in its COSE protected header
/// (label [`super::cose::CHANGE_LABEL`]): the operation and the revision it produces, and for a
/// revision the submission, so that a signed revision cannot be shown as another (a revision 1
/// presented later as revision 3, a revert) or moved to another submission. A withdrawal
/// needs none: its statement names both.
pub fn change_claim(id: &str, revision: u32) -> String {
    if revision <= 1 {
        "publish 1".to_string()
    } else {
        format!("revise {id} {revision}")
    }
}

/// The claim a stored revision's signature must carry; None for a withdrawal.
pub fn claim_of(s: &crate::pb::Submission) -> Option<String> {
    (s.status != "withdrawn").then(|| change_claim(&s.id, s.revision))
}

/// What the author signature of a stored revision covers: the content's protobuf encoding for
/// a publication or revision, the withdrawal statement for a withdrawal.
pub fn payload_of(s: &crate::pb::Submission) -> Vec<u8> {
    use prost::Message;
    if s.status == "withdrawn" {
        withdrawal(&s.id, s.revision, &s.withdrawal_reason)
    } else {
        s.content
            .as_ref()
            .map(Message::encode_to_vec)
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_claim_names_the_operation_revision_and_submission() {
        assert_eq!(super::change_claim("abc", 1), "publish 1");
        assert_eq!(super::change_claim("abc", 3), "revise abc 3");
    }

    #[test]
    fn the_statement_is_line_per_field() {
        assert_eq!(
            super::withdrawal("abc", 3, "superseded"),
            b"cbm-hub withdrawal v1\nabc\n3\nwithdrawn\nsuperseded\n"
        );
    }
}
